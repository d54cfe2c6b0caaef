//! The one place database errors are translated into what callers act on.

use chrono::{DateTime, Utc};
use sea_orm::{DbErr, SqlErr};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or state rule refused the write; the text names what
    /// clashed and is safe to show to the client.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("database error: {0}")]
    Db(#[source] DbErr),
    /// A stored millisecond timestamp that no time can hold: damaged data,
    /// reported rather than shown as 1970.
    #[error("stored timestamp {0} out of range")]
    TimestampOutOfRange(i64),
}

/// A stored millisecond timestamp as a time. Every time vitalfarm stores is
/// in range (client times are checked on the way in), so one that is not
/// is an error, never a default.
pub fn stored_time(ms: i64) -> Result<DateTime<Utc>, StorageError> {
    DateTime::from_timestamp_millis(ms).ok_or(StorageError::TimestampOutOfRange(ms))
}

impl From<DbErr> for StorageError {
    fn from(err: DbErr) -> Self {
        StorageError::Db(err)
    }
}

impl StorageError {
    /// Turns a unique-constraint violation into `Conflict(what)`, so a race
    /// between two requests ends in a clean 409 rather than a 500.
    pub fn unique(err: DbErr, what: &'static str) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => StorageError::Conflict(what),
            _ => StorageError::Db(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_time_refuses_what_no_time_holds() {
        assert_eq!(
            stored_time(1_795_000_000_123).unwrap().timestamp_millis(),
            1_795_000_000_123
        );
        assert!(matches!(
            stored_time(i64::MAX),
            Err(StorageError::TimestampOutOfRange(i64::MAX))
        ));
    }
}
