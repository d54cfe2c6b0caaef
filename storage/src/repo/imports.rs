//! Queries of record imports: which imported readings are stored already.

use std::collections::HashSet;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use vitalfarm_domain::SubjectId;

use crate::entity::reading;
use crate::{Database, StorageError};

/// Times per statement: well under SQLite's parameter limit.
const BATCH: usize = 500;

/// The times among `times` at which `subject` has a reading of `metric`
/// from `source` without a device. Such rows are not deduplicated by the
/// store's `(device, metric, component, ts)` key, so an import asks first.
pub async fn stored_times(
    db: &Database,
    subject: SubjectId,
    metric: &str,
    source: &str,
    times: &[i64],
) -> Result<HashSet<i64>, StorageError> {
    let mut out = HashSet::new();
    for chunk in times.chunks(BATCH) {
        let rows: Vec<i64> = reading::Entity::find()
            .select_only()
            .column(reading::Column::TsMs)
            .distinct()
            .filter(reading::Column::SubjectId.eq(subject.as_uuid()))
            .filter(reading::Column::Metric.eq(metric))
            .filter(reading::Column::TsMs.is_in(chunk.iter().copied()))
            .filter(reading::Column::DeviceId.is_null())
            .filter(reading::Column::Source.eq(source))
            .into_tuple()
            .all(db.conn())
            .await?;
        out.extend(rows);
    }
    Ok(out)
}
