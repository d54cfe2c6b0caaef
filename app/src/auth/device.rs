//! Device credentials: a device id and its secret, compared by the
//! secret's SHA-256 in constant time. Shared by HTTP ingest and the MQTT
//! broker's authentication.

use vitalfarm_domain::DeviceId;
use vitalfarm_storage::entity::device;
use vitalfarm_storage::repo::devices;

use crate::auth::secrets;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Checks `id:secret` against the stored device; shared by HTTP and the
/// MQTT broker's authentication.
pub async fn verify(state: &AppState, id: &str, secret: &str) -> AppResult<device::Model> {
    let bad = || AppError::Unauthorized("invalid device credentials");
    let id: DeviceId = id.parse().map_err(|_| bad())?;
    let dev = devices::find(&state.db, id).await?.ok_or_else(bad)?;
    if !secrets::equal(&dev.secret_hash, &secrets::digest(secret)) {
        return Err(bad());
    }
    Ok(dev)
}
