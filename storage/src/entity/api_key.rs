//! `api_keys`: a company's API keys, by prefix and hash; written by
//! `repo::api_keys` (create, touch, revoke) and removed by an erasure.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub membership_id: Uuid,
    pub name: String,
    pub role: String,
    /// The first characters of the key, shown in listings so people can tell
    /// their keys apart; too short to help anyone guess the rest.
    pub prefix: String,
    /// SHA-256 of the whole key, hex. Keys carry 256 bits of randomness, so a
    /// fast hash is enough: there is nothing to brute-force.
    #[sea_orm(unique)]
    pub secret_hash: String,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
