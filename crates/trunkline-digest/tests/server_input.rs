//! Property tests for what a device sends the server side: `DigestResponse::parse` on arbitrary
//! and on digest-shaped hostile input (never panics, every kept value within its bound), nonces
//! that do not verify, and the replay guard against a model of what it must refuse.

use std::collections::HashMap;

use proptest::prelude::*;
use trunkline_digest::params::MAX_HEADER_LEN;
use trunkline_digest::server::{
    DigestResponse, NcVerdict, NonceCheck, NonceCounts, NonceKey, ResponseError,
};
use trunkline_digest::{MAX_PARAM_LEN, MAX_REALM_LEN};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Parses and checks what is kept; `Ok` also proves `verify` runs on it.
fn check_parsed(text: &str) -> Result<Option<DigestResponse>, TestCaseError> {
    let parsed = match DigestResponse::parse(text) {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.to_string();
            return Ok(None);
        }
    };
    prop_assert!(text.len() <= MAX_HEADER_LEN);
    prop_assert!(parsed.realm.len() <= MAX_REALM_LEN);
    for value in [&parsed.username, &parsed.nonce, &parsed.uri] {
        prop_assert!(value.len() <= MAX_PARAM_LEN);
    }
    prop_assert!(parsed.cnonce.as_ref().map_or(0, String::len) <= MAX_PARAM_LEN);
    let _ = format!("{parsed:?}");
    let _ = parsed.verify("REGISTER", "0123456789abcdef0123456789abcdef");
    Ok(Some(parsed))
}

/// A parameter a response may have, with a value that may be at or just over its bound.
fn param() -> impl Strategy<Value = (String, String, bool)> {
    // Mostly an ignored parameter, so that many can be given before a known one repeats.
    let name = prop_oneof![
        1 => prop::sample::select(vec![
            "username",
            "Realm",
            "nonce",
            "uri",
            "response",
            "algorithm",
            "qop",
            "nc",
            "cnonce",
            "opaque",
        ]),
        4 => Just("x-vendor"),
    ];
    let value = prop_oneof![
        "[a-zA-Z0-9:@./-]{0,16}",
        Just("00000001".to_owned()),
        Just("auth".to_owned()),
        Just("SHA-256-sess".to_owned()),
        "[\\\\\"a-z]{0,8}",
        // At and just over each bound.
        prop::sample::select(vec![
            MAX_REALM_LEN,
            MAX_REALM_LEN + 1,
            MAX_PARAM_LEN,
            MAX_PARAM_LEN + 1
        ])
        .prop_map(|n| "v".repeat(n)),
    ];
    (name, value, any::<bool>()).prop_map(|(name, value, quoted)| (name.to_owned(), value, quoted))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parse_never_panics_on_any_string(text in any::<String>()) {
        check_parsed(&text)?;
    }

    #[test]
    fn parse_never_panics_on_digest_shaped_noise(
        text in "(?i:digest)[ \t]{0,3}[a-zA-Z0-9=\", \\\\\t-]{0,300}",
    ) {
        check_parsed(&text)?;
    }

    /// Well-formed parameters, some too long or too many: refused as too large exactly when a
    /// bound is crossed before anything else is wrong (a parameter repeated).
    #[test]
    fn hostile_responses_are_bounded(params in prop::collection::vec(param(), 0..40)) {
        let text = params
            .iter()
            .map(|(name, value, quoted)| {
                if *quoted || value.is_empty() || value.starts_with('"') {
                    format!("{name}=\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    format!("{name}={value}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!("Digest {text}");
        let mut seen = Vec::new();
        let mut expected_too_large = text.len() > MAX_HEADER_LEN;
        for (i, (name, value, _)) in params.iter().enumerate() {
            if expected_too_large {
                break;
            }
            let bound = if name == "Realm" { MAX_REALM_LEN } else { MAX_PARAM_LEN };
            expected_too_large = i >= 32 || value.len() > bound;
            if !matches!(name.as_str(), "opaque" | "x-vendor") {
                if seen.contains(name) {
                    break;
                }
                seen.push(name.clone());
            }
        }
        let parsed = DigestResponse::parse(&text);
        prop_assert_eq!(
            matches!(parsed, Err(ResponseError::TooLarge(_))),
            expected_too_large,
            "{} bytes: {:?}",
            text.len(),
            parsed.as_ref().err()
        );
        check_parsed(&text)?;
    }

    #[test]
    fn only_issued_nonces_verify(nonce in "[A-Za-z0-9_=+/-]{0,40}", now in any::<u64>()) {
        let key = NonceKey::new(b"secret");
        prop_assert_eq!(key.check(&nonce, "r", now, 300), NonceCheck::Invalid);
        let issued = key.issue("r", now);
        prop_assert_eq!(key.check(&issued, "r", now, 0), NonceCheck::Fresh { issued_at: now });
    }

    /// Whatever the order of calls, a count is never accepted twice for a nonce, nor one lower
    /// than a count accepted before (as long as the caller drops only expired nonces, which it
    /// then no longer admits), and the guard never holds more than its capacity.
    #[test]
    fn replay_guard_never_accepts_a_count_twice(
        capacity in 1usize..6,
        calls in prop::collection::vec((0u64..12, 0u32..6, prop::bool::weighted(0.05)), 1..200),
    ) {
        let mut counts = NonceCounts::new(capacity);
        let mut highest: HashMap<u64, u32> = HashMap::new();
        let mut expired_before = 0;
        for (issued_at, nc, expire) in calls {
            if expire {
                // Time moves forward: what expired stays expired.
                expired_before = expired_before.max(issued_at);
                counts.forget_older_than(issued_at);
                continue;
            }
            if issued_at < expired_before {
                continue;
            }
            // One nonce per issue time, named after it.
            let verdict = counts.admit(&format!("nonce-{issued_at}"), issued_at, nc);
            if verdict == NcVerdict::Accept {
                let before = highest.insert(issued_at, nc).unwrap_or(0);
                prop_assert!(nc > before, "nc {} accepted after {}", nc, before);
            }
            prop_assert!(counts.len() <= capacity);
        }
    }
}
