//! `share_links`: hashed tokens that let anyone download one farm file
//! until expiry or revocation; written by `repo::share_links`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "share_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub farm_id: Uuid,
    /// The file, by id: a link follows its file through moves and dies with it.
    pub file_id: Uuid,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// The OAuth app that created this row and the authorization it acted
    /// under; `None` for rows made by people and API keys. When the
    /// authorization ends, so does the row.
    pub app_id: Option<Uuid>,
    pub grant_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
