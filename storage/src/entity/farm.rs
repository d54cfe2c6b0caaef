//! `farms`: one per membership, its quota, usage and wrapped data key;
//! created with the membership (`repo::accounts`) and kept by
//! `repo::farms`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "farms")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub membership_id: Uuid,
    pub quota_bytes: i64,
    pub used_bytes: i64,
    pub file_count: i64,
    pub created_at: DateTimeUtc,
    /// The farm's data key, encrypted by the master key (base64). Created on
    /// first upload; destroying it makes every blob of the farm unreadable.
    pub wrapped_key: Option<String>,
    /// Which master key wrapped `wrapped_key`.
    pub master_key_id: Option<String>,
    /// Per-farm override of the largest file accepted.
    pub max_file_bytes: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
