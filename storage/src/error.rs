//! The one place database errors are translated into what callers act on.

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
