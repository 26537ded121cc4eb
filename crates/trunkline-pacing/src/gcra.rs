//! The generic cell rate algorithm, as arithmetic only: one decision from a key's stored state
//! (its theoretical arrival time, TAT) and the current time. [`crate::memory`] applies it with a
//! compare-and-swap, and the Lua script in [`crate::redis_limiter`] is the same steps in Redis.
//!
//! With emission interval `T = 1 s / rate` and tolerance `τ = (burst − 1) · T`, a request at
//! `now` is admitted when `now ≥ TAT − τ`, and then `TAT = max(TAT, now) + T`. So `burst`
//! requests may go back to back, and over any span `d` at most `burst + d / T` are admitted.
//! A request that may wait (`max_wait`) reserves the next slot if it falls within that wait:
//! it is admitted *at* `TAT − τ`, and the caller holds its answer until then. Waiters are thus
//! served in order, without polling, and the spacing holds for the time they are answered.

use std::time::Duration;

/// How fast one key may go: derived from a rate in calls per second and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// `T`, in nanoseconds: rounded up, so a rate is never exceeded by rounding.
    interval_ns: u64,
    /// `τ = (burst − 1) · T`, in nanoseconds.
    tolerance_ns: u64,
}

impl Quota {
    /// `per_second` and `burst` below 1 count as 1.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let per_second = u64::from(per_second.max(1));
        let interval_ns = NANOS_PER_SEC.div_ceil(per_second);
        let tolerance_ns = interval_ns.saturating_mul(u64::from(burst.max(1)) - 1);
        Self {
            interval_ns,
            tolerance_ns,
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }

    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    pub fn tolerance_ns(&self) -> u64 {
        self.tolerance_ns
    }
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// One decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go after `wait_ns` (0: at once). The slot is taken.
    Admit { wait_ns: u64 },
    /// No slot within the allowed wait; the next one is free in `retry_after_ns` (nothing taken).
    Reject { retry_after_ns: u64 },
}

/// Decides for a key whose stored TAT is `tat` (0 for a key never seen), at `now` on the same
/// clock. Returns the TAT to store (when a slot is taken) and the verdict.
pub fn decide(tat: u64, now: u64, quota: Quota, max_wait_ns: u64) -> (Option<u64>, Verdict) {
    let tat = tat.max(now);
    let allowed_at = tat.saturating_sub(quota.tolerance_ns);
    let wait_ns = allowed_at.saturating_sub(now);
    if wait_ns > max_wait_ns {
        return (
            None,
            Verdict::Reject {
                retry_after_ns: wait_ns,
            },
        );
    }
    (
        Some(tat.saturating_add(quota.interval_ns)),
        Verdict::Admit { wait_ns },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: u64 = NANOS_PER_SEC;

    #[test]
    fn interval_rounds_up_so_a_rate_is_never_exceeded() {
        assert_eq!(Quota::new(5, 1).interval_ns(), 200_000_000);
        assert_eq!(Quota::new(3, 1).interval_ns(), 333_333_334);
        assert_eq!(Quota::new(u32::MAX, 1).interval_ns(), 1);
        assert_eq!(Quota::new(0, 0), Quota::new(1, 1));
        assert_eq!(Quota::new(5, 3).tolerance_ns(), 400_000_000);
        assert_eq!(
            Quota::new(1, u32::MAX).tolerance_ns(),
            u64::from(u32::MAX - 1) * SEC
        );
    }

    #[test]
    fn burst_one_spaces_admissions_by_the_interval() {
        let quota = Quota::new(5, 1);
        let (tat, verdict) = decide(0, 10 * SEC, quota, 0);
        assert_eq!(verdict, Verdict::Admit { wait_ns: 0 });
        let tat = tat.unwrap();
        assert_eq!(
            decide(tat, 10 * SEC + 1, quota, 0),
            (
                None,
                Verdict::Reject {
                    retry_after_ns: 200_000_000 - 1
                }
            )
        );
        assert_eq!(
            decide(tat, 10 * SEC + 200_000_000, quota, 0).1,
            Verdict::Admit { wait_ns: 0 }
        );
    }

    #[test]
    fn a_waiter_reserves_the_next_slot() {
        let quota = Quota::new(5, 1);
        let (tat, _) = decide(0, SEC, quota, 0);
        let (tat, verdict) = decide(tat.unwrap(), SEC, quota, 1_000_000_000);
        assert_eq!(
            verdict,
            Verdict::Admit {
                wait_ns: 200_000_000
            }
        );
        let (_, verdict) = decide(tat.unwrap(), SEC, quota, 300_000_000);
        assert_eq!(
            verdict,
            Verdict::Reject {
                retry_after_ns: 400_000_000
            }
        );
    }

    proptest! {
        /// Whatever the arrival pattern, waits and burst, a second holds at most
        /// `burst − 1 + ⌈1 s / T⌉` admitted times, and with burst 1 they are at least `T` apart.
        #[test]
        fn admitted_times_obey_the_quota(
            rate in 1u32..50,
            burst in 1u32..4,
            gaps in proptest::collection::vec(0u64..300_000_000, 1..200),
            waits in proptest::collection::vec(0u64..2_000_000_000, 1..200),
        ) {
            let quota = Quota::new(rate, burst);
            let mut tat = 0;
            let mut now = SEC;
            let mut admitted = Vec::new();
            for (i, gap) in gaps.iter().enumerate() {
                now += gap;
                let (new_tat, verdict) = decide(tat, now, quota, waits[i % waits.len()]);
                match verdict {
                    Verdict::Admit { wait_ns } => {
                        tat = new_tat.unwrap();
                        admitted.push(now + wait_ns);
                    }
                    Verdict::Reject { retry_after_ns } => {
                        prop_assert!(new_tat.is_none());
                        // Honest: at that time an immediate admission succeeds.
                        let later = decide(tat, now + retry_after_ns, quota, 0).1;
                        prop_assert_eq!(later, Verdict::Admit { wait_ns: 0 });
                    }
                }
            }
            admitted.sort_unstable();
            let t = quota.interval_ns();
            for (i, &start) in admitted.iter().enumerate() {
                let within_a_second = admitted[i..].iter().take_while(|&&at| at < start + SEC).count() as u64;
                prop_assert!(within_a_second < u64::from(burst) + SEC.div_ceil(t));
                if burst == 1 && i > 0 {
                    prop_assert!(start - admitted[i - 1] >= t);
                }
            }
        }
    }
}
