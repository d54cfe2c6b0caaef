//! The jobs table: background work (exports) any node may run. A job is
//! claimed with a lease: on PostgreSQL the candidate row is locked with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers pass over each other's
//! rows; on SQLite (one writer at a time) the claim is a conditional UPDATE
//! that only succeeds while the job is still claimable. Either way exactly
//! one claimer wins. A worker renews its lease while it runs; a job whose
//! lease ran out (its node died) is claimable again, until `MAX_ATTEMPTS`
//! claims have been spent, after which it fails for good.
//!
//! Every later write (renew, succeed, fail) is conditional on the attempt
//! number the claimer got, so a worker that lost its lease cannot overwrite
//! the outcome of the one that took over.
//!
//! Memberships share the workers fairly: a membership runs one job at a
//! time, and the claim takes the oldest job of the membership served least
//! recently (by `claimed_at_ms`), so one tenant's queue cannot hold the
//! others back. `enqueue` bounds how many jobs a membership may have open.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use uuid::Uuid;
use vitalfarm_domain::{JobId, MembershipId};

use crate::entity::job;
use crate::page::{self, Keyset};
use crate::{Database, DatabaseKind, Page, StorageError};

/// Claims a job may take before it fails for good.
pub const MAX_ATTEMPTS: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            _ => return None,
        })
    }
}

pub struct NewJob<'a> {
    pub kind: &'a str,
    pub membership: MembershipId,
    pub requested_by: Option<Uuid>,
    pub idempotency_key: Option<&'a str>,
    /// A JSON object, as text.
    pub payload: String,
}

/// A claimed job: the row as it was claimed, and the attempt number that
/// proves the claim in later writes.
#[derive(Debug, Clone)]
pub struct Claim {
    pub job: job::Model,
    pub attempt: i32,
}

fn now_ms(now: DateTime<Utc>) -> i64 {
    now.timestamp_millis()
}

/// The row of a new queued job.
fn queued_row(new: &NewJob<'_>) -> job::ActiveModel {
    let now = Utc::now();
    job::ActiveModel {
        id: Set(JobId::new().as_uuid()),
        kind: Set(new.kind.to_owned()),
        membership_id: Set(new.membership.as_uuid()),
        requested_by: Set(new.requested_by),
        idempotency_key: Set(new.idempotency_key.map(str::to_owned)),
        payload: Set(new.payload.clone()),
        status: Set(JobStatus::Queued.as_str().to_owned()),
        attempts: Set(0),
        lease_until_ms: Set(None),
        claimed_at_ms: Set(None),
        result: Set(None),
        error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Creates a queued job. With an idempotency key already used in this
/// membership, returns that key's job instead (`false`: not new).
pub async fn create(db: &Database, new: NewJob<'_>) -> Result<(job::Model, bool), StorageError> {
    if let Some(key) = new.idempotency_key
        && let Some(existing) = find_by_idempotency_key(db, new.membership, key).await?
    {
        return Ok((existing, false));
    }
    let inserted = queued_row(&new).insert(db.conn()).await;
    match inserted {
        Ok(m) => Ok((m, true)),
        // Two requests with the same key raced: the other one's job it is.
        Err(e) => match (StorageError::unique(e, "idempotency key"), new.idempotency_key) {
            (StorageError::Conflict(_), Some(key)) => find_by_idempotency_key(db, new.membership, key)
                .await?
                .map(|m| (m, false))
                .ok_or(StorageError::NotFound),
            (e, _) => Err(e),
        },
    }
}

/// What `enqueue` did.
#[derive(Debug)]
pub enum Enqueued {
    /// A new queued job.
    New(job::Model),
    /// The job this idempotency key already named.
    Existing(job::Model),
    /// The membership has `max_open` jobs of this kind queued or running.
    Full,
}

/// Creates a queued job unless the membership already has `max_open` jobs
/// of its kind queued or running. The count and the insert are one write
/// transaction (on PostgreSQL under the membership's job lock), so
/// concurrent requests cannot pass the bound together. A repeated
/// idempotency key returns its job even when the queue is full.
pub async fn enqueue(db: &Database, new: NewJob<'_>, max_open: u64) -> Result<Enqueued, StorageError> {
    if let Some(key) = new.idempotency_key
        && let Some(existing) = find_by_idempotency_key(db, new.membership, key).await?
    {
        return Ok(Enqueued::Existing(existing));
    }
    let txn = db.begin_write().await?;
    lock_membership_jobs(db, &txn, new.membership).await?;
    let open = job::Entity::find()
        .filter(job::Column::MembershipId.eq(new.membership.as_uuid()))
        .filter(job::Column::Kind.eq(new.kind))
        .filter(job::Column::Status.is_in([JobStatus::Queued.as_str(), JobStatus::Running.as_str()]))
        .count(&txn)
        .await?;
    if open >= max_open {
        return Ok(Enqueued::Full);
    }
    let inserted = queued_row(&new).insert(&txn).await;
    match inserted {
        Ok(m) => {
            txn.commit().await?;
            Ok(Enqueued::New(m))
        }
        Err(e) => {
            drop(txn);
            // Two requests with the same key raced: the other one's job it is.
            match (StorageError::unique(e, "idempotency key"), new.idempotency_key) {
                (StorageError::Conflict(_), Some(key)) => find_by_idempotency_key(db, new.membership, key)
                    .await?
                    .map(Enqueued::Existing)
                    .ok_or(StorageError::NotFound),
                (e, _) => Err(e),
            }
        }
    }
}

/// On PostgreSQL, serialises the job writes that decide a membership's
/// rules (its open-job bound, its one running job) for the rest of the
/// transaction. SQLite's write transactions are serial already.
async fn lock_membership_jobs(
    db: &Database,
    txn: &impl sea_orm::ConnectionTrait,
    membership: MembershipId,
) -> Result<(), StorageError> {
    if db.kind() != DatabaseKind::Postgres {
        return Ok(());
    }
    let bytes = membership.as_uuid().as_u64_pair();
    // A transaction-scoped advisory lock on a 64-bit digest of the id; two
    // memberships sharing a digest only wait for each other.
    let key = i64::from_ne_bytes((bytes.0 ^ bytes.1 ^ JOB_LOCK_SPACE).to_ne_bytes());
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [key.into()],
    ))
    .await?;
    Ok(())
}

/// Keeps the job locks apart from any other advisory lock.
const JOB_LOCK_SPACE: u64 = 0x6a6f_6273_2f6d_656d; // "jobs/mem"

async fn find_by_idempotency_key(
    db: &Database,
    membership: MembershipId,
    key: &str,
) -> Result<Option<job::Model>, StorageError> {
    Ok(job::Entity::find()
        .filter(job::Column::MembershipId.eq(membership.as_uuid()))
        .filter(job::Column::IdempotencyKey.eq(key))
        .one(db.conn())
        .await?)
}

/// A job of `membership`, or `None` (also when it belongs to another).
pub async fn get(
    db: &Database,
    membership: MembershipId,
    kind: &str,
    id: JobId,
) -> Result<Option<job::Model>, StorageError> {
    Ok(job::Entity::find_by_id(id.as_uuid())
        .filter(job::Column::MembershipId.eq(membership.as_uuid()))
        .filter(job::Column::Kind.eq(kind))
        .one(db.conn())
        .await?)
}

/// A membership's jobs of `kind`, newest first.
pub async fn list(
    db: &Database,
    membership: MembershipId,
    kind: &str,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Page<job::Model>, StorageError> {
    let q = job::Entity::find()
        .filter(job::Column::MembershipId.eq(membership.as_uuid()))
        .filter(job::Column::Kind.eq(kind));
    page::fetch(db.conn(), q, Keyset::before(job::Column::Id, before, limit), |m| m.id).await
}

/// Queued, or running under a lease that ran out, with attempts left.
fn claimable(now: i64) -> Condition {
    Condition::all().add(job::Column::Attempts.lt(MAX_ATTEMPTS)).add(
        Condition::any()
            .add(job::Column::Status.eq(JobStatus::Queued.as_str()))
            .add(
                Condition::all()
                    .add(job::Column::Status.eq(JobStatus::Running.as_str()))
                    .add(job::Column::LeaseUntilMs.lt(now)),
            ),
    )
}

/// Fails every job whose lease ran out after its last allowed attempt: its
/// node died `MAX_ATTEMPTS` times while running it, so running it again is
/// more likely to kill another node than to succeed.
pub async fn fail_exhausted(db: &Database) -> Result<u64, StorageError> {
    let now = Utc::now();
    let res = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(JobStatus::Failed.as_str()))
        .col_expr(
            job::Column::Error,
            Expr::value(Some(format!(
                "gave up after {MAX_ATTEMPTS} attempts: the worker running it stopped each time"
            ))),
        )
        .col_expr(job::Column::LeaseUntilMs, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Status.eq(JobStatus::Running.as_str()))
        .filter(job::Column::LeaseUntilMs.lt(now_ms(now)))
        .filter(job::Column::Attempts.gte(MAX_ATTEMPTS))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected)
}

/// No other job of the same membership runs under a live lease: a
/// membership runs one job at a time. Only integers are formatted in.
fn no_running_sibling(now: i64) -> sea_orm::sea_query::SimpleExpr {
    Expr::cust(format!(
        "NOT EXISTS (SELECT 1 FROM jobs AS sibling WHERE sibling.membership_id = jobs.membership_id \
         AND sibling.id <> jobs.id AND sibling.status = 'running' AND sibling.lease_until_ms >= {now})"
    ))
}

/// When the job's membership was last served: its latest claim, 0 if none.
fn membership_last_claimed() -> sea_orm::sea_query::SimpleExpr {
    Expr::cust(
        "(SELECT COALESCE(MAX(served.claimed_at_ms), 0) FROM jobs AS served \
         WHERE served.membership_id = jobs.membership_id)",
    )
}

/// The claim's candidates in the order they should run: claimable, of one
/// of `kinds`, of a membership with nothing running, the membership served
/// least recently first, then the oldest job.
fn candidates(kinds: Vec<String>, now: i64) -> sea_orm::Select<job::Entity> {
    job::Entity::find()
        .filter(claimable(now))
        .filter(job::Column::Kind.is_in(kinds))
        .filter(no_running_sibling(now))
        .order_by(membership_last_claimed(), sea_orm::Order::Asc)
        .order_by_asc(job::Column::Id)
}

/// Claims a job of one of `kinds` for `lease`, or `None`: the oldest job of
/// the membership served least recently among those with nothing running.
pub async fn claim(db: &Database, kinds: &[&str], lease: chrono::Duration) -> Result<Option<Claim>, StorageError> {
    let now = Utc::now();
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    match db.kind() {
        DatabaseKind::Postgres => {
            // Each pass locks one candidate row; the membership's job lock
            // then makes the one-running rule hold between claimers, and a
            // membership found busy is passed over in the next pass.
            let mut busy: Vec<Uuid> = Vec::new();
            for _ in 0..8 {
                let txn = db.conn().begin().await?;
                let mut q = candidates(kinds.clone(), now_ms(now));
                if !busy.is_empty() {
                    q = q.filter(job::Column::MembershipId.is_not_in(busy.clone()));
                }
                let candidate = q
                    .limit(1)
                    .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                    .one(&txn)
                    .await?;
                let Some(candidate) = candidate else {
                    txn.commit().await?;
                    return Ok(None);
                };
                lock_membership_jobs(db, &txn, MembershipId::from_uuid(candidate.membership_id)).await?;
                let claim = take(&txn, &candidate, now, lease).await?;
                txn.commit().await?;
                if claim.is_some() {
                    return Ok(claim);
                }
                busy.push(candidate.membership_id);
            }
            Ok(None)
        }
        DatabaseKind::Sqlite => {
            let candidates = candidates(kinds, now_ms(now)).limit(8).all(db.conn()).await?;
            for candidate in candidates {
                if let Some(claim) = take(db.conn(), &candidate, now, lease).await? {
                    return Ok(Some(claim));
                }
            }
            Ok(None)
        }
    }
}

/// The conditional UPDATE behind a claim: it matches only while the job is
/// still as the claimer saw it (same attempt count, still claimable), so of
/// two claimers that saw the same row, one changes it and the other nothing.
async fn take(
    conn: &impl sea_orm::ConnectionTrait,
    seen: &job::Model,
    now: DateTime<Utc>,
    lease: chrono::Duration,
) -> Result<Option<Claim>, StorageError> {
    let attempt = seen.attempts + 1;
    let lease_until = now_ms(now + lease);
    let res = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(JobStatus::Running.as_str()))
        .col_expr(job::Column::Attempts, Expr::value(attempt))
        .col_expr(job::Column::LeaseUntilMs, Expr::value(Some(lease_until)))
        .col_expr(job::Column::ClaimedAtMs, Expr::value(Some(now_ms(now))))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(seen.id))
        .filter(job::Column::Attempts.eq(seen.attempts))
        .filter(claimable(now_ms(now)))
        .filter(no_running_sibling(now_ms(now)))
        .exec(conn)
        .await?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    let mut job = seen.clone();
    job.status = JobStatus::Running.as_str().to_owned();
    job.attempts = attempt;
    job.lease_until_ms = Some(lease_until);
    job.claimed_at_ms = Some(now_ms(now));
    job.updated_at = now;
    Ok(Some(Claim { job, attempt }))
}

fn owned_by(claim: &Claim) -> Condition {
    Condition::all()
        .add(job::Column::Id.eq(claim.job.id))
        .add(job::Column::Status.eq(JobStatus::Running.as_str()))
        .add(job::Column::Attempts.eq(claim.attempt))
}

/// Extends the lease; `false` when the claim was lost (the lease ran out and
/// another worker took the job, or the job was deleted), and the worker
/// must stop.
pub async fn renew(db: &Database, claim: &Claim, lease: chrono::Duration) -> Result<bool, StorageError> {
    let now = Utc::now();
    let res = job::Entity::update_many()
        .col_expr(job::Column::LeaseUntilMs, Expr::value(Some(now_ms(now + lease))))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(owned_by(claim))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Records success with `result` (a JSON object as text); `false` when the
/// claim was lost.
pub async fn succeed(db: &Database, claim: &Claim, result: String) -> Result<bool, StorageError> {
    let res = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(JobStatus::Succeeded.as_str()))
        .col_expr(job::Column::Result, Expr::value(Some(result)))
        .col_expr(job::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(job::Column::LeaseUntilMs, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(owned_by(claim))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Records a failed attempt: queued again while attempts remain, else
/// `failed` with `error` (a message safe to show the client).
pub async fn fail(db: &Database, claim: &Claim, error: &str) -> Result<bool, StorageError> {
    let status = if claim.attempt >= MAX_ATTEMPTS {
        JobStatus::Failed
    } else {
        JobStatus::Queued
    };
    let res = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(status.as_str()))
        .col_expr(job::Column::Error, Expr::value(Some(error.to_owned())))
        .col_expr(job::Column::LeaseUntilMs, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(owned_by(claim))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Succeeded jobs of `kind` finished before `cutoff` whose result is still
/// on record: exports whose object the sweep should remove.
pub async fn expired(
    db: &Database,
    kind: &str,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<job::Model>, StorageError> {
    Ok(job::Entity::find()
        .filter(job::Column::Kind.eq(kind))
        .filter(job::Column::Status.eq(JobStatus::Succeeded.as_str()))
        .filter(job::Column::UpdatedAt.lt(cutoff))
        .filter(job::Column::Result.is_not_null())
        .order_by_asc(job::Column::Id)
        .limit(limit)
        .all(db.conn())
        .await?)
}

/// A membership's succeeded jobs of `kind` whose result is still on
/// record (exports that can be downloaded), newest first.
pub async fn with_result(db: &Database, membership: MembershipId, kind: &str) -> Result<Vec<job::Model>, StorageError> {
    Ok(job::Entity::find()
        .filter(job::Column::MembershipId.eq(membership.as_uuid()))
        .filter(job::Column::Kind.eq(kind))
        .filter(job::Column::Status.eq(JobStatus::Succeeded.as_str()))
        .filter(job::Column::Result.is_not_null())
        .order_by_desc(job::Column::Id)
        .all(db.conn())
        .await?)
}

/// Forgets the result of a job whose object was removed. `updated_at` is
/// left alone: it is when the job finished, from which expiry is counted.
pub async fn clear_result(db: &Database, id: JobId) -> Result<(), StorageError> {
    job::Entity::update_many()
        .col_expr(job::Column::Result, Expr::value(Option::<String>::None))
        .filter(job::Column::Id.eq(id.as_uuid()))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Test and bench support: makes a running job's lease run out now, as if
/// its node had died.
pub async fn expire_lease(db: &Database, id: JobId) -> Result<bool, StorageError> {
    let res = job::Entity::update_many()
        .col_expr(job::Column::LeaseUntilMs, Expr::value(Some(now_ms(Utc::now()) - 1)))
        .filter(job::Column::Id.eq(id.as_uuid()))
        .filter(job::Column::Status.eq(JobStatus::Running.as_str()))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected == 1)
}
