//! Alert evaluation: readings are judged against the rules that watch their
//! subjects as they are stored (`evaluate`, called by the ingest writer
//! after each committed batch of the one write path, whatever the
//! source), and silences by the due loop (`due_loop`),
//! which reads only the `alert_due` rows whose time has come.
//!
//! A rule watches a subject when the subject belongs to the rule's
//! membership, or when an active consent of the subject's membership shares
//! the subject and the reading's metric with it; consents are evaluated at
//! evaluation time, so a revoked one stops its rules at the next reading.
//!
//! Opening or resolving an alert and its `alert.opened`/`alert.resolved`
//! event are one transaction. At most one alert per rule and subject is
//! live (a unique partial index); a node that loses the race to open one
//! counts an occurrence on the winner's instead. Evaluation never fails an
//! ingest: errors are logged (ids and counts only) and dropped.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::Utc;
use sea_orm::ConnectionTrait;
use uuid::Uuid;
use vitalfarm_domain::alerts::{self as rules, Condition, Rule, Verdict};
use vitalfarm_domain::{MembershipId, SubjectId};
use vitalfarm_openapi::alerts::{Alert, AlertRule};
use vitalfarm_storage::entity::{alert, alert_due, alert_rule};
use vitalfarm_storage::repo::alerts as repo;
use vitalfarm_storage::{Database, StorageError, stored_time};

use crate::events::{self, EventKind};
use crate::sharing::given::Given;

/// A reading just stored, as evaluation needs it. Metric and component
/// codes come from the catalog (`domain::metrics`).
#[derive(Debug, Clone, Copy)]
pub struct StoredReading {
    /// The membership the subject belongs to.
    pub membership_id: Uuid,
    pub subject_id: Uuid,
    pub metric: &'static str,
    /// `""` for a single-valued metric.
    pub component: &'static str,
    pub ts_ms: i64,
    pub value: f64,
}

/// Evaluates newly stored readings against the rules watching their
/// subjects. The ingest writer calls it for every batch it stored, so
/// every source of readings is judged the same way.
pub async fn evaluate(db: &Database, readings: &[StoredReading]) {
    if readings.is_empty() {
        return;
    }
    if let Err(e) = evaluate_batch(db, readings).await {
        tracing::warn!(error = %e, readings = readings.len(), "evaluating alert rules failed");
    }
}

/// A stored rule with its parsed form.
struct Loaded {
    row: alert_rule::Model,
    rule: Rule,
}

/// The parsed form of a stored rule; `None` (logged) if storage holds
/// something the API would not have accepted.
fn parse_row(row: &alert_rule::Model) -> Option<Rule> {
    let condition: serde_json::Value = serde_json::from_str(&row.condition).ok()?;
    let subject_ids: Option<Vec<Uuid>> = match &row.subject_ids {
        Some(text) => Some(serde_json::from_str(text).ok()?),
        None => None,
    };
    let parsed = Rule::parse(&rules::RuleInput {
        name: &row.name,
        metric: row.metric.as_deref(),
        component: (!row.component.is_empty()).then_some(row.component.as_str()),
        subject_ids: subject_ids.as_deref(),
        condition: &condition,
        severity: &row.severity,
    });
    if parsed.is_err() {
        tracing::warn!(rule_id = %row.id, "skipping an alert rule that does not parse");
    }
    parsed.ok()
}

/// Whether `rule` watches this reading (subject visible, metric matching).
fn watches(l: &Loaded, r: &StoredReading, consents: &Given) -> bool {
    if !l.rule.watches(r.metric, r.component) || !l.rule.covers_subject(SubjectId::from_uuid(r.subject_id)) {
        return false;
    }
    l.row.membership_id == r.membership_id
        || consents.permits(
            r.membership_id,
            l.row.membership_id,
            r.subject_id,
            Some(r.metric),
            r.ts_ms,
        )
}

async fn evaluate_batch(db: &Database, readings: &[StoredReading]) -> Result<(), StorageError> {
    let now_ms = Utc::now().timestamp_millis();
    let owners: Vec<Uuid> = readings
        .iter()
        .map(|r| r.membership_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let subjects: BTreeSet<SubjectId> = readings.iter().map(|r| SubjectId::from_uuid(r.subject_id)).collect();
    // Query 1: who else may see these subjects.
    let consents = Given::load(db, &owners, now_ms).await?;
    let mut watchers: BTreeSet<Uuid> = owners.iter().copied().collect();
    watchers.extend(consents.grantees_sharing(&subjects));
    // Query 2: their rules. With none, the batch costs nothing more.
    let watchers: Vec<Uuid> = watchers.into_iter().collect();
    let loaded: Vec<Loaded> = repo::rules_of(db, &watchers)
        .await?
        .into_iter()
        .filter_map(|row| parse_row(&row).map(|rule| Loaded { row, rule }))
        .collect();
    if loaded.is_empty() {
        return Ok(());
    }
    let mut ordered: Vec<&StoredReading> = readings.iter().collect();
    ordered.sort_by_key(|r| (r.subject_id, r.ts_ms));
    // Silences only need the newest reading per rule and subject.
    let mut heard: HashMap<(usize, Uuid), i64> = HashMap::new();
    for r in ordered {
        for (i, l) in loaded.iter().enumerate() {
            if !watches(l, r, &consents) {
                continue;
            }
            let verdict = match &l.rule.condition {
                Condition::NoData { .. } => {
                    let newest = heard.entry((i, r.subject_id)).or_insert(r.ts_ms);
                    *newest = (*newest).max(r.ts_ms);
                    continue;
                }
                Condition::RateOfChange { per_ms, .. } => {
                    let previous = repo::previous_reading(
                        db,
                        r.subject_id,
                        r.metric,
                        r.component,
                        r.ts_ms.saturating_sub(*per_ms),
                        r.ts_ms,
                    )
                    .await?;
                    rules::evaluate(&l.rule.condition, r.value, r.ts_ms, previous)
                }
                c => rules::evaluate(c, r.value, r.ts_ms, None),
            };
            let outcome = match verdict {
                Verdict::Breach { trigger } => {
                    breach(db, &l.row, r.subject_id, Some((r.value, r.ts_ms)), trigger).await
                }
                Verdict::Normal => settle(db, &l.row, r.subject_id, Some((r.value, r.ts_ms))).await,
                Verdict::Silent => Ok(()),
            };
            if let Err(e) = outcome {
                tracing::warn!(rule_id = %l.row.id, subject_id = %r.subject_id, error = %e, "applying an alert rule failed");
            }
        }
    }
    for ((i, subject), newest) in heard {
        let l = &loaded[i];
        if let Err(e) = heard_from(db, l, subject, newest).await {
            tracing::warn!(rule_id = %l.row.id, subject_id = %subject, error = %e, "restarting a silence rule failed");
        }
    }
    Ok(())
}

/// A breach of `rule` for `subject`: opens an alert (and its event), or
/// counts one more occurrence on the live one.
async fn breach(
    db: &Database,
    rule: &alert_rule::Model,
    subject: Uuid,
    value: Option<(f64, i64)>,
    trigger: serde_json::Value,
) -> Result<(), StorageError> {
    // Twice at most: a lost race to open finds the winner's alert.
    for _ in 0..2 {
        let txn = db.begin_write().await?;
        if let Some(live) = repo::live_alert(&txn, rule.id, subject).await? {
            repo::add_occurrence(&txn, &live, value.map(|v| v.0), value.map_or(0, |v| v.1)).await?;
            txn.commit().await?;
            return Ok(());
        }
        let now_ms = Utc::now().timestamp_millis();
        let row = alert::Model {
            id: Uuid::now_v7(),
            membership_id: rule.membership_id,
            rule_id: rule.id,
            rule_name: rule.name.clone(),
            subject_id: subject,
            metric: rule.metric.clone(),
            component: rule.component.clone(),
            severity: rule.severity.clone(),
            status: repo::OPEN.to_owned(),
            opened_at_ms: now_ms,
            acknowledged_at_ms: None,
            acknowledged_by: None,
            resolved_at_ms: None,
            last_value: value.map(|v| v.0),
            last_value_at_ms: value.map(|v| v.1),
            trigger: trigger.to_string(),
            occurrences: 1,
        };
        match repo::open_alert(&txn, row).await {
            Ok(opened) => {
                announce(&txn, EventKind::AlertOpened, &opened).await?;
                txn.commit().await?;
                tracing::info!(alert_id = %opened.id, rule_id = %rule.id, subject_id = %subject, "alert opened");
                return Ok(());
            }
            Err(StorageError::Conflict(_)) => {
                txn.rollback().await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A reading back within bounds: resolves the live alert, if any.
async fn settle(
    db: &Database,
    rule: &alert_rule::Model,
    subject: Uuid,
    value: Option<(f64, i64)>,
) -> Result<(), StorageError> {
    // Most normal readings find nothing to resolve: look before locking.
    if repo::live_alert(db.conn(), rule.id, subject).await?.is_none() {
        return Ok(());
    }
    let txn = db.begin_write().await?;
    resolve_live(&txn, rule.id, subject, value).await?;
    txn.commit().await?;
    Ok(())
}

async fn resolve_live(
    txn: &impl ConnectionTrait,
    rule: Uuid,
    subject: Uuid,
    value: Option<(f64, i64)>,
) -> Result<(), StorageError> {
    if let Some(live) = repo::live_alert(txn, rule, subject).await?
        && let Some(resolved) = repo::resolve(txn, &live, value, Utc::now().timestamp_millis()).await?
    {
        announce(txn, EventKind::AlertResolved, &resolved).await?;
        tracing::info!(alert_id = %resolved.id, rule_id = %rule, subject_id = %subject, "alert resolved");
    }
    Ok(())
}

/// A reading for a silence rule: its clock restarts from the newest
/// reading, and a live silence alert resolves.
async fn heard_from(db: &Database, l: &Loaded, subject: Uuid, newest_ms: i64) -> Result<(), StorageError> {
    let Condition::NoData { for_ms } = l.rule.condition else {
        return Ok(());
    };
    let txn = db.begin_write().await?;
    let existing = repo::find_due(&txn, l.row.id, subject).await?;
    let last = existing
        .and_then(|d| d.last_reading_ms)
        .map_or(newest_ms, |prev| prev.max(newest_ms));
    repo::set_due(
        &txn,
        alert_due::Model {
            rule_id: l.row.id,
            subject_id: subject,
            membership_id: l.row.membership_id,
            due_at_ms: Some(last.saturating_add(for_ms)),
            last_reading_ms: Some(last),
        },
    )
    .await?;
    resolve_live(&txn, l.row.id, subject, None).await?;
    txn.commit().await?;
    Ok(())
}

/// Starts a silence rule's clock for `subjects` from `now_ms` (at rule
/// creation, so a subject that never sends anything is noticed too).
pub async fn start_clocks(
    db: &Database,
    rule: &alert_rule::Model,
    for_ms: i64,
    subjects: &[Uuid],
    now_ms: i64,
) -> Result<(), StorageError> {
    let txn = db.begin_write().await?;
    for subject in subjects {
        repo::set_due(
            &txn,
            alert_due::Model {
                rule_id: rule.id,
                subject_id: *subject,
                membership_id: rule.membership_id,
                due_at_ms: Some(now_ms.saturating_add(for_ms)),
                last_reading_ms: None,
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Appends the alert's event in the transaction that changed it.
async fn announce(conn: &impl ConnectionTrait, kind: EventKind, a: &alert::Model) -> Result<(), StorageError> {
    let data = serde_json::to_value(alert_dto(a)?).unwrap_or(serde_json::Value::Null);
    events::emit(
        conn,
        MembershipId::from_uuid(a.membership_id),
        kind,
        Some(SubjectId::from_uuid(a.subject_id)),
        data,
    )
    .await?;
    Ok(())
}

/// Opens silence alerts whose time has come, until shutdown (`stop`).
pub async fn due_loop(db: Database, every: Duration, stop: tokio_util::sync::CancellationToken) {
    while crate::workers::idle(&stop, every).await {
        match run_due(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(opened = n, "silence rules came due"),
            Err(e) => tracing::warn!(error = %e, "checking due silence rules failed"),
        }
    }
}

/// One pass over the due silences; how many were handled.
pub async fn run_due(db: &Database) -> Result<usize, StorageError> {
    let now_ms = Utc::now().timestamp_millis();
    let mut handled = 0;
    for row in repo::due(db, now_ms, 200).await? {
        match fire_due(db, &row, now_ms).await {
            Ok(true) => handled += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(rule_id = %row.rule_id, subject_id = %row.subject_id, error = %e, "a due silence rule failed");
            }
        }
    }
    Ok(handled)
}

async fn fire_due(db: &Database, due: &alert_due::Model, now_ms: i64) -> Result<bool, StorageError> {
    // Claimed first and on its own, so two nodes never both fire it.
    let claim = db.begin_write().await?;
    let claimed = repo::claim_due(&claim, due).await?;
    claim.commit().await?;
    if !claimed {
        return Ok(false);
    }
    let Some(row) = repo::find_rule(db.conn(), due.rule_id).await? else {
        return Ok(false);
    };
    if row.disabled_at_ms.is_some() {
        return Ok(false);
    }
    let Some(rule) = parse_row(&row) else { return Ok(false) };
    let Condition::NoData { for_ms } = rule.condition else {
        return Ok(false);
    };
    // Still visible to the rule's membership? (A consent may have ended.)
    let Some(subject) = vitalfarm_storage::repo::subjects::find(db, SubjectId::from_uuid(due.subject_id)).await? else {
        return Ok(false);
    };
    if subject.membership_id != row.membership_id {
        let consents = Given::load(db, &[subject.membership_id], now_ms).await?;
        if !consents.permits(
            subject.membership_id,
            row.membership_id,
            subject.id,
            rule.metric,
            now_ms,
        ) {
            return Ok(false);
        }
    }
    breach(
        db,
        &row,
        due.subject_id,
        None,
        rules::no_data_trigger(for_ms, due.last_reading_ms),
    )
    .await?;
    Ok(true)
}

/// Resolves every live alert of a rule being deleted, on `txn`.
pub async fn resolve_all_of_rule(txn: &impl ConnectionTrait, rule: Uuid) -> Result<usize, StorageError> {
    let live = repo::live_alerts_of_rule(txn, rule).await?;
    let now_ms = Utc::now().timestamp_millis();
    let mut n = 0;
    for a in live {
        if let Some(resolved) = repo::resolve(txn, &a, None, now_ms).await? {
            announce(txn, EventKind::AlertResolved, &resolved).await?;
            n += 1;
        }
    }
    Ok(n)
}

pub fn alert_dto(a: &alert::Model) -> Result<Alert, StorageError> {
    Ok(Alert {
        id: a.id,
        rule_id: a.rule_id,
        rule_name: a.rule_name.clone(),
        membership_id: a.membership_id,
        subject_id: a.subject_id,
        metric: a.metric.clone(),
        component: (!a.component.is_empty()).then(|| a.component.clone()),
        severity: a.severity.clone(),
        status: a.status.clone(),
        opened_at: stored_time(a.opened_at_ms)?,
        acknowledged_at: a.acknowledged_at_ms.map(stored_time).transpose()?,
        acknowledged_by: a.acknowledged_by,
        resolved_at: a.resolved_at_ms.map(stored_time).transpose()?,
        last_value: a.last_value,
        last_value_at: a.last_value_at_ms.map(stored_time).transpose()?,
        trigger: serde_json::from_str(&a.trigger).unwrap_or(serde_json::Value::Null),
        occurrences: i64::from(a.occurrences),
    })
}

pub fn rule_dto(r: &alert_rule::Model) -> Result<AlertRule, StorageError> {
    Ok(AlertRule {
        id: r.id,
        membership_id: r.membership_id,
        name: r.name.clone(),
        metric: r.metric.clone(),
        component: (!r.component.is_empty()).then(|| r.component.clone()),
        subject_ids: r.subject_ids.as_deref().and_then(|t| serde_json::from_str(t).ok()),
        condition: serde_json::from_str(&r.condition).unwrap_or(serde_json::Value::Null),
        severity: r.severity.clone(),
        created_at: stored_time(r.created_at_ms)?,
        enabled: r.disabled_at_ms.is_none(),
    })
}
