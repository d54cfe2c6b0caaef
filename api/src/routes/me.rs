//! The signed-in user.

use actix_web::http::Method;
use actix_web::web;
use vitalfarm_domain::MembershipKind;
use vitalfarm_openapi::accounts::{MeResponse, MembershipWithRole, User};
use vitalfarm_openapi::doc::ForbiddenResponse;
use vitalfarm_storage::entity::user;
use vitalfarm_storage::repo::accounts;

use super::RouteSet;
use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;
use crate::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/me", me);
}

pub fn user_dto(u: &user::Model) -> User {
    User {
        id: u.id,
        email: u.email.clone(),
        email_verified: u.email_verified_at.is_some(),
        display_name: u.display_name.clone(),
        created_at: u.created_at,
    }
}

/// The signed-in user and every membership they belong to, with their role
/// in each.
#[utoipa::path(get, path = "/v1/me", tag = "me",
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "The caller.", body = MeResponse),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn me(state: web::Data<AppState>, auth: Auth) -> ApiResult<web::Json<MeResponse>> {
    let user_id = auth.acting_user()?;
    let user = accounts::find_user(&state.db, user_id)
        .await?
        .ok_or(ApiError::Unauthorized("the account of this token no longer exists"))?;
    let memberships = accounts::memberships_of_user(&state.db, user_id)
        .await?
        .into_iter()
        .filter_map(|m| {
            Some(MembershipWithRole {
                id: m.membership.id,
                kind: MembershipKind::parse(&m.membership.kind)?,
                name: m.membership.name,
                farm_id: m.farm_id,
                role: m.role,
                created_at: m.membership.created_at,
            })
        })
        .collect();
    Ok(web::Json(MeResponse {
        user: user_dto(&user),
        memberships,
    }))
}
