//! The inbound registrar against a device written by hand ([`crate::sip_client`]): the digest
//! exchange, what each wrong answer gets, nonce staleness and replay, the expiry rules,
//! contacts, the bindings in the Vobiz API, credential changes, the flood defence, restarts,
//! dispatch by method, and trunkline's own outbound engine registering to its own registrar.
//! Real clients (sipsak, SIPp, baresip) are in `devices.rs`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{json, metric, Server, ServerOptions, Tenant};
use crate::sip_client::{param, Device};

const PASSWORD: &str = "correct horse 1";

pub(crate) fn server_with(env: &[(&str, &str)]) -> Server {
    Server::start_with(ServerOptions {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..ServerOptions::default()
    })
}

pub(crate) fn realm(tenant: &Tenant) -> String {
    format!("{}.sip.localhost", tenant.account_id)
}

pub(crate) fn create_credential(
    server: &Server,
    tenant: &Tenant,
    username: &str,
    password: &str,
) -> String {
    let (status, body) = json(
        server
            .vobiz(Method::POST, "/credentials", tenant)
            .json(&json!({"username": username, "password": password}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn bindings(server: &Server, tenant: &Tenant, credential: &str) -> (u16, Value) {
    json(
        server
            .vobiz(
                Method::GET,
                &format!("/credentials/{credential}/registrations"),
                tenant,
            )
            .send()
            .unwrap(),
    )
}

pub(crate) fn objects(server: &Server, tenant: &Tenant, credential: &str) -> Vec<Value> {
    let (status, body) = bindings(server, tenant, credential);
    assert_eq!(status, 200, "{body}");
    body["objects"].as_array().unwrap().clone()
}

fn device(server: &Server, tenant: &Tenant, user: &str) -> Device {
    Device::udp(server.sip.unwrap(), user, &realm(tenant))
}

/// Polls until `done` holds (the sweeper runs every second).
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_device_registers_with_sha256_or_md5_and_its_binding_is_listed() {
    let server = Server::start();
    let tenant = server.tenant();
    let id = create_credential(&server, &tenant, "alice", PASSWORD);
    let mut phone = device(&server, &tenant, "alice");

    let first = phone.register(300, "");
    assert_eq!(first.code, 401);
    let challenges = first.all("WWW-Authenticate");
    assert_eq!(challenges.len(), 2, "{}", first.text);
    assert_eq!(
        param(challenges[0], "algorithm").as_deref(),
        Some("SHA-256")
    );
    assert_eq!(param(challenges[1], "algorithm").as_deref(), Some("MD5"));
    for challenge in &challenges {
        assert_eq!(param(challenge, "realm"), Some(realm(&tenant)));
        assert_eq!(param(challenge, "qop").as_deref(), Some("auth"));
        assert_eq!(param(challenge, "stale"), None);
    }

    let ok = phone.register_with(PASSWORD, 300, Some("SHA-256"));
    assert_eq!(ok.code, 200, "{}", ok.text);
    let contacts = ok.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].0, phone.contact());
    assert!((299..=300).contains(&contacts[0].1), "{contacts:?}");

    let listed = objects(&server, &tenant, &id);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let binding = &listed[0];
    assert_eq!(binding["contact"], phone.contact());
    assert_eq!(binding["source"], format!("udp:{}", phone.local));
    assert_eq!(binding["transport"], "udp");
    assert_eq!(binding["user_agent"], "trunkline-test-device");
    assert!(binding["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(binding["registered_at"].as_str().unwrap().ends_with('Z'));

    // MD5 works too, from another device of the same credential: two contacts now.
    let mut second = device(&server, &tenant, "alice");
    let ok = second.register_with(PASSWORD, 600, Some("MD5"));
    assert_eq!(ok.code, 200, "{}", ok.text);
    assert_eq!(ok.contacts().len(), 2);
    assert_eq!(objects(&server, &tenant, &id).len(), 2);
    assert!(metric(&server, "trunkline_registrar_bindings") >= 2.0);
}

#[test]
fn tcp_registrations_are_answered_on_the_connection() {
    let server = Server::start();
    let tenant = server.tenant();
    let id = create_credential(&server, &tenant, "bob", PASSWORD);
    let mut phone = Device::tcp(server.sip.unwrap(), "bob", &realm(&tenant));
    let ok = phone.register_with(PASSWORD, 300, None);
    assert_eq!(ok.code, 200, "{}", ok.text);
    let listed = objects(&server, &tenant, &id);
    assert_eq!(listed[0]["transport"], "tcp");
    assert_eq!(listed[0]["source"], format!("tcp:{}", phone.local));
}

#[test]
fn wrong_password_unknown_user_and_another_tenants_realm_get_the_same_answer() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("other");
    create_credential(&server, &tenant, "carol", PASSWORD);
    create_credential(&server, &other, "dave", PASSWORD);

    let answers = [
        // Wrong password.
        device(&server, &tenant, "carol").register_with("wrong password", 300, None),
        // Unknown user.
        device(&server, &tenant, "nobody").register_with(PASSWORD, 300, None),
        // Dave's credential (other tenant) presented in this tenant's realm.
        device(&server, &tenant, "dave").register_with(PASSWORD, 300, None),
    ];
    for answer in &answers {
        assert_eq!(answer.code, 401, "{}", answer.text);
        let names: Vec<_> = answer
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        let first_names: Vec<_> = answers[0]
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        assert_eq!(names, first_names, "the same headers for every failure");
        for challenge in answer.all("WWW-Authenticate") {
            assert_eq!(param(challenge, "stale"), None);
        }
    }
    assert_eq!(
        metric(
            &server,
            "trunkline_registrar_digest_failures_total{reason=\"wrong_password\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &server,
            "trunkline_registrar_digest_failures_total{reason=\"unknown_user\"}"
        ),
        2.0
    );
    // Dave registers in his own realm.
    let mut dave = device(&server, &other, "dave");
    assert_eq!(dave.register_with(PASSWORD, 300, None).code, 200);
}

#[test]
fn unknown_realm_is_404_and_a_mismatched_username_is_403() {
    let server = Server::start();
    let tenant = server.tenant();
    create_credential(&server, &tenant, "erin", PASSWORD);
    for domain in [
        "MA_ZZZZZZZZZZ.sip.localhost",
        "example.com",
        "sip.localhost",
    ] {
        let mut stranger = Device::udp(server.sip.unwrap(), "erin", domain);
        assert_eq!(stranger.register(300, "").code, 404, "{domain}");
    }
    // The To user is frank, the digest user erin.
    let mut phone = device(&server, &tenant, "frank");
    let challenge = phone.register(300, "").all("WWW-Authenticate")[0].to_owned();
    phone.user = "erin".into();
    let authorization = phone.answer(&challenge, PASSWORD);
    phone.user = "frank".into();
    let answer = phone.register(300, &format!("Authorization: {authorization}\r\n"));
    assert_eq!(answer.code, 403, "{}", answer.text);
}

#[test]
fn disabled_is_403_only_after_a_right_answer_and_ends_bindings() {
    let server = Server::start();
    let tenant = server.tenant();
    let id = create_credential(&server, &tenant, "gina", PASSWORD);
    let mut phone = device(&server, &tenant, "gina");
    assert_eq!(phone.register_with(PASSWORD, 300, None).code, 200);
    assert_eq!(objects(&server, &tenant, &id).len(), 1);

    let (status, _) = json(
        server
            .vobiz(Method::PUT, &format!("/credentials/{id}"), &tenant)
            .json(&json!({"enabled": false}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert!(
        objects(&server, &tenant, &id).is_empty(),
        "disabling ends the bindings"
    );
    // Without credentials: challenged like anyone; a wrong password: challenged again.
    assert_eq!(phone.register_with("wrong password", 300, None).code, 401);
    // With the right password: 403.
    eventually("the registrar to see the change", || {
        phone.register_with(PASSWORD, 300, None).code == 403
    });
    assert!(objects(&server, &tenant, &id).is_empty());
}

#[test]
fn deleting_a_credential_ends_its_bindings_and_a_new_password_counts_at_once() {
    let server = Server::start();
    let tenant = server.tenant();
    let id = create_credential(&server, &tenant, "hank", PASSWORD);
    let mut phone = device(&server, &tenant, "hank");
    assert_eq!(phone.register_with(PASSWORD, 300, None).code, 200);

    let (status, _) = json(
        server
            .vobiz(Method::PUT, &format!("/credentials/{id}"), &tenant)
            .json(&json!({"password": "a brand new one"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    // The binding stays; the next REGISTER needs the new password.
    assert_eq!(objects(&server, &tenant, &id).len(), 1);
    eventually("the new password to count", || {
        phone.register_with("a brand new one", 300, None).code == 200
    });
    assert_eq!(phone.register_with(PASSWORD, 300, None).code, 401);

    let status = server
        .vobiz(Method::DELETE, &format!("/credentials/{id}"), &tenant)
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 204);
    assert_eq!(bindings(&server, &tenant, &id).0, 404);
    eventually("the registrar to forget the credential", || {
        phone.register_with("a brand new one", 300, None).code == 401
    });
}

#[test]
fn a_stale_nonce_gets_stale_true_and_a_replayed_nonce_count_is_refused() {
    let server = server_with(&[("TRUNKLINE_SIP_NONCE_LIFETIME_SECS", "1")]);
    let tenant = server.tenant();
    create_credential(&server, &tenant, "ivy", PASSWORD);
    let mut phone = device(&server, &tenant, "ivy");

    // Replay: the same nonce count twice.
    let challenge = phone.register(300, "").all("WWW-Authenticate")[0].to_owned();
    let authorization = phone.answer(&challenge, PASSWORD);
    let header = format!("Authorization: {authorization}\r\n");
    assert_eq!(phone.register(300, &header).code, 200);
    let replayed = phone.register(300, &header);
    assert_eq!(replayed.code, 401, "{}", replayed.text);
    assert_eq!(
        metric(
            &server,
            "trunkline_registrar_digest_failures_total{reason=\"nonce_count_replay\"}"
        ),
        1.0
    );
    // The next count for the same nonce is fine.
    let next = phone.answer(&challenge, PASSWORD);
    assert_eq!(
        phone
            .register(300, &format!("Authorization: {next}\r\n"))
            .code,
        200
    );

    // Stale: a right answer once the nonce's lifetime (1 s) has passed.
    std::thread::sleep(Duration::from_millis(2100));
    let late = phone.answer(&challenge, PASSWORD);
    let stale = phone.register(300, &format!("Authorization: {late}\r\n"));
    assert_eq!(stale.code, 401, "{}", stale.text);
    let challenges = stale.all("WWW-Authenticate");
    assert!(challenges
        .iter()
        .all(|c| param(c, "stale").as_deref() == Some("true")));
    // A fresh nonce from that challenge works.
    let fresh = challenges[0].to_owned();
    phone.nc = 0;
    let answer = phone.answer(&fresh, PASSWORD);
    assert_eq!(
        phone
            .register(300, &format!("Authorization: {answer}\r\n"))
            .code,
        200
    );
    // A wrong password with a stale nonce is not stale: a plain challenge.
    std::thread::sleep(Duration::from_millis(2100));
    let wrong = phone.answer(&fresh, "wrong password");
    let refused = phone.register(300, &format!("Authorization: {wrong}\r\n"));
    assert_eq!(refused.code, 401);
    assert!(refused
        .all("WWW-Authenticate")
        .iter()
        .all(|c| param(c, "stale").is_none()));
}

#[test]
fn expiry_rules_unregister_one_contact_and_contact_star() {
    let server = server_with(&[
        ("TRUNKLINE_REGISTRAR_MIN_EXPIRES", "2"),
        ("TRUNKLINE_REGISTRAR_DEFAULT_EXPIRES", "100"),
        ("TRUNKLINE_REGISTRAR_MAX_EXPIRES", "200"),
        ("TRUNKLINE_REGISTRAR_MAX_CONTACTS", "3"),
    ]);
    let tenant = server.tenant();
    let id = create_credential(&server, &tenant, "jack", PASSWORD);
    let mut phone = device(&server, &tenant, "jack");
    let challenge = phone.register(100, "").all("WWW-Authenticate")[0].to_owned();
    let auth =
        |phone: &mut Device| format!("Authorization: {}\r\n", phone.answer(&challenge, PASSWORD));

    // Below the minimum: 423 with Min-Expires, nothing stored.
    let header = auth(&mut phone);
    let brief = phone.register(1, &header);
    assert_eq!(brief.code, 423, "{}", brief.text);
    assert_eq!(brief.header("Min-Expires"), Some("2"));
    assert!(objects(&server, &tenant, &id).is_empty());

    // Above the maximum: clamped. Two more contacts; then a fourth replaces the oldest.
    let header = auth(&mut phone);
    let ok = phone.register(99_999, &header);
    assert_eq!(ok.code, 200);
    assert!(
        ok.contacts()[0].1 <= 200 && ok.contacts()[0].1 >= 199,
        "{}",
        ok.text
    );
    let header = auth(&mut phone);
    let ok = phone.request(
        "REGISTER",
        &format!("Contact: <sip:jack@192.0.2.10>, <sip:jack@192.0.2.11>;expires=50\r\n{header}"),
    );
    assert_eq!(ok.code, 200, "{}", ok.text);
    assert_eq!(ok.contacts().len(), 3);
    let header = auth(&mut phone);
    let ok = phone.request(
        "REGISTER",
        &format!("Contact: <sip:jack@192.0.2.12>\r\n{header}"),
    );
    let uris: Vec<_> = ok.contacts().into_iter().map(|(uri, _)| uri).collect();
    assert_eq!(uris.len(), 3, "{uris:?}");
    assert!(
        !uris.contains(&phone.contact()),
        "the oldest went: {uris:?}"
    );
    // Default expiry when none is given.
    assert!(ok
        .contacts()
        .iter()
        .any(|(uri, expires)| uri == "sip:jack@192.0.2.12" && (99..=100).contains(expires)));

    // Expires 0 on one contact removes just that one.
    let header = auth(&mut phone);
    let ok = phone.request(
        "REGISTER",
        &format!("Contact: <sip:jack@192.0.2.10>;expires=0\r\n{header}"),
    );
    assert_eq!(ok.contacts().len(), 2, "{}", ok.text);
    assert_eq!(objects(&server, &tenant, &id).len(), 2);

    // Contact: * with anything but Expires 0 → 400; with Expires 0 → all gone.
    let header = auth(&mut phone);
    let bad = phone.request(
        "REGISTER",
        &format!("Contact: *\r\nExpires: 60\r\n{header}"),
    );
    assert_eq!(bad.code, 400);
    let header = auth(&mut phone);
    let ok = phone.request("REGISTER", &format!("Contact: *\r\nExpires: 0\r\n{header}"));
    assert_eq!(ok.code, 200, "{}", ok.text);
    assert!(ok.contacts().is_empty());
    assert!(objects(&server, &tenant, &id).is_empty());

    // A short binding expires by itself.
    let header = auth(&mut phone);
    assert_eq!(phone.register(2, &header).code, 200);
    assert_eq!(objects(&server, &tenant, &id).len(), 1);
    eventually("the binding to expire", || {
        objects(&server, &tenant, &id).is_empty()
    });
    eventually("the gauge to follow", || {
        metric(&server, "trunkline_registrar_bindings") == 0.0
    });
}

#[test]
fn a_flooding_source_is_refused_while_another_still_registers() {
    let server = server_with(&[
        ("TRUNKLINE_REGISTRAR_AUTH_FAIL_LIMIT", "3"),
        ("TRUNKLINE_REGISTRAR_AUTH_FAIL_COOLDOWN_SECS", "300"),
    ]);
    let tenant = server.tenant();
    create_credential(&server, &tenant, "kim", PASSWORD);
    let mut attacker = device(&server, &tenant, "kim");
    for _ in 0..4 {
        assert_eq!(attacker.register_with("guess guess", 300, None).code, 401);
    }
    // Cooling down: 403 at once, even with the right password and without Authorization.
    let refused = attacker.register(300, "");
    assert_eq!(refused.code, 403, "{}", refused.text);
    assert!(refused.all("WWW-Authenticate").is_empty());
    assert_eq!(
        metric(&server, "trunkline_registrar_sources_throttled_total"),
        1.0
    );
    // Another source address is unaffected.
    let mut honest = Device::udp_from(
        IpAddr::from([127, 0, 0, 2]),
        server.sip.unwrap(),
        "kim",
        &realm(&tenant),
    );
    assert_eq!(honest.register_with(PASSWORD, 300, None).code, 200);
    assert!(
        metric(
            &server,
            "trunkline_registrar_registers_total{outcome=\"throttled\"}"
        ) >= 1.0
    );
}

#[test]
fn bindings_survive_a_restart() {
    let mut server = Server::start();
    let tenant = server.tenant();
    let id = create_credential(&server, &tenant, "lena", PASSWORD);
    let mut phone = device(&server, &tenant, "lena");
    assert_eq!(phone.register_with(PASSWORD, 600, None).code, 200);
    server.kill();
    let server = server.restart();
    let listed = objects(&server, &tenant, &id);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["contact"], phone.contact());
    // The restarted registrar knows it: a query (no Contact) lists it.
    let old_contact = phone.contact();
    let mut phone = Device::udp(server.sip.unwrap(), "lena", &realm(&tenant));
    let challenge = phone.register(600, "").all("WWW-Authenticate")[0].to_owned();
    let authorization = phone.answer(&challenge, PASSWORD);
    let query = phone.request("REGISTER", &format!("Authorization: {authorization}\r\n"));
    assert_eq!(query.code, 200, "{}", query.text);
    let contacts = query.contacts();
    assert_eq!(contacts.len(), 1, "{}", query.text);
    assert_eq!(contacts[0].0, old_contact);
}

#[test]
fn many_devices_at_once_are_all_stored() {
    let server = Server::start();
    let tenant = server.tenant();
    let ids: Vec<_> = (0..40)
        .map(|i| create_credential(&server, &tenant, &format!("user{i}"), PASSWORD))
        .collect();
    let sip = server.sip.unwrap();
    let domain = realm(&tenant);
    let threads: Vec<_> = (0..40)
        .map(|i| {
            let domain = domain.clone();
            std::thread::spawn(move || {
                Device::udp(sip, &format!("user{i}"), &domain)
                    .register_with(PASSWORD, 300, None)
                    .code
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), 200);
    }
    for id in &ids {
        assert_eq!(objects(&server, &tenant, id).len(), 1);
    }
}

#[test]
fn malformed_registers_get_400_naming_the_header() {
    let server = Server::start();
    let tenant = server.tenant();
    create_credential(&server, &tenant, "nina", PASSWORD);
    let mut phone = device(&server, &tenant, "nina");
    let long = format!("Contact: <sip:{}@192.0.2.1>\r\n", "n".repeat(600));
    let many: String = (0..21)
        .map(|i| format!("Contact: <sip:n{i}@192.0.2.1>\r\n"))
        .collect();
    for (headers, warning) in [
        ("Contact: <http://example.com>\r\n", "Bad Contact"),
        (
            "Contact: *, <sip:n@192.0.2.1>\r\nExpires: 0\r\n",
            "Bad Contact",
        ),
        (long.as_str(), "Bad Contact"),
        (many.as_str(), "Too Many Contacts"),
        (
            "Contact: <sip:n@192.0.2.1>\r\nExpires: soon\r\n",
            "Bad Expires",
        ),
    ] {
        let answer = phone.request("REGISTER", headers);
        assert_eq!(answer.code, 400, "{headers}: {}", answer.text);
        assert!(
            answer
                .header("Warning")
                .is_some_and(|w| w.contains(warning)),
            "{headers}: {}",
            answer.text
        );
    }
    // Nothing was stored, nothing was counted against the source, and it still registers.
    assert_eq!(phone.register_with(PASSWORD, 300, None).code, 200);
    assert_eq!(
        metric(
            &server,
            "trunkline_registrar_registers_total{outcome=\"bad_request\"}"
        ),
        5.0
    );
}

#[test]
fn requests_are_dispatched_by_method() {
    let server = Server::start();
    let tenant = server.tenant();
    let mut phone = device(&server, &tenant, "mo");
    let options = phone.request("OPTIONS", "");
    assert_eq!(options.code, 200);
    assert_eq!(options.header("Allow"), Some("REGISTER, OPTIONS"));
    let message = phone.request("MESSAGE", "");
    assert_eq!(message.code, 405);
    assert_eq!(message.header("Allow"), Some("REGISTER, OPTIONS"));

    // The registrar off, the engine on: the node still answers, REGISTER is not allowed.
    let off = Server::start_with(ServerOptions {
        engine: true,
        env: vec![("TRUNKLINE_REGISTRAR_ENABLED".into(), "false".into())],
        ..ServerOptions::default()
    });
    let mut phone = Device::udp(off.sip.unwrap(), "mo", &realm(&off.tenant()));
    let register = phone.register(300, "");
    assert_eq!(register.code, 405, "{}", register.text);
    assert_eq!(register.header("Allow"), Some("OPTIONS"));
}

#[test]
fn trunkline_registers_to_its_own_registrar_over_udp_tcp_and_tls() {
    let certificates = tempfile::tempdir().unwrap();
    crate::kamailio::make_test_certificates(certificates.path());
    let tls_port = crate::kamailio::free_tcp_port();
    let path = |name: &str| certificates.path().join(name).display().to_string();
    let server = Server::start_with(ServerOptions {
        engine: true,
        env: vec![
            (
                "TRUNKLINE_SIP_TLS_LISTEN".into(),
                format!("127.0.0.1:{tls_port}"),
            ),
            ("TRUNKLINE_SIP_TLS_CERT".into(), path("server.pem")),
            ("TRUNKLINE_SIP_TLS_KEY".into(), path("server.key")),
            ("TRUNKLINE_SIP_CA_FILE".into(), path("ca.pem")),
        ],
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let sip = server.sip.unwrap();
    for (user, transport, port) in [
        ("self-udp", "udp", sip.port()),
        ("self-tcp", "tcp", sip.port()),
        ("self-tls", "tls", tls_port),
    ] {
        let id = create_credential(&server, &tenant, user, PASSWORD);
        // The realm as the registrar host (it has `_` in it), the listener as outbound proxy.
        let registration = crate::common::create_registration(
            &server,
            &tenant,
            json!({
                "username": user,
                "password": PASSWORD,
                "proxy": realm(&tenant),
                "outboundProxy": format!("sip:127.0.0.1:{port};transport={transport}"),
            }),
        );
        let status = crate::common::wait_for_state(&server, &tenant, &registration, "registered");
        assert_eq!(status["lastCode"], 200, "{status}");
        assert_eq!(status["transport"], transport, "{status}");
        let listed = objects(&server, &tenant, &id);
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["transport"], transport, "{listed:?}");
        assert!(listed[0]["contact"]
            .as_str()
            .unwrap()
            .starts_with(&format!("sip:{user}@")));
    }
}
