//! `memberships`: the tenants (individuals and companies), kept as a
//! tombstone after erasure; written by `repo::accounts` and
//! `repo::erasure`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memberships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub created_at: DateTimeUtc,
    /// Set when the membership was erased: the row stays as a tombstone
    /// (name cleared) so its id is never reused.
    pub erased_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
