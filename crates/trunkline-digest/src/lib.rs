//! SIP digest authentication (RFC 7616, RFC 8760 for SIP), both sides of it.
//!
//! This crate owns everything digest: the algorithms and the one place HA1 is computed
//! ([`algorithm`], also used for the HA1 stored for inbound credentials), the bounded
//! `Digest k=v, k="quoted"` header syntax ([`params`]), the client that answers a registrar's
//! challenges ([`client`]) and the server that challenges devices and checks their answers with
//! stateless nonces ([`server`]). Both sides share the parser and the algorithms, so what one
//! writes the other reads, under the same limits.
//!
//! It is hand-written rather than taken from `rsipstack`: rsipstack's digest client fails on
//! `algorithm=SHA-256`, on qop lists such as `qop="auth,auth-int"` and on the `-sess`
//! algorithms, and never reuses a nonce; and it has no server side, let alone one with stateless
//! nonces that several nodes can check without sharing state.
//!
//! No I/O, no clock and no storage: callers pass the time, the stored HA1 and the password.

pub mod algorithm;
pub mod client;
pub mod params;
pub mod server;

pub use algorithm::{ha1, Algorithm};
pub use client::{
    pick, Challenge, ChallengeError, ChallengeRefused, Credentials, DigestSession, QopOptions,
    UnsupportedChallenge, MAX_CHALLENGE_LEN, MAX_CHALLENGE_PARAMS,
};
pub use params::{MAX_PARAM_LEN, MAX_REALM_LEN};
