//! The inbound registrar with the real clients of `devices.rs`: sipsak (UDP and TCP; wrong
//! password, unknown user, unregister), SIPp's `[authentication]` scenario for many users at
//! once (UDP and TCP; Debian's SIPp has no TLS — TLS is covered by trunkline's own engine
//! registering to its registrar, `registrar.rs`), and baresip registering headlessly and
//! unregistering when stopped.

use std::time::Duration;

use crate::common::{Server, Tenant};
use crate::devices::{Baresip, BaresipAccount, Sipp, Sipsak};
use crate::kamailio::Transport;
use crate::registrar::{objects, realm, server_with};

const PASSWORD: &str = "device-pass-1";

/// sipsak and SIPp 3.6 read only the first `WWW-Authenticate` and know only MD5: deployments
/// with such devices put MD5 first, as these tests do (see `sip.challenge_algorithms`).
fn md5_first_server() -> Server {
    server_challenging_with("MD5,SHA-256")
}

fn server_challenging_with(algorithms: &str) -> Server {
    server_with(&[("TRUNKLINE_SIP_CHALLENGE_ALGORITHMS", algorithms)])
}

fn create_credential(server: &Server, tenant: &Tenant, username: &str) -> String {
    crate::registrar::create_credential(server, tenant, username, PASSWORD)
}

#[test]
fn sipsak_registers_over_udp_and_tcp_and_unregisters() {
    let server = md5_first_server();
    let tenant = server.tenant();
    let sip = server.sip.unwrap();
    for transport in [Transport::Udp, Transport::Tcp] {
        let user = format!("sipsak-{}", transport.as_str());
        let id = create_credential(&server, &tenant, &user);
        let sipsak = Sipsak::new(sip, &realm(&tenant), &user, PASSWORD)
            .transport(transport)
            .expires(300);
        let run = sipsak.register();
        assert!(run.success(), "{}", run.text());
        let listed = objects(&server, &tenant, &id);
        assert_eq!(listed.len(), 1, "{listed:?}");
        // sipsak drops the Contact's parameters (`;transport=tcp`) and sends the rest.
        let sent = sipsak.contact_uri();
        assert_eq!(listed[0]["contact"], sent.split(';').next().unwrap());
        assert_eq!(listed[0]["transport"], transport.as_str());
        assert!(listed[0]["source"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}:127.0.0.1:", transport.as_str())));

        let run = sipsak.unregister();
        assert!(run.success(), "{}", run.text());
        assert!(objects(&server, &tenant, &id).is_empty());

        // A wrong password and an unknown user end alike: "authorization failed" (exit 2).
        let wrong = Sipsak::new(sip, &realm(&tenant), &user, "not-the-password")
            .transport(transport)
            .register();
        let unknown = Sipsak::new(sip, &realm(&tenant), "nobody-here", PASSWORD)
            .transport(transport)
            .register();
        assert_eq!(wrong.code(), Some(2), "{}", wrong.text());
        assert_eq!(unknown.code(), Some(2), "{}", unknown.text());
        assert!(objects(&server, &tenant, &id).is_empty());
    }
}

#[test]
fn sipp_registers_many_users_with_authentication_over_udp_and_tcp() {
    let server = md5_first_server();
    let tenant = server.tenant();
    let sip = server.sip.unwrap();
    for transport in [Transport::Udp, Transport::Tcp] {
        let users: Vec<String> = (0..25)
            .map(|i| format!("sipp-{}-{i}", transport.as_str()))
            .collect();
        let ids: Vec<String> = users
            .iter()
            .map(|user| create_credential(&server, &tenant, user))
            .collect();
        let pairs: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), PASSWORD)).collect();
        let outcome = Sipp::new(sip, &realm(&tenant), &pairs)
            .transport(transport)
            .rate(25)
            .run();
        assert_eq!(outcome.successful, 25, "{}", outcome.text());
        assert_eq!(outcome.failed, 0, "{}", outcome.text());
        for id in &ids {
            let listed = objects(&server, &tenant, id);
            assert_eq!(listed.len(), 1, "{listed:?}");
            assert_eq!(listed[0]["transport"], transport.as_str());
        }
    }
}

#[test]
fn baresip_registers_headlessly_and_unregisters_when_stopped() {
    // baresip 1.0 (libre) gives up ("Function not implemented") when any challenge names an
    // algorithm other than MD5, even after an MD5 one: such devices need `MD5` alone.
    let server = server_challenging_with("MD5");
    let tenant = server.tenant();
    let id = create_credential(&server, &tenant, "baresip-phone");
    let account = BaresipAccount::new(
        server.sip.unwrap(),
        &realm(&tenant),
        "baresip-phone",
        PASSWORD,
    )
    .regint(600);
    let mut phone = Baresip::start(&account);
    assert_eq!(phone.wait_registered(Duration::from_secs(20)), 1);
    let listed = objects(&server, &tenant, &id);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(
        listed[0]["user_agent"]
            .as_str()
            .is_some_and(|agent| agent.to_ascii_lowercase().contains("baresip")),
        "{listed:?}"
    );
    assert!(phone.stop().success());
    assert!(phone.sip_stack_exited(), "baresip's unregister ended");
    assert!(objects(&server, &tenant, &id).is_empty());
}
