//! Single-use tokens sent by mail: address verification and password
//! reset. Only the SHA-256 of a token is stored; a token is spent by a
//! conditional update, so two requests racing with the same token cannot
//! both use it.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use vitalfarm_domain::UserId;

use crate::entity::email_token;
use crate::{Database, StorageError};

/// What a token is for; a token of one purpose never works for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    PasswordReset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::PasswordReset => "password_reset",
        }
    }
}

pub async fn issue(
    db: &Database,
    user: UserId,
    purpose: Purpose,
    email: &str,
    token_hash: String,
    expires_at: DateTime<Utc>,
) -> Result<(), StorageError> {
    email_token::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        user_id: Set(user.as_uuid()),
        purpose: Set(purpose.as_str().to_owned()),
        email: Set(email.to_owned()),
        token_hash: Set(token_hash),
        created_at: Set(Utc::now()),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(db.conn())
    .await
    .map_err(|e| StorageError::unique(e, "token collision; retry"))?;
    Ok(())
}

/// The user and address of the live token with `token_hash` and
/// `purpose`, without spending it (to check a new password against the
/// address before the token is used up).
pub async fn peek(db: &Database, purpose: Purpose, token_hash: &str) -> Result<Option<(UserId, String)>, StorageError> {
    Ok(email_token::Entity::find()
        .filter(email_token::Column::TokenHash.eq(token_hash))
        .filter(email_token::Column::Purpose.eq(purpose.as_str()))
        .filter(email_token::Column::UsedAt.is_null())
        .filter(email_token::Column::ExpiresAt.gt(Utc::now()))
        .one(db.conn())
        .await?
        .map(|t| (UserId::from_uuid(t.user_id), t.email)))
}

/// Spends the live token with `token_hash` and `purpose`: the user it was
/// for and the address it was mailed to, or `None` when it is unknown,
/// expired or already used.
pub async fn consume(
    db: &Database,
    purpose: Purpose,
    token_hash: &str,
) -> Result<Option<(UserId, String)>, StorageError> {
    let now = Utc::now();
    let Some(token) = email_token::Entity::find()
        .filter(email_token::Column::TokenHash.eq(token_hash))
        .filter(email_token::Column::Purpose.eq(purpose.as_str()))
        .one(db.conn())
        .await?
    else {
        return Ok(None);
    };
    if token.used_at.is_some() || token.expires_at <= now {
        return Ok(None);
    }
    let spent = email_token::Entity::update_many()
        .col_expr(email_token::Column::UsedAt, sea_orm::sea_query::Expr::value(Some(now)))
        .filter(email_token::Column::Id.eq(token.id))
        .filter(email_token::Column::UsedAt.is_null())
        .exec(db.conn())
        .await?;
    if spent.rows_affected == 0 {
        return Ok(None);
    }
    Ok(Some((UserId::from_uuid(token.user_id), token.email)))
}

/// Spends every outstanding token of `user` with `purpose`: after a
/// password reset, the other reset mails stop working.
pub async fn spend_all(db: &Database, user: UserId, purpose: Purpose) -> Result<(), StorageError> {
    email_token::Entity::update_many()
        .col_expr(
            email_token::Column::UsedAt,
            sea_orm::sea_query::Expr::value(Some(Utc::now())),
        )
        .filter(email_token::Column::UserId.eq(user.as_uuid()))
        .filter(email_token::Column::Purpose.eq(purpose.as_str()))
        .filter(email_token::Column::UsedAt.is_null())
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Deletes tokens that expired more than a day ago.
pub async fn purge_expired(db: &Database) -> Result<u64, StorageError> {
    let cutoff = Utc::now() - chrono::Duration::days(1);
    let res = email_token::Entity::delete_many()
        .filter(email_token::Column::ExpiresAt.lt(cutoff))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected)
}
