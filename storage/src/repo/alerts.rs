//! Alert rules, alerts and the due times of silence rules (see the
//! migration). Functions that change an alert take a connection so the
//! caller can write the alert and its event in one transaction.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;
use vitalfarm_domain::MembershipId;

use crate::entity::{alert, alert_due, alert_rule, reading};
use crate::page::{self, Keyset};
use crate::{Database, Page, StorageError};

pub const OPEN: &str = "open";
pub const ACKNOWLEDGED: &str = "acknowledged";
pub const RESOLVED: &str = "resolved";

pub async fn create_rule(db: &Database, rule: alert_rule::Model) -> Result<alert_rule::Model, StorageError> {
    Ok(alert_rule::ActiveModel::from(rule).insert(db.conn()).await?)
}

pub async fn find_rule_in(
    db: &Database,
    membership: MembershipId,
    id: Uuid,
) -> Result<Option<alert_rule::Model>, StorageError> {
    Ok(alert_rule::Entity::find_by_id(id)
        .filter(alert_rule::Column::MembershipId.eq(membership.as_uuid()))
        .one(db.conn())
        .await?)
}

pub async fn find_rule(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<alert_rule::Model>, StorageError> {
    Ok(alert_rule::Entity::find_by_id(id).one(conn).await?)
}

pub async fn list_rules(
    db: &Database,
    membership: MembershipId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<alert_rule::Model>, StorageError> {
    let q = alert_rule::Entity::find().filter(alert_rule::Column::MembershipId.eq(membership.as_uuid()));
    page::fetch(db.conn(), q, Keyset::after(alert_rule::Column::Id, after, limit), |r| {
        r.id
    })
    .await
}

/// Every enabled rule of the given memberships: what one ingest batch is
/// evaluated against.
pub async fn rules_of(db: &Database, memberships: &[Uuid]) -> Result<Vec<alert_rule::Model>, StorageError> {
    if memberships.is_empty() {
        return Ok(Vec::new());
    }
    Ok(alert_rule::Entity::find()
        .filter(alert_rule::Column::MembershipId.is_in(memberships.iter().copied()))
        .filter(alert_rule::Column::DisabledAtMs.is_null())
        .order_by_asc(alert_rule::Column::Id)
        .all(db.conn())
        .await?)
}

/// Deletes a rule and its due times; `false` when it was not there.
pub async fn delete_rule(
    conn: &impl ConnectionTrait,
    membership: MembershipId,
    id: Uuid,
) -> Result<bool, StorageError> {
    let res = alert_rule::Entity::delete_many()
        .filter(alert_rule::Column::Id.eq(id))
        .filter(alert_rule::Column::MembershipId.eq(membership.as_uuid()))
        .exec(conn)
        .await?;
    alert_due::Entity::delete_many()
        .filter(alert_due::Column::RuleId.eq(id))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// The open or acknowledged alert of a rule for a subject.
pub async fn live_alert(
    conn: &impl ConnectionTrait,
    rule: Uuid,
    subject: Uuid,
) -> Result<Option<alert::Model>, StorageError> {
    Ok(alert::Entity::find()
        .filter(alert::Column::RuleId.eq(rule))
        .filter(alert::Column::SubjectId.eq(subject))
        .filter(alert::Column::Status.ne(RESOLVED))
        .one(conn)
        .await?)
}

/// Every open or acknowledged alert of a rule.
pub async fn live_alerts_of_rule(conn: &impl ConnectionTrait, rule: Uuid) -> Result<Vec<alert::Model>, StorageError> {
    Ok(alert::Entity::find()
        .filter(alert::Column::RuleId.eq(rule))
        .filter(alert::Column::Status.ne(RESOLVED))
        .all(conn)
        .await?)
}

/// Inserts a new live alert; `Conflict` when another one for the same rule
/// and subject is live already (another node got there first).
pub async fn open_alert(conn: &impl ConnectionTrait, a: alert::Model) -> Result<alert::Model, StorageError> {
    alert::ActiveModel::from(a)
        .insert(conn)
        .await
        .map_err(|e| StorageError::unique(e, "an alert for this rule and subject is open already"))
}

/// Counts one more breach on a live alert.
pub async fn add_occurrence(
    conn: &impl ConnectionTrait,
    live: &alert::Model,
    value: Option<f64>,
    at_ms: i64,
) -> Result<alert::Model, StorageError> {
    let mut am: alert::ActiveModel = live.clone().into();
    am.occurrences = Set(live.occurrences.saturating_add(1));
    if value.is_some() {
        am.last_value = Set(value);
        am.last_value_at_ms = Set(Some(at_ms));
    }
    Ok(am.update(conn).await?)
}

/// Resolves a live alert; `None` when it had resolved already.
pub async fn resolve(
    conn: &impl ConnectionTrait,
    live: &alert::Model,
    value: Option<(f64, i64)>,
    now_ms: i64,
) -> Result<Option<alert::Model>, StorageError> {
    let mut q = alert::Entity::update_many()
        .col_expr(alert::Column::Status, Expr::value(RESOLVED))
        .col_expr(alert::Column::ResolvedAtMs, Expr::value(now_ms));
    if let Some((v, at)) = value {
        q = q
            .col_expr(alert::Column::LastValue, Expr::value(v))
            .col_expr(alert::Column::LastValueAtMs, Expr::value(at));
    }
    let res = q
        .filter(alert::Column::Id.eq(live.id))
        .filter(alert::Column::Status.ne(RESOLVED))
        .exec(conn)
        .await?;
    if res.rows_affected == 0 {
        return Ok(None);
    }
    Ok(alert::Entity::find_by_id(live.id).one(conn).await?)
}

pub async fn find_alert(db: &Database, id: Uuid) -> Result<Option<alert::Model>, StorageError> {
    Ok(alert::Entity::find_by_id(id).one(db.conn()).await?)
}

/// Acknowledges an open alert; `false` when it was not open.
pub async fn acknowledge(db: &Database, id: Uuid, by: Option<Uuid>, now_ms: i64) -> Result<bool, StorageError> {
    let res = alert::Entity::update_many()
        .col_expr(alert::Column::Status, Expr::value(ACKNOWLEDGED))
        .col_expr(alert::Column::AcknowledgedAtMs, Expr::value(now_ms))
        .col_expr(alert::Column::AcknowledgedBy, Expr::value(by))
        .filter(alert::Column::Id.eq(id))
        .filter(alert::Column::Status.eq(OPEN))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<&'static str>,
    pub subject: Option<Uuid>,
    pub rule: Option<Uuid>,
}

pub async fn list_alerts(
    db: &Database,
    membership: MembershipId,
    filter: &AlertFilter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<alert::Model>, StorageError> {
    let mut cond = Condition::all().add(alert::Column::MembershipId.eq(membership.as_uuid()));
    if let Some(s) = filter.status {
        cond = cond.add(alert::Column::Status.eq(s));
    }
    if let Some(s) = filter.subject {
        cond = cond.add(alert::Column::SubjectId.eq(s));
    }
    if let Some(r) = filter.rule {
        cond = cond.add(alert::Column::RuleId.eq(r));
    }
    let q = alert::Entity::find().filter(cond);
    page::fetch(db.conn(), q, Keyset::after(alert::Column::Id, after, limit), |r| r.id).await
}

/// The newest reading of a subject's series taken in `[since_ms,
/// before_ms)`: what a rate-of-change rule compares with. One lookup on the
/// readings' (subject, metric, time) index.
pub async fn previous_reading(
    db: &Database,
    subject: Uuid,
    metric: &str,
    component: &str,
    since_ms: i64,
    before_ms: i64,
) -> Result<Option<(i64, f64)>, StorageError> {
    let row = reading::Entity::find()
        .filter(reading::Column::SubjectId.eq(subject))
        .filter(reading::Column::Metric.eq(metric))
        .filter(reading::Column::Component.eq(component))
        .filter(reading::Column::TsMs.gte(since_ms))
        .filter(reading::Column::TsMs.lt(before_ms))
        .order_by_desc(reading::Column::TsMs)
        .one(db.conn())
        .await?;
    Ok(row.map(|r| (r.ts_ms, r.value)))
}

/// Sets when a silence rule next comes due for a subject, after a reading
/// at `last_reading_ms`.
pub async fn set_due(conn: &impl ConnectionTrait, row: alert_due::Model) -> Result<(), StorageError> {
    alert_due::Entity::insert(alert_due::ActiveModel::from(row))
        .on_conflict(
            OnConflict::columns([alert_due::Column::RuleId, alert_due::Column::SubjectId])
                .update_columns([alert_due::Column::DueAtMs, alert_due::Column::LastReadingMs])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Up to `limit` silences whose time has come, earliest first.
pub async fn due(db: &Database, now_ms: i64, limit: u64) -> Result<Vec<alert_due::Model>, StorageError> {
    Ok(alert_due::Entity::find()
        .filter(alert_due::Column::DueAtMs.lte(now_ms))
        .order_by_asc(alert_due::Column::DueAtMs)
        .limit(limit)
        .all(db.conn())
        .await?)
}

/// Takes a due silence for this node: clears its due time if it is still
/// the one read, so two nodes never both act on it.
pub async fn claim_due(conn: &impl ConnectionTrait, row: &alert_due::Model) -> Result<bool, StorageError> {
    let Some(at) = row.due_at_ms else { return Ok(false) };
    let res = alert_due::Entity::update_many()
        .col_expr(alert_due::Column::DueAtMs, Expr::value(Option::<i64>::None))
        .filter(alert_due::Column::RuleId.eq(row.rule_id))
        .filter(alert_due::Column::SubjectId.eq(row.subject_id))
        .filter(alert_due::Column::DueAtMs.eq(at))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Removes a membership's rules, alerts and due times (erasure), and
/// every other membership's alerts and due times about its subjects (they
/// carry its readings' values). Run while its subjects still exist.
pub async fn delete_all_in(conn: &impl ConnectionTrait, membership: MembershipId) -> Result<u64, StorageError> {
    use crate::entity::subject;
    let m = membership.as_uuid();
    let its_subjects = || {
        sea_orm::sea_query::Query::select()
            .column(subject::Column::Id)
            .from(subject::Entity)
            .and_where(subject::Column::MembershipId.eq(m))
            .to_owned()
    };
    let a = alert::Entity::delete_many()
        .filter(
            Condition::any()
                .add(alert::Column::MembershipId.eq(m))
                .add(alert::Column::SubjectId.in_subquery(its_subjects())),
        )
        .exec(conn)
        .await?;
    let d = alert_due::Entity::delete_many()
        .filter(
            Condition::any()
                .add(alert_due::Column::MembershipId.eq(m))
                .add(alert_due::Column::SubjectId.in_subquery(its_subjects())),
        )
        .exec(conn)
        .await?;
    let r = alert_rule::Entity::delete_many()
        .filter(alert_rule::Column::MembershipId.eq(m))
        .exec(conn)
        .await?;
    Ok(a.rows_affected + d.rows_affected + r.rows_affected)
}

/// The consents the given memberships have granted, not revoked (validity
/// is evaluated by the caller): through them other memberships' rules may
/// watch these memberships' subjects.
pub async fn consents_granted_by(
    db: &Database,
    grantors: &[Uuid],
) -> Result<Vec<crate::entity::consent::Model>, StorageError> {
    use crate::entity::consent;
    if grantors.is_empty() {
        return Ok(Vec::new());
    }
    Ok(consent::Entity::find()
        .filter(consent::Column::GrantorMembershipId.is_in(grantors.iter().copied()))
        .filter(consent::Column::RevokedAtMs.is_null())
        .all(db.conn())
        .await?)
}

/// The ids of a membership's subjects (a silence rule over all of them
/// starts its clock for each at creation).
pub async fn subject_ids_of(db: &Database, membership: MembershipId) -> Result<Vec<Uuid>, StorageError> {
    use crate::entity::subject;
    Ok(subject::Entity::find()
        .select_only()
        .column(subject::Column::Id)
        .filter(subject::Column::MembershipId.eq(membership.as_uuid()))
        .into_tuple::<Uuid>()
        .all(db.conn())
        .await?)
}

pub async fn find_due(
    conn: &impl ConnectionTrait,
    rule: Uuid,
    subject: Uuid,
) -> Result<Option<alert_due::Model>, StorageError> {
    Ok(alert_due::Entity::find_by_id((rule, subject)).one(conn).await?)
}
