//! `jobs`: queued background work (exports) with its lease and outcome;
//! written by `repo::jobs` for the routes that queue and the job worker
//! that runs.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// E.g. `export`.
    pub kind: String,
    pub membership_id: Uuid,
    /// The user or API key that asked for it.
    pub requested_by: Option<Uuid>,
    /// The client's `Idempotency-Key`, when it sent one.
    pub idempotency_key: Option<String>,
    /// A JSON object, as text.
    pub payload: String,
    /// `queued`, `running`, `succeeded`, `failed`.
    pub status: String,
    /// How many times a worker has claimed it.
    pub attempts: i32,
    /// While `running`: until when (epoch ms) the claimer holds it.
    pub lease_until_ms: Option<i64>,
    /// When (epoch ms) a worker last claimed it; the claim serves the
    /// membership whose latest claim is oldest first.
    pub claimed_at_ms: Option<i64>,
    /// A JSON object, as text, once `succeeded`.
    pub result: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
