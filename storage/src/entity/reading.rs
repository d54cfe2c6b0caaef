//! `readings`: the measured values, one row per component, in canonical
//! units; written by `repo::readings` (and `crate::bulk` when a bench
//! fills the store).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "readings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The membership the subject belongs to (the data's owner).
    pub membership_id: Uuid,
    pub subject_id: Uuid,
    pub device_id: Option<Uuid>,
    pub metric: String,
    /// `""` for single-valued metrics, else e.g. `systolic`.
    pub component: String,
    /// Measurement time, milliseconds since the Unix epoch (UTC).
    pub ts_ms: i64,
    /// In the metric's canonical unit.
    pub value: f64,
    pub unit: String,
    /// `device`, `manual`, `hospital`.
    pub source: String,
    pub seq: Option<i64>,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
