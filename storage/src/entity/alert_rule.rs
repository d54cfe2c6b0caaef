//! `alert_rules`: a membership's alert rules (threshold or silence);
//! written by `repo::alerts` for the alert rule routes and OAuth apps.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The membership the rule belongs to (and whose alerts it opens).
    pub membership_id: Uuid,
    pub name: String,
    /// `None`: a silence rule over every metric.
    pub metric: Option<String>,
    /// `""` for a single-valued metric or the metric as a whole.
    pub component: String,
    /// JSON array of subject ids; `None` for every subject the membership sees.
    pub subject_ids: Option<String>,
    /// The condition's canonical JSON (`domain::alerts::Condition::to_json`).
    pub condition: String,
    /// `info`, `warning`, `critical`.
    pub severity: String,
    pub created_by: Option<Uuid>,
    pub created_at_ms: i64,
    /// The OAuth app that created this row and the authorization it acted
    /// under; `None` for rows made by people and API keys. When the
    /// authorization ends, so does the row.
    pub app_id: Option<Uuid>,
    pub grant_id: Option<Uuid>,
    /// Set when the authorization of the app that created the rule ended:
    /// a disabled rule is no longer evaluated.
    pub disabled_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
