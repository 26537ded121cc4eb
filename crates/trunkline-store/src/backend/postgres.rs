//! The PostgreSQL backend, for several nodes sharing one database: one pool for reads and
//! writes (the server orders concurrent writers itself), the same statements as SQLite (the
//! shared ones in `sql/`, compiled here with `Db = Postgres`), and its own migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Transaction};
use trunkline_core::events::{ChangeEvent, ChangeOp, EntityKind, EventBus};
use trunkline_core::{AccountId, StoreError};
use uuid::Uuid;

use crate::common::{db, redact_url, OpenError};
use crate::seal::Sealer;

pub(crate) type Db = sqlx::Postgres;

/// Row locking for lease claims: rows another node is claiming are passed over.
pub(crate) const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

/// Whether every outbound registration's lease row is made with it (migration 0010's
/// triggers), so a claim need not look for registrations without one.
pub(crate) const LEASE_ROWS_AT_CREATION: bool = true;

/// How many outbound registrations there are: the slots the triggers of migration 0008 keep.
pub(crate) const OUTBOUND_COUNT: &str =
    "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM outbound_counts";

/// Any error aborts a PostgreSQL transaction, so each row of a group is in a savepoint of its
/// own (`group_commit`).
pub(crate) const SAVEPOINT_PER_ROW: bool = true;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node; a node's work is a few statements at a time, many nodes share one
/// server (PostgreSQL's default `max_connections` is 100).
const CONNECTIONS: u32 = 8;

/// The channel the change triggers announce on (migration 0003).
const CHANGES_CHANNEL: &str = "trunkline_changes";

pub struct SqlStore {
    /// Set on each connection as `trunkline.node_id`, so the change triggers name the writer.
    node_id: String,
    pub(crate) reader: PgPool,
    /// The same pool as `reader`: the statements are shared with SQLite, which needs two.
    pub(crate) writer: PgPool,
    pub(crate) sealer: Sealer,
    /// Creates gathered into shared transactions, on `writer`.
    pub(crate) group_commit: group_commit::GroupCommit,
    /// Bumped after each commit that appended events ([`Store::event_wakeups`]).
    pub(crate) events_appended: events::Wakeups,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connects to and migrates the database at `url` (`postgres://…` or `postgresql://…`) as
    /// node `node_id` (letters, digits, `.`, `_`, `-`).
    pub async fn open(url: &str, sealer: Sealer, node_id: &str) -> Result<Self, OpenError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(OpenError::UnsupportedUrl(redact_url(url)));
        }
        // A statement waits at most 10 s for a lock, as SQLite's busy timeout: a writer held
        // up by another holds the caller up no longer, and the caller's retry policy answers.
        let options = PgConnectOptions::from_str(url)
            .map_err(OpenError::Connect)?
            .options([("lock_timeout", "10s"), ("trunkline.node_id", node_id)]);
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(OpenError::Connect)?;
        MIGRATOR.run(&pool).await.map_err(OpenError::Migrate)?;
        Ok(Self {
            node_id: node_id.to_owned(),
            reader: pool.clone(),
            events_appended: events::Wakeups::default(),
            group_commit: group_commit::GroupCommit::start(pool.clone()),
            writer: pool,
            sealer,
        })
    }

    pub async fn close(&self) {
        self.writer.close().await;
    }

    /// Publishes on `bus`, from a task of its own, every change another node (or the CLI)
    /// commits, within moments of its commit: what the triggers of migration 0003 announce,
    /// less what this node wrote (its services published those already); events other nodes
    /// append wake this node's event streams and deliverers. While the listening
    /// connection is down, changes are missed; the engine's periodic reconcile puts them
    /// right, and the listener reconnects.
    pub fn forward_remote_changes(&self, bus: EventBus) {
        let pool = self.writer.clone();
        let own = self.node_id.clone();
        let events_appended = self.events_appended.clone();
        tokio::spawn(async move {
            loop {
                let mut listener = match PgListener::connect_with(&pool).await {
                    Ok(listener) => listener,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot listen for other nodes' changes; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(err) = listener.listen(CHANGES_CHANNEL).await {
                    tracing::warn!(error = %err, "cannot listen for other nodes' changes; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            let payload = notification.payload();
                            if appended_events(payload, &own) {
                                events_appended.wake();
                            } else if let Some(event) = remote_change(payload, &own) {
                                bus.publish(event);
                            }
                        }
                        Ok(None) => tracing::warn!(
                            "lost the connection listening for other nodes' changes; \
                             reconnecting (the reconcile picks up what was missed)"
                        ),
                        Err(err) => {
                            tracing::warn!(error = %err, "listening for other nodes' changes failed");
                            break;
                        }
                    }
                }
            }
        });
    }

    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Db>, StoreError> {
        begin_write(&self.writer).await.map_err(db)
    }
}

/// A write transaction on `writer` (the server orders concurrent writers itself).
pub(crate) async fn begin_write(writer: &PgPool) -> Result<Transaction<'static, Db>, sqlx::Error> {
    writer.begin().await
}

/// Whether the payload says another node appended events (migration 0011's trigger).
fn appended_events(payload: &str, own: &str) -> bool {
    let mut parts = payload.split('|');
    let node = parts.next().unwrap_or(own);
    node != own && parts.next() == Some("events")
}

/// A change announced by the triggers (`node|table|operation|tenant|id`), unless `own` wrote
/// it or it does not parse.
fn remote_change(payload: &str, own: &str) -> Option<ChangeEvent> {
    let mut parts = payload.split('|');
    let (node, table, op, tenant, id) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if node == own || parts.next().is_some() {
        return None;
    }
    let kind = match table {
        "registrations" => EntityKind::Registration,
        "trunks" => EntityKind::Trunk,
        "phone_numbers" => EntityKind::PhoneNumber,
        "inbound_credentials" => EntityKind::InboundCredential,
        _ => return None,
    };
    let op = match op {
        "INSERT" => ChangeOp::Created,
        "UPDATE" => ChangeOp::Updated,
        "DELETE" => ChangeOp::Deleted,
        _ => return None,
    };
    Some(ChangeEvent {
        tenant: AccountId::parse(tenant)?,
        kind,
        id: Uuid::try_parse(id).ok()?,
        op,
    })
}

// The shared statements (see `sql/`), compiled for PostgreSQL.
shared_statements!();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_changes_of_other_nodes_become_events() {
        let tenant = AccountId::generate();
        let id = Uuid::new_v4();
        let payload = format!("node-b|phone_numbers|DELETE|{tenant}|{id}");
        assert_eq!(
            remote_change(&payload, "node-a"),
            Some(ChangeEvent {
                tenant: tenant.clone(),
                kind: EntityKind::PhoneNumber,
                id,
                op: ChangeOp::Deleted
            })
        );
        assert_eq!(remote_change(&payload, "node-b"), None, "our own");
        for bad in [
            format!("node-b|tenants|INSERT|{tenant}|{id}"),
            format!("node-b|trunks|TRUNCATE|{tenant}|{id}"),
            format!("node-b|trunks|INSERT|nope|{id}"),
            format!("node-b|trunks|INSERT|{tenant}|{id}|extra"),
            "node-b|trunks".to_owned(),
        ] {
            assert_eq!(remote_change(&bad, "node-a"), None, "{bad}");
        }
    }
}
