//! The services: every business rule, called by every front end.
//!
//! One [`Services`] value holds the store, the event bus and the settings the rules need. Its
//! methods are split by entity across the submodules. Each write validates first, writes in one
//! store transaction, then publishes a [`ChangeEvent`](crate::events::ChangeEvent).

mod cluster;
mod credentials;
mod events;
mod pacing;
mod phone_numbers;
mod registration_list;
mod registrations;
mod status;
mod tenants;
mod trunks;
mod webhooks;

use std::sync::Arc;

use uuid::Uuid;

pub use credentials::{CredentialDraft, CredentialPatch};
pub use events::{EVENT_PAGE_DEFAULT, EVENT_PAGE_MAX};
pub use pacing::PaceRule;
pub use phone_numbers::PhoneNumberDraft;
pub use registration_list::{
    registration_list_window, ListedRegistration, RegistrationFilter, RegistrationList,
    StateCounts, StateFilter, QUERY_MAX_CHARS, REGISTRATION_LIST_LIMITS,
};
pub use registrations::RegistrationDraft;
pub use status::{RegistrationKind, RegistrationView, HISTORY_LENGTH};
pub use tenants::IssuedKey;
pub use trunks::TrunkDraft;
pub use webhooks::{WebhookDraft, WebhookPatch, DELIVERIES_KEPT, SECRET_PREFIX, URL_MAX};

use crate::error::{ServiceError, StoreError};
use crate::events::{ChangeEvent, ChangeOp, EntityKind, EventBus};
use crate::health::Health;
use crate::ids::{AccountId, Timestamp};
use crate::live::StatusBoard;
use crate::page::Window;
use crate::store::{Store, WriteOutcome};

/// Settings the rules depend on.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// `sip.domain`: inbound realms are `{account_id}.{sip_domain}`.
    pub sip_domain: String,
    /// `dasha.reveal_auth_password`: return trunk passwords in Dasha responses.
    pub reveal_dasha_password: bool,
    /// `cluster.lease_secs`: a node not heard from for this long is no longer listed.
    pub node_lease: std::time::Duration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            sip_domain: "sip.localhost".to_owned(),
            reveal_dasha_password: false,
            node_lease: std::time::Duration::from_secs(15),
        }
    }
}

/// Why the service is not ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unavailable: {0}")]
    Database(#[source] StoreError),
    #[error("{0}")]
    Part(String),
}

/// How often a read-modify-write is retried when another writer got there first.
const UPDATE_ATTEMPTS: usize = 8;

#[derive(Clone)]
pub struct Services {
    store: Arc<dyn Store>,
    events: EventBus,
    settings: ServiceSettings,
    live: Arc<StatusBoard>,
    health: Arc<Health>,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, events: EventBus, settings: ServiceSettings) -> Self {
        Self {
            store,
            events,
            settings,
            live: Arc::new(StatusBoard::new()),
            health: Arc::new(Health::default()),
        }
    }

    /// The board a SIP engine in this process writes live status to; reads prefer it over
    /// the status table.
    pub fn live_status(&self) -> &Arc<StatusBoard> {
        &self.live
    }

    /// Where the process's long-running parts (the SIP engine) report their health, which
    /// [`Services::ready`] consults.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether the store answers and every long-running part is up and ticking; the error
    /// says what is wrong.
    pub async fn ready(&self) -> Result<(), NotReady> {
        if let Some(problem) = self.health.problem() {
            return Err(NotReady::Part(problem));
        }
        self.store.ping().await.map_err(NotReady::Database)
    }

    /// Announces a committed change. Callers run to here even if their client hangs up: the
    /// HTTP layer runs every write in a task of its own (`trunkline_api::ops::detach_writes`).
    async fn publish(&self, tenant: &AccountId, kind: EntityKind, id: Uuid, op: ChangeOp) {
        crate::fault::before_publish().await;
        self.events.publish(ChangeEvent {
            tenant: tenant.clone(),
            kind,
            id,
            op,
        });
    }
}

/// Limits of a dialect's page-size parameter.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    pub default: u32,
    pub max: u32,
}

/// Checks an offset/limit pair against a dialect's limits, naming the dialect's parameters.
pub fn window(
    offset_field: &str,
    offset: Option<i64>,
    limit_field: &str,
    limit: Option<i64>,
    limits: PageLimits,
) -> Result<Window, ServiceError> {
    let mut errors = crate::error::FieldErrors::new();
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        errors.add(
            offset_field,
            "Ensure this value is greater than or equal to 0.",
        );
    }
    let limit = limit.unwrap_or(i64::from(limits.default));
    if !(1..=i64::from(limits.max)).contains(&limit) {
        errors.add(
            limit_field,
            format!("Ensure this value is between 1 and {}.", limits.max),
        );
    }
    errors.into_result()?;
    Ok(Window {
        offset: offset as u64,
        limit: limit as u32,
    })
}

/// A page size alone (keyset pagination).
pub fn page_size(field: &str, size: Option<i64>, limits: PageLimits) -> Result<u32, ServiceError> {
    window("offset", Some(0), field, size, limits).map(|w| w.limit)
}

/// Maps a store outcome to the client's answer, given what "duplicate" means for this entity.
fn expect_applied(outcome: WriteOutcome, conflict: &str) -> Result<(), ServiceError> {
    match outcome {
        WriteOutcome::Applied => Ok(()),
        WriteOutcome::NotFound => Err(ServiceError::NotFound),
        WriteOutcome::Duplicate | WriteOutcome::InUse => {
            Err(ServiceError::Conflict(conflict.to_owned()))
        }
        WriteOutcome::ReferenceMissing | WriteOutcome::Stale | WriteOutcome::LimitReached => {
            Err(ServiceError::Internal(StoreError::Database(format!(
                "unexpected write outcome {outcome:?}"
            ))))
        }
    }
}

/// `updated_at` for a row last changed at `previous`: now, but always strictly later, so the
/// optimistic check in `update_*` can tell two writes apart.
fn next_version(previous: Timestamp) -> Timestamp {
    Timestamp::now().max(Timestamp::from_micros(previous.micros() + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PageLimits = PageLimits {
        default: 20,
        max: 100,
    };

    #[test]
    fn window_checks_both_bounds_and_names_the_parameter() {
        let w = window("offset", None, "limit", None, LIMITS).unwrap();
        assert_eq!((w.offset, w.limit), (0, 20));
        for (offset, limit, field) in [
            (Some(-1), None, "offset"),
            (None, Some(0), "limit"),
            (None, Some(101), "limit"),
        ] {
            let Err(ServiceError::Validation(errors)) =
                window("offset", offset, "limit", limit, LIMITS)
            else {
                panic!("accepted {offset:?} {limit:?}")
            };
            assert_eq!(errors.iter().next().unwrap().0, field);
        }
    }
}
