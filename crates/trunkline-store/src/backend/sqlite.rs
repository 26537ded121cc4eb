//! The SQLite backend, the default: one database file in WAL mode, created owner-only.
//!
//! Two pools: one connection that writes (SQLite admits one writer; serialising writers here
//! avoids lock contention inside the process, and `BEGIN IMMEDIATE` plus a busy timeout orders
//! writers from other processes such as the CLI) and a few that read concurrently (WAL). The
//! statements are the shared ones in `sql/`, compiled here with `Db = Sqlite`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqlitePool, Transaction};
use trunkline_core::StoreError;

use crate::common::{db, redact_url, OpenError};
use crate::seal::Sealer;

pub(crate) type Db = sqlx::Sqlite;

/// Row locking for lease claims: none (one writer at a time, `BEGIN IMMEDIATE`).
pub(crate) const SKIP_LOCKED: &str = "";

/// Whether every outbound registration's lease row is made with it: not on SQLite (one node,
/// no claims but the store's tests), where a claim inserts the rows it takes.
pub(crate) const LEASE_ROWS_AT_CREATION: bool = false;

/// How many outbound registrations there are: counted (one node shares them with nobody).
pub(crate) const OUTBOUND_COUNT: &str = "SELECT COUNT(*) FROM (SELECT id FROM registrations \
     UNION ALL SELECT id FROM phone_numbers WHERE registration) AS o";

/// A statement a constraint refuses is undone alone; its transaction goes on (`group_commit`).
pub(crate) const SAVEPOINT_PER_ROW: bool = false;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Concurrent readers; SQLite in WAL mode lets them run beside the writer.
const READERS: u32 = 4;

pub struct SqlStore {
    pub(crate) reader: SqlitePool,
    pub(crate) writer: SqlitePool,
    pub(crate) sealer: Sealer,
    /// Creates gathered into shared transactions, on `writer`.
    pub(crate) group_commit: group_commit::GroupCommit,
    /// Bumped after each commit that appended events ([`Store::event_wakeups`]).
    pub(crate) events_appended: events::Wakeups,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Opens (creating if missing) and migrates the database at `url` (`sqlite://PATH`).
    pub async fn open(url: &str, sealer: Sealer) -> Result<Self, OpenError> {
        if !url.starts_with("sqlite:") {
            return Err(OpenError::UnsupportedUrl(redact_url(url)));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(OpenError::Connect)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a transaction is on disk before its response goes out.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Owner-only before SQLite opens it; its -wal/-shm files take its mode (file_mode).
        if !url.contains(":memory:") && !url.contains("mode=memory") {
            crate::file_mode::prepare_database_file(options.get_filename());
        }
        // No ping before each use (sqlx's default): an embedded connection has no server to
        // lose, and the ping is one more hand-off to the connection's thread per query (it
        // doubled the thread wake-ups of a pacing admission, measured with perf).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(OpenError::Connect)?;
        MIGRATOR.run(&writer).await.map_err(OpenError::Migrate)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(OpenError::Connect)?;
        Ok(Self {
            reader,
            events_appended: events::Wakeups::default(),
            group_commit: group_commit::GroupCommit::start(writer.clone()),
            writer,
            sealer,
        })
    }

    /// Closes both pools, waiting for connections to finish; readers first, so the writer's
    /// close can checkpoint the WAL and leave one file behind.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Db>, StoreError> {
        begin_write(&self.writer).await.map_err(db)
    }
}

/// A write transaction on `writer`: `BEGIN IMMEDIATE` takes the write lock at once, so a
/// writer in another process (the CLI) waits at the start (busy timeout), not at a later
/// statement.
pub(crate) async fn begin_write(
    writer: &SqlitePool,
) -> Result<Transaction<'static, Db>, sqlx::Error> {
    writer.begin_with("BEGIN IMMEDIATE").await
}

// The shared statements (see `sql/`), compiled for SQLite.
shared_statements!();

#[cfg(test)]
#[path = "sqlite_rekey_tests.rs"]
mod rekey_tests;
