//! Memberships: companies and individuals.

use actix_web::http::Method;
use actix_web::web;
use uuid::Uuid;
use vitalfarm_domain::{MembershipKind, Permission};
use vitalfarm_openapi::accounts::Membership;
use vitalfarm_storage::entity::membership;
use vitalfarm_storage::repo::accounts;

use super::RouteSet;
use crate::error::{ApiResult, AppError};
use crate::extract::{Auth, PathMembershipId};
use vitalfarm_app::authz;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/memberships/{mid}", get_membership);
}

pub fn membership_dto(m: &membership::Model, farm_id: Option<Uuid>) -> ApiResult<Membership> {
    Ok(Membership {
        id: m.id,
        kind: MembershipKind::parse(&m.kind)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("membership {} has unknown kind", m.id)))?,
        name: m.name.clone(),
        farm_id,
        created_at: m.created_at,
    })
}

/// A membership the caller belongs to (or whose API key it is).
#[utoipa::path(get, path = "/v1/memberships/{mid}", tag = "memberships",
    params(("mid" = Uuid, Path, description = "Membership id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The membership.", body = Membership)))]
pub async fn get_membership(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
) -> ApiResult<web::Json<Membership>> {
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ReadMembership)
        .await?
        .membership();
    let (m, farm) = accounts::find_membership(&state.db, mid)
        .await?
        .ok_or(AppError::NotFound("membership"))?;
    Ok(web::Json(membership_dto(&m, farm.map(|f| f.id))?))
}
