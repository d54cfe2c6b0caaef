//! Company API keys. Only the SHA-256 of a key is stored; the key itself is
//! shown once, at creation.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;
use vitalfarm_domain::{ApiKeyId, MembershipId, Role, UserId};

use crate::entity::{api_key, user};
use crate::page::{self, Keyset};
use crate::{Database, Page, StorageError};

pub struct NewApiKey<'a> {
    pub id: ApiKeyId,
    pub name: &'a str,
    pub role: Role,
    pub prefix: String,
    pub secret_hash: String,
    pub created_by: UserId,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn create(db: &Database, membership: MembershipId, k: NewApiKey<'_>) -> Result<api_key::Model, StorageError> {
    api_key::ActiveModel {
        id: Set(k.id.as_uuid()),
        membership_id: Set(membership.as_uuid()),
        name: Set(k.name.to_owned()),
        role: Set(k.role.as_str().to_owned()),
        prefix: Set(k.prefix),
        secret_hash: Set(k.secret_hash),
        created_by: Set(k.created_by.as_uuid()),
        created_at: Set(Utc::now()),
        expires_at: Set(k.expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db.conn())
    .await
    .map_err(|e| StorageError::unique(e, "api key collision; retry"))
}

/// Keys of the membership that are not revoked, newest last.
pub async fn list(
    db: &Database,
    membership: MembershipId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<api_key::Model>, StorageError> {
    let q = api_key::Entity::find()
        .filter(api_key::Column::MembershipId.eq(membership.as_uuid()))
        .filter(api_key::Column::RevokedAt.is_null());
    page::fetch(db.conn(), q, Keyset::after(api_key::Column::Id, after, limit), |k| k.id).await
}

/// A live key of the membership.
pub async fn find_in(
    db: &Database,
    membership: MembershipId,
    id: ApiKeyId,
) -> Result<Option<api_key::Model>, StorageError> {
    Ok(api_key::Entity::find_by_id(id.as_uuid())
        .filter(api_key::Column::MembershipId.eq(membership.as_uuid()))
        .filter(api_key::Column::RevokedAt.is_null())
        .one(db.conn())
        .await?)
}

pub async fn revoke(db: &Database, membership: MembershipId, id: ApiKeyId) -> Result<(), StorageError> {
    let res = api_key::Entity::update_many()
        .col_expr(
            api_key::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Some(Utc::now())),
        )
        .filter(api_key::Column::Id.eq(id.as_uuid()))
        .filter(api_key::Column::MembershipId.eq(membership.as_uuid()))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

/// The live key whose hash is `secret_hash`: not revoked, not expired.
pub async fn find_active(db: &Database, secret_hash: &str) -> Result<Option<api_key::Model>, StorageError> {
    let now = Utc::now();
    let key = api_key::Entity::find()
        .filter(api_key::Column::SecretHash.eq(secret_hash))
        .filter(api_key::Column::RevokedAt.is_null())
        .one(db.conn())
        .await?;
    Ok(key.filter(|k| k.expires_at.is_none_or(|e| e > now)))
}

/// Records use of a key at most once a minute, so a busy key does not turn
/// every read into a write.
pub async fn touch(db: &Database, key: &api_key::Model) -> Result<(), StorageError> {
    let now = Utc::now();
    if key.last_used_at.is_some_and(|t| now - t < Duration::minutes(1)) {
        return Ok(());
    }
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, sea_orm::sea_query::Expr::value(Some(now)))
        .filter(api_key::Column::Id.eq(key.id))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// The email addresses of the users who created `keys`, by user id.
pub async fn creator_emails(db: &Database, keys: &[api_key::Model]) -> Result<HashMap<Uuid, String>, StorageError> {
    let ids: Vec<Uuid> = keys.iter().map(|k| k.created_by).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, String)> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .column(user::Column::Email)
        .filter(user::Column::Id.is_in(ids))
        .into_tuple()
        .all(db.conn())
        .await?;
    Ok(rows.into_iter().collect())
}

/// Why keys could not be handed over (as `StorageError::Conflict`).
pub const HEIR_NOT_A_MEMBER: &str = "must be another member of the membership";
pub const HEIR_TOO_WEAK: &str = "must be a member whose role is at least each key's role";

/// What becomes of the keys a member created when they leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCreatorLeaving {
    /// They stop working (the default: a key must not outlive the person
    /// answerable for it).
    Revoke,
    /// Another member answers for them from now on.
    ReassignTo(UserId),
}

/// The live keys of `membership` created by `creator`, read on `conn`.
pub async fn live_created_by_in(
    conn: &impl ConnectionTrait,
    membership: MembershipId,
    creator: UserId,
) -> Result<Vec<api_key::Model>, StorageError> {
    Ok(api_key::Entity::find()
        .filter(api_key::Column::MembershipId.eq(membership.as_uuid()))
        .filter(api_key::Column::CreatedBy.eq(creator.as_uuid()))
        .filter(api_key::Column::RevokedAt.is_null())
        .all(conn)
        .await?)
}

/// Applies `what` to the live keys of `membership` created by `creator`,
/// on `conn` (the member removal's transaction); how many keys it touched.
pub async fn on_creator_leaving_in(
    conn: &impl ConnectionTrait,
    membership: MembershipId,
    creator: UserId,
    what: OnCreatorLeaving,
) -> Result<u64, StorageError> {
    let update = api_key::Entity::update_many()
        .filter(api_key::Column::MembershipId.eq(membership.as_uuid()))
        .filter(api_key::Column::CreatedBy.eq(creator.as_uuid()))
        .filter(api_key::Column::RevokedAt.is_null());
    let update = match what {
        OnCreatorLeaving::Revoke => update.col_expr(api_key::Column::RevokedAt, Expr::value(Some(Utc::now()))),
        OnCreatorLeaving::ReassignTo(to) => update.col_expr(api_key::Column::CreatedBy, Expr::value(to.as_uuid())),
    };
    Ok(update.exec(conn).await?.rows_affected)
}
