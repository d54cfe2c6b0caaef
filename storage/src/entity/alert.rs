//! `alerts`: the alerts the rules opened, from open through acknowledged to
//! resolved; written by `repo::alerts` for the alert evaluator
//! (`vitalfarm_app::alerts`) and acknowledged through the alerts routes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The rule's membership.
    pub membership_id: Uuid,
    pub rule_id: Uuid,
    pub rule_name: String,
    pub subject_id: Uuid,
    pub metric: Option<String>,
    pub component: String,
    pub severity: String,
    /// `open`, `acknowledged`, `resolved`.
    pub status: String,
    pub opened_at_ms: i64,
    pub acknowledged_at_ms: Option<i64>,
    /// The user or API key that acknowledged it.
    pub acknowledged_by: Option<Uuid>,
    pub resolved_at_ms: Option<i64>,
    pub last_value: Option<f64>,
    pub last_value_at_ms: Option<i64>,
    /// JSON: why it opened.
    pub trigger: String,
    /// Breaching readings (or due silences) counted while it was live.
    pub occurrences: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
