//! The OAuth2 authorization server for third-party apps: the sign-in and
//! consent page (`/oauth/authorize`), the token endpoint (authorization
//! code with PKCE S256, rotating refresh tokens, client_credentials), token
//! revocation (RFC 7009) and the server metadata (RFC 8414).
//!
//! The token and revocation endpoints speak RFC 6749's error format
//! (`{error, error_description}`), not problem documents: that is what
//! OAuth client libraries parse. The authorize endpoints answer a browser
//! with HTML; a client or redirect URI that does not check out gets an
//! error page and never a redirect, so the endpoint cannot be used to
//! bounce people to arbitrary sites.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use vitalfarm_domain::oauth::{self as rules, Scope, Scopes};
use vitalfarm_domain::{AppId, GrantId, MembershipId, UserId};
use vitalfarm_openapi::oauth::{
    AuthorizationServerMetadata, AuthorizeForm, AuthorizeQuery, ClientType, OAuthError, OAuthTokenResponse,
    RevokeRequest, TokenRequest,
};
use vitalfarm_storage::entity::oauth_app;
use vitalfarm_storage::repo::accounts;
use vitalfarm_storage::repo::oauth::{self as repo, CodeCheck, Exchange, NewRefresh};

use super::RouteSet;
use super::apps::redirect_uris;
use super::auth::BearerToken;
use crate::error::{ApiError, ApiResult, AppError};
use vitalfarm_app::audit;
use vitalfarm_app::auth::secrets;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/oauth/authorize", authorize_page);
    r.add(Method::POST, "/oauth/authorize", authorize_submit);
    r.add(Method::POST, "/oauth/token", token);
    r.add(Method::POST, "/oauth/revoke", revoke);
    r.add(Method::GET, "/.well-known/oauth-authorization-server", metadata);
}

/// Authorization codes live this long: long enough for one redirect and
/// one back-channel request.
const CODE_TTL_SECS: i64 = 60;
/// How long a consent page may stay open before its form is refused.
const CONSENT_TTL_SECS: i64 = 600;
/// Refresh tokens of apps last this long unless rotated or revoked.
const APP_REFRESH_TTL_DAYS: i64 = 30;
const CONSENT_COOKIE: &str = "vf_oauth_consent";
const FORM: &str = "application/x-www-form-urlencoded";
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1d2430}h1{font-size:1.4rem}ul{padding-left:1.2rem}li{margin:.3rem 0}label{display:block;margin:.8rem 0 .2rem}input[type=email],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}.actions{margin-top:1.2rem;display:flex;gap:.8rem}button{padding:.5rem 1.2rem}.error{color:#a4161a}.muted{color:#5a6372}";

// ---------------------------------------------------------------------------
// Metadata

/// Where clients reach this service (see [`super::public_base`]).
fn base_url(req: &HttpRequest, state: &AppState) -> String {
    super::public_base(req, state)
}

/// Authorization server metadata (RFC 8414): endpoints, scopes, grant
/// types, client authentication methods and PKCE methods.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth",
    responses((status = 200, description = "The metadata document.", body = AuthorizationServerMetadata)))]
pub async fn metadata(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let base = base_url(&req, &state);
    let auth_methods = vec![
        "client_secret_basic".to_owned(),
        "client_secret_post".to_owned(),
        "none".to_owned(),
    ];
    HttpResponse::Ok().json(AuthorizationServerMetadata {
        // The issuer is what access tokens carry in `iss`.
        issuer: state.config.issuer(),
        authorization_endpoint: format!("{base}/oauth/authorize"),
        token_endpoint: format!("{base}/oauth/token"),
        revocation_endpoint: format!("{base}/oauth/revoke"),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        scopes_supported: Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect(),
        response_types_supported: vec!["code".to_owned()],
        grant_types_supported: vec![
            "authorization_code".to_owned(),
            "refresh_token".to_owned(),
            "client_credentials".to_owned(),
        ],
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods,
        code_challenge_methods_supported: vec![rules::PKCE_METHOD.to_owned()],
        service_documentation: format!("{base}/docs"),
    })
}

// ---------------------------------------------------------------------------
// The authorization request and the consent page

/// An authorization request that checked out.
struct Checked {
    app: oauth_app::Model,
    owner: String,
    redirect_uri: String,
    scopes: Scopes,
    state: Option<String>,
    challenge: String,
}

enum Refusal {
    /// The client or redirect URI cannot be trusted: tell the person, do
    /// not redirect.
    Page(StatusCode, String),
    /// Anything else goes back to the app (RFC 6749 section 4.1.2.1).
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

async fn check_request(state: &AppState, q: &AuthorizeQuery) -> ApiResult<Result<Checked, Refusal>> {
    let unknown = || {
        Refusal::Page(
            StatusCode::BAD_REQUEST,
            "The app is not registered with vitalfarm.".into(),
        )
    };
    let Some(app_id) = q.client_id.as_deref().and_then(|c| c.parse::<AppId>().ok()) else {
        return Ok(Err(unknown()));
    };
    let Some(app) = repo::find_client(&state.db, app_id).await? else {
        return Ok(Err(unknown()));
    };
    let Some(redirect_uri) = q
        .redirect_uri
        .clone()
        .filter(|uri| redirect_uris(&app).iter().any(|r| r == uri))
    else {
        return Ok(Err(Refusal::Page(
            StatusCode::BAD_REQUEST,
            "The app sent you here with a return address it did not register, so vitalfarm will not send you back to it.".into(),
        )));
    };
    let app_state = q.state.clone();
    let refuse = |error, description: &str| {
        Ok(Err(Refusal::Redirect {
            redirect_uri: redirect_uri.clone(),
            state: app_state.clone(),
            error,
            description: description.to_owned(),
        }))
    };
    if q.response_type.as_deref() != Some("code") {
        return refuse("unsupported_response_type", "response_type must be code");
    }
    if q.state.as_ref().is_some_and(|s| s.len() > 1024) {
        return refuse("invalid_request", "state must be at most 1024 characters");
    }
    let Some(challenge) = q.code_challenge.clone() else {
        return refuse("invalid_request", "code_challenge is required (PKCE with S256)");
    };
    if q.code_challenge_method.as_deref() != Some(rules::PKCE_METHOD) {
        return refuse(
            "invalid_request",
            "code_challenge_method must be S256; plain is not supported",
        );
    }
    if let Err(message) = rules::check_code_challenge(&challenge) {
        return refuse("invalid_request", &format!("code_challenge {message}"));
    }
    let registered = Scopes::parse(&app.scopes).unwrap_or_default();
    let scopes = match q.scope.as_deref() {
        None => registered.clone(),
        Some(s) => match Scopes::parse(s) {
            Ok(scopes) => scopes,
            Err(message) => return refuse("invalid_scope", &message),
        },
    };
    if scopes.is_empty() || !scopes.is_subset(&registered) {
        return refuse("invalid_scope", "the scopes must be among those the app registered");
    }
    let owner = accounts::find_membership(&state.db, MembershipId::from_uuid(app.membership_id))
        .await?
        .map(|(m, _)| m.name)
        .unwrap_or_default();
    Ok(Ok(Checked {
        app,
        owner,
        redirect_uri,
        scopes,
        state: q.state.clone(),
        challenge,
    }))
}

/// Binds a consent page's request token to what it asks for.
fn params_digest(c: &Checked) -> String {
    let fields = [
        c.app.id.to_string(),
        c.redirect_uri.clone(),
        c.scopes.to_string(),
        c.state.clone().unwrap_or_default(),
        c.challenge.clone(),
    ];
    hex::encode(Sha256::digest(
        serde_json::to_string(&fields).unwrap_or_default().as_bytes(),
    ))
}

fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", query.finish())
}

fn redirect(status: StatusCode, location: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

fn refusal_response(refusal: Refusal, status_for_redirect: StatusCode) -> HttpResponse {
    match refusal {
        Refusal::Page(status, message) => error_page(status, &message),
        Refusal::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => {
            let mut params = vec![("error", error), ("error_description", description.as_str())];
            if let Some(state) = &state {
                params.push(("state", state));
            }
            redirect(status_for_redirect, with_params(&redirect_uri, &params))
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The scheme and authority of a (validated) redirect URI.
fn origin_of(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split(['/', '?']).next().unwrap_or("")),
        None => String::new(),
    }
}

/// A page with no script and no external asset; it may not be framed
/// (clickjacking a consent button) and its form may post only here, and be
/// redirected only to the app.
fn html(status: StatusCode, body: String, form_target: Option<&str>) -> HttpResponse {
    let style_hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let form_action = match form_target {
        Some(origin) => format!("form-action 'self' {origin}"),
        None => "form-action 'none'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{style_hash}'; {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>vitalfarm</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    );
    let mut res = HttpResponseBuilder::new(status);
    res.content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    res.body(page)
}

fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    html(
        status,
        format!(
            "<h1>This sign-in cannot continue</h1><p class=\"error\">{}</p><p class=\"muted\">Close this page and start again from the app.</p>",
            escape(message)
        ),
        None,
    )
}

/// The browser-binding cookie: the one the browser already holds, or a new
/// one.
fn consent_cookie(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == CONSENT_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| v.starts_with(secrets::CONSENT_COOKIE_PREFIX) && v.len() <= 128)
}

fn consent_page(
    state: &AppState,
    c: &Checked,
    cookie: &str,
    status: StatusCode,
    message: Option<&str>,
) -> ApiResult<HttpResponse> {
    let request_token = state
        .jwt
        .issue_consent(params_digest(c), secrets::digest(cookie), CONSENT_TTL_SECS)?;
    let hidden = [
        ("response_type", "code".to_owned()),
        ("client_id", c.app.id.to_string()),
        ("redirect_uri", c.redirect_uri.clone()),
        ("scope", c.scopes.to_string()),
        ("state", c.state.clone().unwrap_or_default()),
        ("code_challenge", c.challenge.clone()),
        ("code_challenge_method", rules::PKCE_METHOD.to_owned()),
        ("request_token", request_token),
    ];
    let mut body = format!(
        "<h1>{} wants to use your vitalfarm account</h1><p class=\"muted\">An app registered by {}. It will be able to:</p><ul>",
        escape(&c.app.name),
        escape(&c.owner)
    );
    for scope in c.scopes.iter() {
        body.push_str(&format!(
            "<li>{} <span class=\"muted\">({})</span></li>",
            escape(scope.describe()),
            scope.as_str()
        ));
    }
    body.push_str("</ul><form method=\"post\" action=\"/oauth/authorize\">");
    for (name, value) in hidden {
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape(&value)
        ));
    }
    if let Some(message) = message {
        body.push_str(&format!("<p class=\"error\">{}</p>", escape(message)));
    }
    body.push_str(
        "<label for=\"email\">Email</label><input id=\"email\" type=\"email\" name=\"email\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label><input id=\"password\" type=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <div class=\"actions\"><button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" formnovalidate>Deny</button></div></form>",
    );
    body.push_str(&format!(
        "<p class=\"muted\">After you decide, you go back to {}.</p>",
        escape(&origin_of(&c.redirect_uri))
    ));
    let mut res = html(status, body, Some(&origin_of(&c.redirect_uri)));
    let secure = if state.config.issuer().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let set_cookie = format!(
        "{CONSENT_COOKIE}={cookie}; Path=/oauth/authorize; Max-Age={CONSENT_TTL_SECS}; HttpOnly; SameSite=Strict{secure}"
    );
    if let Ok(v) = HeaderValue::from_str(&set_cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// Starts an authorization (authorization code with PKCE S256): shows the
/// person the app, its owner and what it asks for, with a sign-in form and
/// Approve / Deny. An unknown client or an unregistered redirect URI gets an
/// error page; other errors go back to the redirect URI (`error`, `state`).
#[utoipa::path(get, path = "/oauth/authorize", tag = "oauth",
    params(AuthorizeQuery),
    responses(
        (status = 200, description = "The sign-in and consent page.", content_type = "text/html"),
        (status = 302, description = "Back to the app with `error` and `state` (a bad request from a known client and redirect URI)."),
        (status = 400, description = "An error page: unknown client or unregistered redirect URI.", content_type = "text/html"),
    ))]
pub async fn authorize_page(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let Ok(q) = serde_urlencoded::from_str::<AuthorizeQuery>(req.query_string()) else {
        return Ok(error_page(StatusCode::BAD_REQUEST, "The request is malformed."));
    };
    let checked = match check_request(&state, &q).await? {
        Ok(c) => c,
        Err(refusal) => return Ok(refusal_response(refusal, StatusCode::FOUND)),
    };
    let cookie = match consent_cookie(&req) {
        Some(c) => c,
        None => secrets::generate(secrets::CONSENT_COOKIE_PREFIX)?,
    };
    consent_page(&state, &checked, &cookie, StatusCode::OK, None)
}

/// The consent form's target: checks the request token the page carried
/// (signed, ten minutes, bound to these parameters and to this browser's
/// cookie), then the email and password exactly as sign-in does (same rate
/// limits). Approve redirects to the app with `code` and `state`; Deny with
/// `error=access_denied`.
#[utoipa::path(post, path = "/oauth/authorize", tag = "oauth",
    request_body(content = AuthorizeForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Back to the app: `code` and `state`, or `error=access_denied`."),
        (status = 400, description = "An error page: the form expired, was not opened in this browser, or names an unknown client or redirect URI.", content_type = "text/html"),
        (status = 401, description = "The consent page again: wrong email or password.", content_type = "text/html"),
        (status = 429, description = "The consent page again: too many attempts.", content_type = "text/html"),
    ))]
pub async fn authorize_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let form = match content_type_is_form(&req)
        .then(|| serde_urlencoded::from_bytes::<AuthorizeForm>(&body).ok())
        .flatten()
    {
        Some(f) => f,
        None => return Ok(error_page(StatusCode::BAD_REQUEST, "The form is malformed.")),
    };
    let q = AuthorizeQuery {
        response_type: form.response_type.clone(),
        client_id: form.client_id.clone(),
        redirect_uri: form.redirect_uri.clone(),
        scope: form.scope.clone(),
        state: form.state.clone().filter(|s| !s.is_empty()),
        code_challenge: form.code_challenge.clone(),
        code_challenge_method: form.code_challenge_method.clone(),
    };
    let checked = match check_request(&state, &q).await? {
        Ok(c) => c,
        Err(refusal) => return Ok(refusal_response(refusal, StatusCode::SEE_OTHER)),
    };
    let cookie = consent_cookie(&req);
    let genuine = form
        .request_token
        .as_deref()
        .and_then(|t| state.jwt.verify_consent(t))
        .zip(cookie.as_deref())
        .is_some_and(|(claims, cookie)| {
            secrets::equal(&claims.params, &params_digest(&checked))
                && secrets::equal(&claims.cookie, &secrets::digest(cookie))
        });
    let Some(cookie) = cookie.filter(|_| genuine) else {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "This form expired or was not opened in this browser.",
        ));
    };
    let back = |params: &[(&str, &str)]| {
        let mut params = params.to_vec();
        if let Some(s) = &checked.state {
            params.push(("state", s));
        }
        redirect(StatusCode::SEE_OTHER, with_params(&checked.redirect_uri, &params))
    };
    match form.decision.as_deref() {
        Some("approve") => {}
        Some("deny") => {
            tracing::info!(app_id = %checked.app.id, "oauth authorization denied");
            return Ok(back(&[
                ("error", "access_denied"),
                ("error_description", "the person denied the request"),
            ]));
        }
        _ => {
            return consent_page(
                &state,
                &checked,
                &cookie,
                StatusCode::BAD_REQUEST,
                Some("Choose Approve or Deny."),
            );
        }
    }
    let email = form.email.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    if email.is_empty() || email.chars().count() > 254 || password.chars().count() > 1024 {
        return consent_page(
            &state,
            &checked,
            &cookie,
            StatusCode::UNAUTHORIZED,
            Some("Wrong email or password."),
        );
    }
    let user = match super::auth::check_password(&req, &state, &email, password).await {
        Ok(user) => user,
        Err(ApiError(AppError::InvalidCredentials)) => {
            return consent_page(
                &state,
                &checked,
                &cookie,
                StatusCode::UNAUTHORIZED,
                Some("Wrong email or password."),
            );
        }
        Err(ApiError(AppError::RateLimited { retry_after_secs })) => {
            let mut res = consent_page(
                &state,
                &checked,
                &cookie,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!("Too many attempts; try again in {retry_after_secs} seconds.")),
            )?;
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return Ok(res);
        }
        Err(other) => return Err(other),
    };
    let code = secrets::generate(secrets::AUTH_CODE_PREFIX)?;
    repo::create_code(
        &state.db,
        repo::NewCode {
            code_hash: secrets::digest(&code),
            app: AppId::from_uuid(checked.app.id),
            user: UserId::from_uuid(user.id),
            redirect_uri: &checked.redirect_uri,
            code_challenge: &checked.challenge,
            scopes: checked.scopes.to_string(),
            expires_at: Utc::now() + Duration::seconds(CODE_TTL_SECS),
        },
    )
    .await?;
    tracing::info!(app_id = %checked.app.id, user_id = %user.id, "oauth authorization approved");
    audit::record_for_user(
        &state,
        UserId::from_uuid(user.id),
        "app.authorized",
        audit::Outcome::Allowed,
        serde_json::json!({"app_id": checked.app.id, "scopes": checked.scopes.to_string()}),
    )
    .await?;
    Ok(back(&[("code", &code)]))
}

// ---------------------------------------------------------------------------
// Token and revocation endpoints

/// An RFC 6749 error.
struct OAuthFail {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// The client tried HTTP Basic: a 401 then names that scheme.
    basic: bool,
}

enum Fail {
    OAuth(OAuthFail),
    Api(ApiError),
}

impl<E: Into<ApiError>> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail::Api(e.into())
    }
}

fn bad(error: &'static str, description: impl Into<String>) -> Fail {
    Fail::OAuth(OAuthFail {
        status: StatusCode::BAD_REQUEST,
        error,
        description: description.into(),
        basic: false,
    })
}

fn invalid_client(basic: bool) -> Fail {
    Fail::OAuth(OAuthFail {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        description: "client authentication failed".into(),
        basic,
    })
}

fn respond(result: Result<HttpResponse, Fail>) -> ApiResult<HttpResponse> {
    match result {
        Ok(res) => Ok(res),
        Err(Fail::Api(e)) => Err(e),
        Err(Fail::OAuth(f)) => {
            let mut res = HttpResponse::build(f.status);
            res.insert_header((header::CACHE_CONTROL, "no-store"));
            if f.status == StatusCode::UNAUTHORIZED {
                let scheme = if f.basic { "Basic" } else { "Bearer" };
                res.insert_header((header::WWW_AUTHENTICATE, format!("{scheme} realm=\"vitalfarm\"")));
            }
            Ok(res.json(OAuthError {
                error: f.error.to_owned(),
                error_description: f.description,
            }))
        }
    }
}

fn content_type_is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(FORM))
}

fn parse_form<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, Fail> {
    if !content_type_is_form(req) {
        return Err(bad("invalid_request", format!("the body must be {FORM}")));
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|_| bad("invalid_request", "the form is malformed or repeats a parameter"))
}

/// The calling app, authenticated by HTTP Basic or by `client_id` (and,
/// for a confidential client, `client_secret`) in the body; using both
/// ways at once is refused (RFC 6749 section 2.3).
async fn authenticate_client(
    req: &HttpRequest,
    state: &AppState,
    client_id: Option<String>,
    client_secret: Option<String>,
) -> Result<oauth_app::Model, Fail> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, creds)| creds.trim().to_owned());
    let used_basic = basic.is_some();
    let (id, secret) = match basic {
        Some(creds) => {
            if client_secret.is_some() {
                return Err(bad("invalid_request", "use one client authentication method"));
            }
            let decoded = STANDARD
                .decode(creds)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(invalid_client(true))?;
            let (id, secret) = decoded.split_once(':').ok_or(invalid_client(true))?;
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .map(|s| s.into_owned())
                    .map_err(|_| invalid_client(true))
            };
            let id = decode(id)?;
            if client_id.as_ref().is_some_and(|c| *c != id) {
                return Err(bad(
                    "invalid_request",
                    "client_id differs from the authenticated client",
                ));
            }
            (id, Some(decode(secret)?).filter(|s| !s.is_empty()))
        }
        None => (
            client_id.ok_or(bad("invalid_request", "client_id is required"))?,
            client_secret,
        ),
    };
    let app = match id.parse::<AppId>() {
        Ok(id) => repo::find_client(&state.db, id).await?,
        Err(_) => None,
    }
    .ok_or(invalid_client(used_basic))?;
    match (ClientType::parse(&app.client_type), &app.secret_hash, secret) {
        (Some(ClientType::Public), _, None) => Ok(app),
        (Some(ClientType::Confidential), Some(stored), Some(secret))
            if secrets::equal(stored, &secrets::digest(&secret)) =>
        {
            Ok(app)
        }
        _ => Err(invalid_client(used_basic)),
    }
}

fn tokens(
    state: &AppState,
    sub: uuid::Uuid,
    app: AppId,
    grant: GrantId,
    scopes: &Scopes,
    refresh: Option<String>,
) -> Result<HttpResponse, Fail> {
    let scope = scopes.to_string();
    let token = BearerToken::for_app(state, sub, app, grant, &scope)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(token.oauth(refresh, scope)))
}

fn new_refresh() -> anyhow::Result<(String, NewRefresh)> {
    let plain = secrets::generate(secrets::APP_REFRESH_PREFIX)?;
    let stored = NewRefresh {
        token_hash: secrets::digest(&plain),
        expires_at: Utc::now() + Duration::days(APP_REFRESH_TTL_DAYS),
    };
    Ok((plain, stored))
}

fn required(value: Option<String>, name: &str) -> Result<String, Fail> {
    value
        .filter(|v| !v.is_empty() && v.len() <= 4096)
        .ok_or_else(|| bad("invalid_request", format!("{name} is required")))
}

/// Issues tokens (RFC 6749): `authorization_code` (with the PKCE
/// `code_verifier`; the code works once and for 60 seconds),
/// `refresh_token` (each refresh returns a new refresh token; presenting a
/// used one revokes the whole grant) and `client_credentials` (confidential
/// clients only, acting for the app's own membership). A refresh token is
/// issued only with the `offline_access` scope.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens.", body = OAuthTokenResponse),
        (status = 400, description = "An RFC 6749 error: `invalid_request`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`.", body = OAuthError),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = OAuthError),
    ))]
pub async fn token(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> ApiResult<HttpResponse> {
    respond(token_inner(&req, &state, &body).await)
}

async fn token_inner(req: &HttpRequest, state: &AppState, body: &[u8]) -> Result<HttpResponse, Fail> {
    let form: TokenRequest = parse_form(req, body)?;
    let app = authenticate_client(req, state, form.client_id.clone(), form.client_secret.clone()).await?;
    let app_id = AppId::from_uuid(app.id);
    let registered = Scopes::parse(&app.scopes).unwrap_or_default();
    match form.grant_type.as_deref() {
        Some("authorization_code") => {
            let code = required(form.code, "code")?;
            let redirect_uri = required(form.redirect_uri, "redirect_uri")?;
            let verifier = required(form.code_verifier, "code_verifier")?;
            let (plain, stored) = new_refresh()?;
            let mut offline = false;
            let outcome = repo::exchange_code(&state.db, app_id, &secrets::digest(&code), |c| {
                if c.redirect_uri != redirect_uri || !rules::verify_pkce_s256(&verifier, &c.code_challenge) {
                    return CodeCheck::Refused;
                }
                offline = Scopes::parse(&c.scopes).is_ok_and(|s| s.contains(Scope::OfflineAccess));
                CodeCheck::Accepted(offline.then_some(stored))
            })
            .await?;
            match outcome {
                Exchange::Issued(grant) => {
                    let scopes = Scopes::parse(&grant.scopes).unwrap_or_default();
                    let user = grant
                        .user_id
                        .ok_or_else(|| anyhow::anyhow!("code grant {} has no user", grant.id))?;
                    tracing::info!(app_id = %app.id, grant_id = %grant.id, "oauth code exchanged");
                    audit::record_for_user(
                        state,
                        UserId::from_uuid(user),
                        "app.token_issued",
                        audit::Outcome::Allowed,
                        serde_json::json!({"app_id": app.id, "grant_id": grant.id}),
                    )
                    .await?;
                    tokens(
                        state,
                        user,
                        app_id,
                        GrantId::from_uuid(grant.id),
                        &scopes,
                        offline.then_some(plain),
                    )
                }
                Exchange::Reused => {
                    tracing::warn!(app_id = %app.id, "oauth authorization code reused; its grant is revoked");
                    Err(bad(
                        "invalid_grant",
                        "the authorization code was already used; its tokens are revoked",
                    ))
                }
                Exchange::Invalid => Err(bad(
                    "invalid_grant",
                    "the authorization code is invalid or expired, or the redirect_uri or code_verifier does not match",
                )),
            }
        }
        Some("refresh_token") => {
            let presented = secrets::digest(&required(form.refresh_token, "refresh_token")?);
            let narrowed = match form.scope.as_deref() {
                Some(s) => Some(Scopes::parse(s).map_err(|m| bad("invalid_scope", m))?),
                None => None,
            };
            if let Some(narrowed) = &narrowed {
                let grant = match repo::grant_of_refresh(&state.db, app_id, &presented).await? {
                    Some(id) => repo::find_live_grant(&state.db, id).await?,
                    None => None,
                };
                let granted = grant.map(|g| Scopes::parse(&g.scopes).unwrap_or_default());
                if granted.is_some_and(|g| !narrowed.is_subset(&g)) {
                    return Err(bad("invalid_scope", "a refresh may only narrow the granted scopes"));
                }
            }
            let (plain, stored) = new_refresh()?;
            match repo::rotate_refresh(&state.db, app_id, &presented, stored).await? {
                Exchange::Issued(grant) => {
                    let user = grant
                        .user_id
                        .ok_or_else(|| anyhow::anyhow!("refresh grant {} has no user", grant.id))?;
                    let scopes = narrowed.unwrap_or_else(|| Scopes::parse(&grant.scopes).unwrap_or_default());
                    tokens(state, user, app_id, GrantId::from_uuid(grant.id), &scopes, Some(plain))
                }
                Exchange::Reused => {
                    tracing::warn!(app_id = %app.id, "oauth refresh token reused; its grant is revoked");
                    Err(bad(
                        "invalid_grant",
                        "the refresh token was already used; the authorization is revoked",
                    ))
                }
                Exchange::Invalid => Err(bad("invalid_grant", "the refresh token is invalid, expired or revoked")),
            }
        }
        Some("client_credentials") => {
            if ClientType::parse(&app.client_type) != Some(ClientType::Confidential) {
                return Err(bad(
                    "unauthorized_client",
                    "client_credentials is only for confidential clients",
                ));
            }
            let requested = match form.scope.as_deref() {
                Some(s) => Scopes::parse(s).map_err(|m| bad("invalid_scope", m))?,
                None => registered.clone(),
            };
            if !requested.is_subset(&registered) {
                return Err(bad(
                    "invalid_scope",
                    "the scopes must be among those the app registered",
                ));
            }
            // No refresh tokens here (RFC 6749 section 4.4.3): the app can
            // always authenticate again.
            let scopes = requested.without(Scope::OfflineAccess);
            if scopes.is_empty() {
                return Err(bad("invalid_scope", "no scope to grant"));
            }
            let membership = MembershipId::from_uuid(app.membership_id);
            let grant = repo::create_membership_grant(&state.db, app_id, membership, &scopes.to_string()).await?;
            audit::record(
                state,
                audit::Event::new(
                    membership,
                    audit::Actor::App(app_id),
                    "app.token_issued",
                    format!("app/{}", app.id),
                )
                .with_detail(serde_json::json!({"grant_id": grant.id, "scopes": scopes.to_string()})),
            )
            .await?;
            tokens(state, app.id, app_id, GrantId::from_uuid(grant.id), &scopes, None)
        }
        Some(_) => Err(bad(
            "unsupported_grant_type",
            "grant_type must be authorization_code, refresh_token or client_credentials",
        )),
        None => Err(bad("invalid_request", "grant_type is required")),
    }
}

/// Revokes a token (RFC 7009): an access token or a refresh token of the
/// calling app. Revoking either revokes the whole grant: every token of
/// that authorization stops working on the next request. Unknown tokens
/// also answer 200.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = RevokeRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke."),
        (status = 400, description = "`invalid_request`.", body = OAuthError),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = OAuthError),
    ))]
pub async fn revoke(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> ApiResult<HttpResponse> {
    respond(revoke_inner(&req, &state, &body).await)
}

async fn revoke_inner(req: &HttpRequest, state: &AppState, body: &[u8]) -> Result<HttpResponse, Fail> {
    let form: RevokeRequest = parse_form(req, body)?;
    let app = authenticate_client(req, state, form.client_id.clone(), form.client_secret.clone()).await?;
    let app_id = AppId::from_uuid(app.id);
    let token = required(form.token, "token")?;
    let grant = if token.starts_with(secrets::APP_REFRESH_PREFIX) {
        repo::grant_of_refresh(&state.db, app_id, &secrets::digest(&token)).await?
    } else {
        state
            .jwt
            .verify(&token)
            .filter(|c| c.app == Some(app.id))
            .and_then(|c| c.grant)
            .map(GrantId::from_uuid)
    };
    if let Some(grant) = grant {
        let disabled = repo::revoke_grant_of(&state.db, app_id, grant).await?;
        tracing::info!(app_id = %app.id, grant_id = %grant, "oauth grant revoked");
        audit::record(
            state,
            audit::Event::new(
                MembershipId::from_uuid(app.membership_id),
                audit::Actor::App(app_id),
                "app.grant_revoked",
                format!("grant/{grant}"),
            ),
        )
        .await?;
        super::apps::record_disabled(state, audit::Actor::App(app_id), app_id, &disabled).await?;
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_redirects_keep_the_query() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(
            with_params("https://a.example/cb?x=1", &[("code", "c d"), ("state", "s&t")]),
            "https://a.example/cb?x=1&code=c+d&state=s%26t"
        );
        assert_eq!(
            with_params("https://a.example/cb", &[("code", "c")]),
            "https://a.example/cb?code=c"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080/cb?x"), "http://127.0.0.1:8080");
    }
}
