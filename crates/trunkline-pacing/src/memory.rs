//! Pacing state in this process: one atomic TAT per key, updated by compare-and-swap.
//!
//! Why not `governor`: its keyed limiter holds one quota for all keys, while every pacing key
//! has its own rate (the smallest `cpsLimit` among the trunks sharing it), which may change at
//! any admission; a map of direct limiters would have to be rebuilt on each change and would
//! forget the key's state (a free burst right after a change). Here the state is only the TAT
//! and the quota comes with each call, so a change applies to the next admission and nothing is
//! forgotten. It is the same GCRA and the same lock-free step as governor's (see
//! `benches/decisions.rs`, which measures both), and the same arithmetic as the Redis mode.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use crate::gcra::{self, Quota, Verdict};

/// Shards of the key map (each a reader-writer lock): many, so that keys decided on different
/// cores rarely share a lock word.
const SHARDS: usize = 128;

pub struct MemoryLimiter {
    clock: quanta::Clock,
    /// The clock's reading at creation: TATs are nanoseconds since then, so 0 means "never".
    epoch: quanta::Instant,
    buckets: DashMap<Box<str>, AtomicU64, foldhash::quality::RandomState>,
}

impl MemoryLimiter {
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let epoch = clock.now();
        Self {
            clock,
            epoch,
            buckets: DashMap::with_hasher_and_shard_amount(Default::default(), SHARDS),
        }
    }

    /// Nanoseconds since creation, never 0 (0 is a fresh key's TAT).
    fn now_ns(&self) -> u64 {
        let elapsed = self.clock.now().saturating_duration_since(self.epoch);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    /// One decision for `key`; takes a slot when it admits.
    pub fn decide(&self, key: &str, quota: Quota, max_wait: Duration) -> Verdict {
        let max_wait_ns = u64::try_from(max_wait.as_nanos()).unwrap_or(u64::MAX);
        let now = self.now_ns();
        if let Some(bucket) = self.buckets.get(key) {
            return step(&bucket, now, quota, max_wait_ns);
        }
        let bucket = self.buckets.entry(key.into()).or_insert(AtomicU64::new(0));
        step(&bucket, now, quota, max_wait_ns)
    }

    /// Drops keys whose TAT is more than `idle` in the past. Such a key is in the same state as
    /// one never seen (any TAT before `now` counts as `now`), so forgetting it changes no decision.
    pub fn forget_idle(&self, idle: Duration) {
        let now = self.now_ns();
        let idle_ns = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
        self.buckets
            .retain(|_, tat| tat.load(Ordering::Relaxed).saturating_add(idle_ns) > now);
    }

    /// Keys currently held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self::new()
    }
}

fn step(bucket: &AtomicU64, now: u64, quota: Quota, max_wait_ns: u64) -> Verdict {
    let mut current = bucket.load(Ordering::Acquire);
    loop {
        let (next, verdict) = gcra::decide(current, now, quota, max_wait_ns);
        let Some(next) = next else {
            return verdict;
        };
        match bucket.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return verdict,
            Err(actual) => current = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn keys_are_independent_and_rates_change_in_place() {
        let limiter = MemoryLimiter::new();
        let slow = Quota::new(1, 1);
        assert_eq!(
            limiter.decide("a", slow, Duration::ZERO),
            Verdict::Admit { wait_ns: 0 }
        );
        assert!(matches!(
            limiter.decide("a", slow, Duration::ZERO),
            Verdict::Reject { retry_after_ns } if retry_after_ns > 900_000_000
        ));
        assert_eq!(
            limiter.decide("b", slow, Duration::ZERO),
            Verdict::Admit { wait_ns: 0 }
        );
        // The key's state survives a rate change: no fresh burst.
        assert!(matches!(
            limiter.decide("a", Quota::new(1000, 1), Duration::ZERO),
            Verdict::Reject { .. }
        ));
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn concurrent_callers_take_each_slot_once() {
        // 4 threads × 1000 calls at 10 per second with burst 3 and no waiting: within the
        // few milliseconds this takes exactly the burst is admitted.
        let limiter = Arc::new(MemoryLimiter::new());
        let quota = Quota::new(10, 3);
        let admitted: usize = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .filter(|_| {
                            matches!(
                                limiter.decide("k", quota, Duration::ZERO),
                                Verdict::Admit { .. }
                            )
                        })
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(admitted, 3);
    }

    #[test]
    fn idle_keys_are_forgotten_busy_ones_kept() {
        let limiter = MemoryLimiter::new();
        limiter.decide("busy", Quota::new(1, 1), Duration::ZERO); // TAT a second ahead
        limiter.buckets.insert("idle".into(), AtomicU64::new(1)); // TAT at the epoch
        std::thread::sleep(Duration::from_millis(5));
        limiter.forget_idle(Duration::from_millis(1));
        assert!(limiter.buckets.contains_key("busy"));
        assert!(!limiter.buckets.contains_key("idle"));
    }
}
