//! `devices`: a company's fleet, each device's secret, claim and binding to
//! a subject, and its online state; written by `repo::devices` (and the
//! offline sweep in `repo::webhooks`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The company whose fleet the device belongs to.
    pub owner_membership_id: Uuid,
    pub model_id: Option<Uuid>,
    pub serial: String,
    /// `provisioned`, `active`, `suspended`, `retired`.
    pub status: String,
    /// SHA-256 of the device secret.
    pub secret_hash: String,
    /// SHA-256 of the claim code, until the device is claimed.
    pub claim_code_hash: Option<String>,
    pub claim_expires_at: Option<DateTimeUtc>,
    /// The membership whose subject the device records (after claim or
    /// assignment).
    pub bound_membership_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    pub last_seen_at: Option<DateTimeUtc>,
    /// When (epoch ms) the device's silence makes it offline, unless it is
    /// heard from first; null while flagged offline or never seen.
    pub offline_due_ms: Option<i64>,
    /// When (epoch ms) it was flagged offline; null while online.
    pub offline_at_ms: Option<i64>,
    /// Why the device's last dropped message was dropped, and when.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
