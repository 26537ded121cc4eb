// Included into each backend module as `trunks`: Dasha SIP credentials (outbound trunks).

use secrecy::SecretString;
use trunkline_core::model::Trunk;
use trunkline_core::page::Window;
use trunkline_core::store::{SecretChange, WriteOutcome};
use trunkline_core::{AccountId, StoreError, Timestamp};
use uuid::Uuid;

use super::support::missing_or_stale;
use super::SqlStore;
use crate::common::{applied, db, seal, trunk_from_row, TrunkRow, TRUNK_SELECT};

impl SqlStore {
    pub(crate) async fn insert_trunk(
        &self,
        t: &Trunk,
        password: Option<&SecretString>,
    ) -> Result<(), StoreError> {
        let sealed = password.map(|p| seal(&self.sealer, "trunks", &t.tenant, t.id, p));
        let (ciphertext, key_id) = sealed.map(|s| (s.ciphertext, s.key_id)).unzip();
        sqlx::query(
            "INSERT INTO trunks (id, tenant_id, server, transport, domain, auth_user, \
             password_sealed, password_key_id, description, cps_limit, cps_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(t.id.to_string())
        .bind(t.tenant.as_str())
        .bind(&t.server)
        .bind(t.transport.as_str())
        .bind(&t.domain)
        .bind(&t.auth_user)
        .bind(ciphertext)
        .bind(key_id)
        .bind(&t.description)
        .bind(t.cps_limit.map(i64::from))
        .bind(&t.cps_key)
        .bind(t.created_at.micros())
        .bind(t.updated_at.micros())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn trunk(
        &self,
        tenant: &AccountId,
        id: Uuid,
        reveal: bool,
    ) -> Result<Option<Trunk>, StoreError> {
        let row = sqlx::query_as::<_, TrunkRow>(&format!(
            "{TRUNK_SELECT} WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        row.map(|row| trunk_from_row(&self.sealer, row, reveal)).transpose()
    }

    pub(crate) async fn update_trunk(
        &self,
        t: &Trunk,
        password: SecretChange,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        let (replace_password, sealed) = match &password {
            SecretChange::Keep => (false, None),
            SecretChange::Clear => (true, None),
            SecretChange::Set(secret) => (true, Some(seal(&self.sealer, "trunks", &t.tenant, t.id, secret))),
        };
        let (ciphertext, key_id) = sealed.map(|s| (s.ciphertext, s.key_id)).unzip();
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "UPDATE trunks SET server = $3, transport = $4, domain = $5, auth_user = $6, \
             password_sealed = CASE WHEN $7 THEN $8 ELSE password_sealed END, \
             password_key_id = CASE WHEN $7 THEN $9 ELSE password_key_id END, \
             description = $10, cps_limit = $11, cps_key = $12, updated_at = $13 \
             WHERE tenant_id = $1 AND id = $2 AND updated_at = $14",
        )
        .bind(t.tenant.as_str())
        .bind(t.id.to_string())
        .bind(&t.server)
        .bind(t.transport.as_str())
        .bind(&t.domain)
        .bind(&t.auth_user)
        .bind(replace_password)
        .bind(ciphertext)
        .bind(key_id)
        .bind(&t.description)
        .bind(t.cps_limit.map(i64::from))
        .bind(&t.cps_key)
        .bind(t.updated_at.micros())
        .bind(expected.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if result.rows_affected() == 0 {
            return missing_or_stale(
                &mut tx,
                "SELECT 1 FROM trunks WHERE tenant_id = $1 AND id = $2",
                &t.tenant,
                &t.id.to_string(),
            )
            .await;
        }
        tx.commit().await.map_err(db)?;
        Ok(WriteOutcome::Applied)
    }

    pub(crate) async fn delete_trunk(&self, tenant: &AccountId, id: Uuid) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let in_use = sqlx::query(
            "SELECT 1 FROM phone_numbers WHERE tenant_id = $1 AND trunk_id = $2 LIMIT 1",
        )
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if in_use.is_some() {
            // Phone numbers only ever point at a trunk of their own tenant, so the trunk is
            // this tenant's: the answer is "in use", not "not found".
            return Ok(WriteOutcome::InUse);
        }
        let result = sqlx::query("DELETE FROM trunks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(applied(result.rows_affected()))
    }

    pub(crate) async fn trunks_page(
        &self,
        tenant: &AccountId,
        window: Window,
        reveal: bool,
    ) -> Result<Vec<Trunk>, StoreError> {
        let rows = self
            .window_rows::<TrunkRow>(
                &format!("{TRUNK_SELECT} WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"),
                tenant,
                window,
            )
            .await?;
        rows.into_iter()
            .map(|row| trunk_from_row(&self.sealer, row, reveal))
            .collect()
    }

    pub(crate) async fn count_trunks(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        self.tenant_count(tenant, "trunks").await
    }
}
