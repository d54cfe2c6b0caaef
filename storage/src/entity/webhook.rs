//! `webhooks`: a membership's webhook endpoints, their subscribed events
//! and sealed signing keys; written by `repo::webhooks`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub membership_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    /// The subscribed event kinds, a JSON array as text.
    pub events: String,
    /// The signing key, sealed (never in clear at rest).
    pub secret_sealed: String,
    pub enabled: bool,
    /// The OAuth app that created this row and the authorization it acted
    /// under; `None` for rows made by people and API keys. When the
    /// authorization ends, so does the row.
    pub app_id: Option<Uuid>,
    pub grant_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
