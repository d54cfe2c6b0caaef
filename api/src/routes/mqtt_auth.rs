//! Hooks an external MQTT broker calls to log devices in and to check
//! their topic rights: Mosquitto's go-auth HTTP backend (`http_getuser_uri`,
//! `http_superuser_uri`, `http_aclcheck_uri`, parameters as JSON or form)
//! and EMQX's HTTP authenticator and authorizer. Allowed answers 200 with
//! `{"ok": true, "result": "allow"}`; refused answers 403 (a problem
//! document that also carries `"ok": false, "result": "deny"`), which both
//! brokers take as "no". The broker configuration is in `deploy/`.
//!
//! Devices log in with username = device id and password = its secret, and
//! may publish only to their own readings and command-result topics and
//! subscribe only to their own commands. vitalfarm's own login (the user
//! and password inside `mqtt_url`) is the superuser.
//!
//! The hooks check passwords, so they are for the broker alone: every call
//! carries the shared secret `mqtt_hook_secret`, in the header
//! `X-Vitalfarm-Hook-Secret` (EMQX sets headers) or as the password of HTTP
//! Basic authentication (mosquitto-go-auth sends no custom headers, but Go
//! turns `user:secret@host` in its `http_host` into Basic authentication).
//! Without a configured secret the hooks answer 404. Failed device logins
//! are counted per device id, and past `mqtt_hook_max_failures` in a window
//! the hook refuses without checking.

use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use utoipa::ToSchema;
use vitalfarm_domain::DeviceStatus;

use super::RouteSet;
use crate::error::{ApiError, ApiResult, AppError, AppResult};
use vitalfarm_app::mqtt::{Topics, Uplink};
use vitalfarm_app::state::AppState;
use vitalfarm_storage::repo::rate_limits;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/mqtt/auth/user", user);
    r.add(Method::POST, "/v1/mqtt/auth/superuser", superuser);
    r.add(Method::POST, "/v1/mqtt/auth/acl", acl);
}

/// What the broker sends (go-auth names; EMQX is configured to send the
/// same). Every field may be absent: a missing one simply does not match.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"username": "0193a4c2-7b1e-7c3d-9a41-5f2e8d6b1a20", "password": "vfd_3kq…", "clientid": "0193a4c2-7b1e-7c3d-9a41-5f2e8d6b1a20", "topic": "vitalfarm/v1/devices/0193a4c2-7b1e-7c3d-9a41-5f2e8d6b1a20/readings", "acc": 2}))]
pub struct HookRequest {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub clientid: String,
    #[serde(default)]
    pub topic: String,
    /// go-auth: 1 read, 2 write, 3 read and write, 4 subscribe.
    #[serde(default)]
    pub acc: Option<u8>,
    /// EMQX: `publish` or `subscribe`.
    #[serde(default)]
    pub action: Option<String>,
}

/// The answer to an allowed request.
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(example = json!({"ok": true, "result": "allow", "is_superuser": false}))]
pub struct HookAllowed {
    pub ok: bool,
    pub result: &'static str,
    pub is_superuser: bool,
}

/// The header that carries the hook secret.
pub const SECRET_HEADER: &str = "x-vitalfarm-hook-secret";

/// Lets only the broker in: the configured secret, compared in constant
/// time, from the header or Basic authentication.
fn check_secret(req: &HttpRequest, state: &AppState) -> ApiResult<()> {
    let Some(secret) = state.config.mqtt_hook_secret.as_deref() else {
        // Not set up for an external broker: there is no hook to call.
        return Err(AppError::NotFound("MQTT hook (no `mqtt_hook_secret` is configured)").into());
    };
    let from_header = req.headers().get(SECRET_HEADER).and_then(|v| v.to_str().ok());
    let from_basic = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_owned()));
    let presented = from_header.map(str::to_owned).or(from_basic);
    match presented {
        Some(p) if vitalfarm_app::auth::secrets::equal(&p, secret) => Ok(()),
        _ => Err(deny("missing or wrong hook secret")),
    }
}

fn failure_window(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(state.config.login_window_secs).unwrap_or(i64::MAX / 1000))
}

fn parse(req: &HttpRequest, body: &[u8]) -> AppResult<HookRequest> {
    let json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if json {
        serde_json::from_slice(body).map_err(|e| AppError::field("body", format!("invalid JSON: {e}")))
    } else {
        serde_urlencoded::from_bytes(body).map_err(|e| AppError::field("body", format!("invalid form: {e}")))
    }
}

fn allow(is_superuser: bool) -> HttpResponse {
    HttpResponse::Ok().json(HookAllowed {
        ok: true,
        result: "allow",
        is_superuser,
    })
}

fn deny(why: &str) -> ApiError {
    AppError::Forbidden(why.to_owned()).into()
}

/// vitalfarm's own broker login, from `mqtt_url`.
fn is_service(state: &AppState, username: &str, password: Option<&str>) -> bool {
    let Some(url) = state.config.mqtt_url.as_deref() else {
        return false;
    };
    let Ok(options) = vitalfarm_app::mqtt::external::options(url, "probe") else {
        return false;
    };
    let Some(login) = options.credentials() else {
        return false;
    };
    let user_ok = vitalfarm_app::auth::secrets::equal(&login.username, username);
    match password {
        Some(p) => user_ok & vitalfarm_app::auth::secrets::equal(&login.password, p),
        None => user_ok,
    }
}

/// Logs a client in: a device by its id and secret (an active one only,
/// with the device id or nothing as client id), or vitalfarm itself.
/// Failed logins are counted per username; past the limit the answer is 429
/// (a refusal to the broker) without a check.
#[utoipa::path(post, path = "/v1/mqtt/auth/user", tag = "mqtt-hooks",
    request_body(content = HookRequest, content_type = "application/json"),
    security(("mqtt_hook_secret" = []), ("mqtt_hook_basic" = [])),
    responses(
        (status = 200, description = "Allowed.", body = HookAllowed),
        (status = 403, response = vitalfarm_openapi::doc::ForbiddenResponse),
        (status = 404, response = vitalfarm_openapi::doc::NotFoundResponse),
        (status = 429, response = vitalfarm_openapi::doc::RateLimitedResponse),
    ))]
pub async fn user(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> ApiResult<HttpResponse> {
    check_secret(&req, &state)?;
    let hook = parse(&req, &body)?;
    // Counted before the check (one atomic statement), so concurrent
    // guesses cannot all pass a count none of them has raised; a correct
    // login takes its count back, so only failures add up.
    let key = format!("mqtt-hook:user:{}", hook.username.chars().take(200).collect::<String>());
    let w = rate_limits::hit(&state.db, &key, failure_window(&state)).await?;
    if w.count > i32::try_from(state.config.mqtt_hook_max_failures).unwrap_or(i32::MAX) {
        rate_limits::undo(&state.db, &key).await?;
        let secs = (w.resets_at - chrono::Utc::now()).num_seconds().max(1);
        return Err((AppError::RateLimited {
            retry_after_secs: u64::try_from(secs).unwrap_or(1),
        })
        .into());
    }
    if is_service(&state, &hook.username, Some(&hook.password)) {
        rate_limits::undo(&state.db, &key).await?;
        return Ok(allow(true));
    }
    let dev = vitalfarm_app::auth::device::verify(&state, &hook.username, &hook.password)
        .await
        .map_err(|_| deny("invalid device credentials"))?;
    rate_limits::undo(&state.db, &key).await?;
    let status = DeviceStatus::parse(&dev.status).unwrap_or(DeviceStatus::Retired);
    if !status.may_ingest() {
        return Err(deny("this device may not connect"));
    }
    if !(hook.clientid.is_empty() || hook.clientid == hook.username) {
        return Err(deny("the client id must be the device id"));
    }
    Ok(allow(false))
}

/// Whether a login is vitalfarm's own (the superuser).
#[utoipa::path(post, path = "/v1/mqtt/auth/superuser", tag = "mqtt-hooks",
    request_body(content = HookRequest, content_type = "application/json"),
    security(("mqtt_hook_secret" = []), ("mqtt_hook_basic" = [])),
    responses(
        (status = 200, description = "A superuser.", body = HookAllowed),
        (status = 403, response = vitalfarm_openapi::doc::ForbiddenResponse),
        (status = 404, response = vitalfarm_openapi::doc::NotFoundResponse),
    ))]
pub async fn superuser(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> ApiResult<HttpResponse> {
    check_secret(&req, &state)?;
    let hook = parse(&req, &body)?;
    if is_service(&state, &hook.username, None) {
        Ok(allow(true))
    } else {
        Err(deny("not a superuser"))
    }
}

/// Whether a logged-in device may publish to, or subscribe to, a topic.
#[utoipa::path(post, path = "/v1/mqtt/auth/acl", tag = "mqtt-hooks",
    request_body(content = HookRequest, content_type = "application/json"),
    security(("mqtt_hook_secret" = []), ("mqtt_hook_basic" = [])),
    responses(
        (status = 200, description = "Allowed.", body = HookAllowed),
        (status = 403, response = vitalfarm_openapi::doc::ForbiddenResponse),
        (status = 404, response = vitalfarm_openapi::doc::NotFoundResponse),
    ))]
pub async fn acl(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> ApiResult<HttpResponse> {
    check_secret(&req, &state)?;
    let hook = parse(&req, &body)?;
    if is_service(&state, &hook.username, None) {
        return Ok(allow(true));
    }
    let device: uuid::Uuid = hook.username.parse().map_err(|_| deny("not a device"))?;
    let topics = Topics::new(&state.config.mqtt_mountpoint);
    let publish = match (hook.acc, hook.action.as_deref()) {
        (Some(2), _) | (_, Some("publish")) => true,
        (Some(1 | 4), _) | (_, Some("subscribe")) => false,
        _ => {
            return Err(AppError::field("acc", "must be 1, 2 or 4 (or action publish/subscribe)").into());
        }
    };
    let allowed = if publish {
        matches!(topics.parse_uplink(&hook.topic),
            Some(Uplink::Readings(d) | Uplink::CommandResult { device: d, .. }) if d == device)
    } else {
        topics.may_subscribe(device, &hook.topic)
    };
    if allowed {
        Ok(allow(false))
    } else {
        Err(deny("outside this device's topics"))
    }
}
