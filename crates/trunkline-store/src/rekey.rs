//! Re-sealing every sealed secret with the current master key (`trunkline rekey`), so that the
//! keys in `master_key_previous` can be dropped afterwards.
//!
//! The sealed columns: `registrations.password_sealed` (Ultravox registrations' passwords) and
//! `trunks.password_sealed` (Dasha trunks' `authPassword`, nullable), each with its
//! `password_key_id`. Inbound credentials hold HA1 digests and API keys SHA-256 digests: neither
//! depends on the master key, so neither is here.
//!
//! Safe while servers run: a table is read in batches in id order (keyset, so a value no key
//! opens is passed over rather than read again), each value is re-sealed in memory with the
//! row's own associated data, and a batch is written in one `BEGIN IMMEDIATE` transaction whose
//! UPDATEs carry the old ciphertext in their WHERE clause. A row whose password was replaced
//! between the read and the write is left as its writer sealed it and counted as skipped.
//! `updated_at` is not touched: the secret is the same, so the row's version — which API
//! updates compare and the engine watches — stays, and nobody's optimistic update or
//! registration is disturbed. Running it again re-seals nothing (idempotent).
//!
//! This is maintenance of the store at rest, not a business rule: the binary calls
//! [`SqlStore::rekey`] directly, and the services' `Store` contract does not carry it.

use std::collections::BTreeSet;

use trunkline_core::{AccountId, StoreError};
use uuid::Uuid;

use crate::seal::Sealed;
use crate::sqlite::{db, seal_context, SqlStore};

/// Rows re-sealed per write transaction: short enough that a running server's writes wait
/// at most a few milliseconds behind one batch.
pub const REKEY_BATCH: u32 = 500;

/// Tables with a sealed `password_sealed` / `password_key_id` pair; the table name is also the
/// first part of the value's associated data.
const SEALED_TABLES: [&str; 2] = ["registrations", "trunks"];

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
struct SealedRow {
    id: String,
    tenant_id: String,
    password_sealed: Vec<u8>,
    password_key_id: String,
}

/// A row's value as read and as re-sealed, ready for the optimistic write.
struct Resealed {
    tenant_id: String,
    id: String,
    old: Sealed,
    new: Sealed,
}

impl SqlStore {
    /// Re-seals every value not sealed with the current key, `batch` rows per transaction.
    pub async fn rekey(&self, batch: u32) -> Result<RekeyReport, StoreError> {
        let mut report = RekeyReport::default();
        for table in SEALED_TABLES {
            let mut after = String::new();
            loop {
                let rows = self.rekey_read(table, &after, batch.max(1)).await?;
                let Some(last) = rows.last() else { break };
                after = last.id.clone();
                let resealed = self.rekey_reseal(table, rows, &mut report)?;
                self.rekey_write(table, resealed, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// Up to `batch` rows after id `after` whose value is not sealed with the current key.
    async fn rekey_read(
        &self,
        table: &str,
        after: &str,
        batch: u32,
    ) -> Result<Vec<SealedRow>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT id, tenant_id, password_sealed, password_key_id FROM {table} \
             WHERE password_sealed IS NOT NULL AND password_key_id IS NOT NULL \
             AND password_key_id <> $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(self.sealer.current_key_id())
        .bind(after)
        .bind(i64::from(batch))
        .fetch_all(&self.reader)
        .await
        .map_err(db)
    }

    /// Opens and re-seals each value in its row's context; a value no key opens is counted.
    fn rekey_reseal(
        &self,
        table: &str,
        rows: Vec<SealedRow>,
        report: &mut RekeyReport,
    ) -> Result<Vec<Resealed>, StoreError> {
        let mut resealed = Vec::with_capacity(rows.len());
        for row in rows {
            let (Some(tenant), Ok(id)) =
                (AccountId::parse(&row.tenant_id), Uuid::try_parse(&row.id))
            else {
                return Err(StoreError::Database(format!(
                    "{table} row {} has an invalid id or tenant id",
                    row.id
                )));
            };
            let old = Sealed {
                ciphertext: row.password_sealed,
                key_id: row.password_key_id,
            };
            match self.sealer.reseal(&old, &seal_context(table, &tenant, id)) {
                Ok(new) => resealed.push(Resealed {
                    tenant_id: row.tenant_id,
                    id: row.id,
                    old,
                    new,
                }),
                Err(err) => {
                    tracing::warn!(table, id = %row.id, key_id = %old.key_id, error = %err,
                        "cannot re-seal a stored secret");
                    report.unreadable += 1;
                    if !self.sealer.holds_key(&old.key_id) {
                        report.missing_key_ids.insert(old.key_id);
                    }
                }
            }
        }
        Ok(resealed)
    }

    /// One transaction; a row is rewritten only if it still holds the value that was read.
    async fn rekey_write(
        &self,
        table: &str,
        resealed: Vec<Resealed>,
        report: &mut RekeyReport,
    ) -> Result<(), StoreError> {
        if resealed.is_empty() {
            return Ok(());
        }
        let update = format!(
            "UPDATE {table} SET password_sealed = $1, password_key_id = $2 \
             WHERE tenant_id = $3 AND id = $4 AND password_sealed = $5 AND password_key_id = $6"
        );
        let mut tx = self.write_tx().await?;
        for row in resealed {
            let written = sqlx::query(&update)
                .bind(row.new.ciphertext)
                .bind(row.new.key_id)
                .bind(row.tenant_id)
                .bind(row.id)
                .bind(row.old.ciphertext)
                .bind(row.old.key_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if written == 1 {
                report.resealed += 1;
            } else {
                report.skipped += 1;
            }
        }
        tx.commit().await.map_err(db)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};
    use trunkline_core::model::{Registration, Tenant, Transport, Trunk};
    use trunkline_core::secret::generate_api_key;
    use trunkline_core::store::{SecretChange, Store, WriteOutcome};
    use trunkline_core::Timestamp;

    use super::*;
    use crate::{MasterKey, Sealer};

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; 32])
    }

    async fn open(url: &str, current: u8, previous: &[u8]) -> SqlStore {
        let previous: Vec<_> = previous.iter().map(|b| key(*b)).collect();
        SqlStore::open(url, Sealer::new(&key(current), &previous))
            .await
            .unwrap()
    }

    fn trunk(tenant: &AccountId, n: i64) -> Trunk {
        Trunk {
            id: Uuid::new_v4(),
            tenant: tenant.clone(),
            server: "sip.example.com".into(),
            transport: Transport::Udp,
            domain: None,
            auth_user: Some("user".into()),
            has_password: true,
            revealed_password: None,
            description: None,
            cps_limit: None,
            cps_key: None,
            created_at: Timestamp::from_micros(n),
            updated_at: Timestamp::from_micros(n),
        }
    }

    /// Every stored key id of both tables, sorted.
    async fn key_ids(store: &SqlStore) -> Vec<String> {
        let mut ids: Vec<String> = sqlx::query_scalar(
            "SELECT password_key_id FROM registrations UNION ALL \
             SELECT password_key_id FROM trunks WHERE password_key_id IS NOT NULL",
        )
        .fetch_all(&store.reader)
        .await
        .unwrap();
        ids.sort();
        ids
    }

    /// A tenant with three trunks (two with a password) and two registrations, sealed under
    /// key 1. Returns the tenant, the trunks and the registrations.
    async fn seed(url: &str) -> (AccountId, Vec<Uuid>, Vec<Uuid>) {
        let store = open(url, 1, &[]).await;
        let tenant = Tenant {
            account_id: AccountId::generate(),
            name: "t".into(),
            created_at: Timestamp::now(),
        };
        store
            .create_tenant(&tenant, &generate_api_key().record)
            .await
            .unwrap();
        let account = tenant.account_id;
        let mut trunks = Vec::new();
        for n in 0..3 {
            let trunk = trunk(&account, n);
            let password = (n < 2).then(|| SecretString::from(format!("trunk-pw-{n}")));
            store.insert_trunk(&trunk, password.as_ref()).await.unwrap();
            trunks.push(trunk.id);
        }
        let mut registrations = Vec::new();
        for n in 0..2 {
            let registration = Registration {
                id: Uuid::new_v4(),
                tenant: account.clone(),
                username: format!("user{n}"),
                proxy: "sip.example.com".into(),
                outbound_proxy: None,
                auth_user: None,
                created_at: Timestamp::from_micros(n),
                updated_at: Timestamp::from_micros(n),
                status: None,
            };
            let password = SecretString::from(format!("reg-pw-{n}"));
            store
                .insert_registration(&registration, &password)
                .await
                .unwrap();
            registrations.push(registration.id);
        }
        store.close().await;
        (account, trunks, registrations)
    }

    #[tokio::test]
    async fn rekey_reseals_every_table_in_batches_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let (tenant, trunks, registrations) = seed(&url).await;

        // Key 2 current, key 1 previous; one row per transaction, so batches are exercised.
        let store = open(&url, 2, &[1]).await;
        let report = store.rekey(1).await.unwrap();
        assert_eq!(report.resealed, 4, "{report:?}");
        assert_eq!((report.skipped, report.unreadable), (0, 0));
        assert_eq!(key_ids(&store).await, vec![key(2).id(); 4]);
        assert_eq!(
            store.rekey(REKEY_BATCH).await.unwrap(),
            RekeyReport::default()
        );
        store.close().await;

        // Key 2 alone opens every value now, to the same plaintext, in its own row.
        let store = open(&url, 2, &[]).await;
        for (n, id) in trunks.iter().enumerate().take(2) {
            let trunk = store.trunk(&tenant, *id, true).await.unwrap().unwrap();
            let password = trunk.revealed_password.expect("revealed");
            assert_eq!(password.expose_secret(), format!("trunk-pw-{n}"));
        }
        let without = store
            .trunk(&tenant, trunks[2], true)
            .await
            .unwrap()
            .unwrap();
        assert!(!without.has_password && without.revealed_password.is_none());
        for (n, id) in registrations.iter().enumerate() {
            let password = store.registration_password(&tenant, *id).await.unwrap();
            assert_eq!(password.unwrap().expose_secret(), format!("reg-pw-{n}"));
        }
        store.close().await;

        // A ring without the key that sealed the values reports them and leaves them alone.
        let store = open(&url, 3, &[]).await;
        let report = store.rekey(REKEY_BATCH).await.unwrap();
        assert_eq!((report.resealed, report.unreadable), (0, 4), "{report:?}");
        assert_eq!(report.missing_key_ids, BTreeSet::from([key(2).id()]));
        assert_eq!(key_ids(&store).await, vec![key(2).id(); 4]);
        store.close().await;
    }

    #[tokio::test]
    async fn a_password_replaced_between_read_and_write_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let (tenant, trunks, _) = seed(&url).await;
        let store = open(&url, 2, &[1]).await;

        // Read and re-seal the trunks, then let an API update replace one password.
        let rows = store.rekey_read("trunks", "", REKEY_BATCH).await.unwrap();
        assert_eq!(rows.len(), 2);
        let mut report = RekeyReport::default();
        let resealed = store.rekey_reseal("trunks", rows, &mut report).unwrap();
        let before = store
            .trunk(&tenant, trunks[0], false)
            .await
            .unwrap()
            .unwrap();
        let mut changed = before.clone();
        changed.updated_at = Timestamp::from_micros(before.updated_at.micros() + 1);
        let outcome = store
            .update_trunk(
                &changed,
                SecretChange::Set(SecretString::from("replaced-pw")),
                before.updated_at,
            )
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Applied);

        store
            .rekey_write("trunks", resealed, &mut report)
            .await
            .unwrap();
        assert_eq!((report.resealed, report.skipped), (1, 1), "{report:?}");
        let trunk = store
            .trunk(&tenant, trunks[0], true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            trunk.revealed_password.unwrap().expose_secret(),
            "replaced-pw",
            "the newer password survives the rekey"
        );
        // Row versions are left alone: the API update's stays, the re-sealed row keeps its own.
        assert_eq!(trunk.updated_at, changed.updated_at);
        let other = store
            .trunk(&tenant, trunks[1], true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(other.updated_at, Timestamp::from_micros(1));
        assert_eq!(
            other.revealed_password.unwrap().expose_secret(),
            "trunk-pw-1"
        );
        store.close().await;
    }
}
