//! Analytics over a subject's readings: correlation of two series.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One window in which both series have readings: their means there.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CorrelationPoint {
    /// Start of the window (windows align to the Unix epoch, UTC).
    pub t: DateTime<Utc>,
    /// Mean of `x` in the window.
    pub x: f64,
    /// Mean of `y` in the window.
    pub y: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"subject_id": "0193a5e2-7c1d-7b61-9d3e-5a1f0c2b4d6e", "x": "heart_rate", "y": "blood_pressure.systolic",
    "window": "5m", "from": "2026-11-20T08:00:00Z", "to": "2026-11-21T08:00:00Z", "n": 3, "pearson_r": 0.87,
    "points": [{"t": "2026-11-21T07:00:00Z", "x": 72.5, "y": 121.0}, {"t": "2026-11-21T07:05:00Z", "x": 80.0, "y": 128.0},
    {"t": "2026-11-21T07:10:00Z", "x": 68.0, "y": 119.5}], "consents": []}))]
pub struct CorrelationResponse {
    pub subject_id: Uuid,
    /// The first series: a metric code, or `metric.component`.
    pub x: String,
    /// The second series.
    pub y: String,
    /// Width of the windows the series were paired in: `5m`, `15m`, `1h` or `1d`.
    pub window: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Number of paired windows.
    pub n: u64,
    /// Pearson's correlation coefficient of the window means, from -1 to 1;
    /// null with fewer than 3 windows or when a series does not vary.
    pub pearson_r: Option<f64>,
    /// The paired windows, in time order.
    pub points: Vec<CorrelationPoint>,
    /// The consents that permitted reading another membership's data
    /// (empty for one's own).
    pub consents: Vec<Uuid>,
}
