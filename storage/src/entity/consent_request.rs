//! `consent_requests`: a company's request that an individual consent,
//! pending until approved, denied or expired; written by `repo::consents`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consent_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub requester_membership_id: Uuid,
    pub requested_by: Option<Uuid>,
    pub individual_email: String,
    /// JSON array of metric codes.
    pub metrics: String,
    /// JSON array of folder prefixes.
    pub farm_paths: String,
    pub purpose: String,
    pub access: String,
    pub duration_secs: i64,
    pub data_from_ms: Option<i64>,
    pub data_until_ms: Option<i64>,
    pub note: Option<String>,
    /// `pending`, `approved`, `denied`.
    pub status: String,
    pub decided_at_ms: Option<i64>,
    pub decided_by: Option<Uuid>,
    pub consent_id: Option<Uuid>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
