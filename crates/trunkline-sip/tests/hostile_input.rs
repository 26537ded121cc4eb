//! Property tests for every parser of what a registrar sends (issue 13): responses as
//! rsipstack parses them and `message::Reply::read` reads them (numbers, phrase, Contact
//! expiry, challenges), and the digest challenge parser, on arbitrary and on structured but
//! hostile input, and what a device sends to the inbound registrar (its REGISTER as the
//! registrar reads it). Case counts are kept modest so the suite stays fast in debug builds.

use proptest::prelude::*;
use rsipstack::sip::Response;
use secrecy::SecretString;
use trunkline_sip::digest::{
    pick, Algorithm, Challenge, ChallengeError, ChallengeRefused, Credentials, DigestSession,
    MAX_CHALLENGE_LEN, MAX_CHALLENGE_PARAMS, MAX_PARAM_LEN, MAX_REALM_LEN,
};
use trunkline_sip::message::Reply;

const OUR_CONTACT: &str = "sip:alice@192.0.2.1:5060;transport=udp";

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A response to our REGISTER with the given status line tail and extra header lines.
fn response(code: u16, phrase: &str, headers: &str) -> Option<Response> {
    let wire = format!(
        "SIP/2.0 {code} {phrase}\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=5060\r\n\
         From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>;tag=2\r\n\
         Call-ID: c@192.0.2.1\r\nCSeq: 1 REGISTER\r\n{headers}Content-Length: 0\r\n\r\n"
    );
    Response::try_from(wire.as_str()).ok()
}

/// A header value as a registrar might send it: no line breaks (they would end the header).
fn header_value() -> impl Strategy<Value = String> {
    "[^\r\n]{0,80}"
}

/// Numbers as they appear in Expires, Min-Expires and Retry-After: in range, absurd, negative,
/// with parameters or comments after them, or not numbers at all.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u32>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<u128>().prop_map(|n| n.to_string()),
        "[0-9]{1,60}",
        (any::<u32>(), "[;( ][^\r\n]{0,30}").prop_map(|(n, tail)| format!("{n}{tail}")),
        any::<i64>().prop_map(|n| n.to_string()),
        header_value(),
    ]
}

/// What `Reply::read` must make of a number header: exactly the value when its leading digits
/// fit in a u32; for larger ones either nothing or the largest u32; nothing without digits.
fn number_is_as_parsed(text: &str, read: Option<u32>) -> Result<(), TestCaseError> {
    let trimmed = text.trim();
    let digits: String = trimmed.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        prop_assert_eq!(read, None, "{:?}", text);
    } else {
        match digits.parse::<u32>() {
            Ok(n) => prop_assert_eq!(read, Some(n), "{:?}", text),
            Err(_) => prop_assert!(
                read.is_none() || read == Some(u32::MAX),
                "{:?} read as {:?}",
                text,
                read
            ),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reply_numbers_come_back_as_parsed_or_none(
        code in prop_oneof![Just(200u16), Just(423), Just(503), 100u16..700],
        expires in number_text(),
        min_expires in number_text(),
        retry_after in number_text(),
    ) {
        let headers = format!(
            "Expires: {expires}\r\nMin-Expires: {min_expires}\r\nRetry-After: {retry_after}\r\n"
        );
        // rsipstack may refuse some messages; what it parses must be read without a panic.
        let Some(response) = response(code, "Whatever", &headers) else {
            return Ok(());
        };
        let reply = Reply::read(&response, OUR_CONTACT);
        prop_assert_eq!(reply.code, code);
        number_is_as_parsed(&expires, reply.granted_expires)?;
        number_is_as_parsed(&min_expires, reply.min_expires)?;
        number_is_as_parsed(&retry_after, reply.retry_after)?;
    }

    #[test]
    fn reply_phrase_is_the_one_sent_or_the_standard_one(
        code in 100u16..700,
        phrase in prop_oneof![
            "[^\r\n]{0,40}",
            "[a-zA-Zé ]{200,2000}",
            Just("é".repeat(3000)),
        ],
    ) {
        let Some(response) = response(code, &phrase, "") else {
            return Ok(());
        };
        let reply = Reply::read(&response, OUR_CONTACT);
        prop_assert_eq!(reply.code, code);
        let sent = phrase.trim();
        prop_assert!(
            reply.phrase == response.status_code.text() || sent.starts_with(&reply.phrase),
            "{:?} read as {:?}",
            phrase,
            reply.phrase
        );
        prop_assert!(reply.phrase.len() <= sent.len().max(response.status_code.text().len()));
    }

    #[test]
    fn reply_survives_arbitrary_header_values(
        code in prop_oneof![Just(200u16), Just(401), Just(407), Just(423), 100u16..700],
        values in proptest::collection::vec(header_value(), 6),
    ) {
        let names = [
            "Contact", "WWW-Authenticate", "Proxy-Authenticate", "Expires", "Min-Expires",
            "Retry-After",
        ];
        let headers: String = names
            .iter()
            .zip(&values)
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        if let Some(response) = response(code, "X", &headers) {
            let reply = Reply::read(&response, OUR_CONTACT);
            prop_assert_eq!(reply.code, code);
            for challenge in &reply.challenges {
                prop_assert!(challenge.realm().len() <= MAX_REALM_LEN);
            }
            let _ = pick(&reply.challenges);
        }
    }

    /// Our contact's `expires` wins over the Expires header and other devices' bindings,
    /// whatever they say and wherever ours is in the list.
    #[test]
    fn contact_expires_is_ours_among_others(
        ours in number_text(),
        others in proptest::collection::vec(
            (
                any::<u8>(),
                // Quotes or angle brackets in another binding's parameters would change how
                // the header splits; what such a header means is not specified.
                number_text().prop_filter("no structure", |s| !s.contains(['"', '<', '>', ','])),
                "[a-z]{1,8}",
            ),
            0..6,
        ),
        position in any::<prop::sample::Index>(),
        header_expires in any::<u32>(),
        quoted in any::<bool>(),
    ) {
        let ours_value = if quoted { format!("\"{ours}\"") } else { ours.clone() };
        let mut contacts: Vec<String> = others
            .iter()
            .map(|(octet, expires, user)| {
                format!("\"{user}, x\" <sip:{user}@10.0.0.{octet}>;expires={expires}")
            })
            .collect();
        let at = position.index(contacts.len() + 1);
        contacts.insert(at, format!("<{OUR_CONTACT}>;Expires={ours_value};q=0.5"));
        let headers = format!(
            "Contact: {}\r\nExpires: {header_expires}\r\n",
            contacts.join(", ")
        );
        let Some(response) = response(200, "OK", &headers) else {
            return Ok(());
        };
        let reply = Reply::read(&response, OUR_CONTACT);
        // Text before any digit is not a number: the Expires header applies.
        let ours_digits = ours.trim().starts_with(|c: char| c.is_ascii_digit());
        if ours_digits && !ours.contains(['"', ',', ';', '<', '>']) {
            number_is_as_parsed(&ours, reply.granted_expires)?;
        } else if !ours_digits && !ours.contains(['"', ',', ';', '<', '>']) {
            prop_assert_eq!(reply.granted_expires, Some(header_expires));
        }
    }

    #[test]
    fn challenge_parse_never_panics_on_any_string(text in any::<String>()) {
        check_parsed(&text, Challenge::parse(&text))?;
    }

    #[test]
    fn challenge_parse_never_panics_on_digest_shaped_noise(
        text in "(?i:digest)[ \t]{0,3}[a-zA-Z=\", \\\\\t-]{0,200}",
    ) {
        check_parsed(&text, Challenge::parse(&text))?;
    }

    #[test]
    fn hostile_challenges_are_bounded(challenge in hostile_challenge()) {
        let (text, too_large) = challenge;
        let parsed = Challenge::parse(&text);
        if too_large {
            prop_assert!(
                matches!(parsed, Err(ChallengeError::TooLarge(_))),
                "{} bytes: {:?}",
                text.len(),
                parsed.map(|c| c.realm().len())
            );
        } else {
            prop_assert!(parsed.is_ok(), "{:?}", parsed);
        }
        check_parsed(&text, parsed)?;
    }

    #[test]
    fn well_formed_challenges_round_trip(challenge in well_formed_challenge()) {
        let (text, realm, nonce, opaque, algorithm, qop, stale) = challenge;
        let parsed = Challenge::parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(parsed.realm(), realm.as_str());
        prop_assert_eq!(parsed.nonce(), nonce.as_str());
        prop_assert_eq!(parsed.opaque(), opaque.as_deref());
        prop_assert_eq!(parsed.algorithm(), Some(algorithm.unwrap_or(Algorithm::Md5)));
        prop_assert_eq!(parsed.stale(), stale);
        prop_assert_eq!(parsed.qop().is_some_and(|q| q.auth), qop);
        // Answerable exactly when it is supported, and the answer echoes realm and nonce.
        let password = SecretString::from("pw");
        let credentials = Credentials { username: "alice", password: &password };
        let answer = parsed.authorization(&credentials, "REGISTER", "sip:example.com", 1, "c");
        prop_assert_eq!(answer.is_ok(), parsed.is_supported());
        if let Ok(answer) = answer {
            let escaped = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
            let realm_part = format!("realm=\"{}\"", escaped(&realm));
            let nonce_part = format!("nonce=\"{}\"", escaped(&nonce));
            prop_assert!(answer.contains(&realm_part));
            prop_assert!(answer.contains(&nonce_part));
        }
    }

    /// The downgrade guard against a model: once an answer in SHA-256(-sess) got a 2xx, an
    /// MD5(-sess) challenge is refused as a downgrade until `reset`.
    #[test]
    fn downgrade_guard_follows_the_strongest_accepted_algorithm(
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let password = SecretString::from("pw");
        let credentials = Credentials { username: "u", password: &password };
        let mut session = DigestSession::new();
        let mut adopted: Option<Algorithm> = None;
        let mut answered: Option<Algorithm> = None;
        let mut proven: Option<Algorithm> = None;
        let strong = |a: Algorithm| matches!(a, Algorithm::Sha256 | Algorithm::Sha256Sess);
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Step::Challenge(algorithm) => {
                    let text = format!(
                        "Digest realm=r, nonce=n{i}, qop=auth, algorithm={}",
                        algorithm.as_str()
                    );
                    let result = session.on_challenge(Challenge::parse(&text).unwrap());
                    answered = None;
                    let downgrade = proven.is_some_and(strong) && !strong(algorithm);
                    if downgrade {
                        let is_downgrade =
                            matches!(result, Err(ChallengeRefused::Downgrade { .. }));
                        prop_assert!(is_downgrade, "{:?}", result);
                        adopted = None;
                    } else {
                        prop_assert!(result.is_ok(), "{:?}", result);
                        adopted = Some(algorithm);
                    }
                }
                Step::Answer => {
                    let answer = session.next_authorization(&credentials, "REGISTER", "sip:r");
                    prop_assert_eq!(answer.is_some(), adopted.is_some());
                    answered = adopted;
                }
                Step::Success => {
                    if let Some(algorithm) = answered.take() {
                        if !proven.is_some_and(strong) {
                            proven = Some(algorithm);
                        }
                    }
                    session.on_success();
                }
                Step::Forget => {
                    session.forget();
                    adopted = None;
                    answered = None;
                }
                Step::Reset => {
                    session.reset();
                    adopted = None;
                    answered = None;
                    proven = None;
                }
            }
            prop_assert_eq!(session.proven().map(strong), proven.map(strong));
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Challenge(Algorithm),
    Answer,
    Success,
    Forget,
    Reset,
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::Md5),
        Just(Algorithm::Md5Sess),
        Just(Algorithm::Sha256),
        Just(Algorithm::Sha256Sess),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => algorithm().prop_map(Step::Challenge),
        4 => Just(Step::Answer),
        3 => Just(Step::Success),
        1 => Just(Step::Forget),
        1 => Just(Step::Reset),
    ]
}

/// Whatever parsed respects the bounds; whatever failed did so with an error, not a panic.
fn check_parsed(
    text: &str,
    parsed: Result<Challenge, ChallengeError>,
) -> Result<(), TestCaseError> {
    if let Ok(challenge) = parsed {
        prop_assert!(text.len() <= MAX_CHALLENGE_LEN);
        prop_assert!(challenge.realm().len() <= MAX_REALM_LEN);
        prop_assert!(challenge.nonce().len() <= MAX_PARAM_LEN);
        prop_assert!(challenge.opaque().map_or(0, str::len) <= MAX_PARAM_LEN);
        let _ = format!("{challenge:?}");
        let _ = challenge.is_supported();
    }
    Ok(())
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A value of `len` bytes made of `c`, quoted or as a token.
fn filler(c: char, len: usize, quoted: bool) -> String {
    let value = c.to_string().repeat(len);
    if quoted {
        quote(&value)
    } else {
        value
    }
}

/// A syntactically fine challenge whose sizes are drawn around the limits, with whether any
/// limit is exceeded.
fn hostile_challenge() -> impl Strategy<Value = (String, bool)> {
    (
        prop_oneof![0usize..300, Just(MAX_REALM_LEN), Just(MAX_REALM_LEN + 1)],
        prop_oneof![1usize..1100, Just(MAX_PARAM_LEN), Just(MAX_PARAM_LEN + 1)],
        proptest::option::of(prop_oneof![
            0usize..1100,
            Just(MAX_PARAM_LEN + 1),
            5000usize..6000
        ]),
        0usize..40,
        0usize..1100,
        any::<bool>(),
        prop_oneof![Just(""), Just(" "), Just(" \t "), Just("\r\n ")],
    )
        .prop_map(|(realm, nonce, opaque, extra, vendor, quoted, space)| {
            let realm = realm.max(usize::from(!quoted));
            let mut text = format!(
                "Digest realm={},{space}nonce={}",
                filler('r', realm, quoted),
                filler('n', nonce, quoted)
            );
            if let Some(opaque) = opaque {
                text.push_str(&format!(", opaque={}", filler('o', opaque.max(1), true)));
            }
            for i in 0..extra {
                text.push_str(&format!(",{space}x{i}=v"));
            }
            text.push_str(&format!(
                ", x-vendor={}",
                filler('v', vendor.max(1), quoted)
            ));
            let params = 2 + usize::from(opaque.is_some()) + extra + 1;
            let too_large = realm > MAX_REALM_LEN
                || nonce > MAX_PARAM_LEN
                || opaque.is_some_and(|o| o.max(1) > MAX_PARAM_LEN)
                || vendor.max(1) > MAX_PARAM_LEN
                || params > MAX_CHALLENGE_PARAMS
                || text.len() > MAX_CHALLENGE_LEN;
            (text, too_large)
        })
}

type WellFormed = (
    String,
    String,
    String,
    Option<String>,
    Option<Algorithm>,
    bool,
    bool,
);

/// A challenge within every limit, written with quoting and escapes, its parts alongside.
fn well_formed_challenge() -> impl Strategy<Value = WellFormed> {
    (
        "[^\u{0}]{0,40}",
        "[a-zA-Z0-9+/=\"\\\\ ,]{1,120}",
        proptest::option::of("[^\u{0}]{0,60}"),
        proptest::option::of(algorithm()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(realm, nonce, opaque, algorithm, qop, stale)| {
            let mut text = format!("Digest realm={}, nonce={}", quote(&realm), quote(&nonce));
            if let Some(opaque) = &opaque {
                text.push_str(&format!(", opaque={}", quote(opaque)));
            }
            if let Some(algorithm) = algorithm {
                text.push_str(&format!(", algorithm={}", algorithm.as_str()));
            }
            if qop {
                text.push_str(", qop=\"auth,auth-int\"");
            }
            if stale {
                text.push_str(", stale=TRUE");
            }
            (text, realm, nonce, opaque, algorithm, qop, stale)
        })
}

/// A 401 whose only challenge is oversized offers nothing to answer: the exchange reports
/// "no supported digest challenge" instead of storing and echoing it.
#[test]
fn an_oversized_challenge_leaves_nothing_to_answer() {
    for challenge in [
        format!(
            "Digest realm=\"{}\", nonce=\"n\"",
            "r".repeat(MAX_REALM_LEN + 1)
        ),
        format!(
            "Digest realm=r, nonce=\"{}\"",
            "n".repeat(MAX_PARAM_LEN + 1)
        ),
        format!(
            "Digest realm=r, nonce=n, opaque={}",
            "o".repeat(MAX_PARAM_LEN + 1)
        ),
        format!(
            "Digest realm=r, nonce=n{}",
            (0..MAX_CHALLENGE_PARAMS)
                .map(|i| format!(", p{i}=v"))
                .collect::<String>()
        ),
    ] {
        let headers =
            format!("WWW-Authenticate: {challenge}\r\nWWW-Authenticate: Basic realm=\"r\"\r\n");
        let response = response(401, "Unauthorized", &headers).expect("parses");
        let reply = Reply::read(&response, OUR_CONTACT);
        assert!(reply.challenges.is_empty(), "{challenge}");
        assert!(pick(&reply.challenges).is_none());
    }
}

// --- what a device sends to the inbound registrar (issue 14) ----------------------------------

/// A REGISTER from a device with the given extra header lines, if rsipstack parses it.
fn device_register(headers: &str) -> Option<rsipstack::sip::Request> {
    let wire = format!(
        "REGISTER sip:MA_ABCDEFGHIJ.sip.localhost SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK7\r\n\
         From: <sip:dev@MA_ABCDEFGHIJ.sip.localhost>;tag=9\r\n\
         To: <sip:dev@MA_ABCDEFGHIJ.sip.localhost>\r\n\
         Call-ID: d@192.0.2.9\r\nCSeq: 3 REGISTER\r\n{headers}Content-Length: 0\r\n\r\n"
    );
    rsipstack::sip::Request::try_from(wire.as_str()).ok()
}

proptest! {
    #![proptest_config(config())]

    /// Whatever a device puts in Contact, Expires, User-Agent and Authorization: reading it
    /// never panics, and what is kept stays within the registrar's bounds.
    #[test]
    fn a_devices_register_is_read_within_bounds(
        contact in header_value(),
        expires in header_value(),
        agent in "[^\r\n]{0,400}",
        authorization in header_value(),
        contacts in 0usize..30,
    ) {
        use trunkline_sip::registrar::request::{
            Contacts, RegisterRequest, MAX_AUTHORIZATIONS, MAX_CONTACTS_PER_REQUEST,
            MAX_CONTACT_LEN, MAX_USER_AGENT_CHARS,
        };
        let mut headers = String::new();
        for _ in 0..contacts {
            headers.push_str(&format!("Contact: {contact}\r\n"));
        }
        headers.push_str(&format!(
            "Expires: {expires}\r\nUser-Agent: {agent}\r\nAuthorization: {authorization}\r\n"
        ));
        let Some(request) = device_register(&headers) else {
            return Ok(());
        };
        if let Ok(read) = RegisterRequest::read(&request) {
            prop_assert!(read.user_agent.as_ref().is_none_or(|a| a.chars().count() <= MAX_USER_AGENT_CHARS));
            prop_assert!(read.authorizations.len() <= MAX_AUTHORIZATIONS);
            if let Contacts::List(list) = &read.contacts {
                prop_assert!(list.len() <= MAX_CONTACTS_PER_REQUEST);
                prop_assert!(list.iter().all(|c| c.uri.len() <= MAX_CONTACT_LEN));
            }
        }
        // The digest answer parser takes the same attacker text.
        let _ = trunkline_sip::digest::server::DigestResponse::parse(&authorization);
    }
}
