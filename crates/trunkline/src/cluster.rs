//! Keeping this node's registration leases when nodes share a PostgreSQL database: every
//! `cluster.renew_secs` it renews what it holds, then claims or hands over registrations so
//! that each node whose engine runs holds about an equal share, and tells the engine
//! ([`Ownership`]) what it gained, gave up or lost.
//!
//! - **Share**: `⌈registrations / nodes registering⌉` (nodes heard from within a lease, per
//!   `cluster_nodes`); claims go up to it, at most [`CLAIM_BATCH`] a round; a node more than one
//!   over it hands the excess over (a node joined): the engine unregisters its own contact at
//!   once, and the lease is released a round later (the unregister's time to land), for
//!   another node to claim.
//! - **Fencing**: when renewals fail (the database is unreachable) for `lease − renew`, the
//!   leases may lapse before the next renewal could succeed: the engine drops everything at
//!   once, sending nothing more (a REGISTER in flight may finish), well before another node
//!   can claim them (at `lease` after the last renewal). Lease times are the nodes' clocks:
//!   keep them in sync (NTP); a skew eats into that margin.
//! - **Stop**: the engine unregisters what it holds (as on one node), then the leases are
//!   released, so the other nodes take the registrations over on their next round: a gap of
//!   at most `renew_secs` without a binding, and never two nodes' contacts at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trunkline_core::events::{ChangeEvent, ChangeOp, EntityKind};
use trunkline_core::ownership::Ownership;
use trunkline_core::Timestamp;
use trunkline_store::Database;

/// Registrations claimed per round at most, so a node starting beside idle ones does not take
/// everything before the others' first round.
pub const CLAIM_BATCH: u64 = 500;

/// Rounds prompted by new registrations come at most this often.
const ROUND_SPACING: Duration = Duration::from_millis(250);

/// How long leases last and how often they are renewed (`cluster.*`).
#[derive(Debug, Clone, Copy)]
pub struct LeaseTimes {
    pub lease: Duration,
    pub renew: Duration,
}

/// Runs the rounds until `stop`: every `renew`, and at once when a registration is created or
/// starts registering (through this node or, heard through the database, another), so a new
/// one is claimed without waiting for the next round.
pub async fn keep_leases(
    store: Arc<dyn Database>,
    node_id: String,
    times: LeaseTimes,
    ownership: Arc<Ownership>,
    mut events: broadcast::Receiver<ChangeEvent>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(times.renew);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed = Instant::now();
    // Given up on purpose, their leases released on the next round.
    let mut handing_over: Vec<uuid::Uuid> = Vec::new();
    let mut last_round = Instant::now()
        .checked_sub(ROUND_SPACING)
        .unwrap_or_else(Instant::now);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            event = events.recv() => {
                let claimable = match event {
                    Ok(event) => matches!(
                        (event.kind, event.op),
                        (EntityKind::Registration | EntityKind::PhoneNumber,
                         ChangeOp::Created | ChangeOp::Updated)
                    ),
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => false,
                };
                if claimable {
                    // Soon, but not once per event: a burst of creations is one round.
                    tick.reset_at((last_round + ROUND_SPACING).max(Instant::now()));
                }
                continue;
            }
            _ = stop.cancelled() => return,
        }
        last_round = Instant::now();
        let now = Timestamp::now();
        let until = now.plus(times.lease);
        let asked = Instant::now();
        match store.renew_leases(&node_id, now, until).await {
            Ok(held) => {
                // Counted from when the renewal was asked: the rows' expiry is `until`.
                renewed = asked;
                ownership.renewed(asked.into_std(), times.lease, times.renew);
                let held: HashSet<_> = held.into_iter().collect();
                let lost: Vec<_> = ownership
                    .owned()
                    .into_iter()
                    .filter(|id| !held.contains(id))
                    .collect();
                ownership.lose(lost);
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot renew registration leases");
                if renewed.elapsed() + times.renew >= times.lease && !ownership.is_empty() {
                    tracing::error!(
                        "registration leases may lapse before they can be renewed: \
                         registering none of them until the database answers"
                    );
                    ownership.lose(ownership.owned().into_iter().collect());
                }
                continue;
            }
        }
        // Handed over last round: the engine has had a round to unregister them.
        if !handing_over.is_empty() {
            match store.release_leases(&node_id, Some(&handing_over)).await {
                Ok(_) => handing_over.clear(),
                Err(err) => tracing::warn!(error = %err, "cannot release handed-over leases"),
            }
        }
        if let Err(err) = rebalance(
            &*store,
            &node_id,
            now,
            times.lease,
            &ownership,
            &mut handing_over,
        )
        .await
        {
            tracing::warn!(error = %err, "cannot share registrations with the other nodes");
        }
    }
}

/// Claims up to this node's share, or hands over what is beyond it (into `handing_over`).
async fn rebalance(
    store: &dyn Database,
    node_id: &str,
    now: Timestamp,
    lease: Duration,
    ownership: &Ownership,
    handing_over: &mut Vec<uuid::Uuid>,
) -> Result<(), trunkline_core::StoreError> {
    let (since, until) = (now.minus(lease), now.plus(lease));
    let nodes = store
        .cluster_nodes(since)
        .await?
        .iter()
        .filter(|node| node.registers)
        .count()
        .max(1) as u64;
    let total = store.count_outbound_registrations().await?;
    let share = total.div_ceil(nodes);
    let owned = ownership.len() as u64;
    if owned < share {
        let limit = (share - owned).min(CLAIM_BATCH) as u32;
        let claimed = store.claim_leases(node_id, now, until, limit).await?;
        ownership.gain(
            claimed
                .into_iter()
                .map(|lease| (lease.tenant, lease.registration_id))
                .collect(),
        );
    } else if owned > share + 1 {
        let excess: Vec<_> = ownership
            .owned()
            .into_iter()
            .take((owned - share) as usize)
            .collect();
        tracing::info!(
            count = excess.len(),
            share,
            "handing registrations over to other nodes"
        );
        // The engine unregisters its contact now; the lease goes on the next round, and only
        // then may another node register its own: no two nodes' contacts at once.
        ownership.release(excess.clone());
        handing_over.extend(excess);
    }
    Ok(())
}
