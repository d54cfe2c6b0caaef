//! Sign-up, sign-in, refresh and logout.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use vitalfarm_domain::{AppId, Email, GrantId, TokenFamilyId, UserId, ValidationErrors, password};
use vitalfarm_openapi::accounts::{
    AcceptInvitationRequest, LoginRequest, RefreshRequest, SignupRequest, SignupResponse, TokenResponse,
};
use vitalfarm_openapi::doc::{ConflictResponse, InvalidCredentialsResponse, NotFoundResponse, RateLimitedResponse};
use vitalfarm_openapi::oauth::OAuthTokenResponse;
use vitalfarm_storage::entity::user;
use vitalfarm_storage::repo::{accounts, members, rate_limits, refresh_tokens};

use super::RouteSet;
use super::me::user_dto;
use super::memberships::membership_dto;
use crate::error::{ApiError, ApiResult, AppError};
use crate::extract::Json;
use vitalfarm_app::audit;
use vitalfarm_app::auth::{password as pw, secrets};
use vitalfarm_app::state::AppState;

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
    (AppError::RateLimited {
        retry_after_secs: u64::try_from(secs).unwrap_or(1),
    })
    .into()
}

/// Counts a request against the per-address budget.
async fn check_ip_budget(state: &AppState, key: String) -> ApiResult<()> {
    let w = rate_limits::hit(&state.db, &key, window(state)).await?;
    if w.count > i32::try_from(state.config.login_max_attempts_per_ip).unwrap_or(i32::MAX) {
        return Err(retry_after(&w));
    }
    Ok(())
}

/// A fresh access token with its type and lifetime: what every token
/// response carries, the `/v1/auth` pair and `/oauth/token` alike. Building
/// both from it keeps the two from drifting apart.
pub(crate) struct BearerToken {
    access_token: String,
    expires_in: u64,
}

impl BearerToken {
    const TOKEN_TYPE: &'static str = "Bearer";

    /// An access token for a signed-in user.
    pub(crate) fn for_user(state: &AppState, user: UserId) -> anyhow::Result<Self> {
        Ok(Self {
            access_token: state.jwt.issue(user)?,
            expires_in: state.jwt.ttl_secs(),
        })
    }

    /// An access token for an OAuth app acting under `grant` with `scope`:
    /// `sub` is the user who approved it, or the app itself.
    pub(crate) fn for_app(
        state: &AppState,
        sub: uuid::Uuid,
        app: AppId,
        grant: GrantId,
        scope: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            access_token: state.jwt.issue_app(sub, app, grant, scope)?,
            expires_in: state.jwt.ttl_secs(),
        })
    }

    /// The `/v1/auth` response: the access token and its refresh token.
    pub(crate) fn with_refresh(self, refresh_token: String) -> TokenResponse {
        TokenResponse {
            access_token: self.access_token,
            refresh_token,
            token_type: Self::TOKEN_TYPE.into(),
            expires_in: self.expires_in,
        }
    }

    /// The `/oauth/token` response (RFC 6749 section 5.1).
    pub(crate) fn oauth(self, refresh_token: Option<String>, scope: String) -> OAuthTokenResponse {
        OAuthTokenResponse {
            access_token: self.access_token,
            token_type: Self::TOKEN_TYPE.into(),
            expires_in: self.expires_in,
            refresh_token,
            scope,
        }
    }
}

/// When a refresh token issued now expires.
fn refresh_expiry(state: &AppState) -> DateTime<Utc> {
    Utc::now() + Duration::seconds(i64::try_from(state.config.refresh_token_ttl_secs).unwrap_or(i64::MAX / 1000))
}

/// A new access token and a refresh token in a new family (a fresh
/// sign-in).
pub async fn issue_tokens(state: &AppState, user: UserId) -> ApiResult<TokenResponse> {
    let refresh = secrets::generate(secrets::REFRESH_PREFIX)?;
    refresh_tokens::issue(
        &state.db,
        user,
        TokenFamilyId::new(),
        secrets::digest(&refresh),
        refresh_expiry(state),
    )
    .await?;
    Ok(BearerToken::for_user(state, user)?.with_refresh(refresh))
}

fn check_name(errors: &mut ValidationErrors, field: &str, value: &str) {
    errors.check(field, vitalfarm_domain::validation::check_name(value, 200));
}

/// Creates an account: the user, a membership (individual or company) owned
/// by the user, its farm and, for an individual, the `self` subject. A
/// verification mail goes to the address; until its token is sent to
/// `POST /v1/auth/verify-email` the account can sign in but cannot join a
/// company or receive consent requests.
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
        return Err(AppError::field("email", "is invalid").into());
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
    super::account::send_verification(&state, &s.user).await?;
    let tokens = issue_tokens(&state, UserId::from_uuid(s.user.id)).await?;
    Ok(HttpResponse::Created().json(SignupResponse {
        user: user_dto(&s.user),
        membership: membership_dto(&s.membership, Some(s.farm.id))?,
        self_subject_id: s.subject.map(|s| s.id),
        tokens,
    }))
}

/// Completes the account a company invited (see
/// `POST /v1/memberships/{mid}/members`) with the token from the invitation
/// mail: sets the password and name, verifies the address (the token came
/// by mail to it) and signs the new member in. The token works once.
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
    let invalid = || AppError::NotFound("invitation (unknown, expired or already used)");
    let token_hash = secrets::digest(body.invitation_token.trim());
    // The token is either the one that created a placeholder account (and
    // joined it with status `invited`), or one mailed with a later
    // invitation to that still-unclaimed account.
    let (invited, pending) = match accounts::find_invited(&state.db, &token_hash)
        .await?
        .filter(|u| u.invite_expires_at.is_some_and(|t| t > Utc::now()))
    {
        Some(u) => (u, None),
        None => {
            let inv = members::invitation_by_token(&state.db, &token_hash)
                .await?
                .ok_or_else(invalid)?;
            let u = accounts::find_user(&state.db, UserId::from_uuid(inv.user_id))
                .await?
                .filter(|u| u.password_hash.is_none())
                .ok_or_else(invalid)?;
            (u, Some(inv.id))
        }
    };
    let email = Email::parse(&invited.email).map_err(|_| invalid())?;
    password::check(&body.password, &email).map_err(|m| AppError::field("password", m))?;
    let hash = pw::hash(body.password).await?;
    // Completing the account also verifies its address: the token only
    // ever travelled by mail to it.
    let user =
        accounts::claim_invited(&state.db, UserId::from_uuid(invited.id), hash, body.display_name.trim()).await?;
    let joined_id = match pending {
        Some(id) => Some(
            members::accept_invitation(&state.db, UserId::from_uuid(user.id), id)
                .await?
                .0,
        ),
        None => None,
    };
    let joined = accounts::memberships_of_user(&state.db, UserId::from_uuid(user.id))
        .await?
        .into_iter()
        .find(|m| joined_id.is_none_or(|id| id.as_uuid() == m.membership.id))
        .ok_or(AppError::Conflict("the invitation was withdrawn".into()))?;
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
        return Err(AppError::field("refresh_token", "must be 1 to 512 characters").into());
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
    match refresh_tokens::rotate(
        &state.db,
        &secrets::digest(body.refresh_token.trim()),
        secrets::digest(&next),
        refresh_expiry(&state),
    )
    .await?
    {
        refresh_tokens::Rotation::Rotated { user, .. } => {
            Ok(web::Json(BearerToken::for_user(&state, user)?.with_refresh(next)))
        }
        refresh_tokens::Rotation::Reused => {
            tracing::warn!("refresh token reuse detected; token family revoked");
            Err(
                AppError::Unauthorized("refresh token was already used; every token of this sign-in is now revoked")
                    .into(),
            )
        }
        refresh_tokens::Rotation::Invalid => {
            Err(AppError::Unauthorized("invalid, expired or revoked refresh token").into())
        }
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

/// How long a network an account signed in from counts as known: from a
/// known network the owner's correct password passes the account-wide
/// back-off that failures from elsewhere set off.
const KNOWN_NETWORK_DAYS: i64 = 90;

/// The client's network, the unit that per-address budgets count: an IPv4
/// address, or the /64 of an IPv6 address (one subscriber is routinely given
/// a whole /64, so its single addresses cost an attacker nothing).
pub fn client_network(req: &HttpRequest, state: &AppState) -> String {
    let ip = client_ip(req, state);
    let bare = ip.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip,
    }
}

fn known_network_key(user: uuid::Uuid, network: &str) -> String {
    format!("{}login:{user}:{network}", rate_limits::REMEMBERED_PREFIX)
}

/// Checks a password under the sign-in limits, counting before verifying:
/// each attempt takes its place in the counters first (one atomic statement
/// each), so concurrent guesses cannot all be checked against a count that
/// none of them has raised yet. A correct password gives its places back:
/// only failures count.
///
/// - per client network: failures from one network, any account;
/// - per (account, network): failures of one account from one network,
///   the tight limit that stops guessing;
/// - per account: failures from everywhere, a looser back-off that stops a
///   guesser spread over many networks. It does not apply to a network the
///   account signed in from before, so that nobody can lock the owner out
///   by failing on purpose.
async fn verify_limited(
    req: &HttpRequest,
    state: &AppState,
    account: &str,
    user: Option<&user::Model>,
    password: String,
) -> ApiResult<bool> {
    let network = client_network(req, state);
    let known = match user {
        Some(u) => {
            rate_limits::seen_within(
                &state.db,
                &known_network_key(u.id, &network),
                Duration::days(KNOWN_NETWORK_DAYS),
            )
            .await?
        }
        None => false,
    };
    let limit = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    let pair_key = format!("login:account-net:{account}:{network}");
    let budgets = [
        (
            format!("login:ip:{network}"),
            limit(state.config.login_max_attempts_per_ip),
        ),
        (pair_key.clone(), limit(state.config.login_max_failures_per_account)),
        (
            format!("login:account:{account}"),
            if known {
                i32::MAX
            } else {
                limit(state.config.login_max_failures_account_wide)
            },
        ),
    ];
    let mut counted: Vec<&str> = Vec::with_capacity(budgets.len());
    for (key, max) in &budgets {
        let w = rate_limits::hit(&state.db, key, window(state)).await?;
        counted.push(key);
        if w.count > *max {
            // Refused unchecked: not a failure, so it takes nothing.
            for k in &counted {
                rate_limits::undo(&state.db, k).await?;
            }
            return Err(retry_after(&w));
        }
    }
    let stored = user.and_then(|u| u.password_hash.clone());
    if !pw::verify(password, stored).await? {
        return Ok(false);
    }
    for k in &counted {
        rate_limits::undo(&state.db, k).await?;
    }
    // The owner proved themselves from this network: its earlier failures
    // were theirs (or no longer matter), and it is now a known network.
    rate_limits::reset(&state.db, &pair_key).await?;
    if let Some(u) = user {
        rate_limits::remember(&state.db, &known_network_key(u.id, &network)).await?;
    }
    Ok(true)
}

/// Checks an email and password as sign-in does, under the same budgets
/// (see [`verify_limited`]; 429 with `Retry-After` past any). The OAuth
/// consent page signs people in with it too, so the page is no way around
/// the limits.
pub async fn check_password(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    email: &str,
    password: String,
) -> ApiResult<user::Model> {
    // A malformed address is just an account that does not exist: it costs
    // an attempt and a hash like any other.
    let parsed = Email::parse(email).ok();
    let account = email.trim().to_lowercase();
    let user = match &parsed {
        Some(email) => accounts::find_user_by_email(&state.db, email).await?,
        None => None,
    };
    if !verify_limited(req, state, &account, user.as_ref(), password).await? {
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
        return Err(AppError::InvalidCredentials.into());
    }
    user.ok_or(AppError::InvalidCredentials.into())
}

/// Re-authentication for a dangerous operation (erasure): checks `password`
/// against the signed-in user's, under the same limits as sign-in, so it
/// cannot be used to guess passwords faster.
pub async fn confirm_password(
    req: &HttpRequest,
    state: &AppState,
    user: &vitalfarm_storage::entity::user::Model,
    password: String,
) -> ApiResult<()> {
    if password.chars().count() > password::MAX_CHARS {
        return Err(AppError::field("password", "must be at most 1024 characters").into());
    }
    let account = user.email.trim().to_lowercase();
    if !verify_limited(req, state, &account, Some(user), password).await? {
        return Err(AppError::InvalidCredentials.into());
    }
    Ok(())
}
