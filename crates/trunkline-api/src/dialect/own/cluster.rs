//! `GET /v1/cluster`: the nodes serving this database, from their heartbeats.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::Own;
use crate::dialect::ProblemDetails;
use crate::error::Result;
use crate::extract::Caller;
use crate::AppState;

/// One node, as its last heartbeat said.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    node_id: String,
    /// RFC 3339; a node is listed while this is younger than `cluster.lease_secs`.
    last_heartbeat: String,
    /// Outbound registrations its engine holds.
    owned: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Cluster {
    /// By node id; a single node lists itself.
    nodes: Vec<NodeView>,
}

/// The nodes serving this database: each one's heartbeat (every `cluster.renew_secs`) and the
/// outbound registrations its engine holds.
#[utoipa::path(get, path = "/v1/cluster", tag = "trunkline",
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = Cluster), (status = 401, response = ProblemDetails)))]
pub(super) async fn cluster(
    State(state): State<AppState>,
    _caller: Caller<Own>,
) -> Result<Json<Cluster>, Own> {
    let nodes = state.services.cluster_nodes().await?;
    Ok(Json(Cluster {
        nodes: nodes
            .into_iter()
            .map(|node| NodeView {
                node_id: node.node_id,
                last_heartbeat: node.last_heartbeat.to_rfc3339(),
                owned: node.owned,
            })
            .collect(),
    }))
}
