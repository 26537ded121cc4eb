//! trunkline's webhook deliverer: the tenant's events, POSTed to each of its webhook endpoints
//! in `seq` order, signed as Standard Webhooks specify.
//!
//! - [`signing`]: the `webhook-signature` HMAC.
//! - [`schedule`]: retry delays and the retry window, as a stored cursor.
//! - [`destination`]: `outbound.deny_networks` applied to every destination, after DNS.
//! - [`delivery`]: one HTTP attempt and its outcome.
//! - `worker`: one task per webhook (ordering, skipping, recording each attempt).
//! - [`deliverer`]: which webhooks this node delivers for (claims, renewals, clean stop).
//!
//! Everything a delivery needs to survive a restart (cursor, attempt count, first failure,
//! next attempt, hold) lives in the store; the tasks hold nothing that cannot be read again.

pub mod deliverer;
pub mod delivery;
pub mod destination;
pub mod schedule;
pub mod signing;
mod worker;

pub use deliverer::{Deliverer, DelivererSettings, StartError};

/// The histogram of attempt durations (seconds).
pub const DELIVERY_METRIC: &str = "trunkline_webhook_delivery_seconds";
/// Its buckets: a receiver answers in milliseconds; the timeout is 10 s.
pub const DELIVERY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
