// Included into each backend module as `tenants`: tenants and their API keys.

use sqlx::Transaction;
use trunkline_core::model::Tenant;
use trunkline_core::secret::ApiKeyHash;
use trunkline_core::store::{StoredApiKey, WriteOutcome};
use trunkline_core::{AccountId, StoreError, Timestamp};

use super::{Db, SqlStore};
use crate::common::{db, parse_tenant, TenantRow};

impl SqlStore {
    pub(crate) async fn create_tenant(&self, tenant: &Tenant, key: &ApiKeyHash) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_tenant(&mut tx, tenant).await?;
        insert_key(&mut tx, &tenant.account_id, key, tenant.created_at).await?;
        tx.commit().await.map_err(db)
    }

    pub(crate) async fn create_first_tenant(
        &self,
        tenant: &Tenant,
        key: &ApiKeyHash,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        // The marker's primary key orders the first starts of several nodes on one database:
        // a second start waits for the first one's commit, then finds the marker and creates
        // nothing. (Counting tenants alone is safe only with one writer.)
        let claimed = sqlx::query(
            "INSERT INTO store_markers (name, at) VALUES ('first_tenant', $1) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(tenant.created_at.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            == 1;
        if !claimed {
            return Ok(false);
        }
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if existing > 0 {
            // Tenants made before the first start (by the CLI): keep the marker, add none.
            tx.commit().await.map_err(db)?;
            return Ok(false);
        }
        insert_tenant(&mut tx, tenant).await?;
        insert_key(&mut tx, &tenant.account_id, key, tenant.created_at).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    pub(crate) async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        sqlx::query_as::<_, TenantRow>(
            "SELECT account_id, name, created_at FROM tenants ORDER BY created_at, account_id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db)?
        .into_iter()
        .map(TenantRow::into_model)
        .collect()
    }

    pub(crate) async fn tenant(&self, id: &AccountId) -> Result<Option<Tenant>, StoreError> {
        sqlx::query_as::<_, TenantRow>(
            "SELECT account_id, name, created_at FROM tenants WHERE account_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?
        .map(TenantRow::into_model)
        .transpose()
    }

    pub(crate) async fn insert_api_key(
        &self,
        tenant: &AccountId,
        key: &ApiKeyHash,
        at: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let exists = sqlx::query("SELECT 1 FROM tenants WHERE account_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if exists.is_none() {
            return Ok(WriteOutcome::NotFound);
        }
        insert_key(&mut tx, tenant, key, at).await?;
        tx.commit().await.map_err(db)?;
        Ok(WriteOutcome::Applied)
    }

    pub(crate) async fn api_key(&self, prefix: &str) -> Result<Option<StoredApiKey>, StoreError> {
        let row: Option<(String, Vec<u8>, Option<i64>)> =
            sqlx::query_as("SELECT tenant_id, sha256, revoked_at FROM api_keys WHERE prefix = $1")
                .bind(prefix)
                .fetch_optional(&self.reader)
                .await
                .map_err(db)?;
        row.map(|(tenant, sha256, revoked_at)| {
            Ok(StoredApiKey {
                tenant: parse_tenant(&tenant)?,
                sha256,
                revoked: revoked_at.is_some(),
            })
        })
        .transpose()
    }

    pub(crate) async fn revoke_api_key(&self, prefix: &str, at: Timestamp) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE prefix = $1 AND revoked_at IS NULL",
        )
        .bind(prefix)
        .bind(at.micros())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(result.rows_affected() > 0)
    }
}

pub(crate) async fn insert_tenant(
    tx: &mut Transaction<'static, Db>,
    tenant: &Tenant,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO tenants (account_id, name, created_at) VALUES ($1, $2, $3)")
        .bind(tenant.account_id.as_str())
        .bind(&tenant.name)
        .bind(tenant.created_at.micros())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

pub(crate) async fn insert_key(
    tx: &mut Transaction<'static, Db>,
    tenant: &AccountId,
    key: &ApiKeyHash,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (prefix, tenant_id, sha256, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&key.prefix)
    .bind(tenant.as_str())
    .bind(key.sha256.as_slice())
    .bind(at.micros())
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

