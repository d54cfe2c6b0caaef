//! Alert rules over the readings a membership may see, and the alerts they
//! open.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A rule to create. `condition` is one of
/// `{"kind": "threshold", "op": "gt|gte|lt|lte", "value": n}`,
/// `{"kind": "range", "min": n, "max": n}` (fires outside),
/// `{"kind": "rate_of_change", "delta": n, "per": "PT1H"}` (the change from
/// the subject's previous reading of the series, at most `per` earlier,
/// exceeds `delta` either way) and `{"kind": "no_data", "for": "PT6H"}`
/// (no reading of the metric, or of any metric when `metric` is left out,
/// for longer than `for`). Durations are ISO 8601 days, hours, minutes and
/// seconds, at most a year.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "High systolic", "metric": "blood_pressure", "component": "systolic",
    "condition": {"kind": "threshold", "op": "gt", "value": 180},
    "severity": "critical"
}))]
pub struct CreateAlertRuleRequest {
    /// 1 to 200 characters.
    pub name: String,
    /// A metric code from `GET /v1/metrics`; only a `no_data` rule may
    /// leave it out.
    pub metric: Option<String>,
    /// Required for a metric with components (except for `no_data`).
    pub component: Option<String>,
    /// The subjects to watch, each the membership's own or shared with it
    /// by a consent covering `metric`; left out: every subject the
    /// membership may see, now and later.
    pub subject_ids: Option<Vec<Uuid>>,
    #[schema(value_type = Object, example = json!({"kind": "threshold", "op": "gt", "value": 180}))]
    pub condition: serde_json::Value,
    /// `info`, `warning` or `critical`.
    #[schema(example = "critical")]
    pub severity: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "01935c6e-0000-7000-8000-0000000000a1", "membership_id": "01935c6e-0000-7000-8000-000000000001",
    "name": "High systolic", "metric": "blood_pressure", "component": "systolic", "subject_ids": null,
    "condition": {"kind": "threshold", "op": "gt", "value": 180.0}, "severity": "critical",
    "created_at": "2026-11-22T10:00:00Z", "enabled": true
}))]
pub struct AlertRule {
    pub id: Uuid,
    pub membership_id: Uuid,
    pub name: String,
    pub metric: Option<String>,
    pub component: Option<String>,
    /// `null`: every subject the membership may see.
    pub subject_ids: Option<Vec<Uuid>>,
    /// In canonical form (numbers as decimals, durations normalised).
    #[schema(value_type = Object)]
    pub condition: serde_json::Value,
    pub severity: String,
    pub created_at: DateTime<Utc>,
    /// `false` once the authorization of the OAuth app that created the
    /// rule ended (revoked by the person, by the app, or the app deleted):
    /// the rule is no longer evaluated.
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [], "next_cursor": null}))]
pub struct AlertRulePage {
    pub items: Vec<AlertRule>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// An alert: one per rule and subject while the condition persists
/// (`occurrences` counts the breaching readings), `open` until
/// acknowledged, `resolved` once a reading is back within bounds, data
/// arrives again (`no_data`), or the rule is deleted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "01935c6e-0000-7000-8000-0000000000b1", "rule_id": "01935c6e-0000-7000-8000-0000000000a1",
    "rule_name": "High systolic", "membership_id": "01935c6e-0000-7000-8000-000000000001",
    "subject_id": "01935c6e-0000-7000-8000-000000000003", "metric": "blood_pressure", "component": "systolic",
    "severity": "critical", "status": "open", "opened_at": "2026-11-22T10:05:00Z",
    "acknowledged_at": null, "acknowledged_by": null, "resolved_at": null,
    "last_value": 191.0, "last_value_at": "2026-11-22T10:07:00Z",
    "trigger": {"kind": "threshold", "value": 185.0, "op": "gt", "threshold": 180.0},
    "occurrences": 2
}))]
pub struct Alert {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub rule_name: String,
    /// The rule's membership.
    pub membership_id: Uuid,
    pub subject_id: Uuid,
    pub metric: Option<String>,
    pub component: Option<String>,
    pub severity: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The user or API key that acknowledged it.
    pub acknowledged_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The newest reading that breached the rule or resolved the alert.
    pub last_value: Option<f64>,
    pub last_value_at: Option<DateTime<Utc>>,
    /// Why it opened: `kind`, the `value`, and the rule's bounds
    /// (`threshold`, `min`/`max`, `previous_value`/`change`, `for`).
    #[schema(value_type = Object)]
    pub trigger: serde_json::Value,
    pub occurrences: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [], "next_cursor": null}))]
pub struct AlertPage {
    pub items: Vec<Alert>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
