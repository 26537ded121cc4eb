//! Property tests for the parsers of what API clients send (issue 13): SIP server addresses
//! (`sip_uri`) and Ultravox page cursors (`page`). Case counts are kept modest so the suite
//! stays fast in debug builds.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use trunkline_core::model::Transport;
use trunkline_core::page::{Cursor, Direction, Position, Seek};
use trunkline_core::sip_uri::{Host, SipTarget};
use trunkline_core::Timestamp;
use uuid::Uuid;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Prints a target back in the URI form `SipTarget::parse` accepts.
fn print(target: &SipTarget) -> String {
    let scheme = if target.secure { "sips" } else { "sip" };
    let mut text = format!("{scheme}:{}", target.host);
    if let Some(port) = target.port {
        text.push_str(&format!(":{port}"));
    }
    if let Some(transport) = target.transport {
        text.push_str(&format!(";transport={}", transport.as_str()));
    }
    text
}

/// A host name label, `_` included (realms such as `MA_XXXXXXXX.sip.vobiz.ai`).
fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,10}[a-zA-Z0-9_])?"
}

/// A valid host: a name with at least one letter, an IPv4 or an IPv6 address.
fn host() -> impl Strategy<Value = (String, Host)> {
    prop_oneof![
        (
            proptest::collection::vec(label(), 1..4),
            "[a-z][a-z0-9]{0,5}"
        )
            .prop_map(|(labels, tld)| {
                let name = format!("{}.{tld}", labels.join("."));
                let host = Host::Domain(name.to_ascii_lowercase());
                (name, host)
            }),
        any::<u32>().prop_map(|ip| {
            let ip = Ipv4Addr::from(ip);
            (ip.to_string(), Host::V4(ip))
        }),
        any::<u128>().prop_map(|ip| {
            let ip = Ipv6Addr::from(ip);
            (format!("[{ip}]"), Host::V6(ip))
        }),
    ]
}

fn transport() -> impl Strategy<Value = Transport> {
    prop_oneof![
        Just(Transport::Udp),
        Just(Transport::Tcp),
        Just(Transport::Tls)
    ]
}

/// Addresses shaped like the accepted ones, with hostile pieces spliced in.
fn address_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("sip:".to_owned()),
        Just("sips:".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(":".to_owned()),
        Just(";transport=".to_owned()),
        Just("@".to_owned()),
        Just("?".to_owned()),
        Just(".".to_owned()),
        Just("-".to_owned()),
        Just("_".to_owned()),
        "[0-9]{1,25}",
        "[a-zA-Z0-9-]{1,70}",
        "[0-9a-fA-F:]{1,45}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

fn seek() -> impl Strategy<Value = Seek> {
    (any::<bool>(), any::<bool>(), any::<i64>(), any::<u128>()).prop_map(
        |(forward, inclusive, micros, id)| Seek {
            direction: if forward {
                Direction::Forward
            } else {
                Direction::Backward
            },
            position: Position {
                created: Timestamp::from_micros(micros),
                id: Uuid::from_u128(id),
            },
            inclusive,
        },
    )
}

/// Standard base64 (URL-safe, unpadded) of `bytes`, written by hand so the test does not
/// lean on the encoder under test.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sip_uri_parsing_never_panics(text in any::<String>()) {
        let _ = SipTarget::parse(&text);
        let _ = SipTarget::parse_host_port(&text);
    }

    #[test]
    fn sip_uri_accepted_forms_print_back_to_themselves(text in address_like()) {
        if let Ok(target) = SipTarget::parse(&text) {
            if let Host::Domain(name) = &target.host {
                prop_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));
                prop_assert!(name.len() <= 254);
            }
            prop_assert_eq!(SipTarget::parse(&print(&target)), Ok(target), "{:?}", text);
        }
        if let Ok((host, port)) = SipTarget::parse_host_port(&text) {
            let printed = match port {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            };
            prop_assert_eq!(SipTarget::parse_host_port(&printed), Ok((host, port)));
        }
    }

    #[test]
    fn sip_uri_valid_addresses_parse_to_their_parts(
        (text, host) in host(),
        port in proptest::option::of(1u16..),
        scheme in prop_oneof![Just(""), Just("sip:"), Just("SIP:"), Just("sips:")],
        transport in proptest::option::of(transport()),
    ) {
        let secure = scheme == "sips:";
        let transport = if scheme.is_empty() { None } else { transport };
        let mut address = format!("{scheme}{text}");
        if let Some(port) = port {
            address.push_str(&format!(":{port}"));
        }
        if let Some(transport) = transport {
            address.push_str(&format!(";transport={}", transport.as_str().to_uppercase()));
        }
        let parsed = SipTarget::parse(&address);
        if secure && transport == Some(Transport::Udp) {
            prop_assert!(parsed.is_err());
        } else {
            prop_assert_eq!(
                parsed,
                Ok(SipTarget { secure, host: host.clone(), port, transport }),
                "{:?}", address
            );
        }
        if scheme.is_empty() {
            prop_assert_eq!(SipTarget::parse_host_port(&address), Ok((host, port)));
        }
    }

    #[test]
    fn sip_uri_refuses_ports_out_of_range(
        (text, _) in host(),
        port in prop_oneof![Just(0u64), 65536u64..],
    ) {
        let (bare, uri) = (format!("{text}:{port}"), format!("sip:{text}:{port}"));
        prop_assert!(SipTarget::parse(&bare).is_err());
        prop_assert!(SipTarget::parse(&uri).is_err());
    }

    #[test]
    fn cursor_decoding_never_panics(text in any::<String>()) {
        let _ = Cursor::decode(&text);
    }

    #[test]
    fn cursor_decoding_never_panics_on_base64_of_anything(
        bytes in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let _ = Cursor::decode(&base64url(&bytes));
    }

    /// Texts shaped like a cursor's contents, with hostile parts.
    #[test]
    fn cursor_decoding_never_panics_on_near_misses(
        direction in "[fbx]?",
        inclusive in "[ixf]?",
        micros in prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            "[0-9-]{0,30}",
            any::<u128>().prop_map(|n| n.to_string()),
        ],
        dot in prop_oneof![Just("."), Just(""), Just("..")],
        id in prop_oneof![
            any::<u128>().prop_map(|id| Uuid::from_u128(id).simple().to_string()),
            any::<u128>().prop_map(|id| Uuid::from_u128(id).to_string()),
            "[0-9a-fA-F-]{0,40}",
        ],
    ) {
        let text = format!("{direction}{inclusive}{micros}{dot}{id}");
        let decoded = Cursor::decode(&base64url(text.as_bytes()));
        if let Some(cursor) = decoded {
            prop_assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
    }

    #[test]
    fn cursors_round_trip(seek in seek()) {
        let cursor = Cursor(seek);
        let text = cursor.encode();
        prop_assert!(text.len() <= 128);
        prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let plain = format!(
            "{}{}{}.{}",
            if seek.direction == Direction::Forward { 'f' } else { 'b' },
            if seek.inclusive { 'i' } else { 'x' },
            seek.position.created.micros(),
            seek.position.id.simple()
        );
        prop_assert_eq!(&text, &base64url(plain.as_bytes()));
        prop_assert_eq!(Cursor::decode(&text), Some(cursor));
    }
}
