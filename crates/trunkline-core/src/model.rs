//! The entities trunkline stores, one shape each whatever dialect shows them, plus the live
//! registration status the SIP engine writes and the rules that turn it into each dialect's
//! summary (`successful`, `registrationStatus`).

use secrecy::SecretString;
use uuid::Uuid;

use crate::ids::{AccountId, Timestamp};

/// SIP transport of a trunk or a registration target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// Case-insensitive, as SIP URI parameters are.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text))
    }
}

/// A node serving the database, as its heartbeat last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub node_id: String,
    pub started_at: Timestamp,
    pub last_heartbeat: Timestamp,
    /// Outbound registrations its engine holds.
    pub owned: u64,
    /// Whether its engine runs: registrations are shared among such nodes.
    pub registers: bool,
    /// Until when its registration leases hold (kept by the lease keeper, not the heartbeat;
    /// 0 for a node that holds none).
    pub lease_until: Timestamp,
}

/// A node's claim on one outbound registration: it alone registers it until the lease
/// expires, unless it renews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub tenant: AccountId,
    pub registration_id: Uuid,
    /// Grows each time the lease changes hands (a fencing token).
    pub token: u64,
}

/// The binding a node's engine made for an outbound registration, as recorded for the node
/// that may take the registration over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedBinding {
    pub tenant: AccountId,
    pub registration_id: Uuid,
    pub node_id: String,
    pub contact: String,
    pub call_id: String,
    pub cseq: u32,
    pub expires_at: Timestamp,
}

/// An account; owns every other row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub account_id: AccountId,
    pub name: String,
    pub created_at: Timestamp,
}

/// An outbound REGISTER trunkline keeps alive (Ultravox `SipRegistration`).
#[derive(Debug, Clone)]
pub struct Registration {
    pub id: Uuid,
    pub tenant: AccountId,
    pub username: String,
    pub proxy: String,
    pub outbound_proxy: Option<String>,
    pub auth_user: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Live status, when the engine has written one.
    pub status: Option<RegistrationStatus>,
}

/// Outbound trunk settings (Dasha `sip-credentials`).
#[derive(Debug, Clone)]
pub struct Trunk {
    pub id: Uuid,
    pub tenant: AccountId,
    pub server: String,
    pub transport: Transport,
    pub domain: Option<String>,
    pub auth_user: Option<String>,
    /// Whether a password is stored (it is sealed; see `revealed_password`).
    pub has_password: bool,
    /// The opened password, only when the caller asked the store to reveal it.
    pub revealed_password: Option<SecretString>,
    pub description: Option<String>,
    pub cps_limit: Option<i32>,
    pub cps_key: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A phone number on a trunk (Dasha `sip-phone-numbers`); with `registration` it is also an
/// outbound registration, identified by `id` in the status table.
#[derive(Debug, Clone)]
pub struct PhoneNumber {
    pub id: Uuid,
    pub tenant: AccountId,
    pub phone_number: String,
    pub trunk_id: Uuid,
    pub registration: bool,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub incoming_calls_agent_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub status: Option<RegistrationStatus>,
}

/// A username/password SIP devices use to register to trunkline (Vobiz `credentials`). The
/// password itself is never kept: only its HA1 digests for `realm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCredential {
    pub id: Uuid,
    pub tenant: AccountId,
    pub username: String,
    pub realm: String,
    pub enabled: bool,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One Contact a device registered for an inbound credential (RFC 3261 §10.3), keyed by
/// (`credential_id`, `contact`). Every string in it came from the device and is bounded by the
/// registrar before it gets here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundBinding {
    pub tenant: AccountId,
    pub credential_id: Uuid,
    /// The Contact URI, as the device sent it (without the angle brackets and header params).
    pub contact: String,
    /// Where the REGISTER came from: `udp:203.0.113.5:5060`.
    pub source: String,
    pub transport: Transport,
    pub user_agent: Option<String>,
    /// The REGISTER's Call-ID and CSeq: a later REGISTER with the same Call-ID and a CSeq not
    /// above this one is out of order and ignored for this contact (RFC 3261 §10.3 step 7).
    pub call_id: String,
    pub cseq: u32,
    pub expires_at: Timestamp,
    pub registered_at: Timestamp,
}

/// One change to the stored bindings, applied with others in one transaction (the
/// registrar's group commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    /// Insert, or replace the binding with the same (credential, contact).
    Put(InboundBinding),
    /// Remove one contact of a credential.
    Remove {
        credential_id: Uuid,
        contact: String,
    },
    /// Remove every contact of a credential (`Contact: *`).
    RemoveAll { credential_id: Uuid },
}

/// Which API an outbound registration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationSource {
    /// An Ultravox `SipRegistration`.
    Ultravox,
    /// A Dasha phone number with `registration: true`, on its trunk.
    DashaNumber,
}

/// Everything the SIP engine needs to keep one REGISTER alive, whatever API created it.
///
/// Built by the store from an Ultravox registration, or from a Dasha phone number joined with
/// its trunk (the AOR user is the number, the digest user the trunk's `authUser` else the
/// number, the registrar host the trunk's `domain` else its `server`, and requests go to
/// `server` over the trunk's transport).
#[derive(Clone)]
pub struct OutboundRegistration {
    pub id: Uuid,
    pub tenant: AccountId,
    pub source: RegistrationSource,
    /// User part of the address of record (To/From).
    pub aor_user: String,
    /// Registrar: `host`, `host:port`, or a `sip:`/`sips:` URI (Request-URI and AOR domain).
    pub registrar: String,
    /// Where to send the request, when not to the registrar itself (outbound proxy, trunk
    /// server): same accepted forms.
    pub send_to: Option<String>,
    /// Transport the trunk asks for (Dasha); Ultravox says it with `;transport=`.
    pub transport: Option<Transport>,
    /// Digest username, when it differs from `aor_user`.
    pub auth_user: Option<String>,
    pub password: Option<SecretString>,
    /// Why the stored row cannot be used as it is (a password sealed with a key that is not
    /// configured, a value that does not parse): the engine shows it as a failed state
    /// instead of registering, and the other registrations load as usual.
    pub unusable: Option<String>,
    /// Bumps whenever any input of the registration changes (its rows' `updated_at`).
    pub version: Timestamp,
}

/// A Dasha phone number with what its trunk says, as read from the store, before the rule of
/// [`OutboundRegistration::for_dasha_number`] makes a registration of it.
pub struct DashaNumberOnTrunk {
    pub id: Uuid,
    pub tenant: AccountId,
    pub phone_number: String,
    pub server: String,
    /// As stored; one that is not `udp`, `tcp` or `tls` makes the registration unusable.
    pub transport: String,
    pub domain: Option<String>,
    pub auth_user: Option<String>,
    pub password: Option<SecretString>,
    /// Why the row cannot be used already (e.g. a password no configured key opens).
    pub unusable: Option<String>,
    /// The later of the number's and the trunk's `updated_at`.
    pub version: Timestamp,
}

impl OutboundRegistration {
    /// The id the API shows it by: the Ultravox registration id, or the Dasha phone number.
    pub fn public_id(&self) -> String {
        match self.source {
            RegistrationSource::Ultravox => self.id.to_string(),
            RegistrationSource::DashaNumber => self.aor_user.clone(),
        }
    }

    pub fn kind(&self) -> crate::service::RegistrationKind {
        match self.source {
            RegistrationSource::Ultravox => crate::service::RegistrationKind::Ultravox,
            RegistrationSource::DashaNumber => crate::service::RegistrationKind::Dasha,
        }
    }

    /// The rule for a Dasha phone number with `registration: true` (spec, "Dasha phone-number
    /// registration"): the AOR user is the number exactly as stored; the digest user the
    /// trunk's `authUser`, else the number; the registrar host the trunk's `domain`, else its
    /// `server`; the request goes to `server` over the trunk's transport.
    pub fn for_dasha_number(number: DashaNumberOnTrunk) -> Self {
        let transport = Transport::parse(&number.transport);
        let mut unusable = number.unusable;
        if transport.is_none() {
            unusable.get_or_insert_with(|| {
                format!(
                    "the trunk's transport {:?} is not one of udp, tcp, tls",
                    number.transport
                )
            });
        }
        Self {
            id: number.id,
            tenant: number.tenant,
            source: RegistrationSource::DashaNumber,
            aor_user: number.phone_number,
            registrar: trunk_registrar(number.domain, &number.server),
            send_to: Some(number.server),
            transport,
            auth_user: number.auth_user,
            password: number.password,
            unusable,
            version: number.version,
        }
    }
}

/// The registrar of a phone number on a trunk: the trunk's `domain`, else its `server`.
pub fn trunk_registrar(domain: Option<String>, server: &str) -> String {
    domain.unwrap_or_else(|| server.to_owned())
}

/// An outbound registration of either kind as the registrations list shows it, with the status
/// the engine last stored; no secret. Phone numbers with `registration: false` are listed too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationSummary {
    /// The row's id, which keys its status (for a phone number, its internal id).
    pub id: Uuid,
    pub source: RegistrationSource,
    /// The Ultravox `username`, or the phone number as stored.
    pub aor_user: String,
    /// The digest username where one is set: Ultravox `authUser`, or the trunk's `authUser`.
    pub auth_user: Option<String>,
    /// Ultravox `proxy`; for a phone number its trunk's registrar ([`trunk_registrar`]).
    pub registrar: String,
    /// A phone number's trunk.
    pub trunk_id: Option<Uuid>,
    /// False for a phone number with `registration: false`.
    pub registering: bool,
    pub created_at: Timestamp,
    pub status: Option<RegistrationStatus>,
}

impl std::fmt::Debug for OutboundRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundRegistration")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("source", &self.source)
            .field("aor_user", &self.aor_user)
            .field("registrar", &self.registrar)
            .field("send_to", &self.send_to)
            .field("transport", &self.transport)
            .field("auth_user", &self.auth_user)
            .field("unusable", &self.unusable)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The engine's state for one outbound registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationState {
    Disabled,
    Pending,
    Registering,
    Authenticating,
    Registered,
    Unregistering,
    FailedAuth,
    FailedTimeout,
    FailedTransport,
    FailedRegistrar,
}

impl RegistrationState {
    pub const ALL: [RegistrationState; 10] = [
        Self::Disabled,
        Self::Pending,
        Self::Registering,
        Self::Authenticating,
        Self::Registered,
        Self::Unregistering,
        Self::FailedAuth,
        Self::FailedTimeout,
        Self::FailedTransport,
        Self::FailedRegistrar,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Pending => "pending",
            Self::Registering => "registering",
            Self::Authenticating => "authenticating",
            Self::Registered => "registered",
            Self::Unregistering => "unregistering",
            Self::FailedAuth => "failed_auth",
            Self::FailedTimeout => "failed_timeout",
            Self::FailedTransport => "failed_transport",
            Self::FailedRegistrar => "failed_registrar",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_failed(self) -> bool {
        matches!(
            self,
            Self::FailedAuth | Self::FailedTimeout | Self::FailedTransport | Self::FailedRegistrar
        )
    }

    /// Words for a person reading a status page.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Disabled => "registration is disabled",
            Self::Pending => "waiting for the first attempt",
            Self::Registering => "REGISTER sent, waiting for the registrar",
            Self::Authenticating => "answering the registrar's digest challenge",
            Self::Registered => "registered",
            Self::Unregistering => "removing the binding",
            Self::FailedAuth => "the registrar rejected the credentials",
            Self::FailedTimeout => "the registrar did not answer in time",
            Self::FailedTransport => "the registrar could not be reached",
            Self::FailedRegistrar => "the registrar refused the registration",
        }
    }
}

/// Who caused the last failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedBy {
    /// A local timeout or transport error: nothing came back.
    Local,
    /// The registrar replied with an error.
    Remote,
}

impl FailedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailedBy::Local => "local",
            FailedBy::Remote => "remote",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "local" => Some(FailedBy::Local),
            "remote" => Some(FailedBy::Remote),
            _ => None,
        }
    }
}

/// One row of the status table, written only by the SIP engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationStatus {
    pub state: RegistrationState,
    pub last_code: Option<u16>,
    pub last_phrase: Option<String>,
    pub failed_by: Option<FailedBy>,
    pub last_attempt_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub transport: Option<Transport>,
    pub remote: Option<String>,
    pub updated_at: Timestamp,
}

/// One REGISTER transaction of an outbound registration, for its history. Never carries an
/// Authorization value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationAttempt {
    pub registration_id: Uuid,
    pub tenant: AccountId,
    pub at: Timestamp,
    pub transport: Transport,
    pub remote: Option<String>,
    /// `REGISTER sip:example.com SIP/2.0`.
    pub request_line: String,
    /// `None` when nothing came back (timeout, transport error).
    pub code: Option<u16>,
    pub phrase: Option<String>,
    pub duration_us: u64,
}

/// The four-valued summary Dasha shows (`registrationStatus.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoarseState {
    Disabled,
    Pending,
    Registered,
    Failed,
}

impl RegistrationStatus {
    /// Nothing attempted yet: `pending` as of `at`.
    pub fn pending(at: Timestamp) -> Self {
        Self {
            state: RegistrationState::Pending,
            last_code: None,
            last_phrase: None,
            failed_by: None,
            last_attempt_at: None,
            expires_at: None,
            next_attempt_at: None,
            consecutive_failures: 0,
            transport: None,
            remote: None,
            updated_at: at,
        }
    }

    /// True while a binding is live: until its `expiresAt`, whether it is being refreshed or
    /// a refresh has just failed (the registrar still holds it). Not once it is being removed.
    pub fn has_live_binding(&self, now: Timestamp) -> bool {
        match self.state {
            RegistrationState::Disabled
            | RegistrationState::Pending
            | RegistrationState::Unregistering => false,
            _ => self.expires_at.is_some_and(|expires| expires > now),
        }
    }

    pub fn coarse(&self, now: Timestamp) -> CoarseState {
        if self.state == RegistrationState::Disabled {
            CoarseState::Disabled
        } else if self.has_live_binding(now) {
            CoarseState::Registered
        } else if self.state.is_failed() {
            CoarseState::Failed
        } else {
            CoarseState::Pending
        }
    }

    /// `401 Unauthorized`-style summary of the last reply, if any.
    pub fn sip_response_message(&self) -> Option<String> {
        let code = self.last_code?;
        Some(match &self.last_phrase {
            Some(phrase) => format!("{code} {phrase}"),
            None => code.to_string(),
        })
    }
}

/// Ultravox `successful`: `null` before the first outcome, `true` while registered (refreshes
/// included), `false` after a failure.
pub fn ultravox_successful(status: Option<&RegistrationStatus>, now: Timestamp) -> Option<bool> {
    let status = status?;
    if status.has_live_binding(now) {
        Some(true)
    } else if status.state.is_failed() {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: RegistrationState, expires_at: Option<i64>) -> RegistrationStatus {
        RegistrationStatus {
            state,
            last_code: Some(401),
            last_phrase: Some("Unauthorized".into()),
            expires_at: expires_at.map(Timestamp::from_micros),
            ..RegistrationStatus::pending(Timestamp::from_micros(0))
        }
    }

    #[test]
    fn successful_is_null_until_an_outcome_and_true_through_refreshes() {
        let now = Timestamp::from_micros(1_000);
        assert_eq!(ultravox_successful(None, now), None);
        let pending = status(RegistrationState::Pending, None);
        assert_eq!(ultravox_successful(Some(&pending), now), None);
        let registered = status(RegistrationState::Registered, Some(5_000));
        assert_eq!(ultravox_successful(Some(&registered), now), Some(true));
        let refreshing = status(RegistrationState::Registering, Some(5_000));
        assert_eq!(ultravox_successful(Some(&refreshing), now), Some(true));
        let first_try = status(RegistrationState::Registering, None);
        assert_eq!(ultravox_successful(Some(&first_try), now), None);
        let failed = status(RegistrationState::FailedAuth, None);
        assert_eq!(ultravox_successful(Some(&failed), now), Some(false));
    }

    #[test]
    fn a_live_binding_wins_over_a_failed_refresh_until_it_expires() {
        let failed_refresh = status(RegistrationState::FailedTimeout, Some(5_000));
        let before = Timestamp::from_micros(1_000);
        let after = Timestamp::from_micros(5_000);
        assert_eq!(
            ultravox_successful(Some(&failed_refresh), before),
            Some(true)
        );
        assert_eq!(failed_refresh.coarse(before), CoarseState::Registered);
        assert_eq!(
            ultravox_successful(Some(&failed_refresh), after),
            Some(false)
        );
        assert_eq!(failed_refresh.coarse(after), CoarseState::Failed);
        let lapsed = status(RegistrationState::Registered, Some(5_000));
        assert_eq!(
            ultravox_successful(Some(&lapsed), after),
            None,
            "not claimed once expired"
        );
    }

    #[test]
    fn coarse_state_and_response_message() {
        let now = Timestamp::from_micros(1_000);
        let failed = status(RegistrationState::FailedAuth, None);
        assert_eq!(failed.coarse(now), CoarseState::Failed);
        assert_eq!(
            failed.sip_response_message().as_deref(),
            Some("401 Unauthorized")
        );
        assert_eq!(
            status(RegistrationState::Disabled, None).coarse(now),
            CoarseState::Disabled
        );
        assert_eq!(
            status(RegistrationState::Unregistering, None).coarse(now),
            CoarseState::Pending
        );
    }

    #[test]
    fn names_round_trip() {
        for state in RegistrationState::ALL {
            assert_eq!(RegistrationState::parse(state.as_str()), Some(state));
        }
        assert_eq!(Transport::parse("TLS"), Some(Transport::Tls));
        assert_eq!(Transport::parse("sctp"), None);
    }
}
