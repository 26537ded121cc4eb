//! trunkline's domain, free of I/O.
//!
//! This crate owns what every front end shares: the entities ([`model`]), their validation
//! ([`validate`], [`sip_uri`]), secrets and their derived forms ([`secret`]), pagination
//! ([`page`]), the change events the SIP engine listens to ([`events`]), the store contract
//! ([`store`]), the SIP engine's live status ([`live`]), the health of long-running parts
//! ([`health`]), debug-only fault injection for tests ([`fault`]) and the services that hold every business
//! rule ([`service`]), and the JSON bodies shared by the API and the events ([`view`]). The REST dialects
//! and (later) the SIP engine call the services; only `trunkline-store` knows SQL.

pub mod error;
pub mod events;
pub mod fault;
pub mod health;
pub mod ids;
pub mod input;
pub mod live;
pub mod model;
pub mod outbox;
pub mod ownership;
pub mod page;
pub mod secret;
pub mod service;
pub mod sip_uri;
pub mod store;
pub mod validate;
pub mod view;

pub use error::{FieldErrors, ServiceError, StoreError};
pub use ids::{AccountId, Timestamp};
pub use input::Input;
pub use service::Services;
