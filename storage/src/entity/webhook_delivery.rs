//! `webhook_deliveries`: one delivery of an event to an endpoint, with its
//! attempts; made by the dispatcher and updated by the sender, both in
//! `repo::webhooks`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub membership_id: Uuid,
    /// The event's public id, sent as `webhook-id`.
    pub event_id: Uuid,
    pub event_kind: String,
    /// The exact body sent on every attempt.
    pub body: String,
    /// `pending`, `delivered`, `failed`.
    pub status: String,
    pub attempts: i32,
    /// When the next attempt is due (epoch ms); while one runs, until when
    /// its claimer holds it. Null once delivered or failed.
    pub next_attempt_at_ms: Option<i64>,
    /// The attempts so far, a JSON array as text.
    pub attempt_log: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
