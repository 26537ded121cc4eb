//! Pacing state in Redis, so every node shares each key's budget: the GCRA step of
//! [`crate::gcra`] as one Lua script (one round trip, atomic), on Redis's own clock (`TIME`),
//! so the nodes' clocks do not matter. A key's value is its TAT in microseconds; it expires
//! once the TAT has passed, when it would mean the same as no value (idle keys cost nothing).
//!
//! The connection is made on first use and again after it breaks, one attempt at a time: the
//! service starts, and answers "unavailable", while Redis is down, and recovers by itself.
//! (redis-rs's `ConnectionManager` would need Redis up when it is built.)

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};
use secrecy::{ExposeSecret, SecretString};

use crate::gcra::{Quota, Verdict};

/// A decision not made within this (connecting included) fails; the caller's fail policy
/// answers.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Prefix of every key trunkline writes.
const KEY_PREFIX: &str = "trunkline:pace:";

/// `KEYS[1]` the key; `ARGV`: interval, tolerance and longest wait, in microseconds.
/// Returns `{1, wait}` (admitted after `wait` µs, slot taken) or `{0, retry_after}`.
/// Numbers stay below 2^53, so Lua's doubles hold them exactly; `%.0f` writes them in full.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {0, wait} end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1)
return {1, wait}
";

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("Redis did not answer within {} ms", REDIS_TIMEOUT.as_millis())]
    Timeout,
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis answered the pacing script with {0:?}")]
    Reply((i64, i64)),
}

pub struct RedisLimiter {
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
            client: redis::Client::open(url.expose_secret())?,
            connection: std::sync::Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            script: Script::new(GCRA_SCRIPT),
        })
    }

    /// One decision for `key`, atomically in Redis; takes a slot when it admits.
    pub async fn decide(
        &self,
        key: &str,
        quota: Quota,
        max_wait: Duration,
    ) -> Result<Verdict, RedisError> {
        tokio::time::timeout(REDIS_TIMEOUT, self.decide_now(key, quota, max_wait))
            .await
            .map_err(|_| RedisError::Timeout)?
    }

    async fn decide_now(
        &self,
        key: &str,
        quota: Quota,
        max_wait: Duration,
    ) -> Result<Verdict, RedisError> {
        let mut connection = self.connection().await?;
        // Rounded so that microseconds never admit more than nanoseconds would.
        let interval_us = quota.interval_ns().div_ceil(1000);
        let tolerance_us = quota.tolerance_ns() / 1000;
        let max_wait_us = u64::try_from(max_wait.as_micros()).unwrap_or(u64::MAX);
        let reply: Result<(i64, i64), _> = self
            .script
            .key(format!("{KEY_PREFIX}{key}"))
            .arg(interval_us)
            .arg(tolerance_us)
            .arg(max_wait_us)
            .invoke_async(&mut connection)
            .await;
        let (admitted, micros) = match reply {
            Ok(reply) => reply,
            Err(err) => {
                if err.is_io_error() || err.is_connection_dropped() || err.is_unrecoverable_error()
                {
                    self.slot().take();
                }
                return Err(err.into());
            }
        };
        let nanos = u64::try_from(micros)
            .map_err(|_| RedisError::Reply((admitted, micros)))?
            .saturating_mul(1000);
        match admitted {
            1 => Ok(Verdict::Admit { wait_ns: nanos }),
            0 => Ok(Verdict::Reject {
                retry_after_ns: nanos,
            }),
            _ => Err(RedisError::Reply((admitted, micros))),
        }
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
