//! `digest::Challenge::parse` on any string a registrar could put in WWW-/Proxy-Authenticate;
//! a challenge that parses is answered (as a session would) and must come back the same when
//! written out again and re-parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use trunkline_sip::digest::{
    Challenge, ChallengeError, Credentials, DigestSession, MAX_CHALLENGE_LEN, MAX_PARAM_LEN,
    MAX_REALM_LEN,
};

fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fuzz_target!(|text: &str| {
    let Ok(challenge) = Challenge::parse(text) else {
        return;
    };
    assert!(text.len() <= MAX_CHALLENGE_LEN);
    assert!(challenge.realm().len() <= MAX_REALM_LEN);
    assert!(challenge.nonce().len() <= MAX_PARAM_LEN);
    assert!(challenge.opaque().map_or(0, str::len) <= MAX_PARAM_LEN);
    let _ = format!("{challenge:?}");

    // Written out canonically, it reads back the same.
    let mut again = format!(
        "Digest realm={}, nonce={}",
        quoted(challenge.realm()),
        quoted(challenge.nonce())
    );
    if let Some(opaque) = challenge.opaque() {
        again.push_str(&format!(", opaque={}", quoted(opaque)));
    }
    if let Some(algorithm) = challenge.algorithm() {
        again.push_str(&format!(", algorithm={algorithm}"));
    }
    if let Some(qop) = challenge.qop() {
        let list: Vec<&str> = [(qop.auth, "auth"), (qop.auth_int, "auth-int")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        if !list.is_empty() {
            again.push_str(&format!(", qop={}", quoted(&list.join(","))));
        }
    }
    if challenge.stale() {
        again.push_str(", stale=true");
    }
    match Challenge::parse(&again) {
        Ok(reparsed) => {
            assert_eq!(reparsed.realm(), challenge.realm());
            assert_eq!(reparsed.nonce(), challenge.nonce());
            assert_eq!(reparsed.opaque(), challenge.opaque());
            assert_eq!(reparsed.stale(), challenge.stale());
            if challenge.algorithm().is_some() {
                assert_eq!(reparsed.algorithm(), challenge.algorithm());
            }
        }
        // Escaping can push a value that was at a limit over it.
        Err(ChallengeError::TooLarge(_)) => {}
        Err(error) => panic!("{again:?} does not parse back: {error}"),
    }

    // Answered as the engine would.
    let password = SecretString::from("pw");
    let credentials = Credentials {
        username: "alice",
        password: &password,
    };
    let mut session = DigestSession::new();
    if session.on_challenge(challenge.clone()).is_ok() {
        let answer = session
            .next_authorization(&credentials, "REGISTER", "sip:example.com")
            .expect("an adopted challenge is answered");
        assert!(answer.starts_with("Digest username=\"alice\", realm="));
        session.on_success();
        let _ = session.on_challenge(challenge);
    }
});
