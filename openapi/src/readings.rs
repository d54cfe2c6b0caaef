//! Readings: ingest and queries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::FieldError;

/// One reading as a device sends it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"metric": "blood_pressure", "ts": "2026-11-21T08:00:00Z", "components": {"systolic": 128, "diastolic": 84}, "unit": "mm[Hg]", "seq": 1042}))]
pub struct ReadingIn {
    /// A code from `GET /v1/metrics`.
    pub metric: String,
    /// When it was measured (RFC 3339); with the device and metric, the
    /// reading's identity: sending it again is a duplicate.
    pub ts: String,
    /// For single-valued metrics.
    #[serde(default)]
    pub value: Option<f64>,
    /// For metrics with components (blood pressure: systolic, diastolic).
    #[serde(default)]
    pub components: Option<BTreeMap<String, f64>>,
    /// The canonical UCUM unit when omitted; accepted alternatives are
    /// converted (e.g. `[degF]`).
    #[serde(default)]
    pub unit: Option<String>,
    /// The device's own sequence number, kept for tracing.
    #[serde(default)]
    pub seq: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"readings": [
    {"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 72},
    {"metric": "body_temperature", "ts": "2026-11-21T08:00:00Z", "value": 98.9, "unit": "[degF]"}
]}))]
pub struct IngestRequest {
    /// Up to 5,000 readings.
    #[schema(max_items = 5000)]
    pub readings: Vec<ReadingIn>,
}

/// A reading that was not stored, and why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rejected {
    /// Its position in `readings`.
    pub index: usize,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"accepted": 2, "duplicates": 1, "rejected": [{"index": 3, "errors": [{"field": "value", "message": "must be between 20 and 300 /min (got 900)"}]}]}))]
pub struct IngestResponse {
    /// Newly stored.
    pub accepted: u64,
    /// Already stored (a retry): not stored again.
    pub duplicates: u64,
    pub rejected: Vec<Rejected>,
}

/// A stored reading.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reading {
    pub metric: String,
    pub ts: DateTime<Utc>,
    pub value: Option<f64>,
    pub components: Option<BTreeMap<String, f64>>,
    /// The canonical unit.
    pub unit: String,
    pub device_id: Option<Uuid>,
    /// `device`, `manual` or `hospital`.
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [{"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 72.0, "components": null, "unit": "/min", "device_id": "01935c6e-0000-7000-8000-0000000000b1", "source": "device"}], "next_cursor": null}))]
pub struct ReadingPage {
    pub items: Vec<Reading>,
    pub next_cursor: Option<String>,
}
