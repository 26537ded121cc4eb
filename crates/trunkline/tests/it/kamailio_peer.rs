//! The Kamailio harness itself, proven with clients that are not trunkline: sipsak and SIPp
//! from Debian, `openssl s_client`, and a minimal raw REGISTER client in this file for what
//! those cannot show (response headers, SHA-256 digest). These prove the peer; the engine's
//! tests prove trunkline against it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::kamailio::{
    free_udp_port, DigestAlgorithm, Kamailio, KamailioOptions, RegisterSeen, Transport,
};

const ALICE: &str = "alice";
const ALICE_PASSWORD: &str = "alice-s3cret";
const WAIT: Duration = Duration::from_secs(5);

// --- real clients --------------------------------------------------------------------------------

/// `sipsak -U`: one REGISTER (To `user@127.0.0.1`) of a contact for 60 s through
/// `127.0.0.1:port`, answering the digest challenge (MD5).
fn sipsak(kamailio: &Kamailio, transport: Transport, user: &str, password: &str) -> Output {
    let contact = format!("sip:{user}@127.0.0.1:{}", free_udp_port());
    let mut command = Command::new("sipsak");
    command
        .arg("-U")
        // A numeric host: for a name sipsak asks DNS for SRV records first (seconds without a
        // reachable resolver), even with an outbound proxy.
        .arg(format!("--sip-uri=sip:{user}@127.0.0.1"))
        .arg("--outbound-proxy=127.0.0.1")
        .arg(format!("--remote-port={}", kamailio.port(transport)))
        .arg(format!("--transport={}", transport.as_str()))
        .arg(format!("--password={password}"))
        .arg(format!("--contact={contact}"))
        .args(["--expires=60", "-i", "-vv"])
        .stdin(Stdio::null());
    if transport == Transport::Tls {
        command.arg(format!("--tls-ca-cert={}", kamailio.ca_cert().display()));
    }
    command
        .output()
        .expect("run sipsak (Debian package sipsak)")
}

fn output_text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn replies(seen: &[RegisterSeen]) -> Vec<Option<u16>> {
    seen.iter().map(|r| r.reply).collect()
}

// --- a minimal raw REGISTER client ----------------------------------------------------------------

struct Response {
    code: u16,
    head: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

enum Connection {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// Sends REGISTERs for one Call-ID with increasing CSeq, over UDP or TCP.
struct RawUac {
    connection: Connection,
    transport: Transport,
    local: SocketAddr,
    server: SocketAddr,
    domain: String,
    call_id: String,
    cseq: u32,
}

impl RawUac {
    fn new(kamailio: &Kamailio, transport: Transport) -> Self {
        let server = kamailio.addr(transport);
        let connection = match transport {
            Transport::Udp => {
                let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
                socket.set_read_timeout(Some(WAIT)).unwrap();
                Connection::Udp(socket)
            }
            Transport::Tcp => {
                let stream = TcpStream::connect(server).unwrap();
                stream.set_read_timeout(Some(WAIT)).unwrap();
                Connection::Tcp(stream)
            }
            Transport::Tls => panic!("the raw client speaks no TLS"),
        };
        let local = match &connection {
            Connection::Udp(socket) => socket.local_addr().unwrap(),
            Connection::Tcp(stream) => stream.local_addr().unwrap(),
        };
        Self {
            connection,
            transport,
            local,
            server,
            domain: kamailio.domain().to_owned(),
            call_id: format!("raw-{}-{}@127.0.0.1", std::process::id(), local.port()),
            cseq: 0,
        }
    }

    fn contact(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.local)
    }

    /// One REGISTER; `expires` becomes the `Expires` header, `contact_params` follow `<...>`.
    fn send(
        &mut self,
        user: &str,
        expires: Option<u32>,
        contact_params: &str,
        authorization: Option<&str>,
    ) -> Response {
        self.cseq += 1;
        let transport = self.transport.as_str().to_ascii_uppercase();
        let mut request = format!(
            "REGISTER sip:{domain} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch=z9hG4bK-raw-{cseq}-{port};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag=raw{port}\r\n\
             To: <sip:{user}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <{contact}>{contact_params}\r\n\
             User-Agent: raw-test-uac\r\n",
            domain = self.domain,
            local = self.local,
            port = self.local.port(),
            call_id = self.call_id,
            cseq = self.cseq,
            contact = self.contact(user),
        );
        if let Some(expires) = expires {
            request.push_str(&format!("Expires: {expires}\r\n"));
        }
        if let Some(authorization) = authorization {
            request.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        request.push_str("Content-Length: 0\r\n\r\n");
        let head = match &mut self.connection {
            Connection::Udp(socket) => {
                socket.send_to(request.as_bytes(), self.server).unwrap();
                let mut buf = [0u8; 65535];
                let (len, _) = socket.recv_from(&mut buf).expect("an answer over UDP");
                String::from_utf8_lossy(&buf[..len]).into_owned()
            }
            Connection::Tcp(stream) => {
                stream.write_all(request.as_bytes()).unwrap();
                read_head(stream).expect("an answer over TCP")
            }
        };
        let code = head
            .strip_prefix("SIP/2.0 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not a SIP response: {head}"));
        Response { code, head }
    }

    /// REGISTER, and on a 401 once more with credentials. Returns every response.
    fn register(
        &mut self,
        user: &str,
        password: &str,
        expires: Option<u32>,
        contact_params: &str,
    ) -> Vec<Response> {
        let first = self.send(user, expires, contact_params, None);
        if first.code != 401 {
            return vec![first];
        }
        let challenge = first
            .header("WWW-Authenticate")
            .expect("a 401 carries WWW-Authenticate")
            .to_owned();
        let authorization =
            digest_authorization(&challenge, user, password, &format!("sip:{}", self.domain));
        let second = self.send(user, expires, contact_params, Some(&authorization));
        vec![first, second]
    }
}

/// Reads one message head (up to the blank line) from a stream; `None` on EOF/error.
fn read_head(stream: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Parameters of a `Digest ...` challenge.
fn challenge_params(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge
        .strip_prefix("Digest ")
        .expect("a Digest challenge");
    rest.split(',')
        .filter_map(|part| {
            let (key, value) = part.trim().split_once('=')?;
            Some((key.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// RFC 7616 response to `challenge` for a REGISTER to `uri` (qop=auth when offered).
fn digest_authorization(challenge: &str, user: &str, password: &str, uri: &str) -> String {
    let params = challenge_params(challenge);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    };
    let realm = get("realm").expect("realm");
    let nonce = get("nonce").expect("nonce");
    let algorithm = match get("algorithm").unwrap_or("MD5") {
        "MD5" => DigestAlgorithm::Md5,
        "SHA-256" => DigestAlgorithm::Sha256,
        other => panic!("algorithm {other}"),
    };
    let ha1 = algorithm.hex(&format!("{user}:{realm}:{password}"));
    let ha2 = algorithm.hex(&format!("REGISTER:{uri}"));
    let name = algorithm.name();
    let base = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={name}"
    );
    if get("qop").is_some_and(|qop| qop.split(',').any(|q| q.trim() == "auth")) {
        let (nc, cnonce) = ("00000001", "0a4f113b");
        let response = algorithm.hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        format!("{base}, response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\"")
    } else {
        let response = algorithm.hex(&format!("{ha1}:{nonce}:{ha2}"));
        format!("{base}, response=\"{response}\"")
    }
}

// --- tests ---------------------------------------------------------------------------------------

#[test]
fn kamailio_udp_register_with_the_right_password_creates_a_binding_and_is_counted() {
    let started = Instant::now();
    let kamailio = Kamailio::start(KamailioOptions::default().subscriber(ALICE, ALICE_PASSWORD));
    let start_time = started.elapsed();

    let output = sipsak(&kamailio, Transport::Udp, ALICE, ALICE_PASSWORD);
    assert!(output.status.success(), "{}", output_text(&output));

    kamailio.wait_for_reply(ALICE, 200, WAIT);
    let seen = kamailio.wait_for_registers(ALICE, 2, WAIT);
    assert_eq!(replies(&seen), [Some(401), Some(200)], "{seen:#?}");
    assert_eq!(seen[0].auth_user, None);
    assert_eq!(seen[0].auth_result, Some(-5), "no credentials yet");
    assert_eq!(seen[1].auth_user.as_deref(), Some(ALICE));
    assert_eq!(seen[1].expires, Some(60));
    assert_eq!(seen[1].transport, Transport::Udp);
    assert_eq!(kamailio.count(ALICE), 2);
    assert_eq!(kamailio.counts().get(ALICE), Some(&2));
    assert_eq!(kamailio.count("nobody"), 0);

    let binding = kamailio.wait_for_binding(ALICE, |b| b.transport == Transport::Udp, WAIT);
    assert!(binding.contact.starts_with("sip:alice@127.0.0.1:"));
    assert_eq!(binding.granted(), 60, "{binding:#?}");
    assert!((55..=60).contains(&binding.remaining()), "{binding:#?}");
    assert!(binding.user_agent.starts_with("sipsak"), "{binding:#?}");
    assert_eq!(binding.connection_id, -1);
    assert_eq!(binding.source(), Some(seen[1].source));
    assert_eq!(
        binding.socket.as_deref(),
        Some(format!("udp:{}", kamailio.addr(Transport::Udp)).as_str())
    );
    eprintln!(
        "Kamailio started in {start_time:?}; test took {:?}",
        started.elapsed()
    );
}

#[test]
fn kamailio_wrong_password_never_creates_a_binding() {
    let kamailio = Kamailio::start(KamailioOptions::default().subscriber(ALICE, ALICE_PASSWORD));
    let output = sipsak(&kamailio, Transport::Udp, ALICE, "not-the-password");
    assert!(!output.status.success(), "{}", output_text(&output));

    // Once every REGISTER has been answered, every write Kamailio would make is done.
    let seen = kamailio.wait_for_answered(ALICE, 2, WAIT);
    eprintln!("sipsak with a wrong password: {seen:#?}");
    assert!(
        seen.iter().all(|r| r.reply == Some(401)),
        "a wrong password is answered with a fresh 401: {seen:#?}"
    );
    assert!(seen
        .iter()
        .any(|r| r.auth_user.is_some() && r.auth_result == Some(-2)));
    assert!(kamailio.bindings(ALICE).is_empty());
    assert!(kamailio.all_bindings().is_empty());
}

#[test]
fn kamailio_interval_too_brief_user_gets_423_with_min_expires() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("brief", "brief-pw")
            .interval_too_brief("brief", 120),
    );
    let mut uac = RawUac::new(&kamailio, Transport::Udp);

    let responses = uac.register("brief", "brief-pw", Some(30), "");
    let codes: Vec<u16> = responses.iter().map(|r| r.code).collect();
    assert_eq!(codes, [401, 423]);
    assert_eq!(responses[1].header("Min-Expires"), Some("120"));

    // A Contact `expires` parameter wins over the Expires header.
    let responses = uac.register("brief", "brief-pw", Some(3600), ";expires=60");
    assert_eq!(responses[1].code, 423);
    assert!(kamailio.bindings("brief").is_empty());

    let responses = uac.register("brief", "brief-pw", Some(120), "");
    assert_eq!(responses[1].code, 200, "{}", responses[1].head);
    let binding = kamailio.wait_for_binding("brief", |_| true, WAIT);
    assert_eq!(binding.granted(), 120);
    let seen = kamailio.wait_for_answered("brief", 6, WAIT);
    assert_eq!(
        replies(&seen),
        [401, 423, 401, 423, 401, 200].map(Some),
        "{seen:#?}"
    );
    assert_eq!(seen[3].expires, Some(60));
}

#[test]
fn kamailio_service_unavailable_user_gets_503_with_retry_after_and_forbidden_user_403() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("busy", "pw")
            .service_unavailable("busy", 7)
            .forbidden("banned"),
    );
    let mut uac = RawUac::new(&kamailio, Transport::Udp);

    let responses = uac.register("busy", "pw", Some(60), "");
    assert_eq!(responses.len(), 1, "no challenge before the 503");
    assert_eq!(responses[0].code, 503, "{}", responses[0].head);
    assert_eq!(responses[0].header("Retry-After"), Some("7"));
    assert_eq!(responses[0].header("WWW-Authenticate"), None);

    let responses = uac.register("banned", "whatever", Some(60), "");
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].code, 403, "{}", responses[0].head);

    assert_eq!(
        replies(&kamailio.wait_for_answered("busy", 1, WAIT)),
        [Some(503)]
    );
    kamailio.wait_for_reply("banned", 403, WAIT);
    assert_eq!(kamailio.count("banned"), 1);
    // Waiting for a REGISTER that never comes ends at its timeout.
    let started = Instant::now();
    assert!(kamailio
        .try_wait_for_registers("busy", 2, Duration::from_millis(200))
        .is_none());
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(kamailio.all_bindings().is_empty());
}

#[test]
fn kamailio_tcp_register_with_sipsak() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .tcp()
            .subscriber(ALICE, ALICE_PASSWORD),
    );
    let output = sipsak(&kamailio, Transport::Tcp, ALICE, ALICE_PASSWORD);
    assert!(output.status.success(), "{}", output_text(&output));
    let binding = kamailio.wait_for_binding(ALICE, |b| b.transport == Transport::Tcp, WAIT);
    assert!(binding.connection_id > 0, "{binding:#?}");
    assert!(binding
        .received
        .as_deref()
        .unwrap()
        .ends_with(";transport=tcp"));
    assert_eq!(binding.granted(), 60);
    let seen = kamailio.wait_for_registers(ALICE, 2, WAIT);
    assert!(seen.iter().all(|r| r.transport == Transport::Tcp));
}

#[test]
fn kamailio_tls_answers_with_a_certificate_the_harness_ca_verifies() {
    let kamailio = Kamailio::start(KamailioOptions::default().without_udp().tls());
    // OpenSSL's own strict verification (chain to the harness CA, IP and DNS name), TLS 1.3.
    let (answer, protocol) = openssl_s_client_options(&kamailio);
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert!(protocol.contains("TLSv1.3"), "{protocol}");
}

#[test]
fn kamailio_tls_register_with_sipsak() {
    // sipsak (GnuTLS) loses the reply on TLS 1.3 connections: it resets after Kamailio's 401.
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .tls()
            .tls_method("TLSv1.2")
            .subscriber(ALICE, ALICE_PASSWORD),
    );
    let output = sipsak(&kamailio, Transport::Tls, ALICE, ALICE_PASSWORD);
    assert!(output.status.success(), "{}", output_text(&output));
    let binding = kamailio.wait_for_binding(ALICE, |b| b.transport == Transport::Tls, WAIT);
    assert!(binding
        .received
        .as_deref()
        .unwrap()
        .ends_with(";transport=tls"));
    assert_eq!(binding.granted(), 60);
    assert_eq!(
        replies(&kamailio.wait_for_answered(ALICE, 2, WAIT)),
        [Some(401), Some(200)]
    );
}

/// `openssl s_client` with strict verification against the harness CA; sends an OPTIONS and
/// returns the first line of the answer and what s_client said about the session.
fn openssl_s_client_options(kamailio: &Kamailio) -> (String, String) {
    let addr = kamailio.addr(Transport::Tls);
    let mut child = Command::new("openssl")
        .args(["s_client", "-brief", "-ign_eof", "-verify_return_error"])
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(kamailio.ca_cert())
        .args(["-verify_ip", "127.0.0.1", "-verify_hostname", "localhost"])
        .args(["-servername", "localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl");
    let mut stdin = child.stdin.take().unwrap();
    let request = format!(
        "OPTIONS sip:{addr};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-sclient;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=sclient\r\nTo: <sip:{addr}>\r\n\
         Call-ID: sclient-{}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        std::process::id()
    );
    stdin.write_all(request.as_bytes()).unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let first = BufReader::new(stdout).lines().next();
        let _ = tx.send(first);
    });
    let first = rx.recv_timeout(WAIT);
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    match first {
        Ok(Some(Ok(line))) => (line, stderr),
        other => panic!(
            "no answer over TLS ({other:?}); openssl said: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[test]
fn kamailio_sha256_challenge_carries_the_algorithm_and_a_sha256_answer_registers() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .algorithm(DigestAlgorithm::Sha256)
            .subscriber(ALICE, ALICE_PASSWORD),
    );
    let mut uac = RawUac::new(&kamailio, Transport::Udp);
    let responses = uac.register(ALICE, ALICE_PASSWORD, Some(60), "");
    assert_eq!(responses[0].code, 401);
    let challenge = responses[0].header("WWW-Authenticate").unwrap();
    let params = challenge_params(challenge);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("algorithm"), Some("SHA-256"), "{challenge}");
    assert_eq!(get("qop"), Some("auth"), "{challenge}");
    assert_eq!(get("realm"), Some(kamailio.domain()), "{challenge}");
    assert!(challenge.contains("algorithm=SHA-256"), "{challenge}");
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[1].code, 200, "{}", responses[1].head);
    // The 200 lists the bindings with what was granted.
    let contact = responses[1].header("Contact").unwrap();
    assert!(contact.contains(";expires=60"), "{contact}");
    let binding = kamailio.wait_for_binding(ALICE, |_| true, WAIT);
    assert_eq!(binding.contact, uac.contact(ALICE));
}

#[test]
fn kamailio_md5_without_qop_and_precomputed_ha1_over_tcp() {
    let realm = "ha1.example";
    let bob_ha1 = DigestAlgorithm::Md5.hex(&format!("bob:{realm}:bob-pw"));
    let bob_ha1b = DigestAlgorithm::Md5.hex(&format!("bob@{realm}:{realm}:bob-pw"));
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .without_udp()
            .tcp()
            .qop(false)
            .domain(realm)
            .subscriber(ALICE, ALICE_PASSWORD)
            .subscriber_ha1("bob", &bob_ha1, &bob_ha1b),
    );
    assert!(!kamailio.ports().contains_key(&Transport::Udp));
    assert!(kamailio.config().contains("\"calculate_ha1\", 0"));

    let mut uac = RawUac::new(&kamailio, Transport::Tcp);
    for (user, password) in [("bob", "bob-pw"), (ALICE, ALICE_PASSWORD)] {
        let responses = uac.register(user, password, Some(60), "");
        let challenge = responses[0].header("WWW-Authenticate").unwrap();
        assert!(!challenge.contains("qop"), "{challenge}");
        assert!(challenge.contains("algorithm=MD5"), "{challenge}");
        assert_eq!(responses[1].code, 200, "{user}: {}", responses[1].head);
        kamailio.wait_for_binding(user, |b| b.transport == Transport::Tcp, WAIT);
        kamailio.wait_for_answered(user, 2, WAIT);
    }
    // Both REGISTER pairs came over the one TCP connection.
    let sources: Vec<SocketAddr> = kamailio.all_registers().iter().map(|r| r.source).collect();
    assert!(sources.iter().all(|s| *s == uac.local), "{sources:?}");
}

#[test]
fn kamailio_restart_keeps_ports_and_bindings_and_closes_tcp_connections() {
    let mut kamailio = Kamailio::start(
        KamailioOptions::default()
            .tcp()
            .subscriber(ALICE, ALICE_PASSWORD),
    );
    let ports = kamailio.ports().clone();
    let mut tcp = RawUac::new(&kamailio, Transport::Tcp);
    assert_eq!(
        tcp.register(ALICE, ALICE_PASSWORD, Some(60), "")[1].code,
        200
    );
    kamailio.wait_for_binding(ALICE, |_| true, WAIT);
    // A challenge taken before the restart, answered after it.
    let stale_challenge = {
        let mut udp = RawUac::new(&kamailio, Transport::Udp);
        let first = udp.send(ALICE, Some(60), "", None);
        (udp, first.header("WWW-Authenticate").unwrap().to_owned())
    };
    // The script logs its reply just after sending it: wait for that line before stopping.
    kamailio.wait_for_answered(ALICE, 3, WAIT);

    let started = Instant::now();
    assert!(kamailio.stop().success());
    let stop_time = started.elapsed();
    assert!(!kamailio.is_running());
    let Connection::Tcp(stream) = &mut tcp.connection else {
        unreachable!()
    };
    assert!(
        read_head(stream).is_none(),
        "Kamailio's stop closes the TCP connection"
    );
    assert_eq!(
        kamailio.ping(Transport::Udp, Duration::from_millis(300)),
        None
    );
    assert_eq!(
        kamailio.ping(Transport::Tcp, Duration::from_millis(300)),
        None
    );

    let started = Instant::now();
    kamailio.restart();
    let restart_time = started.elapsed();
    assert_eq!(kamailio.ports(), &ports);
    assert_eq!(kamailio.ping(Transport::Udp, WAIT), Some(200));
    // usrloc loaded the binding from the database.
    assert_eq!(kamailio.bindings(ALICE).len(), 1);

    let (mut udp, challenge) = stale_challenge;
    let authorization = digest_authorization(
        &challenge,
        ALICE,
        ALICE_PASSWORD,
        &format!("sip:{}", kamailio.domain()),
    );
    // A nonce from before the restart is answered with a fresh challenge: with `stale=true`
    // (-4) when it was made in an earlier second than Kamailio's start, without (-1: the new
    // process has a new nonce secret) when in the same second.
    let after = udp.send(ALICE, Some(60), "", Some(&authorization));
    assert_eq!(after.code, 401, "{}", after.head);
    let challenge = after.header("WWW-Authenticate").unwrap();
    let seen = kamailio.wait_for_answered(ALICE, 4, WAIT);
    match seen.last().unwrap().auth_result {
        Some(-4) => assert!(challenge.contains("stale=true"), "{challenge}"),
        Some(-1) => assert!(!challenge.contains("stale"), "{challenge}"),
        other => panic!("old nonce: {other:?} {challenge}"),
    }

    let mut tcp = RawUac::new(&kamailio, Transport::Tcp);
    assert_eq!(
        tcp.register(ALICE, ALICE_PASSWORD, Some(60), "")[1].code,
        200
    );
    kamailio.wait_for_bindings(ALICE, |b| b.len() >= 2, WAIT);
    kamailio.wait_for_answered(ALICE, 6, WAIT);
    assert_eq!(kamailio.count(ALICE), 6, "counts carry on across restarts");
    eprintln!("stop took {stop_time:?}, restart {restart_time:?}");
}

#[test]
fn kamailio_killed_leaves_nothing_listening_and_restarts_with_its_bindings() {
    let mut kamailio = Kamailio::start(
        KamailioOptions::default()
            .tcp()
            .subscriber(ALICE, ALICE_PASSWORD),
    );
    let mut uac = RawUac::new(&kamailio, Transport::Udp);
    assert_eq!(
        uac.register(ALICE, ALICE_PASSWORD, Some(60), "")[1].code,
        200
    );
    kamailio.wait_for_binding(ALICE, |_| true, WAIT);
    kamailio.kill();
    assert!(!kamailio.is_running());
    assert_eq!(
        kamailio.ping(Transport::Udp, Duration::from_millis(300)),
        None
    );
    assert!(TcpStream::connect(kamailio.addr(Transport::Tcp)).is_err());
    kamailio.restart();
    assert_eq!(kamailio.ping(Transport::Tcp, WAIT), Some(200));
    assert_eq!(kamailio.bindings(ALICE).len(), 1);
}

#[test]
fn kamailio_prepared_instance_is_silent_until_it_comes_up() {
    let mut kamailio =
        Kamailio::prepare(KamailioOptions::default().subscriber(ALICE, ALICE_PASSWORD));
    assert!(!kamailio.is_running());
    assert_eq!(
        kamailio.ping(Transport::Udp, Duration::from_millis(300)),
        None
    );
    kamailio.restart();
    assert_eq!(kamailio.ping(Transport::Udp, WAIT), Some(200));
    let mut uac = RawUac::new(&kamailio, Transport::Udp);
    assert_eq!(uac.register(ALICE, ALICE_PASSWORD, None, "")[1].code, 200);
    let binding = kamailio.wait_for_binding(ALICE, |_| true, WAIT);
    assert_eq!(binding.granted(), 3600, "no expiry asked: default_expires");
    assert_eq!(kamailio.wait_for_answered(ALICE, 2, WAIT)[1].expires, None);
}

#[test]
fn kamailio_sipp_registers_with_digest() {
    let kamailio = Kamailio::start(KamailioOptions::default().subscriber(ALICE, ALICE_PASSWORD));
    let domain = kamailio.domain();
    let scenario = SIPP_REGISTER.replace("DOMAIN", domain);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("register.xml"), scenario).unwrap();
    let output = Command::new("sipp")
        .arg(kamailio.addr(Transport::Udp).to_string())
        .args(["-sf", "register.xml", "-m", "1", "-nostdin", "-t", "u1"])
        .args(["-s", ALICE, "-au", ALICE, "-ap", ALICE_PASSWORD])
        .args(["-auth_uri", domain, "-i", "127.0.0.1"])
        .arg("-p")
        .arg(free_udp_port().to_string())
        .arg("-mp")
        .arg(free_udp_port().to_string())
        .args(["-timeout", "10s", "-timeout_error"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run sipp (Debian package sip-tester)");
    assert!(output.status.success(), "{}", output_text(&output));
    kamailio.wait_for_reply(ALICE, 200, WAIT);
    assert_eq!(replies(&kamailio.registers(ALICE)), [Some(401), Some(200)]);
    let binding = kamailio.wait_for_binding(ALICE, |_| true, WAIT);
    assert_eq!(binding.granted(), 60);
    assert_eq!(binding.user_agent, "SIPp");
}

const SIPP_REGISTER: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="REGISTER with digest">
  <send retrans="500">
    <![CDATA[

      REGISTER sip:DOMAIN SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[service]@DOMAIN>;tag=[call_number]
      To: <sip:[service]@DOMAIN>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[service]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Expires: 60
      User-Agent: SIPp
      Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[

      REGISTER sip:DOMAIN SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[service]@DOMAIN>;tag=[call_number]
      To: <sip:[service]@DOMAIN>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:[service]@[local_ip]:[local_port]>
      [authentication]
      Max-Forwards: 70
      Expires: 60
      User-Agent: SIPp
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"#;
