//! The live stream (`GET /v1/memberships/{mid}/stream`): the payloads of its
//! Server-Sent Events, one JSON object per `data:` line.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `event: reading`: one reading as `GET /v1/subjects/{sid}/readings`
/// returns it (the components of a blood pressure together), with the
/// subject and, for another membership's data, the consent that shares it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"subject_id": "01935c6e-0000-7000-8000-0000000000c1", "device_id": "01935c6e-0000-7000-8000-0000000000b1", "metric": "blood_pressure", "ts": "2026-11-21T08:00:00Z", "value": null, "components": {"systolic": 121.0, "diastolic": 79.0}, "unit": "mm[Hg]", "source": "device", "consent_id": "01935c6e-0000-7000-8000-0000000000d1"}))]
pub struct StreamReading {
    pub subject_id: Uuid,
    pub device_id: Option<Uuid>,
    pub metric: String,
    pub ts: DateTime<Utc>,
    pub value: Option<f64>,
    pub components: Option<BTreeMap<String, f64>>,
    /// The canonical unit.
    pub unit: String,
    /// `device`, `manual` or `hospital`.
    pub source: String,
    /// The consent under which another membership's reading is shown;
    /// absent for one's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<Uuid>,
}

/// `event: alert`: an `alert.opened` or `alert.resolved` event of the
/// membership, as webhooks deliver it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-0000000000e1", "type": "alert.opened", "subject_id": "01935c6e-0000-7000-8000-0000000000c1", "created_at": "2026-11-21T08:00:01Z", "data": {"alert_id": "01935c6e-0000-7000-8000-0000000000f1"}}))]
pub struct StreamAlert {
    /// The event's id.
    pub id: Uuid,
    /// `alert.opened` or `alert.resolved`.
    #[serde(rename = "type")]
    pub kind: String,
    pub subject_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// The event's data object.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// `event: consent.granted` / `event: consent.revoked`: the set of
/// consents the stream shows data under changed (granted, revoked, started
/// or expired).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"consent_id": "01935c6e-0000-7000-8000-0000000000d1", "grantor_membership_id": "01935c6e-0000-7000-8000-0000000000a1"}))]
pub struct StreamConsent {
    pub consent_id: Uuid,
    pub grantor_membership_id: Uuid,
}

/// The payload of any event on the stream; the SSE `event:` field says
/// which.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StreamEvent {
    Reading(StreamReading),
    Alert(StreamAlert),
    Consent(StreamConsent),
}
