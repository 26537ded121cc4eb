//! Pacing state in Redis, so every node shares each key's budget: the GCRA step of
//! [`crate::gcra`] as a Lua script, atomic, on Redis's own clock (`TIME`), so the nodes' clocks
//! do not matter. A key's value is its TAT in microseconds; it expires once the TAT has passed,
//! when it would mean the same as no value (idle keys cost nothing).
//!
//! Decisions asked for at the same moment go to Redis together: one script call decides a
//! batch of keys in order (the same key twice sees its own first step), like a group commit.
//! Each decision still costs its caller one round trip; what batching saves is Redis's work per
//! call. A script that writes costs Redis about as much as two plain round trips (measured in
//! bench/RESULTS.md "Call pacing"), so one call per decision would cap pacing at about half of
//! Redis's plain request rate. At most [`IN_FLIGHT`] calls are out at once; whatever arrives
//! meanwhile waits for the next, up to [`MAX_BATCH`] per call.
//!
//! The connection is made on first use and again after it breaks, one attempt at a time: the
//! service starts, and answers "unavailable", while Redis is down, and recovers by itself.
//! (redis-rs's `ConnectionManager` would need Redis up when it is built.)
//!
//! Keys of one call may hash to different slots, so Redis Cluster is not supported: one Redis,
//! or a primary with replicas behind one address.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::gcra::{Quota, Verdict};

/// A decision not made within this (connecting and queueing included) fails; the caller's fail
/// policy answers.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Script calls out at once.
pub const IN_FLIGHT: usize = 4;

/// Decisions per script call at most.
pub const MAX_BATCH: usize = 64;

/// Decisions waiting for a call at most; beyond, callers wait to queue (within their timeout).
const QUEUE: usize = 16_384;

/// Prefix of every key trunkline writes.
const KEY_PREFIX: &str = "trunkline:pace:";

/// `KEYS[i]` a key; `ARGV[3i-2..3i]` its interval, tolerance and longest wait, in microseconds.
/// Returns `{admitted_1, micros_1, admitted_2, …}`: `1, wait` (slot taken, go after `wait` µs)
/// or `0, retry_after`. Numbers stay below 2^53, so Lua's doubles hold them exactly, and
/// `%.0f` writes them in full.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local tolerance = tonumber(ARGV[3 * i - 1])
  local max_wait = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait < 0 then wait = 0 end
  if wait > max_wait then
    out[2 * i - 1] = 0
  else
    local next_tat = tat + interval
    redis.call('SET', key, string.format('%.0f', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1)
    out[2 * i - 1] = 1
  end
  out[2 * i] = wait
end
return out
";

#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisError {
    #[error("Redis did not answer within {} ms", REDIS_TIMEOUT.as_millis())]
    Timeout,
    #[error("Redis: {0}")]
    Redis(Arc<redis::RedisError>),
    #[error("Redis answered the pacing script with {0}")]
    Reply(String),
}

impl From<redis::RedisError> for RedisError {
    fn from(err: redis::RedisError) -> Self {
        Self::Redis(Arc::new(err))
    }
}

/// One decision waiting for a script call.
struct Pending {
    key: String,
    quota: Quota,
    max_wait: Duration,
    answer: oneshot::Sender<Result<Verdict, RedisError>>,
}

pub struct RedisLimiter {
    shared: Arc<Shared>,
    /// The batcher task's queue, started on first use (it needs the runtime).
    queue: OnceLock<mpsc::Sender<Pending>>,
}

struct Shared {
    client: redis::Client,
    connection: std::sync::Mutex<Option<MultiplexedConnection>>,
    /// Held while connecting, so a dead Redis is dialled once at a time, not once per request.
    connecting: tokio::sync::Mutex<()>,
    script: Script,
}

impl RedisLimiter {
    /// Checks the URL; connects on first use.
    pub fn new(url: &SecretString) -> Result<Self, RedisError> {
        Ok(Self {
            shared: Arc::new(Shared {
                client: redis::Client::open(url.expose_secret())?,
                connection: std::sync::Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                script: Script::new(GCRA_SCRIPT),
            }),
            queue: OnceLock::new(),
        })
    }

    /// One decision for `key`, atomically in Redis; takes a slot when it admits.
    pub async fn decide(
        &self,
        key: &str,
        quota: Quota,
        max_wait: Duration,
    ) -> Result<Verdict, RedisError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(batch_calls(self.shared.clone(), receiver));
            sender
        });
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            key: format!("{KEY_PREFIX}{key}"),
            quota,
            max_wait,
            answer,
        };
        let asked = async {
            queue
                .send(pending)
                .await
                .map_err(|_| RedisError::Reply("pacing batcher stopped".to_owned()))?;
            answered
                .await
                .map_err(|_| RedisError::Reply("pacing batcher stopped".to_owned()))?
        };
        tokio::time::timeout(REDIS_TIMEOUT, asked)
            .await
            .map_err(|_| RedisError::Timeout)?
    }
}

/// The batcher: takes whatever is queued once a call slot is free, and calls the script.
async fn batch_calls(shared: Arc<Shared>, mut queue: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return; // the limiter is gone
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        // Callers that gave up (timed out) must not spend a slot.
        batch.retain(|pending| !pending.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let result = tokio::time::timeout(REDIS_TIMEOUT, shared.call(&batch))
                .await
                .unwrap_or(Err(RedisError::Timeout));
            match result {
                Ok(verdicts) => {
                    for (pending, verdict) in batch.into_iter().zip(verdicts) {
                        let _ = pending.answer.send(Ok(verdict));
                    }
                }
                Err(err) => {
                    for pending in batch {
                        let _ = pending.answer.send(Err(err.clone()));
                    }
                }
            }
        });
    }
}

impl Shared {
    async fn call(&self, batch: &[Pending]) -> Result<Vec<Verdict>, RedisError> {
        let mut connection = self.connection().await?;
        let mut invocation = self.script.prepare_invoke();
        for pending in batch {
            // Rounded so that microseconds never admit more than nanoseconds would.
            invocation
                .key(&pending.key)
                .arg(pending.quota.interval_ns().div_ceil(1000))
                .arg(pending.quota.tolerance_ns() / 1000)
                .arg(u64::try_from(pending.max_wait.as_micros()).unwrap_or(u64::MAX));
        }
        let reply: Vec<i64> = match invocation.invoke_async(&mut connection).await {
            Ok(reply) => reply,
            Err(err) => {
                if err.is_io_error() || err.is_connection_dropped() || err.is_unrecoverable_error()
                {
                    self.slot().take();
                }
                return Err(err.into());
            }
        };
        if reply.len() != 2 * batch.len() {
            return Err(RedisError::Reply(format!(
                "{} numbers for {} keys",
                reply.len(),
                batch.len()
            )));
        }
        reply
            .chunks_exact(2)
            .map(|pair| {
                let nanos = u64::try_from(pair[1])
                    .map_err(|_| RedisError::Reply(format!("{pair:?}")))?
                    .saturating_mul(1000);
                match pair[0] {
                    1 => Ok(Verdict::Admit { wait_ns: nanos }),
                    0 => Ok(Verdict::Reject {
                        retry_after_ns: nanos,
                    }),
                    _ => Err(RedisError::Reply(format!("{pair:?}"))),
                }
            })
            .collect()
    }

    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT);
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.slot() = Some(connection.clone());
        Ok(connection)
    }

    fn current(&self) -> Option<MultiplexedConnection> {
        self.slot().clone()
    }

    /// Nothing panics while holding this lock, so a poisoned one is still consistent.
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
