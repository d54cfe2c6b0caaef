//! `consents`: what a grantor membership shares with a grantee (subjects,
//! metrics, folders, time windows); written by `repo::consents` when
//! someone grants, approves a request or revokes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub grantor_membership_id: Uuid,
    pub grantee_membership_id: Uuid,
    /// JSON array of subject ids.
    pub subject_ids: String,
    /// JSON array of metric codes.
    pub metrics: String,
    /// JSON array of folder prefixes (`/ecg/`).
    pub farm_paths: String,
    pub purpose: String,
    pub access: String,
    pub valid_from_ms: Option<i64>,
    pub valid_until_ms: Option<i64>,
    pub data_from_ms: Option<i64>,
    pub data_until_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub revoked_by: Option<Uuid>,
    pub granted_by: Option<Uuid>,
    pub request_id: Option<Uuid>,
    pub created_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
