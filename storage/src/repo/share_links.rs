//! Share links: a hashed token that lets anyone download one file until the
//! link expires or is revoked, and the record of every use.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;
use vitalfarm_domain::{FarmId, ShareLinkId};

use crate::entity::{farm_file, share_link, share_link_use};
use crate::page::{self, Keyset};
use crate::{Database, Page, StorageError};

/// A link with its file's current path and its use statistics.
#[derive(Debug, Clone)]
pub struct LinkView {
    pub link: share_link::Model,
    pub path: String,
    pub use_count: u64,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub async fn create(
    db: &Database,
    farm: FarmId,
    file: &farm_file::Model,
    token_hash: String,
    created_by: Uuid,
    expires_at: DateTime<Utc>,
    origin: super::oauth::AppOrigin,
) -> Result<share_link::Model, StorageError> {
    share_link::ActiveModel {
        id: Set(ShareLinkId::new().as_uuid()),
        farm_id: Set(farm.as_uuid()),
        file_id: Set(file.id),
        token_hash: Set(token_hash),
        created_by: Set(created_by),
        created_at: Set(Utc::now()),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        app_id: Set(origin.app),
        grant_id: Set(origin.grant),
    }
    .insert(db.conn())
    .await
    .map_err(|e| StorageError::unique(e, "share token collision; retry"))
}

async fn views(db: &Database, links: Vec<share_link::Model>) -> Result<Vec<LinkView>, StorageError> {
    let ids: Vec<Uuid> = links.iter().map(|l| l.id).collect();
    let file_ids: Vec<Uuid> = links.iter().map(|l| l.file_id).collect();
    let stats: Vec<(Uuid, i64, Option<DateTime<Utc>>)> = share_link_use::Entity::find()
        .select_only()
        .column(share_link_use::Column::LinkId)
        .column_as(Expr::col(share_link_use::Column::Id).count(), "uses")
        .column_as(Expr::col(share_link_use::Column::At).max(), "last")
        .filter(share_link_use::Column::LinkId.is_in(ids))
        .group_by(share_link_use::Column::LinkId)
        .into_tuple()
        .all(db.conn())
        .await?;
    let files = farm_file::Entity::find()
        .filter(farm_file::Column::Id.is_in(file_ids))
        .all(db.conn())
        .await?;
    Ok(links
        .into_iter()
        .map(|link| {
            let (use_count, last_used_at) = stats
                .iter()
                .find(|(id, _, _)| *id == link.id)
                .map_or((0, None), |(_, n, last)| (u64::try_from(*n).unwrap_or(0), *last));
            let path = files
                .iter()
                .find(|f| f.id == link.file_id)
                .map(|f| f.path.clone())
                .unwrap_or_default();
            LinkView {
                link,
                path,
                use_count,
                last_used_at,
            }
        })
        .collect())
}

pub async fn list(
    db: &Database,
    farm: FarmId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<LinkView>, StorageError> {
    let q = share_link::Entity::find().filter(share_link::Column::FarmId.eq(farm.as_uuid()));
    let page = page::fetch(db.conn(), q, Keyset::after(share_link::Column::Id, after, limit), |l| {
        l.id
    })
    .await?;
    Ok(Page {
        next: page.next,
        items: views(db, page.items).await?,
    })
}

pub async fn get(db: &Database, farm: FarmId, id: ShareLinkId) -> Result<LinkView, StorageError> {
    let link = share_link::Entity::find_by_id(id.as_uuid())
        .filter(share_link::Column::FarmId.eq(farm.as_uuid()))
        .one(db.conn())
        .await?
        .ok_or(StorageError::NotFound)?;
    views(db, vec![link]).await?.pop().ok_or(StorageError::NotFound)
}

pub async fn revoke(db: &Database, farm: FarmId, id: ShareLinkId) -> Result<(), StorageError> {
    let res = share_link::Entity::update_many()
        .col_expr(share_link::Column::RevokedAt, Expr::value(Some(Utc::now())))
        .filter(share_link::Column::Id.eq(id.as_uuid()))
        .filter(share_link::Column::FarmId.eq(farm.as_uuid()))
        .filter(share_link::Column::RevokedAt.is_null())
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        // Unknown, foreign, or already revoked: revoking again is a no-op
        // for a link of this farm.
        share_link::Entity::find_by_id(id.as_uuid())
            .filter(share_link::Column::FarmId.eq(farm.as_uuid()))
            .one(db.conn())
            .await?
            .ok_or(StorageError::NotFound)?;
    }
    Ok(())
}

pub async fn find_by_hash(db: &Database, token_hash: &str) -> Result<Option<share_link::Model>, StorageError> {
    Ok(share_link::Entity::find()
        .filter(share_link::Column::TokenHash.eq(token_hash))
        .one(db.conn())
        .await?)
}

pub async fn record_use(db: &Database, link: Uuid, client_ip: &str, outcome: &str) -> Result<(), StorageError> {
    share_link_use::ActiveModel {
        id: Set(Uuid::now_v7()),
        link_id: Set(link),
        at: Set(Utc::now()),
        client_ip: Set(client_ip.chars().take(64).collect()),
        outcome: Set(outcome.to_owned()),
    }
    .insert(db.conn())
    .await?;
    Ok(())
}

pub async fn uses(
    db: &Database,
    farm: FarmId,
    id: ShareLinkId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<share_link_use::Model>, StorageError> {
    get(db, farm, id).await?;
    let q = share_link_use::Entity::find().filter(share_link_use::Column::LinkId.eq(id.as_uuid()));
    page::fetch(
        db.conn(),
        q,
        Keyset::after(share_link_use::Column::Id, after, limit),
        |u| u.id,
    )
    .await
}
