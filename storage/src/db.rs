//! Connecting to SQLite (embedded default) or PostgreSQL and keeping the
//! schema current.

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use vitalfarm_migrations::{Migrator, MigratorTrait};

/// The file of a `sqlite:` URL (`sqlite://PATH?...`, `sqlite:PATH`), or
/// `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    (!in_memory).then(|| std::path::PathBuf::from(path))
}

/// Creates the database file readable by its owner only (0600, like the key
/// files) before SQLite opens it, or narrows an existing one: it holds
/// every account and reading. SQLite gives its `-wal` and `-shm` files the
/// mode of the database file, so they follow; any left from an earlier,
/// wider file are narrowed too.
fn restrict_file(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let mut companions = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            companions.push(name.into());
        }
        for file in companions {
            match std::fs::metadata(&file) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// A pool of connections to vitalfarm's database.
#[derive(Debug, Clone)]
pub struct Database {
    conn: DatabaseConnection,
    kind: DatabaseKind,
}

impl Database {
    pub async fn connect(url: &str) -> Result<Self, DbErr> {
        let kind = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DatabaseKind::Postgres
        } else {
            DatabaseKind::Sqlite
        };
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            // Statements carry health values; never log them.
            .sqlx_logging(false);
        match kind {
            // SQLite has one writer at a time; a small pool keeps readers
            // concurrent under WAL without queueing many writers on the lock.
            DatabaseKind::Sqlite => opts.max_connections(4).min_connections(1),
            DatabaseKind::Postgres => opts.max_connections(20).min_connections(1),
        };
        // A TCP connection (not a Unix socket) gets TCP_NODELAY: see
        // `nodelay`.
        let tcp_port = match kind {
            DatabaseKind::Postgres => url
                .parse::<sqlx::postgres::PgConnectOptions>()
                .ok()
                .filter(|o| o.get_socket().is_none())
                .map(|o| o.get_port()),
            DatabaseKind::Sqlite => None,
        };
        if kind == DatabaseKind::Sqlite {
            // Per-connection settings go on the connect options, so every
            // pooled connection gets them (a statement run once after
            // connecting reaches only the one connection it ran on).
            opts.map_sqlx_sqlite_opts(|o| {
                // WAL lets readers proceed while a write commits.
                o.pragma("journal_mode", "WAL")
                    // FULL: WAL is synced at every commit, so a reading that
                    // was acknowledged survives a power loss, not only a
                    // process crash (NORMAL promises the latter only). The
                    // cost is one fsync per write transaction; ingest writes
                    // in batches, so it is paid per batch, not per reading.
                    .pragma("synchronous", "FULL")
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    // Deleted rows are overwritten with zeros in the page
                    // rather than left in free space: erased health data
                    // must not be recoverable from the file.
                    .pragma("secure_delete", "ON")
            });
        }
        if let Some(port) = tcp_port {
            opts.map_sqlx_postgres_pool_opts(move |pool| {
                pool.after_connect(move |_conn, _meta| {
                    Box::pin(async move {
                        crate::nodelay::apply(port);
                        Ok(())
                    })
                })
            });
        }
        if kind == DatabaseKind::Sqlite
            && let Some(path) = sqlite_file(url)
        {
            restrict_file(&path).map_err(|e| DbErr::Custom(format!("creating the SQLite file owner-only: {e}")))?;
        }
        let conn = sea_orm::Database::connect(opts).await?;
        Ok(Self { conn, kind })
    }

    /// Applies pending migrations. On PostgreSQL the whole run holds an
    /// advisory lock, so several nodes starting together migrate once, one
    /// after another, instead of colliding.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        match self.kind {
            DatabaseKind::Postgres => {
                let txn = self.conn.begin().await?;
                txn.execute_unprepared("SELECT pg_advisory_xact_lock(7261726173)")
                    .await?;
                Migrator::up(&txn, None).await?;
                txn.commit().await
            }
            DatabaseKind::Sqlite => Migrator::up(&self.conn, None).await,
        }
    }

    /// Starts a transaction that will write. On SQLite it takes the write
    /// lock at `BEGIN` (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first and writes later fails with "database is locked" when another
    /// writer committed in between, whereas an immediate one waits its turn
    /// under the busy timeout. PostgreSQL ignores the mode.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        self.conn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
    }

    /// Readiness: a round trip to the server.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    pub async fn close(self) -> Result<(), DbErr> {
        self.conn.close().await
    }
}
