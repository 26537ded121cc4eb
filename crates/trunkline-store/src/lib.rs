//! trunkline's persistence: the only crate that knows SQL.
//!
//! [`SqlStore`] implements [`trunkline_core::store::Store`] on SQLite (WAL) through sqlx, with
//! the schema migrations embedded and applied at open. Secrets are sealed by [`seal::Sealer`]
//! before they reach a statement. The SQL is written to be portable (numbered parameters,
//! row-value comparisons, `ON CONFLICT`, integer times, text ids) so that the PostgreSQL backend
//! is the same queries behind a `postgres://` URL.

pub mod seal;
mod sqlite;

pub use seal::{MasterKey, Sealed, Sealer};
pub use sqlite::{redact_url, OpenError, SqlStore};
