//! The server side: what the registrar needs to authenticate devices that REGISTER with
//! trunkline.
//!
//! This module owns issuing and checking stateless nonces ([`NonceKey`]), writing the
//! `WWW-Authenticate` / `Proxy-Authenticate` challenge ([`challenge`]), reading a device's
//! `Authorization` / `Proxy-Authorization` answer and checking it against a stored HA1
//! ([`DigestResponse`]), and refusing a nonce count seen before ([`NonceCounts`]).
//!
//! A nonce carries its issue time and a MAC over that time and the realm, so any node holding
//! the key (`sip.nonce_secret`) can tell a nonce it issued from a forged one, and an old one
//! (answer `stale=true`) from a fresh one, without remembering what it issued. What a
//! stateless nonce cannot tell is whether an answer was already seen: [`NonceCounts`] keeps the
//! highest `nc` per nonce in bounded memory for that.
//!
//! Only `qop=auth` is offered and accepted (no `auth-int`: it needs the body), and answers
//! without `qop` (RFC 2069) are checked too; such an answer has no count, so nothing here tells
//! its replay within the nonce's lifetime (the registrar may refuse answers without `qop`). The
//! answer is read by the same bounded parser as
//! the client's challenges ([`crate::params`]). The `response` hash a device sent never appears
//! in an error or in `Debug` output.
//!
//! The caller's order for one REGISTER: [`DigestResponse::parse`], look the credential up by
//! `username` and `realm`, [`NonceKey::check`] the nonce for that realm, compare `uri` with the
//! Request-URI, [`DigestResponse::verify`], and only then [`NonceCounts::admit`] its `nc`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::algorithm::{self, Algorithm, QopAuth};
use crate::params::{push_quoted, read_named, ParamError};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a nonce: 128 bits, beyond guessing within a nonce's lifetime.
const NONCE_TAG_LEN: usize = 16;
/// Random bytes per nonce: two challenges in the same second get different nonces, so their
/// nonce counts never collide in [`NonceCounts`].
const NONCE_SALT_LEN: usize = 9;
/// A nonce's bytes: the issue time (u64, big-endian), the salt and the truncated MAC.
const NONCE_RAW_LEN: usize = 8 + NONCE_SALT_LEN + NONCE_TAG_LEN;
/// A nonce's length on the wire (base64url without padding).
const NONCE_LEN: usize = NONCE_RAW_LEN / 3 * 4;
/// How far in the future a nonce's issue time may be: the clocks of the nodes sharing a key
/// differ by a little.
const MAX_CLOCK_SKEW_SECS: u64 = 5;

/// Key for stateless nonces (`sip.nonce_secret`); from configured bytes or random per start.
///
/// With a random key, nonces issued before a restart, or by another node, are
/// [`NonceCheck::Invalid`] and the device is simply challenged again.
#[derive(Clone)]
pub struct NonceKey {
    /// HMAC-SHA256 already keyed; cloned for each nonce.
    mac: HmacSha256,
}

impl NonceKey {
    /// A key derived from `secret`, of any length: the HMAC key is its SHA-256.
    pub fn new(secret: &[u8]) -> Self {
        Self::from_key(Sha256::digest(secret).into())
    }

    /// A key of 32 random bytes, for a single node whose nonces need not survive a restart.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::from_key(key)
    }

    fn from_key(key: [u8; 32]) -> Self {
        Self {
            mac: HmacSha256::new_from_slice(&key).expect("HMAC takes a key of any length"),
        }
    }

    /// The MAC of a nonce issued at `issued_at` for `realm`.
    fn mac(&self, issued_at: [u8; 8], salt: &[u8], realm: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(&issued_at);
        mac.update(salt);
        mac.update(realm.as_bytes());
        mac
    }

    /// A nonce for `realm`: base64url without padding of the issue time (u64, big-endian, 8
    /// bytes), 9 random bytes, and the first 16 bytes of HMAC(key, issue time || random ||
    /// realm). 44 characters.
    pub fn issue(&self, realm: &str, now_unix_secs: u64) -> String {
        let issued_at = now_unix_secs.to_be_bytes();
        let mut raw = [0u8; NONCE_RAW_LEN];
        raw[..8].copy_from_slice(&issued_at);
        rand::thread_rng().fill_bytes(&mut raw[8..8 + NONCE_SALT_LEN]);
        let tag = self
            .mac(issued_at, &raw[8..8 + NONCE_SALT_LEN], realm)
            .finalize()
            .into_bytes();
        raw[8 + NONCE_SALT_LEN..].copy_from_slice(&tag[..NONCE_TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// [`NonceCheck::Fresh`] when this key issued `nonce` for `realm` at most `lifetime_secs`
    /// ago (or up to 5 s in the future: the clocks of nodes sharing the key differ);
    /// [`NonceCheck::Stale`] when it did, but longer ago; [`NonceCheck::Invalid`] for anything
    /// else: not a nonce of ours, another key's, another realm's, or too far in the future.
    /// The MAC is compared in constant time.
    pub fn check(
        &self,
        nonce: &str,
        realm: &str,
        now_unix_secs: u64,
        lifetime_secs: u64,
    ) -> NonceCheck {
        let mut raw = [0u8; NONCE_RAW_LEN];
        let decoded = (nonce.len() == NONCE_LEN)
            .then(|| URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw).ok())
            .flatten();
        if decoded != Some(NONCE_RAW_LEN) {
            return NonceCheck::Invalid;
        }
        let mut issued_at = [0u8; 8];
        issued_at.copy_from_slice(&raw[..8]);
        if self
            .mac(issued_at, &raw[8..8 + NONCE_SALT_LEN], realm)
            .verify_truncated_left(&raw[8 + NONCE_SALT_LEN..])
            .is_err()
        {
            return NonceCheck::Invalid;
        }
        let issued_at = u64::from_be_bytes(issued_at);
        if issued_at > now_unix_secs.saturating_add(MAX_CLOCK_SKEW_SECS) {
            NonceCheck::Invalid
        } else if now_unix_secs.saturating_sub(issued_at) <= lifetime_secs {
            NonceCheck::Fresh { issued_at }
        } else {
            NonceCheck::Stale
        }
    }
}

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

/// What [`NonceKey::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, for this realm, and young enough; `issued_at` is what [`NonceCounts::admit`] takes.
    Fresh { issued_at: u64 },
    /// Ours and for this realm, but expired: challenge again with `stale=true`, so the device
    /// retries with the new nonce instead of asking its user for a password.
    Stale,
    /// Not a nonce this key issued for this realm.
    Invalid,
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` value:
/// `Digest realm="…", nonce="…", algorithm=SHA-256, qop="auth"`, and `, stale=true` when
/// `stale`. No `opaque`: the nonce carries all the state there is.
pub fn challenge(realm: &str, nonce: &str, algorithm: Algorithm, stale: bool) -> String {
    let mut out = String::with_capacity(64 + realm.len() + nonce.len());
    out.push_str("Digest realm=");
    push_quoted(&mut out, realm);
    out.push_str(", nonce=");
    push_quoted(&mut out, nonce);
    out.push_str(", algorithm=");
    out.push_str(algorithm.as_str());
    out.push_str(", qop=\"auth\"");
    if stale {
        out.push_str(", stale=true");
    }
    out
}

/// Why a header value is not a digest answer trunkline can check. Never shows the `response`
/// hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("not a Digest authorization")]
    NotDigest,
    #[error("malformed digest authorization: {0}")]
    Malformed(&'static str),
    /// Larger than any device needs: refused before anything is kept.
    #[error("digest authorization refused: {0}")]
    TooLarge(&'static str),
    /// One of `username`, `realm`, `nonce`, `uri` and `response` is absent.
    #[error("digest authorization without {0}")]
    Missing(&'static str),
    #[error("digest authorization whose nc is not 8 hex digits")]
    BadNonceCount,
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("digest authorization with a qop other than auth")]
    UnsupportedQop,
}

impl From<ParamError> for ResponseError {
    fn from(error: ParamError) -> Self {
        match error {
            ParamError::NotDigest => ResponseError::NotDigest,
            ParamError::Malformed(what) => ResponseError::Malformed(what),
            ParamError::TooLarge(what) => ResponseError::TooLarge(what),
        }
    }
}

/// The quality of protection of an answer; only `auth` is supported (read in any case, hashed
/// as `auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    Auth,
}

/// A parsed `Authorization` / `Proxy-Authorization` value from a device.
///
/// Every field is bounded as the client's challenges are ([`crate::params`]): the header by
/// [`crate::params::MAX_HEADER_LEN`], `realm` by [`crate::MAX_REALM_LEN`], every other value by
/// [`crate::MAX_PARAM_LEN`]. `opaque`, `userhash` and unknown parameters are ignored.
#[derive(Clone)]
pub struct DigestResponse {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    /// The digest-uri; the caller compares it with the Request-URI.
    pub uri: String,
    /// MD5 when the answer names none (RFC 3261 §22.4).
    pub algorithm: Algorithm,
    /// `None`: an RFC 2069 answer, without nonce count or cnonce.
    pub qop: Option<Qop>,
    pub nc: Option<u32>,
    pub cnonce: Option<String>,
    /// `nc` as sent (8 hex digits): the hash is over the text, not the number.
    nc_text: Option<String>,
    /// Lower-case hex; never shown.
    response: String,
}

impl DigestResponse {
    /// Parses a header value such as `Digest username="alice", realm="…", nonce="…",
    /// uri="sip:…", response="…", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="…"`.
    ///
    /// Refused: a scheme other than `Digest`, anything over the bounds, a parameter given twice,
    /// a missing `username`, `realm`, `nonce`, `uri` or `response`, an `nc` that is not 8 hex
    /// digits, an algorithm trunkline does not support, a `qop` other than `auth`.
    pub fn parse(header_value: &str) -> Result<Self, ResponseError> {
        let [username, realm, nonce, uri, response, algorithm, qop, nc, cnonce] = read_named(
            header_value,
            [
                "username",
                "realm",
                "nonce",
                "uri",
                "response",
                "algorithm",
                "qop",
                "nc",
                "cnonce",
            ],
        )?;
        let required = |value: Option<std::borrow::Cow<'_, str>>, name| {
            value
                .map(|value| value.into_owned())
                .ok_or(ResponseError::Missing(name))
        };
        let username = required(username, "username")?;
        let realm = required(realm, "realm")?;
        let nonce = required(nonce, "nonce")?;
        let uri = required(uri, "uri")?;
        let response = required(response, "response")?.to_ascii_lowercase();
        let algorithm = Algorithm::parse(algorithm.as_deref()).ok_or_else(|| {
            ResponseError::UnsupportedAlgorithm(algorithm.unwrap_or_default().into_owned())
        })?;
        let qop = match qop {
            None => None,
            Some(qop) if qop.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
            Some(_) => return Err(ResponseError::UnsupportedQop),
        };
        let nc_value = match nc.as_deref() {
            None => None,
            Some(nc) if nc.len() == 8 && nc.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(u32::from_str_radix(nc, 16).map_err(|_| ResponseError::BadNonceCount)?)
            }
            Some(_) => return Err(ResponseError::BadNonceCount),
        };
        Ok(DigestResponse {
            username,
            realm,
            nonce,
            uri,
            algorithm,
            qop,
            nc: nc_value,
            cnonce: cnonce.map(|cnonce| cnonce.into_owned()),
            nc_text: nc.map(|nc| nc.into_owned()),
            response,
        })
    }

    /// Whether the answer proves knowledge of the password whose HA1 is `ha1_hex` (lower-case
    /// hex, as [`crate::ha1`] returns for the base algorithm of `self.algorithm`; a `-sess`
    /// answer salts it with nonce and cnonce here) for a request with `method` to `self.uri`.
    /// The `response` is compared in constant time.
    ///
    /// `qop=auth` without `nc` or `cnonce` is false, and so is a `-sess` algorithm without
    /// `qop` (no cnonce to salt with). Says nothing about the nonce: check it with
    /// [`NonceKey::check`] and its count with [`NonceCounts::admit`].
    pub fn verify(&self, method: &str, ha1_hex: &str) -> bool {
        let qop = match (self.qop, &self.nc_text, &self.cnonce) {
            (None, ..) => None,
            (Some(Qop::Auth), Some(nc), Some(cnonce)) => Some(QopAuth { nc, cnonce }),
            (Some(Qop::Auth), ..) => return false,
        };
        let Some(expected) =
            algorithm::response(self.algorithm, ha1_hex, &self.nonce, method, &self.uri, qop)
        else {
            return false;
        };
        expected.as_bytes().ct_eq(self.response.as_bytes()).into()
    }
}

impl fmt::Debug for DigestResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestResponse")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("nonce", &self.nonce)
            .field("uri", &self.uri)
            .field("algorithm", &self.algorithm)
            .field("qop", &self.qop)
            .field("nc", &self.nc)
            .field("cnonce", &self.cnonce)
            .finish_non_exhaustive()
    }
}

/// Replay guard: the highest nonce count accepted per nonce, for at most `capacity` nonces.
///
/// When full, the nonces issued longest ago are forgotten first; a nonce that is not remembered
/// but is no younger than one forgotten for room is [`NcVerdict::Forgotten`] (its history is
/// lost), while a younger one is new. Each call costs O(log n).
#[derive(Debug)]
pub struct NonceCounts {
    capacity: usize,
    /// The highest count accepted per nonce.
    counts: HashMap<Arc<str>, u32>,
    /// The same nonces, oldest first.
    by_age: BTreeSet<(u64, Arc<str>)>,
    /// The latest issue time of a nonce evicted for room.
    evicted_through: Option<u64>,
}

/// What [`NonceCounts::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NcVerdict {
    /// Higher than any count accepted for this nonce; now recorded.
    Accept,
    /// Not higher than one accepted before (or 0): a replay, or a request resent.
    Replay,
    /// The nonce's history was evicted for room: challenge again with `stale=true`.
    Forgotten,
}

impl NonceCounts {
    /// Room for `capacity` nonces (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            counts: HashMap::new(),
            by_age: BTreeSet::new(),
            evicted_through: None,
        }
    }

    /// [`NcVerdict::Accept`] (and records `nc`) when `nc` is greater than any count accepted
    /// before for `nonce`, [`NcVerdict::Replay`] when not, [`NcVerdict::Forgotten`] when the
    /// nonce is not remembered but nonces issued at or after `issued_at` were evicted for room.
    /// Call it only for a nonce [`NonceKey::check`] found fresh, with the `issued_at` it gave,
    /// and an answer that [`DigestResponse::verify`] accepted.
    pub fn admit(&mut self, nonce: &str, issued_at: u64, nc: u32) -> NcVerdict {
        if let Some(highest) = self.counts.get_mut(nonce) {
            if nc <= *highest {
                return NcVerdict::Replay;
            }
            *highest = nc;
            return NcVerdict::Accept;
        }
        if self
            .evicted_through
            .is_some_and(|through| issued_at <= through)
        {
            return NcVerdict::Forgotten;
        }
        if nc == 0 {
            return NcVerdict::Replay;
        }
        let nonce: Arc<str> = Arc::from(nonce);
        self.by_age.insert((issued_at, Arc::clone(&nonce)));
        self.counts.insert(nonce, nc);
        while self.counts.len() > self.capacity {
            let Some((issued_at, evicted)) = self.by_age.pop_first() else {
                break;
            };
            self.counts.remove(&evicted);
            self.evicted_through = Some(self.evicted_through.unwrap_or(0).max(issued_at));
        }
        NcVerdict::Accept
    }

    /// Drops the nonces issued before `issued_before`: expired, so [`NonceKey::check`] answers
    /// stale for them anyway. Not an eviction: it makes no nonce [`NcVerdict::Forgotten`].
    pub fn forget_older_than(&mut self, issued_before: u64) {
        while let Some((issued_at, _)) = self.by_age.first() {
            if *issued_at >= issued_before {
                break;
            }
            if let Some((_, nonce)) = self.by_age.pop_first() {
                self.counts.remove(&nonce);
            }
        }
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::client::{Challenge, Credentials, DigestSession};
    use crate::ha1;

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    /// RFC 7616 §3.9.1's Authorization header, as laid out there, for `algorithm`.
    fn rfc7616_answer(algorithm: &str, response: &str) -> String {
        format!(
            "Digest username=\"Mufasa\",\r\n       realm=\"http-auth@example.org\",\r\n       \
             uri=\"/dir/index.html\",\r\n       algorithm={algorithm},\r\n       \
             nonce=\"{RFC7616_NONCE}\",\r\n       nc=00000001,\r\n       \
             cnonce=\"{RFC7616_CNONCE}\",\r\n       qop=auth,\r\n       \
             response=\"{response}\",\r\n       \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        )
    }

    fn mufasa_ha1(algorithm: Algorithm) -> String {
        let password = SecretString::from("Circle of Life");
        ha1(algorithm, "Mufasa", "http-auth@example.org", &password)
    }

    #[test]
    fn rfc_7616_examples_verify() {
        for (algorithm, response) in [
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let answer =
                DigestResponse::parse(&rfc7616_answer(algorithm.as_str(), response)).unwrap();
            assert_eq!(answer.username, "Mufasa");
            assert_eq!(answer.realm, "http-auth@example.org");
            assert_eq!(answer.nonce, RFC7616_NONCE);
            assert_eq!(answer.uri, "/dir/index.html");
            assert_eq!(answer.algorithm, algorithm);
            assert_eq!(answer.qop, Some(Qop::Auth));
            assert_eq!(answer.nc, Some(1));
            assert_eq!(answer.cnonce.as_deref(), Some(RFC7616_CNONCE));

            let stored = mufasa_ha1(algorithm);
            assert!(answer.verify("GET", &stored), "{algorithm}");
            assert!(!answer.verify("POST", &stored));
            let other = ha1(
                algorithm,
                "Mufasa",
                "http-auth@example.org",
                &SecretString::from("Circle Of Life"),
            );
            assert!(!answer.verify("GET", &other));
            // The other algorithm's HA1 does not fit.
            let wrong_hash = match algorithm {
                Algorithm::Md5 => Algorithm::Sha256,
                _ => Algorithm::Md5,
            };
            assert!(!answer.verify("GET", &mufasa_ha1(wrong_hash)));
        }
    }

    #[test]
    fn rfc_2617_answer_without_qop_verifies() {
        // RFC 2069 style: the client's no-qop answer to RFC 2617's §3.5 challenge.
        let answer = DigestResponse::parse(
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"670FD8C2DF070C60B045671B8B24FF02\"",
        )
        .unwrap();
        assert_eq!(
            (answer.qop, answer.nc, answer.cnonce.as_deref()),
            (None, None, None)
        );
        assert_eq!(answer.algorithm, Algorithm::Md5);
        let stored = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            &SecretString::from("Circle Of Life"),
        );
        assert!(answer.verify("GET", &stored), "upper-case hex is read too");
        assert!(!answer.verify("HEAD", &stored));
    }

    /// A server challenge answered by the client, as a registering device would.
    fn answered(algorithm: Algorithm, password: &str, uri: &str) -> (String, String) {
        let key = NonceKey::new(b"nonce secret");
        let nonce = key.issue("acme.sip.example", 1_000);
        let header = challenge("acme.sip.example", &nonce, algorithm, false);
        let password = SecretString::from(password);
        let credentials = Credentials {
            username: "alice",
            password: &password,
        };
        let mut session = DigestSession::new();
        session
            .on_challenge(Challenge::parse(&header).unwrap())
            .unwrap();
        let answer = session
            .next_authorization(&credentials, "REGISTER", uri)
            .unwrap();
        (nonce, answer)
    }

    fn alice_ha1(algorithm: Algorithm) -> String {
        ha1(
            algorithm,
            "alice",
            "acme.sip.example",
            &SecretString::from("alice-pw"),
        )
    }

    #[test]
    fn the_client_answers_the_server_for_every_algorithm() {
        for algorithm in Algorithm::ALL {
            let stored = alice_ha1(algorithm);
            let (nonce, header) = answered(algorithm, "alice-pw", "sip:acme.sip.example");
            let answer = DigestResponse::parse(&header).unwrap();
            assert_eq!(answer.username, "alice");
            assert_eq!(answer.realm, "acme.sip.example");
            assert_eq!(answer.nonce, nonce);
            assert_eq!(answer.uri, "sip:acme.sip.example");
            assert_eq!(answer.algorithm, algorithm);
            assert_eq!((answer.qop, answer.nc), (Some(Qop::Auth), Some(1)));
            assert!(answer.verify("REGISTER", &stored), "{algorithm}");
            // The nonce came back intact, and is fresh.
            let key = NonceKey::new(b"nonce secret");
            assert_eq!(
                key.check(&answer.nonce, &answer.realm, 1_010, 300),
                NonceCheck::Fresh { issued_at: 1_000 }
            );

            // Wrong password, other method, tampered uri: refused.
            let (_, wrong) = answered(algorithm, "alice-PW", "sip:acme.sip.example");
            assert!(!DigestResponse::parse(&wrong)
                .unwrap()
                .verify("REGISTER", &stored));
            assert!(!answer.verify("INVITE", &stored));
            let tampered =
                header.replace("uri=\"sip:acme.sip.example\"", "uri=\"sip:evil.example\"");
            assert_ne!(tampered, header);
            assert!(!DigestResponse::parse(&tampered)
                .unwrap()
                .verify("REGISTER", &stored));
            // A different cnonce or nc changes the hash too.
            let cnonce = answer.cnonce.clone().unwrap();
            let other_cnonce = header.replace(&cnonce, &"0".repeat(cnonce.len()));
            assert!(!DigestResponse::parse(&other_cnonce)
                .unwrap()
                .verify("REGISTER", &stored));
            let other_nc = header.replace("nc=00000001", "nc=00000002");
            assert!(!DigestResponse::parse(&other_nc)
                .unwrap()
                .verify("REGISTER", &stored));
        }
    }

    #[test]
    fn later_answers_on_the_same_nonce_verify_and_count_up() {
        let key = NonceKey::random();
        let nonce = key.issue("r", 50);
        let password = SecretString::from("pw");
        let credentials = Credentials {
            username: "u",
            password: &password,
        };
        let stored = ha1(Algorithm::Sha256, "u", "r", &password);
        let mut session = DigestSession::new();
        let header = challenge("r", &nonce, Algorithm::Sha256, false);
        session
            .on_challenge(Challenge::parse(&header).unwrap())
            .unwrap();
        let mut counts = NonceCounts::new(8);
        for expected in 1..=3 {
            let value = session
                .next_authorization(&credentials, "REGISTER", "sip:r")
                .unwrap();
            let answer = DigestResponse::parse(&value).unwrap();
            assert!(answer.verify("REGISTER", &stored));
            assert_eq!(answer.nc, Some(expected));
            let NonceCheck::Fresh { issued_at } = key.check(&answer.nonce, "r", 60, 300) else {
                panic!("fresh nonce refused");
            };
            assert_eq!(
                counts.admit(&answer.nonce, issued_at, expected),
                NcVerdict::Accept
            );
            // The same answer again is a replay.
            assert_eq!(
                counts.admit(&answer.nonce, issued_at, expected),
                NcVerdict::Replay
            );
        }
    }

    /// The client's answer (MD5) to a challenge without qop, RFC 2069 style, and the HA1 that
    /// checks it.
    fn answer_without_qop(username: &str, realm: &str) -> (String, String) {
        let password = SecretString::from("pw");
        let credentials = Credentials {
            username,
            password: &password,
        };
        let plain = Challenge::parse(&format!("Digest realm={realm}, nonce=abc")).unwrap();
        let value = plain
            .authorization(&credentials, "REGISTER", "sip:r", 1, "ignored")
            .unwrap();
        (value, ha1(Algorithm::Md5, username, realm, &password))
    }

    #[test]
    fn an_answer_without_qop_is_checked_too() {
        let (value, stored) = answer_without_qop("u", "r");
        let answer = DigestResponse::parse(&value).unwrap();
        assert_eq!((answer.qop, answer.nc), (None, None));
        assert!(answer.verify("REGISTER", &stored));
        // -sess has no cnonce to salt with without qop.
        let sess = value.replace("Digest ", "Digest algorithm=MD5-sess, ");
        let sess = DigestResponse::parse(&sess).unwrap();
        assert!(!sess.verify("REGISTER", &stored));
    }

    #[test]
    fn qop_auth_needs_nc_and_cnonce() {
        let (_, header) = answered(Algorithm::Sha256, "alice-pw", "sip:a");
        let stored = alice_ha1(Algorithm::Sha256);
        assert!(DigestResponse::parse(&header)
            .unwrap()
            .verify("REGISTER", &stored));
        let answer = DigestResponse::parse(&header).unwrap();
        let cnonce = answer.cnonce.unwrap();
        for stripped in [
            header.replace(", nc=00000001", ""),
            header.replace(&format!(", cnonce=\"{cnonce}\""), ""),
        ] {
            assert_ne!(stripped, header);
            let answer = DigestResponse::parse(&stripped).unwrap();
            assert!(!answer.verify("REGISTER", &stored), "{stripped}");
        }
        // Nor is an RFC 2069 answer (right for its form) taken when it claims qop=auth: that
        // would be a qop answer with no count to guard against replays.
        let (value, stored) = answer_without_qop("u", "r");
        assert!(DigestResponse::parse(&value)
            .unwrap()
            .verify("REGISTER", &stored));
        for claimed in [
            ", qop=auth",
            ", qop=auth, cnonce=c",
            ", qop=auth, nc=00000001",
        ] {
            let answer = DigestResponse::parse(&format!("{value}{claimed}")).unwrap();
            assert!(!answer.verify("REGISTER", &stored), "{claimed}");
        }
    }

    #[test]
    fn challenge_is_written_as_the_client_reads_it() {
        assert_eq!(
            challenge("acme.example", "abc", Algorithm::Sha256, false),
            "Digest realm=\"acme.example\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\""
        );
        assert_eq!(
            challenge("a \"b\"", "n", Algorithm::Md5, true),
            "Digest realm=\"a \\\"b\\\"\", nonce=\"n\", algorithm=MD5, qop=\"auth\", stale=true"
        );
        let parsed = Challenge::parse(&challenge("r\\x", "n", Algorithm::Md5Sess, true)).unwrap();
        assert_eq!((parsed.realm(), parsed.nonce()), ("r\\x", "n"));
        assert_eq!(parsed.algorithm(), Some(Algorithm::Md5Sess));
        assert!(parsed.stale() && parsed.qop().unwrap().auth && parsed.opaque().is_none());
    }

    const HASH: &str = "0123456789abcdef0123456789abcdef";

    /// A complete answer with `extra` parameters appended.
    fn answer_with(extra: &str) -> Result<DigestResponse, ResponseError> {
        DigestResponse::parse(&format!(
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", \
             response=\"{HASH}\"{extra}"
        ))
    }

    #[test]
    fn rejects_what_it_cannot_check() {
        use ResponseError::*;
        let full = "username=u, realm=r, nonce=n, uri=sip:r, response=\"0123456789abcdef\"";
        let without = |name: &str| {
            full.split(", ")
                .filter(|param| !param.starts_with(&format!("{name}=")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for name in ["username", "realm", "nonce", "uri", "response"] {
            let header = format!("Digest {}", without(name));
            assert_eq!(
                DigestResponse::parse(&header).unwrap_err(),
                Missing(name),
                "{header}"
            );
        }
        assert_eq!(
            DigestResponse::parse(&format!("Basic {full}")).unwrap_err(),
            NotDigest
        );
        assert_eq!(DigestResponse::parse("").unwrap_err(), NotDigest);
        let second_response = format!(", response={HASH}");
        for (extra, error) in [
            (", Realm=r", Malformed("a parameter is repeated")),
            (", nonce=\"n\"", Malformed("a parameter is repeated")),
            (
                second_response.as_str(),
                Malformed("a parameter is repeated"),
            ),
            (
                ", cnonce=\"unterminated",
                Malformed("unterminated quoted string"),
            ),
            (", nc=1", BadNonceCount),
            (", nc=000000001", BadNonceCount),
            (", nc=0000000g", BadNonceCount),
            (", nc=+0000001", BadNonceCount),
            (
                ", algorithm=SHA-512-256",
                UnsupportedAlgorithm("SHA-512-256".into()),
            ),
            (", qop=auth-int", UnsupportedQop),
            (", qop=\"auth,auth-int\"", UnsupportedQop),
        ] {
            assert_eq!(answer_with(extra).unwrap_err(), error, "{extra}");
        }
        // Accepted: hex in either case, qop in any case, unknown parameters ignored.
        let answer = answer_with(", nc=0000000A, qop=AUTH, opaque=\"o\", userhash=false").unwrap();
        assert_eq!((answer.nc, answer.qop), (Some(10), Some(Qop::Auth)));
        assert_eq!(answer_with(", nc=ffffffff").unwrap().nc, Some(u32::MAX));
    }

    #[test]
    fn over_long_values_are_refused() {
        use crate::params::{MAX_HEADER_LEN, MAX_PARAMS};
        use crate::{MAX_PARAM_LEN, MAX_REALM_LEN};
        let with_realm = |realm: String| {
            DigestResponse::parse(&format!(
                "Digest username=u, realm=\"{realm}\", nonce=n, uri=sip:r, response={HASH}"
            ))
        };
        assert!(with_realm("r".repeat(MAX_REALM_LEN)).is_ok());
        assert_eq!(
            with_realm("r".repeat(MAX_REALM_LEN + 1)).unwrap_err(),
            ResponseError::TooLarge("realm longer than 256 bytes")
        );
        // Each value at the limit is kept, one byte over is refused; ignored ones too.
        let with_value = |name: &str, value: &str| {
            let params: Vec<String> = [
                ("username", "u"),
                ("realm", "r"),
                ("nonce", "n"),
                ("uri", "sip:r"),
                ("response", HASH),
                ("cnonce", "c"),
                ("x-ignored", "i"),
            ]
            .iter()
            .map(|&(known, default)| {
                let value = if known == name { value } else { default };
                format!("{known}=\"{value}\"")
            })
            .collect();
            DigestResponse::parse(&format!("Digest {}", params.join(", ")))
        };
        for name in ["username", "nonce", "uri", "cnonce", "x-ignored"] {
            let at = with_value(name, &"v".repeat(MAX_PARAM_LEN)).unwrap();
            let kept = match name {
                "username" => &at.username,
                "nonce" => &at.nonce,
                "uri" => &at.uri,
                "cnonce" => at.cnonce.as_ref().unwrap(),
                _ => &at.realm,
            };
            assert!(kept.len() == MAX_PARAM_LEN || name == "x-ignored", "{name}");
            assert_eq!(
                with_value(name, &"v".repeat(MAX_PARAM_LEN + 1)).unwrap_err(),
                ResponseError::TooLarge("a parameter value longer than 1024 bytes"),
                "{name}"
            );
        }
        let params = |n: usize| (0..n).map(|i| format!(", p{i}=v")).collect::<String>();
        assert!(answer_with(&params(MAX_PARAMS - 5)).is_ok());
        assert_eq!(
            answer_with(&params(MAX_PARAMS - 4)).unwrap_err(),
            ResponseError::TooLarge("more than 32 parameters")
        );
        assert_eq!(
            answer_with(&" ".repeat(MAX_HEADER_LEN)).unwrap_err(),
            ResponseError::TooLarge("header value longer than 4096 bytes")
        );
    }

    #[test]
    fn the_response_hash_is_never_shown() {
        let answer = answer_with(", qop=auth, nc=00000001, cnonce=c").unwrap();
        assert!(!format!("{answer:?}").contains(HASH));
        assert!(format!("{answer:?}").contains("username: \"u\""));
        for extra in [
            ", nc=1",
            ", algorithm=SHA-512-256",
            ", qop=auth-int",
            ", Response=x",
            ", a=\"unterminated",
        ] {
            let error = answer_with(extra).unwrap_err();
            assert!(!error.to_string().contains(HASH), "{error}");
            assert!(!format!("{error:?}").contains(HASH), "{error:?}");
        }
        assert_eq!(format!("{:?}", NonceKey::new(b"k")), "NonceKey(..)");
    }

    #[test]
    fn nonces_are_fresh_then_stale() {
        let key = NonceKey::new(b"a configured secret of any length");
        let nonce = key.issue("acme.example", 1_000_000);
        assert_eq!(nonce.len(), 44);
        // Two challenges in the same second: different nonces, both valid.
        let other = key.issue("acme.example", 1_000_000);
        assert_ne!(nonce, other);
        assert!(matches!(
            key.check(&other, "acme.example", 1_000_000, 300),
            NonceCheck::Fresh { .. }
        ));
        assert!(nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let check = |now| key.check(&nonce, "acme.example", now, 300);
        let fresh = NonceCheck::Fresh {
            issued_at: 1_000_000,
        };
        assert_eq!(check(1_000_000), fresh);
        assert_eq!(check(1_000_300), fresh);
        assert_eq!(check(1_000_301), NonceCheck::Stale);
        assert_eq!(check(u64::MAX), NonceCheck::Stale);
        // Issued by a node whose clock is a little ahead: fresh; far ahead: invalid.
        assert_eq!(check(999_995), fresh);
        assert_eq!(check(999_994), NonceCheck::Invalid);
        assert_eq!(check(0), NonceCheck::Invalid);
        // The same secret makes the same key (another node, a restart).
        let again = NonceKey::new(b"a configured secret of any length");
        assert_eq!(again.check(&nonce, "acme.example", 1_000_001, 300), fresh);
        assert_eq!(
            key.check(
                &again.issue("acme.example", 1_000_000),
                "acme.example",
                1_000_000,
                300
            ),
            fresh
        );
        // At the edges of time.
        for at in [0, u64::MAX] {
            let edge = key.issue("r", at);
            assert_eq!(
                key.check(&edge, "r", at, 0),
                NonceCheck::Fresh { issued_at: at }
            );
        }
    }

    #[test]
    fn nonces_of_other_realms_keys_or_altered_are_invalid() {
        let key = NonceKey::new(b"k1");
        let nonce = key.issue("acme.example", 5_000);
        let invalid = |key: &NonceKey, nonce: &str, realm: &str| {
            assert_eq!(
                key.check(nonce, realm, 5_000, 300),
                NonceCheck::Invalid,
                "{nonce:?} {realm:?}"
            );
        };
        invalid(&key, &nonce, "other.example");
        invalid(&key, &nonce, "ACME.example");
        invalid(&NonceKey::new(b"k2"), &nonce, "acme.example");
        invalid(&NonceKey::random(), &nonce, "acme.example");
        // Every character changed to another base64url character: invalid, including the
        // issue time (a device cannot make its nonce younger).
        for i in 0..nonce.len() {
            let mut altered = nonce.clone().into_bytes();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            invalid(&key, std::str::from_utf8(&altered).unwrap(), "acme.example");
        }
        for bad in [
            String::new(),
            nonce[..31].to_owned(),
            format!("{nonce}A"),
            format!("{}=", &nonce[..31]),
            nonce.replace(|c: char| c.is_ascii_alphanumeric(), "+"),
            "é".repeat(16),
            "!".repeat(32),
        ] {
            invalid(&key, &bad, "acme.example");
        }
        // A stale nonce is stale only for its own realm and key.
        assert_eq!(
            key.check(&nonce, "acme.example", 9_000, 300),
            NonceCheck::Stale
        );
        assert_eq!(
            key.check(&nonce, "other.example", 9_000, 300),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn random_keys_differ() {
        let (a, b) = (NonceKey::random(), NonceKey::random());
        assert_ne!(a.issue("r", 1), b.issue("r", 1));
        assert_eq!(b.check(&a.issue("r", 1), "r", 1, 10), NonceCheck::Invalid);
    }

    #[test]
    fn nonce_counts_accept_only_increasing_counts() {
        let mut counts = NonceCounts::new(4);
        assert!(counts.is_empty());
        assert_eq!(counts.admit("a", 10, 1), NcVerdict::Accept);
        assert_eq!(counts.admit("a", 10, 2), NcVerdict::Accept);
        assert_eq!(counts.admit("a", 10, 2), NcVerdict::Replay);
        assert_eq!(counts.admit("a", 10, 1), NcVerdict::Replay);
        // Gaps are fine (a request lost on the way).
        assert_eq!(counts.admit("a", 10, 7), NcVerdict::Accept);
        assert_eq!(counts.admit("a", 10, 5), NcVerdict::Replay);
        assert_eq!(counts.admit("a", 10, u32::MAX), NcVerdict::Accept);
        assert_eq!(counts.admit("a", 10, u32::MAX), NcVerdict::Replay);
        // Counts are per nonce; 0 is never a valid count.
        assert_eq!(counts.admit("b", 10, 1), NcVerdict::Accept);
        assert_eq!(counts.admit("c", 11, 0), NcVerdict::Replay);
        assert_eq!(counts.len(), 2);
    }

    #[test]
    fn eviction_forgets_the_oldest_and_says_so() {
        let mut counts = NonceCounts::new(3);
        assert_eq!(counts.admit("t20", 20, 1), NcVerdict::Accept);
        assert_eq!(counts.admit("t10", 10, 1), NcVerdict::Accept);
        assert_eq!(counts.admit("t30", 30, 1), NcVerdict::Accept);
        assert_eq!(counts.len(), 3);
        // Full: a fourth evicts the one issued longest ago (t10), not the first admitted.
        assert_eq!(counts.admit("t40", 40, 1), NcVerdict::Accept);
        assert_eq!(counts.len(), 3);
        assert_eq!(counts.admit("t20", 20, 1), NcVerdict::Replay, "t20 is kept");
        // t10's history is gone, and so is that of any unseen nonce issued by then.
        assert_eq!(counts.admit("t10", 10, 2), NcVerdict::Forgotten);
        assert_eq!(counts.admit("other10", 10, 1), NcVerdict::Forgotten);
        assert_eq!(counts.admit("t5", 5, 1), NcVerdict::Forgotten);
        assert_eq!(counts.len(), 3, "nothing recorded for forgotten nonces");
        // A newer unseen nonce is new.
        assert_eq!(counts.admit("t11", 11, 1), NcVerdict::Accept);
        assert_eq!(counts.len(), 3);
        // That evicted t11 itself (the oldest now), so the era moves up to 11.
        assert_eq!(counts.admit("t11", 11, 2), NcVerdict::Forgotten);
        assert_eq!(counts.admit("t20", 20, 2), NcVerdict::Accept);
        for i in 0..100 {
            counts.admit(&format!("n{i}"), 100 + i, 1);
            assert!(counts.len() <= 3);
        }
        assert_eq!(counts.admit("n99", 199, 1), NcVerdict::Replay);
        assert_eq!(counts.admit("n96", 196, 1), NcVerdict::Forgotten);
        assert_eq!(NonceCounts::new(0).admit("x", 1, 1), NcVerdict::Accept);
    }

    #[test]
    fn expired_nonces_are_dropped_without_counting_as_evicted() {
        let mut counts = NonceCounts::new(10);
        for (nonce, issued_at) in [("a", 1), ("b", 2), ("c", 3), ("d", 3), ("e", 4)] {
            counts.admit(nonce, issued_at, 1);
        }
        counts.forget_older_than(3);
        assert_eq!(counts.len(), 3);
        assert_eq!(counts.admit("c", 3, 1), NcVerdict::Replay, "kept");
        // Dropped as expired, not evicted: nothing is Forgotten (the nonce check says stale).
        assert_eq!(counts.admit("x", 1, 1), NcVerdict::Accept);
        counts.forget_older_than(u64::MAX);
        assert!(counts.is_empty());
        counts.forget_older_than(u64::MAX);
        assert_eq!(counts.admit("e", 4, 1), NcVerdict::Accept);
    }
}
