//! The signed-in user: who they are, and the apps they authorized to act
//! for them (listed and revoked here, by the person, without the app's
//! credentials).

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use vitalfarm_domain::{MembershipId, MembershipKind};
use vitalfarm_openapi::accounts::{MeResponse, MembershipWithRole, User};
use vitalfarm_openapi::doc::ForbiddenResponse;
use vitalfarm_openapi::oauth::{Authorization, AuthorizationPage};
use vitalfarm_storage::entity::user;
use vitalfarm_storage::repo::{accounts, oauth};

use super::RouteSet;
use crate::error::{ApiResult, AppError};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, PageQuery, PathAppId, Query};
use vitalfarm_app::audit;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/me", me);
    r.add(Method::GET, "/v1/me/authorizations", list_authorizations);
    r.add(Method::DELETE, "/v1/me/authorizations/{app_id}", revoke_authorization);
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
        .ok_or(AppError::Unauthorized("the account of this token no longer exists"))?;
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

/// The apps the signed-in person authorized and has not revoked, one entry
/// per app, ordered by app id: what each may do (scopes), since when, and
/// when it last used its access.
#[utoipa::path(get, path = "/v1/me/authorizations", tag = "me",
    params(PageQuery),
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "A page of authorized apps.", body = AuthorizationPage),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn list_authorizations(
    state: web::Data<AppState>,
    auth: Auth,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<AuthorizationPage>> {
    let (limit, after) = (page.limit()?, page.after()?);
    let user = auth.user()?;
    // A person authorizes a handful of apps: paging in memory is enough.
    let all = oauth::authorizations_of(&state.db, user).await?;
    let mut rest = all.into_iter().filter(|a| after.is_none_or(|c| a.app.id > c));
    let items: Vec<Authorization> = rest
        .by_ref()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|a| Authorization {
            app_id: a.app.id,
            app_name: a.app.name,
            app_membership_id: a.app.membership_id,
            scopes: a
                .scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            granted_at: a.granted_at,
            last_used_at: a.last_used_at,
        })
        .collect();
    let next_cursor = if rest.next().is_some() {
        items.last().map(|a| encode_cursor(a.app_id))
    } else {
        None
    };
    Ok(web::Json(AuthorizationPage { items, next_cursor }))
}

/// Revokes the signed-in person's authorization of an app: every grant,
/// refresh token and access token the app holds for them stops working on
/// the app's next request, pending authorization codes are void, and what
/// the app created under the authorization is disabled: its webhooks stop
/// delivering (queued deliveries included), its alert rules stop
/// evaluating, its share links stop working. An app the person never
/// authorized (or whose authorization is already revoked) is 404.
#[utoipa::path(delete, path = "/v1/me/authorizations/{app_id}", tag = "me",
    params(("app_id" = Uuid, Path, description = "App id (its client id)")),
    security(("bearer_jwt" = [])),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, response = ForbiddenResponse),
        (status = 404, response = vitalfarm_openapi::doc::NotFoundResponse),
    ))]
pub async fn revoke_authorization(
    state: web::Data<AppState>,
    auth: Auth,
    app_id: PathAppId,
) -> ApiResult<HttpResponse> {
    let user = auth.user()?;
    let (app, disabled) = oauth::revoke_authorization(&state.db, user, app_id.0)
        .await?
        .ok_or(AppError::NotFound("authorization"))?;
    tracing::info!(app_id = %app_id.0, "oauth authorization revoked by its user");
    audit::record(
        &state,
        audit::Event::new(
            MembershipId::from_uuid(app.membership_id),
            audit::Actor::User(user),
            "app.authorization_revoked",
            format!("app/{}", app_id.0),
        ),
    )
    .await?;
    super::apps::record_disabled(&state, audit::Actor::User(user), app_id.0, &disabled).await?;
    Ok(HttpResponse::NoContent().finish())
}
