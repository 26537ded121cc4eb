//! trunkline's SIP node.
//!
//! One SIP node per process ([`node`]: a thread, its runtime and one endpoint — [`transport`]:
//! UDP and TCP on `sip.listen`, TLS on `sip.tls_listen`, rsipstack underneath) serves both the
//! outbound registrations and the inbound registrar. The [`engine`] keeps each outbound
//! registration alive as a small state machine driven by one timer queue — no task or socket
//! per registration — answering digest challenges with [`digest`] (the `trunkline-digest`
//! crate's client side), and writes live status to the store. The [`registrar`] authenticates
//! devices registering to us with the Vobiz credentials (the digest crate's server side) and
//! keeps their bindings. [`policy`] holds the engine's timing and classification rules,
//! [`target`] the addressing, [`message`] the REGISTER on the wire.

pub mod engine;
pub mod message;
pub mod node;
pub mod policy;
pub mod registrar;
pub mod target;
pub mod transport;

pub use engine::EngineSettings;
pub use node::{EnginePart, RegistrarPart, SipNode};
pub use registrar::RegistrarSettings;
/// Digest authentication lives in its own crate, shared by the engine and the registrar;
/// re-exported under its old path.
pub use trunkline_digest as digest;
