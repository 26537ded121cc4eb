//! trunkline's persistence: the only crate that knows SQL.
//!
//! [`open`] picks the backend by the URL's scheme: SQLite (`sqlite://PATH`, WAL, the default)
//! or PostgreSQL (`postgres://…`, for several nodes). Both implement
//! [`trunkline_core::store::Store`] with the same statements: each entity's SQL is written once
//! in `sql/` (numbered parameters, row-value comparisons, `ON CONFLICT`, integer times, text
//! ids) and compiled into each backend module (`backend::{sqlite,postgres}`) against that
//! backend's `sqlx` database, so neither pays for dynamic dispatch inside a query and neither
//! needs sqlx's generic bounds. Each backend has its own migrations, embedded and applied at
//! open. Secrets are sealed by [`seal::Sealer`] before they reach a statement;
//! [`Database::rekey`] re-seals them after the master key rotates. An SQLite file is created
//! owner-only (`file_mode`).

mod backend;
mod common;
mod file_mode;
mod rekey;
pub mod seal;

use std::sync::Arc;

use async_trait::async_trait;
use trunkline_core::events::EventBus;
use trunkline_core::store::Store;
use trunkline_core::StoreError;

pub use backend::postgres::SqlStore as PostgresStore;
pub use backend::sqlite::SqlStore as SqliteStore;
pub use common::{redact_url, OpenError};
pub use rekey::{RekeyReport, REKEY_BATCH};
pub use seal::{MasterKey, Sealed, Sealer};

/// Which backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// By the URL's scheme; `None` for any other.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// A store with what only the binary needs beside the `Store` contract.
#[async_trait]
pub trait Database: Store {
    fn backend(&self) -> Backend;
    /// Publishes on `bus` the changes other nodes commit to a shared database (PostgreSQL);
    /// nothing to do on SQLite, which one node owns.
    fn forward_remote_changes(&self, _bus: EventBus) {}
    /// Closes the pools, waiting for connections to finish.
    async fn close(&self);
    /// Re-seals every value not sealed with the current key, `batch` rows per transaction.
    async fn rekey(&self, batch: u32) -> Result<RekeyReport, StoreError>;
}

/// Opens (creating an SQLite file if missing) and migrates the database at `url`, as a node
/// with a random id (tools and tests; the service names its node with [`open_as`]).
pub async fn open(url: &str, sealer: Sealer) -> Result<Arc<dyn Database>, OpenError> {
    let node_id = format!("tool-{:08x}", rand::random::<u32>());
    open_as(url, sealer, &node_id).await
}

/// [`open`] as node `node_id` (letters, digits, `.`, `_`, `-`): the name its writes carry
/// where nodes share a database.
pub async fn open_as(
    url: &str,
    sealer: Sealer,
    node_id: &str,
) -> Result<Arc<dyn Database>, OpenError> {
    match Backend::of_url(url) {
        Some(Backend::Sqlite) => Ok(Arc::new(SqliteStore::open(url, sealer).await?)),
        Some(Backend::Postgres) => Ok(Arc::new(PostgresStore::open(url, sealer, node_id).await?)),
        None => Err(OpenError::UnsupportedUrl(redact_url(url))),
    }
}

#[async_trait]
impl Database for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }
    async fn close(&self) {
        SqliteStore::close(self).await
    }
    async fn rekey(&self, batch: u32) -> Result<RekeyReport, StoreError> {
        SqliteStore::rekey(self, batch).await
    }
}

#[async_trait]
impl Database for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }
    fn forward_remote_changes(&self, bus: EventBus) {
        PostgresStore::forward_remote_changes(self, bus)
    }
    async fn close(&self) {
        PostgresStore::close(self).await
    }
    async fn rekey(&self, batch: u32) -> Result<RekeyReport, StoreError> {
        PostgresStore::rekey(self, batch).await
    }
}
