//! The audit log: appending to a membership's hash chain, listing it, and
//! reading it back in chain order for verification. Events are never
//! updated or deleted here (but by an erasure). Every append also moves the
//! membership's head (`audit_heads`), in the same transaction.

use chrono::Utc;
use sea_orm::sea_query::{LikeExpr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, SqlErr, Statement,
};
use uuid::Uuid;
use vitalfarm_domain::audit::{self, ActorKind, AuditEvent, Outcome};
use vitalfarm_domain::{AuditEventId, ConsentId, MembershipId};

use crate::entity::{audit_event, audit_head};
use crate::page::{self, Keyset};
use crate::{Database, DatabaseKind, Page, StorageError};

/// How often an append tries again after another append took its place.
const APPEND_ATTEMPTS: usize = 8;

/// The advisory-lock class of audit appends on PostgreSQL (the two-key lock
/// space, apart from the migration lock's single key).
const AUDIT_LOCK_CLASS: i32 = 0x6175_6474;

/// An event to add to the end of a membership's chain.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub membership: MembershipId,
    pub actor_kind: ActorKind,
    pub actor_id: Option<Uuid>,
    pub actor_membership: Option<MembershipId>,
    pub action: String,
    pub resource: String,
    pub consent: Option<ConsentId>,
    pub outcome: Outcome,
    /// A small JSON object: ids and counts, never health values or secrets.
    pub detail: String,
}

/// The stored row as the chain's value type.
pub fn as_event(m: &audit_event::Model) -> AuditEvent {
    AuditEvent {
        id: AuditEventId::from_uuid(m.id),
        membership: MembershipId::from_uuid(m.membership_id),
        seq: m.seq,
        at_ms: m.at_ms,
        actor_kind: m.actor_kind.clone(),
        actor_id: m.actor_id,
        actor_membership: m.actor_membership_id.map(MembershipId::from_uuid),
        action: m.action.clone(),
        resource: m.resource.clone(),
        consent: m.consent_id.map(ConsentId::from_uuid),
        outcome: m.outcome.clone(),
        detail: m.detail.clone(),
        prev_hash: m.prev_hash.clone(),
        hash: m.hash.clone(),
    }
}

/// Appends `e` after the membership's last event. Two appends that read the
/// same last event cannot both be stored: the unique `(membership_id, seq)`
/// refuses the second, which starts over from the new last event. On
/// PostgreSQL a per-membership advisory lock makes that rare; on SQLite the
/// write transaction already serialises appends.
pub async fn append(db: &Database, e: NewEvent) -> Result<audit_event::Model, StorageError> {
    let at_ms = Utc::now().timestamp_millis();
    for _ in 0..APPEND_ATTEMPTS {
        let txn = db.begin_write().await?;
        match try_append(db, &txn, &e, at_ms).await {
            Ok(model) => {
                txn.commit().await.map_err(unique_as_retry)?;
                return Ok(model);
            }
            Err(err) if is_unique_violation(&err) => txn.rollback().await?,
            Err(err) => return Err(err.into()),
        }
    }
    Err(StorageError::Conflict("audit log busy; retry"))
}

fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

fn unique_as_retry(err: sea_orm::DbErr) -> StorageError {
    StorageError::unique(err, "audit log busy; retry")
}

/// Inside the caller's `txn`: appends `events` (to one or several
/// memberships' chains) so that they are stored exactly when the rest of
/// the transaction is. The chains are locked up front in one order (by lock
/// key) for every caller, so two transactions appending to the same two
/// memberships wait for each other instead of deadlocking. There is no
/// retry here: the locks (PostgreSQL) or the write transaction (SQLite)
/// already serialise appends to a chain, and a caller's transaction cannot
/// be replayed from inside it.
pub async fn append_in(
    txn: &DatabaseTransaction,
    events: &[NewEvent],
) -> Result<Vec<audit_event::Model>, StorageError> {
    if txn.get_database_backend() == DbBackend::Postgres {
        let mut keys: Vec<i32> = events.iter().map(|e| lock_key(e.membership)).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            lock_chain(txn, key).await?;
        }
    }
    let at_ms = Utc::now().timestamp_millis();
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        out.push(append_locked(txn, e, at_ms).await?);
    }
    Ok(out)
}

/// The advisory-lock key of a membership's chain. Any 32 bits of the id
/// will do: a clash only makes two chains take turns.
fn lock_key(membership: MembershipId) -> i32 {
    (membership.as_uuid().as_u128() as u32).cast_signed()
}

async fn lock_chain(txn: &DatabaseTransaction, key: i32) -> Result<(), sea_orm::DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1, $2)",
        [AUDIT_LOCK_CLASS.into(), key.into()],
    ))
    .await?;
    Ok(())
}

async fn try_append(
    db: &Database,
    txn: &DatabaseTransaction,
    e: &NewEvent,
    at_ms: i64,
) -> Result<audit_event::Model, sea_orm::DbErr> {
    if db.kind() == DatabaseKind::Postgres {
        lock_chain(txn, lock_key(e.membership)).await?;
    }
    append_locked(txn, e, at_ms).await
}

/// Appends `e` once its chain is locked (or the transaction holds SQLite's
/// write lock).
async fn append_locked(
    txn: &DatabaseTransaction,
    e: &NewEvent,
    at_ms: i64,
) -> Result<audit_event::Model, sea_orm::DbErr> {
    // The chain continues from its recorded head, not from whatever event
    // is last in the table: events removed behind the log's back then leave
    // a gap the next verification finds, instead of a new chain starting
    // over at seq 1 that would hide the removal.
    let head: Option<(i64, String)> = audit_head::Entity::find_by_id(e.membership.as_uuid())
        .select_only()
        .column(audit_head::Column::Seq)
        .column(audit_head::Column::Hash)
        .into_tuple()
        .one(txn)
        .await?;
    let last = match head {
        Some(head) => Some(head),
        None => {
            audit_event::Entity::find()
                .select_only()
                .column(audit_event::Column::Seq)
                .column(audit_event::Column::Hash)
                .filter(audit_event::Column::MembershipId.eq(e.membership.as_uuid()))
                .order_by_desc(audit_event::Column::Seq)
                .limit(1)
                .into_tuple()
                .one(txn)
                .await?
        }
    };
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, audit::GENESIS_HASH.to_owned()),
    };
    let event = audit::seal(
        AuditEvent {
            id: AuditEventId::new(),
            membership: e.membership,
            seq,
            at_ms,
            actor_kind: e.actor_kind.as_str().to_owned(),
            actor_id: e.actor_id,
            actor_membership: e.actor_membership,
            action: e.action.clone(),
            resource: e.resource.clone(),
            consent: e.consent,
            outcome: e.outcome.as_str().to_owned(),
            detail: e.detail.clone(),
            prev_hash: String::new(),
            hash: String::new(),
        },
        &prev,
    );
    let head = audit_head::ActiveModel {
        membership_id: Set(event.membership.as_uuid()),
        seq: Set(event.seq),
        hash: Set(event.hash.clone()),
    };
    audit_head::Entity::insert(head)
        .on_conflict(
            OnConflict::column(audit_head::Column::MembershipId)
                .update_columns([audit_head::Column::Seq, audit_head::Column::Hash])
                .to_owned(),
        )
        .exec(txn)
        .await?;
    audit_event::ActiveModel {
        id: Set(event.id.as_uuid()),
        membership_id: Set(event.membership.as_uuid()),
        seq: Set(event.seq),
        at_ms: Set(event.at_ms),
        actor_kind: Set(event.actor_kind),
        actor_id: Set(event.actor_id),
        actor_membership_id: Set(event.actor_membership.map(|m| m.as_uuid())),
        action: Set(event.action),
        resource: Set(event.resource),
        consent_id: Set(event.consent.map(|c| c.as_uuid())),
        outcome: Set(event.outcome),
        detail: Set(event.detail),
        prev_hash: Set(event.prev_hash),
        hash: Set(event.hash),
    }
    .insert(txn)
    .await
}

/// What a listing is narrowed to; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Actions starting with this (`auth` finds `auth.sign_in`...).
    pub action_prefix: Option<String>,
    pub actor_id: Option<Uuid>,
    pub consent: Option<ConsentId>,
    pub outcome: Option<Outcome>,
    /// Inclusive lower bound, milliseconds since the epoch.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound.
    pub to_ms: Option<i64>,
}

/// `s` as a LIKE pattern matching itself literally, with `\` as escape.
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The membership's events matching `filter`, newest first. `after` is the
/// id of the last event of the previous page.
pub async fn list(
    db: &Database,
    membership: MembershipId,
    filter: &Filter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<audit_event::Model>, StorageError> {
    let mut q = audit_event::Entity::find().filter(audit_event::Column::MembershipId.eq(membership.as_uuid()));
    // The cursor names an event; the page continues below its seq.
    let below = match after {
        Some(after) => {
            let seq: Option<i64> = audit_event::Entity::find_by_id(after)
                .select_only()
                .column(audit_event::Column::Seq)
                .filter(audit_event::Column::MembershipId.eq(membership.as_uuid()))
                .into_tuple()
                .one(db.conn())
                .await?;
            Some(seq.ok_or(StorageError::NotFound)?)
        }
        None => None,
    };
    if let Some(prefix) = &filter.action_prefix {
        let pattern = format!("{}%", like_literal(prefix));
        q = q.filter(audit_event::Column::Action.like(LikeExpr::new(pattern).escape('\\')));
    }
    if let Some(actor) = filter.actor_id {
        q = q.filter(audit_event::Column::ActorId.eq(actor));
    }
    if let Some(consent) = filter.consent {
        q = q.filter(audit_event::Column::ConsentId.eq(consent.as_uuid()));
    }
    if let Some(outcome) = filter.outcome {
        q = q.filter(audit_event::Column::Outcome.eq(outcome.as_str()));
    }
    if let Some(from) = filter.from_ms {
        q = q.filter(audit_event::Column::AtMs.gte(from));
    }
    if let Some(to) = filter.to_ms {
        q = q.filter(audit_event::Column::AtMs.lt(to));
    }
    page::fetch(
        db.conn(),
        q,
        Keyset::before(audit_event::Column::Seq, below, limit),
        |e| e.id,
    )
    .await
}

/// Up to `limit` events of the membership after seq `after_seq`, in chain
/// order: a verifier reads a long chain page by page with it.
pub async fn all_in_order(
    db: &Database,
    membership: MembershipId,
    after_seq: i64,
    limit: u64,
) -> Result<Vec<audit_event::Model>, StorageError> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::MembershipId.eq(membership.as_uuid()))
        .filter(audit_event::Column::Seq.gt(after_seq))
        .order_by_asc(audit_event::Column::Seq)
        .limit(limit)
        .all(db.conn())
        .await?)
}

/// The membership's recorded head `(seq, hash)`: where its chain must end.
pub async fn head(db: &Database, membership: MembershipId) -> Result<Option<(i64, String)>, StorageError> {
    Ok(audit_head::Entity::find_by_id(membership.as_uuid())
        .select_only()
        .column(audit_head::Column::Seq)
        .column(audit_head::Column::Hash)
        .into_tuple()
        .one(db.conn())
        .await?)
}

/// Inside `txn`: removes `membership`'s whole log, for its erasure. The
/// erasure then starts a new chain holding only the record of itself: who
/// read what is personal data too, and it goes with the rest.
pub async fn delete_all_in(txn: &impl sea_orm::ConnectionTrait, membership: MembershipId) -> Result<u64, StorageError> {
    // The head goes too: the erasure's record starts a new chain at seq 1.
    audit_head::Entity::delete_by_id(membership.as_uuid()).exec(txn).await?;
    Ok(audit_event::Entity::delete_many()
        .filter(audit_event::Column::MembershipId.eq(membership.as_uuid()))
        .exec(txn)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_literal() {
        assert_eq!(like_literal("auth.sign_in"), "auth.sign\\_in");
        assert_eq!(like_literal("50%\\"), "50\\%\\\\");
    }
}
