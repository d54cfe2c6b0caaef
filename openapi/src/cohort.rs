//! Cohort aggregates: one metric over many subjects, grouped by age band and
//! sex, with groups smaller than k suppressed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"metric": "heart_rate", "from": "2026-11-01T00:00:00Z", "to": "2026-11-22T00:00:00Z",
    "group_by": ["age_band", "sex"], "age_bands": [0, 18, 40, 65, 80], "k": 5}))]
pub struct CohortRequest {
    /// The membership to act for, when the caller reads for several.
    pub membership_id: Option<Uuid>,
    /// A metric code from `GET /v1/metrics`.
    pub metric: String,
    /// The component, required for a metric with components
    /// (`systolic` or `diastolic` of `blood_pressure`).
    pub component: Option<String>,
    pub from: DateTime<Utc>,
    /// At most 366 days after `from`; ages are taken on this date.
    pub to: DateTime<Utc>,
    /// `age_band`, `sex`, both (default) or neither.
    pub group_by: Option<Vec<String>>,
    /// Lower edges of the age bands in years, strictly increasing
    /// (default `[0, 18, 40, 65, 80]`).
    pub age_bands: Option<Vec<u32>>,
    /// Smallest group published (default 5, at least 3).
    pub k: Option<u32>,
    /// Only these subjects (at most 10,000); others the caller cannot read
    /// are left out.
    pub subject_ids: Option<Vec<Uuid>>,
    /// Whether subjects shared by consents count (default true).
    pub include_shared: Option<bool>,
}

/// A published group: at least k subjects contributed readings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CohortGroup {
    /// `65-79`, `80+` or `unknown`; absent when not grouped by age.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_band: Option<String>,
    /// `female`, `male`, `other` or `unknown`; absent when not grouped by sex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    /// Subjects with readings in the group.
    pub subjects: u64,
    pub readings: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation of the readings; null below two readings.
    pub stddev: Option<f64>,
}

/// A suppressed group: named, without any count or value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuppressedGroup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_band: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
}

/// Sums over the published groups only (never over all subjects, which
/// would reveal the suppressed groups by difference).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CohortTotals {
    pub subjects: u64,
    pub readings: u64,
    pub groups_published: u64,
    pub groups_suppressed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"metric": "heart_rate", "component": null, "from": "2026-11-01T00:00:00Z", "to": "2026-11-22T00:00:00Z", "k": 5,
    "groups": [{"age_band": "65-79", "sex": "female", "subjects": 7, "readings": 2016, "mean": 71.4, "min": 48.0, "max": 131.0, "stddev": 9.8}],
    "suppressed": [{"age_band": "18-39", "sex": "male"}],
    "totals": {"subjects": 7, "readings": 2016, "groups_published": 1, "groups_suppressed": 1},
    "consents": ["0193a5e2-7c1d-7b61-9d3e-5a1f0c2b4d6e"]}))]
pub struct CohortResponse {
    pub metric: String,
    pub component: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub k: u32,
    /// Groups with at least k subjects, by age band then sex.
    pub groups: Vec<CohortGroup>,
    /// Groups with fewer than k subjects.
    pub suppressed: Vec<SuppressedGroup>,
    pub totals: CohortTotals,
    /// The consents under which other memberships' subjects were counted.
    pub consents: Vec<Uuid>,
}
