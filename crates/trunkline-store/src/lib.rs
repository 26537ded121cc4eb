//! trunkline's persistence: the only crate that knows SQL.
//!
//! [`SqlStore`] implements [`trunkline_core::store::Store`] on SQLite (WAL) through sqlx, with
//! the schema migrations embedded and applied at open. Secrets are sealed by [`seal::Sealer`]
//! before they reach a statement; [`SqlStore::rekey`] re-seals them after the master key
//! rotates. The database file is created owner-only (`file_mode`). The SQL is written to be
//! portable (numbered parameters, row-value comparisons, `ON CONFLICT`, integer times, text
//! ids) so that the PostgreSQL backend is the same queries behind a `postgres://` URL.

mod file_mode;
mod inbound;
mod pacing;
mod rekey;
pub mod seal;
mod sqlite;

pub use rekey::{RekeyReport, REKEY_BATCH};
pub use seal::{MasterKey, Sealed, Sealer};
pub use sqlite::{redact_url, OpenError, SqlStore};
