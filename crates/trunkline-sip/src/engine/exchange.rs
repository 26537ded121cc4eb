//! One REGISTER exchange: resolve the next hop, send, answer a digest challenge once, follow a
//! 423 once, and report what happened. A future the engine polls among its own (no task or
//! channel per REGISTER); owns nothing after it returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::{Request, SipMessage};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use tokio::time::Instant;
use trunkline_core::model::{
    FailedBy, OutboundRegistration, RegistrationAttempt, RegistrationState, Transport,
};
use trunkline_core::{AccountId, Timestamp};
use uuid::Uuid;

use crate::digest::{pick, ChallengeRefused, Credentials, DigestSession};
use crate::message::{Register, Reply, PROXY_AUTHORIZATION};
use crate::policy::{self, classify, Bounds, MinExpires, Verdict, ATTEMPT_TIMEOUT};
use crate::target::{to_rsip, Addressing, Target};
use crate::transport::{SipEndpoint, USER_AGENT};

/// Everything an exchange needs, copied out of the engine's slot.
pub struct Exchange {
    pub id: Uuid,
    pub sip: Arc<SipEndpoint>,
    pub addressing: Arc<Addressing>,
    /// The Contact to use (unregistering an existing binding); else built from the endpoint.
    pub contact: Option<Arc<str>>,
    /// The Contact built for the last exchange and the transport it names, reused while the
    /// transport stays the same (no string built per refresh).
    pub own_contact: Option<(Transport, Arc<str>)>,
    /// A dead node's Contact to remove with this REGISTER (see `Register::drop_contact`).
    pub drop_contact: Option<Arc<str>>,
    /// The registration's values this exchange uses (credentials, AOR user).
    pub values: Arc<OutboundRegistration>,
    pub call_id: Arc<str>,
    pub from_tag: Arc<str>,
    /// Last CSeq used on this Call-ID.
    pub cseq: u32,
    pub digest: DigestSession,
    /// 0 unregisters.
    pub expires: u32,
    /// What the registrar's numbers are held to.
    pub bounds: Bounds,
    /// Every REGISTER transaction of this exchange, for the history.
    pub rounds: Vec<Round>,
    /// The last challenge came in a 407 (answer with `Proxy-Authorization`).
    pub proxy_auth: bool,
}

pub enum Outcome {
    Registered {
        granted: u32,
        contact: Arc<str>,
        code: u16,
        phrase: String,
    },
    Unregistered {
        code: u16,
        phrase: String,
    },
    Failed {
        state: RegistrationState,
        code: Option<u16>,
        phrase: Option<String>,
        failed_by: FailedBy,
        retry_after: Option<u32>,
    },
}

pub struct ExchangeResult {
    pub id: Uuid,
    pub cseq: u32,
    pub digest: DigestSession,
    pub addressing: Arc<Addressing>,
    pub transport: Transport,
    pub remote: Option<SocketAddr>,
    pub outcome: Outcome,
    pub was_unregister: bool,
    pub elapsed: Duration,
    pub proxy_auth: bool,
    pub values_version: trunkline_core::Timestamp,
    pub rounds: Vec<Round>,
    pub own_contact: Option<(Transport, Arc<str>)>,
}

/// One REGISTER transaction as it went, kept cheap: the history record
/// ([`RegistrationAttempt`]) is only built for exchanges the history keeps.
#[derive(Debug)]
pub struct Round {
    pub at: Timestamp,
    pub transport: Transport,
    pub remote: SocketAddr,
    /// `None` when nothing came back (timeout, transport error).
    pub code: Option<u16>,
    pub phrase: Option<String>,
    pub duration_us: u64,
}

impl ExchangeResult {
    /// The history records of this exchange's REGISTER transactions.
    pub fn attempts(&self, tenant: &AccountId) -> Vec<RegistrationAttempt> {
        let request_line = crate::message::request_line(&self.addressing.request_uri);
        self.rounds
            .iter()
            .map(|round| RegistrationAttempt {
                registration_id: self.id,
                tenant: tenant.clone(),
                at: round.at,
                transport: round.transport,
                remote: Some(round.remote.to_string()),
                request_line: request_line.clone(),
                code: round.code,
                phrase: round.phrase.clone(),
                duration_us: round.duration_us,
            })
            .collect()
    }

    /// A digest of how the exchange ended on the wire: its final REGISTER's request line,
    /// transport, remote address, response code and phrase (not times or durations).
    pub fn signature(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        if let Some(last) = self.rounds.last() {
            self.addressing.request_uri.hash(&mut hasher);
            last.transport.hash(&mut hasher);
            last.remote.hash(&mut hasher);
            last.code.hash(&mut hasher);
            last.phrase.hash(&mut hasher);
        }
        hasher.finish()
    }

    /// The final response code for the responses metric (`None`: nothing came back).
    pub fn last_code(&self) -> Option<u16> {
        match &self.outcome {
            Outcome::Registered { code, .. } | Outcome::Unregistered { code, .. } => Some(*code),
            Outcome::Failed {
                code: Some(code),
                failed_by: FailedBy::Remote,
                ..
            } => Some(*code),
            Outcome::Failed { .. } => None,
        }
    }
}

fn local_failure(state: RegistrationState, phrase: String) -> Outcome {
    Outcome::Failed {
        state,
        code: None,
        phrase: Some(phrase),
        failed_by: FailedBy::Local,
        retry_after: None,
    }
}

/// Rounds per attempt: the first request, one challenge answer, one 423 retry (and an answer
/// to a challenge of that retry).
const MAX_ROUNDS: usize = 4;

impl Exchange {
    pub async fn run(mut self) -> ExchangeResult {
        let started = Instant::now();
        let was_unregister = self.expires == 0;
        let mut transport = self.addressing.transport;
        let mut remote = None;
        let outcome = match self
            .addressing
            .resolve(&self.sip.resolver, &self.sip.policy)
            .await
        {
            // "cannot resolve next hop: …", or the destination rule that refused every address.
            Err(err) => local_failure(RegistrationState::FailedTransport, err.to_string()),
            Ok(targets) => {
                // RFC 3263 §4.3: on a timeout, a transport error or a 503, try the next target.
                let mut outcome = None;
                for (index, target) in targets.iter().enumerate() {
                    transport = target.transport;
                    remote = Some(target.addr);
                    let result = self.talk(*target).await;
                    if index + 1 == targets.len() || !worth_next_target(&result) {
                        outcome = Some(result);
                        break;
                    }
                    tracing::debug!(id = %self.id, target = %target.addr, "trying the next target");
                }
                outcome.unwrap_or_else(|| {
                    local_failure(
                        RegistrationState::FailedTransport,
                        "no address to try".to_owned(),
                    )
                })
            }
        };
        if let Outcome::Failed {
            state, ref phrase, ..
        } = outcome
        {
            tracing::debug!(id = %self.id, state = state.as_str(), phrase = ?phrase, "REGISTER failed");
        }
        ExchangeResult {
            id: self.id,
            cseq: self.cseq,
            digest: self.digest,
            addressing: self.addressing,
            transport,
            remote,
            outcome,
            was_unregister,
            elapsed: started.elapsed(),
            proxy_auth: self.proxy_auth,
            values_version: self.values.version,
            rounds: self.rounds,
            own_contact: self.own_contact,
        }
    }

    async fn talk(&mut self, next_hop: Target) -> Outcome {
        let transport = next_hop.transport;
        let remote = next_hop.addr;
        // Always the address our resolver chose (rsipstack never re-resolves a name); TLS
        // verifies the next hop's name, see `connect`.
        let target = SipAddr {
            r#type: Some(to_rsip(transport)),
            addr: remote.into(),
        };
        let connection = match self.connect(&target, transport, remote).await {
            Ok(connection) => connection,
            Err(outcome) => return outcome,
        };
        let via_sent_by = self
            .sip
            .public_addr()
            .unwrap_or_else(|| connection.get_addr().addr.to_string());
        let contact = match &self.contact {
            Some(contact) => contact.clone(),
            None => self.own_contact(transport),
        };
        let values = self.values.clone();
        let digest_user = values.auth_user.as_deref().unwrap_or(&values.aor_user);
        let mut expires = self.expires;
        let mut answered_challenge = false;
        let mut followed_423 = false;

        for _ in 0..MAX_ROUNDS {
            self.cseq = self.cseq.wrapping_add(1).max(1);
            let authorization = match &self.values.password {
                Some(password) => {
                    let credentials = Credentials {
                        username: digest_user,
                        password,
                    };
                    let header = if self.digest.challenge().is_some() {
                        self.digest.next_authorization(
                            &credentials,
                            "REGISTER",
                            &self.addressing.request_uri,
                        )
                    } else {
                        None
                    };
                    header.map(|value| (self.digest_header_name(), value))
                }
                None => None,
            };
            // RFC 3261 §8.1.1.7: the magic cookie, then enough randomness to be unique.
            let branch = format!("z9hG4bK{:032x}", rand::random::<u128>());
            let register = Register {
                request_uri: &self.addressing.request_uri,
                aor: &self.addressing.aor,
                call_id: &self.call_id,
                from_tag: &self.from_tag,
                cseq: self.cseq,
                contact: &contact,
                expires,
                drop_contact: self
                    .drop_contact
                    .as_deref()
                    .filter(|stale| expires > 0 && *stale != &*contact),
                authorization,
                via_transport: transport,
                via_sent_by: &via_sent_by,
                branch: &branch,
                user_agent: USER_AGENT,
            };
            let request = match register.to_request() {
                Ok(request) => request,
                Err(err) => {
                    return local_failure(
                        RegistrationState::FailedRegistrar,
                        format!("cannot build REGISTER: {err}"),
                    )
                }
            };
            let response = match self
                .send(
                    request,
                    transport,
                    remote,
                    connection.clone(),
                    target.clone(),
                )
                .await
            {
                Ok(response) => response,
                Err(outcome) => return outcome,
            };
            let reply = Reply::read(&response, &contact);
            match classify(reply.code) {
                Verdict::Registered if expires == 0 => {
                    return Outcome::Unregistered {
                        code: reply.code,
                        phrase: reply.phrase,
                    }
                }
                Verdict::Registered => {
                    self.digest.on_success();
                    return Outcome::Registered {
                        granted: policy::granted_expiry(reply.granted_expires, expires),
                        contact: contact.clone(),
                        code: reply.code,
                        phrase: reply.phrase,
                    };
                }
                Verdict::Challenge => {
                    let fresh = pick(&reply.challenges).cloned();
                    let stale = fresh.as_ref().is_some_and(|c| c.stale());
                    if answered_challenge && !stale {
                        // Our answer was refused with a new challenge: wrong credentials.
                        return remote_failure(RegistrationState::FailedAuth, &reply);
                    }
                    let Some(challenge) = fresh else {
                        return Outcome::Failed {
                            state: RegistrationState::FailedAuth,
                            code: Some(reply.code),
                            phrase: Some(format!(
                                "{} (no supported digest challenge)",
                                reply.phrase
                            )),
                            failed_by: FailedBy::Remote,
                            retry_after: None,
                        };
                    };
                    if self.values.password.is_none() {
                        return Outcome::Failed {
                            state: RegistrationState::FailedAuth,
                            code: Some(reply.code),
                            phrase: Some(format!("{} (no password configured)", reply.phrase)),
                            failed_by: FailedBy::Remote,
                            retry_after: None,
                        };
                    }
                    self.proxy_auth = reply.proxy_challenge;
                    match self.digest.on_challenge(challenge) {
                        Ok(()) => {}
                        Err(ChallengeRefused::Downgrade { offered, proven }) => {
                            return Outcome::Failed {
                                state: RegistrationState::FailedAuth,
                                code: Some(reply.code),
                                phrase: Some(format!(
                                    "{} (digest downgrade refused: {offered} offered after \
                                     {proven} was accepted)",
                                    reply.phrase
                                )),
                                failed_by: FailedBy::Remote,
                                retry_after: None,
                            };
                        }
                        Err(ChallengeRefused::Unsupported(_)) => {
                            return remote_failure(RegistrationState::FailedAuth, &reply)
                        }
                    }
                    answered_challenge = true;
                }
                Verdict::IntervalTooBrief => {
                    match policy::min_expires(reply.min_expires, expires, &self.bounds) {
                        MinExpires::Retry(min) if !followed_423 => {
                            expires = min;
                            followed_423 = true;
                        }
                        MinExpires::TooLong {
                            min_expires,
                            max_expires,
                        } => {
                            return Outcome::Failed {
                                state: RegistrationState::FailedRegistrar,
                                code: Some(reply.code),
                                phrase: Some(format!(
                                    "{} (Min-Expires {min_expires} is above outbound.max_expires_secs {max_expires})",
                                    reply.phrase
                                )),
                                failed_by: FailedBy::Remote,
                                retry_after: reply.retry_after,
                            }
                        }
                        _ => return remote_failure(RegistrationState::FailedRegistrar, &reply),
                    }
                }
                Verdict::Failed(state) => return remote_failure(state, &reply),
            }
        }
        local_failure(
            RegistrationState::FailedRegistrar,
            "too many rounds in one attempt".to_owned(),
        )
    }

    fn digest_header_name(&self) -> &'static str {
        if self.proxy_auth {
            PROXY_AUTHORIZATION
        } else {
            "Authorization"
        }
    }

    /// The connection to send over: UDP's socket at once; a TCP/TLS connection (reused, or
    /// opened within [`ATTEMPT_TIMEOUT`]). TLS connects to `remote` and verifies the
    /// certificate against the next hop's name (RFC 5922), reusing a connection only for the
    /// same name and address.
    async fn connect(
        &self,
        target: &SipAddr,
        transport: Transport,
        remote: SocketAddr,
    ) -> Result<rsipstack::transport::SipConnection, Outcome> {
        let looked_up = match transport {
            Transport::Udp => self
                .sip
                .endpoint
                .inner
                .transport_layer
                .lookup(target, None)
                .await
                .map(|(connection, _)| connection),
            Transport::Tcp | Transport::Tls => {
                let name = self.addressing.tls_name();
                let connecting = async {
                    if transport == Transport::Tls {
                        self.sip.tls_connection(&name, remote).await
                    } else {
                        let layer = &self.sip.endpoint.inner.transport_layer;
                        layer
                            .lookup(target, None)
                            .await
                            .map(|(connection, _)| connection)
                    }
                };
                match tokio::time::timeout(ATTEMPT_TIMEOUT, connecting).await {
                    Ok(looked_up) => looked_up,
                    Err(_) => {
                        return Err(local_failure(
                            RegistrationState::FailedTimeout,
                            format!("connecting to {remote} timed out"),
                        ))
                    }
                }
            }
        };
        looked_up.map_err(|err| {
            local_failure(
                RegistrationState::FailedTransport,
                format!("cannot reach {remote}: {err}"),
            )
        })
    }

    /// `sip:user@host:port;transport=…` for this endpoint over `transport`, built once and
    /// kept for the following exchanges.
    fn own_contact(&mut self, transport: Transport) -> Arc<str> {
        match &self.own_contact {
            Some((cached, contact)) if *cached == transport => contact.clone(),
            _ => {
                let contact: Arc<str> = format!(
                    "sip:{}@{};transport={}",
                    self.values.aor_user,
                    self.sip.contact_hostport(transport),
                    transport.as_str()
                )
                .into();
                self.own_contact = Some((transport, contact.clone()));
                contact
            }
        }
    }

    /// One client transaction, recorded for the history; a final response, or the failure.
    async fn send(
        &mut self,
        request: Request,
        transport: Transport,
        remote: SocketAddr,
        connection: rsipstack::transport::SipConnection,
        target: SipAddr,
    ) -> Result<rsipstack::sip::Response, Outcome> {
        let at = Timestamp::now();
        let started = Instant::now();
        let result = self.transact(request, connection, target).await;
        let (code, phrase) = match &result {
            Ok(response) => (
                Some(response.status_code.code()),
                Some(crate::message::reason_phrase(response)),
            ),
            Err(Outcome::Failed { code, phrase, .. }) => (*code, phrase.clone()),
            Err(_) => (None, None),
        };
        self.rounds.push(Round {
            at,
            transport,
            remote,
            code,
            phrase,
            duration_us: started.elapsed().as_micros() as u64,
        });
        result
    }

    async fn transact(
        &self,
        request: Request,
        connection: rsipstack::transport::SipConnection,
        target: SipAddr,
    ) -> Result<rsipstack::sip::Response, Outcome> {
        let key =
            TransactionKey::from_request(&request, TransactionRole::Client).map_err(|err| {
                local_failure(
                    RegistrationState::FailedRegistrar,
                    format!("bad request: {err}"),
                )
            })?;
        let mut tx = Transaction::new_client(key, request, self.sip.inner(), Some(connection));
        tx.destination = Some(target);
        tx.send().await.map_err(|err| {
            local_failure(
                RegistrationState::FailedTransport,
                format!("send failed: {err}"),
            )
        })?;
        // rsipstack's Timer F (set to ATTEMPT_TIMEOUT, see `transport`) ends a transaction
        // that gets no final response with a local 408, so no timer of our own is needed
        // (nor would one be safe: `receive` must not be dropped half-way).
        while let Some(message) = tx.receive().await {
            let SipMessage::Response(response) = message else {
                continue;
            };
            let code = response.status_code.code();
            if code < 200 {
                continue;
            }
            if is_local(&response) {
                return Err(if code == 408 {
                    local_failure(
                        RegistrationState::FailedTimeout,
                        format!("no final response within {} s", ATTEMPT_TIMEOUT.as_secs()),
                    )
                } else {
                    local_failure(
                        RegistrationState::FailedTransport,
                        format!("{} (local)", response.status_code),
                    )
                });
            }
            return Ok(response);
        }
        Err(local_failure(
            RegistrationState::FailedTimeout,
            "the transaction ended without a final response".to_owned(),
        ))
    }
}

fn remote_failure(state: RegistrationState, reply: &Reply) -> Outcome {
    Outcome::Failed {
        state,
        code: Some(reply.code),
        phrase: Some(reply.phrase.clone()),
        failed_by: FailedBy::Remote,
        retry_after: reply.retry_after,
    }
}

/// rsipstack answers on its own behalf (a 408 on Timer F, a 503 when a stream write fails);
/// those carry no To tag, which every real UAS response to a REGISTER has (RFC 3261 §8.2.6.2).
fn is_local(response: &rsipstack::sip::Response) -> bool {
    use rsipstack::sip::Header;
    !response.headers.iter().any(|h| match h {
        Header::To(to) => to.value().contains("tag="),
        _ => false,
    })
}

/// Whether an outcome lets the next DNS target be tried: nothing came back, or 503.
fn worth_next_target(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Failed {
            failed_by: FailedBy::Local,
            state,
            ..
        } => {
            matches!(
                state,
                RegistrationState::FailedTimeout | RegistrationState::FailedTransport
            )
        }
        Outcome::Failed {
            code: Some(503), ..
        } => true,
        _ => false,
    }
}
