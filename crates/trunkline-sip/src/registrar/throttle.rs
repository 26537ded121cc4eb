//! Flood defence: failed authentications counted per source address in fixed windows; a
//! source with more than `registrar.auth_fail_limit` in one `auth_fail_window_secs` is refused
//! (403, no digest work) for `auth_fail_cooldown_secs`. Other sources are unaffected.
//!
//! Memory is bounded: at most [`MAX_SOURCES`] addresses are tracked. When full, entries whose
//! window and cooldown are over go first; if none is, the new source is not tracked (its
//! failures then go uncounted until room frees up, rather than evicting a source under
//! cooldown, which is what an attacker with many addresses would want).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Sources tracked at once.
pub const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    pub limit: u32,
    pub window: Duration,
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

impl Source {
    fn is_over(&self, now: Instant, settings: &ThrottleSettings) -> bool {
        self.blocked_until.is_none_or(|until| until <= now)
            && now.duration_since(self.window_start) >= settings.window
    }
}

pub struct Throttle {
    settings: ThrottleSettings,
    sources: HashMap<IpAddr, Source>,
    capacity: usize,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self::with_capacity(settings, MAX_SOURCES)
    }

    fn with_capacity(settings: ThrottleSettings, capacity: usize) -> Self {
        Self {
            settings,
            sources: HashMap::new(),
            capacity,
        }
    }

    /// Whether `source` is cooling down (refused without digest work).
    pub fn is_blocked(&self, source: IpAddr, now: Instant) -> bool {
        self.sources
            .get(&source)
            .and_then(|entry| entry.blocked_until)
            .is_some_and(|until| until > now)
    }

    /// Counts one failed authentication; true when this failure puts the source into
    /// cooldown.
    pub fn failed(&mut self, source: IpAddr, now: Instant) -> bool {
        if !self.sources.contains_key(&source) && !self.make_room(now) {
            return false;
        }
        let settings = self.settings;
        let entry = self.sources.entry(source).or_insert(Source {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if now.duration_since(entry.window_start) >= settings.window {
            entry.window_start = now;
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        let newly_blocked =
            entry.failures > settings.limit && entry.blocked_until.is_none_or(|until| until <= now);
        if newly_blocked {
            entry.blocked_until = Some(now + settings.cooldown);
            // The cooldown starts a new count: a source that comes back after it gets the
            // whole limit again.
            entry.failures = 0;
            entry.window_start = now;
        }
        newly_blocked
    }

    /// Drops the entries whose window and cooldown are over (periodically, and when full).
    pub fn sweep(&mut self, now: Instant) {
        let settings = self.settings;
        self.sources
            .retain(|_, entry| !entry.is_over(now, &settings));
    }

    /// Sources under cooldown now (a gauge).
    pub fn blocked(&self, now: Instant) -> usize {
        self.sources
            .values()
            .filter(|entry| entry.blocked_until.is_some_and(|until| until > now))
            .count()
    }

    fn make_room(&mut self, now: Instant) -> bool {
        if self.sources.len() < self.capacity {
            return true;
        }
        self.sweep(now);
        self.sources.len() < self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: ThrottleSettings = ThrottleSettings {
        limit: 3,
        window: Duration::from_secs(60),
        cooldown: Duration::from_secs(120),
    };

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn more_than_the_limit_in_a_window_blocks_that_source_only() {
        let mut throttle = Throttle::new(SETTINGS);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(!throttle.failed(ip(1), now));
        }
        assert!(!throttle.is_blocked(ip(1), now));
        assert!(throttle.failed(ip(1), now + Duration::from_secs(1)));
        assert!(throttle.is_blocked(ip(1), now + Duration::from_secs(2)));
        assert!(!throttle.is_blocked(ip(2), now + Duration::from_secs(2)));
        // The cooldown ends.
        assert!(!throttle.is_blocked(ip(1), now + Duration::from_secs(122)));
    }

    #[test]
    fn failures_in_separate_windows_do_not_add_up() {
        let mut throttle = Throttle::new(SETTINGS);
        let now = Instant::now();
        for round in 0..5u64 {
            let at = now + Duration::from_secs(61 * round);
            for _ in 0..3 {
                assert!(!throttle.failed(ip(1), at));
            }
        }
        assert!(!throttle.is_blocked(ip(1), now + Duration::from_secs(400)));
    }

    #[test]
    fn a_full_table_keeps_sources_under_cooldown() {
        let mut throttle = Throttle::with_capacity(SETTINGS, 2);
        let now = Instant::now();
        for _ in 0..4 {
            throttle.failed(ip(1), now);
        }
        throttle.failed(ip(2), now);
        // Full, nothing over: a third source is not tracked, the blocked one stays blocked.
        for _ in 0..10 {
            assert!(!throttle.failed(ip(3), now));
        }
        assert!(!throttle.is_blocked(ip(3), now));
        assert!(throttle.is_blocked(ip(1), now));
        // Once the second source's window is over there is room again.
        let later = now + Duration::from_secs(61);
        assert!(!throttle.failed(ip(3), later));
        assert_eq!(throttle.sources.len(), 2);
        assert!(throttle.is_blocked(ip(1), later));
    }
}
