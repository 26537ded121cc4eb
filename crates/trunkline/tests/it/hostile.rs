//! A hostile registrar (Kamailio scripted to answer with absurd numbers and strings) cannot
//! stop the engine for anyone: every number it sends is bounded before it reaches a timer,
//! every string before it reaches the status, and a panic in the engine is survived (the
//! engine restarts from the store, `/readyz` says so meanwhile, and the registration it was
//! handling is held back). Also: a committed change reaches the engine when its client hangs
//! up, and the reconcile puts right what no change event said.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    create_user_registration, json as read, metric, wait_for_registration, Method, Server,
    ServerOptions, Tenant,
};
use crate::kamailio::{DigestAlgorithm, Kamailio, KamailioOptions, Transport};

const WAIT: Duration = crate::common::STATUS_WAIT;

fn create(server: &Server, tenant: &Tenant, username: &str, kamailio: &Kamailio) -> String {
    create_user_registration(server, tenant, username, kamailio.addr(Transport::Udp))
}

fn state(body: &Value) -> &str {
    body["state"].as_str().unwrap_or_default()
}

fn secs(value: &Value) -> f64 {
    let text = value.as_str().unwrap_or_else(|| panic!("a time: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_micros() as f64
        / 1e6
}

fn successful(server: &Server, tenant: &Tenant, id: &str) -> Value {
    let (status, body) = read(
        server
            .ultravox(Method::GET, &format!("/api/sip/registrations/{id}"), tenant)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    body["successful"].clone()
}

fn readyz(server: &Server) -> (u16, String) {
    let response = server.client.get(server.url("/readyz")).send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

const LONG_PHRASE: &str = "Server Error ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé tail";

#[test]
fn absurd_numbers_and_strings_from_a_registrar_are_bounded_and_everyone_keeps_registering() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("bystander", "bystander-pw")
            .reply(
                "huge-expiry",
                200,
                "OK",
                "Contact: <$(ct{nameaddr.uri})>;expires=4294967295\r\nExpires: 4294967295\r\n",
            )
            .reply(
                "huge-retry-after",
                503,
                "Service Unavailable",
                "Retry-After: 4294967295\r\n",
            )
            .reply(
                "huge-min-expires",
                423,
                "Interval Too Brief",
                "Min-Expires: 4294967295\r\n",
            )
            .reply("long-phrase", 500, LONG_PHRASE, ""),
    );
    let server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let other = server.create_tenant("bystanders");

    let huge_expiry = create(&server, &tenant, "huge-expiry", &kamailio);
    let huge_retry = create(&server, &tenant, "huge-retry-after", &kamailio);
    let huge_min = create(&server, &tenant, "huge-min-expires", &kamailio);
    let long_phrase = create(&server, &tenant, "long-phrase", &kamailio);

    // Granted 2^32-1 s: held to the 3600 s asked for, refreshed at 80–90 % of that.
    let status =
        wait_for_registration(&server, &tenant, &huge_expiry, |b| state(b) == "registered");
    let attempt = secs(&status["lastAttemptAt"]);
    let lifetime = secs(&status["expiresAt"]) - attempt;
    assert!((3599.0..=3601.0).contains(&lifetime), "{status:#}");
    let refresh = secs(&status["nextAttemptAt"]) - attempt;
    assert!((2879.0..=3241.0).contains(&refresh), "{status:#}");

    // Retry-After 2^32-1 s: honoured up to outbound.retry_after_cap_secs (3600).
    let status = wait_for_registration(&server, &tenant, &huge_retry, |b| {
        state(b) == "failed_registrar"
    });
    assert_eq!(status["lastCode"], 503);
    let wait = secs(&status["nextAttemptAt"]) - secs(&status["lastAttemptAt"]);
    assert!((3599.0..=3601.0).contains(&wait), "{status:#}");
    assert_eq!(successful(&server, &tenant, &huge_retry), false);

    // Min-Expires 2^32-1 s: above outbound.max_expires_secs, a failure that says so.
    let status = wait_for_registration(&server, &tenant, &huge_min, |b| {
        state(b) == "failed_registrar"
    });
    assert_eq!(status["lastCode"], 423);
    let phrase = status["lastPhrase"].as_str().unwrap();
    assert!(phrase.contains("max_expires_secs"), "{status:#}");
    let seen = kamailio.registers("huge-min-expires");
    assert!(
        seen.iter().all(|r| r.expires == Some(3600)),
        "no REGISTER asked for 2^32-1 s: {seen:#?}"
    );

    // A 250-character reason phrase: cut to 128 characters on a character boundary, in the
    // status and in the history.
    let status = wait_for_registration(&server, &tenant, &long_phrase, |b| {
        state(b) == "failed_registrar"
    });
    let phrase = status["lastPhrase"].as_str().unwrap();
    assert_eq!(phrase.chars().count(), 128, "{phrase}");
    assert!(LONG_PHRASE.starts_with(phrase));
    let (code, history) = read(
        server
            .client
            .get(server.url(&format!("/v1/registrations/{long_phrase}/history")))
            .header("X-API-Key", &tenant.api_key)
            .send()
            .unwrap(),
    );
    assert_eq!(code, 200);
    for item in history["items"].as_array().unwrap() {
        let phrase = item["phrase"].as_str().unwrap_or_default();
        assert!(phrase.chars().count() <= 128, "{item:#}");
    }

    // The engine is still serving everyone: another tenant's new registration registers, and
    // the process says it is ready.
    let bystander = create(&server, &other, "bystander", &kamailio);
    wait_for_registration(&server, &other, &bystander, |b| state(b) == "registered");
    assert_eq!(readyz(&server).0, 200);
    assert_eq!(metric(&server, "trunkline_engine_restarts_total"), 0.0);
}

#[test]
fn a_panic_in_the_engine_is_survived_counted_and_shown_in_readiness() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("steady", "steady-pw")
            .reply("bomb", 500, "Boom Now", ""),
    );
    let server = Server::start_with(ServerOptions {
        engine: true,
        env: vec![("TRUNKLINE_FAULT_PANIC_PHRASE".into(), "Boom Now".into())],
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let steady = create(&server, &tenant, "steady", &kamailio);
    wait_for_registration(&server, &tenant, &steady, |b| state(b) == "registered");
    assert_eq!(readyz(&server).0, 200);

    let bomb = create(&server, &tenant, "bomb", &kamailio);
    // The engine panics on the bomb's reply: readiness fails while it is down...
    let deadline = Instant::now() + WAIT;
    let body = loop {
        let (code, body) = readyz(&server);
        if code == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "readyz never reported the engine down"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(body.contains("registration engine"), "{body}");
    // ...and it comes back from the store: the other registration is registered again.
    kamailio.wait_for_registers("steady", 2, WAIT);
    let deadline = Instant::now() + WAIT;
    while readyz(&server).0 != 200 {
        assert!(Instant::now() < deadline, "readyz never recovered");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The registration whose reply tripped the engine is held back, so it does not stop the
    // engine for everyone again at once.
    let held = wait_for_registration(&server, &tenant, &bomb, |b| {
        b["lastPhrase"]
            .as_str()
            .is_some_and(|p| p.contains("held back"))
    });
    assert_eq!(state(&held), "failed_registrar", "{held:#}");
    assert_eq!(metric(&server, "trunkline_engine_restarts_total"), 1.0);
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("engine panicked") && line.contains("fault injection")),
        "the cause is logged"
    );
    // ...and its answer is taken in: the other registration is registered again.
    wait_for_registration(&server, &tenant, &steady, |b| state(b) == "registered");
}

#[test]
fn a_committed_change_reaches_the_engine_when_the_client_hangs_up() {
    let kamailio = Kamailio::start(KamailioOptions::default().subscriber("impatient", "pw-1234"));
    let server = Server::start_with(ServerOptions {
        engine: true,
        env: vec![
            ("TRUNKLINE_FAULT_PUBLISH_DELAY_MS".into(), "1500".into()),
            // No reconcile within the test: only the change event can start the REGISTER.
            ("TRUNKLINE_OUTBOUND_RECONCILE_SECS".into(), "3600".into()),
        ],
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let impatient = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let sent = impatient
        .post(server.url("/api/sip/registrations"))
        .header("X-API-Key", &tenant.api_key)
        .json(&json!({
            "username": "impatient",
            "password": "pw-1234",
            "proxy": kamailio.addr(Transport::Udp).to_string(),
        }))
        .send();
    assert!(sent.is_err(), "the client gave up before the answer");
    kamailio.wait_for_registers("impatient", 1, WAIT);
}

#[test]
fn the_reconcile_puts_right_what_no_change_event_said() {
    let kamailio = Kamailio::start(KamailioOptions::default().subscriber("drifter", "drifter-pw"));
    let server = Server::start_with(ServerOptions {
        engine: true,
        env: vec![("TRUNKLINE_OUTBOUND_RECONCILE_SECS".into(), "1".into())],
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create(&server, &tenant, "drifter", &kamailio);
    wait_for_registration(&server, &tenant, &id, |b| state(b) == "registered");
    assert_eq!(kamailio.bindings("drifter").len(), 1);
    // Deleted behind the services' back: no change event, only the reconcile can notice.
    server.sql_unannounced(&format!("DELETE FROM registrations WHERE id = '{id}'"));
    let deadline = Instant::now() + WAIT;
    while !kamailio.bindings("drifter").is_empty() {
        assert!(Instant::now() < deadline, "the binding was never removed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(metric(&server, "trunkline_engine_reconcile_fixes_total") >= 1.0);
}

#[test]
fn an_md5_challenge_after_sha256_was_accepted_is_refused_until_the_registration_changes() {
    // The registrar grants 2 s and the floor is 1 s: a refresh every second.
    let mut kamailio = Kamailio::start(
        KamailioOptions::default()
            .algorithm(DigestAlgorithm::Sha256)
            .subscriber("careful", "careful-pw")
            .expires(2, 2, 2),
    );
    let server = Server::start_with(ServerOptions {
        engine: true,
        env: vec![
            ("TRUNKLINE_OUTBOUND_EXPIRES_SECS".into(), "2".into()),
            ("TRUNKLINE_OUTBOUND_MIN_REFRESH_SECS".into(), "1".into()),
        ],
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create(&server, &tenant, "careful", &kamailio);
    wait_for_registration(&server, &tenant, &id, |b| state(b) == "registered");

    // The registrar (or someone in the path) now offers only MD5.
    kamailio.restart_with_algorithm(DigestAlgorithm::Md5);
    let status = wait_for_registration(&server, &tenant, &id, |b| state(b) == "failed_auth");
    let phrase = status["lastPhrase"].as_str().unwrap();
    assert!(phrase.contains("digest downgrade refused"), "{status:#}");

    // A change of the registration (the operator's word) lifts the guard.
    let (code, body) = read(
        server
            .ultravox(
                Method::PATCH,
                &format!("/api/sip/registrations/{id}"),
                &tenant,
            )
            .json(&json!({"authUser": "careful"}))
            .send()
            .unwrap(),
    );
    assert_eq!(code, 200, "{body}");
    wait_for_registration(&server, &tenant, &id, |b| state(b) == "registered");
}
