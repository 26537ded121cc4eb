//! Which outbound registrations this node's engine registers. On one node: all of them (no
//! [`Ownership`] at all). When nodes share a database: those this node holds leases for; the
//! lease keeper (the binary's `cluster` module) says what was gained, given up or lost, and
//! the engine acts on it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::ids::AccountId;

/// What changed in this node's set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnershipChange {
    /// Leased to this node: load and register them.
    Gained(Vec<(AccountId, Uuid)>),
    /// Given up on purpose (another node is taking over, or this one stops): unregister this
    /// node's contact, then forget them.
    Released(Vec<Uuid>),
    /// The lease may have lapsed (renewals failed, or another node holds it now): forget them
    /// at once, sending nothing more.
    Lost(Vec<Uuid>),
}

/// The set itself, read by the engine on every load, and the channel of its changes.
#[derive(Debug)]
pub struct Ownership {
    node_id: String,
    owned: RwLock<HashSet<Uuid>>,
    /// Until when the leases are surely still this node's (the last renewal, plus the lease,
    /// less a renewal's worth of margin); `None` before the first renewal.
    fresh_until: Mutex<Option<Instant>>,
    changes: mpsc::UnboundedSender<OwnershipChange>,
}

impl Ownership {
    /// Node `node_id`'s empty set, and where its changes arrive (the engine's end).
    pub fn new(node_id: &str) -> (Arc<Self>, mpsc::UnboundedReceiver<OwnershipChange>) {
        let (changes, receiver) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                node_id: node_id.to_owned(),
                owned: RwLock::new(HashSet::new()),
                fresh_until: Mutex::new(None),
                changes,
            }),
            receiver,
        )
    }

    /// The node these leases are held by (what the bindings it makes are recorded under).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The leases were renewed at `at`: they are this node's until `at + lease − margin`.
    pub fn renewed(&self, at: Instant, lease: Duration, margin: Duration) {
        *self.fresh_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(at + lease.saturating_sub(margin));
    }

    /// Whether a REGISTER may start now: the leases are surely still held. After a pause (the
    /// process stopped, the database unreachable) this turns false before another node could
    /// claim them, whatever ran first on waking.
    pub fn is_fresh(&self) -> bool {
        self.fresh_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|until| Instant::now() < until)
    }

    pub fn owns(&self, id: Uuid) -> bool {
        self.read().contains(&id)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub fn owned(&self) -> HashSet<Uuid> {
        self.read().clone()
    }

    pub fn gain(&self, leases: Vec<(AccountId, Uuid)>) {
        if leases.is_empty() {
            return;
        }
        self.write().extend(leases.iter().map(|(_, id)| *id));
        let _ = self.changes.send(OwnershipChange::Gained(leases));
    }

    pub fn release(&self, ids: Vec<Uuid>) {
        self.drop_ids(&ids);
        if !ids.is_empty() {
            let _ = self.changes.send(OwnershipChange::Released(ids));
        }
    }

    pub fn lose(&self, ids: Vec<Uuid>) {
        self.drop_ids(&ids);
        if !ids.is_empty() {
            let _ = self.changes.send(OwnershipChange::Lost(ids));
        }
    }

    /// Drops ids without a word to the engine: registrations that are gone (deleted), whose
    /// end the engine hears of from the change itself.
    pub fn forget(&self, ids: &[Uuid]) {
        self.drop_ids(ids);
    }

    fn drop_ids(&self, ids: &[Uuid]) {
        let mut owned = self.write();
        for id in ids {
            owned.remove(id);
        }
    }

    // The set is changed only by inserts and removes, which do not tear: a poisoned lock is
    // still consistent.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<Uuid>> {
        self.owned.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<Uuid>> {
        self.owned.write().unwrap_or_else(|e| e.into_inner())
    }
}
