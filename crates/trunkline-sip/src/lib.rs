//! trunkline's SIP engine.
//!
//! One SIP endpoint per process ([`transport`]: UDP and TCP on `sip.listen`, TLS on
//! `sip.tls_listen`, rsipstack underneath) serves every outbound registration. The
//! [`engine`] keeps each registration alive as a small state machine driven by one timer
//! queue — no task or socket per registration — answering digest challenges with our own
//! [`digest`] crate (`trunkline-digest`), and writes live status to the store. [`policy`] holds
//! the timing and classification rules, [`target`] the addressing, [`message`] the REGISTER on
//! the wire.

pub mod engine;
pub mod message;
pub mod policy;
pub mod target;
pub mod transport;

pub use engine::{Engine, EngineSettings};
/// Digest authentication lives in its own crate, shared with the registrar; re-exported under
/// its old path.
pub use trunkline_digest as digest;
