//! The outbound registration engine against a real registrar (Kamailio): registrations created
//! through the API really REGISTER (UDP, TCP, TLS; MD5 and SHA-256 with qop=auth), stay
//! registered, re-register on change, unregister on delete, come back after a restart, and the
//! API reports what happened. Waits are on Kamailio's log/location table or the status
//! endpoint, never fixed sleeps.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    create_registration, json as read, registration_status, wait_for_registration, Method, Server,
    ServerOptions, Tenant,
};
use crate::dns::Dns;
use crate::kamailio::{DigestAlgorithm, Kamailio, KamailioOptions, Transport};

const WAIT: Duration = Duration::from_secs(20);

/// Polls the history endpoint until it lists at least `min` attempts (written in batches).
fn wait_for_history(server: &Server, tenant: &Tenant, id: &str, min: usize) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body) = read(
            server
                .client
                .get(server.url(&format!("/v1/registrations/{id}/history")))
                .bearer_auth(&tenant.api_key)
                .send()
                .unwrap(),
        );
        assert_eq!(code, 200, "{body}");
        if body["items"].as_array().map_or(0, Vec::len) >= min {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "history never reached {min}: {body:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ultravox(server: &Server, tenant: &Tenant, id: &str) -> Value {
    let (status, body) = read(
        server
            .ultravox(Method::GET, &format!("/api/sip/registrations/{id}"), tenant)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    body
}

fn state(body: &Value) -> &str {
    body["state"].as_str().unwrap_or_default()
}

fn registered(body: &Value) -> bool {
    state(body) == "registered"
}

/// `proxy` for Kamailio's `transport` port.
fn proxy(kamailio: &Kamailio, transport: Transport) -> String {
    let addr = kamailio.addr(transport);
    match transport {
        Transport::Udp => addr.to_string(),
        other => format!("sip:{addr};transport={}", other.as_str()),
    }
}

/// A server with the engine on that unregisters its bindings when it stops.
fn unregistering_on_stop() -> Server {
    Server::start_with(ServerOptions {
        env: vec![(
            "TRUNKLINE_OUTBOUND_UNREGISTER_ON_SHUTDOWN".into(),
            "true".into(),
        )],
        engine: true,
        ..ServerOptions::default()
    })
}

fn fast_retries() -> Vec<(String, String)> {
    vec![
        ("TRUNKLINE_OUTBOUND_BACKOFF_BASE_SECS".into(), "1".into()),
        ("TRUNKLINE_OUTBOUND_BACKOFF_CAP_SECS".into(), "1".into()),
    ]
}

#[test]
fn registers_over_udp_tcp_and_tls_and_reports_it() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .tcp()
            .tls()
            .subscriber("udp-user", "udp-secret-1")
            .subscriber("tcp-user", "tcp-secret-1")
            .subscriber("tls-user", "tls-secret-1"),
    );
    let server = Server::start_with(ServerOptions {
        env: vec![(
            "TRUNKLINE_SIP_CA_FILE".into(),
            kamailio.ca_cert().display().to_string(),
        )],
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    for (user, password, transport) in [
        ("udp-user", "udp-secret-1", Transport::Udp),
        ("tcp-user", "tcp-secret-1", Transport::Tcp),
        ("tls-user", "tls-secret-1", Transport::Tls),
    ] {
        let id = create_registration(
            &server,
            &tenant,
            json!({"username": user, "password": password, "proxy": proxy(&kamailio, transport)}),
        );
        let binding = kamailio.wait_for_binding(user, |_| true, WAIT);
        assert_eq!(binding.transport, transport, "{user}");
        assert!(
            binding
                .contact
                .contains(&format!(";transport={}", transport.as_str())),
            "explicit Contact transport: {}",
            binding.contact
        );
        let status = wait_for_registration(&server, &tenant, &id, registered);
        assert_eq!(status["lastCode"], 200, "{user}");
        assert_eq!(status["transport"], transport.as_str());
        assert_eq!(status["consecutiveFailures"], 0);
        assert!(status["expiresAt"].is_string());
        assert_eq!(ultravox(&server, &tenant, &id)["successful"], true);
        // One challenge round: the unauthenticated REGISTER and the answer.
        let seen = kamailio.registers(user);
        assert_eq!(seen.len(), 2, "{user}: {seen:#?}");
        assert_eq!(seen[0].auth_user, None);
        assert_eq!(seen[1].auth_user.as_deref(), Some(user));
        assert_eq!(seen[0].call_id, seen[1].call_id, "stable Call-ID");
        assert!(seen[1].cseq > seen[0].cseq, "CSeq increases");
    }
}

#[test]
fn answers_sha256_challenges_with_qop_auth() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .algorithm(DigestAlgorithm::Sha256)
            .qop(true)
            .subscriber("sha-user", "sha-secret-1"),
    );
    let server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "sha-user", "password": "sha-secret-1", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    kamailio.wait_for_binding("sha-user", |_| true, WAIT);
    wait_for_registration(&server, &tenant, &id, registered);
}

#[test]
fn wrong_password_fails_auth_after_one_round_and_does_not_retry() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("wrong-user", "the-right-one")
            .subscriber("witness", "witness-secret"),
    );
    let server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "wrong-user", "password": "not-the-password", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    let status = wait_for_registration(&server, &tenant, &id, |b| state(b) == "failed_auth");
    assert_eq!(status["lastCode"], 401);
    assert_eq!(status["failedBy"], "remote");
    assert_eq!(ultravox(&server, &tenant, &id)["successful"], false);
    // The next attempt is an hour away (outbound.failed_auth_retry_secs).
    let last = chrono_secs(&status["lastAttemptAt"]);
    let next = chrono_secs(&status["nextAttemptAt"]);
    assert!(next - last >= 3599, "next attempt {next} vs last {last}");
    // A later registration registering proves time passed; the wrong one sent nothing more.
    let witness = create_registration(
        &server,
        &tenant,
        json!({"username": "witness", "password": "witness-secret", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    wait_for_registration(&server, &tenant, &witness, registered);
    assert_eq!(
        kamailio.count("wrong-user"),
        2,
        "{:#?}",
        kamailio.registers("wrong-user")
    );
    assert!(kamailio.bindings("wrong-user").is_empty());

    // Fixing the password re-registers at once, and the binding appears.
    let (code, _) = read(
        server
            .ultravox(
                Method::PATCH,
                &format!("/api/sip/registrations/{id}"),
                &tenant,
            )
            .json(&json!({"password": "the-right-one"}))
            .send()
            .unwrap(),
    );
    assert_eq!(code, 200);
    kamailio.wait_for_binding("wrong-user", |_| true, WAIT);
    wait_for_registration(&server, &tenant, &id, registered);
}

#[test]
fn proxy_challenges_are_answered_in_proxy_authorization() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("behind-proxy", "proxy-secret")
            .proxy_auth("behind-proxy")
            .subscriber("wrong-behind-proxy", "the-right-one")
            .proxy_auth("wrong-behind-proxy"),
    );
    let server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "behind-proxy", "password": "proxy-secret", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    // proxy_authenticate accepted the answer: only a Proxy-Authorization gets a binding here.
    kamailio.wait_for_binding("behind-proxy", |_| true, WAIT);
    wait_for_registration(&server, &tenant, &id, registered);
    let seen = kamailio.registers("behind-proxy");
    assert_eq!(
        seen.iter().map(|r| r.reply).collect::<Vec<_>>(),
        [Some(407), Some(200)],
        "{seen:#?}"
    );
    assert_eq!(seen[1].auth_user.as_deref(), Some("behind-proxy"));
    let history = wait_for_history(&server, &tenant, &id, 2);
    let codes: Vec<_> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["code"].clone())
        .collect();
    assert_eq!(codes, [json!(200), json!(407)], "newest first: {history:#}");

    // A wrong password behind a proxy challenge fails the same way as behind a 401.
    let wrong = create_registration(
        &server,
        &tenant,
        json!({"username": "wrong-behind-proxy", "password": "not-it", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    let status = wait_for_registration(&server, &tenant, &wrong, |b| state(b) == "failed_auth");
    assert_eq!(status["lastCode"], 407);
    assert_eq!(status["failedBy"], "remote");
    assert_eq!(kamailio.count("wrong-behind-proxy"), 2);
    assert!(kamailio.bindings("wrong-behind-proxy").is_empty());
}

/// An RFC 3339 time from a response.
fn time_of(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    chrono::DateTime::parse_from_rfc3339(text).unwrap()
}

/// RFC 3339 → Unix seconds.
fn chrono_secs(value: &Value) -> i64 {
    time_of(value).timestamp()
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("brief-user", "brief-secret")
            .interval_too_brief("brief-user", 1800),
    );
    let server = Server::start_with(ServerOptions {
        env: vec![("TRUNKLINE_OUTBOUND_EXPIRES_SECS".into(), "120".into())],
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "brief-user", "password": "brief-secret", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    let binding = kamailio.wait_for_binding("brief-user", |_| true, WAIT);
    assert_eq!(binding.granted(), 1800);
    let status = wait_for_registration(&server, &tenant, &id, registered);
    let granted = chrono_secs(&status["expiresAt"]) - chrono_secs(&status["lastAttemptAt"]);
    assert!((1798..=1801).contains(&granted), "granted {granted}");
    let seen = kamailio.registers("brief-user");
    assert!(seen.iter().any(|r| r.reply == Some(423)), "{seen:#?}");
    assert_eq!(seen.last().unwrap().expires, Some(1800));
}

#[test]
fn service_unavailable_waits_for_retry_after() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("busy-user", "busy-secret")
            .service_unavailable("busy-user", 3),
    );
    let mut env = fast_retries();
    env.push(("TRUNKLINE_OUTBOUND_EXPIRES_SECS".into(), "60".into()));
    let server = Server::start_with(ServerOptions {
        env,
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "busy-user", "password": "busy-secret", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    let status = wait_for_registration(&server, &tenant, &id, |b| state(b) == "failed_registrar");
    assert_eq!(status["lastCode"], 503);
    assert_eq!(status["lastPhrase"], "Service Unavailable");
    assert!(chrono_secs(&status["nextAttemptAt"]) - chrono_secs(&status["lastAttemptAt"]) >= 3);
    // The second REGISTER comes no sooner than Retry-After (backoff alone would be ≤ 1 s).
    let first_seen = Instant::now();
    kamailio.wait_for_registers("busy-user", 2, WAIT);
    assert!(
        first_seen.elapsed() >= Duration::from_millis(2500),
        "retried after {:?}",
        first_seen.elapsed()
    );
}

#[test]
fn nothing_listening_fails_then_registers_when_the_registrar_comes_up() {
    let kamailio = Kamailio::prepare(
        KamailioOptions::default()
            .tcp()
            .without_udp()
            .subscriber("late-user", "late-secret"),
    );
    let server = Server::start_with(ServerOptions {
        env: fast_retries(),
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "late-user", "password": "late-secret", "proxy": proxy(&kamailio, Transport::Tcp)}),
    );
    let status = wait_for_registration(&server, &tenant, &id, |b| {
        matches!(state(b), "failed_transport" | "failed_timeout")
    });
    assert_eq!(status["failedBy"], "local");
    assert!(status["consecutiveFailures"].as_u64().unwrap() >= 1);
    assert_eq!(ultravox(&server, &tenant, &id)["successful"], false);
    let mut kamailio = kamailio;
    kamailio.restart();
    kamailio.wait_for_binding("late-user", |_| true, WAIT);
    let status = wait_for_registration(&server, &tenant, &id, registered);
    assert_eq!(status["consecutiveFailures"], 0);
}

#[test]
fn a_registrar_that_never_answers_over_udp_times_out_after_retransmissions() {
    // A socket that takes REGISTERs and answers nothing.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(45)))
        .unwrap();
    let server = Server::start_with(ServerOptions {
        engine: true,
        env: fast_retries(),
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "nobody", "password": "unheard", "proxy": silent.local_addr().unwrap().to_string()}),
    );
    // Timer E retransmits the same transaction (one branch) until Timer F, 30 s.
    let mut branches = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut first_sent = None;
    while branches.len() < 4 {
        let (len, _) = silent.recv_from(&mut buffer).expect("a REGISTER");
        first_sent.get_or_insert_with(Instant::now);
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        assert!(text.starts_with("REGISTER "), "{text}");
        let branch = text
            .split("branch=")
            .nth(1)
            .and_then(|rest| rest.split([';', '\r']).next())
            .unwrap()
            .to_owned();
        branches.push(branch);
    }
    assert!(
        branches.iter().all(|b| *b == branches[0]),
        "retransmissions of one transaction: {branches:?}"
    );
    let first_sent = first_sent.unwrap();
    assert_eq!(
        registration_status(&server, &tenant, &id)["state"],
        "registering"
    );
    let deadline = Instant::now() + Duration::from_secs(45);
    let status = loop {
        let status = registration_status(&server, &tenant, &id);
        if state(&status) != "registering" {
            break status;
        }
        assert!(Instant::now() < deadline, "still registering: {status:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(state(&status), "failed_timeout", "{status:#}");
    assert_eq!(status["failedBy"], "local");
    assert_eq!(status["lastCode"], Value::Null);
    assert_eq!(status["lastPhrase"], "no final response within 30 s");
    // At trunkline's 30 s attempt timeout, below RFC 3261's 32 s Timer F (polled every 200 ms).
    let gave_up = first_sent.elapsed();
    assert!(
        (Duration::from_secs(29)..Duration::from_millis(31_500)).contains(&gave_up),
        "gave up after {gave_up:?}"
    );
    // The retry (a new transaction, within the 1 s backoff) is in flight for up to 30 s: all
    // that time the registration shows the failure it has had, in every dialect.
    loop {
        let (len, _) = silent.recv_from(&mut buffer).expect("the retry");
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        if !text.contains(&branches[0]) {
            break;
        }
    }
    let status = registration_status(&server, &tenant, &id);
    assert_eq!(state(&status), "failed_timeout", "{status:#}");
    assert_eq!(status["consecutiveFailures"], 1, "{status:#}");
    assert_eq!(ultravox(&server, &tenant, &id)["successful"], false);
}

#[test]
fn delete_unregisters_and_patch_moves_the_binding() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("first-aor", "move-secret")
            .subscriber("second-aor", "move-secret"),
    );
    let server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "first-aor", "password": "move-secret", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    kamailio.wait_for_binding("first-aor", |_| true, WAIT);
    wait_for_registration(&server, &tenant, &id, registered);

    // A new AOR: the old binding is removed, the new one appears.
    let (code, _) = read(
        server
            .ultravox(
                Method::PATCH,
                &format!("/api/sip/registrations/{id}"),
                &tenant,
            )
            .json(&json!({"username": "second-aor"}))
            .send()
            .unwrap(),
    );
    assert_eq!(code, 200);
    kamailio.wait_for_binding("second-aor", |_| true, WAIT);
    kamailio.wait_for_bindings("first-aor", |b| b.is_empty(), WAIT);

    let started = Instant::now();
    let (code, _) = read(
        server
            .ultravox(
                Method::DELETE,
                &format!("/api/sip/registrations/{id}"),
                &tenant,
            )
            .send()
            .unwrap(),
    );
    assert_eq!(code, 204);
    kamailio.wait_for_bindings("second-aor", |b| b.is_empty(), WAIT);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "unregistered in {:?}",
        started.elapsed()
    );
    let last = kamailio.registers("second-aor").pop().unwrap();
    assert_eq!(last.expires, Some(0));
}

#[test]
fn restart_brings_registrations_back_without_an_api_call() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .tcp()
            .subscriber("durable", "durable-secret"),
    );
    let mut server = unregistering_on_stop();
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "durable", "password": "durable-secret", "proxy": proxy(&kamailio, Transport::Tcp)}),
    );
    kamailio.wait_for_binding("durable", |_| true, WAIT);
    // Graceful stop unregisters…
    assert!(server.terminate().success());
    kamailio.wait_for_bindings("durable", |b| b.is_empty(), WAIT);
    // …and the next start registers again by itself.
    let server = server.restart();
    kamailio.wait_for_binding("durable", |_| true, WAIT);
    wait_for_registration(&server, &tenant, &id, registered);
}

#[test]
fn a_stop_while_a_register_is_in_flight_unregisters_the_binding_it_made() {
    // The registrar saves the binding at once and answers 1.5 s later: the stop comes while
    // the REGISTER is in flight, and the binding it makes must still be removed.
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("in-flight", "in-flight-secret")
            .slow_answer("in-flight", 1500),
    );
    let mut server = unregistering_on_stop();
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "in-flight", "password": "in-flight-secret", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    kamailio.wait_for_binding("in-flight", |_| true, WAIT);
    assert_ne!(
        state(&registration_status(&server, &tenant, &id)),
        "registered",
        "the answer is still on its way"
    );
    assert!(server.terminate().success());
    kamailio.wait_for_bindings("in-flight", |b| b.is_empty(), WAIT);
    let seen = kamailio.registers("in-flight");
    assert_eq!(seen.last().unwrap().expires, Some(0), "{seen:#?}");
}

#[test]
fn tcp_connection_lost_with_a_registrar_restart_is_re_registered() {
    let mut kamailio = Kamailio::start(
        KamailioOptions::default()
            .tcp()
            .without_udp()
            .subscriber("sticky", "sticky-secret"),
    );
    // The re-REGISTER on connection loss can race Kamailio's restart and meet a refused
    // connection; short backoffs keep the retry that follows within the wait.
    let server = Server::start_with(ServerOptions {
        engine: true,
        env: fast_retries(),
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "sticky", "password": "sticky-secret", "proxy": proxy(&kamailio, Transport::Tcp)}),
    );
    let first = kamailio.wait_for_binding("sticky", |_| true, WAIT);
    wait_for_registration(&server, &tenant, &id, registered);
    let before = kamailio.count("sticky");
    // Kamailio's restart drops the TCP connection (its location table survives on disk).
    kamailio.restart();
    let seen = kamailio.wait_for_registers("sticky", before + 1, WAIT);
    assert!(seen.len() > before);
    kamailio.wait_for_binding("sticky", |b| b.cseq > first.cseq, WAIT);
    wait_for_registration(&server, &tenant, &id, registered);
}

#[test]
fn dasha_numbers_register_with_the_trunk_credentials() {
    let kamailio =
        Kamailio::start(KamailioOptions::default().subscriber("trunk-auth", "trunk-secret"));
    let server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let (code, trunk) = read(
        server
            .dasha(Method::POST, "/api/v1/sip-credentials", &tenant)
            .json(&json!({
                "server": kamailio.addr(Transport::Udp).to_string(),
                "transport": "udp",
                "domain": "trunkline.test",
                "authUser": "trunk-auth",
                "authPassword": "trunk-secret",
            }))
            .send()
            .unwrap(),
    );
    assert_eq!(code, 201, "{trunk}");
    let (code, number) = read(
        server
            .dasha(Method::POST, "/api/v1/sip-phone-numbers", &tenant)
            .json(&json!({"phoneNumber": "+14155550199", "credentialsId": trunk["id"], "registration": true}))
            .send()
            .unwrap(),
    );
    assert_eq!(code, 201, "{number}");
    // The AOR is the number; the digest user is the trunk's authUser.
    let seen = kamailio.wait_for_registers("+14155550199", 2, WAIT);
    assert_eq!(seen[1].auth_user.as_deref(), Some("trunk-auth"));
    wait_for_registration(&server, &tenant, "+14155550199", registered);
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, body) = read(
            server
                .dasha(
                    Method::GET,
                    "/api/v1/sip-phone-numbers/%2B14155550199",
                    &tenant,
                )
                .send()
                .unwrap(),
        );
        if body["registrationStatus"]["state"] == "Registered" {
            assert_eq!(body["registrationStatus"]["sipResponseMessage"], "200 OK");
            assert!(body["registrationStatus"]["expiresAt"].is_string());
            break;
        }
        assert!(Instant::now() < deadline, "{body:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn history_and_metrics_show_the_exchange_without_credentials() {
    let kamailio =
        Kamailio::start(KamailioOptions::default().subscriber("history-user", "history-secret"));
    let server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "history-user", "password": "history-secret", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    wait_for_registration(&server, &tenant, &id, registered);
    // History is written in batches shortly after the outcome.
    let history = wait_for_history(&server, &tenant, &id, 2);
    let items = history["items"].as_array().unwrap();
    // Newest first: the answer (200) after the challenge (401).
    assert_eq!(items[0]["code"], 200);
    assert_eq!(items[1]["code"], 401);
    assert_eq!(items[1]["phrase"], "Unauthorized");
    let request_line = format!("REGISTER sip:{} SIP/2.0", kamailio.addr(Transport::Udp));
    for item in items {
        assert_eq!(item["requestLine"], request_line.as_str());
        assert_eq!(item["transport"], "udp");
        assert_eq!(item["remote"], kamailio.addr(Transport::Udp).to_string());
        assert!(item["durationMs"].as_f64().unwrap() >= 0.0);
    }
    let text = history.to_string();
    for secret in ["history-secret", "response=", "Digest", "nonce"] {
        assert!(!text.contains(secret), "history leaks {secret:?}: {text}");
    }
    // At the default log level (info) no SIP message reaches the log, so no digest answer does.
    let logs = server.logs().join("\n");
    for needle in [
        "REGISTER sip:",
        "Authorization",
        "response=",
        "history-secret",
    ] {
        assert!(!logs.contains(needle), "log holds {needle:?}:\n{logs}");
    }
    let (code, _) = read(
        server
            .client
            .get(server.url("/v1/registrations/00000000-0000-0000-0000-000000000000/history"))
            .bearer_auth(&tenant.api_key)
            .send()
            .unwrap(),
    );
    assert_eq!(code, 404);

    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("trunkline_register_responses_total{code=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("trunkline_register_duration_seconds"),
        "{metrics}"
    );
}

/// Where this file's DNS server listens.
const DNS: &str = "127.0.0.77";

#[test]
fn srv_records_are_followed_and_a_dead_target_is_skipped() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .tcp()
            .without_udp()
            .subscriber("srv-user", "srv-secret"),
    );
    let dead = crate::kamailio::free_tcp_port();
    let _dns = Dns::start(
        DNS,
        &[
            // Priority 10 (tried first): nothing listens there. Priority 20: Kamailio.
            format!("--srv-host=_sip._tcp.registrar.test,dead.registrar.test,{dead},10,0"),
            format!(
                "--srv-host=_sip._tcp.registrar.test,live.registrar.test,{},20,0",
                kamailio.port(Transport::Tcp)
            ),
            "--host-record=dead.registrar.test,127.0.0.1".to_owned(),
            "--host-record=live.registrar.test,127.0.0.1".to_owned(),
        ],
    );
    let server = Server::start_with(ServerOptions {
        env: vec![("TRUNKLINE_SIP_DNS_SERVERS".into(), DNS.into())],
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "srv-user", "password": "srv-secret", "proxy": "sip:registrar.test;transport=tcp"}),
    );
    let binding = kamailio.wait_for_binding("srv-user", |_| true, WAIT);
    assert_eq!(binding.transport, Transport::Tcp);
    let status = wait_for_registration(&server, &tenant, &id, registered);
    assert_eq!(status["remote"], kamailio.addr(Transport::Tcp).to_string());
    // The Request-URI keeps the domain, not the address it resolved to.
    let history = wait_for_history(&server, &tenant, &id, 1);
    assert_eq!(
        history["items"][0]["requestLine"],
        "REGISTER sip:registrar.test SIP/2.0"
    );
}

#[test]
fn tls_refuses_a_registrar_whose_certificate_is_not_trusted() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .tls()
            .subscriber("tls-strict", "strict-secret"),
    );
    // No sip.ca_file: the throwaway CA is not among the trusted roots.
    let server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "tls-strict", "password": "strict-secret", "proxy": proxy(&kamailio, Transport::Tls)}),
    );
    let status = wait_for_registration(&server, &tenant, &id, |b| state(b) == "failed_transport");
    assert_eq!(status["failedBy"], "local");
    assert_eq!(
        kamailio.count("tls-strict"),
        0,
        "nothing may be sent over an unverified connection"
    );
    assert!(kamailio.bindings("tls-strict").is_empty());
}

#[test]
fn a_restart_spreads_registrations_over_the_ramp() {
    const COUNT: usize = 10;
    const RAMP: u64 = 5;
    let mut options = KamailioOptions::default();
    for i in 0..COUNT {
        options = options.subscriber(&format!("ramp-{i}"), "ramp-secret");
    }
    let kamailio = Kamailio::start(options);
    // Created while no engine runs, so the engine finds all of them at its start.
    let mut server = Server::start();
    let tenant = server.tenant();
    for i in 0..COUNT {
        create_registration(
            &server,
            &tenant,
            json!({"username": format!("ramp-{i}"), "password": "ramp-secret", "proxy": proxy(&kamailio, Transport::Udp)}),
        );
    }
    assert!(server.terminate().success());
    assert!(kamailio.all_registers().is_empty());
    let started = Instant::now();
    let _server = server.restart_with(vec![
        ("TRUNKLINE_OUTBOUND_ENABLED".into(), "true".into()),
        ("TRUNKLINE_OUTBOUND_RAMP_PER_SEC".into(), RAMP.to_string()),
    ]);
    for i in 0..COUNT {
        kamailio.wait_for_binding(&format!("ramp-{i}"), |_| true, WAIT);
    }
    // 10 initial REGISTERs at 5 per second: the last may start no sooner than 1.8 s in.
    let spread = Duration::from_millis((COUNT as u64 - 1) * 1000 / RAMP);
    assert!(
        started.elapsed() >= spread,
        "all registered after {:?}",
        started.elapsed()
    );
}

#[test]
fn trunk_changes_reach_its_numbers_and_registration_false_unregisters() {
    let kamailio =
        Kamailio::start(KamailioOptions::default().subscriber("+14155550177", "good-trunk-pw"));
    let server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let trunk_body = |password: &str| {
        json!({
            "server": kamailio.addr(Transport::Udp).to_string(),
            "transport": "udp",
            "authPassword": password,
        })
    };
    let (code, trunk) = read(
        server
            .dasha(Method::POST, "/api/v1/sip-credentials", &tenant)
            .json(&trunk_body("bad-trunk-pw"))
            .send()
            .unwrap(),
    );
    assert_eq!(code, 201, "{trunk}");
    let trunk_id = trunk["id"].as_str().unwrap().to_owned();
    let number =
        json!({"phoneNumber": "+14155550177", "credentialsId": trunk_id, "registration": true});
    let (code, _) = read(
        server
            .dasha(Method::POST, "/api/v1/sip-phone-numbers", &tenant)
            .json(&number)
            .send()
            .unwrap(),
    );
    assert_eq!(code, 201);
    wait_for_registration(&server, &tenant, "+14155550177", |b| {
        state(b) == "failed_auth"
    });

    // The trunk's password is fixed: its number re-registers with it.
    let (code, _) = read(
        server
            .dasha(
                Method::PUT,
                &format!("/api/v1/sip-credentials/{trunk_id}"),
                &tenant,
            )
            .json(&trunk_body("good-trunk-pw"))
            .send()
            .unwrap(),
    );
    assert_eq!(code, 200);
    kamailio.wait_for_binding("+14155550177", |_| true, WAIT);
    wait_for_registration(&server, &tenant, "+14155550177", registered);

    // registration: false removes the binding.
    let mut off = number.clone();
    off["registration"] = json!(false);
    let (code, _) = read(
        server
            .dasha(
                Method::PUT,
                "/api/v1/sip-phone-numbers/%2B14155550177",
                &tenant,
            )
            .json(&off)
            .send()
            .unwrap(),
    );
    assert_eq!(code, 200);
    kamailio.wait_for_bindings("+14155550177", |b| b.is_empty(), WAIT);
    assert_eq!(
        registration_status(&server, &tenant, "+14155550177")["state"],
        "disabled"
    );
}

/// `expiresAt` as microseconds since the epoch.
fn expires_micros(body: &Value) -> i64 {
    time_of(&body["expiresAt"]).timestamp_micros()
}

#[test]
fn routine_refreshes_are_live_in_the_api_and_reach_the_table_at_shutdown() {
    // The registrar grants 2 s and the floor is lowered to 1 s, so trunkline refreshes every
    // second (half the expiry).
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("refresh-user", "refresh-secret")
            .expires(2, 2, 2),
    );
    let mut server = Server::start_with(ServerOptions {
        engine: true,
        env: vec![
            ("TRUNKLINE_OUTBOUND_EXPIRES_SECS".into(), "2".into()),
            ("TRUNKLINE_OUTBOUND_MIN_REFRESH_SECS".into(), "1".into()),
        ],
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create_registration(
        &server,
        &tenant,
        json!({"username": "refresh-user", "password": "refresh-secret", "proxy": proxy(&kamailio, Transport::Udp)}),
    );
    let first = wait_for_registration(&server, &tenant, &id, registered);
    let first_expiry = expires_micros(&first);
    // Two refreshes later (each moves the expiry by at most 1.6 s) the API shows a later
    // binding expiry, straight from the engine; then one more, so that a history entry for the
    // second refresh would have been written by now.
    let refreshed = wait_for_registration(&server, &tenant, &id, |body| {
        registered(body) && expires_micros(body) > first_expiry + 2_500_000
    });
    assert_eq!(refreshed["lastCode"], 200);
    let second_expiry = expires_micros(&refreshed);
    wait_for_registration(&server, &tenant, &id, |body| {
        expires_micros(body) > second_expiry
    });
    // The history lists the first exchange (challenge, answer), not the refreshes that ended
    // like it.
    let history = wait_for_history(&server, &tenant, &id, 2);
    let codes: Vec<_> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["code"].clone())
        .collect();
    assert_eq!(codes, [json!(200), json!(401)], "{history:#}");
    assert!(
        kamailio.count("refresh-user") >= 3,
        "the refreshes reached the registrar"
    );

    // A clean stop writes the live timestamps into the status table.
    let last_seen = expires_micros(&registration_status(&server, &tenant, &id));
    assert!(server.terminate().success());
    let stored: i64 = server
        .sql(&format!(
            "SELECT expires_at FROM registration_status WHERE registration_id = '{id}'"
        ))
        .parse()
        .expect("a stored expiry");
    assert!(
        stored >= last_seen,
        "table expiry {stored} is behind the live one {last_seen}"
    );
}
