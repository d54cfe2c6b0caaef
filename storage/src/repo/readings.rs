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
