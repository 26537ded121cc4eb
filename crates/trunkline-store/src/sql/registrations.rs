// Included into each backend module as `registrations`: Ultravox registrations, their keyset
// pages, and the engine rows deleted with them. Creates go through `group_commit`.

use secrecy::SecretString;
use sqlx::Transaction;
use trunkline_core::model::Registration;
use trunkline_core::page::Seek;
use trunkline_core::store::WriteOutcome;
use trunkline_core::{AccountId, StoreError, Timestamp};
use uuid::Uuid;

use super::group_commit::{Insert, NewRegistration};
use super::support::missing_or_stale;
use super::{Db, SqlStore};
use crate::common::{
    applied, db, open_sealed, registration_page, registration_select, seal, seek_comparison,
    RegistrationRow,
};

impl SqlStore {
    pub(crate) async fn insert_registration(
        &self,
        r: &Registration,
        password: &SecretString,
    ) -> Result<(), StoreError> {
        // Sealed here, on the caller's task; the writer only inserts (`group_commit`).
        let sealed = seal(&self.sealer, "registrations", &r.tenant, r.id, password);
        self.group_commit
            .insert(Insert::Registration(NewRegistration {
                id: r.id.to_string(),
                tenant: r.tenant.as_str().to_owned(),
                username: r.username.clone(),
                proxy: r.proxy.clone(),
                outbound_proxy: r.outbound_proxy.clone(),
                auth_user: r.auth_user.clone(),
                password_sealed: sealed.ciphertext,
                password_key_id: sealed.key_id,
                created_at: r.created_at.micros(),
                updated_at: r.updated_at.micros(),
            }))
            .await
    }

    pub(crate) async fn registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<Registration>, StoreError> {
        sqlx::query_as::<_, RegistrationRow>(concat!(
            registration_select!(),
            "WHERE r.tenant_id = $1 AND r.id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?
        .map(RegistrationRow::into_model)
        .transpose()
    }

    pub(crate) async fn update_registration(
        &self,
        r: &Registration,
        password: Option<&SecretString>,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        let sealed = password.map(|p| seal(&self.sealer, "registrations", &r.tenant, r.id, p));
        let (ciphertext, key_id) = sealed.map(|s| (s.ciphertext, s.key_id)).unzip();
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "UPDATE registrations SET username = $3, proxy = $4, outbound_proxy = $5, \
             auth_user = $6, password_sealed = COALESCE($7, password_sealed), \
             password_key_id = COALESCE($8, password_key_id), updated_at = $9 \
             WHERE tenant_id = $1 AND id = $2 AND updated_at = $10",
        )
        .bind(r.tenant.as_str())
        .bind(r.id.to_string())
        .bind(&r.username)
        .bind(&r.proxy)
        .bind(&r.outbound_proxy)
        .bind(&r.auth_user)
        .bind(ciphertext)
        .bind(key_id)
        .bind(r.updated_at.micros())
        .bind(expected.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if result.rows_affected() == 0 {
            return missing_or_stale(
                &mut tx,
                "SELECT 1 FROM registrations WHERE tenant_id = $1 AND id = $2",
                &r.tenant,
                &r.id.to_string(),
            )
            .await;
        }
        tx.commit().await.map_err(db)?;
        Ok(WriteOutcome::Applied)
    }

    pub(crate) async fn delete_registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let result = sqlx::query("DELETE FROM registrations WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        forget_engine_rows(&mut tx, tenant, &id.to_string()).await?;
        tx.commit().await.map_err(db)?;
        Ok(applied(result.rows_affected()))
    }

    pub(crate) async fn registrations_page(
        &self,
        tenant: &AccountId,
        seek: Option<Seek>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        let rows = match seek {
            None => {
                sqlx::query_as::<_, RegistrationRow>(concat!(
                    registration_select!(),
                    "WHERE r.tenant_id = $1 ORDER BY r.created_at, r.id LIMIT $2"
                ))
                .bind(tenant.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await
            }
            Some(seek) => {
                let sql = match seek_comparison(&seek) {
                    ">" => registration_page!(">", "ASC"),
                    ">=" => registration_page!(">=", "ASC"),
                    "<" => registration_page!("<", "DESC"),
                    _ => registration_page!("<=", "DESC"),
                };
                sqlx::query_as::<_, RegistrationRow>(sql)
                    .bind(tenant.as_str())
                    .bind(seek.position.created.micros())
                    .bind(seek.position.id.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(&self.reader)
                    .await
            }
        }
        .map_err(db)?;
        rows.into_iter().map(RegistrationRow::into_model).collect()
    }

    pub(crate) async fn registrations_exist(
        &self,
        tenant: &AccountId,
        seek: Seek,
    ) -> Result<bool, StoreError> {
        let sql = match seek_comparison(&seek) {
            ">" => "SELECT 1 FROM registrations WHERE tenant_id = $1 AND (created_at, id) > ($2, $3) LIMIT 1",
            ">=" => "SELECT 1 FROM registrations WHERE tenant_id = $1 AND (created_at, id) >= ($2, $3) LIMIT 1",
            "<" => "SELECT 1 FROM registrations WHERE tenant_id = $1 AND (created_at, id) < ($2, $3) LIMIT 1",
            _ => "SELECT 1 FROM registrations WHERE tenant_id = $1 AND (created_at, id) <= ($2, $3) LIMIT 1",
        };
        let found = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(seek.position.created.micros())
            .bind(seek.position.id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db)?;
        Ok(found.is_some())
    }

    pub(crate) async fn count_registrations(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        self.tenant_count(tenant, "registrations").await
    }

    pub(crate) async fn registration_password(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<SecretString>, StoreError> {
        let row: Option<(Vec<u8>, String)> = sqlx::query_as(
            "SELECT password_sealed, password_key_id FROM registrations WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        match row {
            Some((ciphertext, key_id)) => {
                open_sealed(&self.sealer, "registrations", tenant, id, Some(ciphertext), Some(key_id))
            }
            None => Ok(None),
        }
    }
}

/// Deletes what the engine wrote about a registration (status, history, the binding recorded
/// for a node taking over) and its lease inside `tx`. Nobody can claim a registration that is
/// gone; its holder's engine, told of the deletion, unregisters it.
pub(crate) async fn forget_engine_rows(
    tx: &mut Transaction<'static, Db>,
    tenant: &AccountId,
    id: &str,
) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM registration_status WHERE tenant_id = $1 AND registration_id = $2",
        "DELETE FROM registration_history WHERE tenant_id = $1 AND registration_id = $2",
        "DELETE FROM registration_bindings WHERE tenant_id = $1 AND registration_id = $2",
        "DELETE FROM registration_leases WHERE tenant_id = $1 AND registration_id = $2",
    ] {
        sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
    }
    Ok(())
}

