//! The nodes serving this database (`GET /v1/cluster`): each node's heartbeat row, listed
//! while it is younger than a lease (`cluster.lease_secs`) or the node's registration lease
//! still runs. Not tenant-scoped: every tenant is
//! served by the same nodes.

use super::Services;
use crate::error::ServiceError;
use crate::ids::Timestamp;
use crate::model::ClusterNode;

impl Services {
    /// The nodes heard from within a lease or holding a lease, by node id.
    pub async fn cluster_nodes(&self) -> Result<Vec<ClusterNode>, ServiceError> {
        let now = Timestamp::now();
        let since = now.minus(self.settings.node_lease);
        Ok(self.store.cluster_nodes(since, now).await?)
    }
}
