//! OAuth2 apps, authorization codes, grants and refresh tokens. Apps are a
//! membership's rows and are reached through it; codes and refresh tokens
//! are found by the digest of the secret a client presents, and always
//! together with the app that presents them, so one app cannot spend
//! another's. A grant is the family of tokens of one authorization:
//! revoking it (on request, on a reused code or on a reused refresh token)
//! ends all of them at once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use uuid::Uuid;
use vitalfarm_domain::{AppId, GrantId, MembershipId, UserId};

use crate::entity::{oauth_app, oauth_code, oauth_grant, oauth_refresh_token};
use crate::{Database, Page, StorageError};

pub struct NewApp<'a> {
    pub id: AppId,
    pub name: &'a str,
    pub client_type: &'a str,
    pub secret_hash: Option<String>,
    /// JSON array.
    pub redirect_uris: String,
    pub scopes: String,
    pub created_by: UserId,
}

pub async fn create_app(
    db: &Database,
    membership: MembershipId,
    a: NewApp<'_>,
) -> Result<oauth_app::Model, StorageError> {
    Ok(oauth_app::ActiveModel {
        id: Set(a.id.as_uuid()),
        membership_id: Set(membership.as_uuid()),
        name: Set(a.name.to_owned()),
        client_type: Set(a.client_type.to_owned()),
        secret_hash: Set(a.secret_hash),
        redirect_uris: Set(a.redirect_uris),
        scopes: Set(a.scopes),
        created_by: Set(a.created_by.as_uuid()),
        created_at: Set(Utc::now()),
    }
    .insert(db.conn())
    .await?)
}

/// The membership's apps, oldest first.
pub async fn list_apps(
    db: &Database,
    membership: MembershipId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<oauth_app::Model>, StorageError> {
    let mut q = oauth_app::Entity::find()
        .filter(oauth_app::Column::MembershipId.eq(membership.as_uuid()))
        .order_by_asc(oauth_app::Column::Id)
        .limit(limit + 1);
    if let Some(after) = after {
        q = q.filter(oauth_app::Column::Id.gt(after));
    }
    let rows = q.all(db.conn()).await?;
    Ok(Page::from_overfetch(rows, limit, |a| a.id))
}

pub async fn find_app_in(
    db: &Database,
    membership: MembershipId,
    id: AppId,
) -> Result<Option<oauth_app::Model>, StorageError> {
    Ok(oauth_app::Entity::find_by_id(id.as_uuid())
        .filter(oauth_app::Column::MembershipId.eq(membership.as_uuid()))
        .one(db.conn())
        .await?)
}

/// An app by its client id, for the OAuth endpoints, where the client id is
/// what identifies the caller.
pub async fn find_client(db: &Database, id: AppId) -> Result<Option<oauth_app::Model>, StorageError> {
    Ok(oauth_app::Entity::find_by_id(id.as_uuid()).one(db.conn()).await?)
}

/// Deletes the app; its codes, grants and refresh tokens go with it, so
/// every token it holds stops working on the next request.
pub async fn delete_app(db: &Database, membership: MembershipId, id: AppId) -> Result<(), StorageError> {
    let txn = db.begin_write().await?;
    let grants: Vec<Uuid> = oauth_grant::Entity::find()
        .select_only()
        .column(oauth_grant::Column::Id)
        .filter(oauth_grant::Column::AppId.eq(id.as_uuid()))
        .into_tuple()
        .all(&txn)
        .await?;
    // Foreign keys cascade too; deleting explicitly keeps the outcome the
    // same on a SQLite connection without foreign key enforcement.
    oauth_refresh_token::Entity::delete_many()
        .filter(oauth_refresh_token::Column::GrantId.is_in(grants))
        .exec(&txn)
        .await?;
    oauth_code::Entity::delete_many()
        .filter(oauth_code::Column::AppId.eq(id.as_uuid()))
        .exec(&txn)
        .await?;
    oauth_grant::Entity::delete_many()
        .filter(oauth_grant::Column::AppId.eq(id.as_uuid()))
        .exec(&txn)
        .await?;
    let res = oauth_app::Entity::delete_many()
        .filter(oauth_app::Column::Id.eq(id.as_uuid()))
        .filter(oauth_app::Column::MembershipId.eq(membership.as_uuid()))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(StorageError::NotFound);
    }
    txn.commit().await?;
    Ok(())
}

/// Replaces a confidential app's secret; the old one stops working at once.
pub async fn set_secret(
    db: &Database,
    membership: MembershipId,
    id: AppId,
    secret_hash: String,
) -> Result<(), StorageError> {
    let res = oauth_app::Entity::update_many()
        .col_expr(oauth_app::Column::SecretHash, Expr::value(Some(secret_hash)))
        .filter(oauth_app::Column::Id.eq(id.as_uuid()))
        .filter(oauth_app::Column::MembershipId.eq(membership.as_uuid()))
        .filter(oauth_app::Column::SecretHash.is_not_null())
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

pub struct NewCode<'a> {
    pub code_hash: String,
    pub app: AppId,
    pub user: UserId,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub scopes: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn create_code(db: &Database, c: NewCode<'_>) -> Result<(), StorageError> {
    oauth_code::ActiveModel {
        id: Set(Uuid::now_v7()),
        code_hash: Set(c.code_hash),
        app_id: Set(c.app.as_uuid()),
        user_id: Set(c.user.as_uuid()),
        redirect_uri: Set(c.redirect_uri.to_owned()),
        code_challenge: Set(c.code_challenge.to_owned()),
        scopes: Set(c.scopes),
        created_at: Set(Utc::now()),
        expires_at: Set(c.expires_at),
        used_at: Set(None),
        grant_id: Set(None),
    }
    .insert(db.conn())
    .await
    .map_err(|e| StorageError::unique(e, "authorization code collision; retry"))?;
    Ok(())
}

/// A refresh token to store with a new grant or a rotation.
pub struct NewRefresh {
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug)]
pub enum Exchange {
    Issued(oauth_grant::Model),
    /// The code or refresh token had been used before: its grant is now
    /// revoked.
    Reused,
    /// Unknown, expired, revoked, another app's, or failing the caller's
    /// check.
    Invalid,
}

/// What the caller decides about a code it presents: refused (wrong
/// redirect URI or PKCE verifier), or accepted with or without a first
/// refresh token.
pub enum CodeCheck {
    Refused,
    Accepted(Option<NewRefresh>),
}

/// Spends the authorization code with `code_hash` for `app`: if `check`
/// accepts it, a grant is created, with a first refresh token when the
/// check gives one. A code is spent even when the check fails, so a stolen
/// code cannot be tried against many verifiers.
pub async fn exchange_code(
    db: &Database,
    app: AppId,
    code_hash: &str,
    check: impl FnOnce(&oauth_code::Model) -> CodeCheck,
) -> Result<Exchange, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let Some(code) = oauth_code::Entity::find()
        .filter(oauth_code::Column::CodeHash.eq(code_hash))
        .filter(oauth_code::Column::AppId.eq(app.as_uuid()))
        .one(&txn)
        .await?
    else {
        return Ok(Exchange::Invalid);
    };
    if code.used_at.is_some() {
        if let Some(grant) = code.grant_id {
            revoke_grant_in(&txn, grant, now).await?;
        }
        txn.commit().await?;
        return Ok(Exchange::Reused);
    }
    // Conditional, so that of two concurrent exchanges only one wins.
    let spent = oauth_code::Entity::update_many()
        .col_expr(oauth_code::Column::UsedAt, Expr::value(Some(now)))
        .filter(oauth_code::Column::Id.eq(code.id))
        .filter(oauth_code::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected == 0 {
        return Ok(Exchange::Reused);
    }
    let refresh = match check(&code) {
        CodeCheck::Accepted(refresh) if code.expires_at > now => refresh,
        _ => {
            txn.commit().await?;
            return Ok(Exchange::Invalid);
        }
    };
    let grant = insert_grant(&txn, app, Some(code.user_id), None, &code.scopes, now).await?;
    oauth_code::Entity::update_many()
        .col_expr(oauth_code::Column::GrantId, Expr::value(Some(grant.id)))
        .filter(oauth_code::Column::Id.eq(code.id))
        .exec(&txn)
        .await?;
    if let Some(refresh) = refresh {
        insert_refresh(&txn, grant.id, refresh, now).await?;
    }
    txn.commit().await?;
    Ok(Exchange::Issued(grant))
}

async fn insert_grant(
    db: &impl ConnectionTrait,
    app: AppId,
    user: Option<Uuid>,
    membership: Option<Uuid>,
    scopes: &str,
    now: DateTime<Utc>,
) -> Result<oauth_grant::Model, StorageError> {
    Ok(oauth_grant::ActiveModel {
        id: Set(GrantId::new().as_uuid()),
        app_id: Set(app.as_uuid()),
        user_id: Set(user),
        membership_id: Set(membership),
        scopes: Set(scopes.to_owned()),
        created_at: Set(now),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?)
}

async fn insert_refresh(
    db: &impl ConnectionTrait,
    grant: Uuid,
    r: NewRefresh,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    oauth_refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        grant_id: Set(grant),
        token_hash: Set(r.token_hash),
        created_at: Set(now),
        expires_at: Set(r.expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(|e| StorageError::unique(e, "refresh token collision; retry"))?;
    Ok(())
}

/// A grant for the app's own membership (client_credentials).
pub async fn create_membership_grant(
    db: &Database,
    app: AppId,
    membership: MembershipId,
    scopes: &str,
) -> Result<oauth_grant::Model, StorageError> {
    insert_grant(db.conn(), app, None, Some(membership.as_uuid()), scopes, Utc::now()).await
}

/// Spends the refresh token with `token_hash` of `app` and stores `next`
/// as its successor in the same grant.
pub async fn rotate_refresh(
    db: &Database,
    app: AppId,
    token_hash: &str,
    next: NewRefresh,
) -> Result<Exchange, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let Some((token, Some(grant))) = oauth_refresh_token::Entity::find()
        .filter(oauth_refresh_token::Column::TokenHash.eq(token_hash))
        .find_also_related(oauth_grant::Entity)
        .one(&txn)
        .await?
    else {
        return Ok(Exchange::Invalid);
    };
    if grant.app_id != app.as_uuid() || grant.revoked_at.is_some() {
        return Ok(Exchange::Invalid);
    }
    if token.used_at.is_some() {
        revoke_grant_in(&txn, grant.id, now).await?;
        txn.commit().await?;
        return Ok(Exchange::Reused);
    }
    if token.expires_at <= now {
        return Ok(Exchange::Invalid);
    }
    let spent = oauth_refresh_token::Entity::update_many()
        .col_expr(oauth_refresh_token::Column::UsedAt, Expr::value(Some(now)))
        .filter(oauth_refresh_token::Column::Id.eq(token.id))
        .filter(oauth_refresh_token::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected == 0 {
        revoke_grant_in(&txn, grant.id, now).await?;
        txn.commit().await?;
        return Ok(Exchange::Reused);
    }
    insert_refresh(&txn, grant.id, next, now).await?;
    txn.commit().await?;
    Ok(Exchange::Issued(grant))
}

/// A grant whose tokens are still honoured.
pub async fn find_live_grant(db: &Database, id: GrantId) -> Result<Option<oauth_grant::Model>, StorageError> {
    Ok(oauth_grant::Entity::find_by_id(id.as_uuid())
        .filter(oauth_grant::Column::RevokedAt.is_null())
        .one(db.conn())
        .await?)
}

/// Revokes `grant` if it belongs to `app`; anything else is ignored, as RFC
/// 7009 wants.
pub async fn revoke_grant_of(db: &Database, app: AppId, grant: GrantId) -> Result<(), StorageError> {
    let txn = db.begin_write().await?;
    let owned = oauth_grant::Entity::find_by_id(grant.as_uuid())
        .filter(oauth_grant::Column::AppId.eq(app.as_uuid()))
        .one(&txn)
        .await?;
    if let Some(g) = owned {
        revoke_grant_in(&txn, g.id, Utc::now()).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The grant of `app`'s refresh token with `token_hash`, used or not.
pub async fn grant_of_refresh(db: &Database, app: AppId, token_hash: &str) -> Result<Option<GrantId>, StorageError> {
    let found = oauth_refresh_token::Entity::find()
        .filter(oauth_refresh_token::Column::TokenHash.eq(token_hash))
        .find_also_related(oauth_grant::Entity)
        .one(db.conn())
        .await?;
    Ok(found
        .and_then(|(_, g)| g)
        .filter(|g| g.app_id == app.as_uuid())
        .map(|g| GrantId::from_uuid(g.id)))
}

async fn revoke_grant_in(db: &impl ConnectionTrait, grant: Uuid, now: DateTime<Utc>) -> Result<(), StorageError> {
    oauth_grant::Entity::update_many()
        .col_expr(oauth_grant::Column::RevokedAt, Expr::value(Some(now)))
        .filter(oauth_grant::Column::Id.eq(grant))
        .filter(oauth_grant::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    // The refresh tokens die with the grant; deleting them also keeps the
    // table from growing with dead families.
    oauth_refresh_token::Entity::delete_many()
        .filter(oauth_refresh_token::Column::GrantId.eq(grant))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes what can no longer be used: codes and refresh tokens that
/// expired more than a day ago, revoked grants' leftovers, and
/// client_credentials grants older than two days (their access tokens live
/// at most a day). Idempotent, so every node may run it.
pub async fn purge_stale(db: &Database) -> Result<u64, StorageError> {
    let now = Utc::now();
    let day_ago = now - chrono::Duration::days(1);
    let codes = oauth_code::Entity::delete_many()
        .filter(oauth_code::Column::ExpiresAt.lt(day_ago))
        .exec(db.conn())
        .await?;
    let tokens = oauth_refresh_token::Entity::delete_many()
        .filter(oauth_refresh_token::Column::ExpiresAt.lt(day_ago))
        .exec(db.conn())
        .await?;
    let grants = oauth_grant::Entity::delete_many()
        .filter(oauth_grant::Column::UserId.is_null())
        .filter(oauth_grant::Column::CreatedAt.lt(now - chrono::Duration::days(2)))
        .exec(db.conn())
        .await?;
    Ok(codes.rows_affected + tokens.rows_affected + grants.rows_affected)
}
