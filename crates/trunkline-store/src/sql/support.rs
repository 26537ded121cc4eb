// Included into each backend module (`backend::sqlite`, `backend::postgres`) as `support`:
// helpers every entity's statements use, typed on the backend's database (`super::Db`).

use sqlx::Transaction;
use trunkline_core::page::Window;
use trunkline_core::store::WriteOutcome;
use trunkline_core::{AccountId, StoreError};
use uuid::Uuid;

use super::{Db, SqlStore};
use crate::common::db;

/// After an optimistic update touched no row: was the row gone, or changed? `exists_sql`
/// selects anything for `($1 tenant, $2 key)`.
pub(crate) async fn missing_or_stale(
    tx: &mut Transaction<'static, Db>,
    exists_sql: &str,
    tenant: &AccountId,
    key: &str,
) -> Result<WriteOutcome, StoreError> {
    let exists = sqlx::query(exists_sql)
        .bind(tenant.as_str())
        .bind(key)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
    Ok(if exists.is_some() {
        WriteOutcome::Stale
    } else {
        WriteOutcome::NotFound
    })
}

impl SqlStore {
    /// One offset window of a tenant's rows: `sql` binds the tenant as `$1`, the limit as `$2`
    /// and the offset as `$3`.
    pub(crate) async fn window_rows<R>(
        &self,
        sql: &str,
        tenant: &AccountId,
        window: Window,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    {
        sqlx::query_as::<_, R>(sql)
            .bind(tenant.as_str())
            .bind(i64::from(window.limit))
            .bind(i64::try_from(window.offset).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await
            .map_err(db)
    }

    /// The tenant's row `sql` finds by id, if any: `sql` binds the tenant as `$1` and the id
    /// as `$2`.
    pub(crate) async fn row_by_id<R>(
        &self,
        sql: &str,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    {
        sqlx::query_as::<_, R>(sql)
            .bind(tenant.as_str())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db)
    }

    /// How many rows of `entity` (its table's name) the tenant has: the counter the triggers of
    /// migration `tenant_counts` keep in the transaction of every insert and delete, so a
    /// list's total costs one lookup, not a count over the tenant's index.
    pub(crate) async fn tenant_count(
        &self,
        tenant: &AccountId,
        entity: &str,
    ) -> Result<u64, StoreError> {
        let count: Option<i64> =
            sqlx::query_scalar("SELECT n FROM tenant_counts WHERE tenant_id = $1 AND entity = $2")
                .bind(tenant.as_str())
                .bind(entity)
                .fetch_optional(&self.reader)
                .await
                .map_err(db)?;
        Ok(count.unwrap_or(0).max(0) as u64)
    }
}
