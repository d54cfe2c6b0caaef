//! The queries behind a consent preview: how many readings of a subject's
//! metric lie in a window, the first and last of them, an evenly spread
//! sample, and the files and bytes under a farm folder. All are read-only
//! and served by the indexes the shared reads use: `(subject, metric, ts,
//! device, component, ...)` for readings, `(farm, path)` for files.

use sea_orm::sea_query::{Expr, ExprTrait, NullOrdering};
use sea_orm::{ColumnTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;
use vitalfarm_domain::{FarmId, SubjectId};

use crate::entity::{farm_file, reading};
use crate::repo::farms::range_end;
use crate::{Database, StorageError};

/// The readings of one subject and metric in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// One sampled reading: its time and its values, one per component (`""`
/// for a scalar metric).
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    pub ts_ms: i64,
    pub values: Vec<(String, f64)>,
}

/// The readings of `subject`'s `metric` in `[from, to)`, counted by the rows
/// of `component`, which every reading of the metric has (`""` for a
/// scalar metric, the first component of a panel); `None` when there are
/// none.
pub async fn span(
    db: &Database,
    subject: SubjectId,
    metric: &str,
    component: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Option<Span>, StorageError> {
    if from_ms >= to_ms {
        return Ok(None);
    }
    let row: Option<(i64, Option<i64>, Option<i64>)> = reading::Entity::find()
        .select_only()
        .column_as(Expr::col(reading::Column::TsMs).count(), "n")
        .column_as(Expr::col(reading::Column::TsMs).min(), "lo")
        .column_as(Expr::col(reading::Column::TsMs).max(), "hi")
        .filter(reading::Column::SubjectId.eq(subject.as_uuid()))
        .filter(reading::Column::Metric.eq(metric))
        .filter(reading::Column::Component.eq(component))
        .filter(reading::Column::TsMs.gte(from_ms))
        .filter(reading::Column::TsMs.lt(to_ms))
        .into_tuple()
        .one(db.conn())
        .await?;
    Ok(match row {
        Some((n, Some(first_ms), Some(last_ms))) if n > 0 => Some(Span {
            count: u64::try_from(n).unwrap_or(0),
            first_ms,
            last_ms,
        }),
        _ => None,
    })
}

/// The positions (0-based, in time order) of `k` readings spread evenly
/// over `count`, the first and the last included.
pub fn spread(count: u64, k: u64) -> Vec<u64> {
    let k = std::cmp::Ord::min(k, count);
    match k {
        0 => Vec::new(),
        1 => vec![0],
        _ => (0..k).map(|i| i * (count - 1) / (k - 1)).collect(),
    }
}

/// Up to `k` readings of `subject`'s `metric` in `[from, to)`, spread evenly
/// over the `count` readings `span` found (in the order time, then device,
/// a reading without a device first), each with all its components.
///
/// One indexed read per sampled reading: an offset into the window, then
/// the reading's rows at its time. The offset walks the index up to it, so
/// `k` stays small.
pub async fn sample(
    db: &Database,
    subject: SubjectId,
    metric: &str,
    component: &str,
    (from_ms, to_ms): (i64, i64),
    count: u64,
    k: u64,
) -> Result<Vec<Sampled>, StorageError> {
    let mut out = Vec::new();
    for at in spread(count, k) {
        let picked: Option<(i64, Option<Uuid>)> = reading::Entity::find()
            .select_only()
            .columns([reading::Column::TsMs, reading::Column::DeviceId])
            .filter(reading::Column::SubjectId.eq(subject.as_uuid()))
            .filter(reading::Column::Metric.eq(metric))
            .filter(reading::Column::Component.eq(component))
            .filter(reading::Column::TsMs.gte(from_ms))
            .filter(reading::Column::TsMs.lt(to_ms))
            .order_by_asc(reading::Column::TsMs)
            .order_by_with_nulls(reading::Column::DeviceId, Order::Asc, NullOrdering::First)
            .offset(at)
            .limit(1)
            .into_tuple()
            .one(db.conn())
            .await?;
        // A reading stored between `span` and here can shift the offsets
        // by one; the sample then shows a neighbour, which is as good.
        let Some((ts_ms, device)) = picked else { continue };
        let same_origin = match device {
            Some(d) => reading::Column::DeviceId.eq(d),
            None => reading::Column::DeviceId.is_null(),
        };
        let values: Vec<(String, f64)> = reading::Entity::find()
            .select_only()
            .columns([reading::Column::Component, reading::Column::Value])
            .filter(reading::Column::SubjectId.eq(subject.as_uuid()))
            .filter(reading::Column::Metric.eq(metric))
            .filter(reading::Column::TsMs.eq(ts_ms))
            .filter(same_origin)
            .order_by_asc(reading::Column::Component)
            .into_tuple()
            .all(db.conn())
            .await?;
        out.push(Sampled { ts_ms, values });
    }
    Ok(out)
}

/// The number of files under the folder `prefix` (in `parse_dir_prefix`
/// form: `/`, `/ecg/`) of `farm`, at any depth, and their total size in
/// bytes.
pub async fn files_under(db: &Database, farm: FarmId, prefix: &str) -> Result<(u64, u64), StorageError> {
    let end = range_end(prefix);
    // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back to read an i64.
    let row: Option<(i64, i64)> = farm_file::Entity::find()
        .select_only()
        .column_as(Expr::col(farm_file::Column::Id).count(), "n")
        .column_as(Expr::cust("CAST(COALESCE(SUM(size), 0) AS BIGINT)"), "bytes")
        .filter(farm_file::Column::FarmId.eq(farm.as_uuid()))
        .filter(farm_file::Column::Path.gte(prefix))
        .filter(farm_file::Column::Path.lt(end.as_str()))
        .into_tuple()
        .one(db.conn())
        .await?;
    let (n, bytes) = row.unwrap_or((0, 0));
    Ok((u64::try_from(n).unwrap_or(0), u64::try_from(bytes).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_takes_the_first_the_last_and_even_steps_between() {
        assert_eq!(spread(0, 5), Vec::<u64>::new());
        assert_eq!(spread(1, 5), vec![0]);
        assert_eq!(spread(3, 5), vec![0, 1, 2]);
        assert_eq!(spread(5, 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(spread(9, 5), vec![0, 2, 4, 6, 8]);
        assert_eq!(spread(100, 5), vec![0, 24, 49, 74, 99]);
    }
}
