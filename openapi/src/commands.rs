//! Commands sent to a device over MQTT, and their outcome.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;
use vitalfarm_domain::CommandStatus;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "MEASURE", "params": {"metric": "blood_pressure"}, "ttl_secs": 600}))]
pub struct CreateCommand {
    /// What the device should do, as its firmware names it.
    #[schema(pattern = r"^[A-Z][A-Z0-9_]{0,31}$", min_length = 1, max_length = 32)]
    pub name: String,
    /// Arguments for the device, passed through as given (at most 16 KiB
    /// as JSON).
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>, default = json!({}))]
    pub params: Map<String, Value>,
    /// Seconds the command stays valid: after that it is `expired`, and a
    /// device that comes online late does not run it.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400, default = 300)]
    pub ttl_secs: Option<u64>,
}

/// A command and how far it got: `queued` (not yet handed to the broker),
/// `sent`, then `acked` or `failed` by the device, or `expired`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-0000000000c1", "device_id": "01935c6e-0000-7000-8000-0000000000b1", "name": "MEASURE", "params": {"metric": "blood_pressure"}, "status": "acked", "created_at": "2026-11-21T10:00:00Z", "sent_at": "2026-11-21T10:00:00.120Z", "completed_at": "2026-11-21T10:00:41Z", "expires_at": "2026-11-21T10:10:00Z", "result": {"readings": 1}, "error": null}))]
pub struct Command {
    pub id: Uuid,
    pub device_id: Uuid,
    pub name: String,
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub params: Map<String, Value>,
    pub status: CommandStatus,
    pub created_at: DateTime<Utc>,
    /// When the broker took it for the device.
    pub sent_at: Option<DateTime<Utc>>,
    /// When the device's answer arrived.
    pub completed_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    /// What the device reported, when it did.
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub result: Option<Map<String, Value>>,
    /// Why the device failed it.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [{"id": "01935c6e-0000-7000-8000-0000000000c1", "device_id": "01935c6e-0000-7000-8000-0000000000b1", "name": "MEASURE", "params": {}, "status": "queued", "created_at": "2026-11-21T10:00:00Z", "sent_at": null, "completed_at": null, "expires_at": "2026-11-21T10:05:00Z", "result": null, "error": null}], "next_cursor": null}))]
pub struct CommandPage {
    /// Newest first.
    pub items: Vec<Command>,
    pub next_cursor: Option<String>,
}
