//! Change events: after every committed write the services publish what changed, so the SIP
//! engine (and anything else in-process) reacts at once instead of polling.
//!
//! A broadcast channel: a receiver that falls behind gets `Lagged` and must reload its view from
//! the store; events are hints, the store is the truth.

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::ids::AccountId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    Registration,
    Trunk,
    PhoneNumber,
    InboundCredential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Created,
    Updated,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    pub tenant: AccountId,
    pub kind: EntityKind,
    /// The row's id (for phone numbers, the internal id the status table uses).
    pub id: Uuid,
    pub op: ChangeOp,
}

/// The sending side, cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<ChangeEvent>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self { sender }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.sender.subscribe()
    }

    /// Publishes to current subscribers; having none is not an error.
    pub fn publish(&self, event: ChangeEvent) {
        tracing::debug!(tenant = %event.tenant, kind = ?event.kind, id = %event.id, op = ?event.op, "change event");
        let _ = self.sender.send(event);
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(4096)
    }
}
