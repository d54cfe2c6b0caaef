//! `audit_heads`: each membership's audit chain head, kept apart from the
//! events so that removing events from the end of a chain shows.

use sea_orm::entity::prelude::*;

/// The newest event of a membership's chain, updated with every append.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_heads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub membership_id: Uuid,
    pub seq: i64,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
