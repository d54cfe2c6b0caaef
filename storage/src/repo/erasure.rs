//! Erasing a membership: everything it holds goes in one transaction, and
//! the membership row stays behind as a tombstone (kind kept, name cleared,
//! `erased_at` set) so its id is never handed out again and every reference
//! to it still resolves to "nothing here".
//!
//! Blob objects live outside the database and cannot join the transaction:
//! the transaction destroys the farm's wrapped data key and marks the blobs
//! `deleted`, so their bytes are unreadable the moment it commits, and the
//! regular blob sweep (`farms::sweepable_blobs`) removes the objects after
//! it, idempotently, also when this process dies in between. Export objects
//! are named here and removed by the caller after the commit likewise.

use chrono::Utc;
use sea_orm::sea_query::{Expr, LikeExpr};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;
use vitalfarm_domain::{DeviceStatus, MembershipId};

use crate::entity::{
    api_key, device, device_command, device_model, erasure_scrub, farm, farm_blob, farm_file, job, member_role,
    membership, rate_limit, reading, subject, user,
};
use crate::repo::farms::BLOB_DELETED;
use crate::{Database, StorageError};

/// What the erasure removed, and what the caller must still remove outside
/// the database.
#[derive(Debug, Default, Clone)]
pub struct Erased {
    pub readings: u64,
    pub subjects: u64,
    pub files: u64,
    pub devices_deleted: u64,
    pub devices_unbound: u64,
    pub users_deleted: u64,
    /// Export jobs whose objects are to be removed from the store.
    pub export_jobs: Vec<Uuid>,
    /// The erased farm, whose objects (staging parts included) are to be
    /// removed from the store.
    pub farm: Option<Uuid>,
}

/// Erases `membership`. `revoke_and_audit` runs inside the transaction
/// first (see `api::erasure::revoke_consents_and_audit`): whatever it writes
/// commits or rolls back with the rest. Returns `NotFound` when the
/// membership is unknown or already erased.
pub async fn erase<F>(db: &Database, membership: MembershipId, revoke_and_audit: F) -> Result<Erased, StorageError>
where
    F: for<'t> FnOnce(
        &'t sea_orm::DatabaseTransaction,
    )
        -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StorageError>> + Send + 't>>,
{
    let mid = membership.as_uuid();
    let now = Utc::now();
    let txn = db.begin_write().await?;

    // 0. Lock the membership row (PostgreSQL; SQLite's write lock is held
    // since BEGIN IMMEDIATE): a concurrent erasure, role change or signup
    // into it waits, then sees the tombstone.
    let row = membership::Entity::find_by_id(mid)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(StorageError::NotFound)?;
    if row.erased_at.is_some() {
        return Err(StorageError::NotFound);
    }

    // 1. Consents it granted are revoked and the erasure is recorded first,
    // while the rows they refer to still exist.
    revoke_and_audit(&txn).await?;

    let mut out = Erased::default();

    // 2. Who is a member, before the roles go: accounts with no other
    // membership are deleted at the end.
    let members: Vec<Uuid> = member_role::Entity::find()
        .filter(member_role::Column::MembershipId.eq(mid))
        .all(&txn)
        .await?
        .into_iter()
        .map(|r| r.user_id)
        .collect();

    // 3. Access first: roles and API keys. Nothing can act in the
    // membership from here on, whatever fails later (it would roll back).
    member_role::Entity::delete_many()
        .filter(member_role::Column::MembershipId.eq(mid))
        .exec(&txn)
        .await?;
    api_key::Entity::delete_many()
        .filter(api_key::Column::MembershipId.eq(mid))
        .exec(&txn)
        .await?;

    // 4. The farm: forget its data key (every copy of every blob becomes
    // unreadable), drop the file records (share links and their uses
    // cascade from them) and hand the blobs to the sweep.
    if let Some(farm) = farm::Entity::find()
        .filter(farm::Column::MembershipId.eq(mid))
        .one(&txn)
        .await?
    {
        out.farm = Some(farm.id);
        out.files = farm_file::Entity::delete_many()
            .filter(farm_file::Column::FarmId.eq(farm.id))
            .exec(&txn)
            .await?
            .rows_affected;
        farm_blob::Entity::update_many()
            .col_expr(farm_blob::Column::State, Expr::value(BLOB_DELETED))
            .col_expr(farm_blob::Column::UpdatedAt, Expr::value(now))
            .filter(farm_blob::Column::FarmId.eq(farm.id))
            .exec(&txn)
            .await?;
        farm::Entity::update_many()
            .col_expr(farm::Column::WrappedKey, Expr::value(Option::<String>::None))
            .col_expr(farm::Column::MasterKeyId, Expr::value(Option::<String>::None))
            .col_expr(farm::Column::UsedBytes, Expr::value(0i64))
            .col_expr(farm::Column::FileCount, Expr::value(0i64))
            .col_expr(farm::Column::QuotaBytes, Expr::value(0i64))
            .filter(farm::Column::Id.eq(farm.id))
            .exec(&txn)
            .await?;
    }

    // 5. Health data: readings before subjects (readings reference them).
    out.readings = reading::Entity::delete_many()
        .filter(reading::Column::MembershipId.eq(mid))
        .exec(&txn)
        .await?
        .rows_affected;

    // 6. Devices. Another fleet's devices it had claimed go back to their
    // owner, unbound and `provisioned` (the owner can assign them again);
    // its own fleet is deleted with its models; device commands cascade
    // from the devices, and the ones it sent to other fleets' devices are
    // deleted by membership.
    device_command::Entity::delete_many()
        .filter(device_command::Column::MembershipId.eq(mid))
        .exec(&txn)
        .await?;
    out.devices_unbound = device::Entity::update_many()
        .col_expr(device::Column::BoundMembershipId, Expr::value(Option::<Uuid>::None))
        .col_expr(device::Column::SubjectId, Expr::value(Option::<Uuid>::None))
        .col_expr(device::Column::Status, Expr::value(DeviceStatus::Provisioned.as_str()))
        .col_expr(device::Column::UpdatedAt, Expr::value(now))
        .filter(device::Column::BoundMembershipId.eq(mid))
        .filter(device::Column::OwnerMembershipId.ne(mid))
        .exec(&txn)
        .await?
        .rows_affected;
    out.devices_deleted = device::Entity::delete_many()
        .filter(device::Column::OwnerMembershipId.eq(mid))
        .exec(&txn)
        .await?
        .rows_affected;
    device_model::Entity::delete_many()
        .filter(device_model::Column::MembershipId.eq(mid))
        .exec(&txn)
        .await?;

    // 7. Subjects, now that nothing references them.
    out.subjects = subject::Entity::delete_many()
        .filter(subject::Column::MembershipId.eq(mid))
        .exec(&txn)
        .await?
        .rows_affected;

    // 8. Jobs: the export objects are named for removal after the commit.
    out.export_jobs = job::Entity::find()
        .select_only()
        .column(job::Column::Id)
        .filter(job::Column::MembershipId.eq(mid))
        .into_tuple::<Uuid>()
        .all(&txn)
        .await?;
    job::Entity::delete_many()
        .filter(job::Column::MembershipId.eq(mid))
        .exec(&txn)
        .await?;

    // 9. Accounts that belonged here alone: deleting the user removes its
    // refresh tokens (cascade), so signing in and refreshing both fail.
    // Their rate-limit counters are keyed by address or id: those keys are
    // personal data too.
    for user_id in members {
        let elsewhere = member_role::Entity::find()
            .filter(member_role::Column::UserId.eq(user_id))
            .one(&txn)
            .await?
            .is_some();
        if !elsewhere {
            if let Some(account) = user::Entity::find_by_id(user_id).one(&txn).await? {
                for needle in [account.email.trim().to_lowercase(), user_id.to_string()] {
                    rate_limit::Entity::delete_many()
                        .filter(rate_limit::Column::Key.like(LikeExpr::new(contains(&needle)).escape('\\')))
                        .exec(&txn)
                        .await?;
                }
            }
            out.users_deleted += user::Entity::delete_by_id(user_id).exec(&txn).await?.rows_affected;
        }
    }

    // 10. The tombstone.
    membership::Entity::update_many()
        .col_expr(membership::Column::Name, Expr::value(String::new()))
        .col_expr(membership::Column::ErasedAt, Expr::value(Some(now)))
        .filter(membership::Column::Id.eq(mid))
        .exec(&txn)
        .await?;

    // 11. The scrub of the database files is owed from this commit on (see
    // `scrub`); recorded here so a crash before it runs cannot forget it.
    erasure_scrub::Entity::insert(erasure_scrub::ActiveModel {
        membership_id: Set(mid),
        erased_at: Set(now),
    })
    .on_conflict_do_nothing_on([erasure_scrub::Column::MembershipId])
    .exec(&txn)
    .await?;
    txn.commit().await?;
    Ok(out)
}

/// A LIKE pattern matching any text that contains `s` literally.
fn contains(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Memberships erased since `since`: the export sweep removes whatever
/// export objects of theirs survived the erasure (a crash right after its
/// commit, an upload that finished during it).
pub async fn erased_since(db: &Database, since: chrono::DateTime<Utc>) -> Result<Vec<Uuid>, StorageError> {
    Ok(membership::Entity::find()
        .select_only()
        .column(membership::Column::Id)
        .filter(membership::Column::ErasedAt.gte(since))
        .into_tuple::<Uuid>()
        .all(db.conn())
        .await?)
}

/// How long a PostgreSQL scrub waits for each table's lock before giving
/// up until the next sweep: a rewrite waiting in the lock queue would
/// otherwise hold up every later query on that table behind it.
const SCRUB_LOCK_TIMEOUT: &str = "SET lock_timeout = '5s'";

/// Scrubs the database files for every erasure still owed one, and returns
/// how many erasures that covered (0 when there were none, or the scrub
/// could not finish and stays owed to the next sweep).
///
/// Deleting rows does not remove their bytes from the files:
/// - SQLite: every connection runs with `secure_delete` (see `Database`),
///   so deleted cells and freed pages are zeroed, but the WAL still holds
///   the pages as they were before the erasure. A `TRUNCATE` checkpoint
///   copies the scrubbed pages into the main file and empties the WAL.
/// - PostgreSQL: a deleted row stays in its page until vacuumed, and plain
///   `VACUUM` only marks the space free (the bytes stay, in table pages and
///   in every index). `VACUUM FULL` writes each table and its indexes to
///   new files and truncates the old ones at commit. It locks each table
///   while it is rewritten (one at a time), which is what bounds its cost:
///   see ARCHITECTURE.md ("Erasure and what stays on disk").
///
/// One scrub covers every erasure committed before it, so a burst of
/// erasures costs one rewrite.
pub async fn scrub_pending(db: &Database) -> Result<usize, StorageError> {
    let pending: Vec<Uuid> = erasure_scrub::Entity::find()
        .select_only()
        .column(erasure_scrub::Column::MembershipId)
        .into_tuple()
        .all(db.conn())
        .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let done = match db.kind() {
        crate::DatabaseKind::Sqlite => checkpoint_truncate(db).await?,
        crate::DatabaseKind::Postgres => rewrite_all_tables(db).await?,
    };
    if !done {
        return Ok(0);
    }
    erasure_scrub::Entity::delete_many()
        .filter(erasure_scrub::Column::MembershipId.is_in(pending.iter().copied()))
        .exec(db.conn())
        .await?;
    Ok(pending.len())
}

/// SQLite: moves every committed page into the main file and truncates
/// the WAL to zero bytes. `false` when a reader kept it from finishing.
async fn checkpoint_truncate(db: &Database) -> Result<bool, StorageError> {
    let row = db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ))
        .await?;
    // The first column is 1 when the checkpoint could not complete.
    let busy: i32 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 1,
    };
    Ok(busy == 0)
}

/// PostgreSQL: `VACUUM (FULL, ANALYZE)` of every table of the schema, one at
/// a time, on one connection. `false` when a table could not be locked in
/// time; the others are done all the same.
async fn rewrite_all_tables(db: &Database) -> Result<bool, StorageError> {
    let custom = |what: &str, e: sqlx::Error| StorageError::Db(sea_orm::DbErr::Custom(format!("{what}: {e}")));
    let pool = db.conn().get_postgres_connection_pool();
    let mut conn = pool.acquire().await.map_err(|e| custom("scrub connection", e))?;
    sqlx::raw_sql(SCRUB_LOCK_TIMEOUT)
        .execute(&mut *conn)
        .await
        .map_err(|e| custom("scrub lock timeout", e))?;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_catalog.pg_tables WHERE schemaname = current_schema()")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| custom("listing tables", e))?;
    let mut done = true;
    for table in tables {
        // ANALYZE too: the planner's statistics sample column values, and
        // must be taken again from the rows that are left.
        let sql = format!("VACUUM (FULL, ANALYZE) \"{}\"", table.replace('"', "\"\""));
        // The name is quoted as an identifier, doubling any quote in it.
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await {
            tracing::warn!(table = %table, error = %e, "scrubbing a table after an erasure failed; the sweep retries");
            done = false;
        }
    }
    // The replaced statistics rows are dead rows of `pg_statistic`. Only a
    // superuser (or the catalog's owner) may rewrite it; anyone else gets a
    // warning and PostgreSQL skips it (documented in ARCHITECTURE.md).
    if let Err(e) = sqlx::raw_sql("VACUUM FULL pg_catalog.pg_statistic")
        .execute(&mut *conn)
        .await
    {
        tracing::debug!(error = %e, "rewriting pg_statistic after an erasure was not possible");
    }
    sqlx::raw_sql("RESET lock_timeout")
        .execute(&mut *conn)
        .await
        .map_err(|e| custom("scrub lock timeout", e))?;
    Ok(done)
}

/// The farm of `membership` (its row stays after an erasure, keyless).
pub async fn farm_of(db: &Database, membership: Uuid) -> Result<Option<Uuid>, StorageError> {
    Ok(farm::Entity::find()
        .select_only()
        .column(farm::Column::Id)
        .filter(farm::Column::MembershipId.eq(membership))
        .into_tuple()
        .one(db.conn())
        .await?)
}
