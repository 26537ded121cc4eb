//! Reading the tenant's events (the outbox the store appends to): polling pages and what a
//! stream waits on.

use super::Services;
use crate::error::ServiceError;
use crate::ids::AccountId;
use crate::outbox::{EventType, StoredEvent};

/// The most events one poll returns, and how many it returns unless asked.
pub const EVENT_PAGE_MAX: u32 = 1000;
pub const EVENT_PAGE_DEFAULT: u32 = 100;

impl Services {
    /// The tenant's events after `after`, oldest first, of `types` (all when empty), at most
    /// `limit` (1–[`EVENT_PAGE_MAX`]).
    pub async fn events_after(
        &self,
        tenant: &AccountId,
        after: u64,
        types: &[EventType],
        limit: u32,
    ) -> Result<Vec<StoredEvent>, ServiceError> {
        let limit = limit.clamp(1, EVENT_PAGE_MAX);
        Ok(self.store.events_after(tenant, after, types, limit).await?)
    }

    /// Where a stream without a resume point starts: after the tenant's last event.
    pub async fn last_event_seq(&self, tenant: &AccountId) -> Result<u64, ServiceError> {
        Ok(self.store.last_event_seq(tenant).await?)
    }

    /// Changes whenever events may have been appended (any tenant's).
    pub fn event_wakeups(&self) -> tokio::sync::watch::Receiver<u64> {
        self.store.event_wakeups()
    }
}
