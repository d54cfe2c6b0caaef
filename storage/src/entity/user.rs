//! `users`: accounts, with password hash and address verification;
//! written by `repo::accounts` and `repo::members` (invited accounts).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    /// argon2id PHC string; `None` while the user is invited but has not
    /// chosen a password yet.
    pub password_hash: Option<String>,
    pub display_name: String,
    pub invite_token_hash: Option<String>,
    pub invite_expires_at: Option<DateTimeUtc>,
    /// When the user proved they read mail at `email`; `None` until then.
    pub email_verified_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
