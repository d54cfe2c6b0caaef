//! A membership's audit log and the check of its hash chain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// Who acted.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuditActorKind {
    User,
    ApiKey,
    App,
    Device,
    /// Someone without credentials, e.g. the holder of a share link.
    Anonymous,
    /// vitalfarm itself.
    System,
}

/// How the attempt ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Allowed,
    /// Refused: the actor's role or consent did not cover it.
    Denied,
    /// Attempted and failed, e.g. a sign-in with a wrong password.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"kind": "user", "id": "01935c6e-0000-7000-8000-000000000001", "membership_id": null}))]
pub struct AuditActor {
    /// As stored: one of `AuditActorKind`'s values unless the row was altered.
    #[schema(value_type = AuditActorKind)]
    pub kind: String,
    /// The user, API key, app or device; `null` for `anonymous` and `system`.
    pub id: Option<Uuid>,
    /// The membership the actor acted from, when it is not this one (a
    /// company reading data shared with it).
    pub membership_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "01935c6e-0000-7000-8000-0000000000e1",
    "seq": 42,
    "at": "2026-11-22T08:30:00.123Z",
    "actor": {"kind": "user", "id": "01935c6e-0000-7000-8000-000000000001", "membership_id": null},
    "action": "api_key.created",
    "resource": "api_key/01935c6e-0000-7000-8000-0000000000b1",
    "consent_id": null,
    "outcome": "allowed",
    "detail": {"role": "developer"},
    "hash": "9f2c4a8e5d0b7f1c3e6a9d2b5c8f1e4a7d0c3b6e9f2a5d8c1b4e7a0d3c6f9b2e"
}))]
pub struct AuditEvent {
    pub id: Uuid,
    /// Position in the membership's chain: 1, 2, 3...
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: AuditActor,
    /// Dotted, e.g. `auth.sign_in`, `device.registered`, `share_link.used`.
    pub action: String,
    /// What was acted on, e.g. `device/<id>`.
    pub resource: String,
    /// The consent that allowed access to another membership's data.
    pub consent_id: Option<Uuid>,
    /// As stored: one of `AuditOutcome`'s values unless the row was altered.
    #[schema(value_type = AuditOutcome)]
    pub outcome: String,
    /// Ids and counts about the event; never health values or secrets.
    #[schema(value_type = Object)]
    pub detail: Value,
    /// SHA-256 (hex) over the previous event's hash and this event's fields.
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [{
        "id": "01935c6e-0000-7000-8000-0000000000e1", "seq": 42, "at": "2026-11-22T08:30:00.123Z",
        "actor": {"kind": "user", "id": "01935c6e-0000-7000-8000-000000000001", "membership_id": null},
        "action": "api_key.created", "resource": "api_key/01935c6e-0000-7000-8000-0000000000b1",
        "consent_id": null, "outcome": "allowed", "detail": {"role": "developer"},
        "hash": "9f2c4a8e5d0b7f1c3e6a9d2b5c8f1e4a7d0c3b6e9f2a5d8c1b4e7a0d3c6f9b2e"
    }],
    "next_cursor": null
}))]
pub struct AuditEventPage {
    /// Newest first.
    pub items: Vec<AuditEvent>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Why the chain does not hold at an event.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuditBreakReason {
    /// Events before this one are missing (or were renumbered).
    SeqGap,
    /// Its `prev_hash` is not the previous event's hash.
    PrevMismatch,
    /// Its fields do not hash to its stored hash: it was altered.
    HashMismatch,
    /// The chain ends before the newest event recorded for the membership
    /// (its head, kept apart from the events): events were removed from its
    /// end, or the whole chain was emptied. `event_id` is then `null`.
    Truncated,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditBreak {
    pub seq: i64,
    /// The event at which the chain breaks; `null` when it is missing
    /// (`truncated`).
    #[schema(required = true)]
    pub event_id: Option<Uuid>,
    pub reason: AuditBreakReason,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "ok": false,
    "checked": 6,
    "first_broken": {"seq": 7, "event_id": "01935c6e-0000-7000-8000-0000000000e7", "reason": "hash_mismatch"}
}))]
pub struct AuditVerification {
    /// Whether every event from the first to the newest is intact.
    pub ok: bool,
    /// How many events were found intact, from the first on.
    pub checked: u64,
    /// The first event at which the chain breaks; `null` when `ok`.
    pub first_broken: Option<AuditBreak>,
}
