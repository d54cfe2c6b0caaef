//! Fixed-window counters kept in the database, so that every API node
//! enforces the same limits (process-local counters would multiply the limit
//! by the number of nodes).

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use sea_orm::sea_query::ExprTrait;

use crate::entity::rate_limit;
use crate::{Database, StorageError};

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
pub async fn hit(db: &Database, key: &str, window: Duration) -> Result<Window, StorageError> {
    // Two nodes may race to create the same key's row; the loser retries and
    // then finds the row.
    for _ in 0..3 {
        match try_hit(db, key, window).await {
            Err(StorageError::Conflict(_)) => continue,
            other => return other,
        }
    }
    Err(StorageError::Conflict("rate limit counter is contended; retry"))
}

async fn try_hit(db: &Database, key: &str, window: Duration) -> Result<Window, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let row = rate_limit::Entity::find_by_id(key.to_owned()).one(&txn).await?;
    let out = match row {
        Some(r) if r.window_start + window > now => {
            rate_limit::Entity::update_many()
                .col_expr(
                    rate_limit::Column::Count,
                    sea_orm::sea_query::Expr::col(rate_limit::Column::Count).add(1),
                )
                .filter(rate_limit::Column::Key.eq(key))
                .exec(&txn)
                .await?;
            Window {
                count: r.count + 1,
                resets_at: r.window_start + window,
            }
        }
        Some(r) => {
            let mut active: rate_limit::ActiveModel = r.into();
            active.window_start = Set(now);
            active.count = Set(1);
            active.update(&txn).await?;
            Window {
                count: 1,
                resets_at: now + window,
            }
        }
        None => {
            rate_limit::ActiveModel {
                key: Set(key.to_owned()),
                window_start: Set(now),
                count: Set(1),
            }
            .insert(&txn)
            .await
            .map_err(|e| StorageError::unique(e, "rate limit row created concurrently"))?;
            Window {
                count: 1,
                resets_at: now + window,
            }
        }
    };
    txn.commit().await?;
    Ok(out)
}

pub async fn reset(db: &Database, key: &str) -> Result<(), StorageError> {
    rate_limit::Entity::delete_by_id(key.to_owned()).exec(db.conn()).await?;
    Ok(())
}

/// Drops counters whose window ended long ago.
pub async fn purge_stale(db: &Database, older_than: Duration) -> Result<u64, StorageError> {
    let res = rate_limit::Entity::delete_many()
        .filter(rate_limit::Column::WindowStart.lt(Utc::now() - older_than))
        .exec(db.conn())
        .await?;
    Ok(res.rows_affected)
}
