// Included into each backend module as `leases`: which node registers each outbound
// registration. A lease row names its holder (or '' once released); the holder's own lease,
// `cluster_nodes.lease_until`, covers all of its rows, so renewing is one row's write however
// many registrations a node holds. A row is claimable when it has no holder, or its holder's
// lease has lapsed. On PostgreSQL every outbound registration's row is made with it, without a
// holder (`LEASE_ROWS_AT_CREATION`, migration 0010), so a claim reads its batch from the
// `node_id` index; on SQLite a claim first inserts rows for registrations without one
// (`INSERT … ON CONFLICT DO NOTHING`). Claims of several nodes never overlap: claimable rows are
// taken by an `UPDATE` of rows selected with `super::SKIP_LOCKED` (PostgreSQL: rows another
// claimer holds are passed over, not waited for) and re-checked in the update itself. A lease
// row goes with its registration (`registrations::forget_engine_rows`); the row of a number
// whose registration was turned off stays, and claims pass over it.

use trunkline_core::model::Lease;
use trunkline_core::{StoreError, Timestamp};
use uuid::Uuid;

use super::{SqlStore, LEASE_ROWS_AT_CREATION, OUTBOUND_COUNT, SKIP_LOCKED};
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
        limit: u32,
    ) -> Result<Vec<Lease>, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut rows: Vec<(String, String, i64)> = Vec::new();
        if !LEASE_ROWS_AT_CREATION {
            rows = sqlx::query_as(&format!(
                "INSERT INTO registration_leases (registration_id, tenant_id, node_id, token) \
                 SELECT o.id, o.tenant_id, $1, 1 FROM ({OUTBOUND}) AS o \
                 WHERE NOT EXISTS \
                 (SELECT 1 FROM registration_leases l WHERE l.registration_id = o.id) \
                 ORDER BY o.id LIMIT $2 \
                 ON CONFLICT (registration_id) DO NOTHING \
                 RETURNING registration_id, tenant_id, token"
            ))
            .bind(node)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        }
        // Released rows first (one index range, read no further than the batch), then those
        // of nodes whose lease lapsed. No ORDER BY: the index scan stops at the limit.
        for pool in [
            "registration_leases.node_id = ''",
            "registration_leases.node_id IN \
             (SELECT node_id FROM cluster_nodes WHERE lease_until < $2)",
        ] {
            let left = i64::from(limit).saturating_sub(rows.len() as i64);
            if left == 0 {
                break;
            }
            let taken: Vec<(String, String, i64)> = sqlx::query_as(&format!(
                "UPDATE registration_leases SET node_id = $1, token = token + 1 \
                 WHERE {pool} AND registration_id IN (SELECT registration_id \
                 FROM registration_leases WHERE {pool} AND {STILL_REGISTERING} \
                 LIMIT $3{SKIP_LOCKED}) \
                 RETURNING registration_id, tenant_id, token"
            ))
            .bind(node)
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

    pub(crate) async fn renew_node_lease(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE cluster_nodes SET lease_until = $3 WHERE node_id = $1 AND lease_until >= $2",
        )
        .bind(node)
        .bind(now.micros())
        .bind(until.micros())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        if renewed.rows_affected() == 1 {
            return Ok(true);
        }
        // Lapsed (or never held): whatever still names this node may have been taken and
        // given back meanwhile; it starts again holding nothing.
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE registration_leases SET node_id = '' WHERE node_id = $1")
            .bind(node)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO cluster_nodes (node_id, started_at, last_heartbeat, owned, registers, \
             lease_until) VALUES ($1, $2, $2, 0, TRUE, $3) \
             ON CONFLICT (node_id) DO UPDATE SET lease_until = excluded.lease_until",
        )
        .bind(node)
        .bind(now.micros())
        .bind(until.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(false)
    }

    pub(crate) async fn held_lease_count(&self, node: &str) -> Result<u64, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM registration_leases WHERE node_id = $1")
                .bind(node)
                .fetch_one(&self.reader)
                .await
                .map_err(db)?;
        Ok(count.max(0) as u64)
    }

    pub(crate) async fn held_leases(&self, node: &str) -> Result<Vec<Lease>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT registration_id, tenant_id, token FROM registration_leases \
             WHERE node_id = $1 ORDER BY registration_id",
        )
        .bind(node)
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        rows.into_iter().map(lease).collect()
    }

    pub(crate) async fn release_leases(
        &self,
        node: &str,
        ids: Option<&[Uuid]>,
    ) -> Result<u64, StoreError> {
        // The row stays, without a holder: it keeps its token, so the next holder's is higher.
        let done = match ids {
            None => sqlx::query("UPDATE registration_leases SET node_id = '' WHERE node_id = $1")
                .bind(node)
                .execute(&self.writer)
                .await
                .map_err(db)?,
            Some([]) => return Ok(0),
            Some(ids) => {
                let mut query = sqlx::QueryBuilder::<super::Db>::new(
                    "UPDATE registration_leases SET node_id = '' WHERE node_id = ",
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
        let count: i64 = sqlx::query_scalar(OUTBOUND_COUNT)
            .fetch_one(&self.reader)
            .await
            .map_err(db)?;
        Ok(count.max(0) as u64)
    }
}
