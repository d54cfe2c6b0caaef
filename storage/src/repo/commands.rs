//! Device commands: creation, the issuing membership's view of them, and
//! the state changes of their delivery. Every change is one conditional
//! UPDATE whose `WHERE` holds the transition rule (from `CommandStatus`), so
//! two API nodes, a repeated MQTT message or the expiry sweep racing a
//! device's answer cannot move a command out of a final state.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use uuid::Uuid;
use vitalfarm_domain::{CommandId, CommandName, CommandStatus, DeviceId, MembershipId};

use crate::entity::device_command;
use crate::page::{self, Keyset};
use crate::{Database, Page, StorageError};

pub struct NewCommand {
    pub id: CommandId,
    pub device: DeviceId,
    /// The membership issuing it.
    pub membership: MembershipId,
    pub name: CommandName,
    /// A JSON object, as text.
    pub params: String,
    /// The user or API key issuing it.
    pub created_by: Option<Uuid>,
    /// How long it stays valid, from now.
    pub ttl: chrono::Duration,
}

pub async fn create(db: &Database, new: NewCommand) -> Result<device_command::Model, StorageError> {
    let now = Utc::now();
    Ok(device_command::ActiveModel {
        id: Set(new.id.as_uuid()),
        device_id: Set(new.device.as_uuid()),
        membership_id: Set(new.membership.as_uuid()),
        name: Set(new.name.as_str().to_owned()),
        params: Set(new.params),
        status: Set(CommandStatus::Queued.as_str().to_owned()),
        created_by: Set(new.created_by),
        created_at: Set(now),
        sent_at: Set(None),
        completed_at: Set(None),
        expires_at: Set(now + new.ttl),
        result: Set(None),
        error: Set(None),
    }
    .insert(db.conn())
    .await?)
}

/// The stored status of `m`, or `queued` if the column holds something
/// unknown (so that it can still expire rather than hang forever).
pub fn status_of(m: &device_command::Model) -> CommandStatus {
    CommandStatus::parse(&m.status).unwrap_or(CommandStatus::Queued)
}

/// `m` as a reader must see it at `now`: past its expiry an open command is
/// `expired`, whether or not the sweep has run.
fn as_seen(mut m: device_command::Model, now: DateTime<Utc>) -> device_command::Model {
    let seen = status_of(&m).effective(m.expires_at <= now);
    m.status = seen.as_str().to_owned();
    m
}

/// The statuses from which a command may move to `to`, for a `WHERE`.
fn sources_of(to: CommandStatus) -> Vec<&'static str> {
    CommandStatus::ALL
        .into_iter()
        .filter(|from| from.may_become(to))
        .map(CommandStatus::as_str)
        .collect()
}

/// Command `id` of `device`, whoever issued it: for the device's own
/// channel (MQTT), where the device is the authority.
pub async fn find(
    db: &Database,
    device: DeviceId,
    id: CommandId,
) -> Result<Option<device_command::Model>, StorageError> {
    let m = device_command::Entity::find_by_id(id.as_uuid())
        .filter(device_command::Column::DeviceId.eq(device.as_uuid()))
        .one(db.conn())
        .await?;
    Ok(m.map(|m| as_seen(m, Utc::now())))
}

/// Command `id` of `device`, if `membership` issued it.
pub async fn find_in(
    db: &Database,
    membership: MembershipId,
    device: DeviceId,
    id: CommandId,
) -> Result<Option<device_command::Model>, StorageError> {
    let m = device_command::Entity::find_by_id(id.as_uuid())
        .filter(device_command::Column::MembershipId.eq(membership.as_uuid()))
        .filter(device_command::Column::DeviceId.eq(device.as_uuid()))
        .one(db.conn())
        .await?;
    Ok(m.map(|m| as_seen(m, Utc::now())))
}

/// The commands `membership` sent to `device`, newest first; `before` is
/// the last id of the previous page.
pub async fn list_in(
    db: &Database,
    membership: MembershipId,
    device: DeviceId,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Page<device_command::Model>, StorageError> {
    let q = device_command::Entity::find()
        .filter(device_command::Column::MembershipId.eq(membership.as_uuid()))
        .filter(device_command::Column::DeviceId.eq(device.as_uuid()));
    let page = page::fetch(
        db.conn(),
        q,
        Keyset::before(device_command::Column::Id, before, limit),
        |m| m.id,
    )
    .await?;
    let now = Utc::now();
    Ok(page.map(|m| as_seen(m, now)))
}

/// Queued, unexpired commands, oldest first: of one device, or of all
/// (`device` none) for re-dispatch when the broker link comes up. `after`
/// is the last id of the previous batch.
pub async fn list_pending(
    db: &Database,
    device: Option<DeviceId>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<device_command::Model>, StorageError> {
    let mut q = device_command::Entity::find()
        .filter(device_command::Column::Status.eq(CommandStatus::Queued.as_str()))
        .filter(device_command::Column::ExpiresAt.gt(Utc::now()))
        .order_by_asc(device_command::Column::Id)
        .limit(limit);
    if let Some(device) = device {
        q = q.filter(device_command::Column::DeviceId.eq(device.as_uuid()));
    }
    if let Some(after) = after {
        q = q.filter(device_command::Column::Id.gt(after));
    }
    Ok(q.all(db.conn()).await?)
}

/// `device`'s open commands (queued, or sent and unanswered) that have
/// not expired, oldest first, at most `limit`: what to deliver again when
/// the device (re)subscribes.
pub async fn list_open(
    db: &Database,
    device: DeviceId,
    limit: u64,
) -> Result<Vec<device_command::Model>, StorageError> {
    Ok(device_command::Entity::find()
        .filter(device_command::Column::DeviceId.eq(device.as_uuid()))
        .filter(device_command::Column::Status.is_in(sources_of(CommandStatus::Expired)))
        .filter(device_command::Column::ExpiresAt.gt(Utc::now()))
        .order_by_asc(device_command::Column::Id)
        .limit(limit)
        .all(db.conn())
        .await?)
}

/// Records that the broker has the command. Only a `queued` command moves:
/// one answered or expired meanwhile stays as it is. Returns whether it
/// moved.
pub async fn mark_sent(db: &Database, id: CommandId) -> Result<bool, StorageError> {
    let res = device_command::Entity::update_many()
        .col_expr(
            device_command::Column::Status,
            Expr::value(CommandStatus::Sent.as_str()),
        )
        .col_expr(device_command::Column::SentAt, Expr::value(Some(Utc::now())))
        .filter(device_command::Column::Id.eq(id.as_uuid()))
        .filter(device_command::Column::Status.is_in(sources_of(CommandStatus::Sent)))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// How a device says a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Acked,
    Failed,
}

impl Outcome {
    pub const fn status(self) -> CommandStatus {
        match self {
            Outcome::Acked => CommandStatus::Acked,
            Outcome::Failed => CommandStatus::Failed,
        }
    }
}

/// What became of a device's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Stored.
    Recorded,
    /// The device has no such command.
    Unknown,
    /// The command had already ended (answered, or expired) with this
    /// status; the answer was dropped.
    Closed(CommandStatus),
}

/// Records the device's answer to command `id`, unless the command has
/// already ended or expired: the rule is in the `UPDATE`'s `WHERE`, so a
/// late or repeated answer changes nothing. `result` is a JSON object as
/// text.
pub async fn complete(
    db: &Database,
    device: DeviceId,
    id: CommandId,
    outcome: Outcome,
    result: Option<String>,
    error: Option<String>,
) -> Result<Completion, StorageError> {
    let now = Utc::now();
    let res = device_command::Entity::update_many()
        .col_expr(device_command::Column::Status, Expr::value(outcome.status().as_str()))
        .col_expr(device_command::Column::CompletedAt, Expr::value(Some(now)))
        .col_expr(device_command::Column::Result, Expr::value(result))
        .col_expr(device_command::Column::Error, Expr::value(error))
        .filter(device_command::Column::Id.eq(id.as_uuid()))
        .filter(device_command::Column::DeviceId.eq(device.as_uuid()))
        .filter(device_command::Column::Status.is_in(sources_of(outcome.status())))
        .filter(device_command::Column::ExpiresAt.gt(now))
        .exec(db.conn())
        .await?;
    if res.rows_affected == 1 {
        return Ok(Completion::Recorded);
    }
    // Why not: for the caller's log.
    Ok(match find(db, device, id).await? {
        None => Completion::Unknown,
        Some(m) => Completion::Closed(status_of(&m)),
    })
}

/// Marks open commands past their expiry `expired`; returns how many.
pub async fn expire(db: &Database, now: DateTime<Utc>) -> Result<u64, StorageError> {
    let res = device_command::Entity::update_many()
        .col_expr(
            device_command::Column::Status,
            Expr::value(CommandStatus::Expired.as_str()),
        )
        .filter(device_command::Column::Status.is_in(sources_of(CommandStatus::Expired)))
        .filter(device_command::Column::ExpiresAt.lte(now))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_clauses_follow_the_domain_rules() {
        assert_eq!(sources_of(CommandStatus::Sent), ["queued"]);
        assert_eq!(sources_of(CommandStatus::Acked), ["queued", "sent"]);
        assert_eq!(sources_of(CommandStatus::Failed), ["queued", "sent"]);
        assert_eq!(sources_of(CommandStatus::Expired), ["queued", "sent"]);
        assert!(sources_of(CommandStatus::Queued).is_empty());
    }
}
