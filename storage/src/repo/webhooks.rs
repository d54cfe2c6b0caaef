//! Webhook endpoints, their deliveries, and the device offline sweep.
//!
//! Fan-out: the dispatcher claims undispatched events (oldest first; on
//! PostgreSQL the rows are locked with `FOR UPDATE SKIP LOCKED`, and on
//! both databases the mark is a conditional UPDATE that only one claimer
//! wins), and in the same transaction makes one delivery per enabled,
//! subscribed endpoint of the event's membership.
//!
//! Sending: a delivery is due when `next_attempt_at_ms <= now`. A claim
//! moves that time to the end of the claimer's lease with a conditional
//! UPDATE (it matches only the value the claimer saw), and the outcome is
//! recorded only while the row still carries that lease, so two nodes never
//! both record an attempt; a node that dies leaves the delivery due again
//! when the lease ends.

use chrono::Utc;
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use uuid::Uuid;
use vitalfarm_domain::MembershipId;

use crate::entity::{consent as consent_row, device, event, webhook, webhook_delivery};
use crate::page::{self, Keyset};
use crate::{Database, DatabaseKind, Page, StorageError};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

pub struct NewWebhook<'a> {
    pub id: Uuid,
    pub membership: MembershipId,
    pub url: &'a str,
    pub description: Option<&'a str>,
    pub events: &'a [String],
    pub secret_sealed: String,
    pub origin: super::oauth::AppOrigin,
}

/// The kinds an endpoint subscribes to.
pub fn kinds_of(w: &webhook::Model) -> Vec<String> {
    serde_json::from_str(&w.events).unwrap_or_default()
}

pub async fn create(db: &Database, new: NewWebhook<'_>) -> Result<webhook::Model, StorageError> {
    let now = Utc::now();
    Ok(webhook::ActiveModel {
        id: Set(new.id),
        membership_id: Set(new.membership.as_uuid()),
        url: Set(new.url.to_owned()),
        description: Set(new.description.map(str::to_owned)),
        events: Set(serde_json::to_string(new.events).unwrap_or_else(|_| "[]".into())),
        secret_sealed: Set(new.secret_sealed),
        enabled: Set(true),
        app_id: Set(new.origin.app),
        grant_id: Set(new.origin.grant),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db.conn())
    .await?)
}

/// A membership's endpoints, oldest first.
pub async fn list(
    db: &Database,
    membership: MembershipId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<webhook::Model>, StorageError> {
    let q = webhook::Entity::find().filter(webhook::Column::MembershipId.eq(membership.as_uuid()));
    page::fetch(db.conn(), q, Keyset::after(webhook::Column::Id, after, limit), |w| w.id).await
}

/// An endpoint of `membership`, or `None` (also when it is another's).
pub async fn find_in(
    db: &Database,
    membership: MembershipId,
    id: Uuid,
) -> Result<Option<webhook::Model>, StorageError> {
    Ok(webhook::Entity::find_by_id(id)
        .filter(webhook::Column::MembershipId.eq(membership.as_uuid()))
        .one(db.conn())
        .await?)
}

pub async fn find(db: &Database, id: Uuid) -> Result<Option<webhook::Model>, StorageError> {
    Ok(webhook::Entity::find_by_id(id).one(db.conn()).await?)
}

/// Deletes an endpoint and its deliveries; `false` when it is not
/// `membership`'s.
pub async fn delete(db: &Database, membership: MembershipId, id: Uuid) -> Result<bool, StorageError> {
    let txn = db.conn().begin().await?;
    let res = webhook::Entity::delete_many()
        .filter(webhook::Column::Id.eq(id))
        .filter(webhook::Column::MembershipId.eq(membership.as_uuid()))
        .exec(&txn)
        .await?;
    if res.rows_affected == 1 {
        webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::WebhookId.eq(id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(res.rows_affected == 1)
}

/// Replaces an endpoint's sealed secret; `false` when it is not
/// `membership`'s.
pub async fn set_secret(
    db: &Database,
    membership: MembershipId,
    id: Uuid,
    sealed: String,
) -> Result<bool, StorageError> {
    let res = webhook::Entity::update_many()
        .col_expr(webhook::Column::SecretSealed, Expr::value(sealed))
        .col_expr(webhook::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(webhook::Column::Id.eq(id))
        .filter(webhook::Column::MembershipId.eq(membership.as_uuid()))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Inside the erasure's transaction: the membership's endpoints and
/// deliveries.
pub async fn delete_all_in(conn: &impl ConnectionTrait, membership: MembershipId) -> Result<(), StorageError> {
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::MembershipId.eq(membership.as_uuid()))
        .exec(conn)
        .await?;
    webhook::Entity::delete_many()
        .filter(webhook::Column::MembershipId.eq(membership.as_uuid()))
        .exec(conn)
        .await?;
    Ok(())
}

/// The consents `membership` gave or received that are not revoked, read
/// on `conn` (the erasure's transaction, before it ends them).
pub async fn open_consents_in(
    conn: &impl ConnectionTrait,
    membership: MembershipId,
) -> Result<Vec<consent_row::Model>, StorageError> {
    Ok(consent_row::Entity::find()
        .filter(
            Condition::any()
                .add(consent_row::Column::GrantorMembershipId.eq(membership.as_uuid()))
                .add(consent_row::Column::GranteeMembershipId.eq(membership.as_uuid())),
        )
        .filter(consent_row::Column::RevokedAtMs.is_null())
        .all(conn)
        .await?)
}

/// Fans out up to `limit` undispatched events, oldest first, into
/// deliveries (with `body` of each event) due now; returns how many events
/// it dispatched.
pub async fn dispatch(
    db: &Database,
    limit: u64,
    body: impl Fn(&event::Model) -> String,
) -> Result<usize, StorageError> {
    let now = Utc::now();
    let txn = db.conn().begin().await?;
    let mut q = event::Entity::find()
        .filter(event::Column::DispatchedAt.is_null())
        .order_by_asc(event::Column::Seq)
        .limit(limit);
    if db.kind() == DatabaseKind::Postgres {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let events = q.all(&txn).await?;
    let mut dispatched = 0;
    for e in events {
        let marked = event::Entity::update_many()
            .col_expr(event::Column::DispatchedAt, Expr::value(Some(now)))
            .filter(event::Column::Seq.eq(e.seq))
            .filter(event::Column::DispatchedAt.is_null())
            .exec(&txn)
            .await?;
        if marked.rows_affected != 1 {
            continue;
        }
        dispatched += 1;
        let hooks = webhook::Entity::find()
            .filter(webhook::Column::MembershipId.eq(e.membership_id))
            .filter(webhook::Column::Enabled.eq(true))
            .all(&txn)
            .await?;
        let targets: Vec<_> = hooks.iter().filter(|h| kinds_of(h).contains(&e.kind)).collect();
        if targets.is_empty() {
            continue;
        }
        let text = body(&e);
        for h in targets {
            webhook_delivery::ActiveModel {
                id: Set(Uuid::now_v7()),
                webhook_id: Set(h.id),
                membership_id: Set(e.membership_id),
                event_id: Set(e.id),
                event_kind: Set(e.kind.clone()),
                body: Set(text.clone()),
                status: Set(PENDING.to_owned()),
                attempts: Set(0),
                next_attempt_at_ms: Set(Some(now.timestamp_millis())),
                attempt_log: Set("[]".to_owned()),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?;
        }
    }
    txn.commit().await?;
    Ok(dispatched)
}

/// Queues one delivery of `body` to endpoint `w`, due now (a test ping).
pub async fn enqueue(
    db: &Database,
    w: &webhook::Model,
    event_id: Uuid,
    kind: &str,
    body: String,
) -> Result<webhook_delivery::Model, StorageError> {
    let now = Utc::now();
    Ok(webhook_delivery::ActiveModel {
        id: Set(Uuid::now_v7()),
        webhook_id: Set(w.id),
        membership_id: Set(w.membership_id),
        event_id: Set(event_id),
        event_kind: Set(kind.to_owned()),
        body: Set(body),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at_ms: Set(Some(now.timestamp_millis())),
        attempt_log: Set("[]".to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db.conn())
    .await?)
}

/// Claims up to `limit` due deliveries until `lease_until_ms`; each comes
/// back with `next_attempt_at_ms` set to that lease, the proof of the claim.
pub async fn claim_due(
    db: &Database,
    now_ms: i64,
    lease_until_ms: i64,
    limit: u64,
) -> Result<Vec<webhook_delivery::Model>, StorageError> {
    let candidates = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::NextAttemptAtMs.lte(now_ms))
        .order_by_asc(webhook_delivery::Column::NextAttemptAtMs)
        .limit(limit)
        .all(db.conn())
        .await?;
    let mut claimed = Vec::with_capacity(candidates.len());
    for mut d in candidates {
        let res = webhook_delivery::Entity::update_many()
            .col_expr(
                webhook_delivery::Column::NextAttemptAtMs,
                Expr::value(Some(lease_until_ms)),
            )
            .filter(webhook_delivery::Column::Id.eq(d.id))
            .filter(webhook_delivery::Column::Status.eq(PENDING))
            .filter(webhook_delivery::Column::NextAttemptAtMs.eq(d.next_attempt_at_ms))
            .exec(db.conn())
            .await?;
        if res.rows_affected == 1 {
            d.next_attempt_at_ms = Some(lease_until_ms);
            claimed.push(d);
        }
    }
    Ok(claimed)
}

/// The outcome of one attempt of a claimed delivery.
pub struct Attempted {
    pub status: &'static str,
    pub attempts: i32,
    pub next_attempt_at_ms: Option<i64>,
    pub attempt_log: String,
}

/// Records an attempt of `claimed` (as `claim_due` returned it); `false`
/// when the claim was lost (the lease ran out and another node took it, or
/// the endpoint was deleted).
pub async fn record(db: &Database, claimed: &webhook_delivery::Model, a: Attempted) -> Result<bool, StorageError> {
    let res = webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Status, Expr::value(a.status))
        .col_expr(webhook_delivery::Column::Attempts, Expr::value(a.attempts))
        .col_expr(
            webhook_delivery::Column::NextAttemptAtMs,
            Expr::value(a.next_attempt_at_ms),
        )
        .col_expr(webhook_delivery::Column::AttemptLog, Expr::value(a.attempt_log))
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(webhook_delivery::Column::Id.eq(claimed.id))
        .filter(webhook_delivery::Column::NextAttemptAtMs.eq(claimed.next_attempt_at_ms))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// An endpoint's deliveries, newest first, optionally of one status.
pub async fn deliveries(
    db: &Database,
    webhook_id: Uuid,
    status: Option<&str>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Page<webhook_delivery::Model>, StorageError> {
    let mut q = webhook_delivery::Entity::find().filter(webhook_delivery::Column::WebhookId.eq(webhook_id));
    if let Some(status) = status {
        q = q.filter(webhook_delivery::Column::Status.eq(status));
    }
    page::fetch(
        db.conn(),
        q,
        Keyset::before(webhook_delivery::Column::Id, before, limit),
        |d| d.id,
    )
    .await
}

/// Up to `limit` devices whose silence became due to be noticed by `now_ms`.
pub async fn due_offline(db: &Database, now_ms: i64, limit: u64) -> Result<Vec<device::Model>, StorageError> {
    Ok(device::Entity::find()
        .filter(device::Column::OfflineDueMs.lte(now_ms))
        .order_by_asc(device::Column::OfflineDueMs)
        .limit(limit)
        .all(db.conn())
        .await?)
}

/// Flags `seen` offline on `conn`, if it is still as it was seen (not heard
/// from since, not flagged by another node): `true` for the one caller that
/// flagged it.
pub async fn flag_offline(
    conn: &impl ConnectionTrait,
    seen: &device::Model,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let res = device::Entity::update_many()
        .col_expr(device::Column::OfflineAtMs, Expr::value(Some(now_ms)))
        .col_expr(device::Column::OfflineDueMs, Expr::value(Option::<i64>::None))
        .filter(device::Column::Id.eq(seen.id))
        .filter(device::Column::OfflineDueMs.eq(seen.offline_due_ms))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}
