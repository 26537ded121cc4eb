//! The inbound registrar: devices REGISTER to trunkline with the Vobiz credentials.
//!
//! A REGISTER to `{account_id}.{sip.domain}` is answered, in this order:
//! 1. a source address cooling down after too many failed authentications → 403, no digest
//!    work ([`throttle`]);
//! 2. malformed (To, Call-ID, CSeq, Contact, Expires) → 400 with a `Warning` naming the header
//!    ([`request`]); a domain that is no tenant's realm → 404;
//! 3. no `Authorization` for the realm → 401 with one `WWW-Authenticate` per
//!    `sip.challenge_algorithms`, `qop="auth"` and a stateless nonce (HMAC over time and realm
//!    with `sip.nonce_secret`, [`trunkline_digest::server::NonceKey`]);
//! 4. the digest: Authorization username other than the To user → 403; unknown user, another
//!    tenant's credential, a wrong password, an algorithm not offered, a nonce count not above
//!    the last one for its nonce → the same fresh 401 as the first (no enumeration: an unknown
//!    user costs the same hash as a known one), an answer without `qop` (no nonce count to stop
//!    a replay) or for another Request-URI, each counted as a failure of that source; a
//!    right answer with an expired nonce → 401 `stale=true`; a nonce we did not issue (from
//!    before a restart with a random secret, say) → fresh 401, not counted;
//! 5. a disabled credential → 403 (only after a right answer, so it tells nothing to someone
//!    without the password);
//! 6. the contacts ([`bindings`]): 423 with `Min-Expires`, or the changes stored (group
//!    commit, [`writer`]) and then 200 listing every current contact with its remaining
//!    expiry.
//!
//! The directory of credentials ([`directory`]) and the bindings are in memory, loaded from the
//! store at start and kept current by change events (a username the directory does not know is
//! looked up in the store before it is called unknown); every binding change is on disk before
//! the 200 goes out, and a sweeper drops expired bindings (memory every second, the table
//! every 10 s; the API never shows an expired one). Each REGISTER is answered in a task of its
//! own on the SIP thread.

pub mod bindings;
pub mod directory;
pub mod request;
pub mod throttle;
pub mod writer;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rsipstack::sip::{Header, HeadersExt, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{SipAddr, SipConnection};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trunkline_core::events::{ChangeEvent, EntityKind};
use trunkline_core::model::Transport;
use trunkline_core::store::Store;
use trunkline_core::{AccountId, Timestamp};
use trunkline_digest::server::{
    challenge, DigestResponse, NcVerdict, NonceCheck, NonceCounts, NonceKey,
};
use trunkline_digest::Algorithm;

use bindings::{Bindings, Limits, Origin, Refusal};
use directory::{Credential, Directory};
use request::{Malformed, RegisterRequest};
use throttle::{Throttle, ThrottleSettings};
use writer::BindingWriter;

/// Settings (from `sip.*` and `registrar.*`); `Debug` shows no secret (`SecretString`).
#[derive(Clone, Debug)]
pub struct RegistrarSettings {
    /// `sip.domain`: realms are `{account_id}.{domain}`.
    pub domain: String,
    /// `sip.nonce_secret` (nodes sharing it accept each other's nonces); random if unset.
    pub nonce_secret: Option<SecretString>,
    pub nonce_lifetime: Duration,
    /// `sip.challenge_algorithms`, in the order of the `WWW-Authenticate` headers.
    pub challenge_algorithms: Vec<Algorithm>,
    pub limits: Limits,
    pub throttle: ThrottleSettings,
}

/// Nonces whose nonce counts are remembered at once (see [`NonceCounts`]).
const NONCE_COUNT_CAPACITY: usize = 200_000;
/// How often expired bindings leave memory.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How often they leave the table.
const STORE_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How long "no such tenant" is remembered for a realm (a flood of REGISTERs to a made-up
/// account id costs one store read per this period).
const UNKNOWN_TENANT_TTL: Duration = Duration::from_secs(10);
const MAX_UNKNOWN_TENANTS: usize = 10_000;

/// The registrar, shared by the REGISTER tasks on the SIP thread.
pub struct Registrar {
    settings: RegistrarSettings,
    /// `.{domain}`, lower case.
    domain_suffix: String,
    store: Arc<dyn Store>,
    store_runtime: tokio::runtime::Handle,
    nonce_key: NonceKey,
    state: RefCell<State>,
    writer: BindingWriter,
    events: RefCell<Option<broadcast::Receiver<ChangeEvent>>>,
    /// True once the directory and the bindings are loaded; REGISTERs wait for it.
    loaded: watch::Sender<bool>,
    metrics: Metrics,
}

struct State {
    directory: Directory,
    bindings: Bindings,
    nonce_counts: NonceCounts,
    throttle: Throttle,
    /// Realms found to be no tenant's, and when.
    unknown_tenants: HashMap<AccountId, Instant>,
}

/// What a REGISTER gets.
struct Answer {
    code: StatusCode,
    headers: Vec<Header>,
    outcome: &'static str,
}

impl Answer {
    fn new(code: StatusCode, outcome: &'static str) -> Self {
        Self {
            code,
            headers: Vec::new(),
            outcome,
        }
    }

    fn with(mut self, header: Header) -> Self {
        self.headers.push(header);
        self
    }

    fn malformed(Malformed(what): Malformed) -> Self {
        Self::new(StatusCode::BadRequest, "bad_request").with(warning(what))
    }
}

fn warning(text: &str) -> Header {
    Header::Warning(format!("399 trunkline \"{text}\"").into())
}

/// Why a digest answer failed (metrics only: the reply never says).
#[derive(Debug, Clone, Copy)]
enum AuthFailure {
    Malformed,
    UnknownUser,
    WrongPassword,
    AlgorithmNotOffered,
    NonceCountReplay,
}

impl AuthFailure {
    fn label(self) -> &'static str {
        match self {
            AuthFailure::Malformed => "malformed",
            AuthFailure::UnknownUser => "unknown_user",
            AuthFailure::WrongPassword => "wrong_password",
            AuthFailure::AlgorithmNotOffered => "algorithm_not_offered",
            AuthFailure::NonceCountReplay => "nonce_count_replay",
        }
    }
}

struct Metrics {
    bindings: metrics::Gauge,
    blocked_sources: metrics::Gauge,
    throttled_sources: metrics::Counter,
}

impl Metrics {
    fn new() -> Self {
        Self {
            bindings: metrics::gauge!("trunkline_registrar_bindings"),
            blocked_sources: metrics::gauge!("trunkline_registrar_blocked_sources"),
            throttled_sources: metrics::counter!("trunkline_registrar_sources_throttled_total"),
        }
    }

    fn outcome(outcome: &'static str) {
        metrics::counter!("trunkline_registrar_registers_total", "outcome" => outcome).increment(1);
    }

    fn digest_failure(failure: AuthFailure) {
        metrics::counter!("trunkline_registrar_digest_failures_total", "reason" => failure.label())
            .increment(1);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Registrar {
    pub fn new(
        settings: RegistrarSettings,
        store: Arc<dyn Store>,
        store_runtime: tokio::runtime::Handle,
        events: broadcast::Receiver<ChangeEvent>,
    ) -> Rc<Self> {
        let nonce_key = match &settings.nonce_secret {
            Some(secret) => NonceKey::new(secret.expose_secret().as_bytes()),
            None => NonceKey::random(),
        };
        Rc::new(Self {
            domain_suffix: format!(".{}", settings.domain.to_ascii_lowercase()),
            writer: BindingWriter::start(&store_runtime, store.clone()),
            state: RefCell::new(State {
                directory: Directory::default(),
                bindings: Bindings::default(),
                nonce_counts: NonceCounts::new(NONCE_COUNT_CAPACITY),
                throttle: Throttle::new(settings.throttle),
                unknown_tenants: HashMap::new(),
            }),
            settings,
            store,
            store_runtime,
            nonce_key,
            events: RefCell::new(Some(events)),
            loaded: watch::channel(false).0,
            metrics: Metrics::new(),
        })
    }

    /// Runs a store call on the store's runtime, not the SIP thread (rows stream from SQLite's
    /// thread, and the SIP thread pauses before each sleep); a task that failed to finish reads
    /// as an error like the store's own.
    async fn on_store<T, F, Fut>(&self, call: F) -> Result<T, String>
    where
        F: FnOnce(Arc<dyn Store>) -> Fut,
        Fut: std::future::Future<Output = Result<T, trunkline_core::StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        match self.store_runtime.spawn(call(self.store.clone())).await {
            Ok(result) => result.map_err(|err| err.to_string()),
            Err(join) => Err(join.to_string()),
        }
    }

    /// Loads the directory and the bindings, then keeps them current until `stop`.
    pub async fn run(self: Rc<Self>, stop: CancellationToken) {
        let Some(mut events) = self.events.borrow_mut().take() else {
            return;
        };
        tokio::select! {
            () = self.load_all() => {}
            () = stop.cancelled() => return,
        }
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut store_sweep = tokio::time::interval(STORE_SWEEP_INTERVAL);
        store_sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = sweep.tick() => self.sweep(),
                _ = store_sweep.tick() => self.sweep_store(),
                event = events.recv() => match event {
                    Ok(event) => self.on_change(event).await,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "registrar missed change events; reloading");
                        self.load_all().await;
                    }
                    Err(broadcast::error::RecvError::Closed) => stop.cancelled().await,
                },
                () = stop.cancelled() => break,
            }
        }
    }

    /// Reads everything from the store, retrying until it answers.
    async fn load_all(&self) {
        let mut pause = Duration::from_millis(250);
        loop {
            let loaded = self
                .on_store(|store| async move {
                    let tenants = store.tenants().await?;
                    let credentials = store.inbound_credential_directory().await?;
                    let bindings = store.live_inbound_bindings(Timestamp::now()).await?;
                    Ok((tenants, credentials, bindings))
                })
                .await;
            match loaded {
                Ok((tenants, credentials, bindings)) => {
                    let mut state = self.state.borrow_mut();
                    state.directory.load(
                        tenants
                            .into_iter()
                            .map(|tenant| tenant.account_id)
                            .collect(),
                        credentials,
                    );
                    state.bindings.load(bindings);
                    self.metrics.bindings.set(state.bindings.len() as f64);
                    drop(state);
                    self.loaded.send_replace(true);
                    return;
                }
                Err(err) => {
                    tracing::error!(error = %err, "registrar cannot load credentials; retrying")
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    }

    /// A credential changed: re-read it; a disabled or deleted one loses its bindings (the
    /// store removed them in the same transaction).
    async fn on_change(&self, event: ChangeEvent) {
        if event.kind != EntityKind::InboundCredential {
            return;
        }
        let (tenant, id) = (event.tenant, event.id);
        let read = self
            .on_store(
                |store| async move { store.inbound_credential_with_hashes(&tenant, id).await },
            )
            .await;
        let mut state = self.state.borrow_mut();
        match read {
            Ok(Some((credential, hashes))) => {
                let enabled = credential.enabled;
                state.directory.put(credential, hashes);
                if !enabled {
                    state.bindings.remove_credential(id);
                }
            }
            Ok(None) => {
                state.directory.remove(id);
                state.bindings.remove_credential(id);
            }
            Err(err) => {
                tracing::warn!(error = %err, %id, "registrar cannot re-read a credential");
                // Fail safe: a credential we cannot read does not authenticate.
                state.directory.remove(id);
            }
        }
        self.metrics.bindings.set(state.bindings.len() as f64);
    }

    fn sweep(&self) {
        let mut state = self.state.borrow_mut();
        state.bindings.sweep(Timestamp::now());
        let now = Instant::now();
        state.throttle.sweep(now);
        state
            .unknown_tenants
            .retain(|_, seen| now.duration_since(*seen) < UNKNOWN_TENANT_TTL);
        let oldest_useful = unix_now().saturating_sub(self.settings.nonce_lifetime.as_secs());
        state.nonce_counts.forget_older_than(oldest_useful);
        self.metrics.bindings.set(state.bindings.len() as f64);
        self.metrics
            .blocked_sources
            .set(state.throttle.blocked(now) as f64);
    }

    fn sweep_store(&self) {
        let store = self.store.clone();
        self.store_runtime.spawn(async move {
            if let Err(err) = store
                .delete_expired_inbound_bindings(Timestamp::now())
                .await
            {
                tracing::warn!(error = %err, "cannot delete expired bindings");
            }
        });
    }

    /// Answers one REGISTER.
    pub async fn handle(self: Rc<Self>, mut tx: Transaction) {
        let answer = self.answer(&tx).await;
        Metrics::outcome(answer.outcome);
        if let Err(err) = tx.reply_with(answer.code, answer.headers, None).await {
            tracing::debug!(error = %err, "cannot answer a REGISTER");
        }
    }

    async fn answer(&self, tx: &Transaction) -> Answer {
        let Some((transport, source)) = origin(tx) else {
            return Answer::malformed(Malformed("Bad Via"));
        };
        if self
            .state
            .borrow()
            .throttle
            .is_blocked(source.ip(), Instant::now())
        {
            return Answer::new(StatusCode::Forbidden, "throttled");
        }
        let request = match RegisterRequest::read(&tx.original) {
            Ok(request) => request,
            Err(malformed) => return Answer::malformed(malformed),
        };
        let Some(tenant) = self.tenant_of(&request.domain) else {
            return Answer::new(StatusCode::NotFound, "unknown_realm");
        };
        // Wait for the first load (a REGISTER in the first moments after start).
        let mut loaded = self.loaded.subscribe();
        let _ = loaded.wait_for(|loaded| *loaded).await;
        if !self.tenant_exists(&tenant).await {
            return Answer::new(StatusCode::NotFound, "unknown_realm");
        }
        let realm = format!("{tenant}{}", self.domain_suffix);

        // The first Authorization for our realm; one that names it but does not parse is a
        // failed answer, not a missing one.
        let mut ours = None;
        for value in &request.authorizations {
            match DigestResponse::parse(value) {
                Ok(response) if response.realm.eq_ignore_ascii_case(&realm) => {
                    ours = Some(Ok(response));
                    break;
                }
                Err(_) if looks_like_ours(value, &realm) => {
                    ours = Some(Err(()));
                    break;
                }
                _ => {}
            }
        }
        let response = match ours {
            None => return self.challenge(&realm, false, "challenged"),
            Some(Ok(response)) => response,
            Some(Err(())) => return self.failed(source.ip(), &realm, AuthFailure::Malformed),
        };
        if response.username != request.user {
            return Answer::new(StatusCode::Forbidden, "username_mismatch");
        }
        // Without qop there is no nonce count, so nothing to stop a replay: refused, as is an
        // answer computed for another Request-URI (RFC 7616 §3.4.6).
        if response.qop.is_none() || !uri_matches(&response.uri, &tx.original.uri) {
            return self.failed(source.ip(), &realm, AuthFailure::Malformed);
        }
        let nonce = self.nonce_key.check(
            &response.nonce,
            &realm,
            unix_now(),
            self.settings.nonce_lifetime.as_secs(),
        );
        if nonce == NonceCheck::Invalid {
            return self.challenge(&realm, false, "challenged");
        }
        let credential = self.credential(&tenant, &response.username).await;
        let credential = match credential {
            Some(credential)
                if response.verify("REGISTER", ha1_for(&credential, response.algorithm)) =>
            {
                credential
            }
            Some(_) => return self.failed(source.ip(), &realm, AuthFailure::WrongPassword),
            None => {
                // The same work as for a known user, so timing tells nothing.
                let _ =
                    response.verify("REGISTER", &UNKNOWN_USER_HA1[..ha1_len(response.algorithm)]);
                return self.failed(source.ip(), &realm, AuthFailure::UnknownUser);
            }
        };
        if !self
            .settings
            .challenge_algorithms
            .contains(&response.algorithm)
        {
            return self.failed(source.ip(), &realm, AuthFailure::AlgorithmNotOffered);
        }
        let NonceCheck::Fresh { issued_at } = nonce else {
            return self.challenge(&realm, true, "stale");
        };
        if let Some(nc) = response.nc {
            let verdict =
                self.state
                    .borrow_mut()
                    .nonce_counts
                    .admit(&response.nonce, issued_at, nc);
            match verdict {
                NcVerdict::Accept => {}
                NcVerdict::Replay => {
                    return self.failed(source.ip(), &realm, AuthFailure::NonceCountReplay)
                }
                NcVerdict::Forgotten => return self.challenge(&realm, true, "stale"),
            }
        }
        if !credential.enabled {
            return Answer::new(StatusCode::Forbidden, "disabled");
        }
        self.register(&credential, &request, transport, source)
            .await
    }

    /// Applies the contacts, stores them, and lists the current ones.
    async fn register(
        &self,
        credential: &Credential,
        request: &RegisterRequest,
        transport: Transport,
        source: SocketAddr,
    ) -> Answer {
        let origin = Origin {
            source: format!("{}:{source}", transport.as_str()),
            transport,
        };
        let changes = self.state.borrow_mut().bindings.apply(
            &credential.tenant,
            credential.id,
            request,
            &origin,
            &self.settings.limits,
            Timestamp::now(),
        );
        let changes = match changes {
            Ok(changes) => changes,
            Err(Refusal::IntervalTooBrief(min)) => {
                return Answer::new(StatusCode::IntervalTooBrief, "interval_too_brief")
                    .with(Header::MinExpires(min.to_string().into()))
            }
            Err(Refusal::Bad(what)) => return Answer::malformed(Malformed(what)),
        };
        let changed = !changes.is_empty();
        if self.writer.write(changes).await.is_err() {
            self.reload_credential(credential).await;
            return Answer::new(StatusCode::ServerInternalError, "store_failed")
                .with(Header::RetryAfter("5".into()));
        }
        let state = self.state.borrow();
        self.metrics.bindings.set(state.bindings.len() as f64);
        let contacts = state.bindings.current(credential.id, Timestamp::now());
        let mut answer = Answer::new(
            StatusCode::OK,
            match (changed, contacts.is_empty()) {
                (false, _) => "queried",
                (true, true) => "unregistered",
                (true, false) => "registered",
            },
        );
        for (contact, remaining) in contacts {
            answer = answer.with(Header::Contact(
                format!("<{contact}>;expires={remaining}").into(),
            ));
        }
        answer
    }

    /// After a failed write: the memory follows the store again for this credential.
    async fn reload_credential(&self, credential: &Credential) {
        let (tenant, id) = (credential.tenant.clone(), credential.id);
        let read = self
            .on_store(
                |store| async move { store.inbound_bindings(&tenant, id, Timestamp::now()).await },
            )
            .await;
        let mut state = self.state.borrow_mut();
        match read {
            Ok(bindings) => state.bindings.reset_credential(id, bindings),
            // Unknown: drop them from memory (the table's copy still lists them).
            Err(_) => {
                state.bindings.remove_credential(id);
            }
        }
    }

    fn challenge(&self, realm: &str, stale: bool, outcome: &'static str) -> Answer {
        let nonce = self.nonce_key.issue(realm, unix_now());
        let mut answer = Answer::new(StatusCode::Unauthorized, outcome);
        for algorithm in &self.settings.challenge_algorithms {
            answer = answer.with(Header::WwwAuthenticate(
                challenge(realm, &nonce, *algorithm, stale).into(),
            ));
        }
        answer
    }

    /// A failed authentication: counted against the source, answered like a first REGISTER.
    fn failed(&self, source: IpAddr, realm: &str, failure: AuthFailure) -> Answer {
        Metrics::digest_failure(failure);
        let blocked = self
            .state
            .borrow_mut()
            .throttle
            .failed(source, Instant::now());
        if blocked {
            self.metrics.throttled_sources.increment(1);
            tracing::warn!(%source, "too many failed SIP authentications; refusing this source for a while");
        }
        self.challenge(realm, false, "auth_failed")
    }

    /// The credential a device names: from the directory, else from the store (created a
    /// moment ago, before its change event reached us, or through another node).
    async fn credential(&self, tenant: &AccountId, username: &str) -> Option<Arc<Credential>> {
        if let Some(found) = self.state.borrow().directory.find(tenant, username) {
            return Some(found);
        }
        let (owner, name) = (tenant.clone(), username.to_owned());
        let read = self
            .on_store(
                |store| async move { store.inbound_credential_by_username(&owner, &name).await },
            )
            .await;
        match read {
            Ok(Some((credential, hashes))) => {
                let mut state = self.state.borrow_mut();
                state.directory.put(credential, hashes);
                state.directory.find(tenant, username)
            }
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(error = %err, "registrar cannot read a credential");
                None
            }
        }
    }

    /// The tenant whose realm `domain` is, by its form (`{account_id}.{sip.domain}`).
    fn tenant_of(&self, domain: &str) -> Option<AccountId> {
        let label = domain.strip_suffix(self.domain_suffix.as_str())?;
        AccountId::parse(&label.to_ascii_uppercase())
    }

    /// Whether the tenant exists: known to the directory, else asked of the store (a "no"
    /// remembered for a while).
    async fn tenant_exists(&self, tenant: &AccountId) -> bool {
        {
            let state = self.state.borrow();
            if state.directory.has_tenant(tenant) {
                return true;
            }
            if state.unknown_tenants.contains_key(tenant) {
                return false;
            }
        }
        let id = tenant.clone();
        let found = self
            .on_store(|store| async move { store.tenant(&id).await })
            .await;
        let mut state = self.state.borrow_mut();
        match found {
            Ok(Some(_)) => {
                state.directory.add_tenant(tenant.clone());
                true
            }
            Ok(None) => {
                if state.unknown_tenants.len() < MAX_UNKNOWN_TENANTS {
                    state.unknown_tenants.insert(tenant.clone(), Instant::now());
                }
                false
            }
            Err(_) => false,
        }
    }
}

/// A made-up HA1 to verify unknown users against (64 hex digits; MD5 uses the first 32).
const UNKNOWN_USER_HA1: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn ha1_len(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Md5 | Algorithm::Md5Sess => 32,
        Algorithm::Sha256 | Algorithm::Sha256Sess => 64,
    }
}

fn ha1_for(credential: &Credential, algorithm: Algorithm) -> &str {
    match algorithm {
        Algorithm::Md5 | Algorithm::Md5Sess => &credential.hashes.md5,
        Algorithm::Sha256 | Algorithm::Sha256Sess => &credential.hashes.sha256,
    }
}

/// Whether a digest `uri` names the Request-URI: the same text (case aside), or the same user,
/// host and port.
fn uri_matches(digest_uri: &str, request_uri: &rsipstack::sip::Uri) -> bool {
    if digest_uri.eq_ignore_ascii_case(&request_uri.to_string()) {
        return true;
    }
    rsipstack::sip::Uri::try_from(digest_uri).is_ok_and(|uri| {
        uri.user() == request_uri.user()
            && uri
                .host_with_port
                .to_string()
                .eq_ignore_ascii_case(&request_uri.host_with_port.to_string())
    })
}

/// A `Digest` Authorization naming our realm that failed to parse.
fn looks_like_ours(value: &str, realm: &str) -> bool {
    let value = value.trim_start();
    value
        .get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("digest"))
        && value
            .to_ascii_lowercase()
            .contains(&realm.to_ascii_lowercase())
}

/// How the REGISTER came and from where: the stream's peer for TCP/TLS; for UDP the top Via
/// as the transport layer rewrote it on receipt (`received`, `rport`: the datagram's source).
fn origin(tx: &Transaction) -> Option<(Transport, SocketAddr)> {
    let connection = tx.connection.as_ref()?;
    let transport = match connection {
        SipConnection::Udp(_) => Transport::Udp,
        SipConnection::Tls(_) | SipConnection::TlsListener(_) | SipConnection::TlsPlatform(_) => {
            Transport::Tls
        }
        _ => Transport::Tcp,
    };
    if connection.is_reliable() {
        if let Some(remote) = connection.get_remote_addr() {
            return remote.get_socketaddr().ok().map(|addr| (transport, addr));
        }
    }
    let via = tx.original.via_header().ok()?;
    let (via_transport, host_with_port) = SipConnection::parse_target_from_via(via).ok()?;
    let addr = SipAddr {
        r#type: Some(via_transport),
        addr: host_with_port,
    }
    .get_socketaddr()
    .ok()?;
    Some((transport, addr))
}
