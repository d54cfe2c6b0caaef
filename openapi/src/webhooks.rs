//! Webhooks: endpoints a membership registers for its events, and the
//! history of deliveries to them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "url": "https://hooks.acme.example/vitalfarm",
    "events": ["alert.opened", "consent.revoked"],
    "description": "on-call pager"
}))]
pub struct CreateWebhookRequest {
    /// Where deliveries are POSTed: `https`, or `http` to a loopback
    /// address; no credentials in the URL.
    pub url: String,
    /// The event kinds to deliver, at least one of `alert.opened`,
    /// `alert.resolved`, `consent.granted`, `consent.revoked`,
    /// `device.offline`, `export.ready`.
    pub events: Vec<String>,
    /// A note for people, at most 500 characters.
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "01935c6e-0000-7000-8000-0000000000a7",
    "membership_id": "01935c6e-0000-7000-8000-000000000002",
    "url": "https://hooks.acme.example/vitalfarm",
    "events": ["alert.opened", "consent.revoked"],
    "description": "on-call pager",
    "enabled": true,
    "created_at": "2026-11-22T10:00:00Z",
    "updated_at": "2026-11-22T10:00:00Z"
}))]
pub struct Webhook {
    pub id: Uuid,
    pub membership_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    /// `false` once the authorization of the OAuth app that registered the
    /// endpoint ended (revoked by the person, by the app, or the app
    /// deleted): nothing more is delivered, queued deliveries included.
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    /// Last change, such as a secret rotation.
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "webhook": {"id": "01935c6e-0000-7000-8000-0000000000a7", "membership_id": "01935c6e-0000-7000-8000-000000000002", "url": "https://hooks.acme.example/vitalfarm", "events": ["alert.opened"], "description": null, "enabled": true, "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z"},
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw0gU1L0dXRHM="
}))]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// The signing secret (Standard Webhooks: HMAC-SHA256 keyed with the
    /// base64-decoded part after `whsec_`). Shown only now.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw0gU1L0dXRHM="}))]
pub struct WebhookSecret {
    /// The new signing secret, used from the next attempt on. Shown only now.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [{"id": "01935c6e-0000-7000-8000-0000000000a7", "membership_id": "01935c6e-0000-7000-8000-000000000002", "url": "https://hooks.acme.example/vitalfarm", "events": ["alert.opened"], "description": null, "enabled": true, "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z"}],
    "next_cursor": null
}))]
pub struct WebhookPage {
    /// Oldest first.
    pub items: Vec<Webhook>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; see `next_attempt_at`.
    Pending,
    /// An attempt got a 2xx answer.
    Delivered,
    /// Every attempt failed; no more will be made.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"at": "2026-11-22T10:00:01Z", "status_code": 500, "duration_ms": 42, "error": "http_status"}))]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// Why it failed: `http_status` (not 2xx), `timeout`, `connect`,
    /// `request`, `endpoint_deleted`, `secret_unavailable`; `null` when
    /// delivered.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "01935c6e-0000-7000-8000-0000000000d1",
    "event_id": "01935c6e-0000-7000-8000-0000000000e9",
    "type": "alert.opened",
    "status": "delivered",
    "attempts": [
        {"at": "2026-11-22T10:00:01Z", "status_code": 500, "duration_ms": 42, "error": "http_status"},
        {"at": "2026-11-22T10:00:06Z", "status_code": 200, "duration_ms": 17, "error": null}
    ],
    "next_attempt_at": null,
    "created_at": "2026-11-22T10:00:00Z"
}))]
pub struct Delivery {
    pub id: Uuid,
    /// The event's id, sent as `webhook-id` on every attempt (dedupe on it).
    pub event_id: Uuid,
    /// The event kind, or `webhook.test` for a test ping.
    #[serde(rename = "type")]
    pub kind: String,
    pub status: DeliveryStatus,
    /// Oldest first.
    pub attempts: Vec<DeliveryAttempt>,
    /// When the next attempt is due, while `pending`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [{"id": "01935c6e-0000-7000-8000-0000000000d1", "event_id": "01935c6e-0000-7000-8000-0000000000e9", "type": "alert.opened", "status": "pending", "attempts": [], "next_attempt_at": "2026-11-22T10:00:00Z", "created_at": "2026-11-22T10:00:00Z"}],
    "next_cursor": null
}))]
pub struct DeliveryPage {
    /// Newest first.
    pub items: Vec<Delivery>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"delivery_id": "01935c6e-0000-7000-8000-0000000000d1", "event_id": "01935c6e-0000-7000-8000-0000000000e9"}))]
pub struct TestDelivery {
    /// Follow it in the endpoint's deliveries.
    pub delivery_id: Uuid,
    /// The `webhook-id` the ping carries.
    pub event_id: Uuid,
}
