//! Real SIP devices against a registrar, for the inbound registrar's tests: sipsak, SIPp and
//! baresip from Debian 12, and a raw-socket client for what no client sends on purpose (a
//! replayed `nc`, a stale nonce, an Authorization for another realm).
//!
//! This module owns the clients, never the registrar. Every helper takes the registrar's
//! address (trunkline serves UDP and TCP on one port; give the per-transport address where they
//! differ) and the registrar domain, which is the Request-URI and To/From host and, for
//! trunkline, the tenant's realm `{account_id}.{sip_domain}`. Per run it owns:
//! - the client process: spawned with stdin closed and both outputs read by threads; a run that
//!   ends by itself (sipsak, SIPp) is awaited with a deadline, then killed and reported with its
//!   output so far; baresip runs until [`Baresip::stop`] (SIGTERM: it unregisters, then exits);
//! - a temporary directory for what the client reads and writes (SIPp's injection file and
//!   statistics, baresip's `config` and `accounts`);
//! - its local ports: loopback ports that were free a moment before the run (bind port 0, read,
//!   release); baresip picks its own (`sip_listen 127.0.0.1:0`).
//!
//! Nothing sleeps to let time pass: a run is awaited through its exit, and baresip through the
//! lines it prints (a reader thread parses each line and wakes the waiters).
//!
//! What Debian's clients do, found by running them against Kamailio with
//! `bench/kamailio/registrar.cfg` (domain `bench.test`, users `bu000001`…):
//! - sipsak 0.9.8.1 looks the `-s` URI's host up in DNS (SRV, then A) and exits 2 with "is
//!   unresolvable" unless a numeric outbound proxy with its port came first on the command line:
//!   with `-p 127.0.0.1:PORT` before `-s`, any domain works. `-U` registers once and exits: 0
//!   when the REGISTER with credentials got a 200; 2 when it got another 401 ("authorization
//!   failed") or on a local error; 1 for another final answer; 3 when nothing answered or an ICMP
//!   error came back (at once on loopback). `-x 0` with the same `-C` contact unregisters. `-i`
//!   only silences a warning ("Deactivated Via insertion in usrloc mode"). A Contact with
//!   parameters (`;transport=tcp`) makes it print `error: string is not a number: 'PORT;…'`
//!   and carry on: the exit code is what counts.
//! - SIPp 3.6.1 (package sip-tester) is built without TLS: `sipp -v` says
//!   `SIPp v3.6.1-SCTP-PCAP-RTPSTREAM.`, and `-t l1` exits 1 with "To use a TLS transport you
//!   must compile SIPp with OpenSSL". It cannot parse `[authentication username=[field0]
//!   password=[field1]]` (the inner `]` ends the keyword); quoted values work:
//!   `[authentication username="[field0]" password="[field1]"]`. With a wrong password it takes
//!   the second 401 for a retransmission of the first, and the call fails at `-recv_timeout`.
//! - baresip 1.0.0 registers with no UI or media module (`module_tmp account.so` alone). It
//!   prints `USER@DOMAIN: {0/UDP/v4} 200 OK (SERVER) [N binding(s)]` for every REGISTER answered
//!   with a 200 (the first and each refresh), `reg: sip:USER@DOMAIN: CODE PHRASE (SERVER)` for a
//!   failure, both with ANSI colours, and, with `-v`, `ua: sip-stack exit` once its last
//!   transaction ended at shutdown. On SIGTERM it unregisters (Contact `;expires=0`, answering a
//!   fresh challenge) and exits 0. Its Contact user is `USER-0x…`; its digest `uri` is the
//!   Request-URI with the account's transport parameter (`sip:DOMAIN;transport=udp`). A fixed
//!   `sip_listen` port P would also take TCP port P+1 for TLS; port 0 lets it pick free ones.
//!   Output reaches a pipe line by line.
//! - None of the three minds an underscore in the domain (trunkline's realms start with `MA_`).
//!   Kamailio 5.6 does: it cannot parse such a From URI and answers 500, so tests against
//!   Kamailio use plain domains.
//!
//! Everything here is blocking. Needs the Debian packages sipsak, sip-tester and baresip-core
//! (`scripts/test` installs them).

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::kamailio::{free_tcp_port, free_udp_port, DigestAlgorithm, Transport};

/// The registration scenario, shared with `bench/registrar.sh`: one call per registration,
/// REGISTER → 401 → REGISTER with the digest → 200; users from `-inf`, the domain from
/// `-key domain`.
pub const SIPP_SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../bench/sipp/register_auth.xml"
);
/// Longest a sipsak run may take: over UDP it retransmits for up to 64 × T1 (32 s).
pub const SIPSAK_TIMEOUT: Duration = Duration::from_secs(40);
/// How long baresip may take to start (to print `baresip is ready.`).
pub const BARESIP_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long baresip may take to unregister and exit after SIGTERM (an unanswered unregister
/// over UDP is retransmitted for 32 s).
pub const BARESIP_STOP_TIMEOUT: Duration = Duration::from_secs(40);
/// Where Debian's baresip-core installs its modules.
pub const BARESIP_MODULES: &str = "/usr/lib/baresip/modules";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A number unique within this test process (Call-IDs, tags, branches).
fn unique() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Characters that pass through every client's command line and configuration unquoted.
fn plain(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-' | '~' | '!'))
}

// --- running a client to its end -------------------------------------------------------------------

/// A client process that has exited: its status and everything it printed.
#[derive(Debug)]
pub struct ClientRun {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl ClientRun {
    /// The exit code; `None` when a signal ended the process.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Command, status and both outputs, for assertion messages.
    pub fn text(&self) -> String {
        format!(
            "$ {}\n{} after {:?}\nstdout:\n{}\nstderr:\n{}",
            self.command, self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

fn describe(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

fn read_all(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `command` with stdin closed and both outputs captured, and waits for its exit. Past
/// `timeout` it is killed (SIGKILL) and the test fails with what it printed until then.
fn run_to_end(mut command: Command, timeout: Duration) -> ClientRun {
    let line = describe(&command);
    let program = command.get_program().to_string_lossy().into_owned();
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("spawn {line}: {e} (is the Debian package for {program} installed?)")
        });
    let stdout = read_all(child.stdout.take().expect("stdout"));
    let stderr = read_all(child.stderr.take().expect("stderr"));
    let pid = child.id() as i32;
    let (exited, on_exit) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = exited.send(());
        status
    });
    let timed_out = on_exit.recv_timeout(timeout).is_err();
    if timed_out {
        signal(pid, libc::SIGKILL);
    }
    let status = waiter
        .join()
        .expect("waiter thread")
        .expect("wait for the client");
    let run = ClientRun {
        command: line,
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        elapsed: started.elapsed(),
    };
    assert!(
        !timed_out,
        "still running after {timeout:?}, killed:\n{}",
        run.text()
    );
    run
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: sending a signal to a process this module started.
    unsafe {
        libc::kill(pid, signal);
    }
}

// --- sipsak ----------------------------------------------------------------------------------------

/// One sipsak registration (`sipsak -U`): a REGISTER, the digest answer to the 401, and the
/// answer to that. The Contact is fixed when the value is built, so [`Sipsak::unregister`]
/// removes what [`Sipsak::register`] added.
///
/// The command line ([`Sipsak::args`]), checked against Kamailio:
/// `sipsak -p 127.0.0.1:PORT -E udp -U -s sip:USER@DOMAIN -a PASSWORD -u AUTH_USER -x EXPIRES
/// -C sip:USER@127.0.0.1:PORT -i -vvv` (TCP: `-E tcp` and `;transport=tcp` on the Contact).
#[derive(Clone, Debug)]
pub struct Sipsak {
    pub registrar: SocketAddr,
    pub domain: String,
    pub user: String,
    pub password: String,
    /// Digest username when it is not the AOR user (`-u`).
    pub auth_user: Option<String>,
    /// UDP or TCP.
    pub transport: Transport,
    /// The Expires header of [`Sipsak::register`] (`-x`).
    pub expires: u32,
    /// The Contact URI (`-C`); by default `sip:USER@127.0.0.1:PORT` with a port that was free
    /// (plus `;transport=tcp` over TCP). `*` with [`Sipsak::unregister`] removes every binding.
    pub contact: Option<String>,
    contact_port: u16,
}

impl Sipsak {
    /// Over UDP, Expires 60, the AOR user as digest username.
    pub fn new(registrar: SocketAddr, domain: &str, user: &str, password: &str) -> Self {
        assert!(plain(domain), "domain {domain:?}");
        assert!(plain(user), "user {user:?}");
        assert!(
            !password.is_empty() && password != "-",
            "sipsak reads the password `-` from stdin; use another"
        );
        Self {
            registrar,
            domain: domain.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
            auth_user: None,
            transport: Transport::Udp,
            expires: 60,
            contact: None,
            contact_port: free_udp_port(),
        }
    }

    /// UDP or TCP (sipsak's TLS is not used here: GnuTLS would check the certificate against
    /// the domain, and it loses replies on TLS 1.3; see kamailio_peer.rs).
    pub fn transport(mut self, transport: Transport) -> Self {
        assert!(
            transport != Transport::Tls,
            "the sipsak helper speaks UDP and TCP"
        );
        self.transport = transport;
        self
    }

    pub fn auth_user(mut self, auth_user: &str) -> Self {
        self.auth_user = Some(auth_user.to_owned());
        self
    }

    pub fn expires(mut self, expires: u32) -> Self {
        self.expires = expires;
        self
    }

    pub fn contact(mut self, contact: &str) -> Self {
        self.contact = Some(contact.to_owned());
        self
    }

    /// The Contact URI sent.
    pub fn contact_uri(&self) -> String {
        match (&self.contact, self.transport) {
            (Some(contact), _) => contact.clone(),
            (None, Transport::Tcp) => format!(
                "sip:{}@127.0.0.1:{};transport=tcp",
                self.user, self.contact_port
            ),
            (None, _) => format!("sip:{}@127.0.0.1:{}", self.user, self.contact_port),
        }
    }

    /// The arguments for one REGISTER exchange asking for `expires`.
    pub fn args(&self, expires: u32) -> Vec<String> {
        vec![
            // The outbound proxy first, numeric and with its port: sipsak then sends there and
            // never looks the -s host up (it would ask DNS for the domain and give up).
            "-p".to_owned(),
            self.registrar.to_string(),
            "-E".to_owned(),
            self.transport.as_str().to_owned(),
            "-U".to_owned(),
            "-s".to_owned(),
            format!("sip:{}@{}", self.user, self.domain),
            "-a".to_owned(),
            self.password.clone(),
            "-u".to_owned(),
            self.auth_user.clone().unwrap_or_else(|| self.user.clone()),
            "-x".to_owned(),
            expires.to_string(),
            "-C".to_owned(),
            self.contact_uri(),
            "-i".to_owned(),
            // Every request and answer on stdout.
            "-vvv".to_owned(),
        ]
    }

    /// Registers once (Expires [`Sipsak::expires`]) and returns sipsak's exit and output: code 0
    /// means the REGISTER with credentials got a 200 (see the module doc for the others).
    pub fn register(&self) -> ClientRun {
        self.run(self.expires)
    }

    /// The same REGISTER with Expires 0 and the same Contact.
    pub fn unregister(&self) -> ClientRun {
        self.run(0)
    }

    fn run(&self, expires: u32) -> ClientRun {
        let mut command = Command::new("sipsak");
        command.args(self.args(expires));
        run_to_end(command, SIPSAK_TIMEOUT)
    }
}

// --- SIPp ----------------------------------------------------------------------------------------

/// Whether the installed SIPp can use TLS (`-t l1`): its version string names the features it
/// was built with (Debian 12: `SIPp v3.6.1-SCTP-PCAP-RTPSTREAM.`, no TLS).
pub fn sipp_has_tls() -> bool {
    let output = Command::new("sipp")
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .expect("run sipp (Debian package sip-tester)");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.trim().strip_prefix("SIPp v"))
        .is_some_and(|version| version.split(['-', '.']).any(|part| part == "TLS"))
}

/// SIPp running a registration scenario ([`SIPP_SCENARIO`] unless set) for a list of users: one
/// call per registration, the users' lines read in order (SEQUENTIAL) and reused from the top
/// when there are more calls than users.
///
/// The command line ([`Sipp::run`]), checked against Kamailio over UDP and TCP:
/// `sipp 127.0.0.1:PORT -sf register_auth.xml -inf users.csv -key domain DOMAIN -auth_uri DOMAIN
/// -t u1|t1 -i 127.0.0.1 -p LOCAL -mp MEDIA -m CALLS -r RATE -nd -nostdin -recv_timeout MS
/// -timeout Ns -trace_stat -stf stat.csv -fd 1 -trace_err -error_file errors.log`.
#[derive(Clone, Debug)]
pub struct Sipp {
    pub registrar: SocketAddr,
    pub domain: String,
    /// `(username, password)`, one line of the injection file each.
    pub users: Vec<(String, String)>,
    /// UDP (`-t u1`, one socket) or TCP (`-t t1`, one connection).
    pub transport: Transport,
    /// Registrations in all (`-m`); by default one per user.
    pub calls: usize,
    /// Registrations started per second (`-r`).
    pub rate: u32,
    pub scenario: PathBuf,
    /// A call waiting longer than this for an answer fails (`-recv_timeout`).
    pub recv_timeout: Duration,
    /// SIPp ends the run after this (`-timeout`); the process is killed 10 s later.
    pub timeout: Duration,
    /// Every message sent and received in [`SippOutcome::messages`] (`-trace_msg`).
    pub trace_messages: bool,
}

/// What one SIPp run counted (the last line of its `-trace_stat` file) and logged.
#[derive(Debug)]
pub struct SippOutcome {
    pub run: ClientRun,
    /// Calls that reached the end of the scenario (the 200).
    pub successful: u64,
    /// Calls that did not (an unexpected answer, a timeout, a transport error).
    pub failed: u64,
    /// Requests SIPp sent again for want of an answer (UDP).
    pub retransmissions: u64,
    /// Every column of the last statistics line, by SIPp's header names
    /// (`FailedTimeoutOnRecv(C)`, `ResponseTime1(C)`, …).
    pub stats: HashMap<String, String>,
    /// The `-trace_err` file: unexpected messages and aborted calls.
    pub errors: String,
    /// The `-trace_msg` file (empty unless [`Sipp::trace_messages`]).
    pub messages: String,
}

impl SippOutcome {
    /// A column of the statistics as a number (0 when absent).
    pub fn stat(&self, name: &str) -> u64 {
        self.stats
            .get(name)
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The run, its counts and its error file, for assertion messages.
    pub fn text(&self) -> String {
        format!(
            "{}\nsuccessful {}, failed {}, retransmissions {}\nerrors:\n{}",
            self.run.text(),
            self.successful,
            self.failed,
            self.retransmissions,
            self.errors
        )
    }
}

impl Sipp {
    /// UDP, one registration per user at 50 per second, 5 s receive timeout, 60 s in all.
    pub fn new(registrar: SocketAddr, domain: &str, users: &[(&str, &str)]) -> Self {
        assert!(plain(domain), "domain {domain:?}");
        assert!(!users.is_empty(), "SIPp needs at least one user");
        for (user, password) in users {
            assert!(plain(user), "user {user:?}");
            assert!(
                !password.is_empty() && !password.contains([';', '"', '\n', '\r']),
                "password {password:?}: no ; \" or line breaks in an injection file"
            );
        }
        Self {
            registrar,
            domain: domain.to_owned(),
            users: users
                .iter()
                .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                .collect(),
            transport: Transport::Udp,
            calls: users.len(),
            rate: 50,
            scenario: PathBuf::from(SIPP_SCENARIO),
            recv_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            trace_messages: false,
        }
    }

    /// UDP or TCP; TLS panics unless [`sipp_has_tls`] (Debian's SIPp has none).
    pub fn transport(mut self, transport: Transport) -> Self {
        assert!(
            transport != Transport::Tls || sipp_has_tls(),
            "this SIPp was built without TLS"
        );
        self.transport = transport;
        self
    }

    pub fn calls(mut self, calls: usize) -> Self {
        self.calls = calls;
        self
    }

    pub fn rate(mut self, rate: u32) -> Self {
        self.rate = rate;
        self
    }

    pub fn scenario(mut self, scenario: &Path) -> Self {
        self.scenario = scenario.to_owned();
        self
    }

    pub fn recv_timeout(mut self, timeout: Duration) -> Self {
        self.recv_timeout = timeout;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn trace_messages(mut self) -> Self {
        self.trace_messages = true;
        self
    }

    /// Runs SIPp to its end (all calls done, or [`Sipp::timeout`]) and reads what it counted.
    /// Panics when SIPp wrote no statistics (it did not start: a bad option, a port taken).
    pub fn run(&self) -> SippOutcome {
        let mode = match self.transport {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
            Transport::Tls => "l1",
        };
        let dir = tempfile::Builder::new()
            .prefix("sipp-")
            .tempdir()
            .expect("temp dir");
        let mut injection = String::from("SEQUENTIAL\n");
        for (user, password) in &self.users {
            let _ = writeln!(injection, "{user};{password}");
        }
        std::fs::write(dir.path().join("users.csv"), injection).expect("write users.csv");
        let local_port = match self.transport {
            Transport::Udp => free_udp_port(),
            Transport::Tcp | Transport::Tls => free_tcp_port(),
        };
        let mut command = Command::new("sipp");
        command
            .arg(self.registrar.to_string())
            .arg("-sf")
            .arg(&self.scenario)
            .args(["-inf", "users.csv"])
            .args(["-key", "domain", self.domain.as_str()])
            .args(["-auth_uri", self.domain.as_str()])
            .args(["-t", mode, "-i", "127.0.0.1"])
            .arg("-p")
            .arg(local_port.to_string())
            // SIPp binds a media port even for a scenario without media.
            .arg("-mp")
            .arg(free_udp_port().to_string())
            .arg("-m")
            .arg(self.calls.to_string())
            .arg("-r")
            .arg(self.rate.to_string())
            // No BYE or CANCEL for a call given up on; no keyboard.
            .args(["-nd", "-nostdin"])
            .arg("-recv_timeout")
            .arg(self.recv_timeout.as_millis().to_string())
            .arg("-timeout")
            .arg(format!("{}s", self.timeout.as_secs().max(1)))
            .args(["-trace_stat", "-stf", "stat.csv", "-fd", "1"])
            .args(["-trace_err", "-error_file", "errors.log"])
            .current_dir(dir.path());
        if self.trace_messages {
            command.args(["-trace_msg", "-message_file", "messages.log"]);
        }
        let run = run_to_end(command, self.timeout + Duration::from_secs(10));
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
        let stats = parse_sipp_stats(&read("stat.csv"));
        assert!(
            !stats.is_empty(),
            "SIPp wrote no statistics:\n{}",
            run.text()
        );
        let number = |name: &str| -> u64 {
            stats
                .get(name)
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0)
        };
        SippOutcome {
            successful: number("SuccessfulCall(C)"),
            failed: number("FailedCall(C)"),
            retransmissions: number("Retransmissions(C)"),
            errors: read("errors.log"),
            messages: read("messages.log"),
            stats,
            run,
        }
    }
}

/// The header line and the last line of a `-trace_stat` file (`;`-separated), paired up.
fn parse_sipp_stats(csv: &str) -> HashMap<String, String> {
    let mut lines = csv.lines().filter(|line| !line.trim().is_empty());
    let (Some(header), Some(last)) = (lines.next(), lines.next_back()) else {
        return HashMap::new();
    };
    header
        .split(';')
        .zip(last.split(';'))
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

// --- baresip -------------------------------------------------------------------------------------

/// A baresip account: the `accounts` line
/// `<sip:USER@DOMAIN;transport=T>;auth_user=AUTH;auth_pass=PASSWORD;outbound="sip:IP:PORT;transport=T";regint=N`.
#[derive(Clone, Debug)]
pub struct BaresipAccount {
    pub registrar: SocketAddr,
    pub domain: String,
    pub user: String,
    pub password: String,
    /// Digest username when it is not the AOR user.
    pub auth_user: Option<String>,
    /// UDP or TCP.
    pub transport: Transport,
    /// Expiry asked for in each REGISTER, seconds (`regint`); baresip refreshes before it ends.
    pub regint: u32,
}

impl BaresipAccount {
    /// Over UDP, `regint` 3600.
    pub fn new(registrar: SocketAddr, domain: &str, user: &str, password: &str) -> Self {
        assert!(plain(domain), "domain {domain:?}");
        assert!(plain(user), "user {user:?}");
        assert!(
            !password.is_empty() && !password.contains([';', '"', '>', '\n', '\r', ' ']),
            "password {password:?}: keep it to one unquoted accounts parameter"
        );
        Self {
            registrar,
            domain: domain.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
            auth_user: None,
            transport: Transport::Udp,
            regint: 3600,
        }
    }

    /// UDP or TCP (baresip's TLS would need the registrar's CA in `sip_cafile`).
    pub fn transport(mut self, transport: Transport) -> Self {
        assert!(
            transport != Transport::Tls,
            "the baresip helper speaks UDP and TCP"
        );
        self.transport = transport;
        self
    }

    pub fn auth_user(mut self, auth_user: &str) -> Self {
        self.auth_user = Some(auth_user.to_owned());
        self
    }

    pub fn regint(mut self, seconds: u32) -> Self {
        self.regint = seconds;
        self
    }

    /// `USER@DOMAIN`, as baresip names the account in what it prints.
    pub fn aor(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }

    /// The line of the `accounts` file.
    pub fn accounts_line(&self) -> String {
        let transport = self.transport.as_str();
        format!(
            "<sip:{aor};transport={transport}>;auth_user={auth};auth_pass={password};\
             outbound=\"sip:{registrar};transport={transport}\";regint={regint}\n",
            aor = self.aor(),
            auth = self.auth_user.as_deref().unwrap_or(&self.user),
            password = self.password,
            registrar = self.registrar,
            regint = self.regint,
        )
    }
}

/// What baresip reported about its registration, in the order printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaresipEvent {
    /// `USER@DOMAIN: {0/UDP/v4} 200 OK (SERVER) [N binding(s)]`: a REGISTER (the first or a
    /// refresh) answered with a 200 that lists `bindings` contacts of this AOR.
    Registered { bindings: u32 },
    /// `reg: sip:USER@DOMAIN: 401 Unauthorized (SERVER)`: a final failure answer, or, with
    /// `code` `None`, a transport error (`reg: sip:USER@DOMAIN: Connection refused [111]`).
    Failed { code: Option<u16>, reason: String },
}

#[derive(Default)]
struct BaresipInner {
    lines: Vec<String>,
    events: Vec<BaresipEvent>,
    /// `baresip is ready.`
    ready: bool,
    /// `ua: sip-stack exit`: at shutdown, every transaction (the unregister) has ended.
    stack_exited: bool,
    /// stdout closed: the process is gone.
    eof: bool,
}

#[derive(Default)]
struct BaresipLog {
    inner: Mutex<BaresipInner>,
    changed: Condvar,
}

impl BaresipLog {
    fn push(&self, aor: &str, raw: &str) {
        let line = strip_ansi(raw);
        let mut inner = self.inner.lock().unwrap();
        if let Some(event) = parse_baresip_event(aor, &line) {
            inner.events.push(event);
        }
        match line.trim() {
            "baresip is ready." => inner.ready = true,
            "ua: sip-stack exit" => inner.stack_exited = true,
            _ => {}
        }
        inner.lines.push(line);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.inner.lock().unwrap().eof = true;
        self.changed.notify_all();
    }

    /// Waits until `check` returns `Some` (evaluated again on every line) or `timeout` passes.
    fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&BaresipInner) -> Option<T>,
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
}

/// `line` without ANSI escape sequences (`ESC [ … final`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

fn parse_baresip_event(aor: &str, line: &str) -> Option<BaresipEvent> {
    if let Some(rest) = line.strip_prefix(&format!("{aor}: {{")) {
        // "0/UDP/v4} 200 OK (SERVER) [1 binding]"
        let (_, answer) = rest.split_once("} ")?;
        if !answer.starts_with("200 ") {
            return None;
        }
        let bindings = answer
            .rsplit_once('[')
            .and_then(|(_, tail)| tail.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        return Some(BaresipEvent::Registered { bindings });
    }
    let rest = line.strip_prefix(&format!("reg: sip:{aor}: "))?;
    let code = rest
        .get(..3)
        .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
        .filter(|_| rest.as_bytes().get(3) == Some(&b' '))
        .and_then(|digits| digits.parse().ok());
    Some(BaresipEvent::Failed {
        code,
        reason: rest.trim().to_owned(),
    })
}

/// A headless baresip registering one account: a temporary directory with `config` (SIP on
/// 127.0.0.1 with ports of its choosing, no UI or media modules) and `accounts`, the process
/// `baresip -f DIR -v`, and its stdout parsed line by line into [`BaresipEvent`]s.
///
/// Dropping it kills the process without unregistering; [`Baresip::stop`] unregisters first.
pub struct Baresip {
    child: Option<Child>,
    dir: TempDir,
    account: BaresipAccount,
    log: Arc<BaresipLog>,
}

impl Baresip {
    /// Writes the configuration, starts baresip and returns once it is ready (its REGISTER is
    /// on its way); await the outcome with [`Baresip::wait_registered`] or
    /// [`Baresip::wait_for_events`].
    pub fn start(account: &BaresipAccount) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("baresip-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(
            dir.path().join("config"),
            format!(
                "poll_method\tepoll\n\
                 sip_listen\t127.0.0.1:0\n\
                 module_path\t{BARESIP_MODULES}\n\
                 module_tmp\taccount.so\n"
            ),
        )
        .expect("write baresip config");
        std::fs::write(dir.path().join("accounts"), account.accounts_line())
            .expect("write baresip accounts");
        let mut child = Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .arg("-v")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run baresip (Debian package baresip-core)");
        let log = Arc::new(BaresipLog::default());
        let aor = account.aor();
        let stdout = child.stdout.take().expect("stdout");
        {
            let log = log.clone();
            let aor = aor.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).split(b'\n') {
                    let Ok(line) = line else { break };
                    log.push(&aor, String::from_utf8_lossy(&line).trim_end_matches('\r'));
                }
                log.close();
            });
        }
        // stderr carries the odd warning (a port it could not bind): kept with the lines.
        let stderr = child.stderr.take().expect("stderr");
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.push(&aor, &format!("stderr: {line}"));
                }
            });
        }
        let baresip = Self {
            child: Some(child),
            dir,
            account: account.clone(),
            log,
        };
        let ready = baresip
            .log
            .wait_until(BARESIP_START_TIMEOUT, |inner| {
                (inner.ready || inner.eof).then_some(inner.ready)
            })
            .unwrap_or(false);
        assert!(
            ready,
            "baresip did not get ready within {BARESIP_START_TIMEOUT:?}:\n{}",
            baresip.log_text()
        );
        baresip
    }

    pub fn account(&self) -> &BaresipAccount {
        &self.account
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Every line printed so far (stdout; stderr lines prefixed `stderr: `), colours removed.
    pub fn lines(&self) -> Vec<String> {
        self.log.inner.lock().unwrap().lines.clone()
    }

    fn log_text(&self) -> String {
        self.lines().join("\n")
    }

    /// The registration events so far.
    pub fn events(&self) -> Vec<BaresipEvent> {
        self.log.inner.lock().unwrap().events.clone()
    }

    /// Waits until at least `n` events were printed and returns them all; panics after
    /// `timeout` with everything baresip printed.
    pub fn wait_for_events(&self, n: usize, timeout: Duration) -> Vec<BaresipEvent> {
        self.log
            .wait_until(timeout, |inner| {
                (inner.events.len() >= n).then(|| inner.events.clone())
            })
            .unwrap_or_else(|| {
                panic!(
                    "fewer than {n} registration events within {timeout:?}:\n{}",
                    self.log_text()
                )
            })
    }

    /// Waits for the first registration event; returns the bindings the 200 listed, or panics
    /// with the log when it was a failure or nothing came within `timeout`.
    pub fn wait_registered(&self, timeout: Duration) -> u32 {
        match self.wait_for_events(1, timeout).remove(0) {
            BaresipEvent::Registered { bindings } => bindings,
            failed => panic!("baresip did not register: {failed:?}\n{}", self.log_text()),
        }
    }

    /// SIGTERM, then waits (up to [`BARESIP_STOP_TIMEOUT`]) for baresip to unregister and exit;
    /// returns its exit status. [`Baresip::sip_stack_exited`] then tells whether its last
    /// transaction ended before it left. Panics (after SIGKILL) if it does not exit in time.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = self.child.as_ref().expect("baresip is not running").id() as i32;
        signal(pid, libc::SIGTERM);
        let exited = self
            .log
            .wait_until(BARESIP_STOP_TIMEOUT, |inner| inner.eof.then_some(()))
            .is_some();
        if !exited {
            signal(pid, libc::SIGKILL);
        }
        let status = self.child.take().unwrap().wait().expect("wait for baresip");
        assert!(
            exited,
            "baresip did not exit within {BARESIP_STOP_TIMEOUT:?} of SIGTERM:\n{}",
            self.log_text()
        );
        status
    }

    /// Whether baresip printed `ua: sip-stack exit` (at shutdown, after its unregister ended).
    pub fn sip_stack_exited(&self) -> bool {
        self.log.inner.lock().unwrap().stack_exited
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- baresip output ({}) ---\n{}",
                self.dir().display(),
                self.log_text()
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// --- raw requests --------------------------------------------------------------------------------

/// Sends `request` (the exact text, CRLF line ends) over UDP from a fresh socket to `registrar`
/// and returns the first final answer; panics if none comes within 5 s. For one-off requests;
/// use [`RawClient`] to keep the source address across an exchange.
pub fn send_register_raw(registrar: SocketAddr, request: &str) -> String {
    let mut client = RawClient::connect(registrar, Transport::Udp);
    client
        .exchange(request, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no answer from {registrar} to:\n{request}"))
}

enum RawConnection {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// One UDP socket or one TCP connection to the registrar, for requests written by hand
/// ([`RawRegister`]). Sends exactly what it is given, once (no retransmission).
pub struct RawClient {
    connection: RawConnection,
    pub transport: Transport,
    pub local: SocketAddr,
    pub registrar: SocketAddr,
}

impl RawClient {
    pub fn connect(registrar: SocketAddr, transport: Transport) -> Self {
        let connection = match transport {
            Transport::Udp => {
                RawConnection::Udp(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP"))
            }
            Transport::Tcp => RawConnection::Tcp(
                TcpStream::connect(registrar)
                    .unwrap_or_else(|e| panic!("connect to {registrar}: {e}")),
            ),
            Transport::Tls => panic!("the raw client speaks no TLS"),
        };
        let local = match &connection {
            RawConnection::Udp(socket) => socket.local_addr(),
            RawConnection::Tcp(stream) => stream.local_addr(),
        }
        .expect("local address");
        Self {
            connection,
            transport,
            local,
            registrar,
        }
    }

    /// Sends `request` and returns the first final answer (1xx skipped), or `None` when none
    /// came within `timeout` (or the TCP connection closed first).
    pub fn exchange(&mut self, request: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        match &mut self.connection {
            RawConnection::Udp(socket) => {
                socket
                    .send_to(request.as_bytes(), self.registrar)
                    .expect("send over UDP");
                let mut buf = vec![0u8; 65535];
                loop {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    socket
                        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                        .ok()?;
                    let (len, _) = socket.recv_from(&mut buf).ok()?;
                    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                    if status_code(&text).is_some_and(|code| code >= 200) {
                        return Some(text);
                    }
                }
            }
            RawConnection::Tcp(stream) => {
                stream.write_all(request.as_bytes()).expect("send over TCP");
                loop {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    stream
                        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                        .ok()?;
                    let text = read_message(stream)?;
                    if status_code(&text).is_some_and(|code| code >= 200) {
                        return Some(text);
                    }
                }
            }
        }
    }

    /// `request` for this connection's transport and local address, then [`RawClient::exchange`].
    pub fn register(&mut self, request: &RawRegister, timeout: Duration) -> Option<String> {
        let text = request.text(self.transport, self.local);
        self.exchange(&text, timeout)
    }
}

/// One message from a stream: the head up to the blank line and `Content-Length` bytes of body.
fn read_message(stream: &mut impl Read) -> Option<String> {
    let mut message = Vec::new();
    let mut byte = [0u8; 1];
    while !message.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        message.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&message).into_owned();
    let length: usize = header_values(&head, "Content-Length")
        .first()
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    message.extend_from_slice(&body);
    Some(String::from_utf8_lossy(&message).into_owned())
}

/// A REGISTER as a device sends it, for [`RawClient`]. One value is one registration dialog:
/// keep it and raise [`RawRegister::cseq`] for each new request (as a device does), or send the
/// same text twice for a retransmission.
#[derive(Clone, Debug)]
pub struct RawRegister {
    pub domain: String,
    pub user: String,
    pub call_id: String,
    pub from_tag: String,
    pub cseq: u32,
    /// `Some(n)`: an `Expires: n` header; `None`: none.
    pub expires: Option<u32>,
    /// The Contact header's value; `None`: `<sip:USER@LOCAL>` (with `;transport=tcp` over TCP).
    pub contact: Option<String>,
    /// The Authorization header's value ([`digest_authorization`]), if any.
    pub authorization: Option<String>,
    /// More header lines, without line ends.
    pub headers: Vec<String>,
    pub user_agent: String,
}

impl RawRegister {
    /// CSeq 1, Expires 60, a Call-ID and From tag unique in this process.
    pub fn new(domain: &str, user: &str) -> Self {
        let n = unique();
        let pid = std::process::id();
        Self {
            domain: domain.to_owned(),
            user: user.to_owned(),
            call_id: format!("raw-{pid}-{n}@127.0.0.1"),
            from_tag: format!("raw{pid}x{n}"),
            cseq: 1,
            expires: Some(60),
            contact: None,
            authorization: None,
            headers: Vec::new(),
            user_agent: "trunkline-test-raw".to_owned(),
        }
    }

    /// `sip:DOMAIN`: the Request-URI, and the digest `uri` to answer a challenge with.
    pub fn request_uri(&self) -> String {
        format!("sip:{}", self.domain)
    }

    /// The request text from `local` over `transport`, with a new Via branch each time.
    pub fn text(&self, transport: Transport, local: SocketAddr) -> String {
        let via_transport = transport.as_str().to_ascii_uppercase();
        let contact = self.contact.clone().unwrap_or_else(|| match transport {
            Transport::Udp => format!("<sip:{}@{local}>", self.user),
            _ => format!(
                "<sip:{}@{local};transport={}>",
                self.user,
                transport.as_str()
            ),
        });
        let mut text = format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{via_transport} {local};branch=z9hG4bK-raw-{pid}-{n};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag={tag}\r\n\
             To: <sip:{user}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: {contact}\r\n\
             User-Agent: {user_agent}\r\n",
            uri = self.request_uri(),
            pid = std::process::id(),
            n = unique(),
            user = self.user,
            domain = self.domain,
            tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
            user_agent = self.user_agent,
        );
        if let Some(expires) = self.expires {
            let _ = write!(text, "Expires: {expires}\r\n");
        }
        if let Some(authorization) = &self.authorization {
            let _ = write!(text, "Authorization: {authorization}\r\n");
        }
        for header in &self.headers {
            let _ = write!(text, "{header}\r\n");
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        text
    }
}

/// The status code of a response (`SIP/2.0 401 …` → 401).
pub fn status_code(response: &str) -> Option<u16> {
    response.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

/// The values of every header `name` (case-insensitive; compact forms not recognised), in
/// order, from the head of `message`.
pub fn header_values<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    message
        .split("\r\n")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
        .collect()
}

/// A `Digest` challenge (`WWW-Authenticate` or `Proxy-Authenticate` value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    /// `MD5` when the challenge names none.
    pub algorithm: DigestAlgorithm,
    /// The `qop` options offered (`["auth"]`), empty when none.
    pub qop: Vec<String>,
    pub opaque: Option<String>,
    pub stale: bool,
    /// Every parameter as given (names lower-cased, quotes removed).
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses `Digest k=v, k="v", …`; `None` for another scheme, a missing realm or nonce, or an
    /// algorithm other than MD5 and SHA-256.
    pub fn parse(value: &str) -> Option<Self> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let params = parse_auth_params(rest);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let algorithm = match get("algorithm").as_deref() {
            None => DigestAlgorithm::Md5,
            Some(name) if name.eq_ignore_ascii_case("MD5") => DigestAlgorithm::Md5,
            Some(name) if name.eq_ignore_ascii_case("SHA-256") => DigestAlgorithm::Sha256,
            Some(_) => return None,
        };
        Some(Self {
            realm: get("realm")?,
            nonce: get("nonce")?,
            algorithm,
            qop: get("qop")
                .map(|qop| qop.split(',').map(|q| q.trim().to_owned()).collect())
                .unwrap_or_default(),
            opaque: get("opaque"),
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            params,
        })
    }
}

/// Every `WWW-Authenticate` challenge of a response that [`Challenge::parse`] understands, in
/// the order of the headers (a registrar offering SHA-256 and MD5 sends one header each).
pub fn challenges(response: &str) -> Vec<Challenge> {
    header_values(response, "WWW-Authenticate")
        .into_iter()
        .filter_map(Challenge::parse)
        .collect()
}

/// `k=v, k="v, with comma", …` → `[(k, v)]`, names lower-cased, quotes and escapes removed.
fn parse_auth_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && *c != ',') {
            key.push(c);
        }
        if key.trim().is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| *c != ',') {
                    value.push(c);
                }
            }
        }
        params.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    params
}

/// The Authorization value answering `challenge` for a request `method uri` (RFC 7616; RFC 2617
/// without qop): with `qop=auth` when offered, the given `nc` (as 8 hex digits) and `cnonce`.
/// Sending the same value again replays the nonce with the same `nc`.
pub fn digest_authorization(
    challenge: &Challenge,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let algorithm = challenge.algorithm;
    let realm = &challenge.realm;
    let nonce = &challenge.nonce;
    let ha1 = algorithm.hex(&format!("{user}:{realm}:{password}"));
    let ha2 = algorithm.hex(&format!("{method}:{uri}"));
    let mut value = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={}",
        algorithm.name()
    );
    if challenge.qop.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
        let nc = format!("{nc:08x}");
        let response = algorithm.hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        let _ = write!(
            value,
            ", response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
        );
    } else {
        let response = algorithm.hex(&format!("{ha1}:{nonce}:{ha2}"));
        let _ = write!(value, ", response=\"{response}\"");
    }
    if let Some(opaque) = &challenge.opaque {
        let _ = write!(value, ", opaque=\"{opaque}\"");
    }
    value
}
