//! `alert_due`: per silence rule and subject, when the silence becomes an
//! alert; written by `repo::alerts` as readings arrive and read by the due
//! loop of `vitalfarm_app::alerts`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_due")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub rule_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: Uuid,
    /// The rule's membership.
    pub membership_id: Uuid,
    /// When the silence becomes an alert (epoch ms); `None` once it has.
    pub due_at_ms: Option<i64>,
    /// The newest reading seen for the rule and subject.
    pub last_reading_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
