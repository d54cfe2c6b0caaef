//! Device credentials: `Authorization: Device <device_id>:<secret>`. The
//! secret is compared by its SHA-256 in constant time; a suspended or
//! retired device is refused, as is one not yet bound to a subject.

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use vitalfarm_domain::{DeviceId, DeviceStatus};
use vitalfarm_storage::entity::device;
use vitalfarm_storage::repo::devices;

use crate::auth::secrets;
use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated device, bound to a subject and allowed to send.
pub struct DeviceAuth(pub device::Model);

/// Checks `id:secret` against the stored device; shared by HTTP and the
/// MQTT broker's authentication.
pub async fn verify(state: &AppState, id: &str, secret: &str) -> Result<device::Model, ApiError> {
    let bad = || ApiError::Unauthorized("invalid device credentials");
    let id: DeviceId = id.parse().map_err(|_| bad())?;
    let dev = devices::find(&state.db, id).await?.ok_or_else(bad)?;
    if !secrets::equal(&dev.secret_hash, &secrets::digest(secret)) {
        return Err(bad());
    }
    Ok(dev)
}

impl FromRequest for DeviceAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))?;
            let header = header.ok_or(ApiError::Unauthorized(
                "missing Authorization header; devices send `Device <id>:<secret>`",
            ))?;
            let (scheme, credential) = header
                .split_once(' ')
                .ok_or(ApiError::Unauthorized("malformed Authorization header"))?;
            if !scheme.eq_ignore_ascii_case("device") {
                return Err(ApiError::Unauthorized("use `Authorization: Device <id>:<secret>`"));
            }
            let (id, secret) = credential
                .trim()
                .split_once(':')
                .ok_or(ApiError::Unauthorized("malformed device credentials"))?;
            let dev = verify(&state, id, secret).await?;
            let status = DeviceStatus::parse(&dev.status).unwrap_or(DeviceStatus::Retired);
            if !status.may_ingest() {
                return Err(ApiError::Forbidden(format!("this device is {}", status.as_str())));
            }
            if dev.subject_id.is_none() || dev.bound_membership_id.is_none() {
                return Err(ApiError::Conflict(
                    "this device is not claimed or assigned to a subject yet".into(),
                ));
            }
            Ok(DeviceAuth(dev))
        })
    }
}
