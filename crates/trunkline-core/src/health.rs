//! Health of the process's long-running parts (the SIP engine; later the registrar): each
//! beats a [`Heartbeat`] while its loop turns, and readiness fails while one is down or has
//! gone silent — a part that panicked, or is stuck, shows in `/readyz` within seconds.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::ids::Timestamp;

/// How long a running part may go without a beat before it counts as stuck.
pub const MAX_SILENCE: Duration = Duration::from_secs(5);

/// One part's liveness, beaten from its own loop.
#[derive(Debug)]
pub struct Heartbeat {
    name: &'static str,
    up: AtomicBool,
    last_beat_micros: AtomicI64,
}

impl Heartbeat {
    /// The part is running and its loop just turned.
    pub fn beat(&self) {
        self.last_beat_micros
            .store(Timestamp::now().micros(), Ordering::Relaxed);
        self.up.store(true, Ordering::Relaxed);
    }

    /// The part is down (panicked, restarting, or stopped).
    pub fn down(&self) {
        self.up.store(false, Ordering::Relaxed);
    }

    /// Why the part is not healthy at `now`, if it is not.
    fn problem(&self, now: Timestamp, max_silence: Duration) -> Option<String> {
        if !self.up.load(Ordering::Relaxed) {
            return Some(format!("{} is down", self.name));
        }
        let silent_micros = now.micros() - self.last_beat_micros.load(Ordering::Relaxed);
        let limit = i64::try_from(max_silence.as_micros()).unwrap_or(i64::MAX);
        (silent_micros > limit).then(|| {
            format!(
                "{} has not ticked for {} ms",
                self.name,
                silent_micros / 1000
            )
        })
    }
}

/// Every part that reports its health; `Services::ready` consults it.
#[derive(Debug, Default)]
pub struct Health {
    parts: RwLock<Vec<Arc<Heartbeat>>>,
}

impl Health {
    /// A part that will report from now on; down until its first beat.
    pub fn register(&self, name: &'static str) -> Arc<Heartbeat> {
        let heartbeat = Arc::new(Heartbeat {
            name,
            up: AtomicBool::new(false),
            last_beat_micros: AtomicI64::new(0),
        });
        self.parts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(heartbeat.clone());
        heartbeat
    }

    /// The first problem of any part, if there is one.
    pub fn problem(&self) -> Option<String> {
        self.problem_at(Timestamp::now(), MAX_SILENCE)
    }

    fn problem_at(&self, now: Timestamp, max_silence: Duration) -> Option<String> {
        self.parts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find_map(|part| part.problem(now, max_silence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_healthy_only_while_up_and_beating() {
        let health = Health::default();
        assert_eq!(health.problem(), None, "nothing registered");
        let engine = health.register("the registration engine");
        assert_eq!(
            health.problem().as_deref(),
            Some("the registration engine is down")
        );
        engine.beat();
        assert_eq!(health.problem(), None);
        let later = Timestamp::from_micros(Timestamp::now().micros() + 6_000_000);
        assert!(health
            .problem_at(later, MAX_SILENCE)
            .is_some_and(|p| p.contains("has not ticked")));
        engine.down();
        assert!(health.problem().is_some());
    }
}
