//! Fixed-window counters kept in the database, so that every API node
//! enforces the same limits (process-local counters would multiply the limit
//! by the number of nodes).

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, Value};

use crate::entity::rate_limit;
use crate::{Database, DatabaseKind, StorageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub count: i32,
    pub resets_at: DateTime<Utc>,
}

/// The current count for `key`, without counting anything.
pub async fn peek(db: &Database, key: &str, window: Duration) -> Result<Window, StorageError> {
    let now = Utc::now();
    let row = rate_limit::Entity::find_by_id(key.to_owned()).one(db.conn()).await?;
    Ok(match row {
        Some(r) if r.window_start + window > now => Window {
            count: r.count,
            resets_at: r.window_start + window,
        },
        _ => Window {
            count: 0,
            resets_at: now + window,
        },
    })
}

/// Counts one event for `key` and returns the window after counting it.
///
/// One statement (an upsert with `RETURNING`), so concurrent callers, on one
/// node or many, each see a distinct count: a check made on the returned
/// count cannot be raced (a read followed by a write could hand the same
/// count to many callers at once).
pub async fn hit(db: &Database, key: &str, window: Duration) -> Result<Window, StorageError> {
    let now = Utc::now();
    let cutoff = now - window;
    let row = db
        .conn()
        .query_one_raw(stmt(
            db,
            "INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN rate_limits.window_start > ? THEN rate_limits.count + 1 ELSE 1 END, \
             window_start = CASE WHEN rate_limits.window_start > ? THEN rate_limits.window_start ELSE ? END \
             RETURNING count, window_start",
            vec![key.into(), now.into(), cutoff.into(), cutoff.into(), now.into()],
        ))
        .await?
        .ok_or(StorageError::Conflict("rate limit counter is contended; retry"))?;
    let count: i32 = row.try_get("", "count")?;
    let start: DateTime<Utc> = row.try_get("", "window_start")?;
    Ok(Window {
        count,
        resets_at: start + window,
    })
}

/// Takes back one event counted by [`hit`]: callers count an attempt before
/// checking it (so the check cannot be raced) and take the count back when
/// the attempt turns out not to be one that the limit is about (a correct
/// password).
pub async fn undo(db: &Database, key: &str) -> Result<(), StorageError> {
    db.conn()
        .execute_raw(stmt(
            db,
            "UPDATE rate_limits SET count = count - 1 WHERE key = ? AND count > 0",
            vec![key.into()],
        ))
        .await?;
    Ok(())
}

/// Marks `key` as seen now (a fact to remember rather than a counter, such
/// as "this account signed in from this network"): `window_start` holds the
/// last time it was seen.
pub async fn remember(db: &Database, key: &str) -> Result<(), StorageError> {
    db.conn()
        .execute_raw(stmt(
            db,
            "INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1) \
             ON CONFLICT (key) DO UPDATE SET window_start = ?, count = rate_limits.count + 1",
            vec![key.into(), Utc::now().into(), Utc::now().into()],
        ))
        .await?;
    Ok(())
}

/// Whether [`remember`] marked `key` within `within`.
pub async fn seen_within(db: &Database, key: &str, within: Duration) -> Result<bool, StorageError> {
    let row = rate_limit::Entity::find_by_id(key.to_owned()).one(db.conn()).await?;
    Ok(row.is_some_and(|r| r.window_start + within > Utc::now()))
}

/// Keys that [`remember`] keeps for longer than counters live start with
/// this prefix; the stale-counter purge leaves them to [`purge_remembered`].
pub const REMEMBERED_PREFIX: &str = "known:";

fn stmt(db: &Database, sql: &str, values: Vec<Value>) -> Statement {
    let (backend, sql) = match db.kind() {
        DatabaseKind::Sqlite => (DbBackend::Sqlite, sql.to_owned()),
        // `?` placeholders become `$1, $2, …`.
        DatabaseKind::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(c);
                }
            }
            (DbBackend::Postgres, out)
        }
    };
    Statement::from_sql_and_values(backend, sql, values)
}

pub async fn reset(db: &Database, key: &str) -> Result<(), StorageError> {
    rate_limit::Entity::delete_by_id(key.to_owned()).exec(db.conn()).await?;
    Ok(())
}

/// Drops counters whose window ended long ago (not remembered facts).
pub async fn purge_stale(db: &Database, older_than: Duration) -> Result<u64, StorageError> {
    let res = rate_limit::Entity::delete_many()
        .filter(rate_limit::Column::WindowStart.lt(Utc::now() - older_than))
        .filter(rate_limit::Column::Key.not_like(format!("{REMEMBERED_PREFIX}%")))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected)
}

/// Drops remembered facts last seen before `older_than` ago.
pub async fn purge_remembered(db: &Database, older_than: Duration) -> Result<u64, StorageError> {
    let res = rate_limit::Entity::delete_many()
        .filter(rate_limit::Column::WindowStart.lt(Utc::now() - older_than))
        .filter(rate_limit::Column::Key.like(format!("{REMEMBERED_PREFIX}%")))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected)
}
