//! Rotating refresh tokens with reuse detection (OAuth 2.0 Security BCP,
//! section 4.14): each refresh consumes the presented token and issues its
//! successor in the same family; a consumed token presented again means it
//! was stolen, so the whole family dies.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;
use vitalfarm_domain::{RefreshTokenId, TokenFamilyId, UserId};

use crate::entity::refresh_token;
use crate::{Database, StorageError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    Rotated {
        user: UserId,
        family: TokenFamilyId,
    },
    /// The token had already been used: its family is now revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

pub async fn issue(
    db: &Database,
    user: UserId,
    family: TokenFamilyId,
    token_hash: String,
    expires_at: DateTime<Utc>,
) -> Result<(), StorageError> {
    refresh_token::ActiveModel {
        id: Set(RefreshTokenId::new().as_uuid()),
        family_id: Set(family.as_uuid()),
        user_id: Set(user.as_uuid()),
        token_hash: Set(token_hash),
        created_at: Set(Utc::now()),
        expires_at: Set(expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db.conn())
    .await
    .map_err(|e| StorageError::unique(e, "refresh token collision; retry"))?;
    Ok(())
}

/// Consumes the token with `presented_hash` and stores `next_hash` as its
/// successor, atomically.
pub async fn rotate(
    db: &Database,
    presented_hash: &str,
    next_hash: String,
    next_expires_at: DateTime<Utc>,
) -> Result<Rotation, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let Some(token) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(presented_hash))
        .one(&txn)
        .await?
    else {
        return Ok(Rotation::Invalid);
    };
    if token.revoked_at.is_some() || token.expires_at <= now {
        return Ok(Rotation::Invalid);
    }
    // Conditional on `used_at IS NULL`: of two concurrent refreshes with the
    // same token, exactly one wins and the other is treated as reuse.
    let consumed = refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::UsedAt,
            sea_orm::sea_query::Expr::value(Some(now)),
        )
        .filter(refresh_token::Column::Id.eq(token.id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if consumed.rows_affected == 0 {
        revoke_family_in(&txn, token.family_id, now).await?;
        txn.commit().await?;
        return Ok(Rotation::Reused);
    }
    refresh_token::ActiveModel {
        id: Set(RefreshTokenId::new().as_uuid()),
        family_id: Set(token.family_id),
        user_id: Set(token.user_id),
        token_hash: Set(next_hash),
        created_at: Set(now),
        expires_at: Set(next_expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&txn)
    .await
    .map_err(|e| StorageError::unique(e, "refresh token collision; retry"))?;
    txn.commit().await?;
    Ok(Rotation::Rotated {
        user: UserId::from_uuid(token.user_id),
        family: TokenFamilyId::from_uuid(token.family_id),
    })
}

async fn revoke_family_in(
    db: &impl sea_orm::ConnectionTrait,
    family: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Some(now)),
        )
        .filter(refresh_token::Column::FamilyId.eq(family))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Logout: revokes the family of the presented token. Unknown tokens are
/// ignored so that logout reveals nothing about a token's validity.
pub async fn revoke_family_of(db: &Database, presented_hash: &str) -> Result<(), StorageError> {
    let token = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(presented_hash))
        .one(db.conn())
        .await?;
    if let Some(token) = token {
        revoke_family_in(db.conn(), token.family_id, Utc::now()).await?;
    }
    Ok(())
}

/// Deletes tokens that expired more than a day ago; the day keeps reuse
/// detection working for tokens that expire mid-attack.
pub async fn purge_expired(db: &Database) -> Result<u64, StorageError> {
    let cutoff = Utc::now() - chrono::Duration::days(1);
    let res = refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::ExpiresAt.lt(cutoff))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected)
}

/// The user whose unrevoked token has hash `presented_hash`, if any.
pub async fn live_owner_of(db: &Database, presented_hash: &str) -> Result<Option<UserId>, StorageError> {
    Ok(refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(presented_hash))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .one(db.conn())
        .await?
        .map(|t| UserId::from_uuid(t.user_id)))
}

/// Revokes every live refresh token of `user`: after a password change or
/// reset, every session has to sign in again (the one that changed the
/// password is handed a fresh pair).
pub async fn revoke_all_of_user(db: &Database, user: UserId) -> Result<u64, StorageError> {
    let res = refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Some(Utc::now())),
        )
        .filter(refresh_token::Column::UserId.eq(user.as_uuid()))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected)
}
