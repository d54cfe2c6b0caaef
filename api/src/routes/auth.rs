//! Sign-up, sign-in, refresh and logout.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use serde_json::json;
use vitalfarm_domain::{Email, TokenFamilyId, UserId, ValidationErrors, password};
use vitalfarm_openapi::accounts::{
    AcceptInvitationRequest, LoginRequest, RefreshRequest, SignupRequest, SignupResponse, TokenResponse,
};
use vitalfarm_openapi::doc::{ConflictResponse, InvalidCredentialsResponse, NotFoundResponse, RateLimitedResponse};
use vitalfarm_storage::entity::user;
use vitalfarm_storage::repo::{accounts, rate_limits, refresh_tokens};

use super::RouteSet;
use super::me::user_dto;
use super::memberships::membership_dto;
use crate::audit;
use crate::auth::{password as pw, secrets};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/auth/signup", signup);
    r.add(Method::POST, "/v1/auth/accept-invitation", accept_invitation);
    r.add(Method::POST, "/v1/auth/login", login);
    r.add(Method::POST, "/v1/auth/refresh", refresh);
    r.add(Method::POST, "/v1/auth/logout", logout);
}

/// The client's address for rate limiting: the socket peer, or, behind a
/// trusted proxy, the last `X-Forwarded-For` entry: the one that proxy
/// appended. Earlier entries come from the client and prove nothing.
pub fn client_ip(req: &HttpRequest, state: &AppState) -> String {
    if state.config.trust_forwarded_for
        && let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        return ip.to_owned();
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn window(state: &AppState) -> Duration {
    Duration::seconds(i64::try_from(state.config.login_window_secs).unwrap_or(i64::MAX / 1000))
}

fn retry_after(w: &rate_limits::Window) -> ApiError {
    let secs = (w.resets_at - Utc::now()).num_seconds().max(1);
    ApiError::RateLimited {
        retry_after_secs: u64::try_from(secs).unwrap_or(1),
    }
}

/// Counts a request against the per-address budget.
async fn check_ip_budget(state: &AppState, key: String) -> ApiResult<()> {
    let w = rate_limits::hit(&state.db, &key, window(state)).await?;
    if w.count > i32::try_from(state.config.login_max_attempts_per_ip).unwrap_or(i32::MAX) {
        return Err(retry_after(&w));
    }
    Ok(())
}

/// A new access token and a refresh token in `family` (a new family for a
/// fresh sign-in).
pub async fn issue_tokens(state: &AppState, user: UserId) -> ApiResult<TokenResponse> {
    let refresh = secrets::generate(secrets::REFRESH_PREFIX)?;
    let expires =
        Utc::now() + Duration::seconds(i64::try_from(state.config.refresh_token_ttl_secs).unwrap_or(i64::MAX / 1000));
    refresh_tokens::issue(
        &state.db,
        user,
        TokenFamilyId::new(),
        secrets::digest(&refresh),
        expires,
    )
    .await?;
    Ok(TokenResponse {
        access_token: state.jwt.issue(user)?,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
    })
}

fn check_name(errors: &mut ValidationErrors, field: &str, value: &str) {
    errors.check(field, vitalfarm_domain::validation::check_name(value, 200));
}

/// Creates an account: the user, a membership (individual or company) owned
/// by the user, its farm and, for an individual, the `self` subject.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created; the caller is signed in.", body = SignupResponse),
        (status = 409, response = ConflictResponse),
        (status = 429, response = RateLimitedResponse),
    ))]
pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    Json(body): Json<SignupRequest>,
) -> ApiResult<HttpResponse> {
    let mut errors = ValidationErrors::new();
    let email = errors.check("email", Email::parse(&body.email));
    if let Some(email) = &email {
        errors.check("password", password::check(&body.password, email));
    }
    check_name(&mut errors, "display_name", &body.display_name);
    check_name(&mut errors, "membership.name", &body.membership.name);
    errors.into_result()?;
    let Some(email) = email else {
        return Err(ApiError::field("email", "is invalid"));
    };
    check_ip_budget(&state, format!("signup:ip:{}", client_ip(&req, &state))).await?;

    let display_name = body.display_name.trim().to_owned();
    let s = accounts::signup(
        &state.db,
        accounts::NewSignup {
            email: &email,
            password_hash: pw::hash(body.password).await?,
            display_name: &display_name,
            kind: body.membership.kind,
            membership_name: body.membership.name.trim(),
            farm_quota_bytes: i64::try_from(state.config.farm_quota_bytes).unwrap_or(i64::MAX),
        },
    )
    .await?;
    tracing::info!(user_id = %s.user.id, membership_id = %s.membership.id, kind = body.membership.kind.as_str(), "signup");
    let tokens = issue_tokens(&state, UserId::from_uuid(s.user.id)).await?;
    Ok(HttpResponse::Created().json(SignupResponse {
        user: user_dto(&s.user),
        membership: membership_dto(&s.membership, Some(s.farm.id))?,
        self_subject_id: s.subject.map(|s| s.id),
        tokens,
    }))
}

/// Completes the account a company invited (see
/// `POST /v1/memberships/{mid}/members`): sets the password and name, and
/// signs the new member in. The token works once.
#[utoipa::path(post, path = "/v1/auth/accept-invitation", tag = "auth", request_body = AcceptInvitationRequest,
    responses(
        (status = 201, description = "Account completed; the caller is signed in and a member of the inviting company.", body = SignupResponse),
        (status = 404, response = NotFoundResponse),
        (status = 409, response = ConflictResponse),
        (status = 429, response = RateLimitedResponse),
    ))]
pub async fn accept_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    Json(body): Json<AcceptInvitationRequest>,
) -> ApiResult<HttpResponse> {
    let mut errors = ValidationErrors::new();
    check_name(&mut errors, "display_name", &body.display_name);
    if body.invitation_token.len() > 512 {
        errors.add("invitation_token", "must be at most 512 characters");
    }
    errors.into_result()?;
    check_ip_budget(&state, format!("signup:ip:{}", client_ip(&req, &state))).await?;
    // An unknown, expired or spent token names no invitation: 404, like any
    // other identifier that leads nowhere.
    let invalid = || ApiError::NotFound("invitation (unknown, expired or already used)");
    let invited = accounts::find_invited(&state.db, &secrets::digest(body.invitation_token.trim()))
        .await?
        .filter(|u| u.invite_expires_at.is_some_and(|t| t > Utc::now()))
        .ok_or_else(invalid)?;
    let email = Email::parse(&invited.email).map_err(|_| invalid())?;
    password::check(&body.password, &email).map_err(|m| ApiError::field("password", m))?;
    let hash = pw::hash(body.password).await?;
    let user =
        accounts::claim_invited(&state.db, UserId::from_uuid(invited.id), hash, body.display_name.trim()).await?;
    let joined = accounts::memberships_of_user(&state.db, UserId::from_uuid(user.id))
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::Conflict("the invitation was withdrawn".into()))?;
    tracing::info!(user_id = %user.id, membership_id = %joined.membership.id, "invitation accepted");
    let tokens = issue_tokens(&state, UserId::from_uuid(user.id)).await?;
    Ok(HttpResponse::Created().json(SignupResponse {
        user: user_dto(&user),
        membership: membership_dto(&joined.membership, joined.farm_id)?,
        self_subject_id: None,
        tokens,
    }))
}

/// Signs in with email and password. Failed attempts are limited per
/// account and per client address; past the limit the answer is 429 with
/// `Retry-After`.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 401, response = InvalidCredentialsResponse),
        (status = 429, response = RateLimitedResponse),
    ))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    Json(body): Json<LoginRequest>,
) -> ApiResult<web::Json<TokenResponse>> {
    let mut errors = ValidationErrors::new();
    if body.email.is_empty() || body.email.chars().count() > 254 {
        errors.add("email", "must be 1 to 254 characters");
    }
    if body.password.chars().count() > password::MAX_CHARS {
        errors.add("password", "must be at most 1024 characters");
    }
    errors.into_result()?;
    let user = check_password(&req, &state, &body.email, body.password).await?;
    tracing::info!(user_id = %user.id, "login");
    let user = UserId::from_uuid(user.id);
    let tokens = issue_tokens(&state, user).await?;
    audit::record_for_user(&state, user, "auth.sign_in", audit::Outcome::Allowed, json!({})).await?;
    Ok(web::Json(tokens))
}

fn check_refresh_token(body: &RefreshRequest) -> ApiResult<()> {
    if body.refresh_token.is_empty() || body.refresh_token.len() > 512 {
        return Err(ApiError::field("refresh_token", "must be 1 to 512 characters"));
    }
    Ok(())
}

/// Exchanges a refresh token for a new access token and a new refresh
/// token. Each refresh token works once: presenting a used one again revokes
/// every token of that sign-in (it was copied).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair; the presented refresh token is spent.", body = TokenResponse),
        (status = 401, response = InvalidCredentialsResponse),
    ))]
pub async fn refresh(
    state: web::Data<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<web::Json<TokenResponse>> {
    check_refresh_token(&body)?;
    let next = secrets::generate(secrets::REFRESH_PREFIX)?;
    let expires =
        Utc::now() + Duration::seconds(i64::try_from(state.config.refresh_token_ttl_secs).unwrap_or(i64::MAX / 1000));
    match refresh_tokens::rotate(
        &state.db,
        &secrets::digest(body.refresh_token.trim()),
        secrets::digest(&next),
        expires,
    )
    .await?
    {
        refresh_tokens::Rotation::Rotated { user, .. } => Ok(web::Json(TokenResponse {
            access_token: state.jwt.issue(user)?,
            refresh_token: next,
            token_type: "Bearer".into(),
            expires_in: state.jwt.ttl_secs(),
        })),
        refresh_tokens::Rotation::Reused => {
            tracing::warn!("refresh token reuse detected; token family revoked");
            Err(ApiError::Unauthorized(
                "refresh token was already used; every token of this sign-in is now revoked",
            ))
        }
        refresh_tokens::Rotation::Invalid => Err(ApiError::Unauthorized("invalid, expired or revoked refresh token")),
    }
}

/// Signs out: revokes the refresh token and every token rotated from the
/// same sign-in. Answers 204 whether or not the token was valid.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Signed out.")))]
pub async fn logout(state: web::Data<AppState>, Json(body): Json<RefreshRequest>) -> ApiResult<HttpResponse> {
    check_refresh_token(&body)?;
    let hash = secrets::digest(body.refresh_token.trim());
    let user = refresh_tokens::live_owner_of(&state.db, &hash).await?;
    refresh_tokens::revoke_family_of(&state.db, &hash).await?;
    if let Some(user) = user {
        audit::record_for_user(&state, user, "auth.sign_out", audit::Outcome::Allowed, json!({})).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Checks an email and password as sign-in does, under the same budgets:
/// per client address, and failed attempts per account (429 with
/// `Retry-After` past either). The OAuth consent page signs people in with
/// it too, so the page is no way around the limits.
pub async fn check_password(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    email: &str,
    password: String,
) -> ApiResult<user::Model> {
    check_ip_budget(state, format!("login:ip:{}", client_ip(req, state))).await?;
    // A malformed address is just an account that does not exist: it costs
    // an attempt and a hash like any other.
    let parsed = Email::parse(email).ok();
    let account_key = format!("login:account:{}", email.trim().to_lowercase());
    let w = rate_limits::peek(&state.db, &account_key, window(state)).await?;
    if w.count >= i32::try_from(state.config.login_max_failures_per_account).unwrap_or(i32::MAX) {
        return Err(retry_after(&w));
    }
    let user = match &parsed {
        Some(email) => accounts::find_user_by_email(&state.db, email).await?,
        None => None,
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    if !pw::verify(password, stored).await? {
        rate_limits::hit(&state.db, &account_key, window(state)).await?;
        if let Some(user) = &user {
            // Off the request's path, so neither the answer nor its timing
            // tells whether the account exists.
            audit::record_for_user_later(
                state.clone().into_inner(),
                UserId::from_uuid(user.id),
                "auth.sign_in",
                audit::Outcome::Failed,
                json!({"reason": "invalid_credentials"}),
            );
        }
        return Err(ApiError::InvalidCredentials);
    }
    let user = user.ok_or(ApiError::InvalidCredentials)?;
    rate_limits::reset(&state.db, &account_key).await?;
    Ok(user)
}

/// Re-authentication for a dangerous operation (erasure): checks `password`
/// against the signed-in user's, under the same per-address and per-account
/// limits as sign-in, so it cannot be used to guess passwords faster.
pub async fn confirm_password(
    req: &HttpRequest,
    state: &AppState,
    user: &vitalfarm_storage::entity::user::Model,
    password: String,
) -> ApiResult<()> {
    if password.chars().count() > password::MAX_CHARS {
        return Err(ApiError::field("password", "must be at most 1024 characters"));
    }
    check_ip_budget(state, format!("login:ip:{}", client_ip(req, state))).await?;
    let account_key = format!("login:account:{}", user.email.trim().to_lowercase());
    let w = rate_limits::peek(&state.db, &account_key, window(state)).await?;
    if w.count >= i32::try_from(state.config.login_max_failures_per_account).unwrap_or(i32::MAX) {
        return Err(retry_after(&w));
    }
    if !pw::verify(password, user.password_hash.clone()).await? {
        rate_limits::hit(&state.db, &account_key, window(state)).await?;
        return Err(ApiError::InvalidCredentials);
    }
    rate_limits::reset(&state.db, &account_key).await?;
    Ok(())
}
