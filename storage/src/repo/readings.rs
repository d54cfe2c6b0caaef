//! The reading store: batched, idempotent writes and time-ordered reads.

use std::collections::HashSet;

use chrono::Utc;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;
use vitalfarm_domain::{DeviceId, MembershipId, SubjectId};

use crate::entity::reading;
use crate::{Database, StorageError};

/// A reading's row about to be stored: one per component of a reading
/// (blood pressure has two), in the metric's canonical unit.
pub struct NewRow {
    pub membership_id: MembershipId,
    pub subject_id: SubjectId,
    /// The device that measured it; `None` for readings from elsewhere (a
    /// FHIR import, an ECG analysis, a manual entry), which `source` names.
    pub device_id: Option<DeviceId>,
    pub metric: &'static str,
    pub component: &'static str,
    pub ts_ms: i64,
    pub value: f64,
    pub unit: &'static str,
    pub source: &'static str,
    pub seq: Option<i64>,
}

/// A stored reading's identity: its origin, metric and time. The origin is
/// the device for a device's reading and the subject for a reading without
/// a device; ids are UUIDv7s, unique across both tables, so the two never
/// meet. The unique indexes behind it: `(device_id, metric, component,
/// ts_ms)`, and `(subject_id, metric, component, ts_ms)` where `device_id`
/// is NULL.
pub type ReadingKey = (Uuid, &'static str, i64);

impl NewRow {
    /// The identity of the reading this row belongs to.
    pub fn key(&self) -> ReadingKey {
        let origin = self.device_id.map_or(self.subject_id.as_uuid(), |d| d.as_uuid());
        (origin, self.metric, self.ts_ms)
    }
}

/// Rows per SQLite INSERT: 12 parameters each, well under SQLite's 32,766.
const SQLITE_ROWS: usize = 2000;

/// Stores `rows` in one transaction, skipping every row whose identity
/// (origin, metric, component, time: see [`ReadingKey`]) is already stored, so that replays of
/// a batch, or two nodes handling the same message, never store a value
/// twice. Returns the identities of the readings that were new.
///
/// Rows are written in key order: two writers inserting overlapping keys
/// then wait on each other in the same order and cannot deadlock.
pub async fn insert_new(db: &Database, mut rows: Vec<NewRow>) -> Result<HashSet<ReadingKey>, StorageError> {
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    rows.sort_unstable_by(|a, b| (a.key(), a.component).cmp(&(b.key(), b.component)));
    match db.kind() {
        crate::DatabaseKind::Postgres => insert_new_pg(db, &rows).await,
        crate::DatabaseKind::Sqlite => insert_new_sqlite(db, &rows).await,
    }
}

/// The metric code as the catalog's `&'static str`, for a key read back.
fn intern(rows: &[NewRow], metric: &str) -> Option<&'static str> {
    rows.iter().map(|r| r.metric).find(|m| *m == metric)
}

/// PostgreSQL: the whole batch is one statement whose parameters are
/// column arrays (`UNNEST`), so a batch of any size costs one round trip
/// and one plan.
async fn insert_new_pg(db: &Database, rows: &[NewRow]) -> Result<HashSet<ReadingKey>, StorageError> {
    let pool = db.conn().get_postgres_connection_pool();
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    let (mut memberships, mut subjects, mut devices) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut metrics, mut components, mut times) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut values, mut units, mut sources, mut seqs) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in rows {
        ids.push(Uuid::now_v7());
        memberships.push(r.membership_id.as_uuid());
        subjects.push(r.subject_id.as_uuid());
        devices.push(r.device_id.map(|d| d.as_uuid()));
        metrics.push(r.metric);
        components.push(r.component);
        times.push(r.ts_ms);
        values.push(r.value);
        units.push(r.unit);
        sources.push(r.source);
        seqs.push(r.seq);
    }
    // No conflict target: a row is skipped when it collides with either
    // unique index (a device's reading, or one without a device).
    let returned: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "INSERT INTO readings (id, membership_id, subject_id, device_id, metric, component, ts_ms, value, unit, source, seq, received_at) \
         SELECT u.*, $12 FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::int8[], $8::float8[], $9::text[], $10::text[], $11::int8[]) AS u \
         ON CONFLICT DO NOTHING \
         RETURNING COALESCE(device_id, subject_id), metric, ts_ms",
    )
    .bind(ids)
    .bind(memberships)
    .bind(subjects)
    .bind(devices)
    .bind(metrics)
    .bind(components)
    .bind(times)
    .bind(values)
    .bind(units)
    .bind(sources)
    .bind(seqs)
    .bind(Utc::now())
    .fetch_all(pool)
    .await
    .map_err(|e| StorageError::Db(sea_orm::DbErr::Custom(format!("inserting readings: {e}"))))?;
    Ok(returned
        .into_iter()
        .filter_map(|(origin, metric, ts)| Some((origin, intern(rows, &metric)?, ts)))
        .collect())
}

/// SQLite: multi-row INSERTs in one `BEGIN IMMEDIATE` transaction.
async fn insert_new_sqlite(db: &Database, rows: &[NewRow]) -> Result<HashSet<ReadingKey>, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let mut new = HashSet::new();
    for chunk in rows.chunks(SQLITE_ROWS) {
        let mut sql = String::from(
            "INSERT INTO readings (id, membership_id, subject_id, device_id, metric, component, ts_ms, value, unit, source, seq, received_at) VALUES ",
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 12);
        for (i, r) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 {
                "(?,?,?,?,?,?,?,?,?,?,?,?)"
            } else {
                ",(?,?,?,?,?,?,?,?,?,?,?,?)"
            });
            values.extend([
                Uuid::now_v7().into(),
                r.membership_id.as_uuid().into(),
                r.subject_id.as_uuid().into(),
                r.device_id.map(|d| d.as_uuid()).into(),
                r.metric.into(),
                r.component.into(),
                r.ts_ms.into(),
                r.value.into(),
                r.unit.into(),
                r.source.into(),
                r.seq.into(),
                now.into(),
            ]);
        }
        sql.push_str(" ON CONFLICT DO NOTHING RETURNING COALESCE(device_id, subject_id) AS origin, metric, ts_ms");
        let stmt = sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, values);
        for row in txn.query_all_raw(stmt).await? {
            let origin: Uuid = row.try_get("", "origin")?;
            let metric: String = row.try_get("", "metric")?;
            let ts: i64 = row.try_get("", "ts_ms")?;
            if let Some(metric) = intern(chunk, &metric) {
                new.insert((origin, metric, ts));
            }
        }
    }
    txn.commit().await?;
    Ok(new)
}

/// One stored row as a raw query returns it: the subject and metric were
/// asked for, and the unit is the metric's canonical one.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub ts_ms: i64,
    pub device_id: Option<Uuid>,
    pub component: String,
    pub value: f64,
    pub source: String,
}

/// Rows of one subject and metric in `[from, to)`, by time (then device and
/// component, so the rows of one reading are adjacent), after the `(ts_ms,
/// device)` cursor. Only columns of the covering index are read, so the
/// database answers from the index alone.
pub async fn list(
    db: &Database,
    subject: SubjectId,
    metric: &str,
    from_ms: i64,
    to_ms: i64,
    after: Option<(i64, Uuid)>,
    limit_rows: u64,
) -> Result<Vec<Listed>, StorageError> {
    let mut q = reading::Entity::find()
        .select_only()
        .columns([
            reading::Column::TsMs,
            reading::Column::DeviceId,
            reading::Column::Component,
            reading::Column::Value,
            reading::Column::Source,
        ])
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
    let rows: Vec<(i64, Option<Uuid>, String, f64, String)> = q.into_tuple().all(db.conn()).await?;
    Ok(rows
        .into_iter()
        .map(|(ts_ms, device_id, component, value, source)| Listed {
            ts_ms,
            device_id,
            component,
            value,
            source,
        })
        .collect())
}

/// Rows of `metric` for any of `subjects` in `[from, to)` (served by the
/// subject, metric, time index).
pub async fn count_in(
    db: &Database,
    subjects: &[Uuid],
    metric: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<u64, StorageError> {
    use sea_orm::PaginatorTrait;
    Ok(reading::Entity::find()
        .filter(reading::Column::SubjectId.is_in(subjects.iter().copied()))
        .filter(reading::Column::Metric.eq(metric))
        .filter(reading::Column::TsMs.gte(from_ms))
        .filter(reading::Column::TsMs.lt(to_ms))
        .count(db.conn())
        .await?)
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

/// One metric's part of a read across metrics: its code, its window
/// `[from, to)`, and how many rows to read at most.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricWindow<'a> {
    pub metric: &'a str,
    pub from_ms: i64,
    pub to_ms: i64,
    pub limit_rows: u64,
}

/// A position in the order of a read across metrics: time, then metric,
/// then device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub ts_ms: i64,
    pub metric: String,
    pub device_id: Option<Uuid>,
}

/// A stored row of a read across metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct AcrossRow {
    pub metric: String,
    pub row: Listed,
}

impl AcrossRow {
    pub fn position(&self) -> Position {
        Position {
            ts_ms: self.row.ts_ms,
            metric: self.metric.clone(),
            device_id: self.row.device_id,
        }
    }
}

/// Rows of several metrics of one subject, each metric in its own window,
/// after `after`, in the order (time, metric, device, component): the rows
/// of one reading are adjacent.
///
/// One indexed range read per metric (the `(subject, metric, ts, device,
/// component, ...)` covering index serves each), merged here. Each read is
/// cut at its `limit_rows`, so the merged list is complete only up to the
/// last row of the shortest cut list: a caller that asks every metric for
/// at least as many rows as it will use takes a correct prefix.
pub async fn list_across_metrics(
    db: &Database,
    subject: SubjectId,
    windows: &[MetricWindow<'_>],
    after: Option<&Position>,
) -> Result<Vec<AcrossRow>, StorageError> {
    let mut out = Vec::new();
    for w in windows {
        use reading::Column::{DeviceId, TsMs};
        let mut q = reading::Entity::find()
            .select_only()
            .columns([
                reading::Column::TsMs,
                reading::Column::DeviceId,
                reading::Column::Component,
                reading::Column::Value,
                reading::Column::Source,
            ])
            .filter(reading::Column::SubjectId.eq(subject.as_uuid()))
            .filter(reading::Column::Metric.eq(w.metric))
            .filter(reading::Column::TsMs.gte(w.from_ms))
            .filter(reading::Column::TsMs.lt(w.to_ms))
            .order_by_asc(reading::Column::TsMs)
            // NULLS FIRST on both databases (PostgreSQL puts them last by
            // default), so that the database's order is the merge's, where
            // a reading without a device comes before any with one.
            .order_by_with_nulls(
                reading::Column::DeviceId,
                sea_orm::Order::Asc,
                sea_orm::sea_query::NullOrdering::First,
            )
            .order_by_asc(reading::Column::Component)
            .limit(w.limit_rows);
        if let Some(p) = after {
            // Where this metric resumes in the (time, metric, device) order.
            let resume = match (w.metric.cmp(p.metric.as_str()), p.device_id) {
                // A metric after the cursor's: from the cursor's millisecond.
                (std::cmp::Ordering::Greater, _) => sea_orm::Condition::all().add(TsMs.gte(p.ts_ms)),
                // A metric before it: from the next millisecond.
                (std::cmp::Ordering::Less, _) => sea_orm::Condition::all().add(TsMs.gt(p.ts_ms)),
                // The cursor's metric: after its device at its millisecond,
                // where a reading without a device comes first.
                (std::cmp::Ordering::Equal, Some(device)) => sea_orm::Condition::any()
                    .add(TsMs.gt(p.ts_ms))
                    .add(TsMs.eq(p.ts_ms).and(DeviceId.gt(device))),
                (std::cmp::Ordering::Equal, None) => sea_orm::Condition::any()
                    .add(TsMs.gt(p.ts_ms))
                    .add(TsMs.eq(p.ts_ms).and(DeviceId.is_not_null())),
            };
            q = q.filter(resume);
        }
        let rows: Vec<(i64, Option<Uuid>, String, f64, String)> = q.into_tuple().all(db.conn()).await?;
        out.extend(
            rows.into_iter()
                .map(|(ts_ms, device_id, component, value, source)| AcrossRow {
                    metric: w.metric.to_owned(),
                    row: Listed {
                        ts_ms,
                        device_id,
                        component,
                        value,
                        source,
                    },
                }),
        );
    }
    out.sort_by(|a, b| {
        (a.row.ts_ms, &a.metric, a.row.device_id, &a.row.component).cmp(&(
            b.row.ts_ms,
            &b.metric,
            b.row.device_id,
            &b.row.component,
        ))
    });
    Ok(out)
}

/// Rows of one subject, metric and component in `[from, to)`: the number
/// of readings of the metric when `component` is one every reading has
/// (`""` for a scalar metric, the first component of a panel).
pub async fn count_component(
    db: &Database,
    subject: SubjectId,
    metric: &str,
    component: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<u64, StorageError> {
    use sea_orm::PaginatorTrait;
    Ok(reading::Entity::find()
        .filter(reading::Column::SubjectId.eq(subject.as_uuid()))
        .filter(reading::Column::Metric.eq(metric))
        .filter(reading::Column::TsMs.gte(from_ms))
        .filter(reading::Column::TsMs.lt(to_ms))
        .filter(reading::Column::Component.eq(component))
        .count(db.conn())
        .await?)
}
