//! ECG analysis: R peaks and heart rate detected in a recording stored in a
//! farm.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Which recording to analyse, and whether to keep its heart rate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"farm_path": "ecg/2026-11-21/lead1.csv", "store_heart_rate": true}))]
pub struct EcgAnalyzeRequest {
    /// A CSV file in the farm of the subject's membership: `# key=value`
    /// settings (`sampling_rate_hz`, 50 to 1000; optional `start`, RFC
    /// 3339), an optional header `mv` or `t,mv`, then one sample per line in
    /// millivolts (with `t` in seconds, the rate may be left out). Two
    /// seconds to ten minutes.
    pub farm_path: String,
    /// Store the mean heart rate as a `heart_rate` reading with source
    /// `ecg` at the recording's start (its `start` setting, else the
    /// file's last upload time). Only for one's own subjects, with a role
    /// that writes data.
    #[serde(default)]
    pub store_heart_rate: bool,
}

/// One detected beat.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RPeak {
    /// Sample index in the recording, from 0.
    pub index: usize,
    /// Milliseconds from the first sample.
    pub t_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "r_peaks": [{"index": 150, "t_ms": 600.0}, {"index": 400, "t_ms": 1600.0}, {"index": 645, "t_ms": 2580.0}],
    "rr_ms": [1000.0, 980.0],
    "heart_rate_bpm": 60.6, "hr_min": 60.0, "hr_max": 61.2,
    "sampling_rate_hz": 250.0, "duration_s": 3.0,
    "stored_heart_rate": false,
    "consents": []
}))]
pub struct EcgAnalysis {
    /// R peaks found by Pan–Tompkins QRS detection, in time order.
    pub r_peaks: Vec<RPeak>,
    /// Intervals between consecutive R peaks.
    pub rr_ms: Vec<f64>,
    /// 60000 / mean RR interval; null with fewer than two beats.
    pub heart_rate_bpm: Option<f64>,
    /// The slowest beat-to-beat rate.
    pub hr_min: Option<f64>,
    /// The fastest beat-to-beat rate.
    pub hr_max: Option<f64>,
    pub sampling_rate_hz: f64,
    pub duration_s: f64,
    /// Whether a `heart_rate` reading was stored by this request (false
    /// when it was not asked for, or the same one was stored before).
    pub stored_heart_rate: bool,
    /// The consents that permitted reading another membership's recording
    /// (empty for one's own).
    pub consents: Vec<Uuid>,
}
