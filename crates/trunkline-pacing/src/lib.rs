//! Call pacing: may a call start now on this key, and if not, when? An exact GCRA per key
//! ([`gcra`]), held in this process ([`memory`]) or atomically in Redis so several nodes share
//! each budget ([`redis_limiter`]). [`Pacer`] is what the service uses: it picks the backend
//! from the settings, applies the fail policy when Redis cannot answer, and records metrics.
//!
//! Which key and which rate a trunk uses is a business rule and lives in core
//! (`Services::pace_rule`); this crate only paces opaque keys.

pub mod gcra;
pub mod memory;
pub mod redis_limiter;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashSet;
use secrecy::SecretString;

pub use gcra::{Quota, Verdict};
pub use memory::MemoryLimiter;
pub use redis_limiter::{RedisError, RedisLimiter};

/// The longest `waitMs` a caller may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Keys get a label of their own in the metrics up to this many; later ones are counted under
/// `key="other"`, so tenants creating trunks cannot grow the metrics without bound.
const LABELLED_KEYS: usize = 10_000;

/// The histogram of decision times (Redis round trip included, a held wait not).
pub const DECISION_METRIC: &str = "trunkline_pacing_decision_seconds";
/// Its buckets: microseconds in memory, a millisecond or so through Redis.
pub const DECISION_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.1, 0.5, 1.0,
];

/// In-memory keys idle this long are forgotten by [`Pacer::forget_idle`].
const FORGET_AFTER_IDLE: Duration = Duration::from_secs(60);

/// `pacing.*` from the config.
#[derive(Debug, Clone)]
pub struct PacingSettings {
    /// Unset: in memory, this process only.
    pub redis_url: Option<SecretString>,
    /// With Redis unreachable, admit (unpaced) instead of answering "unavailable".
    pub fail_open: bool,
    /// Admissions allowed back to back (at least 1).
    pub burst: u32,
}

impl Default for PacingSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            fail_open: false,
            burst: 1,
        }
    }
}

/// The answer to one admission request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go once `wait` has passed (zero: at once); the slot is taken.
    Admitted { wait: Duration },
    /// No slot within the allowed wait; one is free after `retry_after`.
    Rejected { retry_after: Duration },
    /// Redis could not decide and the policy is fail-closed.
    Unavailable,
}

enum Backend {
    Memory(MemoryLimiter),
    Redis(RedisLimiter),
}

pub struct Pacer {
    backend: Backend,
    burst: u32,
    fail_open: bool,
    /// Set while Redis fails, so an outage is logged once when it starts and once when it ends.
    redis_down: AtomicBool,
    labelled: DashSet<Box<str>>,
}

impl Pacer {
    /// In memory unless `redis_url` is set; a Redis URL is only parsed here (connected on use).
    pub fn new(settings: &PacingSettings) -> Result<Self, RedisError> {
        let backend = match &settings.redis_url {
            Some(url) => Backend::Redis(RedisLimiter::new(url)?),
            None => Backend::Memory(MemoryLimiter::new()),
        };
        Ok(Self {
            backend,
            burst: settings.burst.max(1),
            fail_open: settings.fail_open,
            redis_down: AtomicBool::new(false),
            labelled: DashSet::new(),
        })
    }

    /// `memory` or `redis`.
    pub fn mode(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// Decides for `key` paced at `per_second`, waiting at most `max_wait` (capped at
    /// [`MAX_WAIT`]) for a slot. Returns at once: an admission with a wait is a reserved slot
    /// the caller must hold its answer for.
    pub async fn admit(&self, key: &str, per_second: u32, max_wait: Duration) -> Admission {
        let quota = Quota::new(per_second, self.burst);
        let max_wait = max_wait.min(MAX_WAIT);
        let started = Instant::now();
        let verdict = match &self.backend {
            Backend::Memory(limiter) => Ok(limiter.decide(key, quota, max_wait)),
            Backend::Redis(limiter) => limiter.decide(key, quota, max_wait).await,
        };
        metrics::histogram!(DECISION_METRIC).record(started.elapsed().as_secs_f64());
        let (admission, outcome) = match verdict {
            Ok(verdict) => {
                if self.redis_down.swap(false, Ordering::Relaxed) {
                    tracing::info!("call pacing: Redis answers again");
                }
                match verdict {
                    Verdict::Admit { wait_ns } => (
                        Admission::Admitted {
                            wait: Duration::from_nanos(wait_ns),
                        },
                        "admitted",
                    ),
                    Verdict::Reject { retry_after_ns } => (
                        Admission::Rejected {
                            retry_after: Duration::from_nanos(retry_after_ns),
                        },
                        "rejected",
                    ),
                }
            }
            Err(err) => {
                self.redis_failed(&err);
                if self.fail_open {
                    (
                        Admission::Admitted {
                            wait: Duration::ZERO,
                        },
                        "unenforced",
                    )
                } else {
                    (Admission::Unavailable, "unavailable")
                }
            }
        };
        metrics::counter!("trunkline_pacing_decisions_total",
            "key" => self.key_label(key), "outcome" => outcome)
        .increment(1);
        admission
    }

    fn redis_failed(&self, err: &RedisError) {
        let kind = match err {
            RedisError::Timeout => "timeout",
            RedisError::Redis(e) if e.is_io_error() || e.is_connection_refusal() => "connection",
            RedisError::Redis(_) => "command",
            RedisError::Reply(_) => "reply",
        };
        metrics::counter!("trunkline_pacing_redis_errors_total", "error" => kind).increment(1);
        let policy = if self.fail_open {
            "admitting unpaced (pacing.fail_open)"
        } else {
            "answering 503"
        };
        if !self.redis_down.swap(true, Ordering::Relaxed) {
            tracing::error!(error = %err, "call pacing: Redis unavailable, {policy} until it answers");
        } else {
            tracing::debug!(error = %err, "call pacing: Redis still unavailable");
        }
    }

    fn key_label(&self, key: &str) -> String {
        if self.labelled.contains(key) {
            return key.to_owned();
        }
        if self.labelled.len() < LABELLED_KEYS {
            self.labelled.insert(key.into());
            return key.to_owned();
        }
        "other".to_owned()
    }

    /// Forgets in-memory keys idle for a minute (Redis expires its own); the service calls this
    /// every minute.
    pub fn forget_idle(&self) {
        if let Backend::Memory(limiter) = &self.backend {
            limiter.forget_idle(FORGET_AFTER_IDLE);
        }
    }
}
