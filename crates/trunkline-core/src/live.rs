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
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use crate::model::RegistrationStatus;

#[derive(Debug, Default)]
pub struct StatusBoard {
    /// Shared with the engine's own state until its next change (no second copy at rest).
    entries: RwLock<HashMap<Uuid, Arc<RegistrationStatus>>>,
}

impl StatusBoard {
    pub fn new() -> Self {
        Self::default()
    }

    /// The engine's latest status for a registration, if the engine holds it.
    pub fn get(&self, id: Uuid) -> Option<RegistrationStatus> {
        self.read()
            .get(&id)
            .map(|status| RegistrationStatus::clone(status))
    }

    /// `stored` unless the engine holds something fresher.
    pub fn overlay(
        &self,
        id: Uuid,
        stored: Option<RegistrationStatus>,
    ) -> Option<RegistrationStatus> {
        self.get(id).or(stored)
    }

    pub fn set(&self, id: Uuid, status: Arc<RegistrationStatus>) {
        self.write().insert(id, status);
    }

    /// The engine forgot the registration (deleted, or no longer registering).
    pub fn remove(&self, id: Uuid) {
        self.write().remove(&id);
    }

    // A writer that panicked mid-insert leaves a whole map behind (HashMap insert/remove do
    // not tear), so a poisoned lock is still safe to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Arc<RegistrationStatus>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, Arc<RegistrationStatus>>> {
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
        board.set(id, Arc::new(status(RegistrationState::Registered)));
        assert_eq!(
            board.overlay(id, stored.clone()).map(|s| s.state),
            Some(RegistrationState::Registered)
        );
        board.remove(id);
        assert_eq!(board.overlay(id, stored.clone()), stored);
        assert_eq!(board.get(id), None, "forgotten");
    }
}
