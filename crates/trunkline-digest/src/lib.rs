//! SIP digest authentication (RFC 7616, RFC 8760 for SIP).
//!
//! This crate owns everything digest: the algorithms and the one place HA1 is computed
//! ([`algorithm`]), the bounded `Digest k=v, k="quoted"` header syntax ([`params`]) and the
//! client that answers a registrar's challenges ([`client`]).
//!
//! It is hand-written rather than taken from `rsipstack`: rsipstack's digest client fails on
//! `algorithm=SHA-256`, on qop lists such as `qop="auth,auth-int"` and on the `-sess`
//! algorithms, and never reuses a nonce.
//!
//! No I/O and no storage: callers pass the password.

pub mod algorithm;
pub mod client;
pub mod params;

pub use algorithm::{ha1, Algorithm};
pub use client::{
    pick, Challenge, ChallengeError, ChallengeRefused, Credentials, DigestSession, QopOptions,
    UnsupportedChallenge, MAX_CHALLENGE_LEN, MAX_CHALLENGE_PARAMS,
};
pub use params::{MAX_PARAM_LEN, MAX_REALM_LEN};
