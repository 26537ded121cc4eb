//! The client side: what trunkline needs to REGISTER with a carrier.
//!
//! This module owns reading `WWW-Authenticate` / `Proxy-Authenticate` challenges
//! ([`Challenge`]), choosing among several ([`pick`]), computing the `Authorization` /
//! `Proxy-Authorization` answer ([`Challenge::authorization`]) and reusing a nonce across
//! registration refreshes ([`DigestSession`]).
//!
//! It is hand-written rather than taken from `rsipstack`, whose digest client fails on
//! `algorithm=SHA-256`, on qop lists such as `qop="auth,auth-int"` and on the `-sess`
//! algorithms, and never reuses a nonce. The header syntax and its bounds are
//! [`params`](crate::params)'s, the hashes [`algorithm`]'s. The rules followed:
//!
//! - RFC 3261 §22.4: SIP's use of HTTP digest; a challenge without `algorithm` means MD5.
//! - RFC 7616 §3.4: the computation (HA1, HA2, `response`, `-sess`), SHA-256, lower-case hex.
//! - RFC 8760: SHA-256 in SIP, and how a UAC chooses among several challenges (§2.4).
//!
//! Not supported, and reported as such rather than failing the whole response: `qop=auth-int`
//! (it needs the message body), SHA-512-256, and a `-sess` algorithm without `qop` (its HA1
//! needs a cnonce that RFC 2617 forbids sending without `qop`). `userhash` and `username*`
//! (RFC 7616 §3.4.4) are ignored: the username is always sent in the clear.
//!
//! Passwords are never stored here: they are borrowed per call as a [`SecretString`] and only
//! ever fed to the hash, and no `Debug` output shows them.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use secrecy::SecretString;

use crate::algorithm::{self, ha1, Algorithm, QopAuth};
use crate::params::{is_lws, push_quoted, read_named, ParamError, MAX_HEADER_LEN, MAX_PARAMS};

/// The `qop` options a challenge offers (RFC 7616 §3.3); unknown options are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QopOptions {
    pub auth: bool,
    pub auth_int: bool,
}

/// Why a header value is not a usable digest challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("not a Digest challenge")]
    NotDigest,
    #[error("digest challenge without a realm")]
    MissingRealm,
    #[error("digest challenge without a nonce")]
    MissingNonce,
    #[error("malformed digest challenge: {0}")]
    Malformed(&'static str),
    /// Larger than any registrar needs (see [`Challenge::parse`]): refused rather than stored
    /// and echoed back in every REGISTER.
    #[error("digest challenge refused: {0}")]
    TooLarge(&'static str),
}

impl From<ParamError> for ChallengeError {
    fn from(error: ParamError) -> Self {
        match error {
            ParamError::NotDigest => ChallengeError::NotDigest,
            ParamError::Malformed(what) => ChallengeError::Malformed(what),
            ParamError::TooLarge(what) => ChallengeError::TooLarge(what),
        }
    }
}

/// The largest challenge header value read at all.
pub const MAX_CHALLENGE_LEN: usize = MAX_HEADER_LEN;
/// The most auth-params one challenge may carry.
pub const MAX_CHALLENGE_PARAMS: usize = MAX_PARAMS;

/// Why a well-formed challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedChallenge {
    #[error("unsupported digest algorithm {0:?}")]
    Algorithm(String),
    #[error("digest challenge offers no qop trunkline supports (only auth is)")]
    Qop,
    #[error("digest challenge uses {0} without qop, which leaves no way to send the cnonce")]
    SessWithoutQop(Algorithm),
}

/// What a challenge said about the algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AlgorithmParam {
    /// Not given: MD5, and the answer does not name one either.
    Absent,
    Given(Algorithm),
    /// Named one trunkline does not support; the name is the tail of [`Challenge::text`].
    Unsupported,
}

/// One parsed `WWW-Authenticate` / `Proxy-Authenticate` digest challenge.
///
/// Kept compact because a [`DigestSession`] holds one per registration: realm, nonce and opaque
/// share a single allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Realm, nonce, opaque and an unsupported algorithm's name, back to back.
    text: Box<str>,
    realm_end: u32,
    nonce_end: u32,
    opaque_end: u32,
    has_opaque: bool,
    algorithm: AlgorithmParam,
    /// `None` when the challenge has no `qop` (RFC 2069 compatibility: no cnonce, no nc).
    qop: Option<QopOptions>,
    stale: bool,
}

impl Challenge {
    /// Parses a header value such as
    /// `Digest realm="sip.example.com", nonce="…", algorithm=SHA-256, qop="auth,auth-int"`.
    ///
    /// The scheme, parameter names and `stale` are case-insensitive; values may be tokens or
    /// quoted strings with `\` escapes; unknown parameters are ignored. An unknown algorithm
    /// still parses (see [`Challenge::algorithm`]).
    ///
    /// What a registrar sends is bounded before anything is kept: a header value longer than
    /// [`MAX_CHALLENGE_LEN`], more than [`MAX_CHALLENGE_PARAMS`] parameters, a realm longer
    /// than [`MAX_REALM_LEN`](crate::MAX_REALM_LEN) or any other value longer than
    /// [`MAX_PARAM_LEN`](crate::MAX_PARAM_LEN) bytes is [`ChallengeError::TooLarge`] (so the
    /// response offers no supported challenge).
    pub fn parse(header_value: &str) -> Result<Challenge, ChallengeError> {
        let [realm, nonce, opaque, algorithm, qop, stale] = read_named(
            header_value,
            ["realm", "nonce", "opaque", "algorithm", "qop", "stale"],
        )?;

        let realm = realm.ok_or(ChallengeError::MissingRealm)?;
        let nonce = nonce.ok_or(ChallengeError::MissingNonce)?;
        let (algorithm, unsupported_name) = match algorithm.as_deref() {
            None => (AlgorithmParam::Absent, ""),
            Some(name) => match Algorithm::parse(Some(name)) {
                Some(known) => (AlgorithmParam::Given(known), ""),
                None => (AlgorithmParam::Unsupported, name),
            },
        };
        // An empty qop list offers nothing: answer as if qop were absent.
        let qop = qop
            .as_deref()
            .filter(|list| !list.trim().is_empty())
            .map(parse_qop);
        let stale = stale.is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));

        let opaque_str = opaque.as_deref().unwrap_or("");
        let mut text = String::with_capacity(
            realm.len() + nonce.len() + opaque_str.len() + unsupported_name.len(),
        );
        let mut push = |part: &str| {
            text.push_str(part);
            u32::try_from(text.len()).map_err(|_| ChallengeError::Malformed("too long"))
        };
        let realm_end = push(&realm)?;
        let nonce_end = push(&nonce)?;
        let opaque_end = push(opaque_str)?;
        push(unsupported_name)?;
        Ok(Challenge {
            text: text.into_boxed_str(),
            realm_end,
            nonce_end,
            opaque_end,
            has_opaque: opaque.is_some(),
            algorithm,
            qop,
            stale,
        })
    }

    pub fn realm(&self) -> &str {
        &self.text[..self.realm_end as usize]
    }

    pub fn nonce(&self) -> &str {
        &self.text[self.realm_end as usize..self.nonce_end as usize]
    }

    pub fn opaque(&self) -> Option<&str> {
        self.has_opaque
            .then(|| &self.text[self.nonce_end as usize..self.opaque_end as usize])
    }

    /// The algorithm to answer with: MD5 when the challenge names none, `None` when it names one
    /// trunkline does not support.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self.algorithm {
            AlgorithmParam::Absent => Some(Algorithm::Md5),
            AlgorithmParam::Given(algorithm) => Some(algorithm),
            AlgorithmParam::Unsupported => None,
        }
    }

    /// The offered qop options; `None` when the challenge has no `qop` parameter.
    pub fn qop(&self) -> Option<QopOptions> {
        self.qop
    }

    /// `stale=true`: the nonce expired but the credentials were right; retry with the new nonce.
    pub fn stale(&self) -> bool {
        self.stale
    }

    /// Whether [`Challenge::authorization`] can answer this challenge.
    pub fn is_supported(&self) -> bool {
        self.supported_algorithm().is_ok()
    }

    /// The algorithm to answer with, if trunkline can answer at all.
    fn supported_algorithm(&self) -> Result<Algorithm, UnsupportedChallenge> {
        let algorithm = self.algorithm().ok_or_else(|| {
            UnsupportedChallenge::Algorithm(self.text[self.opaque_end as usize..].to_owned())
        })?;
        match self.qop {
            Some(options) if !options.auth => Err(UnsupportedChallenge::Qop),
            None if algorithm.is_sess() => Err(UnsupportedChallenge::SessWithoutQop(algorithm)),
            _ => Ok(algorithm),
        }
    }

    /// The `Authorization` (or `Proxy-Authorization`) header value answering this challenge:
    ///
    /// `Digest username="…", realm="…", nonce="…", uri="…", response="…", algorithm=…,
    /// cnonce="…", opaque="…", qop=auth, nc=00000001`
    ///
    /// `algorithm` is sent only if the challenge named one; `cnonce`, `qop` and `nc` only if it
    /// offered `qop=auth`; `opaque` only if it had one. `uri` is the digest-uri, i.e. the
    /// Request-URI as sent; `nc` is the nonce count (1 for the first use of a nonce).
    pub fn authorization(
        &self,
        credentials: &Credentials<'_>,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> Result<String, UnsupportedChallenge> {
        let algorithm = self.supported_algorithm()?;
        let with_qop = self.qop.is_some();
        let (realm, nonce) = (self.realm(), self.nonce());
        let nc = format!("{nc:08x}");

        let ha1 = ha1(algorithm, credentials.username, realm, credentials.password);
        let qop = with_qop.then_some(QopAuth { nc: &nc, cnonce });
        let response = algorithm::response(algorithm, &ha1, nonce, method, uri, qop)
            .ok_or(UnsupportedChallenge::SessWithoutQop(algorithm))?;

        let mut out = String::with_capacity(160 + self.text.len() + uri.len() + response.len());
        out.push_str("Digest username=");
        push_quoted(&mut out, credentials.username);
        out.push_str(", realm=");
        push_quoted(&mut out, realm);
        out.push_str(", nonce=");
        push_quoted(&mut out, nonce);
        out.push_str(", uri=");
        push_quoted(&mut out, uri);
        out.push_str(", response=\"");
        out.push_str(&response);
        out.push('"');
        if let AlgorithmParam::Given(algorithm) = self.algorithm {
            out.push_str(", algorithm=");
            out.push_str(algorithm.as_str());
        }
        if with_qop {
            out.push_str(", cnonce=");
            push_quoted(&mut out, cnonce);
        }
        if let Some(opaque) = self.opaque() {
            out.push_str(", opaque=");
            push_quoted(&mut out, opaque);
        }
        if with_qop {
            out.push_str(", qop=auth, nc=");
            out.push_str(&nc);
        }
        Ok(out)
    }
}

impl FromStr for Challenge {
    type Err = ChallengeError;

    fn from_str(header_value: &str) -> Result<Self, Self::Err> {
        Challenge::parse(header_value)
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unsupported = &self.text[self.opaque_end as usize..];
        let algorithm: &dyn fmt::Debug = match &self.algorithm {
            AlgorithmParam::Absent => &"MD5 (absent)",
            AlgorithmParam::Given(algorithm) => algorithm,
            AlgorithmParam::Unsupported => &unsupported,
        };
        f.debug_struct("Challenge")
            .field("realm", &self.realm())
            .field("nonce", &self.nonce())
            .field("opaque", &self.opaque())
            .field("algorithm", algorithm)
            .field("qop", &self.qop)
            .field("stale", &self.stale)
            .finish()
    }
}

/// Chooses which of a response's challenges (one per header) to answer: the strongest one
/// trunkline supports, the topmost among equals.
///
/// RFC 8760 §2.4 asks a UAC to answer the topmost challenge whose algorithm it supports; we
/// deliberately prefer SHA-256(-sess) over MD5(-sess) wherever it is listed, since a server that
/// offers both accepts either and SHA-256 is the stronger. Challenges with an unsupported
/// algorithm, or whose `qop` list offers only `auth-int`, are skipped. All challenges are taken
/// to be for the same realm.
pub fn pick(challenges: &[Challenge]) -> Option<&Challenge> {
    let mut best: Option<(&Challenge, u8)> = None;
    for challenge in challenges {
        let Ok(algorithm) = challenge.supported_algorithm() else {
            continue;
        };
        if best.is_none_or(|(_, strength)| algorithm.strength() > strength) {
            best = Some((challenge, algorithm.strength()));
        }
    }
    best.map(|(challenge, _)| challenge)
}

/// Who answers a challenge: the digest username and the password, borrowed for one call.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a SecretString,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Digest state of one registration: the last challenge and how often its nonce was used, so a
/// refresh can send credentials pre-emptively with the same nonce and the next nonce count.
///
/// Holds no credentials (they are passed per call) and, besides the challenge's single string,
/// nothing on the heap.
///
/// It also remembers the strongest algorithm the registrar has accepted an answer in (a 2xx to
/// a REGISTER carrying credentials, [`DigestSession::on_success`]): once SHA-256 has worked, a
/// challenge offering only MD5 is refused ([`ChallengeRefused::Downgrade`]) until the
/// registration changes ([`DigestSession::reset`]), so a forged 401 cannot talk trunkline down
/// to the weaker hash.
#[derive(Debug, Clone, Default)]
pub struct DigestSession {
    challenge: Option<Challenge>,
    /// The nonce count last sent with the challenge's nonce; 0 before the first use.
    nc: u32,
    /// The algorithm of the last answer sent, until its response is known.
    answered: Option<Algorithm>,
    /// The strongest algorithm an answer was accepted in.
    proven: Option<Algorithm>,
}

/// Why [`DigestSession::on_challenge`] refused a challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeRefused {
    #[error(transparent)]
    Unsupported(#[from] UnsupportedChallenge),
    /// The challenge's algorithm is weaker than one this registration already authenticated
    /// with.
    #[error("digest downgrade refused: {offered} offered after {proven} was accepted")]
    Downgrade {
        offered: Algorithm,
        proven: Algorithm,
    },
}

impl DigestSession {
    pub const fn new() -> DigestSession {
        DigestSession {
            challenge: None,
            nc: 0,
            answered: None,
            proven: None,
        }
    }

    /// Adopts the challenge chosen from a 401/407 (see [`pick`]). A new nonce restarts the
    /// nonce count at 1; the same nonce again continues it. An unsupported challenge is refused,
    /// and so is one weaker than the strongest algorithm already accepted (a downgrade); either
    /// way the session forgets the previous challenge, whose nonce the server no longer wants.
    pub fn on_challenge(&mut self, challenge: Challenge) -> Result<(), ChallengeRefused> {
        // An answer that drew a challenge was not accepted.
        self.answered = None;
        let algorithm = match challenge.supported_algorithm() {
            Ok(algorithm) => algorithm,
            Err(unsupported) => {
                self.forget();
                return Err(unsupported.into());
            }
        };
        if let Some(proven) = self.proven {
            if algorithm.strength() < proven.strength() {
                self.forget();
                return Err(ChallengeRefused::Downgrade {
                    offered: algorithm,
                    proven,
                });
            }
        }
        let same_nonce = self.challenge.as_ref().is_some_and(|previous| {
            previous.nonce() == challenge.nonce() && previous.realm() == challenge.realm()
        });
        if !same_nonce {
            self.nc = 0;
        }
        self.challenge = Some(challenge);
        Ok(())
    }

    /// The challenge being answered, if any.
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_ref()
    }

    /// The nonce count last sent with the current nonce (0: not used yet).
    pub fn nonce_count(&self) -> u32 {
        self.nc
    }

    /// Records that the request carrying the last answer ([`DigestSession::next_authorization`])
    /// got a 2xx: its algorithm is now the weakest this session accepts. Does nothing when the
    /// last request carried no answer.
    pub fn on_success(&mut self) {
        if let Some(answered) = self.answered.take() {
            if self
                .proven
                .is_none_or(|proven| answered.strength() > proven.strength())
            {
                self.proven = Some(answered);
            }
        }
    }

    /// The strongest algorithm an answer was accepted in, if any.
    pub fn proven(&self) -> Option<Algorithm> {
        self.proven
    }

    /// Drops the challenge (its nonce is no longer wanted). The downgrade guard stays.
    pub fn forget(&mut self) {
        self.challenge = None;
        self.nc = 0;
        self.answered = None;
    }

    /// Back to a new session: no challenge and no downgrade guard. For any change of the
    /// registration (credentials, registrar, route).
    pub fn reset(&mut self) {
        *self = DigestSession::new();
    }

    /// The header value for the next request under the current challenge, with the next nonce
    /// count and a fresh random cnonce. `None` when there is no challenge yet (send the request
    /// without credentials) or the nonce count is exhausted (the session then forgets the
    /// challenge, and the server will send a new one).
    pub fn next_authorization(
        &mut self,
        credentials: &Credentials<'_>,
        method: &str,
        uri: &str,
    ) -> Option<String> {
        if self.challenge.is_none() {
            self.answered = None;
            return None;
        }
        self.next_authorization_with_cnonce(credentials, method, uri, &new_cnonce())
    }

    /// [`DigestSession::next_authorization`] with a chosen cnonce, for deterministic tests.
    pub fn next_authorization_with_cnonce(
        &mut self,
        credentials: &Credentials<'_>,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> Option<String> {
        self.answered = None;
        let challenge = self.challenge.as_ref()?;
        let Some(nc) = self.nc.checked_add(1) else {
            self.forget();
            return None;
        };
        // Cannot fail: only supported challenges are adopted.
        let value = challenge
            .authorization(credentials, method, uri, nc, cnonce)
            .ok()?;
        self.answered = challenge.algorithm();
        self.nc = nc;
        Some(value)
    }
}

/// 16 random bytes as 32 lower-case hex characters.
fn new_cnonce() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Reads a qop list such as `auth, auth-int`.
fn parse_qop(list: &str) -> QopOptions {
    let mut options = QopOptions::default();
    for option in list.split(',').map(|option| option.trim_matches(is_lws)) {
        if option.eq_ignore_ascii_case("auth") {
            options.auth = true;
        } else if option.eq_ignore_ascii_case("auth-int") {
            options.auth_int = true;
        }
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MAX_PARAM_LEN, MAX_REALM_LEN};

    const RFC2617_NONCE: &str = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

    fn challenge(header_value: &str) -> Challenge {
        Challenge::parse(header_value).unwrap()
    }

    /// The RFC 2617 §3.5 challenge, with `algorithm` spliced in when given.
    fn rfc2617(algorithm: Option<&str>) -> Challenge {
        let algorithm = algorithm.map_or(String::new(), |a| format!("algorithm={a}, "));
        challenge(&format!(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", {algorithm}\
             nonce=\"{RFC2617_NONCE}\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        ))
    }

    /// The RFC 7616 §3.9.1 challenge for `algorithm`.
    fn rfc7616(algorithm: &str) -> Challenge {
        challenge(&format!(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
             algorithm={algorithm}, nonce=\"{RFC7616_NONCE}\", opaque=\"{RFC7616_OPAQUE}\""
        ))
    }

    /// The `response` parameter of an Authorization value.
    fn response_of(authorization: &str) -> &str {
        let start = authorization.find("response=\"").unwrap() + "response=\"".len();
        &authorization[start..start + authorization[start..].find('"').unwrap()]
    }

    // Every expected response below was checked independently with Python's hashlib.

    #[test]
    fn rfc_2617_example() {
        let password = SecretString::from("Circle Of Life");
        let mufasa = Credentials {
            username: "Mufasa",
            password: &password,
        };
        let answer = rfc2617(None)
            .authorization(&mufasa, "GET", "/dir/index.html", 1, "0a4f113b")
            .unwrap();
        assert_eq!(
            answer,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", cnonce=\"0a4f113b\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", qop=auth, nc=00000001"
        );
    }

    #[test]
    fn rfc_7616_examples_md5_and_sha256() {
        let password = SecretString::from("Circle of Life");
        let mufasa = Credentials {
            username: "Mufasa",
            password: &password,
        };
        let md5 = rfc7616("MD5")
            .authorization(&mufasa, "GET", "/dir/index.html", 1, RFC7616_CNONCE)
            .unwrap();
        assert_eq!(response_of(&md5), "8ca523f5e9506fed4657c9700eebdbec");
        let sha256 = rfc7616("SHA-256")
            .authorization(&mufasa, "GET", "/dir/index.html", 1, RFC7616_CNONCE)
            .unwrap();
        assert_eq!(
            sha256,
            format!(
                "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
                 nonce=\"{RFC7616_NONCE}\", uri=\"/dir/index.html\", \
                 response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
                 algorithm=SHA-256, cnonce=\"{RFC7616_CNONCE}\", opaque=\"{RFC7616_OPAQUE}\", \
                 qop=auth, nc=00000001"
            )
        );
    }

    #[test]
    fn sess_variants_salt_ha1_with_nonce_and_cnonce() {
        let password = SecretString::from("Circle Of Life");
        let mufasa = Credentials {
            username: "Mufasa",
            password: &password,
        };
        let md5_sess = rfc2617(Some("MD5-sess"))
            .authorization(&mufasa, "GET", "/dir/index.html", 1, "0a4f113b")
            .unwrap();
        assert_eq!(response_of(&md5_sess), "8e3825c57e897f5a0dec6c2d4e5059d0");
        assert!(md5_sess.contains(", algorithm=MD5-sess, cnonce=\"0a4f113b\""));

        let password = SecretString::from("Circle of Life");
        let mufasa = Credentials {
            username: "Mufasa",
            password: &password,
        };
        let sha256_sess = rfc7616("sha-256-SESS")
            .authorization(&mufasa, "GET", "/dir/index.html", 1, RFC7616_CNONCE)
            .unwrap();
        assert_eq!(
            response_of(&sha256_sess),
            "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7"
        );
        assert!(sha256_sess.contains(", algorithm=SHA-256-sess, "));
    }

    #[test]
    fn without_qop_the_answer_has_no_cnonce_qop_or_nc() {
        let password = SecretString::from("Circle Of Life");
        let mufasa = Credentials {
            username: "Mufasa",
            password: &password,
        };
        let challenge = challenge(&format!(
            "Digest realm=\"testrealm@host.com\", nonce=\"{RFC2617_NONCE}\""
        ));
        assert_eq!(challenge.qop(), None);
        let answer = challenge
            .authorization(&mufasa, "GET", "/dir/index.html", 1, "0a4f113b")
            .unwrap();
        assert_eq!(
            answer,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"670fd8c2df070c60b045671b8b24ff02\""
        );
        // -sess needs a cnonce, which cannot be sent without qop.
        let sess = Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess").unwrap();
        assert_eq!(
            sess.authorization(&mufasa, "GET", "/", 1, "c"),
            Err(UnsupportedChallenge::SessWithoutQop(Algorithm::Md5Sess))
        );
    }

    #[test]
    fn parses_a_full_challenge() {
        let c = challenge(
            "Digest realm=\"sip.example.com\", nonce=\"abc\", opaque=\"xyz\", \
             algorithm=SHA-256, qop=\"auth,auth-int\", stale=TRUE",
        );
        assert_eq!(c.realm(), "sip.example.com");
        assert_eq!(c.nonce(), "abc");
        assert_eq!(c.opaque(), Some("xyz"));
        assert_eq!(c.algorithm(), Some(Algorithm::Sha256));
        assert_eq!(
            c.qop(),
            Some(QopOptions {
                auth: true,
                auth_int: true
            })
        );
        assert!(c.stale());
        assert!(c.is_supported());
        assert_eq!("Digest realm=\"sip.example.com\", nonce=\"abc\", opaque=\"xyz\", algorithm=SHA-256, qop=\"auth,auth-int\", stale=TRUE".parse::<Challenge>(), Ok(c));
    }

    #[test]
    fn parses_qop_lists() {
        let qop = |list: &str| challenge(&format!("Digest realm=r, nonce=n, qop={list}")).qop();
        let both = Some(QopOptions {
            auth: true,
            auth_int: true,
        });
        assert_eq!(qop("\"auth,auth-int\""), both);
        assert_eq!(qop("\" auth-int ,\tAUTH \""), both);
        assert_eq!(
            qop("\"auth, x-future\""),
            Some(QopOptions {
                auth: true,
                auth_int: false
            })
        );
        // A bare token is accepted too.
        assert_eq!(
            qop("auth"),
            Some(QopOptions {
                auth: true,
                auth_int: false
            })
        );
        // An empty list is treated as no qop at all.
        assert_eq!(qop("\"\""), None);
        assert_eq!(qop("\"  \""), None);

        let only_int = challenge("Digest realm=r, nonce=n, qop=\"auth-int\"");
        assert!(!only_int.is_supported());
        let password = SecretString::from("pw");
        let credentials = Credentials {
            username: "u",
            password: &password,
        };
        assert_eq!(
            only_int.authorization(&credentials, "REGISTER", "sip:r", 1, "c"),
            Err(UnsupportedChallenge::Qop)
        );
    }

    #[test]
    fn parses_quoted_strings_and_escapes() {
        let c = challenge(
            r#"Digest realm="a \"quoted\" realm, with \\ and \x", nonce="n=,/+", opaque="""#,
        );
        assert_eq!(c.realm(), r#"a "quoted" realm, with \ and x"#);
        assert_eq!(c.nonce(), "n=,/+");
        assert_eq!(c.opaque(), Some(""), "an empty opaque is still echoed");
        let c = challenge("Digest realm=\"ünïcode\", nonce=\"\\ü\"");
        assert_eq!((c.realm(), c.nonce()), ("ünïcode", "ü"));
    }

    #[test]
    fn is_case_insensitive_and_whitespace_tolerant() {
        let c = challenge(
            " \tdigest\tREALM = \"r\" ,,NoNcE=n ,  Algorithm = \"sha-256-sess\" , \
             QOP=\"AUTH\" ,stale=\"true\",",
        );
        assert_eq!((c.realm(), c.nonce()), ("r", "n"));
        assert_eq!(c.algorithm(), Some(Algorithm::Sha256Sess));
        assert!(c.qop().unwrap().auth);
        assert!(c.stale());
        let c = challenge("DIGEST realm=r,nonce=n,stale=False");
        assert!(!c.stale());
        let c = challenge("Digest realm=r, nonce=n, stale=maybe");
        assert!(!c.stale(), "anything but true is false");
        let c = challenge("Digest realm=r, nonce=n");
        assert!(!c.stale());
        assert_eq!(c.opaque(), None);
    }

    #[test]
    fn missing_algorithm_is_md5_and_not_echoed() {
        let c = challenge("Digest realm=\"r\", nonce=\"n\", qop=\"auth\"");
        assert_eq!(c.algorithm(), Some(Algorithm::Md5));
        let password = SecretString::from("pw");
        let credentials = Credentials {
            username: "u",
            password: &password,
        };
        let answer = c
            .authorization(&credentials, "REGISTER", "sip:r", 1, "c")
            .unwrap();
        assert!(!answer.contains("algorithm"), "{answer}");
        let named = challenge("Digest realm=\"r\", nonce=\"n\", qop=\"auth\", algorithm=md5")
            .authorization(&credentials, "REGISTER", "sip:r", 1, "c")
            .unwrap();
        assert!(named.contains(", algorithm=MD5, "), "{named}");
        assert_eq!(response_of(&named), response_of(&answer));
    }

    #[test]
    fn unsupported_algorithm_parses_but_cannot_be_answered() {
        let c = challenge(
            "Digest realm=\"r\", nonce=\"n\", opaque=\"o\", algorithm=SHA-512-256, qop=\"auth\"",
        );
        assert_eq!(c.algorithm(), None);
        assert!(!c.is_supported());
        assert_eq!((c.realm(), c.nonce(), c.opaque()), ("r", "n", Some("o")));
        let password = SecretString::from("pw");
        let credentials = Credentials {
            username: "u",
            password: &password,
        };
        assert_eq!(
            c.authorization(&credentials, "REGISTER", "sip:r", 1, "c"),
            Err(UnsupportedChallenge::Algorithm("SHA-512-256".into()))
        );
        assert!(format!("{c:?}").contains("SHA-512-256"));
    }

    #[test]
    fn ignores_unknown_parameters() {
        let c = challenge(
            "Digest realm=\"r\", domain=\"sip:a sip:b\", nonce=\"n\", charset=UTF-8, \
             userhash=true, x-vendor=\"a, b\"",
        );
        assert_eq!((c.realm(), c.nonce()), ("r", "n"));
    }

    #[test]
    fn rejects_malformed_challenges() {
        use ChallengeError::*;
        for (header_value, error) in [
            ("", NotDigest),
            ("   ", NotDigest),
            ("Basic realm=\"r\"", NotDigest),
            ("Digestrealm=\"r\", nonce=\"n\"", NotDigest),
            ("Digest", MissingRealm),
            ("Digest nonce=\"n\"", MissingRealm),
            ("Digest realm=\"r\"", MissingNonce),
            (
                "Digest realm=\"r\", nonce=\"n",
                Malformed("unterminated quoted string"),
            ),
            (
                "Digest realm=\"r\\",
                Malformed("unterminated quoted string"),
            ),
            (
                "Digest realm, nonce=n",
                Malformed("parameter without a value"),
            ),
            (
                "Digest realm=, nonce=n",
                Malformed("parameter without a value"),
            ),
            (
                "Digest realm=\"r\" nonce=n",
                Malformed("expected a comma between parameters"),
            ),
            (
                "Digest realm=r, \"nonce\"=n",
                Malformed("expected a parameter name"),
            ),
            (
                "Digest realm=r, nonce=n, Realm=s",
                Malformed("a parameter is repeated"),
            ),
            (
                "Digest realm=r, nonce=n, Basic realm=s",
                Malformed("parameter without a value"),
            ),
        ] {
            assert_eq!(
                Challenge::parse(header_value),
                Err(error),
                "{header_value:?}"
            );
        }
    }

    #[test]
    fn pick_prefers_sha256_then_the_topmost() {
        let md5 = challenge("Digest realm=r, nonce=1, qop=auth");
        let md5_sess = challenge("Digest realm=r, nonce=2, qop=auth, algorithm=MD5-sess");
        let sha256 = challenge("Digest realm=r, nonce=3, qop=auth, algorithm=SHA-256");
        let sha256_sess = challenge("Digest realm=r, nonce=4, qop=auth, algorithm=SHA-256-sess");
        let sha512 = challenge("Digest realm=r, nonce=5, qop=auth, algorithm=SHA-512-256");
        let auth_int = challenge("Digest realm=r, nonce=6, qop=auth-int, algorithm=SHA-256");
        let no_qop = challenge("Digest realm=r, nonce=7");

        let picked = |list: &[&Challenge]| {
            let owned: Vec<Challenge> = list.iter().map(|&c| c.clone()).collect();
            pick(&owned).map(|c| c.nonce().to_owned())
        };
        assert_eq!(picked(&[&md5, &sha256]).as_deref(), Some("3"));
        assert_eq!(picked(&[&sha256, &md5]).as_deref(), Some("3"));
        assert_eq!(picked(&[&md5_sess, &md5]).as_deref(), Some("2"));
        assert_eq!(picked(&[&sha256_sess, &sha256]).as_deref(), Some("4"));
        assert_eq!(picked(&[&sha512, &auth_int, &md5]).as_deref(), Some("1"));
        assert_eq!(picked(&[&sha512, &no_qop]).as_deref(), Some("7"));
        assert_eq!(picked(&[&sha512, &auth_int]), None);
        assert_eq!(picked(&[]), None);
    }

    #[test]
    fn session_counts_nonce_uses_and_resets_on_a_new_nonce() {
        // A REGISTER refresh; the nc=2 response was checked with Python's hashlib.
        let password = SecretString::from("s3cret");
        let alice = Credentials {
            username: "alice",
            password: &password,
        };
        let uri = "sip:sip.example.com";
        let mut session = DigestSession::new();
        assert_eq!(session.next_authorization(&alice, "REGISTER", uri), None);
        assert_eq!(session.nonce_count(), 0);

        let first = challenge(
            "Digest realm=\"sip.example.com\", nonce=\"abc123\", algorithm=SHA-256, qop=\"auth\"",
        );
        session.on_challenge(first.clone()).unwrap();
        let one = session.next_authorization(&alice, "REGISTER", uri).unwrap();
        assert!(one.ends_with(", qop=auth, nc=00000001"), "{one}");
        let two = session
            .next_authorization_with_cnonce(&alice, "REGISTER", uri, "deadbeefdeadbeef")
            .unwrap();
        assert!(two.ends_with(", qop=auth, nc=00000002"), "{two}");
        assert_eq!(
            response_of(&two),
            "195ac68667c926513f2b8d5d9df7d5108a7ed16d4f3438e6393293aa55d11e22"
        );
        assert_eq!(session.nonce_count(), 2);

        // The same nonce again (credentials rejected): the count continues.
        session.on_challenge(first).unwrap();
        let three = session.next_authorization(&alice, "REGISTER", uri).unwrap();
        assert!(three.ends_with("nc=00000003"), "{three}");

        // A new nonce (stale): back to 1.
        let fresh = challenge(
            "Digest realm=\"sip.example.com\", nonce=\"def456\", algorithm=SHA-256, \
             qop=\"auth\", stale=true",
        );
        session.on_challenge(fresh).unwrap();
        assert_eq!(session.nonce_count(), 0);
        let again = session.next_authorization(&alice, "REGISTER", uri).unwrap();
        assert!(again.contains("nonce=\"def456\"") && again.ends_with("nc=00000001"));
        assert_eq!(session.challenge().unwrap().nonce(), "def456");

        // An unsupported challenge is refused and the old nonce forgotten.
        let unsupported = challenge("Digest realm=r, nonce=n, algorithm=SHA-512-256, qop=auth");
        assert!(session.on_challenge(unsupported).is_err());
        assert!(session.challenge().is_none());
        assert_eq!(session.next_authorization(&alice, "REGISTER", uri), None);
    }

    #[test]
    fn session_sends_a_fresh_cnonce_each_time() {
        let password = SecretString::from("pw");
        let credentials = Credentials {
            username: "u",
            password: &password,
        };
        let mut session = DigestSession::default();
        session
            .on_challenge(challenge("Digest realm=r, nonce=n, qop=auth"))
            .unwrap();
        let cnonce = |answer: String| {
            let start = answer.find("cnonce=\"").unwrap() + "cnonce=\"".len();
            answer[start..start + 32].to_owned()
        };
        let a = cnonce(
            session
                .next_authorization(&credentials, "REGISTER", "sip:r")
                .unwrap(),
        );
        let b = cnonce(
            session
                .next_authorization(&credentials, "REGISTER", "sip:r")
                .unwrap(),
        );
        assert_ne!(a, b);
        for cnonce in [a, b] {
            assert!(cnonce
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn session_forgets_an_exhausted_nonce_count() {
        let password = SecretString::from("pw");
        let credentials = Credentials {
            username: "u",
            password: &password,
        };
        let mut session = DigestSession::new();
        session
            .on_challenge(challenge("Digest realm=r, nonce=n, qop=auth"))
            .unwrap();
        session.nc = u32::MAX - 1;
        let last = session.next_authorization(&credentials, "REGISTER", "sip:r");
        assert!(last.unwrap().ends_with("nc=ffffffff"));
        assert_eq!(
            session.next_authorization(&credentials, "REGISTER", "sip:r"),
            None
        );
        assert!(session.challenge().is_none());
    }

    #[test]
    fn escapes_quotes_and_backslashes_in_the_answer() {
        let password = SecretString::from("pw");
        let credentials = Credentials {
            username: "al\"ice\\",
            password: &password,
        };
        let c = challenge(r#"Digest realm="r\"x\\y", nonce="n", qop="auth""#);
        assert_eq!(c.realm(), "r\"x\\y");
        let answer = c
            .authorization(&credentials, "REGISTER", "sip:example.com", 1, "c")
            .unwrap();
        assert!(
            answer.starts_with(r#"Digest username="al\"ice\\", realm="r\"x\\y", nonce="n", "#),
            "{answer}"
        );
        // The hash is over the unescaped values.
        assert_eq!(response_of(&answer), "23c5d3d6c39504659b74e519b961071c");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = SecretString::from("Circle Of Life");
        let credentials = Credentials {
            username: "Mufasa",
            password: &password,
        };
        let mut session = DigestSession::new();
        session.on_challenge(rfc2617(Some("MD5"))).unwrap();
        let answer = session
            .next_authorization(&credentials, "REGISTER", "sip:host")
            .unwrap();
        for shown in [
            format!("{credentials:?}"),
            format!("{credentials:#?}"),
            format!("{session:?}"),
            format!("{:?}", session.challenge().unwrap()),
            format!("{password:?}"),
            answer,
        ] {
            assert!(!shown.contains("Circle"), "{shown}");
        }
        assert!(format!("{credentials:?}").contains("Mufasa"));
    }

    #[test]
    fn session_stays_small() {
        // 100,000 registrations hold one session each: one pointer-sized string, a few offsets.
        assert!(std::mem::size_of::<DigestSession>() <= 48);
        let c = rfc7616("SHA-256");
        assert_eq!(
            c.text.len(),
            "http-auth@example.org".len() + RFC7616_NONCE.len() + RFC7616_OPAQUE.len()
        );
    }

    #[test]
    fn absurd_challenges_are_refused_before_anything_is_kept() {
        use ChallengeError::TooLarge;
        let with = |realm: &str, nonce: &str, extra: &str| {
            Challenge::parse(&format!(
                "Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=auth{extra}"
            ))
        };
        // At the limits: accepted.
        let c = with(
            &"r".repeat(MAX_REALM_LEN),
            &"n".repeat(MAX_PARAM_LEN),
            &format!(", opaque=\"{}\"", "o".repeat(MAX_PARAM_LEN)),
        )
        .unwrap();
        assert_eq!(c.realm().len(), MAX_REALM_LEN);
        assert_eq!(c.opaque().unwrap().len(), MAX_PARAM_LEN);
        // One byte over: refused.
        assert_eq!(
            with(&"r".repeat(MAX_REALM_LEN + 1), "n", ""),
            Err(TooLarge("realm longer than 256 bytes"))
        );
        assert_eq!(
            with("r", &"n".repeat(MAX_PARAM_LEN + 1), ""),
            Err(TooLarge("a parameter value longer than 1024 bytes"))
        );
        let long_opaque = format!(", opaque={}", "o".repeat(MAX_PARAM_LEN + 1));
        assert!(matches!(with("r", "n", &long_opaque), Err(TooLarge(_))));
        // An ignored parameter is bounded too, and an escaped value by its unescaped length.
        let long_vendor = format!(", x-vendor=\"{}\"", "v".repeat(MAX_PARAM_LEN + 1));
        assert!(matches!(with("r", "n", &long_vendor), Err(TooLarge(_))));
        let escaped = format!(", opaque=\"{}\"", "\\o".repeat(MAX_PARAM_LEN));
        assert!(with("r", "n", &escaped).is_ok());
        // Parameter count: realm, nonce, qop and 29 more is 32.
        let params = |n: usize| (0..n).map(|i| format!(", p{i}=v")).collect::<String>();
        assert!(with("r", "n", &params(MAX_CHALLENGE_PARAMS - 3)).is_ok());
        assert_eq!(
            with("r", "n", &params(MAX_CHALLENGE_PARAMS - 2)),
            Err(TooLarge("more than 32 parameters"))
        );
        // The header as a whole, whatever it holds.
        let padded = format!("Digest realm=r, nonce=n{}", " ".repeat(MAX_CHALLENGE_LEN));
        assert_eq!(
            Challenge::parse(&padded),
            Err(TooLarge("header value longer than 4096 bytes"))
        );
        // A refused challenge does not hide a sane one beside it, and alone leaves nothing to
        // pick (the engine's "no supported digest challenge").
        let sane = challenge("Digest realm=r, nonce=n, qop=auth");
        let parsed: Vec<Challenge> = [
            format!("Digest realm=r, nonce=\"{}\"", "n".repeat(5000)),
            "Digest realm=r, nonce=n, qop=auth".to_owned(),
        ]
        .iter()
        .filter_map(|value| Challenge::parse(value).ok())
        .collect();
        assert_eq!(pick(&parsed), Some(&sane));
        assert_eq!(pick(&parsed[..0]), None);
    }

    fn answer_and_succeed(session: &mut DigestSession, challenge_text: &str) {
        let password = SecretString::from("pw");
        let credentials = Credentials {
            username: "u",
            password: &password,
        };
        session.on_challenge(challenge(challenge_text)).unwrap();
        session
            .next_authorization(&credentials, "REGISTER", "sip:r")
            .unwrap();
        session.on_success();
    }

    #[test]
    fn after_sha256_succeeded_an_md5_challenge_is_a_downgrade() {
        const SHA: &str = "Digest realm=r, nonce=1, qop=auth, algorithm=SHA-256";
        const MD5: &str = "Digest realm=r, nonce=2, qop=auth";
        let mut session = DigestSession::new();
        // Before any success, MD5 is fine; MD5 succeeding does not block SHA-256 later.
        answer_and_succeed(&mut session, MD5);
        assert_eq!(session.proven(), Some(Algorithm::Md5));
        answer_and_succeed(&mut session, SHA);
        assert_eq!(session.proven(), Some(Algorithm::Sha256));

        // Now MD5 (and MD5-sess) are refused, and the old nonce is dropped.
        for weaker in [MD5, "Digest realm=r, nonce=3, qop=auth, algorithm=MD5-sess"] {
            let refused = session.on_challenge(challenge(weaker)).unwrap_err();
            assert!(matches!(
                refused,
                ChallengeRefused::Downgrade {
                    proven: Algorithm::Sha256,
                    ..
                }
            ));
            assert!(
                refused
                    .to_string()
                    .starts_with("digest downgrade refused: "),
                "{refused}"
            );
            assert!(session.challenge().is_none());
        }
        // SHA-256 and SHA-256-sess still are answered; an unsupported one is Unsupported.
        session.on_challenge(challenge(SHA)).unwrap();
        session
            .on_challenge(challenge(
                "Digest realm=r, nonce=4, qop=auth, algorithm=SHA-256-sess",
            ))
            .unwrap();
        assert!(matches!(
            session.on_challenge(challenge("Digest realm=r, nonce=5, algorithm=SHA-512-256")),
            Err(ChallengeRefused::Unsupported(_))
        ));
        // Forgetting the nonce keeps the guard; a reset (the registration changed) drops it.
        session.forget();
        assert!(session.on_challenge(challenge(MD5)).is_err());
        session.reset();
        assert_eq!(session.proven(), None);
        session.on_challenge(challenge(MD5)).unwrap();
    }

    #[test]
    fn only_an_answer_that_got_a_2xx_counts_as_success() {
        let password = SecretString::from("pw");
        let credentials = Credentials {
            username: "u",
            password: &password,
        };
        const SHA: &str = "Digest realm=r, nonce=1, qop=auth, algorithm=SHA-256";
        let mut session = DigestSession::new();
        // A 2xx to a request without credentials proves nothing.
        session.on_success();
        assert_eq!(session.proven(), None);
        // An answer that drew another challenge (wrong password) proves nothing.
        session.on_challenge(challenge(SHA)).unwrap();
        session
            .next_authorization(&credentials, "REGISTER", "sip:r")
            .unwrap();
        session.on_challenge(challenge(SHA)).unwrap();
        session.on_success();
        assert_eq!(session.proven(), None);
        // An answer whose session was forgotten before its response proves nothing.
        session
            .next_authorization(&credentials, "REGISTER", "sip:r")
            .unwrap();
        session.forget();
        session.on_success();
        assert_eq!(session.proven(), None);
        // One success is consumed: a later request without credentials adds nothing.
        session.on_challenge(challenge(SHA)).unwrap();
        session
            .next_authorization(&credentials, "REGISTER", "sip:r")
            .unwrap();
        session.on_success();
        assert_eq!(session.proven(), Some(Algorithm::Sha256));
        session.reset();
        session.on_success();
        assert_eq!(session.proven(), None);
    }
}
