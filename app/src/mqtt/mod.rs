//! MQTT: devices publish readings and command results, and receive
//! commands.
//!
//! - Embedded (the default): an in-process rumqttd broker carries sessions
//!   and the commands downlink, behind a front ([`front`]) that listens on
//!   `mqtt_bind`, logs devices in against their stored secret, keeps each
//!   device inside its own topics, and acknowledges a reading only after it
//!   is committed.
//! - External (`mqtt_url`): the broker authenticates devices through
//!   vitalfarm's HTTP hooks (`routes::mqtt_auth` in the api crate); vitalfarm
//!   subscribes with a persistent session and acknowledges each message
//!   after its readings are committed ([`external`]).

pub mod embedded;
pub mod external;
pub mod front;
pub mod link;

pub use link::{MqttLink, Topics, Uplink};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;
use vitalfarm_domain::{DeviceId, DeviceStatus};
use vitalfarm_storage::entity::device;
use vitalfarm_storage::repo::devices;

use crate::error::AppError;
use crate::state::AppState;

/// Most bytes in one MQTT message (a batch of 5,000 readings fits).
pub const MAX_PACKET: usize = 4 * 1024 * 1024;

/// Device records as MQTT ingest sees them, cached for a second: a busy
/// device sends many messages a second, and a suspension still takes
/// effect within one.
#[derive(Default)]
pub struct DeviceCache {
    entries: Mutex<HashMap<Uuid, (Instant, Arc<device::Model>)>>,
}

const DEVICE_TTL: Duration = Duration::from_secs(1);

impl DeviceCache {
    pub async fn get(&self, state: &AppState, id: Uuid) -> anyhow::Result<Option<Arc<device::Model>>> {
        if let Some((at, dev)) = self.lock().get(&id)
            && at.elapsed() < DEVICE_TTL
        {
            return Ok(Some(dev.clone()));
        }
        let Some(dev) = devices::find(&state.db, DeviceId::from_uuid(id)).await? else {
            self.lock().remove(&id);
            return Ok(None);
        };
        let dev = Arc::new(dev);
        let mut entries = self.lock();
        // Bound the memory a fleet of millions could take: start over.
        if entries.len() > 100_000 {
            entries.clear();
        }
        entries.insert(id, (Instant::now(), dev.clone()));
        Ok(Some(dev))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Instant, Arc<device::Model>)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What became of one uplink message.
#[derive(Debug)]
pub enum Handled {
    /// Stored (or a duplicate, or rejected for good): acknowledge it.
    Done,
    /// The device may no longer send (suspended, retired, deleted): drop
    /// its connection without acknowledging.
    Refused(&'static str),
}

/// Handles one message a device published, storing before returning. An
/// error means nothing was stored and the message must not be
/// acknowledged, so the device (or the broker) sends it again.
pub async fn handle_uplink(
    state: &AppState,
    cache: &DeviceCache,
    uplink: Uplink,
    payload: &[u8],
) -> anyhow::Result<Handled> {
    let device_id = match uplink {
        Uplink::Readings(d) => d,
        Uplink::CommandResult { device, .. } => device,
    };
    let Some(dev) = cache.get(state, device_id).await? else {
        return Ok(Handled::Refused("unknown device"));
    };
    let status = DeviceStatus::parse(&dev.status).unwrap_or(DeviceStatus::Retired);
    if !status.may_ingest() {
        return Ok(Handled::Refused("device is not active"));
    }
    match uplink {
        Uplink::CommandResult { device, command } => {
            crate::commands::on_result(state, device, command, payload).await;
            Ok(Handled::Done)
        }
        Uplink::Readings(_) => {
            let items = match parse_batch(payload) {
                Ok(items) => items,
                Err(reason) => {
                    // A malformed message stays malformed: acknowledge it
                    // anyway, because a broker or device redelivers an
                    // unacknowledged message for ever and one poison message
                    // would stall the device's whole queue behind it. It does
                    // not vanish: it is counted on /metrics and its reason
                    // lands on the device's `last_error`, where the owner
                    // sees it; never its content, which may hold health
                    // values.
                    tracing::warn!(device = %device_id, reason, "dropped an MQTT readings message");
                    state.metrics.mqtt_rejected_payloads.inc();
                    if let Err(e) = devices::record_error(
                        &state.db,
                        device_id,
                        &format!("MQTT readings message dropped: {reason}"),
                    )
                    .await
                    {
                        tracing::warn!(error = %e, "recording a device's last error failed");
                    }
                    return Ok(Handled::Done);
                }
            };
            match crate::readings::ingest_device_batch(state, &dev, &items).await {
                Ok(outcome) => {
                    if !outcome.rejected.is_empty() {
                        tracing::debug!(device = %device_id, rejected = outcome.rejected.len(), "readings rejected");
                    }
                }
                Err(AppError::Conflict(_)) => {
                    tracing::warn!(device = %device_id, "dropped readings of a device bound to no subject");
                }
                // Nothing was stored: no acknowledgement, so the message
                // comes again.
                Err(e) => return Err(anyhow::Error::new(e).context("storing an MQTT readings message")),
            }
            Ok(Handled::Done)
        }
    }
}

/// The body of a readings message: `{"readings": [...]}` as over HTTP, or a
/// bare array, or one reading object.
fn parse_batch(payload: &[u8]) -> Result<Vec<serde_json::Value>, &'static str> {
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(|_| "payload is not JSON")?;
    let items = match value {
        serde_json::Value::Object(mut o) if o.contains_key("readings") => match o.remove("readings") {
            Some(serde_json::Value::Array(items)) => items,
            _ => return Err("`readings` is not an array"),
        },
        serde_json::Value::Array(items) => items,
        one @ serde_json::Value::Object(_) => vec![one],
        _ => return Err("payload is neither a reading nor a batch"),
    };
    if items.len() > crate::readings::MAX_BATCH {
        return Err("more than 5000 readings in one message");
    }
    Ok(items)
}

/// Running MQTT machinery.
pub struct Mqtt {
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The front's address (embedded broker only).
    pub front_addr: Option<std::net::SocketAddr>,
    /// Cancelled at shutdown: no new connections or messages are taken, the
    /// ones being stored are finished and acknowledged.
    pub stop: tokio_util::sync::CancellationToken,
}

impl Mqtt {
    /// Stops taking messages, lets the ones in progress commit and their
    /// acknowledgements go out, then closes, within `deadline`.
    pub async fn shutdown(mut self, deadline: Duration) {
        self.stop.cancel();
        let until = tokio::time::Instant::now() + deadline;
        for mut task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout_at(until, &mut task).await.is_err() {
                tracing::warn!("MQTT did not finish its acknowledgements in time");
                task.abort();
            }
        }
    }
}

impl Drop for Mqtt {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts MQTT as configured: nothing with `no_mqtt`, the external link
/// with `mqtt_url`, otherwise the embedded broker and its front.
pub async fn start(state: Arc<AppState>) -> anyhow::Result<Option<Mqtt>> {
    if state.config.no_mqtt {
        return Ok(None);
    }
    let topics = Topics::new(&state.config.mqtt_mountpoint);
    let stop = tokio_util::sync::CancellationToken::new();
    match state.config.mqtt_url.clone() {
        Some(url) => external::start(state, topics, &url, stop).await.map(Some),
        None => embedded::start(state, topics, stop).await.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplink_topics_parse_and_nothing_else_does() {
        let t = Topics::new("");
        let d = Uuid::now_v7();
        let c = Uuid::now_v7();
        assert_eq!(t.parse_uplink(&t.readings(d)), Some(Uplink::Readings(d)));
        assert_eq!(
            t.parse_uplink(&format!("vitalfarm/v1/devices/{d}/commands/{c}/result")),
            Some(Uplink::CommandResult { device: d, command: c })
        );
        for bad in [
            format!("vitalfarm/v1/devices/{d}/readings/x"),
            format!("vitalfarm/v1/devices/{d}"),
            "vitalfarm/v1/devices/not-a-uuid/readings".to_owned(),
            format!("other/v1/devices/{d}/readings"),
            format!("vitalfarm/v1/devices/{d}/commands/{c}"),
        ] {
            assert_eq!(t.parse_uplink(&bad), None, "{bad}");
        }
        let m = Topics::new("staging/");
        assert_eq!(m.readings(d), format!("staging/vitalfarm/v1/devices/{d}/readings"));
        assert_eq!(m.parse_uplink(&t.readings(d)), None);
    }

    #[test]
    fn a_device_subscribes_and_wills_only_inside_its_own_tree() {
        let t = Topics::new("");
        let (d, other) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(t.may_subscribe(d, &t.commands(d)));
        assert!(t.may_subscribe(d, &format!("{}/#", t.commands(d))));
        assert!(!t.may_subscribe(d, &t.commands(other)));
        assert!(!t.may_subscribe(d, "vitalfarm/v1/devices/+/commands"));
        assert!(!t.may_subscribe(d, "#"));
        assert!(t.may_will(d, &format!("vitalfarm/v1/devices/{d}/status")));
        assert!(!t.may_will(d, &format!("vitalfarm/v1/devices/{other}/status")));
        assert!(!t.may_will(d, &format!("vitalfarm/v1/devices/{d}/#")));
    }

    #[test]
    fn batches_come_in_three_shapes() {
        assert_eq!(
            parse_batch(br#"{"readings":[{"a":1},{"b":2}]}"#).map(|v| v.len()),
            Ok(2)
        );
        assert_eq!(parse_batch(br#"[{"a":1}]"#).map(|v| v.len()), Ok(1));
        assert_eq!(parse_batch(br#"{"metric":"heart_rate"}"#).map(|v| v.len()), Ok(1));
        assert!(parse_batch(b"nope").is_err());
        assert!(parse_batch(br#"{"readings":3}"#).is_err());
        assert!(parse_batch(b"42").is_err());
    }
}
