//! `share_link_uses`: every use of a share link, served or refused;
//! appended by `repo::share_links` when a link is opened.

use sea_orm::entity::prelude::*;

/// One use of a share link, served or refused: the audit trail of links.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "share_link_uses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub link_id: Uuid,
    pub at: DateTimeUtc,
    pub client_ip: String,
    /// `served`, `expired`, `revoked`.
    pub outcome: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
