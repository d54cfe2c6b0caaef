//! Mashups: compound services over one's own readings, readings shared by
//! consent and the public reference datasets, each answer carrying its
//! reasons and the inputs used.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One compound service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MashupEntry {
    /// Stable name.
    pub name: String,
    pub title: String,
    pub description: String,
    /// HTTP method of the endpoint that runs it.
    pub method: String,
    /// Path of the endpoint that runs it.
    pub path: String,
    /// Metric codes it reads.
    pub inputs: Vec<String>,
    /// Names of the public datasets it judges them against.
    pub datasets: Vec<String>,
    /// The OAuth scope an app needs to call it.
    pub scope: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [{"name": "elderly-watch", "title": "Elderly watch",
    "description": "One status per watched person from blood pressure, temperature, heart rate and silence.",
    "method": "POST", "path": "/v1/mashups/elderly-watch/run",
    "inputs": ["blood_pressure", "body_temperature", "heart_rate"],
    "datasets": ["blood-pressure-categories", "temperature-thresholds", "vital-sign-ranges"], "scope": "analytics.read"}]}))]
pub struct MashupCatalog {
    pub items: Vec<MashupEntry>,
}

/// Whom to watch, and when. Every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"membership_id": "0193a5e2-7c1d-7b61-9d3e-5a1f0c2b4d6e", "at": "2026-11-21T08:00:00Z", "lookback": "PT24H"}))]
pub struct ElderlyWatchRequest {
    /// The company watching; required when the caller reads for several.
    pub membership_id: Option<Uuid>,
    /// Only these of the watched subjects (at most 5,000); default all of
    /// them: the company's enrollees and the subjects shared with it by an
    /// active consent for the purpose `care`. Subjects younger than the
    /// watch's minimum age (`elderly_watch_min_age_years`, default 65) at
    /// `at` are left off the board even when named.
    pub subject_ids: Option<Vec<Uuid>>,
    /// The moment judged; default now.
    pub at: Option<DateTime<Utc>>,
    /// How far back the latest values are looked for: an ISO 8601
    /// duration of hours or minutes (`PT24H`, `PT90M`), at most `PT720H`;
    /// default `PT24H`.
    pub lookback: Option<String>,
}

/// A dataset and the source in it a threshold comes from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetUse {
    /// Name in `GET /v1/public-datasets`.
    pub name: String,
    /// Id of the source within the dataset.
    pub source: String,
    /// The source's bibliographic citation, as the dataset gives it.
    pub citation: String,
}

/// A rule that fired.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"rule": "bp_category", "status": "emergency", "metric": "blood_pressure",
    "values": {"systolic": 186.0, "diastolic": 112.0}, "at": "2026-11-21T07:40:00Z",
    "category": "hypertensive_crisis", "threshold": "Section 11.2: Hypertensive crises: SBP > 180 mm Hg and/or DBP > 120 mm Hg",
    "dataset": {"name": "blood-pressure-categories", "source": "acc-aha-2017",
        "citation": "Whelton PK, Carey RM, Aronow WS, et al. Hypertension. 2018;71(6):e13-e115. doi:10.1161/HYP.0000000000000065"},
    "source": "Whelton PK, Carey RM, Aronow WS, et al. Hypertension. 2018;71(6):e13-e115. doi:10.1161/HYP.0000000000000065"}))]
pub struct WatchReason {
    /// `bp_category`, `temperature`, `heart_rate`, `ecg_heart_rate`,
    /// `spo2`, `glucose` or `inactivity`.
    pub rule: String,
    /// `attention` or `emergency`.
    pub status: String,
    /// The metric judged; null for inactivity.
    pub metric: Option<String>,
    /// The values judged by name: `systolic`/`diastolic`, `value`, or for
    /// inactivity `silent_seconds` and `threshold_seconds`.
    pub values: BTreeMap<String, f64>,
    /// When the value was measured (inactivity: the last reading); null
    /// when there is none.
    pub at: Option<DateTime<Utc>>,
    /// The category or class reached: `stage_2`, `hypertensive_crisis`,
    /// `fever`, `high_fever`, `hypothermia`, `above_range`,
    /// `far_below_range`, `hyperglycaemia_level_2`,
    /// `hypoglycaemia_level_1`, `silent`, `no_data`...
    pub category: String,
    /// The threshold crossed, in words.
    pub threshold: String,
    /// The public dataset behind the threshold; null for inactivity.
    pub dataset: Option<DatasetUse>,
    /// Where the threshold comes from, in words: the dataset source's
    /// citation, or for inactivity the watch's own rule (the person's
    /// rhythm; no public dataset gives one).
    pub source: String,
}

/// A value with its time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimedValue {
    pub value: f64,
    pub at: DateTime<Utc>,
}

/// A blood-pressure reading, mm Hg.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PressureValue {
    pub systolic: f64,
    pub diastolic: f64,
    pub at: DateTime<Utc>,
}

/// What the rules looked at.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WatchInputs {
    /// Age in days at `at`; null without a birth date (adult ranges are used).
    pub age_days: Option<i64>,
    /// False without a birth date: the subject stays on the board, judged
    /// by adult ranges, and `age_note` says so.
    pub age_known: bool,
    /// `age unknown: no birth date, adult ranges used` when `age_known` is
    /// false; null otherwise.
    pub age_note: Option<String>,
    /// The latest values within the lookback; null when there is none.
    pub blood_pressure: Option<PressureValue>,
    pub body_temperature: Option<TimedValue>,
    /// The latest heart rate from a device.
    pub heart_rate: Option<TimedValue>,
    /// The latest heart rate derived from an ECG recording (source `ecg`).
    pub ecg_heart_rate: Option<TimedValue>,
    /// The latest oxygen saturation, %.
    pub spo2: Option<TimedValue>,
    /// The latest blood glucose, mg/dL.
    pub blood_glucose: Option<TimedValue>,
    /// The latest reading of any readable metric within 14 days before
    /// `at` from the person's own sources (devices, entries by hand, ECG
    /// recordings); imported hospital records do not count.
    pub last_reading_at: Option<DateTime<Utc>>,
    /// The 95th percentile of the gaps between those readings over the 14 days.
    pub expected_gap_seconds: Option<i64>,
    /// Metrics the consents do not share, hence not judged.
    pub not_shared: Vec<String>,
    /// Values read but not judged, by metric code, with why: no shipped
    /// source gives norms of that metric at the subject's age (blood
    /// pressure before 18 years, when the watch's minimum age is set that
    /// low). Empty for adults.
    pub not_judged: BTreeMap<String, String>,
}

/// One watched person: a subject from `elderly_watch_min_age_years`
/// (default 65) at `at`, or without a birth date.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WatchedSubject {
    pub subject_id: Uuid,
    pub display_name: Option<String>,
    /// The membership the subject belongs to (the company's own, or a
    /// consenting individual's).
    pub membership_id: Uuid,
    /// `ok`, `attention` or `emergency`: the worst of the reasons.
    pub status: String,
    pub reasons: Vec<WatchReason>,
    pub inputs: WatchInputs,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WatchSummary {
    pub ok: u64,
    pub attention: u64,
    pub emergency: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"generated_at": "2026-11-21T08:00:01Z", "at": "2026-11-21T08:00:00Z", "lookback": "PT24H",
    "membership_id": "0193a5e2-7c1d-7b61-9d3e-5a1f0c2b4d6e",
    "subjects": [{"subject_id": "0193a5e2-7c1d-7b61-9d3e-5a1f0c2b4d70", "display_name": "Room 12", "membership_id": "0193a5e2-7c1d-7b61-9d3e-5a1f0c2b4d6e",
        "status": "attention", "reasons": [{"rule": "inactivity", "status": "attention", "metric": null,
        "values": {"silent_seconds": 5400.0, "threshold_seconds": 3600.0}, "at": "2026-11-21T06:30:00Z",
        "category": "silent", "threshold": "attention after 3600 s without a reading", "dataset": null,
        "source": "vitalfarm elderly watch: the person's own rhythm of readings over 14 days (no public dataset)"}],
        "inputs": {"age_days": 29220, "age_known": true, "age_note": null, "blood_pressure": null, "body_temperature": null, "heart_rate": {"value": 72.0, "at": "2026-11-21T06:30:00Z"},
        "ecg_heart_rate": null, "spo2": null, "blood_glucose": null, "last_reading_at": "2026-11-21T06:30:00Z", "expected_gap_seconds": 600, "not_shared": [], "not_judged": {}}}],
    "summary": {"ok": 0, "attention": 1, "emergency": 0}, "consents": []}))]
pub struct ElderlyWatchResponse {
    pub generated_at: DateTime<Utc>,
    /// The moment judged.
    pub at: DateTime<Utc>,
    pub lookback: String,
    /// The company watching.
    pub membership_id: Uuid,
    /// Emergencies first, then attention, then ok.
    pub subjects: Vec<WatchedSubject>,
    pub summary: WatchSummary,
    /// The consents that permitted reading another membership's data.
    pub consents: Vec<Uuid>,
}

/// The normal band a metric was judged against.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InfantNorm {
    pub low: f64,
    /// For temperature, fever starts at `high`.
    pub high: f64,
    /// Age group (`infant`, `toddler`...) or class (`normal`).
    pub band: String,
    pub dataset: String,
    pub source: String,
}

/// Statistics of one metric over the period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InfantMetric {
    /// The catalog code read.
    pub metric: String,
    /// Whether a consent shares it (always true for one's own subject);
    /// when false nothing was read.
    pub shared: bool,
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// Nearest-rank median.
    pub p50: Option<f64>,
    /// Null when the datasets give no band (SpO2 of a neonate).
    pub norm: Option<InfantNorm>,
    /// Share of the readings outside the band, 0 to 1.
    pub out_of_range_share: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EpisodeWorst {
    pub value: f64,
    pub at: DateTime<Utc>,
}

/// Consecutive out-of-range readings of one kind, less than 30 minutes apart.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InfantEpisode {
    /// `temperature`, `spo2` or `heart_rate`.
    pub metric: String,
    /// `fever`, `hypothermia`, `low_spo2`, `tachycardia` or `bradycardia`.
    pub kind: String,
    /// The first out-of-range reading.
    pub start: DateTime<Utc>,
    /// The last out-of-range reading.
    pub end: DateTime<Utc>,
    pub worst: EpisodeWorst,
    /// Number of readings in the episode.
    pub readings: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"subject_id": "0193a5e2-7c1d-7b61-9d3e-5a1f0c2b4d70", "from": "2026-11-20T08:00:00Z", "to": "2026-11-21T08:00:00Z",
    "age_days": 200, "metrics": {"temperature": {"metric": "body_temperature", "shared": true, "count": 3, "min": 37.0, "max": 38.9, "mean": 38.1, "p50": 38.4,
    "norm": {"low": 35.0, "high": 38.0, "band": "normal", "dataset": "temperature-thresholds", "source": "cdc-fever"}, "out_of_range_share": 0.67}},
    "episodes": [{"metric": "temperature", "kind": "fever", "start": "2026-11-21T02:00:00Z", "end": "2026-11-21T02:10:00Z",
    "worst": {"value": 38.9, "at": "2026-11-21T02:10:00Z"}, "readings": 2}], "consents": []}))]
pub struct InfantMonitorResponse {
    pub subject_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Age in days at `to`.
    pub age_days: i64,
    /// By `temperature`, `spo2`, `heart_rate`.
    pub metrics: BTreeMap<String, InfantMetric>,
    /// In time order.
    pub episodes: Vec<InfantEpisode>,
    pub consents: Vec<Uuid>,
}
