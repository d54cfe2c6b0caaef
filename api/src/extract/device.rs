//! Device credentials: `Authorization: Device <device_id>:<secret>`. The
//! secret is compared by its SHA-256 in constant time; a suspended or
//! retired device is refused, as is one not yet bound to a subject.

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use vitalfarm_domain::DeviceStatus;
use vitalfarm_storage::entity::device;

use crate::error::{ApiError, AppError, AppResult};
use vitalfarm_app::auth::device::verify;
use vitalfarm_app::state::AppState;

/// An authenticated device, bound to a subject and allowed to send.
pub struct DeviceAuth(pub device::Model);

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
            let outcome: AppResult<DeviceAuth> = async move {
                let state = state.ok_or_else(|| AppError::Internal(anyhow::anyhow!("application state missing")))?;
                let header = header.ok_or(AppError::Unauthorized(
                    "missing Authorization header; devices send `Device <id>:<secret>`",
                ))?;
                let (scheme, credential) = header
                    .split_once(' ')
                    .ok_or(AppError::Unauthorized("malformed Authorization header"))?;
                if !scheme.eq_ignore_ascii_case("device") {
                    return Err(AppError::Unauthorized("use `Authorization: Device <id>:<secret>`"));
                }
                let (id, secret) = credential
                    .trim()
                    .split_once(':')
                    .ok_or(AppError::Unauthorized("malformed device credentials"))?;
                let dev = verify(&state, id, secret).await?;
                let status = DeviceStatus::parse(&dev.status).unwrap_or(DeviceStatus::Retired);
                if !status.may_ingest() {
                    return Err(AppError::Forbidden(format!("this device is {}", status.as_str())));
                }
                if dev.subject_id.is_none() || dev.bound_membership_id.is_none() {
                    return Err(AppError::Conflict(
                        "this device is not claimed or assigned to a subject yet".into(),
                    ));
                }
                Ok(DeviceAuth(dev))
            }
            .await;
            outcome.map_err(ApiError)
        })
    }
}
