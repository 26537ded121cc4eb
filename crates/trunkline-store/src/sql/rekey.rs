// Included into each backend module as `rekey`: re-sealing stored secrets with the current
// master key (see `crate::rekey` for how it stays safe beside running servers).

use trunkline_core::{AccountId, StoreError};
use uuid::Uuid;

use super::SqlStore;
use crate::common::{db, seal_context};
use crate::rekey::{sealed_column, RekeyReport, Resealed, SealedRow, SEALED_TABLES};
use crate::seal::Sealed;

impl SqlStore {
    /// Re-seals every value not sealed with the current key, `batch` rows per transaction.
    pub(crate) async fn rekey(&self, batch: u32) -> Result<RekeyReport, StoreError> {
        let mut report = RekeyReport::default();
        for (table, _) in SEALED_TABLES {
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
    pub(crate) async fn rekey_read(
        &self,
        table: &str,
        after: &str,
        batch: u32,
    ) -> Result<Vec<SealedRow>, StoreError> {
        let column = sealed_column(table);
        sqlx::query_as(&format!(
            "SELECT id, tenant_id, {column}_sealed AS password_sealed, \
             {column}_key_id AS password_key_id FROM {table} \
             WHERE {column}_sealed IS NOT NULL AND {column}_key_id IS NOT NULL \
             AND {column}_key_id <> $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(self.sealer.current_key_id())
        .bind(after)
        .bind(i64::from(batch))
        .fetch_all(&self.reader)
        .await
        .map_err(db)
    }

    /// Opens and re-seals each value in its row's context; a value no key opens is counted.
    pub(crate) fn rekey_reseal(
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
    pub(crate) async fn rekey_write(
        &self,
        table: &str,
        resealed: Vec<Resealed>,
        report: &mut RekeyReport,
    ) -> Result<(), StoreError> {
        if resealed.is_empty() {
            return Ok(());
        }
        let column = sealed_column(table);
        let update = format!(
            "UPDATE {table} SET {column}_sealed = $1, {column}_key_id = $2 \
             WHERE tenant_id = $3 AND id = $4 AND {column}_sealed = $5 AND {column}_key_id = $6"
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

