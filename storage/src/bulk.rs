//! Bulk work for `vitalfarm bench`: scratch databases, PostgreSQL `COPY`
//! into a table of the readings' shape (the baseline the write path is
//! measured against), and filling the store before a query benchmark.
//! Nothing here runs while the service serves.

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, Database as SeaDatabase, Statement};
use sqlx::postgres::PgPoolCopyExt;
use uuid::Uuid;

use crate::repo::readings::{self, NewRow};
use crate::{Database, DatabaseKind, StorageError};

fn custom(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Db(sea_orm::DbErr::Custom(format!("{what}: {e}")))
}

/// `url` with its database (the path) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> Result<String, StorageError> {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let root = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    if root.len() == after_scheme {
        return Err(custom("database URL", "has no host"));
    }
    Ok(match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    })
}

/// Creates an empty database named `name` on the PostgreSQL server of
/// `server_url` and returns its URL.
pub async fn create_database(server_url: &str, name: &str) -> Result<String, StorageError> {
    check_name(name)?;
    let admin = SeaDatabase::connect(server_url).await?;
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
    admin.close().await?;
    with_database(server_url, name)
}

/// Drops the database `name` on the server of `server_url`, ending its
/// sessions.
pub async fn drop_database(server_url: &str, name: &str) -> Result<(), StorageError> {
    check_name(name)?;
    let admin = SeaDatabase::connect(server_url).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    admin.close().await?;
    Ok(())
}

/// Names are spliced into DDL (identifiers cannot be bound): only plain
/// ones are accepted.
fn check_name(name: &str) -> Result<(), StorageError> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(())
    } else {
        Err(custom("identifier", format!("{name:?} is not a plain lowercase name")))
    }
}

/// The server's own description, e.g. `PostgreSQL 15.19 on x86_64…` or
/// `SQLite 3.46.0`.
pub async fn server_version(db: &Database) -> Result<String, StorageError> {
    let sql = match db.kind() {
        DatabaseKind::Postgres => "SELECT split_part(version(), ',', 1) AS v",
        DatabaseKind::Sqlite => "SELECT 'SQLite ' || sqlite_version() AS v",
    };
    let row = db
        .conn()
        .query_one_raw(Statement::from_string(db.backend(), sql.to_owned()))
        .await?
        .ok_or_else(|| custom("version", "no row"))?;
    Ok(row.try_get("", "v")?)
}

/// Creates `table` with the columns, defaults, constraints and indexes of
/// `readings` (not its foreign key: a baseline table has no subjects).
pub async fn create_readings_copy(db: &Database, table: &str) -> Result<(), StorageError> {
    check_name(table)?;
    db.conn()
        .execute_unprepared(&format!("CREATE TABLE \"{table}\" (LIKE readings INCLUDING ALL)"))
        .await?;
    Ok(())
}

pub async fn drop_table(db: &Database, table: &str) -> Result<(), StorageError> {
    check_name(table)?;
    db.conn()
        .execute_unprepared(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .await?;
    Ok(())
}

/// Brings the readings table to the state a running service's reaches on
/// its own after a bulk load: planner statistics refreshed and, on
/// PostgreSQL, the visibility map set (autovacuum's work, which index-only
/// scans rely on) and the load checkpointed.
pub async fn settle(db: &Database) -> Result<(), StorageError> {
    let sql = match db.kind() {
        DatabaseKind::Postgres => "VACUUM (ANALYZE) readings",
        DatabaseKind::Sqlite => "ANALYZE readings",
    };
    db.conn().execute_unprepared(sql).await?;
    if db.kind() == DatabaseKind::Postgres {
        // Write the load's dirty pages out now rather than in a checkpoint
        // that would land in the middle of the measurement (needs
        // superuser or pg_checkpoint; without it the figures just carry
        // that noise).
        if let Err(e) = db.conn().execute_unprepared("CHECKPOINT").await {
            tracing::warn!(error = %e, "CHECKPOINT refused; query figures may include one");
        }
    }
    Ok(())
}

/// `rows` in `COPY … FROM STDIN` text format, one line each, columns in
/// the order of [`COPY_COLUMNS`]. Built before a measurement so that the
/// measurement is of the database alone.
pub fn copy_text(rows: &[NewRow], received_at: DateTime<Utc>) -> Vec<u8> {
    use std::io::Write;
    let received = received_at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut out = Vec::with_capacity(rows.len() * 200);
    for r in rows {
        let device = r.device_id.map_or_else(|| "\\N".to_owned(), |d| d.to_string());
        let seq = r.seq.map_or_else(|| "\\N".to_owned(), |s| s.to_string());
        // Metric, component, unit and source come from the catalog: no tab,
        // newline or backslash needs escaping.
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{device}\t{}\t{}\t{}\t{}\t{}\t{}\t{seq}\t{received}",
            Uuid::now_v7(),
            r.membership_id,
            r.subject_id,
            r.metric,
            r.component,
            r.ts_ms,
            r.value,
            r.unit,
            r.source,
        );
    }
    out
}

const COPY_COLUMNS: &str =
    "id, membership_id, subject_id, device_id, metric, component, ts_ms, value, unit, source, seq, received_at";

/// Streams `text` (from [`copy_text`]) into `table` with one `COPY`, in
/// chunks of 1 MiB. Returns the rows copied.
pub async fn copy_in(db: &Database, table: &str, text: &[u8]) -> Result<u64, StorageError> {
    check_name(table)?;
    if db.kind() != DatabaseKind::Postgres {
        return Err(custom("COPY", "only PostgreSQL has COPY"));
    }
    let pool = db.conn().get_postgres_connection_pool();
    let mut copy = pool
        .copy_in_raw(&format!("COPY \"{table}\" ({COPY_COLUMNS}) FROM STDIN"))
        .await
        .map_err(|e| custom("starting COPY", e))?;
    for chunk in text.chunks(1 << 20) {
        copy.send(chunk).await.map_err(|e| custom("COPY", e))?;
    }
    copy.finish().await.map_err(|e| custom("finishing COPY", e))
}

/// Adds `rows` to the store as fast as the database allows: `COPY` on
/// PostgreSQL, the write path's batched inserts on SQLite. Unlike ingest it
/// does not skip rows already stored; a clash fails the whole call.
pub async fn fill(db: &Database, rows: Vec<NewRow>) -> Result<u64, StorageError> {
    match db.kind() {
        DatabaseKind::Postgres => copy_in(db, "readings", &copy_text(&rows, Utc::now())).await,
        DatabaseKind::Sqlite => {
            let n = rows.len() as u64;
            let stored = readings::insert_new(db, rows).await?.len() as u64;
            if stored == n {
                Ok(n)
            } else {
                Err(custom(
                    "filling the store",
                    format!("{} of {n} rows were already there", n - stored),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_name_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "x").ok().as_deref(),
            Some("postgres://u:p@h:5432/x")
        );
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "x").ok().as_deref(),
            Some("postgres://h/x?sslmode=disable")
        );
        assert_eq!(
            with_database("postgres://h", "x").ok().as_deref(),
            Some("postgres://h/x")
        );
        assert!(with_database("postgres://", "x").is_err());
    }

    #[test]
    fn only_plain_names_reach_ddl() {
        assert!(check_name("vitalfarm_bench_1a2b").is_ok());
        for bad in ["", "Readings", "a\"; DROP TABLE readings; --", "a b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn copy_lines_have_every_column_and_null_markers() {
        let row = NewRow {
            membership_id: vitalfarm_domain::MembershipId::from_uuid(Uuid::nil()),
            subject_id: vitalfarm_domain::SubjectId::from_uuid(Uuid::nil()),
            device_id: None,
            metric: "heart_rate",
            component: "",
            ts_ms: 1_700_000_000_000,
            value: 61.5,
            unit: "/min",
            source: "device",
            seq: None,
        };
        let text = String::from_utf8(copy_text(&[row], Utc::now())).unwrap_or_default();
        let fields: Vec<&str> = text.trim_end().split('\t').collect();
        assert_eq!(fields.len(), COPY_COLUMNS.split(',').count());
        assert_eq!(fields[3], "\\N");
        assert_eq!(fields[5], "");
        assert_eq!(fields[7], "61.5");
        assert_eq!(fields[10], "\\N");
    }
}
