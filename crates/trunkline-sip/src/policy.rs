//! Timing and classification rules of the registration engine, as pure functions so they can
//! be tested without a network: when to refresh, how long to back off, and what a final
//! response means.

use std::time::Duration;

use rand::Rng;
use trunkline_core::model::RegistrationState;

/// Fraction of the granted expiry after which a binding is refreshed: uniformly within
/// [`REFRESH_MIN`, `REFRESH_MAX`) so that registrations created together drift apart.
const REFRESH_MIN: f64 = 0.50;
const REFRESH_MAX: f64 = 0.75;

/// Per-attempt deadline for one REGISTER transaction, below RFC 3261's Timer F (64·T1 =
/// 32 s): the endpoint's transactions use it as their Timer F, and a TCP/TLS connect gets
/// as long.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// When to refresh a binding granted for `granted_secs`.
pub fn refresh_delay(granted_secs: u32, rng: &mut impl Rng) -> Duration {
    let fraction = rng.gen_range(REFRESH_MIN..REFRESH_MAX);
    Duration::from_secs_f64(f64::from(granted_secs.max(1)) * fraction)
}

/// Exponential backoff with full jitter: uniformly in `[0, min(cap, base · 2^(failures-1))]`.
pub fn backoff(failures: u32, base: Duration, cap: Duration, rng: &mut impl Rng) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    let ceiling = base.saturating_mul(1u32 << exponent).min(cap);
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

    #[test]
    fn refresh_lands_between_half_and_three_quarters() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let delay = refresh_delay(60, &mut rng).as_secs_f64();
            assert!((30.0..45.0).contains(&delay), "{delay}");
        }
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
