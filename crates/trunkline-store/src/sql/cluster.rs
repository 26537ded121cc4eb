// Included into each backend module as `cluster`: the nodes serving the database, kept by
// their heartbeats.

use trunkline_core::model::ClusterNode;
use trunkline_core::{StoreError, Timestamp};

use super::SqlStore;
use crate::common::db;

#[derive(sqlx::FromRow)]
struct NodeRow {
    node_id: String,
    started_at: i64,
    last_heartbeat: i64,
    owned: i64,
    registers: bool,
    lease_until: i64,
}

impl SqlStore {
    pub(crate) async fn record_heartbeat(&self, node: &ClusterNode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cluster_nodes (node_id, started_at, last_heartbeat, owned, registers) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node_id) DO UPDATE SET \
             started_at = excluded.started_at, last_heartbeat = excluded.last_heartbeat, \
             owned = excluded.owned, registers = excluded.registers",
        )
        .bind(&node.node_id)
        .bind(node.started_at.micros())
        .bind(node.last_heartbeat.micros())
        .bind(i64::try_from(node.owned).unwrap_or(i64::MAX))
        .bind(node.registers)
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn cluster_nodes(
        &self,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<ClusterNode>, StoreError> {
        let rows: Vec<NodeRow> = sqlx::query_as(
            "SELECT node_id, started_at, last_heartbeat, owned, registers, lease_until \
             FROM cluster_nodes \
             WHERE last_heartbeat >= $1 OR lease_until >= $2 ORDER BY node_id",
        )
        .bind(since.micros())
        .bind(now.micros())
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|row| ClusterNode {
                node_id: row.node_id,
                started_at: Timestamp::from_micros(row.started_at),
                last_heartbeat: Timestamp::from_micros(row.last_heartbeat),
                owned: u64::try_from(row.owned).unwrap_or(0),
                registers: row.registers,
                lease_until: Timestamp::from_micros(row.lease_until),
            })
            .collect())
    }

    pub(crate) async fn forget_node(&self, node_id: &str) -> Result<(), StoreError> {
        // A lease row's holder always has a row here (see `leases`): release first.
        let mut tx = self.write_tx().await?;
        for sql in [
            "UPDATE registration_leases SET node_id = '' WHERE node_id = $1",
            "DELETE FROM cluster_nodes WHERE node_id = $1",
        ] {
            sqlx::query(sql)
                .bind(node_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}
