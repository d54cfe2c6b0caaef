//! What the live stream's poller reads: readings by arrival time and
//! events by `seq`, across all memberships (each stream connection filters
//! what its caller may see).

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::entity::{event, reading};
use crate::{Database, StorageError};

/// Up to `limit` readings received at or after `since`, in arrival order
/// (then id), after the reading `after` of a previous page (the caller
/// drops those it has already seen).
pub async fn readings_received_since(
    db: &Database,
    since: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<reading::Model>, StorageError> {
    let mut q = reading::Entity::find().filter(reading::Column::ReceivedAt.gte(since));
    if let Some((at, id)) = after {
        q = q.filter(
            Condition::any().add(reading::Column::ReceivedAt.gt(at)).add(
                Condition::all()
                    .add(reading::Column::ReceivedAt.eq(at))
                    .add(reading::Column::Id.gt(id)),
            ),
        );
    }
    Ok(q.order_by_asc(reading::Column::ReceivedAt)
        .order_by_asc(reading::Column::Id)
        .limit(limit)
        .all(db.conn())
        .await?)
}

/// Up to `limit` events of the given kinds with `seq` above `after`, or
/// one of `also` (sequence numbers skipped earlier that a late commit may
/// still fill), oldest first.
pub async fn events_after(
    db: &Database,
    after: i64,
    also: &[i64],
    kinds: &[&str],
    limit: u64,
) -> Result<Vec<event::Model>, StorageError> {
    let mut seqs = Condition::any().add(event::Column::Seq.gt(after));
    if !also.is_empty() {
        seqs = seqs.add(event::Column::Seq.is_in(also.iter().copied()));
    }
    Ok(event::Entity::find()
        .filter(seqs)
        .filter(event::Column::Kind.is_in(kinds.iter().copied()))
        .order_by_asc(event::Column::Seq)
        .limit(limit)
        .all(db.conn())
        .await?)
}
