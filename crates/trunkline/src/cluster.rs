//! Keeping this node's registration leases when nodes share a PostgreSQL database: every
//! `cluster.renew_secs` it renews its own lease (one row, covering every registration it
//! holds), then claims or hands over registrations so that each node whose engine runs holds
//! about an equal share, and tells the engine ([`Ownership`]) what it gained, gave up or lost.
//!
//! - **Share**: `⌈registrations / nodes registering⌉` (nodes heard from within a lease or
//!   whose lease still runs, per `cluster_nodes`; the total kept by triggers, not counted); claims go up to it, at most
//!   [`CLAIM_BATCH`] a round, the next round 250 ms after a full batch, or just after another
//!   node's lease lapses (it stopped renewing) if that comes first; a node more than one over it hands the excess over (a node
//!   joined): the engine unregisters its own contact at once, and the lease is released a
//!   round later (the unregister's time to land), for another node to claim.
//! - **Fencing**: when renewals fail (the database is unreachable) for `lease − renew`, the
//!   lease may lapse before the next renewal could succeed: the engine drops everything at
//!   once, sending nothing more (a REGISTER in flight may finish), well before another node
//!   can claim them (at `lease` after the last renewal). A renewal that finds the lease
//!   lapsed (the process was paused) drops everything too: the database has released what
//!   nobody took. Lease times are the nodes' clocks: keep them in sync (NTP); a skew eats
//!   into that margin.
//! - **Drift**: each round compares how many leases the database says this node holds with
//!   the engine's set (one index count); only when they differ are the leases read.
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

/// A round meant for another node's lapse comes this long after it.
const LAPSE_MARGIN: Duration = Duration::from_millis(50);

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
        match store.renew_node_lease(&node_id, now, until).await {
            Ok(held_all_along) => {
                // Counted from when the renewal was asked: the lease runs to `until`.
                renewed = asked;
                ownership.renewed(asked.into_std(), times.lease, times.renew);
                if !held_all_along {
                    // Lapsed (a pause, or the database unreachable): another node may have
                    // taken any of them, and what was left is released.
                    if !ownership.is_empty() {
                        tracing::warn!(
                            "this node's lease lapsed: its registrations go back to the pool"
                        );
                    }
                    ownership.lose(ownership.owned().into_iter().collect());
                    handing_over.clear();
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot renew this node's lease");
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
        if let Err(err) = reconcile(&*store, &node_id, &ownership, &handing_over).await {
            tracing::warn!(error = %err, "cannot read this node's leases");
        }
        // Handed over last round: the engine has had a round to unregister them.
        if !handing_over.is_empty() {
            match store.release_leases(&node_id, Some(&handing_over)).await {
                Ok(_) => handing_over.clear(),
                Err(err) => tracing::warn!(error = %err, "cannot release handed-over leases"),
            }
        }
        match rebalance(
            &*store,
            &node_id,
            now,
            times.lease,
            &ownership,
            &mut handing_over,
        )
        .await
        {
            // A full batch, and the share not reached: the next one soon, not in `renew`.
            Ok(Claimed::FullBatch) => tick.reset_at(last_round + ROUND_SPACING),
            // Another node's lease lapses before the next round (it died, or it would have
            // renewed): a round just then takes its registrations over without waiting.
            Ok(Claimed::Enough { next_lapse }) => {
                if let Some(lapse) = next_lapse {
                    let wait = Duration::from_micros(
                        u64::try_from(lapse.micros() - now.micros()).unwrap_or(0),
                    ) + LAPSE_MARGIN;
                    if wait < times.renew {
                        tick.reset_at(Instant::now() + wait);
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot share registrations with the other nodes");
            }
        }
    }
}

/// What a round's claim left to do.
enum Claimed {
    /// The share is held, or nothing more was there to claim; `next_lapse`: the earliest
    /// lease of another registering node still running.
    Enough { next_lapse: Option<Timestamp> },
    /// A whole [`CLAIM_BATCH`] was claimed: there may be more.
    FullBatch,
}

/// Makes the engine's set what the database says this node holds, when the two counts differ
/// (one cheap count a round otherwise): a registration deleted meanwhile is forgotten (the
/// engine unregisters it on the deletion itself); one held but unknown (this node restarted
/// within its lease) is gained.
async fn reconcile(
    store: &dyn Database,
    node_id: &str,
    ownership: &Ownership,
    handing_over: &[uuid::Uuid],
) -> Result<(), trunkline_core::StoreError> {
    let expected = (ownership.len() + handing_over.len()) as u64;
    if store.held_lease_count(node_id).await? == expected {
        return Ok(());
    }
    let held = store.held_leases(node_id).await?;
    let held_ids: HashSet<_> = held.iter().map(|lease| lease.registration_id).collect();
    let gone: Vec<_> = ownership
        .owned()
        .into_iter()
        .filter(|id| !held_ids.contains(id))
        .collect();
    ownership.forget(&gone);
    let owned = ownership.owned();
    ownership.gain(
        held.into_iter()
            .filter(|lease| {
                !owned.contains(&lease.registration_id)
                    && !handing_over.contains(&lease.registration_id)
            })
            .map(|lease| (lease.tenant, lease.registration_id))
            .collect(),
    );
    Ok(())
}

/// Claims up to this node's share, or hands over what is beyond it (into `handing_over`).
async fn rebalance(
    store: &dyn Database,
    node_id: &str,
    now: Timestamp,
    lease: Duration,
    ownership: &Ownership,
    handing_over: &mut Vec<uuid::Uuid>,
) -> Result<Claimed, trunkline_core::StoreError> {
    let since = now.minus(lease);
    let registering: Vec<_> = store
        .cluster_nodes(since, now)
        .await?
        .into_iter()
        .filter(|node| node.registers)
        .collect();
    let next_lapse = registering
        .iter()
        .filter(|node| node.node_id != node_id && node.lease_until > now)
        .map(|node| node.lease_until)
        .min();
    let nodes = registering.len().max(1) as u64;
    let total = store.count_outbound_registrations().await?;
    let share = total.div_ceil(nodes);
    let owned = ownership.len() as u64;
    if owned < share {
        let limit = (share - owned).min(CLAIM_BATCH) as u32;
        let claimed = store.claim_leases(node_id, now, limit).await?;
        let full = claimed.len() as u64 == CLAIM_BATCH;
        ownership.gain(
            claimed
                .into_iter()
                .map(|lease| (lease.tenant, lease.registration_id))
                .collect(),
        );
        if full {
            return Ok(Claimed::FullBatch);
        }
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
    Ok(Claimed::Enough { next_lapse })
}
