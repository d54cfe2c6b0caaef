//! A farm's metadata: the farm row (quota, usage, wrapped key), its files,
//! the blobs behind them and their life cycle. Bytes are not here: see
//! `crate::blobs`. Every function takes the `FarmId` it works in.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use uuid::Uuid;
use vitalfarm_domain::{FarmId, FarmPath, MembershipId};

use crate::entity::{farm, farm_blob, farm_file};
use crate::{Database, StorageError};

pub const BLOB_PENDING: &str = "pending";
pub const BLOB_LIVE: &str = "live";
pub const BLOB_DELETED: &str = "deleted";

pub async fn find(db: &Database, id: FarmId) -> Result<Option<farm::Model>, StorageError> {
    Ok(farm::Entity::find_by_id(id.as_uuid()).one(db.conn()).await?)
}

pub async fn find_by_membership(db: &Database, membership: MembershipId) -> Result<Option<farm::Model>, StorageError> {
    Ok(farm::Entity::find()
        .filter(farm::Column::MembershipId.eq(membership.as_uuid()))
        .one(db.conn())
        .await?)
}

/// Stores a wrapped data key for a farm that has none yet. Conditional, so
/// when two first uploads race, one key wins and both use it.
pub async fn set_wrapped_key_if_absent(
    db: &Database,
    id: FarmId,
    wrapped: String,
    master_key_id: String,
) -> Result<farm::Model, StorageError> {
    farm::Entity::update_many()
        .col_expr(farm::Column::WrappedKey, Expr::value(Some(wrapped)))
        .col_expr(farm::Column::MasterKeyId, Expr::value(Some(master_key_id)))
        .filter(farm::Column::Id.eq(id.as_uuid()))
        .filter(farm::Column::WrappedKey.is_null())
        .exec(db.conn())
        .await?;
    find(db, id).await?.ok_or(StorageError::NotFound)
}

/// Forgets the farm's data key: from now on none of its blobs, wherever a
/// copy of them lies, can be decrypted. Its file records go too.
pub async fn destroy_key(db: &Database, id: FarmId) -> Result<(), StorageError> {
    let txn = db.begin_write().await?;
    farm_file::Entity::delete_many()
        .filter(farm_file::Column::FarmId.eq(id.as_uuid()))
        .exec(&txn)
        .await?;
    farm_blob::Entity::update_many()
        .col_expr(farm_blob::Column::State, Expr::value(BLOB_DELETED))
        .col_expr(farm_blob::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(farm_blob::Column::FarmId.eq(id.as_uuid()))
        .exec(&txn)
        .await?;
    farm::Entity::update_many()
        .col_expr(farm::Column::WrappedKey, Expr::value(Option::<String>::None))
        .col_expr(farm::Column::MasterKeyId, Expr::value(Option::<String>::None))
        .col_expr(farm::Column::UsedBytes, Expr::value(0i64))
        .col_expr(farm::Column::FileCount, Expr::value(0i64))
        .filter(farm::Column::Id.eq(id.as_uuid()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

pub async fn set_quota(db: &Database, id: FarmId, quota_bytes: i64) -> Result<(), StorageError> {
    let res = farm::Entity::update_many()
        .col_expr(farm::Column::QuotaBytes, Expr::value(quota_bytes))
        .filter(farm::Column::Id.eq(id.as_uuid()))
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

pub async fn find_file(db: &Database, farm: FarmId, path: &FarmPath) -> Result<Option<farm_file::Model>, StorageError> {
    Ok(farm_file::Entity::find()
        .filter(farm_file::Column::FarmId.eq(farm.as_uuid()))
        .filter(farm_file::Column::Path.eq(path.as_str()))
        .one(db.conn())
        .await?)
}

pub async fn find_file_by_id(db: &Database, farm: FarmId, id: Uuid) -> Result<Option<farm_file::Model>, StorageError> {
    Ok(farm_file::Entity::find_by_id(id)
        .filter(farm_file::Column::FarmId.eq(farm.as_uuid()))
        .one(db.conn())
        .await?)
}

/// Registers the blob an upload is about to write, before any byte is
/// stored, so a crash mid-upload leaves a row the sweeper will find, and
/// reserves its `size` in the farm's usage. The reservation is what makes
/// the quota hold for bytes on disk: it is taken under the farm's lock
/// before the body streams, so uploads in flight cannot jointly pass the
/// quota, and it is released only when the blob's object is removed
/// (`claim_for_sweep`, `forget_deleted_blob`), so replaced and abandoned
/// bytes count until they are really gone.
pub async fn begin_blob(db: &Database, farm: FarmId, blob: Uuid, size: i64) -> Result<(), WriteError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let farm_row = lock_farm(&txn, farm).await?;
    if size > 0 && farm_row.used_bytes.saturating_add(size) > farm_row.quota_bytes {
        return Err(WriteError::Quota {
            quota: farm_row.quota_bytes,
            used: farm_row.used_bytes,
        });
    }
    farm::Entity::update_many()
        .col_expr(farm::Column::UsedBytes, Expr::col(farm::Column::UsedBytes).add(size))
        .filter(farm::Column::Id.eq(farm.as_uuid()))
        .exec(&txn)
        .await?;
    farm_blob::ActiveModel {
        id: Set(blob),
        farm_id: Set(farm.as_uuid()),
        state: Set(BLOB_PENDING.to_owned()),
        size: Set(size),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Marks a blob whose upload failed as deleted, for removal. Only a
/// pending blob: one that went live is a file's, whatever its uploader saw.
pub async fn abandon_blob(db: &Database, blob: Uuid) -> Result<(), StorageError> {
    farm_blob::Entity::update_many()
        .col_expr(farm_blob::Column::State, Expr::value(BLOB_DELETED))
        .col_expr(farm_blob::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(farm_blob::Column::Id.eq(blob))
        .filter(farm_blob::Column::State.eq(BLOB_PENDING))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// The conditions of `If-Match` and `If-None-Match` (RFC 9110 §13.1) on
/// the file currently at a path; `*` stands for any existing file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Precondition {
    /// The file must exist with one of these ETags.
    pub if_match: Option<Vec<String>>,
    /// The file must not exist (`*`), or not have one of these ETags.
    pub if_none_match: Option<Vec<String>>,
}

impl Precondition {
    pub fn holds(&self, existing: Option<&farm_file::Model>) -> bool {
        let matches = |tags: &[String], f: &farm_file::Model| tags.iter().any(|t| t == "*" || *t == f.sha256);
        let if_match = self
            .if_match
            .as_ref()
            .is_none_or(|tags| existing.is_some_and(|f| matches(tags, f)));
        let if_none_match = self
            .if_none_match
            .as_ref()
            .is_none_or(|tags| existing.is_none_or(|f| !matches(tags, f)));
        if_match && if_none_match
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("precondition failed")]
    Precondition,
    #[error("quota exceeded")]
    Quota { quota: i64, used: i64 },
    #[error("no such file")]
    NotFound,
    #[error("a file already exists at the destination")]
    Exists,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sea_orm::DbErr> for WriteError {
    fn from(e: sea_orm::DbErr) -> Self {
        WriteError::Storage(e.into())
    }
}

pub struct NewFile<'a> {
    pub path: &'a FarmPath,
    pub blob: Uuid,
    pub size: i64,
    pub sha256: String,
    pub content_type: String,
}

/// The result of a committed upload.
pub struct Committed {
    pub file: farm_file::Model,
    pub created: bool,
    /// The blob the file pointed at before, now to be removed.
    pub replaced_blob: Option<Uuid>,
}

/// Makes an upload visible: in one transaction, checks the precondition
/// against the file now at the path, points the path at the new blob and
/// retires the old one. The bytes were charged when the blob was begun;
/// the retired blob stays charged until its object is removed.
pub async fn commit_upload(
    db: &Database,
    farm: FarmId,
    new: NewFile<'_>,
    pre: &Precondition,
) -> Result<Committed, WriteError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let farm_row = lock_farm(&txn, farm).await?;
    let existing = farm_file::Entity::find()
        .filter(farm_file::Column::FarmId.eq(farm.as_uuid()))
        .filter(farm_file::Column::Path.eq(new.path.as_str()))
        .one(&txn)
        .await?;
    if !pre.holds(existing.as_ref()) {
        return Err(WriteError::Precondition);
    }
    count_files(&txn, &farm_row, i64::from(existing.is_none())).await?;
    let (file, replaced_blob) = match existing {
        Some(old) => {
            let replaced = old.blob_id;
            let version = old.version + 1;
            let mut active: farm_file::ActiveModel = old.into();
            active.blob_id = Set(new.blob);
            active.size = Set(new.size);
            active.sha256 = Set(new.sha256);
            active.content_type = Set(new.content_type);
            active.version = Set(version);
            active.updated_at = Set(now);
            let file = active.update(&txn).await?;
            set_blob_state(&txn, replaced, BLOB_DELETED, now).await?;
            (file, Some(replaced))
        }
        None => {
            let file = farm_file::ActiveModel {
                id: Set(Uuid::now_v7()),
                farm_id: Set(farm.as_uuid()),
                path: Set(new.path.as_str().to_owned()),
                blob_id: Set(new.blob),
                size: Set(new.size),
                sha256: Set(new.sha256),
                content_type: Set(new.content_type),
                version: Set(1),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?;
            (file, None)
        }
    };
    // The blob must still be pending: an upload slower than the sweeper's
    // grace period has lost its blob and must not point a file at it.
    let activated = farm_blob::Entity::update_many()
        .col_expr(farm_blob::Column::State, Expr::value(BLOB_LIVE))
        .col_expr(farm_blob::Column::UpdatedAt, Expr::value(now))
        .filter(farm_blob::Column::Id.eq(new.blob))
        .filter(farm_blob::Column::State.eq(BLOB_PENDING))
        .exec(&txn)
        .await?;
    if activated.rows_affected != 1 {
        return Err(WriteError::Storage(StorageError::Conflict(
            "the upload took too long and expired; retry",
        )));
    }
    txn.commit().await?;
    Ok(Committed {
        created: replaced_blob.is_none(),
        file,
        replaced_blob,
    })
}

/// Locks the farm row for the transaction (PostgreSQL), serialising the
/// writes of one farm so quota and path checks cannot race.
async fn lock_farm(txn: &impl ConnectionTrait, farm: FarmId) -> Result<farm::Model, StorageError> {
    farm::Entity::find_by_id(farm.as_uuid())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(StorageError::NotFound)
}

/// Adds `files` to the farm's file count. Bytes are not counted here: a
/// blob is charged from `begin_blob` until its object is removed.
async fn count_files(txn: &impl ConnectionTrait, farm: &farm::Model, files: i64) -> Result<(), StorageError> {
    if files == 0 {
        return Ok(());
    }
    farm::Entity::update_many()
        .col_expr(farm::Column::FileCount, Expr::col(farm::Column::FileCount).add(files))
        .filter(farm::Column::Id.eq(farm.id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Gives back `bytes` of the farm's usage, never below zero (an erasure
/// zeroes the usage while its blobs still await removal).
async fn release(txn: &impl ConnectionTrait, farm: &farm::Model, bytes: i64) -> Result<(), StorageError> {
    farm::Entity::update_many()
        .col_expr(
            farm::Column::UsedBytes,
            Expr::value(Ord::max(farm.used_bytes - bytes, 0)),
        )
        .filter(farm::Column::Id.eq(farm.id))
        .exec(txn)
        .await?;
    Ok(())
}

async fn set_blob_state(
    txn: &impl ConnectionTrait,
    blob: Uuid,
    state: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    farm_blob::Entity::update_many()
        .col_expr(farm_blob::Column::State, Expr::value(state))
        .col_expr(farm_blob::Column::UpdatedAt, Expr::value(now))
        .filter(farm_blob::Column::Id.eq(blob))
        .exec(txn)
        .await?;
    Ok(())
}

/// Deletes the file at `path` if `pre` holds; returns its blob, to remove.
pub async fn delete_file(db: &Database, farm: FarmId, path: &FarmPath, pre: &Precondition) -> Result<Uuid, WriteError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let farm_row = lock_farm(&txn, farm).await?;
    let existing = farm_file::Entity::find()
        .filter(farm_file::Column::FarmId.eq(farm.as_uuid()))
        .filter(farm_file::Column::Path.eq(path.as_str()))
        .one(&txn)
        .await?;
    let Some(file) = existing else {
        return Err(WriteError::NotFound);
    };
    if !pre.holds(Some(&file)) {
        return Err(WriteError::Precondition);
    }
    farm_file::Entity::delete_by_id(file.id).exec(&txn).await?;
    count_files(&txn, &farm_row, -1).await?;
    set_blob_state(&txn, file.blob_id, BLOB_DELETED, now).await?;
    txn.commit().await?;
    Ok(file.blob_id)
}

/// Renames a file: metadata only, the bytes stay where they are. With
/// `overwrite`, a file at `to` is replaced (its blob returned for removal);
/// without, its presence is `Exists`.
pub async fn move_file(
    db: &Database,
    farm: FarmId,
    from: &FarmPath,
    to: &FarmPath,
    overwrite: bool,
) -> Result<(farm_file::Model, Option<Uuid>), WriteError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let farm_row = lock_farm(&txn, farm).await?;
    let find = |p: &FarmPath| {
        farm_file::Entity::find()
            .filter(farm_file::Column::FarmId.eq(farm.as_uuid()))
            .filter(farm_file::Column::Path.eq(p.as_str().to_owned()))
    };
    let Some(source) = find(from).one(&txn).await? else {
        return Err(WriteError::NotFound);
    };
    if from == to {
        return Ok((source, None));
    }
    let mut replaced = None;
    if let Some(target) = find(to).one(&txn).await? {
        if !overwrite {
            return Err(WriteError::Exists);
        }
        farm_file::Entity::delete_by_id(target.id).exec(&txn).await?;
        count_files(&txn, &farm_row, -1).await?;
        set_blob_state(&txn, target.blob_id, BLOB_DELETED, now).await?;
        replaced = Some(target.blob_id);
    }
    let mut active: farm_file::ActiveModel = source.into();
    active.path = Set(to.as_str().to_owned());
    active.updated_at = Set(now);
    let moved = active.update(&txn).await?;
    txn.commit().await?;
    Ok((moved, replaced))
}

/// One entry of a directory listing.
#[derive(Debug, Clone)]
pub enum Entry {
    File(farm_file::Model),
    /// A sub-directory: its path ends with `/`.
    Dir(String),
}

/// The smallest string greater than every string starting with `prefix`
/// (which ends in `/`): the exclusive end of the prefix's key range.
pub(crate) fn range_end(prefix: &str) -> String {
    let mut end = prefix.trim_end_matches('/').to_owned();
    end.push('0'); // '0' is the byte after '/'
    end
}

/// Lists `prefix` (a canonical directory, ending in `/`) in path order after
/// `after`. Recursive: every file below. Otherwise the files directly in the
/// directory and its sub-directories, each once.
pub async fn list(
    db: &Database,
    farm: FarmId,
    prefix: &str,
    after: Option<&str>,
    limit: u64,
    recursive: bool,
) -> Result<(Vec<Entry>, bool), StorageError> {
    let end = range_end(prefix);
    let mut out: Vec<Entry> = Vec::new();
    let mut cursor: Option<String> = after.map(str::to_owned);
    loop {
        let mut q = farm_file::Entity::find()
            .filter(farm_file::Column::FarmId.eq(farm.as_uuid()))
            .filter(farm_file::Column::Path.gte(prefix))
            .filter(farm_file::Column::Path.lt(end.as_str()))
            .order_by_asc(farm_file::Column::Path)
            .limit(limit + 1 - out.len() as u64);
        if let Some(c) = &cursor {
            q = q.filter(farm_file::Column::Path.gt(c.as_str()));
        }
        let rows = q.all(db.conn()).await?;
        let exhausted = (rows.len() as u64) < limit + 1 - out.len() as u64;
        let mut jumped = false;
        for row in rows {
            if out.len() as u64 == limit {
                return Ok((out, true));
            }
            let rest = &row.path[prefix.len()..];
            match rest.split_once('/') {
                Some((dir, _)) if !recursive => {
                    // Every file below this sub-directory sorts before
                    // `dir/` + U+10FFFF: skip them with one new query.
                    let dir_path = format!("{prefix}{dir}/");
                    cursor = Some(format!("{dir_path}\u{10FFFF}"));
                    out.push(Entry::Dir(dir_path));
                    jumped = true;
                    break;
                }
                _ => {
                    cursor = Some(row.path.clone());
                    out.push(Entry::File(row));
                }
            }
        }
        if out.len() as u64 == limit {
            // Exactly full: is there anything after?
            let more = farm_file::Entity::find()
                .filter(farm_file::Column::FarmId.eq(farm.as_uuid()))
                .filter(farm_file::Column::Path.gt(cursor.as_deref().unwrap_or(prefix)))
                .filter(farm_file::Column::Path.lt(end.as_str()))
                .one(db.conn())
                .await?
                .is_some();
            return Ok((out, more));
        }
        if !jumped && exhausted {
            return Ok((out, false));
        }
    }
}

/// Every file of the farm in path order, `batch` at a time after `after`.
pub async fn files_after(
    db: &Database,
    farm: FarmId,
    after: Option<&str>,
    batch: u64,
) -> Result<Vec<farm_file::Model>, StorageError> {
    let mut q = farm_file::Entity::find()
        .filter(farm_file::Column::FarmId.eq(farm.as_uuid()))
        .order_by_asc(farm_file::Column::Path)
        .limit(batch);
    if let Some(a) = after {
        q = q.filter(farm_file::Column::Path.gt(a));
    }
    Ok(q.all(db.conn()).await?)
}

/// Blobs whose objects should go: deleted ones, and pending ones older than
/// `cutoff` (their upload died).
pub async fn sweepable_blobs(
    db: &Database,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<Vec<farm_blob::Model>, StorageError> {
    Ok(farm_blob::Entity::find()
        .filter(
            farm_blob::Column::State.eq(BLOB_DELETED).or(farm_blob::Column::State
                .eq(BLOB_PENDING)
                .and(farm_blob::Column::UpdatedAt.lt(cutoff))),
        )
        .order_by_asc(farm_blob::Column::UpdatedAt)
        .limit(batch)
        .all(db.conn())
        .await?)
}

/// Claims a blob for removal by deleting its row, only while it is still
/// in the state the sweeper saw (and, if pending, still stale): a pending
/// blob whose upload committed meanwhile is kept. The caller removes the
/// object only after a successful claim, so no file ever points at a
/// removed object; a crash between the two leaves at worst an unreferenced,
/// encrypted object. The claim gives the blob's bytes back to the farm.
pub async fn claim_for_sweep(
    db: &Database,
    blob: &farm_blob::Model,
    cutoff: DateTime<Utc>,
) -> Result<bool, StorageError> {
    // The farm row first, as every writer of a farm locks it: taking the
    // blob row first could deadlock with a commit of that very blob.
    let txn = db.begin_write().await?;
    let farm_row = lock_farm(&txn, FarmId::from_uuid(blob.farm_id)).await;
    let mut q = farm_blob::Entity::delete_many()
        .filter(farm_blob::Column::Id.eq(blob.id))
        .filter(farm_blob::Column::State.eq(blob.state.as_str()));
    if blob.state == BLOB_PENDING {
        q = q.filter(farm_blob::Column::UpdatedAt.lt(cutoff));
    }
    let claimed = q.exec(&txn).await?.rows_affected == 1;
    match (claimed, farm_row) {
        (true, Ok(farm_row)) => release(&txn, &farm_row, blob.size).await?,
        // The farm row is gone (its blob rows went with it): nothing to
        // give back.
        (_, Err(StorageError::NotFound)) | (false, _) => {}
        (true, Err(e)) => return Err(e),
    }
    txn.commit().await?;
    Ok(claimed)
}

/// Forgets a `deleted` blob whose object the caller has just removed, and
/// gives its bytes back to the farm; `false` when another remover (the
/// sweeper) was first. Removing the object before the row is safe for a
/// deleted blob, which nothing reads or revives; a crash between the two
/// leaves a row the sweeper finishes.
pub async fn forget_deleted_blob(db: &Database, farm: FarmId, blob: Uuid) -> Result<bool, StorageError> {
    let txn = db.begin_write().await?;
    let farm_row = lock_farm(&txn, farm).await?;
    let Some(row) = farm_blob::Entity::find_by_id(blob)
        .filter(farm_blob::Column::FarmId.eq(farm.as_uuid()))
        .filter(farm_blob::Column::State.eq(BLOB_DELETED))
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    farm_blob::Entity::delete_by_id(row.id).exec(&txn).await?;
    release(&txn, &farm_row, row.size).await?;
    txn.commit().await?;
    Ok(true)
}

/// Whether `blob` of `farm` is `deleted` (retired, its object due to go).
pub async fn is_deleted_blob(db: &Database, farm: FarmId, blob: Uuid) -> Result<bool, StorageError> {
    Ok(farm_blob::Entity::find_by_id(blob)
        .filter(farm_blob::Column::FarmId.eq(farm.as_uuid()))
        .filter(farm_blob::Column::State.eq(BLOB_DELETED))
        .one(db.conn())
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_bounds_the_prefix() {
        assert_eq!(range_end("/"), "0");
        assert_eq!(range_end("/ecg/"), "/ecg0");
        assert!("/ecg/zzz" < range_end("/ecg/").as_str());
        assert!("/ecg0" >= range_end("/ecg/").as_str());
        assert!("/ecg-other" < "/ecg/", "'-' sorts before '/' and is outside the range");
    }
}
