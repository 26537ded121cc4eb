//! Kamailio (Debian's 5.6) as a real SIP registrar for the outbound registration engine's tests.
//!
//! This module owns the peer, one instance per test:
//! - a temporary directory holding a generated `kamailio.cfg`, two SQLite databases in
//!   Debian's own schema from `/usr/share/kamailio/db_sqlite/` — `subscribers.db` (`version`,
//!   `subscriber`: auth_db only reads it) and `kamailio.db` (`version`, `location`,
//!   `location_attrs`), each put in WAL mode with the `sqlite3` CLI before Kamailio opens it —
//!   and, with TLS, a throwaway CA plus a server certificate for `127.0.0.1`/`localhost`
//!   made with the `openssl` CLI ([`Kamailio::ca_cert`] is what a client must trust);
//! - the process: `kamailio -DD -E -f cfg -w dir -P pidfile -m 64 -M 8` in the foreground, with
//!   `children=1` and `tcp_children=1` (SQLite without a busy timeout tolerates one writer; the
//!   password checks read another file, so they never meet that writer's lock);
//! - its ports: free loopback ports picked per transport (bind port 0, read, release; start is
//!   retried with fresh ports when Kamailio reports "Address already in use") and kept across
//!   [`Kamailio::restart`];
//! - its stderr: every line is kept; a reader thread parses the `TLH ...` lines the generated
//!   script logs for each REGISTER (on arrival) and for the reply it sends, so that REGISTERs
//!   are counted per user and awaited without sleeping;
//! - readiness: the script logs `TLH READY` from `event_route[core:worker-one-init]` (after the
//!   first worker initialised its modules); the harness then checks each transport once (an
//!   OPTIONS answered over UDP and TCP, a TCP connect to the TLS port);
//! - inspection: the `location` table (usrloc `db_mode` 1, write-through: the row is written
//!   before the 200 goes out) read with the `sqlite3` CLI; waiting for a binding polls it every
//!   [`POLL_INTERVAL`] (and on every new log line), since Kamailio offers no event for it.
//!
//! Users are keyed by the To-URI user (`$tU`, the address of record): the first REGISTER of an
//! exchange carries no credentials, so it has no authentication user yet.
//!
//! The log is read by a thread, a moment behind Kamailio, and the script logs a reply just
//! after sending it: a client may hold its answer before the harness has seen the line. Assert
//! on counts and replies through the `wait_*` methods ([`Kamailio::wait_for_answered`],
//! [`Kamailio::wait_for_reply`], [`Kamailio::wait_for_registers`]), not right after a client
//! returns with [`Kamailio::registers`]/[`Kamailio::count`]. Everything here is blocking:
//! from async code, call it through `spawn_blocking` or keep the test synchronous.
//!
//! Needs the Debian packages kamailio, kamailio-sqlite-modules, kamailio-tls-modules, sqlite3
//! and openssl (`scripts/test` installs them).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest as _, Md5};
use serde_json::Value;
use sha2::Sha256;
use tempfile::TempDir;

/// The Kamailio binary (Debian installs it on the PATH).
pub const KAMAILIO_BIN: &str = "kamailio";
/// Where Debian's kamailio-sqlite-modules ships the table definitions.
pub const SCHEMA_DIR: &str = "/usr/share/kamailio/db_sqlite";
/// How often [`Kamailio::wait_for_binding`] re-reads the `location` table at the least.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The default realm and registrar domain.
pub const DEFAULT_DOMAIN: &str = "trunkline.test";

const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const START_ATTEMPTS: usize = 5;
/// Marks the lines the generated script logs (`xlog`), after Kamailio's `<script>: ` prefix.
const MARK: &str = "<script>: TLH ";

static PROBE_COUNTER: AtomicU64 = AtomicU64::new(0);

// --- options ---------------------------------------------------------------------------------

/// A SIP transport Kamailio listens on (each on its own port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];

    /// `udp`, `tcp` or `tls`, as in a `transport=` URI parameter and Kamailio's `$pr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// Parses `udp`/`tcp`/`tls` in any case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tls" => Some(Transport::Tls),
            _ => None,
        }
    }
}

/// The digest algorithm Kamailio challenges with (auth modparam `algorithm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
}

impl DigestAlgorithm {
    /// The name in challenges and in the modparam: `MD5` or `SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex digest of `input` (for HA1, HA2 and responses).
    pub fn hex(self, input: &str) -> String {
        let bytes: Vec<u8> = match self {
            DigestAlgorithm::Md5 => Md5::digest(input.as_bytes()).to_vec(),
            DigestAlgorithm::Sha256 => Sha256::digest(input.as_bytes()).to_vec(),
        };
        bytes.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }
}

/// How a subscriber's secret is stored in the `subscriber` table.
#[derive(Clone, Debug)]
pub enum Credential {
    /// Plaintext in the `password` column. When every subscriber has one, auth_db runs with
    /// `calculate_ha1 1` and computes HA1 itself (with the configured algorithm).
    Password(String),
    /// Precomputed hashes: `ha1` = H(user:realm:password), `ha1b` = H(user@domain:realm:password),
    /// with the configured algorithm. Any such subscriber switches auth_db to `calculate_ha1 0`
    /// (column `ha1`); the harness then fills `ha1`/`ha1b` for the plaintext ones itself.
    Ha1 { ha1: String, ha1b: String },
}

/// A row of the `subscriber` table.
#[derive(Clone, Debug)]
pub struct Subscriber {
    pub username: String,
    pub credential: Credential,
}

/// Special answers for one user (keyed by the To-URI user of the REGISTER).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// After successful authentication: `423 Interval Too Brief` with `Min-Expires: min_expires`
    /// when the requested expiry (smallest of `Expires` and the Contact `expires` parameters) is
    /// non-zero and below `min_expires`; otherwise saved as usual. The user must be a subscriber.
    IntervalTooBrief { min_expires: u32 },
    /// Before authentication, every REGISTER: `503 Service Unavailable` with `Retry-After`.
    ServiceUnavailable { retry_after: u32 },
    /// Before authentication, every REGISTER: `403 Forbidden`.
    Forbidden,
    /// Authenticates as a proxy does: `407 Proxy Authentication Required` with
    /// `Proxy-Authenticate`, answered in `Proxy-Authorization` (proxy_challenge /
    /// proxy_authenticate instead of the www_ pair). The user must be a subscriber.
    ProxyAuth,
    /// After successful authentication: the binding is saved at once, the `200 OK` (a bare
    /// one, without the bindings) goes out `delay_ms` later. The user must be a subscriber.
    SlowAnswer { delay_ms: u32 },
    /// Before authentication, every unregister (`Expires: 0`): `503 Service Unavailable` with
    /// `Retry-After`; REGISTERs that ask for a binding are served as usual.
    UnregisterUnavailable { retry_after: u32 },
    /// Before authentication, every REGISTER: `code phrase` with `headers` appended (header
    /// lines each ending in `\r\n`, Kamailio pseudo-variables allowed: `$(ct{nameaddr.uri})`
    /// is the request's Contact URI). A hostile registrar of our own making.
    Reply {
        code: u16,
        phrase: &'static str,
        headers: &'static str,
    },
}

/// How to configure and start Kamailio. Builder methods consume and return the options.
#[derive(Clone, Debug)]
pub struct KamailioOptions {
    pub udp: bool,
    pub tcp: bool,
    pub tls: bool,
    pub algorithm: DigestAlgorithm,
    /// `qop="auth"` in challenges (www_challenge flag 1 and auth modparam `qop`).
    pub qop: bool,
    /// Realm of the challenges and the `domain` column of subscribers. Kamailio does not check
    /// the To/Request-URI domain against it (auth_db and usrloc run with `use_domain 0`).
    pub domain: String,
    pub subscribers: Vec<Subscriber>,
    pub behaviours: Vec<(String, Behaviour)>,
    /// registrar `min_expires` (mode 0: a shorter request is raised to it, not refused).
    pub min_expires: u32,
    /// registrar `max_expires`: a longer request is lowered to it.
    pub max_expires: u32,
    /// registrar `default_expires`: used when the REGISTER carries no expiry at all.
    pub default_expires: u32,
    /// auth `nonce_expire` in seconds: an older nonce gets a fresh 401 with `stale=true`.
    pub nonce_expire: u32,
    /// usrloc `timer_interval`: how often expired bindings are removed.
    pub usrloc_timer_interval: u32,
    /// tls modparam `tls_method`: `TLSv1.2+` (1.2 and 1.3), or `TLSv1.2` only, ... (Kamailio's
    /// own default, `TLSv1`, would refuse modern clients).
    pub tls_method: String,
    /// Kamailio's `debug` level (2 = INFO; the harness needs at least 1 = NOTICE).
    pub debug: i32,
}

impl Default for KamailioOptions {
    fn default() -> Self {
        Self {
            udp: true,
            tcp: false,
            tls: false,
            algorithm: DigestAlgorithm::Md5,
            qop: true,
            domain: DEFAULT_DOMAIN.to_owned(),
            subscribers: Vec::new(),
            behaviours: Vec::new(),
            min_expires: 10,
            max_expires: 3600,
            default_expires: 3600,
            nonce_expire: 300,
            usrloc_timer_interval: 10,
            tls_method: "TLSv1.2+".to_owned(),
            debug: 2,
        }
    }
}

impl KamailioOptions {
    /// Also listen on TCP.
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// Also listen on TLS (generates the CA and server certificate).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Sets the tls modparam `tls_method` (e.g. `TLSv1.2` to refuse TLS 1.3).
    pub fn tls_method(mut self, method: &str) -> Self {
        self.tls_method = method.to_owned();
        self
    }

    /// Do not listen on UDP (at least one transport must remain).
    pub fn without_udp(mut self) -> Self {
        self.udp = false;
        self
    }

    pub fn algorithm(mut self, algorithm: DigestAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    pub fn qop(mut self, on: bool) -> Self {
        self.qop = on;
        self
    }

    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = domain.to_owned();
        self
    }

    /// A subscriber with a plaintext password.
    pub fn subscriber(mut self, username: &str, password: &str) -> Self {
        self.subscribers.push(Subscriber {
            username: username.to_owned(),
            credential: Credential::Password(password.to_owned()),
        });
        self
    }

    /// A subscriber with precomputed hashes (see [`Credential::Ha1`]).
    pub fn subscriber_ha1(mut self, username: &str, ha1: &str, ha1b: &str) -> Self {
        self.subscribers.push(Subscriber {
            username: username.to_owned(),
            credential: Credential::Ha1 {
                ha1: ha1.to_owned(),
                ha1b: ha1b.to_owned(),
            },
        });
        self
    }

    pub fn behaviour(mut self, username: &str, behaviour: Behaviour) -> Self {
        self.behaviours.push((username.to_owned(), behaviour));
        self
    }

    /// `username` gets 423 with `Min-Expires: min_expires` below that expiry.
    pub fn interval_too_brief(self, username: &str, min_expires: u32) -> Self {
        self.behaviour(username, Behaviour::IntervalTooBrief { min_expires })
    }

    /// `username` always gets `code phrase` with `headers` (see [`Behaviour::Reply`]).
    pub fn reply(
        self,
        username: &str,
        code: u16,
        phrase: &'static str,
        headers: &'static str,
    ) -> Self {
        self.behaviour(
            username,
            Behaviour::Reply {
                code,
                phrase,
                headers,
            },
        )
    }

    /// `username`'s unregisters get 503 with `Retry-After: retry_after`.
    pub fn unregister_unavailable(self, username: &str, retry_after: u32) -> Self {
        self.behaviour(username, Behaviour::UnregisterUnavailable { retry_after })
    }

    /// `username` always gets 503 with `Retry-After: retry_after`.
    pub fn service_unavailable(self, username: &str, retry_after: u32) -> Self {
        self.behaviour(username, Behaviour::ServiceUnavailable { retry_after })
    }

    /// `username` always gets 403.
    pub fn forbidden(self, username: &str) -> Self {
        self.behaviour(username, Behaviour::Forbidden)
    }

    /// `username`'s bindings are saved at once and answered `delay_ms` later.
    pub fn slow_answer(self, username: &str, delay_ms: u32) -> Self {
        self.behaviour(username, Behaviour::SlowAnswer { delay_ms })
    }

    /// `username` is challenged with 407 and must answer in `Proxy-Authorization`.
    pub fn proxy_auth(self, username: &str) -> Self {
        self.behaviour(username, Behaviour::ProxyAuth)
    }

    pub fn expires(mut self, min: u32, default: u32, max: u32) -> Self {
        self.min_expires = min;
        self.default_expires = default;
        self.max_expires = max;
        self
    }

    pub fn nonce_expire(mut self, seconds: u32) -> Self {
        self.nonce_expire = seconds;
        self
    }

    fn validate(&self) {
        assert!(
            self.udp || self.tcp || self.tls,
            "Kamailio needs at least one transport"
        );
        assert!(
            self.debug >= 1,
            "the harness parses NOTICE lines: debug >= 1"
        );
        assert!(safe_token(&self.domain), "domain {:?}", self.domain);
        for subscriber in &self.subscribers {
            assert!(
                safe_token(&subscriber.username),
                "username {:?}: use [A-Za-z0-9._+-]",
                subscriber.username
            );
        }
        for (username, _) in &self.behaviours {
            assert!(
                safe_token(username),
                "username {username:?}: use [A-Za-z0-9._+-]"
            );
        }
    }

    /// auth_db computes HA1 from plaintext only when no subscriber brings its own hashes.
    fn calculate_ha1(&self) -> bool {
        self.subscribers
            .iter()
            .all(|s| matches!(s.credential, Credential::Password(_)))
    }
}

fn safe_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
}

// --- what the log tells ------------------------------------------------------------------------

/// One REGISTER as Kamailio's script saw it (logged on arrival, before any check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterSeen {
    /// To-URI user: the address of record.
    pub user: String,
    /// Username of the Authorization header; `None` without credentials.
    pub auth_user: Option<String>,
    pub transport: Transport,
    /// Where the REGISTER came from (`$si:$sp`).
    pub source: SocketAddr,
    /// Requested expiry: the smallest of the `Expires` header and the Contact `expires`
    /// parameters (`$expires(min)`); `None` when the request carries neither.
    pub expires: Option<u32>,
    pub call_id: String,
    pub cseq: u32,
    /// The status code the script answered with; `None` until its reply line is logged.
    pub reply: Option<u16>,
    /// When authentication failed: www_authenticate's code (-5 no credentials, -2 wrong
    /// password, -3 unknown user, -4 nonce expired (answered with `stale=true`), -1 other).
    pub auth_result: Option<i32>,
}

#[derive(Default)]
struct LogInner {
    lines: Vec<String>,
    registers: Vec<RegisterSeen>,
    /// Incremented on every spawn; events of older processes do not touch `ready`/`exited`.
    generation: u64,
    ready: bool,
    exited: bool,
}

#[derive(Default)]
struct LogState {
    inner: Mutex<LogInner>,
    changed: Condvar,
}

impl LogState {
    fn push(&self, generation: u64, line: String) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(event) = line.find(MARK).map(|at| &line[at + MARK.len()..]) {
            let (kind, rest) = event.split_once(' ').unwrap_or((event, ""));
            let fields: HashMap<&str, &str> = rest
                .split_whitespace()
                .filter_map(|part| part.split_once('='))
                .collect();
            match kind {
                "READY" if generation == inner.generation => inner.ready = true,
                "REGISTER" => {
                    if let Some(seen) = parse_register(&fields) {
                        inner.registers.push(seen);
                    }
                }
                "REPLY" => {
                    let code = fields.get("code").and_then(|c| c.parse().ok());
                    let auth_result = fields.get("auth").and_then(|c| c.parse().ok());
                    let call_id = fields.get("callid").copied().unwrap_or_default();
                    let cseq: Option<u32> = fields.get("cseq").and_then(|c| c.parse().ok());
                    if let Some(seen) =
                        inner.registers.iter_mut().rev().find(|r| {
                            r.reply.is_none() && r.call_id == call_id && Some(r.cseq) == cseq
                        })
                    {
                        seen.reply = code;
                        seen.auth_result = auth_result;
                    }
                }
                _ => {}
            }
        }
        inner.lines.push(line);
        self.changed.notify_all();
    }

    fn eof(&self, generation: u64) {
        let mut inner = self.inner.lock().unwrap();
        if generation == inner.generation {
            inner.exited = true;
        }
        self.changed.notify_all();
    }

    /// Waits until `check` returns `Some` (re-evaluated on every log event) or `timeout` passes.
    fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&LogInner) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.lock().unwrap();
        loop {
            if let Some(value) = check(&inner) {
                return Some(value);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            inner = self.changed.wait_timeout(inner, deadline - now).unwrap().0;
        }
    }

    /// Returns the number of lines once it differs from `seen`, or after `max`.
    fn wait_for_new_line(&self, seen: usize, max: Duration) -> usize {
        let inner = self.inner.lock().unwrap();
        let (inner, _) = self
            .changed
            .wait_timeout_while(inner, max, |inner| inner.lines.len() == seen)
            .unwrap();
        inner.lines.len()
    }
}

fn parse_register(fields: &HashMap<&str, &str>) -> Option<RegisterSeen> {
    let optional = |key: &str| {
        fields
            .get(key)
            .filter(|v| !v.is_empty() && **v != "<null>")
            .map(|v| v.to_string())
    };
    Some(RegisterSeen {
        user: optional("user").unwrap_or_default(),
        auth_user: optional("auth"),
        transport: Transport::parse(fields.get("proto")?)?,
        source: fields.get("src")?.parse().ok()?,
        expires: fields
            .get("expires")
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|v| u32::try_from(v).ok()),
        call_id: fields.get("callid")?.to_string(),
        cseq: fields.get("cseq")?.parse().ok()?,
        reply: None,
        auth_result: None,
    })
}

// --- what the database tells ---------------------------------------------------------------------

/// A row of usrloc's `location` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub username: String,
    /// The Contact URI as registered (without its header parameters).
    pub contact: String,
    /// Absolute expiry in Unix seconds (UTC). db_sqlite stores it as a Julian day; converted
    /// exactly as Kamailio reads it back.
    pub expires_at: i64,
    /// Unix seconds of the last save (REGISTER accepted for this contact).
    pub last_modified: i64,
    /// The source of the REGISTER as the script stored it: `sip:IP:PORT;transport=udp|tcp|tls`.
    pub received: Option<String>,
    /// Kamailio's receiving socket, e.g. `udp:127.0.0.1:40123`.
    pub socket: Option<String>,
    /// Transport the REGISTER arrived on (from `socket`).
    pub transport: Transport,
    pub call_id: String,
    pub cseq: i64,
    pub user_agent: String,
    /// Kamailio's TCP/TLS connection id (`-1` over UDP).
    pub connection_id: i64,
    /// `q`; `-1` when the Contact has none.
    pub q: f64,
    /// `+sip.instance` of the Contact, if any.
    pub instance: Option<String>,
    pub reg_id: i64,
}

impl Binding {
    /// Seconds granted at the last save: `expires_at - last_modified` (what the 200's Contact
    /// `expires` said).
    pub fn granted(&self) -> i64 {
        self.expires_at - self.last_modified
    }

    /// Seconds left from now (negative once expired and not yet removed by usrloc's timer).
    pub fn remaining(&self) -> i64 {
        self.expires_at - unix_now()
    }

    /// The REGISTER's source address, parsed from `received`.
    pub fn source(&self) -> Option<SocketAddr> {
        let rest = self.received.as_deref()?.strip_prefix("sip:")?;
        rest.split(';').next()?.parse().ok()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

// --- ports ---------------------------------------------------------------------------------------

/// A loopback UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .expect("bind a UDP port")
        .port()
}

/// A loopback TCP port that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .expect("bind a TCP port")
        .port()
}

/// A loopback port of the kind `transport` listens on (TLS listens on TCP).
pub fn free_port(transport: Transport) -> u16 {
    match transport {
        Transport::Udp => free_udp_port(),
        Transport::Tcp | Transport::Tls => free_tcp_port(),
    }
}

/// Picks distinct ports for the enabled transports, holding each until all are picked.
fn pick_ports(options: &KamailioOptions) -> BTreeMap<Transport, u16> {
    let mut held_udp = Vec::new();
    let mut held_tcp = Vec::new();
    let mut ports = BTreeMap::new();
    for transport in Transport::ALL {
        let enabled = match transport {
            Transport::Udp => options.udp,
            Transport::Tcp => options.tcp,
            Transport::Tls => options.tls,
        };
        if !enabled {
            continue;
        }
        let port = loop {
            let port = match transport {
                Transport::Udp => {
                    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP");
                    let port = socket.local_addr().unwrap().port();
                    held_udp.push(socket);
                    port
                }
                Transport::Tcp | Transport::Tls => {
                    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind TCP");
                    let port = listener.local_addr().unwrap().port();
                    held_tcp.push(listener);
                    port
                }
            };
            if !ports.values().any(|p| *p == port) {
                break port;
            }
        };
        ports.insert(transport, port);
    }
    ports
}

// --- the instance --------------------------------------------------------------------------------

enum StartError {
    PortInUse,
    Failed(String),
}

/// A Kamailio registrar with its own directory, database and ports.
pub struct Kamailio {
    child: Option<Child>,
    dir: TempDir,
    options: KamailioOptions,
    ports: BTreeMap<Transport, u16>,
    log: Arc<LogState>,
}

impl Kamailio {
    /// Writes everything, starts Kamailio and returns once it answers on every transport.
    /// Retries with fresh ports when one was taken meanwhile. Panics (with its log) on failure.
    pub fn start(options: KamailioOptions) -> Self {
        let mut kamailio = Self::prepare(options);
        for attempt in 1..=START_ATTEMPTS {
            match kamailio.spawn() {
                Ok(()) => return kamailio,
                Err(StartError::PortInUse) if attempt < START_ATTEMPTS => {
                    kamailio.ports = pick_ports(&kamailio.options);
                    kamailio.write_config();
                }
                Err(StartError::PortInUse) => panic!(
                    "Kamailio found its ports taken {START_ATTEMPTS} times; log:\n{}",
                    kamailio.log_text()
                ),
                Err(StartError::Failed(why)) => {
                    panic!(
                        "Kamailio did not start: {why}; log:\n{}",
                        kamailio.log_text()
                    )
                }
            }
        }
        unreachable!()
    }

    /// Writes the configuration, database and certificates and picks the ports, but does not
    /// start Kamailio: [`Kamailio::restart`] brings it up later on those ports (for "nothing
    /// listening yet" tests). The ports are free when picked, not reserved.
    pub fn prepare(options: KamailioOptions) -> Self {
        options.validate();
        let dir = tempfile::Builder::new()
            .prefix("kamailio-")
            .tempdir()
            .expect("temp dir");
        let ports = pick_ports(&options);
        let kamailio = Self {
            child: None,
            dir,
            options,
            ports,
            log: Arc::new(LogState::default()),
        };
        if kamailio.options.tls {
            make_test_certificates(kamailio.dir());
        }
        kamailio.create_database();
        kamailio.write_config();
        kamailio
    }

    /// Stops Kamailio if it runs, then starts it on the same ports, configuration and database
    /// (bindings survive: usrloc loads the `location` table at start). Panics if a port was
    /// taken meanwhile. Counts and log lines carry on across restarts.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        match self.spawn() {
            Ok(()) => {}
            Err(StartError::PortInUse) => panic!(
                "Kamailio could not take its ports again on restart; log:\n{}",
                self.log_text()
            ),
            Err(StartError::Failed(why)) => {
                panic!("Kamailio did not restart: {why}; log:\n{}", self.log_text())
            }
        }
    }

    /// Restarts Kamailio challenging with `algorithm` (configuration rewritten; same ports,
    /// database and bindings; subscribers given by password get HA1s in the new algorithm).
    pub fn restart_with_algorithm(&mut self, algorithm: DigestAlgorithm) {
        self.options.algorithm = algorithm;
        self.write_config();
        self.restart();
    }

    /// SIGTERM, then waits until the main process and all its children have exited (their
    /// stderr closed), so the ports are free and TCP/TLS connections closed. Panics if it is
    /// not running.
    pub fn stop(&mut self) -> ExitStatus {
        let child = self.child.as_ref().expect("Kamailio is not running");
        signal(child.id() as i32, libc::SIGTERM);
        if !self.wait_exited(STOP_TIMEOUT) {
            self.kill_family();
            self.wait_exited(STOP_TIMEOUT);
        }
        let mut child = self.child.take().unwrap();
        child.wait().expect("wait for kamailio")
    }

    /// SIGKILL to the main process and its children (a crash: no goodbye on any connection
    /// beyond the kernel's). Waits until they are gone.
    pub fn kill(&mut self) {
        assert!(self.child.is_some(), "Kamailio is not running");
        self.kill_family();
        self.wait_exited(STOP_TIMEOUT);
        let _ = self.child.take().unwrap().wait();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Pid of Kamailio's main process while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    // --- addresses ---

    pub fn port(&self, transport: Transport) -> u16 {
        *self
            .ports
            .get(&transport)
            .unwrap_or_else(|| panic!("Kamailio does not listen on {transport:?}"))
    }

    /// `127.0.0.1:port` of the transport's listening socket. Panics if it is not enabled.
    pub fn addr(&self, transport: Transport) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port(transport)))
    }

    /// `sip:127.0.0.1:PORT;transport=udp|tcp|tls` (a registrar or outbound-proxy URI).
    pub fn uri(&self, transport: Transport) -> String {
        format!(
            "sip:127.0.0.1:{};transport={}",
            self.port(transport),
            transport.as_str()
        )
    }

    /// The enabled transports and their ports.
    pub fn ports(&self) -> &BTreeMap<Transport, u16> {
        &self.ports
    }

    /// Realm and registrar domain.
    pub fn domain(&self) -> &str {
        &self.options.domain
    }

    pub fn options(&self) -> &KamailioOptions {
        &self.options
    }

    /// The throwaway CA certificate (PEM) that signed the server certificate (SANs `127.0.0.1`
    /// and `localhost`). Panics without TLS.
    pub fn ca_cert(&self) -> PathBuf {
        assert!(self.options.tls, "Kamailio was started without TLS");
        self.dir().join("ca.pem")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir().join("kamailio.db")
    }

    /// The database of the `subscriber` table (auth_db's, only read by Kamailio).
    pub fn subscribers_db_path(&self) -> PathBuf {
        self.dir().join("subscribers.db")
    }

    pub fn cfg_path(&self) -> PathBuf {
        self.dir().join("kamailio.cfg")
    }

    /// Every line Kamailio printed, across restarts.
    pub fn logs(&self) -> Vec<String> {
        self.log.inner.lock().unwrap().lines.clone()
    }

    fn log_text(&self) -> String {
        self.logs().join("\n")
    }

    // --- counting (from the log stream) ---

    /// Every REGISTER seen so far (all users, in order of arrival, across restarts).
    pub fn all_registers(&self) -> Vec<RegisterSeen> {
        self.log.inner.lock().unwrap().registers.clone()
    }

    /// The REGISTERs seen for `user` (To-URI user), in order of arrival.
    pub fn registers(&self, user: &str) -> Vec<RegisterSeen> {
        let inner = self.log.inner.lock().unwrap();
        registers_of(&inner, user)
    }

    /// How many REGISTERs were seen for `user` (each retransmission counts).
    pub fn count(&self, user: &str) -> usize {
        let inner = self.log.inner.lock().unwrap();
        inner.registers.iter().filter(|r| r.user == user).count()
    }

    /// REGISTERs seen per user.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let inner = self.log.inner.lock().unwrap();
        let mut counts = BTreeMap::new();
        for seen in &inner.registers {
            *counts.entry(seen.user.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Waits (on the log stream, no polling) until at least `n` REGISTERs were seen for `user`
    /// and returns them all; `None` after `timeout`.
    pub fn try_wait_for_registers(
        &self,
        user: &str,
        n: usize,
        timeout: Duration,
    ) -> Option<Vec<RegisterSeen>> {
        self.log.wait_until(timeout, |inner| {
            let seen = registers_of(inner, user);
            (seen.len() >= n).then_some(seen)
        })
    }

    /// Like [`Kamailio::try_wait_for_registers`], panicking after `timeout` with what was seen.
    pub fn wait_for_registers(&self, user: &str, n: usize, timeout: Duration) -> Vec<RegisterSeen> {
        self.try_wait_for_registers(user, n, timeout)
            .unwrap_or_else(|| {
                panic!(
                    "fewer than {n} REGISTERs for {user:?} within {timeout:?}: {:#?}\nlog tail:\n{}",
                    self.registers(user),
                    self.log_tail(60)
                )
            })
    }

    /// Waits until at least `n` REGISTERs were seen for `user` and every one of them has been
    /// answered (so whatever Kamailio writes for them is written); returns them all. Panics
    /// after `timeout`. The reply line is logged just after the reply is sent: a client can
    /// hold the answer before the line exists, and a REGISTER whose worker was stopped or
    /// killed in between never gets one.
    pub fn wait_for_answered(&self, user: &str, n: usize, timeout: Duration) -> Vec<RegisterSeen> {
        self.log
            .wait_until(timeout, |inner| {
                let seen = registers_of(inner, user);
                (seen.len() >= n && seen.iter().all(|r| r.reply.is_some())).then_some(seen)
            })
            .unwrap_or_else(|| {
                panic!(
                    "fewer than {n} answered REGISTERs for {user:?} within {timeout:?}: {:#?}\nlog tail:\n{}",
                    self.registers(user),
                    self.log_tail(60)
                )
            })
    }

    /// Waits until a REGISTER for `user` was answered with `code` and returns it; panics after
    /// `timeout`. A logged 200 means the binding is already in the database (db_mode 1).
    pub fn wait_for_reply(&self, user: &str, code: u16, timeout: Duration) -> RegisterSeen {
        self.log
            .wait_until(timeout, |inner| {
                registers_of(inner, user)
                    .into_iter()
                    .find(|r| r.reply == Some(code))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no {code} for {user:?} within {timeout:?}: {:#?}\nlog tail:\n{}",
                    self.registers(user),
                    self.log_tail(60)
                )
            })
    }

    /// The last `n` log lines, joined.
    pub fn log_tail(&self, n: usize) -> String {
        let inner = self.log.inner.lock().unwrap();
        let start = inner.lines.len().saturating_sub(n);
        inner.lines[start..].join("\n")
    }

    // --- inspection (from the database) ---

    /// `user`'s rows in the `location` table, oldest first.
    pub fn bindings(&self, user: &str) -> Vec<Binding> {
        self.query_bindings(Some(user))
    }

    /// Every row of the `location` table.
    pub fn all_bindings(&self) -> Vec<Binding> {
        self.query_bindings(None)
    }

    /// Waits until one of `user`'s bindings satisfies `predicate` and returns it. Reads the
    /// table on every new log line and at least every [`POLL_INTERVAL`]; panics after `timeout`.
    pub fn wait_for_binding(
        &self,
        user: &str,
        predicate: impl Fn(&Binding) -> bool,
        timeout: Duration,
    ) -> Binding {
        let found = self.wait_for_bindings_where(user, timeout, |bindings| {
            bindings.iter().find(|b| predicate(b)).cloned()
        });
        found.unwrap_or_else(|| {
            panic!(
                "no matching binding for {user:?} within {timeout:?}; bindings: {:#?}\nREGISTERs: {:#?}",
                self.bindings(user),
                self.registers(user)
            )
        })
    }

    /// Waits until `user`'s whole set of bindings satisfies `predicate` (e.g. `is_empty` after
    /// an unregister) and returns it; panics after `timeout`. Polls like `wait_for_binding`.
    pub fn wait_for_bindings(
        &self,
        user: &str,
        predicate: impl Fn(&[Binding]) -> bool,
        timeout: Duration,
    ) -> Vec<Binding> {
        let found = self.wait_for_bindings_where(user, timeout, |bindings| {
            predicate(bindings).then(|| bindings.to_vec())
        });
        found.unwrap_or_else(|| {
            panic!(
                "bindings for {user:?} never matched within {timeout:?}; last: {:#?}\nREGISTERs: {:#?}",
                self.bindings(user),
                self.registers(user)
            )
        })
    }

    fn wait_for_bindings_where<T>(
        &self,
        user: &str,
        timeout: Duration,
        mut check: impl FnMut(&[Binding]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut seen_lines = self.log.inner.lock().unwrap().lines.len();
        loop {
            if let Some(value) = check(&self.bindings(user)) {
                return Some(value);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            seen_lines = self
                .log
                .wait_for_new_line(seen_lines, POLL_INTERVAL.min(deadline - now));
        }
    }

    fn query_bindings(&self, user: Option<&str>) -> Vec<Binding> {
        // db_sqlite stores a time_t t as the Julian day ((t - 0.5) / 86400) + 2440587.5 and
        // reads it back as 86400 * (jd - 2440587.5) + 0.5.
        let filter = user
            .map(|u| format!("WHERE username = {}", sql_quote(u)))
            .unwrap_or_default();
        let sql = format!(
            "SELECT username, contact, received, socket, callid, cseq, user_agent, q, \
             connection_id, instance, reg_id, \
             CAST(ROUND(86400.0 * (expires - 2440587.5) + 0.5) AS INTEGER) AS expires_at, \
             CAST(ROUND(86400.0 * (last_modified - 2440587.5) + 0.5) AS INTEGER) AS last_modified \
             FROM location {filter} ORDER BY id"
        );
        let rows = self.sqlite_json(&sql);
        rows.iter().map(binding_from_row).collect()
    }

    /// Runs a query with the `sqlite3` CLI against Kamailio's database (WAL: reading does not
    /// block Kamailio's writes) and returns the rows as JSON objects.
    pub fn sqlite_json(&self, sql: &str) -> Vec<Value> {
        let output = Command::new("sqlite3")
            .args(["-json", "-cmd", ".timeout 5000"])
            .arg(self.db_path())
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .expect("run sqlite3 (Debian package sqlite3)");
        assert!(
            output.status.success(),
            "sqlite3 failed on {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        if text.trim().is_empty() {
            return Vec::new();
        }
        match serde_json::from_str(&text) {
            Ok(Value::Array(rows)) => rows,
            other => panic!("sqlite3 -json printed {other:?}"),
        }
    }

    // --- probes ---

    /// Sends one OPTIONS over UDP or TCP and returns the status code of the answer, or
    /// `None` when nothing answered within `timeout`. For TLS: whether a TCP connection to
    /// the port was accepted (`Some(0)`), without a handshake.
    pub fn ping(&self, transport: Transport, timeout: Duration) -> Option<u16> {
        let addr = self.addr(transport);
        match transport {
            Transport::Udp => udp_options(addr, timeout),
            Transport::Tcp => tcp_options(addr, timeout),
            Transport::Tls => TcpStream::connect_timeout(&addr, timeout).ok().map(|_| 0),
        }
    }

    // --- setup ---

    /// Two files, so that a worker checking a password never meets another worker's write
    /// of a binding (Kamailio 5.6's db_sqlite sets no busy timeout: a read that meets the
    /// write lock fails, and the challenge answer with it): `subscribers.db` (auth_db, only
    /// read) and `kamailio.db` (usrloc).
    fn create_database(&self) {
        let options = &self.options;
        let mut subscribers = schema(&["standard-create.sql", "auth_db-create.sql"]);
        let realm = &options.domain;
        for subscriber in &options.subscribers {
            let user = &subscriber.username;
            let (password, ha1, ha1b) = match &subscriber.credential {
                Credential::Password(password) => (
                    password.clone(),
                    options.algorithm.hex(&format!("{user}:{realm}:{password}")),
                    options
                        .algorithm
                        .hex(&format!("{user}@{realm}:{realm}:{password}")),
                ),
                Credential::Ha1 { ha1, ha1b } => (String::new(), ha1.clone(), ha1b.clone()),
            };
            let _ = writeln!(
                subscribers,
                "INSERT INTO subscriber (username, domain, password, ha1, ha1b) \
                 VALUES ({}, {}, {}, {}, {});",
                sql_quote(user),
                sql_quote(realm),
                sql_quote(&password),
                sql_quote(&ha1),
                sql_quote(&ha1b)
            );
        }
        run_sqlite(&self.subscribers_db_path(), &subscribers);
        run_sqlite(
            &self.db_path(),
            &schema(&["standard-create.sql", "usrloc-create.sql"]),
        );
    }

    fn write_config(&self) {
        std::fs::write(self.cfg_path(), self.config()).expect("write kamailio.cfg");
    }

    /// The generated kamailio.cfg.
    pub fn config(&self) -> String {
        let o = &self.options;
        let db_url = format!("sqlite:///{}", self.db_path().display());
        let subscribers_url = format!("sqlite:///{}", self.subscribers_db_path().display());
        assert!(db_url.starts_with("sqlite:////"), "absolute db path");
        let mut cfg = String::new();
        let c = &mut cfg;
        let _ = writeln!(c, "#!KAMAILIO\n# Generated by the trunkline test harness.");
        let _ = writeln!(c, "debug={}\nlog_stderror=yes", o.debug);
        let _ = writeln!(c, "children=1\ntcp_children=1");
        let _ = writeln!(c, "auto_aliases=no\ndns=no\nrev_dns=no\nsip_warning=no");
        let _ = writeln!(
            c,
            "disable_tcp={}",
            if o.tcp || o.tls { "no" } else { "yes" }
        );
        let _ = writeln!(c, "enable_tls={}", if o.tls { "yes" } else { "no" });
        for (transport, port) in &self.ports {
            let _ = writeln!(c, "listen={}:127.0.0.1:{port}", transport.as_str());
        }
        let mut modules = vec![
            "sl",
            "pv",
            "xlog",
            "textops",
            "db_sqlite",
            "usrloc",
            "registrar",
            "auth",
            "auth_db",
            "cfgutils",
        ];
        if o.tls {
            modules.push("tls");
        }
        for module in modules {
            let _ = writeln!(c, "loadmodule \"{module}.so\"");
        }
        let modparam = |c: &mut String, module: &str, name: &str, value: String| {
            let _ = writeln!(c, "modparam(\"{module}\", \"{name}\", {value})");
        };
        let s = |v: &str| format!("\"{v}\"");
        let n = |v: u32| v.to_string();
        modparam(c, "usrloc", "db_url", s(&db_url));
        modparam(c, "usrloc", "db_mode", n(1));
        modparam(c, "usrloc", "use_domain", n(0));
        modparam(c, "usrloc", "timer_interval", n(o.usrloc_timer_interval));
        modparam(c, "registrar", "default_expires", n(o.default_expires));
        modparam(c, "registrar", "min_expires", n(o.min_expires));
        modparam(c, "registrar", "max_expires", n(o.max_expires));
        modparam(c, "registrar", "received_avp", s("$avp(RECEIVED)"));
        modparam(c, "auth_db", "db_url", s(&subscribers_url));
        modparam(c, "auth_db", "use_domain", n(0));
        if o.calculate_ha1() {
            modparam(c, "auth_db", "calculate_ha1", n(1));
            modparam(c, "auth_db", "password_column", s("password"));
        } else {
            modparam(c, "auth_db", "calculate_ha1", n(0));
            modparam(c, "auth_db", "password_column", s("ha1"));
            modparam(c, "auth_db", "password_column_2", s("ha1b"));
        }
        modparam(c, "auth", "algorithm", s(o.algorithm.name()));
        modparam(c, "auth", "qop", s(if o.qop { "auth" } else { "" }));
        modparam(c, "auth", "nonce_expire", n(o.nonce_expire));
        if o.tls {
            let dir = self.dir().display().to_string();
            modparam(c, "tls", "tls_method", s(&o.tls_method));
            modparam(c, "tls", "certificate", s(&format!("{dir}/server.pem")));
            modparam(c, "tls", "private_key", s(&format!("{dir}/server.key")));
            modparam(c, "tls", "verify_certificate", n(0));
            modparam(c, "tls", "require_certificate", n(0));
        }

        let realm = &o.domain;
        let challenge_flags = if o.qop { 1 } else { 0 };
        let reply_log = |code: &str, auth: &str| {
            format!(
                "xlog(\"L_NOTICE\", \"TLH REPLY user=$tU callid=$ci cseq=$cs code={code} auth={auth}\\n\");"
            )
        };
        let _ = writeln!(
            c,
            r#"
event_route[core:worker-one-init] {{
    xlog("L_NOTICE", "TLH READY\n");
}}

request_route {{
    if (is_method("OPTIONS")) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (!is_method("REGISTER")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    if ($expires(min) == $null) {{
        $var(exp) = -1;
    }} else {{
        $var(exp) = $expires(min);
    }}
    xlog("L_NOTICE", "TLH REGISTER user=$tU auth=$au proto=$pr src=$si:$sp expires=$var(exp) callid=$ci cseq=$cs\n");
    $var(proxy_auth) = 0;
    route(BEFORE_AUTH);
    if ($var(proxy_auth) == 1) {{
        if (!proxy_authenticate("{realm}", "subscriber")) {{
            $var(rc) = $rc;
            if ($var(rc) == -4) {{
                proxy_challenge("{realm}", "{stale_flags}");
            }} else {{
                proxy_challenge("{realm}", "{challenge_flags}");
            }}
            {proxy_challenged}
            exit;
        }}
    }} else if (!www_authenticate("{realm}", "subscriber")) {{
        $var(rc) = $rc;
        if ($var(rc) == -4) {{
            www_challenge("{realm}", "{stale_flags}");
        }} else {{
            www_challenge("{realm}", "{challenge_flags}");
        }}
        {challenged}
        exit;
    }}
    route(AFTER_AUTH);
    $avp(RECEIVED) = "sip:" + $si + ":" + $sp + ";transport=" + $pr;
    if (!save("location")) {{
        sl_reply_error();
        {save_failed}
        exit;
    }}
    {saved}
    exit;
}}"#,
            stale_flags = challenge_flags | 16,
            challenged = reply_log("401", "$var(rc)"),
            proxy_challenged = reply_log("407", "$var(rc)"),
            save_failed = reply_log("$err.rcode", "0"),
            saved = reply_log("200", "0"),
        );

        let _ = writeln!(c, "\nroute[BEFORE_AUTH] {{");
        for (user, behaviour) in &o.behaviours {
            match behaviour {
                Behaviour::ServiceUnavailable { retry_after } => {
                    let _ = writeln!(
                        c,
                        "    if ($tU == \"{user}\") {{\n        append_to_reply(\"Retry-After: {retry_after}\\r\\n\");\n        sl_send_reply(\"503\", \"Service Unavailable\");\n        {}\n        exit;\n    }}",
                        reply_log("503", "0")
                    );
                }
                Behaviour::Forbidden => {
                    let _ = writeln!(
                        c,
                        "    if ($tU == \"{user}\") {{\n        sl_send_reply(\"403\", \"Forbidden\");\n        {}\n        exit;\n    }}",
                        reply_log("403", "0")
                    );
                }
                Behaviour::ProxyAuth => {
                    let _ = writeln!(
                        c,
                        "    if ($tU == \"{user}\") {{\n        $var(proxy_auth) = 1;\n    }}"
                    );
                }
                Behaviour::UnregisterUnavailable { retry_after } => {
                    let _ = writeln!(
                        c,
                        "    if ($tU == \"{user}\" && $var(exp) == 0) {{\n        append_to_reply(\"Retry-After: {retry_after}\\r\\n\");\n        sl_send_reply(\"503\", \"Service Unavailable\");\n        {}\n        exit;\n    }}",
                        reply_log("503", "0")
                    );
                }
                Behaviour::Reply {
                    code,
                    phrase,
                    headers,
                } => {
                    let headers = headers.replace("\r\n", "\\r\\n");
                    let _ = writeln!(
                        c,
                        "    if ($tU == \"{user}\") {{\n        append_to_reply(\"{headers}\");\n        sl_send_reply(\"{code}\", \"{phrase}\");\n        {}\n        exit;\n    }}",
                        reply_log(&code.to_string(), "0")
                    );
                }
                Behaviour::IntervalTooBrief { .. } | Behaviour::SlowAnswer { .. } => {}
            }
        }
        let _ = writeln!(c, "    return;\n}}\n\nroute[AFTER_AUTH] {{");
        for (user, behaviour) in &o.behaviours {
            if let Behaviour::SlowAnswer { delay_ms } = behaviour {
                let _ = writeln!(
                    c,
                    "    if ($tU == \"{user}\" && $var(exp) != 0) {{\n        $avp(RECEIVED) = \"sip:\" + $si + \":\" + $sp + \";transport=\" + $pr;\n        save(\"location\", \"0x02\");\n        usleep(\"{}\");\n        sl_send_reply(\"200\", \"OK\");\n        {}\n        exit;\n    }}",
                    u64::from(*delay_ms) * 1000,
                    reply_log("200", "0")
                );
            }
            if let Behaviour::IntervalTooBrief { min_expires } = behaviour {
                let _ = writeln!(
                    c,
                    "    if ($tU == \"{user}\" && $var(exp) > 0 && $var(exp) < {min_expires}) {{\n        append_to_reply(\"Min-Expires: {min_expires}\\r\\n\");\n        sl_send_reply(\"423\", \"Interval Too Brief\");\n        {}\n        exit;\n    }}",
                    reply_log("423", "0")
                );
            }
        }
        let _ = writeln!(c, "    return;\n}}");
        cfg
    }

    // --- process ---

    fn spawn(&mut self) -> Result<(), StartError> {
        assert!(self.child.is_none(), "Kamailio is already running");
        let generation = {
            let mut inner = self.log.inner.lock().unwrap();
            inner.generation += 1;
            inner.ready = false;
            inner.exited = false;
            inner.generation
        };
        let dir = self.dir().to_owned();
        let mut child = Command::new(KAMAILIO_BIN)
            .arg("-DD")
            .arg("-E")
            .arg("-f")
            .arg(self.cfg_path())
            .arg("-w")
            .arg(&dir)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .args(["-m", "64", "-M", "8"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                StartError::Failed(format!(
                    "spawn {KAMAILIO_BIN}: {e} (install the Debian package kamailio)"
                ))
            })?;
        let stderr = child.stderr.take().unwrap();
        {
            let log = self.log.clone();
            std::thread::spawn(move || read_lines(stderr, generation, &log));
        }
        self.child = Some(child);

        let outcome = self.log.wait_until(START_TIMEOUT, |inner| {
            if inner.ready {
                Some(true)
            } else if inner.exited {
                Some(false)
            } else {
                None
            }
        });
        match outcome {
            Some(true) => {}
            Some(false) => {
                let _ = self.child.take().unwrap().wait();
                let port_in_use =
                    self.log.inner.lock().unwrap().lines.iter().any(|line| {
                        line.contains("Address already in use") && line.contains("bind")
                    });
                return Err(if port_in_use {
                    StartError::PortInUse
                } else {
                    StartError::Failed("it exited during start".to_owned())
                });
            }
            None => {
                self.kill();
                return Err(StartError::Failed(format!(
                    "no READY line within {START_TIMEOUT:?}"
                )));
            }
        }
        for (transport, _) in self.ports.clone() {
            if self.ping(transport, PROBE_TIMEOUT).is_none() {
                self.kill();
                return Err(StartError::Failed(format!(
                    "no answer on {} within {PROBE_TIMEOUT:?}",
                    transport.as_str()
                )));
            }
        }
        Ok(())
    }

    /// Waits for the current generation's stderr to close: every process holding it is gone.
    fn wait_exited(&self, timeout: Duration) -> bool {
        self.log
            .wait_until(timeout, |inner| inner.exited.then_some(()))
            .is_some()
    }

    fn kill_family(&self) {
        let Some(child) = self.child.as_ref() else {
            return;
        };
        let main = child.id() as i32;
        let children = child_pids(main);
        signal(main, libc::SIGKILL);
        for pid in children {
            signal(pid, libc::SIGKILL);
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- Kamailio log tail ({}) ---\n{}",
                self.dir().display(),
                self.log_tail(80)
            );
        }
        if let Some(child) = self.child.as_ref() {
            signal(child.id() as i32, libc::SIGTERM);
            if !self.wait_exited(Duration::from_secs(5)) {
                self.kill_family();
                self.wait_exited(Duration::from_secs(5));
            }
            let _ = self.child.take().unwrap().wait();
        }
    }
}

fn registers_of(inner: &LogInner, user: &str) -> Vec<RegisterSeen> {
    inner
        .registers
        .iter()
        .filter(|r| r.user == user)
        .cloned()
        .collect()
}

fn read_lines(stream: impl Read, generation: u64, log: &LogState) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                log.push(generation, line.trim_end_matches(['\r', '\n']).to_owned());
            }
        }
    }
    log.eof(generation);
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: sending a signal to a process we started (or one of its children).
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Debian's schema files, concatenated, after switching the database to WAL.
fn schema(files: &[&str]) -> String {
    let mut sql = String::from("PRAGMA journal_mode=WAL;\n");
    for file in files {
        let path = Path::new(SCHEMA_DIR).join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (install the Debian package kamailio-sqlite-modules)",
                path.display()
            )
        });
        sql.push_str(&text);
        sql.push('\n');
    }
    sql
}

/// Runs `sql` on a new database file with the `sqlite3` CLI (which must report WAL mode).
fn run_sqlite(path: &Path, sql: &str) {
    let mut child = Command::new("sqlite3")
        .arg("-bail")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sqlite3 (Debian package sqlite3)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "wal",
        "creating the Kamailio database {} failed: {}{}",
        path.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Direct children of `parent`, from /proc.
fn child_pids(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                == Some(parent)
        })
        .collect()
}

/// A throwaway CA (`ca.pem`, `ca.key`) and a server certificate it issued for 127.0.0.1 and
/// localhost (`server.pem`, `server.key`) in `dir`, made with the `openssl` CLI.
pub fn make_test_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-nodes",
            "-days",
            "7",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=trunkline test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    issue_server_certificate(dir, "localhost", "IP:127.0.0.1,DNS:localhost");
}

/// A server key and certificate (`server.key`, `server.pem`) for `common_name` and
/// `subject_alt_names` (`IP:…,DNS:…`), issued by the CA in `dir` (`ca.pem`, `ca.key`);
/// replaces the ones there.
pub fn issue_server_certificate(dir: &Path, common_name: &str, subject_alt_names: &str) {
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName={subject_alt_names}\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={common_name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "7",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sql_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn binding_from_row(row: &Value) -> Binding {
    let text = |key: &str| row[key].as_str().map(str::to_owned);
    let int = |key: &str| row[key].as_i64().unwrap_or_default();
    let socket = text("socket");
    let received = text("received");
    let transport = socket
        .as_deref()
        .and_then(|s| Transport::parse(s.split(':').next()?))
        .or_else(|| {
            let received = received.as_deref()?;
            Transport::parse(received.split("transport=").nth(1)?)
        })
        .unwrap_or_else(|| panic!("no transport in location row {row}"));
    Binding {
        username: text("username").unwrap_or_default(),
        contact: text("contact").unwrap_or_default(),
        expires_at: int("expires_at"),
        last_modified: int("last_modified"),
        received,
        socket,
        transport,
        call_id: text("callid").unwrap_or_default(),
        cseq: int("cseq"),
        user_agent: text("user_agent").unwrap_or_default(),
        connection_id: int("connection_id"),
        q: row["q"].as_f64().unwrap_or_default(),
        instance: text("instance").filter(|s| !s.is_empty()),
        reg_id: int("reg_id"),
    }
}

// --- OPTIONS probes --------------------------------------------------------------------------------

fn options_request(transport: &str, target: SocketAddr, local: SocketAddr) -> String {
    let n = PROBE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK-tlh-{pid}-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=tlh{n}\r\n\
         To: <sip:{target}>\r\n\
         Call-ID: tlh-probe-{pid}-{n}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn status_code(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response).ok()?;
    text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

/// OPTIONS over UDP, retransmitted every 250 ms (as a UA would) until answered or `timeout`.
fn udp_options(target: SocketAddr, timeout: Duration) -> Option<u16> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    let request = options_request("UDP", target, socket.local_addr().ok()?);
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        socket.send_to(request.as_bytes(), target).ok()?;
        let wait = Duration::from_millis(250).min(deadline - Instant::now());
        socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .ok()?;
        // A refused port shows up as an error on the next receive: keep trying until the deadline.
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            return status_code(&buf[..len]);
        }
    }
    None
}

fn tcp_options(target: SocketAddr, timeout: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&target, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let request = options_request("TCP", target, stream.local_addr().ok()?);
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let len = stream.read(&mut buf).ok()?;
        if len == 0 {
            return None;
        }
        response.extend_from_slice(&buf[..len]);
    }
    status_code(&response)
}
