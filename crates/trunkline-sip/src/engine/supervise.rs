//! Supervision of the engine on the SIP thread: the endpoint is the node's, the engine
//! ([`Core`]) runs under `catch_unwind`, and after a panic it is logged with its cause,
//! counted (`trunkline_engine_restarts_total`) and built again from the store after a pause,
//! with the registration it was handling held back ([`Suspects`]) so that one registrar's
//! reply that trips a bug cannot stop the engine for everyone over and over.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trunkline_core::events::ChangeEvent;
use trunkline_core::health::Heartbeat;
use trunkline_core::ownership::OwnershipChange;
use uuid::Uuid;

use super::{Core, EngineSettings, Storage};
use crate::transport::SipEndpoint;

/// What the engine hears from outside, kept across its restarts.
pub(crate) struct Feeds {
    /// The services' change events.
    pub(crate) events: broadcast::Receiver<ChangeEvent>,
    /// Changes of this node's leases (when nodes share the database).
    pub(crate) ownership: Option<mpsc::UnboundedReceiver<OwnershipChange>>,
    /// TCP/TLS connections to registrars that closed.
    pub(crate) closed: mpsc::UnboundedReceiver<SocketAddr>,
}

/// The engine's whole life on the SIP thread: run until told to stop, restarting it after a
/// panic.
pub(crate) async fn run_engine(
    settings: EngineSettings,
    storage: Storage,
    mut feeds: Feeds,
    sip: Arc<SipEndpoint>,
    stop: CancellationToken,
    heartbeat: Arc<Heartbeat>,
) {
    use futures_util::FutureExt;

    let restarts = metrics::counter!("trunkline_engine_restarts_total");
    let suspects = Rc::new(Suspects::default());
    let mut pause = RESTART_PAUSE_MIN;
    loop {
        let core = Core::new(settings.clone(), &storage, sip.clone(), suspects.clone());
        let started = Instant::now();
        let run = std::panic::AssertUnwindSafe(Core::run(
            core,
            &mut feeds.events,
            &mut feeds.ownership,
            &mut feeds.closed,
            &stop,
            &heartbeat,
        ));
        let Err(panic) = run.catch_unwind().await else {
            break;
        };
        heartbeat.down();
        restarts.increment(1);
        tracing::error!(
            cause = panic_message(panic.as_ref()),
            "the registration engine panicked; restarting it from the store"
        );
        if let Some((id, hold)) = suspects.on_panic() {
            tracing::warn!(%id, hold_secs = hold.as_secs(), "holding back the registration the engine was handling when it panicked");
        }
        if stop.is_cancelled() {
            break;
        }
        // A panic that recurs at once (one registration's reply, say) is not retried in a
        // tight loop: the pause doubles up to a limit, and starts over after a calm run.
        if started.elapsed() > RESTART_CALM {
            pause = RESTART_PAUSE_MIN;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => break,
        }
        pause = (pause * 2).min(RESTART_PAUSE_MAX);
    }
    heartbeat.down();
}

/// The text of a panic's payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Registrations the engine panicked while handling, held back by the engine's next runs so
/// that one registration whose registrar's reply trips a bug cannot stop the engine for
/// everyone over and over. Shared by the supervisor and each run of the engine (one thread).
#[derive(Default)]
pub(super) struct Suspects {
    /// The registration being handled right now: set around each step for one registration
    /// (an exchange being polled, its outcome being applied, a REGISTER being started).
    pub(super) handling: Cell<Option<Uuid>>,
    held: RefCell<HashMap<Uuid, Hold>>,
}

struct Hold {
    until: Instant,
    length: Duration,
}

/// How long a suspect is held back: doubling from the first to the last each time the engine
/// panics on it again.
const HOLD_FIRST: Duration = Duration::from_secs(60);
const HOLD_LAST: Duration = Duration::from_secs(3600);

impl Suspects {
    /// The engine panicked: holds back the registration it was handling, if any.
    fn on_panic(&self) -> Option<(Uuid, Duration)> {
        let id = self.handling.take()?;
        let mut held = self.held.borrow_mut();
        let length = held
            .get(&id)
            .map_or(HOLD_FIRST, |hold| (hold.length * 2).min(HOLD_LAST));
        held.insert(
            id,
            Hold {
                until: Instant::now() + length,
                length,
            },
        );
        Some((id, length))
    }

    /// Until when a registration is held back, if it is.
    pub(super) fn held_until(&self, id: Uuid) -> Option<Instant> {
        let held = self.held.borrow();
        held.get(&id)
            .map(|hold| hold.until)
            .filter(|until| *until > Instant::now())
    }
}

/// Pause before restarting a panicked engine: doubling from the first to the last, back to
/// the first after a run longer than [`RESTART_CALM`].
const RESTART_PAUSE_MIN: Duration = Duration::from_secs(1);
const RESTART_PAUSE_MAX: Duration = Duration::from_secs(30);
const RESTART_CALM: Duration = Duration::from_secs(60);

/// How often the engine's loop beats its heartbeat (readiness fails after a few silent
/// seconds; see `trunkline_core::health`).
pub(super) const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspect_is_held_back_longer_each_time_the_engine_panics_on_it() {
        let suspects = Suspects::default();
        assert_eq!(suspects.on_panic(), None, "nothing was being handled");
        let id = Uuid::new_v4();
        for expected in [60, 120, 240, 480, 960, 1920, 3600, 3600] {
            suspects.handling.set(Some(id));
            assert_eq!(
                suspects.on_panic(),
                Some((id, Duration::from_secs(expected)))
            );
            assert!(suspects.held_until(id).is_some());
        }
        assert_eq!(suspects.held_until(Uuid::new_v4()), None);
    }
}
