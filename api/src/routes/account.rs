//! Owning the address and the password: email verification, password reset
//! and change, and the invitations waiting for the signed-in user.
//!
//! An account proves its address by the single-use token mailed to it.
//! Until then it can sign in, but it cannot join a company (accept an
//! invitation) nor see consent requests addressed to it: whoever signs up
//! with someone else's address first gains nothing from it.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use serde_json::json;
use vitalfarm_domain::{Email, MembershipKind, UserId, password};
use vitalfarm_openapi::accounts::{
    ChangePasswordRequest, Invitation, InvitationList, MembershipWithRole, PasswordResetConfirmRequest,
    PasswordResetRequest, TokenResponse, User, VerifyEmailRequest,
};
use vitalfarm_openapi::doc::{
    ConflictResponse, ForbiddenResponse, InvalidCredentialsResponse, NotFoundResponse, RateLimitedResponse,
};
use vitalfarm_storage::StorageError;
use vitalfarm_storage::entity::user;
use vitalfarm_storage::repo::email_tokens::{self, Purpose};
use vitalfarm_storage::repo::{accounts, members, rate_limits, refresh_tokens};

use super::RouteSet;
use super::me::user_dto;
use crate::error::{ApiResult, AppError};
use crate::extract::path::PathInvitationId;
use crate::extract::{Auth, Json};
use vitalfarm_app::audit::{self, Event};
use vitalfarm_app::auth::{password as pw, secrets};
use vitalfarm_app::mail::messages;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/auth/verify-email", verify_email);
    r.add(Method::POST, "/v1/auth/resend-verification", resend_verification);
    r.add(Method::POST, "/v1/auth/password-reset", request_password_reset);
    r.add(Method::POST, "/v1/auth/password-reset/confirm", confirm_password_reset);
    r.add(Method::POST, "/v1/me/password", change_password);
    r.add(Method::GET, "/v1/me/invitations", list_invitations);
    r.add(Method::POST, "/v1/me/invitations/{id}/accept", accept_invitation);
    r.add(Method::POST, "/v1/me/invitations/{id}/decline", decline_invitation);
}

/// Mails sent to one address per hour, at most: enough to retry, too few
/// to flood someone's inbox through the service.
const MAILS_PER_ADDRESS_PER_HOUR: i32 = 5;

fn secs(v: u64) -> Duration {
    Duration::seconds(i64::try_from(v).unwrap_or(i64::MAX / 1000))
}

/// Counts one mail to `email` of `kind`; false once the hourly budget is
/// spent.
async fn mail_budget(state: &AppState, kind: &str, email: &str) -> ApiResult<bool> {
    let w = rate_limits::hit(&state.db, &format!("mail:{kind}:{email}"), Duration::hours(1)).await?;
    Ok(w.count <= MAILS_PER_ADDRESS_PER_HOUR)
}

/// Issues a verification token for `user` and mails it (in the background).
pub async fn send_verification(state: &AppState, user: &user::Model) -> ApiResult<()> {
    let token = secrets::generate(secrets::EMAIL_VERIFY_PREFIX)?;
    let ttl = state.config.email_verification_ttl_secs;
    email_tokens::issue(
        &state.db,
        UserId::from_uuid(user.id),
        Purpose::VerifyEmail,
        &user.email,
        secrets::digest(&token),
        Utc::now() + secs(ttl),
    )
    .await?;
    state.mail.send_later(messages::verify_email(
        &state.config.issuer(),
        &user.email,
        &token,
        ttl.div_ceil(3600),
    ));
    Ok(())
}

/// The signed-in user's account, which must have a verified address.
pub async fn verified_user(state: &AppState, auth: &Auth) -> ApiResult<user::Model> {
    let id = auth.user()?;
    let user = accounts::find_user(&state.db, id)
        .await?
        .ok_or(AppError::Unauthorized("the account of this token no longer exists"))?;
    if user.email_verified_at.is_none() {
        return Err(AppError::Forbidden(
            "confirm your email address first (POST /v1/auth/verify-email with the mailed token; \
             POST /v1/auth/resend-verification sends a new one)"
                .into(),
        )
        .into());
    }
    Ok(user)
}

fn check_token(field: &str, token: &str) -> ApiResult<()> {
    if token.trim().is_empty() || token.len() > 512 {
        return Err(AppError::field(field, "must be 1 to 512 characters").into());
    }
    Ok(())
}

/// Confirms the address with the token from the verification mail. The
/// token works once and only for the address it was mailed to.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "The address is verified.", body = User),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn verify_email(
    state: web::Data<AppState>,
    Json(body): Json<VerifyEmailRequest>,
) -> ApiResult<web::Json<User>> {
    check_token("token", &body.token)?;
    let invalid = || AppError::NotFound("verification token (unknown, expired or already used)");
    let (user_id, email) = email_tokens::consume(&state.db, Purpose::VerifyEmail, &secrets::digest(body.token.trim()))
        .await?
        .ok_or_else(invalid)?;
    if !accounts::mark_verified(&state.db, user_id, &email).await? {
        // The account's address changed since the mail went out: the
        // token proves nothing about the current one.
        return Err(invalid().into());
    }
    tracing::info!(user_id = %user_id, "email verified");
    let user = accounts::find_user(&state.db, user_id).await?.ok_or_else(invalid)?;
    Ok(web::Json(user_dto(&user)))
}

/// Sends a new verification mail to the signed-in user's address (at most
/// a few an hour).
#[utoipa::path(post, path = "/v1/auth/resend-verification", tag = "auth",
    security(("bearer_jwt" = [])),
    responses(
        (status = 202, description = "A new verification mail is on its way."),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = ConflictResponse),
        (status = 429, response = RateLimitedResponse),
    ))]
pub async fn resend_verification(state: web::Data<AppState>, auth: Auth) -> ApiResult<HttpResponse> {
    let id = auth.user()?;
    let user = accounts::find_user(&state.db, id)
        .await?
        .ok_or(AppError::Unauthorized("the account of this token no longer exists"))?;
    if user.email_verified_at.is_some() {
        return Err(AppError::Conflict("the address is already verified".into()).into());
    }
    if !mail_budget(&state, "verify", &user.email).await? {
        return Err((AppError::RateLimited { retry_after_secs: 3600 }).into());
    }
    send_verification(&state, &user).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Mails a password-reset token to the address, if an account has it. The
/// answer is the same 202 whether or not it does, and takes the same time
/// (the mail goes out in the background).
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "If an account has this address, a reset mail is on its way."),
        (status = 429, response = RateLimitedResponse),
    ))]
pub async fn request_password_reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    Json(body): Json<PasswordResetRequest>,
) -> ApiResult<HttpResponse> {
    if body.email.is_empty() || body.email.chars().count() > 254 {
        return Err(AppError::field("email", "must be 1 to 254 characters").into());
    }
    // Per client address, as sign-in: a budget that says nothing about the
    // account.
    let ip_key = format!("reset:ip:{}", super::auth::client_ip(&req, &state));
    let w = rate_limits::hit(&state.db, &ip_key, secs(state.config.login_window_secs)).await?;
    if w.count > i32::try_from(state.config.login_max_attempts_per_ip).unwrap_or(i32::MAX) {
        let secs = (w.resets_at - Utc::now()).num_seconds().max(1);
        return Err((AppError::RateLimited {
            retry_after_secs: u64::try_from(secs).unwrap_or(1),
        })
        .into());
    }
    let accepted = Ok(HttpResponse::Accepted().finish());
    let Ok(email) = Email::parse(&body.email) else {
        return accepted;
    };
    let Some(user) = accounts::find_user_by_email(&state.db, &email).await? else {
        return accepted;
    };
    // An account that was only invited has no password to reset: it is
    // completed with its invitation token. Past the per-address budget the
    // mail is silently skipped, so the answer stays the same.
    if user.password_hash.is_none() || !mail_budget(&state, "reset", &user.email).await? {
        return accepted;
    }
    let token = secrets::generate(secrets::PASSWORD_RESET_PREFIX)?;
    let ttl = state.config.password_reset_ttl_secs;
    email_tokens::issue(
        &state.db,
        UserId::from_uuid(user.id),
        Purpose::PasswordReset,
        &user.email,
        secrets::digest(&token),
        Utc::now() + secs(ttl),
    )
    .await?;
    state.mail.send_later(messages::password_reset(
        &state.config.issuer(),
        &user.email,
        &token,
        ttl.div_ceil(60),
    ));
    accepted
}

/// Sets a new password with the token from the reset mail. Every session
/// and refresh token of the account ends; sign in again.
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirmRequest,
    responses(
        (status = 204, description = "The password is changed; every session was signed out."),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn confirm_password_reset(
    state: web::Data<AppState>,
    Json(body): Json<PasswordResetConfirmRequest>,
) -> ApiResult<HttpResponse> {
    check_token("token", &body.token)?;
    let invalid = || AppError::NotFound("reset token (unknown, expired or already used)");
    let hash = secrets::digest(body.token.trim());
    // The new password is checked before the token is spent, so a refused
    // password does not cost the user their mail.
    let (user_id, email) = email_tokens::peek(&state.db, Purpose::PasswordReset, &hash)
        .await?
        .ok_or_else(invalid)?;
    let parsed = Email::parse(&email).map_err(|_| invalid())?;
    password::check(&body.new_password, &parsed).map_err(|m| AppError::field("new_password", m))?;
    let new_hash = pw::hash(body.new_password).await?;
    email_tokens::consume(&state.db, Purpose::PasswordReset, &hash)
        .await?
        .ok_or_else(invalid)?;
    let user = accounts::find_user(&state.db, user_id)
        .await?
        .filter(|u| u.email == email)
        .ok_or_else(invalid)?;
    accounts::set_password(&state.db, user_id, new_hash)
        .await
        .map_err(|e| match e {
            StorageError::NotFound => invalid(),
            other => other.into(),
        })?;
    email_tokens::spend_all(&state.db, user_id, Purpose::PasswordReset).await?;
    let ended = refresh_tokens::revoke_all_of_user(&state.db, user_id).await?;
    // The mail reached the address, which proves it as well as a
    // verification mail would.
    accounts::mark_verified(&state.db, user_id, &user.email).await?;
    tracing::info!(user_id = %user_id, sessions_ended = ended, "password reset");
    audit::record_for_user(
        &state,
        user_id,
        "auth.password_reset",
        audit::Outcome::Allowed,
        json!({"sessions_ended": ended}),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the signed-in user's password; needs the current one (under
/// the sign-in limits). Every refresh token of the account is revoked and
/// the answer carries a fresh pair for this session.
#[utoipa::path(post, path = "/v1/me/password", tag = "me", request_body = ChangePasswordRequest,
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "Changed; every other session was signed out. New tokens for this one.", body = TokenResponse),
        (status = 401, response = InvalidCredentialsResponse),
        (status = 403, response = ForbiddenResponse),
        (status = 429, response = RateLimitedResponse),
    ))]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    Json(body): Json<ChangePasswordRequest>,
) -> ApiResult<web::Json<TokenResponse>> {
    let id = auth.user()?;
    let user = accounts::find_user(&state.db, id)
        .await?
        .ok_or(AppError::Unauthorized("the account of this token no longer exists"))?;
    let email = Email::parse(&user.email).map_err(|_| AppError::Internal(anyhow::anyhow!("stored email invalid")))?;
    password::check(&body.new_password, &email).map_err(|m| AppError::field("new_password", m))?;
    super::auth::confirm_password(&req, &state, &user, body.current_password).await?;
    let new_hash = pw::hash(body.new_password).await?;
    accounts::set_password(&state.db, id, new_hash).await?;
    let ended = refresh_tokens::revoke_all_of_user(&state.db, id).await?;
    email_tokens::spend_all(&state.db, id, Purpose::PasswordReset).await?;
    tracing::info!(user_id = %id, sessions_ended = ended, "password changed");
    audit::record_for_user(
        &state,
        id,
        "auth.password_changed",
        audit::Outcome::Allowed,
        json!({"sessions_ended": ended}),
    )
    .await?;
    Ok(web::Json(super::auth::issue_tokens(&state, id).await?))
}

fn invitation_dto(p: &members::PendingInvitation) -> Option<Invitation> {
    Some(Invitation {
        id: p.invitation.id,
        membership_id: p.membership.id,
        membership_name: p.membership.name.clone(),
        role: vitalfarm_domain::Role::parse(&p.invitation.role)?,
        invited_at: p.invitation.created_at,
        expires_at: p.invitation.expires_at,
    })
}

/// The invitations waiting for the signed-in user (a verified address is
/// needed: an invitation is for whoever owns the address).
#[utoipa::path(get, path = "/v1/me/invitations", tag = "me",
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "Pending invitations, oldest first.", body = InvitationList),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn list_invitations(state: web::Data<AppState>, auth: Auth) -> ApiResult<web::Json<InvitationList>> {
    let user = verified_user(&state, &auth).await?;
    let pending = members::invitations_of_user(&state.db, UserId::from_uuid(user.id)).await?;
    Ok(web::Json(InvitationList {
        items: pending.iter().filter_map(invitation_dto).collect(),
    }))
}

/// Accepts an invitation: the signed-in user (with a verified address)
/// joins the company with the invitation's role.
#[utoipa::path(post, path = "/v1/me/invitations/{id}/accept", tag = "me",
    params(("id" = Uuid, Path, description = "Invitation id")),
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "Joined; the membership with the caller's role.", body = MembershipWithRole),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn accept_invitation(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathInvitationId,
) -> ApiResult<web::Json<MembershipWithRole>> {
    let user = verified_user(&state, &auth).await?;
    let user_id = UserId::from_uuid(user.id);
    let (mid, role) = members::accept_invitation(&state.db, user_id, id.0)
        .await
        .map_err(|e| match e {
            StorageError::NotFound => AppError::NotFound("invitation"),
            other => other.into(),
        })?;
    audit::record(
        &state,
        Event::by(&auth.0, mid, "member.joined", format!("member/{}", user.id))
            .with_detail(json!({"role": role.as_str()})),
    )
    .await?;
    let (membership, farm) = accounts::find_membership(&state.db, mid)
        .await?
        .ok_or(AppError::NotFound("membership"))?;
    tracing::info!(user_id = %user.id, membership_id = %mid, "invitation accepted");
    Ok(web::Json(MembershipWithRole {
        id: membership.id,
        kind: MembershipKind::parse(&membership.kind).unwrap_or(MembershipKind::Company),
        name: membership.name,
        farm_id: farm.map(|f| f.id),
        role,
        created_at: membership.created_at,
    }))
}

/// Declines an invitation; it is gone.
#[utoipa::path(post, path = "/v1/me/invitations/{id}/decline", tag = "me",
    params(("id" = Uuid, Path, description = "Invitation id")),
    security(("bearer_jwt" = [])),
    responses(
        (status = 204, description = "Declined."),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn decline_invitation(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathInvitationId,
) -> ApiResult<HttpResponse> {
    let user = verified_user(&state, &auth).await?;
    let mid = members::decline_invitation(&state.db, UserId::from_uuid(user.id), id.0)
        .await
        .map_err(|e| match e {
            StorageError::NotFound => AppError::NotFound("invitation"),
            other => other.into(),
        })?;
    audit::record(
        &state,
        Event::by(&auth.0, mid, "invitation.declined", format!("member/{}", user.id)),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
