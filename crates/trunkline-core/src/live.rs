//! The SIP engine's live registration status, shared in-process with the services.
//!
//! The engine writes every status change here. The status table gets outcomes at once
//! (state, response, failure, where the binding lives); a routine refresh, which moves only
//! timestamps (`lastAttemptAt`, `expiresAt`, `nextAttemptAt`), and the transient
//! `registering` reach it within a minute (the engine sweeps a slice of its registrations
//! every few seconds) and at shutdown: writing each refresh as it happened cost more CPU than
//! the REGISTER itself (see bench/RESULTS.md). Readers take the board's entry when it has one
//! and the table's row otherwise (engine disabled, or not started).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use uuid::Uuid;

use crate::model::RegistrationStatus;

/// One registration's live status. The engine changes it in place (a refresh allocates
/// nothing: no copy of the status and its strings per REGISTER, which also kept long-lived
/// objects from scattering over the allocator's pages); readers take a copy.
#[derive(Debug)]
pub struct LiveStatus(Mutex<RegistrationStatus>);

impl LiveStatus {
    pub fn new(status: RegistrationStatus) -> Arc<Self> {
        Arc::new(Self(Mutex::new(status)))
    }

    /// For the engine: the status to read or change in place. Hold it briefly (readers wait).
    // A writer that panicked mid-change leaves plain values behind, never a torn string, so a
    // poisoned lock is still safe to use.
    pub fn lock(&self) -> MutexGuard<'_, RegistrationStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy, as of now.
    pub fn snapshot(&self) -> RegistrationStatus {
        self.lock().clone()
    }
}

#[derive(Debug, Default)]
pub struct StatusBoard {
    /// Shared with the engine's own state (one copy at rest).
    entries: RwLock<HashMap<Uuid, Arc<LiveStatus>>>,
}

impl StatusBoard {
    pub fn new() -> Self {
        Self::default()
    }

    /// The engine's latest status for a registration, if the engine holds it.
    pub fn get(&self, id: Uuid) -> Option<RegistrationStatus> {
        self.read().get(&id).map(|status| status.snapshot())
    }

    /// `stored` unless the engine holds something fresher.
    pub fn overlay(
        &self,
        id: Uuid,
        stored: Option<RegistrationStatus>,
    ) -> Option<RegistrationStatus> {
        self.get(id).or(stored)
    }

    /// The live status the board holds for a registration: a restarted engine takes it over,
    /// so what was last known stays shown instead of starting again from `pending`.
    pub fn live(&self, id: Uuid) -> Option<Arc<LiveStatus>> {
        self.read().get(&id).cloned()
    }

    /// Drops every entry `keep` refuses (a restarted engine's registrations deleted meanwhile).
    pub fn retain(&self, mut keep: impl FnMut(Uuid) -> bool) {
        self.write().retain(|id, _| keep(*id));
    }

    /// The engine holds this registration from now on; its later changes show through.
    pub fn track(&self, id: Uuid, status: Arc<LiveStatus>) {
        self.write().insert(id, status);
    }

    /// How many registrations the engine holds.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The engine forgot the registration (deleted, or no longer registering).
    pub fn remove(&self, id: Uuid) {
        self.write().remove(&id);
    }

    // As for `LiveStatus::lock`: HashMap insert/remove do not tear, so a poisoned lock is
    // still safe to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Arc<LiveStatus>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, Arc<LiveStatus>>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RegistrationState;
    use crate::Timestamp;

    fn status(state: RegistrationState) -> RegistrationStatus {
        RegistrationStatus {
            state,
            ..RegistrationStatus::pending(Timestamp::from_micros(1))
        }
    }

    #[test]
    fn the_board_wins_over_the_table_until_the_engine_forgets() {
        let board = StatusBoard::new();
        let id = Uuid::new_v4();
        let stored = Some(status(RegistrationState::Pending));
        assert_eq!(board.overlay(id, stored.clone()), stored);
        let live = LiveStatus::new(status(RegistrationState::Registering));
        board.track(id, live.clone());
        assert_eq!(
            board.overlay(id, stored.clone()).map(|s| s.state),
            Some(RegistrationState::Registering)
        );
        live.lock().state = RegistrationState::Registered;
        assert_eq!(
            board.overlay(id, stored.clone()).map(|s| s.state),
            Some(RegistrationState::Registered),
            "changes in place show through"
        );
        board.remove(id);
        assert_eq!(board.overlay(id, stored.clone()), stored);
        assert_eq!(board.get(id), None, "forgotten");
    }
}
