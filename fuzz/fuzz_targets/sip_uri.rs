//! `trunkline_core::sip_uri` on any registrar / proxy / server address a client can send:
//! never panics, and what it accepts prints back to something it accepts the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkline_core::sip_uri::{Host, SipTarget};

fuzz_target!(|text: &str| {
    if let Ok((host, port)) = SipTarget::parse_host_port(text) {
        let printed = match port {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        assert_eq!(
            SipTarget::parse_host_port(&printed),
            Ok((host.clone(), port)),
            "{text:?}"
        );
    }
    if let Ok(target) = SipTarget::parse(text) {
        if let Host::Domain(name) = &target.host {
            assert!(name.len() <= 254 && !name.bytes().any(|b| b.is_ascii_uppercase()));
        }
        let scheme = if target.secure { "sips" } else { "sip" };
        let mut printed = format!("{scheme}:{}", target.host);
        if let Some(port) = target.port {
            printed.push_str(&format!(":{port}"));
        }
        if let Some(transport) = target.transport {
            printed.push_str(&format!(";transport={}", transport.as_str()));
        }
        assert_eq!(SipTarget::parse(&printed), Ok(target), "{text:?}");
    }
});
