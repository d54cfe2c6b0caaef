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
#[schema(example = json!({"items": [{"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 72.0, "components": null, "unit": "/min", "device_id": "01935c6e-0000-7000-8000-0000000000b1", "source": "device"}], "next_cursor": null, "consents": []}))]
pub struct ReadingPage {
    pub items: Vec<Reading>,
    pub next_cursor: Option<String>,
    /// The consents that permitted reading another membership's data
    /// (empty for one's own).
    pub consents: Vec<Uuid>,
}

/// Width of an aggregation bucket.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub enum BucketWidth {
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl BucketWidth {
    pub const fn millis(self) -> i64 {
        match self {
            BucketWidth::FiveMinutes => 5 * 60 * 1000,
            BucketWidth::Hour => 60 * 60 * 1000,
            BucketWidth::Day => 24 * 60 * 60 * 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AggregateBucket {
    /// Start of the bucket (buckets align to the Unix epoch, UTC).
    pub start: DateTime<Utc>,
    /// For metrics with components (blood pressure: systolic, diastolic).
    pub component: Option<String>,
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"metric": "heart_rate", "unit": "/min", "bucket": "1h", "from": "2026-11-20T08:00:00Z", "to": "2026-11-21T08:00:00Z",
    "buckets": [{"start": "2026-11-21T07:00:00Z", "component": null, "count": 60, "min": 58.0, "max": 91.0, "mean": 71.4}], "consents": []}))]
pub struct AggregateResponse {
    pub metric: String,
    pub unit: String,
    pub bucket: BucketWidth,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Buckets with readings, in time order.
    pub buckets: Vec<AggregateBucket>,
    /// The consents that permitted reading another membership's data
    /// (empty for one's own).
    pub consents: Vec<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LatestValue {
    pub ts: DateTime<Utc>,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MetricSummary {
    pub metric: String,
    pub component: Option<String>,
    pub unit: String,
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    pub latest: LatestValue,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"subject_id": "01935c6e-0000-7000-8000-000000000004", "metrics": [
    {"metric": "heart_rate", "component": null, "unit": "/min", "count": 1440, "min": 52.0, "max": 121.0, "mean": 70.2, "p50": 69.0, "p95": 96.0, "latest": {"ts": "2026-11-21T08:00:00Z", "value": 72.0}}
], "consents": []}))]
pub struct SummaryResponse {
    pub subject_id: Uuid,
    pub metrics: Vec<MetricSummary>,
    /// The consents that permitted reading another membership's data
    /// (empty for one's own); only the metrics and period they cover are
    /// summarised.
    pub consents: Vec<Uuid>,
}
