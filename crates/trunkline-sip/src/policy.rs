//! Timing and classification rules of the registration engine, as pure functions so they can
//! be tested without a network: when to refresh, how long to back off, and what a final
//! response means.

use std::time::Duration;

use rand::Rng;
use trunkline_core::model::RegistrationState;

/// Where in the granted expiry a refresh lands: uniformly within [`REFRESH_MIN`,
/// `REFRESH_MAX`) so that registrations created together drift apart, late enough that a
/// registrar counting REGISTERs sees about as many as from common UAs (a refresh every ~55
/// minutes against 3600 s).
const REFRESH_MIN: f64 = 0.80;
const REFRESH_MAX: f64 = 0.90;
/// Never earlier than this fraction of the granted expiry.
const REFRESH_FLOOR: f64 = 0.50;
/// Room a refresh leaves before the binding expires: a whole attempt ([`ATTEMPT_TIMEOUT`])
/// and a retry.
const REFRESH_MARGIN: Duration = Duration::from_secs(37);

/// Per-attempt deadline for one REGISTER transaction, below RFC 3261's Timer F (64·T1 =
/// 32 s): the endpoint's transactions use it as their Timer F, and a TCP/TLS connect gets
/// as long.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// No timer of the engine is ever set further out than this, whatever a registrar says or a
/// setting holds (tokio's timer wheel panics on deadlines about two years out).
pub const MAX_TIMER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The bounds every number a registrar sends is held to (`outbound.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// No refresh sooner than this after the previous one (`outbound.min_refresh_secs`).
    pub min_refresh: Duration,
    /// A `Retry-After` is honoured up to this (`outbound.retry_after_cap_secs`).
    pub retry_after_cap: Duration,
    /// A `Min-Expires` above this is a failure (`outbound.max_expires_secs`).
    pub max_expires: u32,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            min_refresh: Duration::from_secs(30),
            retry_after_cap: Duration::from_secs(3600),
            max_expires: 86_400,
        }
    }
}

/// The expiry a registrar granted, bounded: at most what the REGISTER asked for (a registrar
/// may shorten a binding, never lengthen it, RFC 3261 §10.3 step 7), at least 1 s; no answer
/// means the request's own.
pub fn granted_expiry(granted: Option<u32>, asked: u32) -> u32 {
    granted.unwrap_or(asked).min(asked).max(1)
}

/// When to refresh a binding granted for `granted_secs`: at a jittered 80–90 % of it, moved
/// earlier where needed so that it falls at least [`REFRESH_MARGIN`] (37 s) before the binding
/// expires, but never earlier than 50 % of the expiry nor than `bounds.min_refresh`. So a
/// 60 s binding is refreshed after 30 s, 120 s after 83 s, 600 s after 480–540 s, 3600 s after
/// 2880–3240 s, and a 10 s one after `min_refresh` (the registrar asked for chattier refreshes
/// than we send).
pub fn refresh_delay(granted_secs: u32, bounds: &Bounds, rng: &mut impl Rng) -> Duration {
    let granted = f64::from(granted_secs.max(1));
    let jittered = granted * rng.gen_range(REFRESH_MIN..REFRESH_MAX);
    let before_expiry = granted - REFRESH_MARGIN.as_secs_f64();
    let secs = jittered
        .min(before_expiry)
        .max(granted * REFRESH_FLOOR)
        .max(bounds.min_refresh.as_secs_f64());
    Duration::from_secs_f64(secs).min(MAX_TIMER)
}

/// How long to wait after a failure: the backoff, or the registrar's `Retry-After` (capped at
/// `bounds.retry_after_cap`) if that is longer.
pub fn retry_delay(backoff: Duration, retry_after: Option<u32>, bounds: &Bounds) -> Duration {
    let asked =
        Duration::from_secs(u64::from(retry_after.unwrap_or(0))).min(bounds.retry_after_cap);
    backoff.max(asked).min(MAX_TIMER)
}

/// What to do with a `423 Interval Too Brief`'s `Min-Expires` after asking for `asked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinExpires {
    /// Ask again with this expiry.
    Retry(u32),
    /// Beyond `outbound.max_expires_secs`: a failure that says so.
    TooLong { min_expires: u32, max_expires: u32 },
    /// Missing, or no longer than what was asked: the registrar contradicts itself.
    Unusable,
}

pub fn min_expires(min_expires: Option<u32>, asked: u32, bounds: &Bounds) -> MinExpires {
    match min_expires {
        Some(min) if min > bounds.max_expires => MinExpires::TooLong {
            min_expires: min,
            max_expires: bounds.max_expires,
        },
        Some(min) if min > asked => MinExpires::Retry(min),
        _ => MinExpires::Unusable,
    }
}

/// Exponential backoff with full jitter: uniformly in `[0, min(cap, base · 2^(failures-1))]`.
pub fn backoff(failures: u32, base: Duration, cap: Duration, rng: &mut impl Rng) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    let ceiling = base
        .saturating_mul(1u32 << exponent)
        .min(cap)
        .min(MAX_TIMER);
    if ceiling.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(rng.gen_range(0.0..=ceiling.as_secs_f64()))
}

/// What a final response to a REGISTER means for the registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Registered,
    /// Answer the digest challenge (once per attempt).
    Challenge,
    /// Retry at once with the registrar's `Min-Expires`.
    IntervalTooBrief,
    /// A failure, in the given state.
    Failed(RegistrationState),
}

pub fn classify(code: u16) -> Verdict {
    match code {
        200..=299 => Verdict::Registered,
        401 | 407 => Verdict::Challenge,
        423 => Verdict::IntervalTooBrief,
        403 => Verdict::Failed(RegistrationState::FailedAuth),
        408 => Verdict::Failed(RegistrationState::FailedTimeout),
        _ => Verdict::Failed(RegistrationState::FailedRegistrar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The refresh rule at the expiries the issue names: (granted, earliest, latest).
    #[test]
    fn refresh_falls_late_but_leaves_room_before_expiry() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let bounds = Bounds::default();
        for (granted, earliest, latest) in [
            (10, 30.0, 30.0),
            (60, 30.0, 30.0),
            (120, 83.0, 83.0),
            (600, 480.0, 540.0),
            (3600, 2880.0, 3240.0),
        ] {
            let (mut low, mut high) = (f64::MAX, 0.0_f64);
            for _ in 0..2000 {
                let delay = refresh_delay(granted, &bounds, &mut rng).as_secs_f64();
                low = low.min(delay);
                high = high.max(delay);
            }
            assert!(
                low >= earliest - 1e-6 && high <= latest + 1e-6,
                "{granted} s: {low}..{high} outside {earliest}..{latest}"
            );
            if earliest < latest {
                assert!(
                    high - low > (latest - earliest) * 0.8,
                    "{granted} s: jittered"
                );
            }
        }
        let chatty = Bounds {
            min_refresh: Duration::from_secs(90),
            ..bounds
        };
        assert_eq!(
            refresh_delay(120, &chatty, &mut rng),
            Duration::from_secs(90)
        );
        assert!(refresh_delay(u32::MAX, &bounds, &mut rng) <= MAX_TIMER);
    }

    #[test]
    fn registrar_numbers_are_bounded() {
        assert_eq!(granted_expiry(Some(u32::MAX), 3600), 3600);
        assert_eq!(granted_expiry(Some(120), 3600), 120);
        assert_eq!(granted_expiry(Some(0), 3600), 1);
        assert_eq!(granted_expiry(None, 600), 600);

        let bounds = Bounds::default();
        let second = Duration::from_secs(1);
        assert_eq!(
            retry_delay(second, Some(u32::MAX), &bounds),
            bounds.retry_after_cap
        );
        assert_eq!(
            retry_delay(second, Some(30), &bounds),
            Duration::from_secs(30)
        );
        assert_eq!(
            retry_delay(Duration::from_secs(60), Some(30), &bounds),
            Duration::from_secs(60)
        );
        assert_eq!(retry_delay(Duration::MAX, None, &bounds), MAX_TIMER);

        assert_eq!(
            min_expires(Some(1800), 60, &bounds),
            MinExpires::Retry(1800)
        );
        assert_eq!(
            min_expires(Some(u32::MAX), 60, &bounds),
            MinExpires::TooLong {
                min_expires: u32::MAX,
                max_expires: 86_400
            }
        );
        assert_eq!(min_expires(Some(60), 60, &bounds), MinExpires::Unusable);
        assert_eq!(min_expires(None, 60, &bounds), MinExpires::Unusable);
    }

    #[test]
    fn backoff_grows_to_the_cap_with_full_jitter() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base = Duration::from_secs(2);
        let cap = Duration::from_secs(300);
        for (failures, ceiling) in [(1, 2.0), (2, 4.0), (3, 8.0), (9, 300.0), (40, 300.0)] {
            let mut max_seen: f64 = 0.0;
            for _ in 0..2000 {
                let d = backoff(failures, base, cap, &mut rng).as_secs_f64();
                assert!(d <= ceiling, "{failures}: {d} > {ceiling}");
                max_seen = max_seen.max(d);
            }
            assert!(
                max_seen > ceiling * 0.9,
                "{failures}: jitter never neared {ceiling}"
            );
        }
    }

    #[test]
    fn classification() {
        assert_eq!(classify(200), Verdict::Registered);
        assert_eq!(classify(401), Verdict::Challenge);
        assert_eq!(classify(407), Verdict::Challenge);
        assert_eq!(classify(423), Verdict::IntervalTooBrief);
        assert_eq!(
            classify(403),
            Verdict::Failed(RegistrationState::FailedAuth)
        );
        assert_eq!(
            classify(408),
            Verdict::Failed(RegistrationState::FailedTimeout)
        );
        for code in [404, 480, 500, 503, 603] {
            assert_eq!(
                classify(code),
                Verdict::Failed(RegistrationState::FailedRegistrar)
            );
        }
    }
}
