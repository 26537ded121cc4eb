//! The PostgreSQL backend, for several nodes sharing one database: one pool for reads and
//! writes (the server orders concurrent writers itself), the same statements as SQLite (the
//! shared ones in `sql/`, compiled here with `Db = Postgres`), and its own migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Transaction};
use trunkline_core::StoreError;

use crate::common::{db, redact_url, OpenError};
use crate::seal::Sealer;

pub(crate) type Db = sqlx::Postgres;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node; a node's work is a few statements at a time, many nodes share one
/// server (PostgreSQL's default `max_connections` is 100).
const CONNECTIONS: u32 = 8;

pub struct SqlStore {
    pub(crate) reader: PgPool,
    /// The same pool as `reader`: the statements are shared with SQLite, which needs two.
    pub(crate) writer: PgPool,
    pub(crate) sealer: Sealer,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connects to and migrates the database at `url` (`postgres://…` or `postgresql://…`).
    pub async fn open(url: &str, sealer: Sealer) -> Result<Self, OpenError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(OpenError::UnsupportedUrl(redact_url(url)));
        }
        // A statement waits at most 10 s for a lock, as SQLite's busy timeout: a writer held
        // up by another holds the caller up no longer, and the caller's retry policy answers.
        let options = PgConnectOptions::from_str(url)
            .map_err(OpenError::Connect)?
            .options([("lock_timeout", "10s")]);
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(OpenError::Connect)?;
        MIGRATOR.run(&pool).await.map_err(OpenError::Migrate)?;
        Ok(Self {
            reader: pool.clone(),
            writer: pool,
            sealer,
        })
    }

    pub async fn close(&self) {
        self.writer.close().await;
    }

    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Db>, StoreError> {
        self.writer.begin().await.map_err(db)
    }
}

// The shared statements (see `sql/`), compiled for PostgreSQL.
shared_statements!();
