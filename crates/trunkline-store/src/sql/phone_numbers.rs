// Included into each backend module as `phone_numbers`: Dasha phone numbers on a trunk.

use trunkline_core::model::PhoneNumber;
use trunkline_core::page::Window;
use trunkline_core::store::WriteOutcome;
use trunkline_core::{AccountId, StoreError, Timestamp};

use super::registrations::forget_engine_rows;
use super::support::missing_or_stale;
use super::SqlStore;
use crate::common::{db, is_unique_violation, phone_number_select, PhoneNumberRow};

impl SqlStore {
    pub(crate) async fn insert_phone_number(&self, p: &PhoneNumber) -> Result<WriteOutcome, StoreError> {
        let result = sqlx::query(
            "INSERT INTO phone_numbers (id, tenant_id, phone_number, trunk_id, registration, \
             display_name, description, incoming_calls_agent_id, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
             WHERE EXISTS (SELECT 1 FROM trunks WHERE tenant_id = $2 AND id = $4)",
        )
        .bind(p.id.to_string())
        .bind(p.tenant.as_str())
        .bind(&p.phone_number)
        .bind(p.trunk_id.to_string())
        .bind(p.registration)
        .bind(&p.display_name)
        .bind(&p.description)
        .bind(&p.incoming_calls_agent_id)
        .bind(p.created_at.micros())
        .bind(p.updated_at.micros())
        .execute(&self.writer)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => Ok(WriteOutcome::ReferenceMissing),
            Ok(_) => Ok(WriteOutcome::Applied),
            Err(err) if is_unique_violation(&err) => Ok(WriteOutcome::Duplicate),
            Err(err) => Err(db(err)),
        }
    }

    pub(crate) async fn phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
    ) -> Result<Option<PhoneNumber>, StoreError> {
        sqlx::query_as::<_, PhoneNumberRow>(concat!(
            phone_number_select!(),
            "WHERE p.tenant_id = $1 AND p.phone_number = $2"
        ))
        .bind(tenant.as_str())
        .bind(number)
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?
        .map(PhoneNumberRow::into_model)
        .transpose()
    }

    pub(crate) async fn update_phone_number(
        &self,
        p: &PhoneNumber,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let trunk = sqlx::query("SELECT 1 FROM trunks WHERE tenant_id = $1 AND id = $2")
                .bind(p.tenant.as_str())
                .bind(p.trunk_id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if trunk.is_none() {
            return Ok(WriteOutcome::ReferenceMissing);
        }
        let result = sqlx::query(
            "UPDATE phone_numbers SET trunk_id = $3, registration = $4, display_name = $5, \
             description = $6, incoming_calls_agent_id = $7, updated_at = $8 \
             WHERE tenant_id = $1 AND phone_number = $2 AND updated_at = $9",
        )
        .bind(p.tenant.as_str())
        .bind(&p.phone_number)
        .bind(p.trunk_id.to_string())
        .bind(p.registration)
        .bind(&p.display_name)
        .bind(&p.description)
        .bind(&p.incoming_calls_agent_id)
        .bind(p.updated_at.micros())
        .bind(expected.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if result.rows_affected() == 0 {
            return missing_or_stale(
                &mut tx,
                "SELECT 1 FROM phone_numbers WHERE tenant_id = $1 AND phone_number = $2",
                &p.tenant,
                &p.phone_number,
            )
            .await;
        }
        tx.commit().await.map_err(db)?;
        Ok(WriteOutcome::Applied)
    }

    pub(crate) async fn delete_phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let id: Option<String> = sqlx::query_scalar(
            "DELETE FROM phone_numbers WHERE tenant_id = $1 AND phone_number = $2 RETURNING id",
        )
        .bind(tenant.as_str())
        .bind(number)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(id) = id else {
            return Ok(WriteOutcome::NotFound);
        };
        forget_engine_rows(&mut tx, tenant, &id).await?;
        tx.commit().await.map_err(db)?;
        Ok(WriteOutcome::Applied)
    }

    pub(crate) async fn phone_numbers_page(
        &self,
        tenant: &AccountId,
        window: Window,
    ) -> Result<Vec<PhoneNumber>, StoreError> {
        self.window_rows::<PhoneNumberRow>(
            concat!(
                phone_number_select!(),
                "WHERE p.tenant_id = $1 ORDER BY p.created_at, p.id LIMIT $2 OFFSET $3"
            ),
            tenant,
            window,
        )
        .await?
        .into_iter()
        .map(PhoneNumberRow::into_model)
        .collect()
    }

    pub(crate) async fn count_phone_numbers(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        self.tenant_count(tenant, "phone_numbers").await
    }
}
