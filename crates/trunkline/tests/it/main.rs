//! Integration tests: the real `trunkline` binary on an ephemeral port, a real SQLite file in a
//! temporary directory, real HTTP. One test binary for all areas so it is built once.
//!
//! Run with `cargo test -p trunkline --test it`.

mod cluster;
mod common;

mod bad_input;
mod cli;
mod crash;
mod dasha;
mod devices;
mod dns;
mod events;
mod hostile;
mod hygiene;
mod kamailio;
mod kamailio_peer;
mod ops;
mod outbound;
mod pacing;
mod registrar;
mod registrar_devices;
mod secrets;
mod shutdown;
mod sip_client;
mod sip_garbage;
mod transport_policy;
mod ultravox;
mod vobiz;
mod webhooks;
