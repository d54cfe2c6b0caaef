//! `audit_events`: the rows of every membership's audit chain.

use sea_orm::entity::prelude::*;

/// One event of a membership's audit chain; see `vitalfarm_domain::audit`
/// for what the hashes cover. Rows are only ever inserted.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub membership_id: Uuid,
    pub seq: i64,
    pub at_ms: i64,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_membership_id: Option<Uuid>,
    pub action: String,
    pub resource: String,
    pub consent_id: Option<Uuid>,
    pub outcome: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
