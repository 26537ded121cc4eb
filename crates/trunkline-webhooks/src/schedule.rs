//! When a failed delivery is tried again, and when trying stops: delays from 1 s doubling to
//! 5 minutes, each drawn from its upper half (jitter, so endpoints that failed together do not
//! retry together), for the retry window (`events.webhook_retry_secs`) measured from the first
//! failure of the event at hand. The last attempt falls at the window's end; when it fails too,
//! the endpoint is disabled with [`give_up_reason`]. Pure arithmetic on timestamps: the cursor
//! it feeds is stored, so the schedule survives restarts.

use std::time::Duration;

use rand::Rng;
use trunkline_core::outbox::CursorUpdate;
use trunkline_core::Timestamp;

/// The first retry's delay.
const FIRST: Duration = Duration::from_secs(1);
/// No delay is longer.
const CAP: Duration = Duration::from_secs(300);

/// The delay before attempt `failures + 1`, having failed `failures` times (≥ 1): `FIRST ·
/// 2^(failures−1)` up to `CAP`, drawn uniformly from its upper half.
pub fn retry_delay(failures: u32, rng: &mut impl Rng) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let full = FIRST.saturating_mul(1 << doublings).min(CAP);
    let micros = full.as_micros() as u64;
    Duration::from_micros(rng.gen_range(micros / 2..=micros))
}

/// Where a webhook's deliveries stand after attempt `attempt` at the event after
/// `delivered_seq` failed at `now`; `failing_since` is when the event's first attempt failed
/// (`None`: this was the first). `disable` is set once `window` has run out.
pub fn after_failure(
    delivered_seq: u64,
    attempt: u32,
    failing_since: Option<Timestamp>,
    now: Timestamp,
    window: Duration,
    error: &str,
    rng: &mut impl Rng,
) -> CursorUpdate {
    let since = failing_since.unwrap_or(now);
    let deadline = since.plus(window);
    if now >= deadline {
        return CursorUpdate {
            delivered_seq,
            attempt,
            failing_since: Some(since),
            next_attempt_at: None,
            disable: Some(give_up_reason(window, error)),
        };
    }
    let next = now.plus(retry_delay(attempt, rng)).min(deadline);
    CursorUpdate {
        delivered_seq,
        attempt,
        failing_since: Some(since),
        next_attempt_at: Some(next),
        disable: None,
    }
}

/// Where they stand after the event at `seq` was delivered: the next one starts afresh.
pub fn after_success(seq: u64) -> CursorUpdate {
    CursorUpdate {
        delivered_seq: seq,
        attempt: 0,
        failing_since: None,
        next_attempt_at: None,
        disable: None,
    }
}

/// `deliveries failed for 24h: last error: …`.
pub fn give_up_reason(window: Duration, error: &str) -> String {
    format!(
        "deliveries failed for {}: last error: {error}",
        human(window)
    )
}

/// `24h`, `90m`, `3s`: the largest unit that divides the duration.
fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0 => "0s".to_owned(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn at(secs: f64) -> Timestamp {
        Timestamp::from_micros(1_700_000_000_000_000 + (secs * 1e6) as i64)
    }

    #[test]
    fn delays_double_from_one_second_to_five_minutes_in_their_upper_half() {
        let mut rng = StdRng::seed_from_u64(7);
        for (failures, full) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (u32::MAX, 300)] {
            let full = Duration::from_secs(full);
            for _ in 0..50 {
                let delay = retry_delay(failures, &mut rng);
                assert!(delay >= full / 2 && delay <= full, "{failures}: {delay:?}");
            }
        }
    }

    #[test]
    fn retries_run_for_the_window_from_the_first_failure_then_disable() {
        let mut rng = StdRng::seed_from_u64(1);
        let window = Duration::from_secs(3);
        let first = after_failure(4, 1, None, at(0.0), window, "HTTP 500", &mut rng);
        assert_eq!(first.failing_since, Some(at(0.0)));
        assert_eq!(first.delivered_seq, 4);
        let next = first.next_attempt_at.unwrap();
        assert!(next >= at(0.5) && next <= at(1.0), "{next:?}");
        assert!(first.disable.is_none());

        // Late in the window, the next attempt is at its end, not beyond.
        let late = after_failure(4, 3, Some(at(0.0)), at(2.5), window, "HTTP 500", &mut rng);
        assert_eq!(late.next_attempt_at, Some(at(3.0)));
        assert_eq!(late.failing_since, Some(at(0.0)));

        // That attempt failing ends it.
        let done = after_failure(4, 4, Some(at(0.0)), at(3.0), window, "timed out", &mut rng);
        assert_eq!(done.next_attempt_at, None);
        assert_eq!(
            done.disable.as_deref(),
            Some("deliveries failed for 3s: last error: timed out")
        );
        assert_eq!(
            after_success(5),
            CursorUpdate {
                delivered_seq: 5,
                attempt: 0,
                failing_since: None,
                next_attempt_at: None,
                disable: None
            }
        );
    }

    #[test]
    fn windows_read_in_their_largest_unit() {
        assert_eq!(human(Duration::from_secs(86_400)), "24h");
        assert_eq!(human(Duration::from_secs(5400)), "90m");
        assert_eq!(human(Duration::from_secs(61)), "61s");
    }
}
