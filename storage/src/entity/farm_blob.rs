//! `farm_blobs`: the encrypted objects behind a farm's files and their life
//! cycle; written by `repo::farms` on upload, replace and delete, and
//! swept by the blob sweeper.

use sea_orm::entity::prelude::*;

/// `pending` while an upload streams, `live` once a file points at it,
/// `deleted` once no file does. The sweeper removes the objects of stale
/// pending and of deleted blobs, so neither a crash nor a replaced file
/// leaves bytes behind.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "farm_blobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub farm_id: Uuid,
    pub state: String,
    pub size: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
