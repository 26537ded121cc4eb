//! The JSON bodies that both the API shows and the events carry, composed once here: a
//! `registration.*` event's `data` is the `GET /v1/registrations/{id}` body, and a `binding.*`
//! event's the Vobiz bindings list's object plus `credentialId`. The API derives their OpenAPI
//! schemas with the `openapi` feature.

use serde::Serialize;
use uuid::Uuid;

use crate::model::{InboundBinding, RegistrationState, RegistrationStatus, Transport};
use crate::service::{RegistrationKind, RegistrationView};
use crate::Timestamp;

/// Full live status of an outbound registration, as the engine last wrote it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RegistrationStatusView {
    /// The Ultravox `registrationId` or the Dasha phone number.
    pub id: String,
    /// `ultravox` or `dasha`.
    pub kind: &'static str,
    /// `disabled`, `pending`, `registering`, `authenticating`, `registered`, `unregistering`,
    /// `failed_auth`, `failed_timeout`, `failed_transport` or `failed_registrar`.
    pub state: &'static str,
    pub last_code: Option<u16>,
    pub last_phrase: Option<String>,
    /// `local` (timeout or transport error) or `remote` (an error reply), after a failure.
    pub failed_by: Option<&'static str>,
    pub last_attempt_at: Option<String>,
    pub expires_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub consecutive_failures: u32,
    pub transport: Option<&'static str>,
    pub remote: Option<String>,
}

impl RegistrationStatusView {
    /// The body of a registration known by its public `id` (an Ultravox registration id or a
    /// Dasha phone number), shown in `state`, with what the engine last recorded.
    pub fn new(
        id: String,
        kind: RegistrationKind,
        state: RegistrationState,
        status: Option<&RegistrationStatus>,
    ) -> Self {
        Self {
            id,
            kind: kind.as_str(),
            state: state.as_str(),
            last_code: status.and_then(|s| s.last_code),
            last_phrase: status.and_then(|s| s.last_phrase.clone()),
            failed_by: status.and_then(|s| s.failed_by).map(|f| f.as_str()),
            last_attempt_at: status
                .and_then(|s| s.last_attempt_at)
                .map(Timestamp::to_rfc3339),
            expires_at: status.and_then(|s| s.expires_at).map(Timestamp::to_rfc3339),
            next_attempt_at: status
                .and_then(|s| s.next_attempt_at)
                .map(Timestamp::to_rfc3339),
            consecutive_failures: status.map_or(0, |s| s.consecutive_failures),
            transport: status.and_then(|s| s.transport).map(Transport::as_str),
            remote: status.and_then(|s| s.remote.clone()),
        }
    }
}

impl From<&RegistrationView> for RegistrationStatusView {
    fn from(view: &RegistrationView) -> Self {
        Self::new(view.id.clone(), view.kind, view.state, view.status.as_ref())
    }
}

/// A device's live registration to a credential (a binding trunkline's registrar holds); ours,
/// not the vendor's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Binding))]
pub struct BindingView {
    /// The Contact URI the device registered.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "sip:alice@203.0.113.5:5060;transport=udp")
    )]
    pub contact: String,
    /// Where the REGISTER came from: transport, address and port.
    #[cfg_attr(feature = "openapi", schema(example = "udp:203.0.113.5:5060"))]
    pub source: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::transport_name))]
    pub transport: &'static str,
    /// The device's `User-Agent`, if it sent one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub user_agent: Option<String>,
    /// When the binding ends unless the device registers again.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: String,
    /// When the device last registered this contact.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub registered_at: String,
}

impl From<&InboundBinding> for BindingView {
    fn from(b: &InboundBinding) -> Self {
        Self {
            contact: b.contact.clone(),
            source: b.source.clone(),
            transport: b.transport.as_str(),
            user_agent: b.user_agent.clone(),
            expires_at: b.expires_at.to_rfc3339(),
            registered_at: b.registered_at.to_rfc3339(),
        }
    }
}

/// A `binding.*` event's `data`: the binding and the credential it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BindingEventData {
    #[serde(flatten)]
    pub binding: BindingView,
    #[serde(rename = "credentialId")]
    pub credential_id: Uuid,
}

impl From<&InboundBinding> for BindingEventData {
    fn from(b: &InboundBinding) -> Self {
        Self {
            binding: BindingView::from(b),
            credential_id: b.credential_id,
        }
    }
}

#[cfg(feature = "openapi")]
mod openapi {
    use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

    /// `udp`, `tcp` or `tls`.
    pub(super) fn transport_name() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["udp", "tcp", "tls"]))
            .build()
    }
}
