//! Re-sealing every sealed secret with the current master key (`trunkline rekey`), so that the
//! keys in `master_key_previous` can be dropped afterwards.
//!
//! The sealed columns: `registrations.password_sealed` (Ultravox registrations' passwords),
//! `trunks.password_sealed` (Dasha trunks' `authPassword`, nullable), each with its
//! `password_key_id`, and `webhooks.secret_sealed` (webhook signing secrets) with its
//! `secret_key_id`. Inbound credentials hold HA1 digests and API keys SHA-256 digests: neither
//! depends on the master key, so neither is here.
//!
//! Safe while servers run: a table is read in batches in id order (keyset, so a value no key
//! opens is passed over rather than read again), each value is re-sealed in memory with the
//! row's own associated data, and a batch is written in one write transaction (on SQLite
//! `BEGIN IMMEDIATE`) whose
//! UPDATEs carry the old ciphertext in their WHERE clause. A row whose password was replaced
//! between the read and the write is left as its writer sealed it and counted as skipped.
//! `updated_at` is not touched: the secret is the same, so the row's version — which API
//! updates compare and the engine watches — stays, and nobody's optimistic update or
//! registration is disturbed. Running it again re-seals nothing (idempotent).
//!
//! This is maintenance of the store at rest, not a business rule: the binary calls
//! [`crate::Database::rekey`] directly, and the services' `Store` contract does not carry it.
//! The statements are in `sql/rekey.rs`, compiled once per backend.

use std::collections::BTreeSet;

use crate::seal::Sealed;

/// Rows re-sealed per write transaction: short enough that a running server's writes wait
/// at most a few milliseconds behind one batch.
pub const REKEY_BATCH: u32 = 500;

/// Tables with a sealed `{column}_sealed` / `{column}_key_id` pair, as (table, column); the
/// table name is also the first part of the value's associated data.
pub(crate) const SEALED_TABLES: [(&str, &str); 3] = [
    ("registrations", "password"),
    ("trunks", "password"),
    ("webhooks", "secret"),
];

/// The sealed column pair's name in `table` (`password` unless [`SEALED_TABLES`] says other).
pub(crate) fn sealed_column(table: &str) -> &'static str {
    SEALED_TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .map_or("password", |(_, column)| column)
}

/// What a rekey did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RekeyReport {
    /// Values now sealed with the current key that were not before.
    pub resealed: u64,
    /// Values whose row changed between read and write (their writer sealed them anew).
    pub skipped: u64,
    /// Values no key of the ring opens.
    pub unreadable: u64,
    /// Ids of the keys that sealed unreadable values but are not configured (ids, not keys).
    pub missing_key_ids: BTreeSet<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct SealedRow {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) password_sealed: Vec<u8>,
    pub(crate) password_key_id: String,
}

/// A row's value as read and as re-sealed, ready for the optimistic write.
pub(crate) struct Resealed {
    pub(crate) tenant_id: String,
    pub(crate) id: String,
    pub(crate) old: Sealed,
    pub(crate) new: Sealed,
}
