// Included into each backend module as `leases`: which node registers each outbound
// registration. Claims of several nodes never overlap: a registration without a lease row is
// taken by `INSERT … ON CONFLICT DO NOTHING` (a second inserter waits for the first's commit,
// then inserts nothing); an expired lease by an `UPDATE` of rows selected with
// `super::SKIP_LOCKED` (PostgreSQL: rows another claimer holds are passed over, not waited
// for) and re-checked as expired in the update itself.

use trunkline_core::model::Lease;
use trunkline_core::{StoreError, Timestamp};
use uuid::Uuid;

use super::{SqlStore, SKIP_LOCKED};
use crate::common::{db, parse_tenant, parse_uuid};

/// The outbound registrations: Ultravox registrations and registering phone numbers.
const OUTBOUND: &str = "SELECT id, tenant_id FROM registrations \
     UNION ALL SELECT id, tenant_id FROM phone_numbers WHERE registration";

/// A lease row (`registration_leases`) whose registration still registers: two primary-key
/// lookups per row, not a scan of every registration.
const STILL_REGISTERING: &str = "(EXISTS (SELECT 1 FROM registrations r \
     WHERE r.id = registration_leases.registration_id) \
     OR EXISTS (SELECT 1 FROM phone_numbers p \
     WHERE p.id = registration_leases.registration_id AND p.registration))";

fn lease(row: (String, String, i64)) -> Result<Lease, StoreError> {
    Ok(Lease {
        registration_id: parse_uuid(&row.0)?,
        tenant: parse_tenant(&row.1)?,
        token: u64::try_from(row.2).unwrap_or(0),
    })
}

impl SqlStore {
    pub(crate) async fn claim_leases(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Lease>, StoreError> {
        let mut tx = self.write_tx().await?;
        // Leases of registrations that are gone.
        sqlx::query(&format!(
            "DELETE FROM registration_leases WHERE expires_at < $1 AND NOT {STILL_REGISTERING}"
        ))
        .bind(now.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let mut rows: Vec<(String, String, i64)> = sqlx::query_as(&format!(
            "INSERT INTO registration_leases (registration_id, tenant_id, node_id, expires_at, token) \
             SELECT o.id, o.tenant_id, $1, $2, 1 FROM ({OUTBOUND}) AS o \
             WHERE NOT EXISTS (SELECT 1 FROM registration_leases l WHERE l.registration_id = o.id) \
             ORDER BY o.id LIMIT $3 \
             ON CONFLICT (registration_id) DO NOTHING \
             RETURNING registration_id, tenant_id, token"
        ))
        .bind(node)
        .bind(until.micros())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let left = i64::from(limit).saturating_sub(rows.len() as i64);
        if left > 0 {
            let taken: Vec<(String, String, i64)> = sqlx::query_as(&format!(
                "UPDATE registration_leases SET node_id = $1, expires_at = $2, token = token + 1 \
                 WHERE expires_at < $3 AND registration_id IN (SELECT registration_id \
                 FROM registration_leases WHERE expires_at < $3 ORDER BY registration_id \
                 LIMIT $4{SKIP_LOCKED}) \
                 RETURNING registration_id, tenant_id, token"
            ))
            .bind(node)
            .bind(until.micros())
            .bind(now.micros())
            .bind(left)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            rows.extend(taken);
        }
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(lease).collect()
    }

    pub(crate) async fn renew_leases(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<Uuid>, StoreError> {
        // A registration deleted (or no longer registering) is not renewed: its lease runs
        // out, the holder's engine (told of the deletion meanwhile) has unregistered it, and
        // the next claim round drops the row.
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "UPDATE registration_leases SET expires_at = $3 \
             WHERE node_id = $1 AND expires_at >= $2 AND {STILL_REGISTERING} \
             RETURNING registration_id"
        ))
        .bind(node)
        .bind(now.micros())
        .bind(until.micros())
        .fetch_all(&self.writer)
        .await
        .map_err(db)?;
        ids.iter().map(|id| parse_uuid(id)).collect()
    }

    pub(crate) async fn release_leases(
        &self,
        node: &str,
        ids: Option<&[Uuid]>,
    ) -> Result<u64, StoreError> {
        // Expiry 0 rather than DELETE: the row keeps its token, so the next holder's is higher.
        let done = match ids {
            None => sqlx::query(
                "UPDATE registration_leases SET expires_at = 0 WHERE node_id = $1",
            )
            .bind(node)
            .execute(&self.writer)
            .await
            .map_err(db)?,
            Some([]) => return Ok(0),
            Some(ids) => {
                let mut query = sqlx::QueryBuilder::<super::Db>::new(
                    "UPDATE registration_leases SET expires_at = 0 WHERE node_id = ",
                );
                query.push_bind(node).push(" AND registration_id IN (");
                let mut list = query.separated(", ");
                for id in ids {
                    list.push_bind(id.to_string());
                }
                query.push(")");
                query
                    .build()
                    .persistent(false)
                    .execute(&self.writer)
                    .await
                    .map_err(db)?
            }
        };
        Ok(done.rows_affected())
    }

    pub(crate) async fn count_outbound_registrations(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM ({OUTBOUND}) AS o"))
            .fetch_one(&self.reader)
            .await
            .map_err(db)?;
        Ok(count.max(0) as u64)
    }
}
