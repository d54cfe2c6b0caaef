//! `events`: the event log, appended by `repo::events` in the transaction
//! of the change it reports and marked dispatched by the webhook
//! dispatcher (`repo::webhooks`); streams tail it by `seq`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// The tailing cursor, assigned by the database.
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub id: Uuid,
    pub membership_id: Uuid,
    /// E.g. `alert.opened`.
    pub kind: String,
    pub subject_id: Option<Uuid>,
    /// The event's `data` object, as JSON text.
    pub payload: String,
    pub created_at: DateTimeUtc,
    /// When the webhook dispatcher turned it into deliveries.
    pub dispatched_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
