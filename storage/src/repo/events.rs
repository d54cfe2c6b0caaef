//! The event log (see the migration): appended in the transaction of the
//! change it reports, tailed by streams, fanned out by the webhook
//! dispatcher.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use uuid::Uuid;
use vitalfarm_domain::{MembershipId, SubjectId};

use crate::entity::event;
use crate::{Database, StorageError};

pub struct NewEvent<'a> {
    pub membership: MembershipId,
    pub kind: &'a str,
    pub subject: Option<SubjectId>,
    /// The event's `data` object.
    pub data: &'a serde_json::Value,
}

/// Appends an event on `conn` (pass the transaction of the change it
/// reports).
pub async fn append(conn: &impl ConnectionTrait, e: NewEvent<'_>) -> Result<event::Model, StorageError> {
    let row = event::ActiveModel {
        id: Set(Uuid::now_v7()),
        membership_id: Set(e.membership.into()),
        kind: Set(e.kind.to_owned()),
        subject_id: Set(e.subject.map(Into::into)),
        payload: Set(e.data.to_string()),
        created_at: Set(Utc::now()),
        dispatched_at: Set(None),
        ..Default::default()
    };
    Ok(row.insert(conn).await?)
}

/// Up to `limit` events of `membership` after `after_seq`, of the given
/// kinds (all kinds when empty), oldest first.
pub async fn after(
    db: &Database,
    membership: MembershipId,
    after_seq: i64,
    kinds: &[&str],
    limit: u64,
) -> Result<Vec<event::Model>, StorageError> {
    let mut q = event::Entity::find()
        .filter(event::Column::MembershipId.eq(Uuid::from(membership)))
        .filter(event::Column::Seq.gt(after_seq));
    if !kinds.is_empty() {
        q = q.filter(event::Column::Kind.is_in(kinds.iter().copied()));
    }
    Ok(q.order_by_asc(event::Column::Seq).limit(limit).all(db.conn()).await?)
}

/// The newest `seq` of the whole log (0 when empty): where a new tail
/// starts.
pub async fn last_seq(db: &Database) -> Result<i64, StorageError> {
    let last = event::Entity::find()
        .order_by_desc(event::Column::Seq)
        .one(db.conn())
        .await?;
    Ok(last.map_or(0, |e| e.seq))
}

/// Removes a membership's events (erasure).
pub async fn delete_all_in(conn: &impl ConnectionTrait, membership: MembershipId) -> Result<u64, StorageError> {
    let res = event::Entity::delete_many()
        .filter(event::Column::MembershipId.eq(Uuid::from(membership)))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}
