//! Status events and the webhooks that receive them: what an event is ([`EventType`],
//! [`StoredEvent`] and its wire body), the rule that decides when a registration's change is
//! announced ([`announcement`]), and what a webhook endpoint and a delivery attempt are.
//!
//! Events are written by the store in the same transaction as the change that caused them (the
//! outbox): nothing is announced that was not stored, nothing stored is lost by a crash. `seq`
//! increases per tenant, in commit order.

use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use crate::ids::{AccountId, Timestamp};
use crate::model::{InboundBinding, RegistrationState};
use crate::view::{BindingEventData, RegistrationStatusView};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    RegistrationRegistered,
    RegistrationFailed,
    RegistrationRemoved,
    BindingCreated,
    BindingRemoved,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::RegistrationRegistered,
        EventType::RegistrationFailed,
        EventType::RegistrationRemoved,
        EventType::BindingCreated,
        EventType::BindingRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::RegistrationRegistered => "registration.registered",
            EventType::RegistrationFailed => "registration.failed",
            EventType::RegistrationRemoved => "registration.removed",
            EventType::BindingCreated => "binding.created",
            EventType::BindingRemoved => "binding.removed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// A comma-separated list of types (`?types=`), each once, in the order given; the first
    /// name that is not a type (an empty one included) is the error.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let mut types = Vec::new();
        for name in text.split(',') {
            let kind =
                Self::parse(name).ok_or_else(|| name.chars().take(64).collect::<String>())?;
            if !types.contains(&kind) {
                types.push(kind);
            }
        }
        Ok(types)
    }
}

/// The coarse outcome of a registration that events announce; stored with its status as the
/// last one announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Registered,
    Failed,
    Removed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Registered => "registered",
            Outcome::Failed => "failed",
            Outcome::Removed => "removed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Outcome::Registered, Outcome::Failed, Outcome::Removed]
            .into_iter()
            .find(|o| o.as_str() == text)
    }

    /// The outcome a state shows, if it is one: a success or a failure (retries and the
    /// states in between are not outcomes).
    pub fn of(state: RegistrationState) -> Option<Self> {
        match state {
            RegistrationState::Registered => Some(Outcome::Registered),
            s if s.is_failed() => Some(Outcome::Failed),
            _ => None,
        }
    }

    fn event(self) -> EventType {
        match self {
            Outcome::Registered => EventType::RegistrationRegistered,
            Outcome::Failed => EventType::RegistrationFailed,
            Outcome::Removed => EventType::RegistrationRemoved,
        }
    }
}

/// The event a registration's new outcome calls for, given the last one announced: the first
/// success or a success after a failure → `registration.registered`; the first outcome failing
/// or a failure after a success → `registration.failed` (never once per retry); removal once.
pub fn announcement(last: Option<Outcome>, now: Option<Outcome>) -> Option<EventType> {
    match now {
        Some(now) if last != Some(now) => Some(now.event()),
        _ => None,
    }
}

/// An event as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub tenant: AccountId,
    /// Per tenant, from 1, in commit order.
    pub seq: u64,
    /// `evt_` and 32 hex digits; the webhook's `webhook-id`.
    pub id: String,
    pub kind: EventType,
    pub at: Timestamp,
    /// The `data` member, as JSON text (the body of `GET /v1/registrations/{id}`, or the
    /// binding object plus `credentialId`, at that moment).
    pub data: String,
}

impl StoredEvent {
    /// A new event id.
    pub fn new_id() -> String {
        format!("evt_{}", Uuid::new_v4().simple())
    }

    /// The event body: the webhook POST body, the SSE `data` and a polled item.
    pub fn body(&self) -> EventBody {
        EventBody {
            id: self.id.clone(),
            seq: self.seq,
            kind: self.kind.as_str(),
            timestamp: self.at.to_rfc3339(),
            // Written by us as JSON; should a row ever hold something else, it goes out as a
            // JSON string rather than breaking the body.
            data: serde_json::from_str(&self.data)
                .unwrap_or_else(|_| serde_json::Value::String(self.data.clone())),
        }
    }

    /// [`Self::body`] as JSON text (what a webhook signs and sends).
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.body()).expect("a JSON value serializes")
    }
}

/// The body of an event, as webhooks, the stream and polling send it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Event))]
pub struct EventBody {
    /// `evt_…`; the webhook's `webhook-id`.
    pub id: String,
    /// Increases per tenant; the stream's event id (`Last-Event-ID`).
    pub seq: u64,
    /// `registration.registered`, `registration.failed`, `registration.removed`,
    /// `binding.created` or `binding.removed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: String,
    /// The `GET /v1/registrations/{id}` body for `registration.*`; the binding object plus
    /// `credentialId` for `binding.*`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

/// An event to append: the store gives it its id and `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub tenant: AccountId,
    pub kind: EventType,
    pub at: Timestamp,
    pub data: String,
}

/// A registration's status write, with what an event about it needs: its public id and kind
/// (the `GET /v1/registrations/{id}` body), and whether the engine has just removed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusWrite {
    pub tenant: AccountId,
    /// The internal id (a phone number's id for Dasha).
    pub id: Uuid,
    /// The Ultravox registration id or the Dasha phone number.
    pub public_id: String,
    pub kind: crate::service::RegistrationKind,
    pub status: crate::model::RegistrationStatus,
    /// Deleted or disabled, and unregistered: announce `registration.removed`.
    pub removed: bool,
}

impl StatusWrite {
    /// A `registration.*` event's `data`: the `GET /v1/registrations/{id}` body as of this
    /// write.
    pub fn event_data(&self) -> String {
        let view = RegistrationStatusView::new(
            self.public_id.clone(),
            self.kind,
            self.status.state,
            Some(&self.status),
        );
        serde_json::to_string(&view).expect("a view serializes")
    }
}

/// A `binding.*` event's `data`: the binding object of the Vobiz bindings list plus
/// `credentialId`.
pub fn binding_event_data(binding: &InboundBinding) -> String {
    serde_json::to_string(&BindingEventData::from(binding)).expect("a view serializes")
}

/// How many webhooks one tenant may have (the store checks it in the insert's transaction).
pub const MAX_WEBHOOKS_PER_TENANT: usize = 20;

/// A tenant's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: Uuid,
    pub tenant: AccountId,
    /// `http://` or `https://`.
    pub url: String,
    /// The event types sent; empty means all.
    pub types: Vec<EventType>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why trunkline disabled it (retries ran out), until it is enabled again.
    pub disabled_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Webhook {
    pub fn wants(&self, kind: EventType) -> bool {
        self.types.is_empty() || self.types.contains(&kind)
    }
}

/// A webhook as its deliverer holds it: the endpoint, its signing secret opened, and where its
/// deliveries stand.
#[derive(Debug, Clone)]
pub struct WebhookCursor {
    pub webhook: Webhook,
    /// `whsec_…`.
    pub secret: SecretString,
    /// Every event up to this `seq` is done (delivered, or not of the endpoint's types).
    pub delivered_seq: u64,
    /// Failed attempts at the event after `delivered_seq`.
    pub attempt: u32,
    /// When the current run of failures began.
    pub failing_since: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub webhook_id: Uuid,
    pub tenant: AccountId,
    pub event_id: String,
    pub event_seq: u64,
    pub kind: EventType,
    /// 1 for the first attempt at this event.
    pub attempt: u32,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// Why it failed (a timeout, a refused connection, a non-2xx); `None` when delivered.
    pub error: Option<String>,
    pub at: Timestamp,
    /// When the next attempt is due; `None` when delivered or given up.
    pub next_attempt_at: Option<Timestamp>,
}

/// Where a webhook's deliveries stand after an attempt (written with the attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorUpdate {
    pub delivered_seq: u64,
    pub attempt: u32,
    pub failing_since: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
    /// Retries ran out: the endpoint is disabled, saying why.
    pub disable: Option<String>,
}
