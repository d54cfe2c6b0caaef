//! `DELETE /v1/memberships/{mid}`: erasure of a membership by its owner.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use vitalfarm_domain::Permission;
use vitalfarm_openapi::doc::{ForbiddenResponse, InvalidCredentialsResponse, RateLimitedResponse};
use vitalfarm_openapi::exports::EraseMembershipRequest;
use vitalfarm_storage::repo::accounts;

use super::RouteSet;
use crate::error::{ApiResult, AppError};
use crate::extract::{Auth, Json, PathMembershipId};
use vitalfarm_app::authz;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::DELETE, "/v1/memberships/{mid}", erase);
}

/// Erases the membership and everything it holds: readings, subjects, farm
/// files (their encryption key first, so no copy can be read), devices of
/// its fleet (devices it claimed from another fleet are unbound and go back
/// to their owner), device commands, API keys, share links, members' roles
/// and exports. Consents it granted are revoked. The id stays taken;
/// afterwards every request for the membership answers 404, and members
/// who belong nowhere else lose their account. Only the owner, signed in,
/// with their password and the membership's name typed out.
#[utoipa::path(delete, path = "/v1/memberships/{mid}", tag = "exports",
    params(("mid" = Uuid, Path, description = "Membership id")),
    request_body = EraseMembershipRequest,
    security(("bearer_jwt" = [])),
    responses(
        (status = 204, description = "Erased."),
        (status = 401, response = InvalidCredentialsResponse),
        (status = 403, response = ForbiddenResponse),
        (status = 429, response = RateLimitedResponse),
    ))]
pub async fn erase(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Json(body): Json<EraseMembershipRequest>,
) -> ApiResult<HttpResponse> {
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::Administer)
        .await?
        .membership();
    let user_id = auth.user()?;
    let user = accounts::find_user(&state.db, user_id)
        .await?
        .ok_or(AppError::NotFound("membership"))?;
    crate::routes::auth::confirm_password(&req, &state, &user, body.password).await?;
    let (membership, _) = accounts::find_membership(&state.db, mid)
        .await?
        .ok_or(AppError::NotFound("membership"))?;
    if body.confirm != membership.name {
        return Err((AppError::InvalidParameter {
            field: "confirm".into(),
            message: "must be the membership's name, exactly".into(),
        })
        .into());
    }
    vitalfarm_app::erasure::erase(&state, mid, user_id)
        .await
        .map_err(|e| match e {
            vitalfarm_storage::StorageError::NotFound => AppError::NotFound("membership"),
            other => other.into(),
        })?;
    Ok(HttpResponse::NoContent().finish())
}
