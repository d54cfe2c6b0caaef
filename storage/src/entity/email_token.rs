//! `email_tokens`: the hashes of the single-use tokens mailed for address
//! verification and password reset; written by `repo::email_tokens`.

use sea_orm::entity::prelude::*;

/// A single-use token mailed to a user: to verify their address or to
/// reset their password. Only the SHA-256 of the token is stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// `verify_email` or `password_reset`.
    pub purpose: String,
    /// The address the token was mailed to: it proves that address only.
    pub email: String,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
