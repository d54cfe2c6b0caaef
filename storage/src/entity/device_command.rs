//! `device_commands`: commands a membership sent to a device and how their
//! delivery went; written by `repo::commands` from the command routes and
//! the MQTT front.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "device_commands")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub device_id: Uuid,
    /// The membership that issued it, and the only one that sees it.
    pub membership_id: Uuid,
    /// E.g. `MEASURE`; see `vitalfarm_domain::CommandName`.
    pub name: String,
    /// A JSON object, as text.
    pub params: String,
    /// `queued`, `sent`, `acked`, `failed`, `expired`, as last written: a
    /// command past `expires_at` reads `expired` whatever this says (the
    /// repository applies it).
    pub status: String,
    /// The user or API key that issued it.
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    /// When the device's answer was recorded.
    pub completed_at: Option<DateTimeUtc>,
    pub expires_at: DateTimeUtc,
    /// The device's answer, a JSON object as text.
    pub result: Option<String>,
    /// The device's error message, when it failed.
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
