//! `farm_files`: a farm's files by canonical path, each pointing at its
//! blob; written by `repo::farms`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "farm_files")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub farm_id: Uuid,
    /// Canonical `FarmPath`, unique in the farm.
    pub path: String,
    /// The encrypted bytes, at `{farm_id}/{blob_id}` in the object store.
    #[sea_orm(unique)]
    pub blob_id: Uuid,
    pub size: i64,
    /// Hex SHA-256 of the plaintext; also the file's ETag.
    pub sha256: String,
    pub content_type: String,
    /// 1 on creation, +1 on every overwrite.
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
