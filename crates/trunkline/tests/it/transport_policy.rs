//! Where REGISTERs may go, against the real binary: `outbound.deny_networks` (link-local by
//! default) and trunkline's own HTTP port are refused after DNS with a `failed_transport` state
//! naming the rule; TLS goes to the address our resolver (`sip.dns_servers`, SRV failover
//! included) chose and verifies the certificate against the registrar's name, reusing a
//! connection only for the same name and address; `sips:` never goes out over UDP.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    create_registration, json as read, wait_for_state, Server, ServerOptions, Tenant,
};
use crate::dns::Dns;
use crate::kamailio::{issue_server_certificate, Kamailio, KamailioOptions, Transport};

const WAIT: Duration = Duration::from_secs(20);

fn engine_with(env: &[(&str, String)]) -> Server {
    Server::start_with(ServerOptions {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        engine: true,
        ..ServerOptions::default()
    })
}

fn register(server: &Server, tenant: &Tenant, user: &str, proxy: &str) -> String {
    create_registration(
        server,
        tenant,
        json!({"username": user, "password": "policy-secret", "proxy": proxy}),
    )
}

fn phrase(status: &Value) -> &str {
    status["lastPhrase"].as_str().unwrap_or_default()
}

#[test]
fn link_local_destinations_are_refused_by_default_naming_the_rule() {
    let server = engine_with(&[]);
    let tenant = server.tenant();
    for (proxy, addr) in [
        ("169.254.1.1", "169.254.1.1:5060"),
        // IPv4-mapped IPv6 is the IPv4 address it maps.
        ("[::ffff:169.254.7.7]:5070", "[::ffff:169.254.7.7]:5070"),
    ] {
        let id = register(&server, &tenant, "link-local", proxy);
        let status = wait_for_state(&server, &tenant, &id, "failed_transport");
        assert_eq!(
            phrase(&status),
            format!("destination {addr} refused by outbound.deny_networks (169.254.0.0/16)"),
            "{status:#}"
        );
        assert_eq!(status["failedBy"], "local");
    }
}

#[test]
fn deny_networks_from_the_environment_refuses_a_local_registrar_that_otherwise_registers() {
    let kamailio = Kamailio::start(KamailioOptions::default().subscriber("local", "policy-secret"));
    let proxy = kamailio.addr(Transport::Udp).to_string();

    let denied = engine_with(&[("TRUNKLINE_OUTBOUND_DENY_NETWORKS", "127.0.0.0/8".into())]);
    let tenant = denied.tenant();
    let id = register(&denied, &tenant, "local", &proxy);
    let status = wait_for_state(&denied, &tenant, &id, "failed_transport");
    assert_eq!(
        phrase(&status),
        format!("destination {proxy} refused by outbound.deny_networks (127.0.0.0/8)"),
        "{status:#}"
    );
    assert_eq!(kamailio.count("local"), 0, "nothing may be sent to it");
    drop(denied);

    let allowed = engine_with(&[]);
    let tenant = allowed.tenant();
    let id = register(&allowed, &tenant, "local", &proxy);
    wait_for_state(&allowed, &tenant, &id, "registered");
}

#[test]
fn a_malformed_deny_list_is_a_startup_error_naming_the_key() {
    let output = Command::new(crate::common::BIN)
        .args(["--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TRUNKLINE_SIP_LISTEN", "127.0.0.1:0")
        .env(
            "TRUNKLINE_OUTBOUND_DENY_NETWORKS",
            "10.0.0.0/8,not-a-network",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("outbound.deny_networks") && stderr.contains("not-a-network"),
        "{stderr}"
    );
}

#[test]
fn trunkline_s_own_http_port_is_refused_its_sip_port_is_not() {
    let server = engine_with(&[]);
    let tenant = server.tenant();
    let http = server
        .base
        .strip_prefix("http://")
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let port = http.rsplit(':').next().unwrap();
    for proxy in [
        http.clone(),
        format!("sip:{http};transport=tcp"),
        format!("[::ffff:127.0.0.1]:{port}"),
    ] {
        let id = register(&server, &tenant, "own-http", &proxy);
        let status = wait_for_state(&server, &tenant, &id, "failed_transport");
        assert!(
            phrase(&status).starts_with("destination ")
                && phrase(&status).ends_with(&format!(
                    "refused by listen (trunkline's own HTTP address {http})"
                )),
            "{proxy}: {status:#}"
        );
    }
    // Its own SIP address is a destination like any other (no refusal: an answer, of
    // whatever kind, comes back from the SIP side).
    let sip = server.sip.unwrap();
    let id = register(&server, &tenant, "own-sip", &sip.to_string());
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, status) = read(
            server
                .client
                .get(server.url(&format!("/v1/registrations/{id}")))
                .header("X-API-Key", &tenant.api_key)
                .send()
                .unwrap(),
        );
        if status["lastCode"].is_u64() {
            assert!(!phrase(&status).contains("refused"), "{status:#}");
            break;
        }
        assert!(Instant::now() < deadline, "{status:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sips_is_never_sent_over_udp_whatever_the_outbound_proxy_says() {
    let server = engine_with(&[]);
    let tenant = server.tenant();
    let sip = server.sip.unwrap();
    let id = create_registration(
        &server,
        &tenant,
        json!({
            "username": "secure",
            "password": "policy-secret",
            "proxy": "sips:registrar.example",
            "outboundProxy": format!("sip:{sip};transport=udp"),
        }),
    );
    let status = wait_for_state(&server, &tenant, &id, "failed_transport");
    assert!(
        phrase(&status).contains("transport=udp for a sips: address"),
        "{status:#}"
    );
}

/// Where this file's DNS server listens.
const DNS: &str = "127.0.0.78";

/// Replaces Kamailio's server certificate (issued by its throwaway CA for 127.0.0.1 and
/// localhost) with one for `names` only, from the same CA.
fn certificate_for(kamailio: &Kamailio, names: &[&str]) {
    let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    issue_server_certificate(kamailio.dir(), names[0], &san.join(","));
}

#[test]
fn tls_goes_where_our_resolver_says_and_verifies_the_registrar_name() {
    let mut kamailio = Kamailio::prepare(
        KamailioOptions::default()
            .tls()
            .subscriber("tls-name", "policy-secret")
            .subscriber("tls-srv", "policy-secret")
            .subscriber("tls-wrong", "policy-secret"),
    );
    // Valid for the registrar names only: not for 127.0.0.1, localhost, or the SRV targets.
    certificate_for(&kamailio, &["tls.registrar.test", "srv.registrar.test"]);
    kamailio.restart();
    let tls = kamailio.port(Transport::Tls);
    let dead = crate::kamailio::free_tcp_port();
    // Names only this DNS server knows (rsipstack's own lookup asks the system's).
    let _dns = Dns::start(
        DNS,
        &[
            "--host-record=tls.registrar.test,127.0.0.1".to_owned(),
            "--host-record=wrong.registrar.test,127.0.0.1".to_owned(),
            // RFC 3263 for a TLS target: _sips._tcp; priority 10 has nothing listening.
            format!("--srv-host=_sips._tcp.srv.registrar.test,dead.registrar.test,{dead},10,0"),
            format!("--srv-host=_sips._tcp.srv.registrar.test,live.registrar.test,{tls},20,0"),
            "--host-record=dead.registrar.test,127.0.0.1".to_owned(),
            "--host-record=live.registrar.test,127.0.0.1".to_owned(),
        ],
    );
    let server = engine_with(&[
        ("TRUNKLINE_SIP_DNS_SERVERS", DNS.to_owned()),
        (
            "TRUNKLINE_SIP_CA_FILE",
            kamailio.ca_cert().display().to_string(),
        ),
    ]);
    let tenant = server.tenant();

    let named = register(
        &server,
        &tenant,
        "tls-name",
        &format!("sip:tls.registrar.test:{tls};transport=tls"),
    );
    let status = wait_for_state(&server, &tenant, &named, "registered");
    assert_eq!(status["remote"], format!("127.0.0.1:{tls}"));
    assert_eq!(status["transport"], "tls");

    // SRV: the dead target first, then the live one, verified as srv.registrar.test.
    let srv = register(
        &server,
        &tenant,
        "tls-srv",
        "sip:srv.registrar.test;transport=tls",
    );
    let status = wait_for_state(&server, &tenant, &srv, "registered");
    assert_eq!(status["remote"], format!("127.0.0.1:{tls}"));

    // Same address, another name the certificate does not carry: the verified connection to
    // 127.0.0.1 is not reused for it, and its own handshake fails.
    let wrong = register(
        &server,
        &tenant,
        "tls-wrong",
        &format!("sip:wrong.registrar.test:{tls};transport=tls"),
    );
    let status = wait_for_state(&server, &tenant, &wrong, "failed_transport");
    assert_eq!(status["failedBy"], "local", "{status:#}");
    assert!(
        phrase(&status).contains("certificate not valid for name \"wrong.registrar.test\""),
        "{status:#}"
    );
    assert_eq!(
        kamailio.count("tls-wrong"),
        0,
        "sent over an unverified name"
    );
    assert!(kamailio.bindings("tls-wrong").is_empty());
    // The others stay registered.
    assert_eq!(kamailio.bindings("tls-name").len(), 1);
    assert_eq!(kamailio.bindings("tls-srv").len(), 1);
}
