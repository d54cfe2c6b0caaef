//! The reading store: batched, idempotent writes and time-ordered reads.

use std::collections::HashSet;

use chrono::Utc;
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;
use vitalfarm_domain::{DeviceId, SubjectId};

use crate::entity::reading;
use crate::{Database, StorageError};

/// Rows per INSERT statement (13 parameters each).
const BATCH: usize = 1000;

pub struct NewRow {
    pub membership_id: Uuid,
    pub subject_id: Uuid,
    pub device_id: Option<Uuid>,
    pub metric: &'static str,
    pub component: &'static str,
    pub ts_ms: i64,
    pub value: f64,
    pub unit: &'static str,
    pub source: &'static str,
    pub seq: Option<i64>,
}

/// The `(metric, ts_ms)` of this device's readings already stored among
/// `keys`: what a retry would send again.
pub async fn existing(
    db: &Database,
    device: DeviceId,
    keys: &[(&str, i64)],
) -> Result<HashSet<(String, i64)>, StorageError> {
    let mut found = HashSet::new();
    for chunk in keys.chunks(BATCH) {
        let times: Vec<i64> = chunk.iter().map(|(_, t)| *t).collect();
        let rows: Vec<(String, i64)> = reading::Entity::find()
            .select_only()
            .column(reading::Column::Metric)
            .column(reading::Column::TsMs)
            .filter(reading::Column::DeviceId.eq(device.as_uuid()))
            .filter(reading::Column::TsMs.is_in(times))
            .into_tuple()
            .all(db.conn())
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Stores `rows` in one transaction, batched. A row whose identity (device,
/// metric, component, time) is already stored is skipped, so replays of a
/// batch, or two nodes handling the same message, never store a value
/// twice. Returns how many rows were new.
pub async fn insert(db: &Database, rows: Vec<NewRow>) -> Result<u64, StorageError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let mut inserted = 0;
    for chunk in rows.chunks(BATCH) {
        let models = chunk.iter().map(|r| reading::ActiveModel {
            id: sea_orm::Set(Uuid::now_v7()),
            membership_id: sea_orm::Set(r.membership_id),
            subject_id: sea_orm::Set(r.subject_id),
            device_id: sea_orm::Set(r.device_id),
            metric: sea_orm::Set(r.metric.to_owned()),
            component: sea_orm::Set(r.component.to_owned()),
            ts_ms: sea_orm::Set(r.ts_ms),
            value: sea_orm::Set(r.value),
            unit: sea_orm::Set(r.unit.to_owned()),
            source: sea_orm::Set(r.source.to_owned()),
            seq: sea_orm::Set(r.seq),
            received_at: sea_orm::Set(now),
        });
        inserted += reading::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([
                    reading::Column::DeviceId,
                    reading::Column::Metric,
                    reading::Column::Component,
                    reading::Column::TsMs,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(inserted)
}

/// Rows of one subject and metric in `[from, to)`, by time (then device and
/// component, so the rows of one reading are adjacent), after the `(ts_ms,
/// device)` cursor.
pub async fn list(
    db: &Database,
    subject: SubjectId,
    metric: &str,
    from_ms: i64,
    to_ms: i64,
    after: Option<(i64, Uuid)>,
    limit_rows: u64,
) -> Result<Vec<reading::Model>, StorageError> {
    let mut q = reading::Entity::find()
        .filter(reading::Column::SubjectId.eq(subject.as_uuid()))
        .filter(reading::Column::Metric.eq(metric))
        .filter(reading::Column::TsMs.gte(from_ms))
        .filter(reading::Column::TsMs.lt(to_ms))
        .order_by_asc(reading::Column::TsMs)
        .order_by_asc(reading::Column::DeviceId)
        .order_by_asc(reading::Column::Component)
        .limit(limit_rows);
    if let Some((ts, device)) = after {
        q = q.filter(
            sea_orm::Condition::any()
                .add(reading::Column::TsMs.gt(ts))
                .add(reading::Column::TsMs.eq(ts).and(reading::Column::DeviceId.gt(device))),
        );
    }
    Ok(q.all(db.conn()).await?)
}

/// One time bucket of one component.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub component: String,
    pub start_ms: i64,
    pub count: i64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

fn placeholders(db: &Database, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| match db.kind() {
            crate::DatabaseKind::Postgres => format!("${i}"),
            crate::DatabaseKind::Sqlite => "?".to_owned(),
        })
        .collect()
}

/// Count, min, max and mean per component in buckets of `bucket_ms`
/// aligned to the epoch, computed by the database over the
/// `(subject, metric, ts)` index.
pub async fn aggregate(
    db: &Database,
    subject: SubjectId,
    metric: &str,
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<Bucket>, StorageError> {
    use sea_orm::{ConnectionTrait, Statement};
    let p = placeholders(db, 4);
    // The bucket width is one of a few server constants, never client text,
    // so it is written into the statement as an integer literal.
    let b = std::cmp::max(bucket_ms, 1);
    let sql = format!(
        "SELECT component, (ts_ms / {b}) * {b} AS start_ms, COUNT(*) AS n, MIN(value) AS lo, MAX(value) AS hi, AVG(value) AS mean \
         FROM readings WHERE subject_id = {} AND metric = {} AND ts_ms >= {} AND ts_ms < {} \
         GROUP BY component, start_ms ORDER BY start_ms, component",
        p[0], p[1], p[2], p[3]
    );
    let values: Vec<sea_orm::Value> = vec![
        subject.as_uuid().into(),
        metric.to_owned().into(),
        from_ms.into(),
        to_ms.into(),
    ];
    let rows = db
        .conn()
        .query_all_raw(Statement::from_sql_and_values(db.backend(), sql, values))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Bucket {
                component: r.try_get("", "component")?,
                start_ms: r.try_get("", "start_ms")?,
                count: r.try_get("", "n")?,
                min: r.try_get("", "lo")?,
                max: r.try_get("", "hi")?,
                mean: r.try_get("", "mean")?,
            })
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(StorageError::from)
}

/// Statistics of one metric component over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub metric: String,
    pub component: String,
    pub unit: String,
    pub count: i64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub latest_ms: i64,
    pub latest: f64,
}

/// Per metric and component of a subject in `[from, to)`: count, min, max,
/// mean, nearest-rank p50 and p95, and the latest value.
pub async fn summary(db: &Database, subject: SubjectId, from_ms: i64, to_ms: i64) -> Result<Vec<Stats>, StorageError> {
    use sea_orm::{ConnectionTrait, Statement};
    let p = placeholders(db, 3);
    let sql = format!(
        "SELECT metric, component, MIN(unit) AS unit, COUNT(*) AS n, MIN(value) AS lo, MAX(value) AS hi, AVG(value) AS mean \
         FROM readings WHERE subject_id = {} AND ts_ms >= {} AND ts_ms < {} GROUP BY metric, component ORDER BY metric, component",
        p[0], p[1], p[2]
    );
    let base: Vec<sea_orm::Value> = vec![subject.as_uuid().into(), from_ms.into(), to_ms.into()];
    let groups = db
        .conn()
        .query_all_raw(Statement::from_sql_and_values(db.backend(), sql, base.clone()))
        .await?;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let metric: String = g.try_get("", "metric")?;
        let component: String = g.try_get("", "component")?;
        let count: i64 = g.try_get("", "n")?;
        let q = placeholders(db, 6);
        let nth = format!(
            "SELECT value FROM readings WHERE subject_id = {} AND ts_ms >= {} AND ts_ms < {} AND metric = {} AND component = {} \
             ORDER BY value LIMIT 1 OFFSET {}",
            q[0], q[1], q[2], q[3], q[4], q[5]
        );
        let at = |rank: f64| {
            // Nearest rank: the smallest value with at least `rank` of the
            // values at or below it.
            let k = ((rank * count as f64).ceil() as i64 - 1).clamp(0, count - 1);
            let mut values = base.clone();
            values.extend([metric.clone().into(), component.clone().into(), k.into()]);
            Statement::from_sql_and_values(db.backend(), nth.clone(), values)
        };
        let p50 = db
            .conn()
            .query_one_raw(at(0.5))
            .await?
            .map(|r| r.try_get::<f64>("", "value"))
            .transpose()?
            .unwrap_or_default();
        let p95 = db
            .conn()
            .query_one_raw(at(0.95))
            .await?
            .map(|r| r.try_get::<f64>("", "value"))
            .transpose()?
            .unwrap_or_default();
        let latest = reading::Entity::find()
            .filter(reading::Column::SubjectId.eq(subject.as_uuid()))
            .filter(reading::Column::Metric.eq(metric.as_str()))
            .filter(reading::Column::Component.eq(component.as_str()))
            .filter(reading::Column::TsMs.gte(from_ms))
            .filter(reading::Column::TsMs.lt(to_ms))
            .order_by_desc(reading::Column::TsMs)
            .one(db.conn())
            .await?;
        out.push(Stats {
            unit: g.try_get("", "unit")?,
            count,
            min: g.try_get("", "lo")?,
            max: g.try_get("", "hi")?,
            mean: g.try_get("", "mean")?,
            p50,
            p95,
            latest_ms: latest.as_ref().map_or(0, |l| l.ts_ms),
            latest: latest.map_or(0.0, |l| l.value),
            metric,
            component,
        });
    }
    Ok(out)
}
