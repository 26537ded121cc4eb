//! The digest algorithms and every hash computed with them: HA1 ([`ha1`], the one place it is
//! computed, for the client's answers and for the HA1 stored for inbound credentials alike) and
//! the `response` value both sides compute (RFC 7616 §3.4.1, §3.4.2).

use std::fmt;

use md5::Md5;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A digest algorithm trunkline can answer and check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    pub(crate) const ALL: [Algorithm; 4] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
    ];

    /// Reads an `algorithm` parameter, case-insensitively. An absent parameter (`None`) means
    /// MD5 (RFC 3261 §22.4). Returns `None` for an algorithm trunkline does not support, such as
    /// `SHA-512-256`.
    pub fn parse(value: Option<&str>) -> Option<Algorithm> {
        let Some(value) = value else {
            return Some(Algorithm::Md5);
        };
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str().eq_ignore_ascii_case(value.trim()))
    }

    /// The canonical spelling, as sent in `algorithm=`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Whether HA1 is salted with the nonce and cnonce (RFC 7616 §3.4.2).
    pub const fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Preference when several challenges are offered: the hash decides, `-sess` does not.
    pub(crate) const fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
        }
    }

    /// H(part1:part2:…), lower-case hex.
    fn hash(self, parts: &[&[u8]]) -> String {
        fn run<D: Digest>(parts: &[&[u8]]) -> String {
            let mut hasher = D::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    hasher.update(b":");
                }
                hasher.update(part);
            }
            hex::encode(hasher.finalize())
        }
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => run::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => run::<Sha256>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HA1 = H(username:realm:password), lower-case hex (RFC 7616 §3.4.2), with the hash of
/// `algorithm`. For a `-sess` algorithm this is the unsalted value: the salt (nonce and cnonce)
/// is added per answer, so the HA1 stored for a credential serves both `X` and `X-sess`.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &SecretString) -> String {
    algorithm.hash(&[
        username.as_bytes(),
        realm.as_bytes(),
        password.expose_secret().as_bytes(),
    ])
}

/// What `qop=auth` adds to the computation: the nonce count as sent (8 hex digits) and the
/// client nonce.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QopAuth<'a> {
    pub nc: &'a str,
    pub cnonce: &'a str,
}

/// The `response` value (RFC 7616 §3.4.1) for HA1 `ha1` (lower-case hex, as [`ha1`] returns),
/// `qop=auth` when `qop` is given and RFC 2069's form without it. `None` for a `-sess`
/// algorithm without `qop`: its HA1 needs a cnonce, which is only sent with `qop`.
pub(crate) fn response(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<QopAuth<'_>>,
) -> Option<String> {
    let salted;
    let ha1 = if algorithm.is_sess() {
        let cnonce = qop?.cnonce;
        salted = algorithm.hash(&[ha1.as_bytes(), nonce.as_bytes(), cnonce.as_bytes()]);
        &salted
    } else {
        ha1
    };
    let ha2 = algorithm.hash(&[method.as_bytes(), uri.as_bytes()]);
    Some(match qop {
        Some(QopAuth { nc, cnonce }) => algorithm.hash(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            nc.as_bytes(),
            cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ]),
        None => algorithm.hash(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_as_str() {
        assert_eq!(Algorithm::parse(None), Some(Algorithm::Md5));
        for algorithm in Algorithm::ALL {
            assert_eq!(Algorithm::parse(Some(algorithm.as_str())), Some(algorithm));
            let lower = algorithm.as_str().to_ascii_lowercase();
            assert_eq!(Algorithm::parse(Some(&lower)), Some(algorithm));
            assert_eq!(algorithm.to_string(), algorithm.as_str());
        }
        assert_eq!(Algorithm::parse(Some("sha-256")), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::parse(Some("SHA-512-256")), None);
        assert_eq!(Algorithm::parse(Some("")), None);
        assert!(Algorithm::Sha256Sess.is_sess() && !Algorithm::Sha256.is_sess());
    }

    #[test]
    fn ha1_matches_rfc_2617_and_rfc_7616_examples() {
        // RFC 2617 §3.5: Mufasa / testrealm@host.com / Circle Of Life.
        let password = SecretString::from("Circle Of Life");
        assert_eq!(
            ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", &password),
            "939e7578ed9e3c518a452acee763bce9"
        );
        // RFC 7616 §3.9.1: Mufasa / http-auth@example.org / Circle of Life, SHA-256.
        let password = SecretString::from("Circle of Life");
        let sha256 = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            &password,
        );
        assert_eq!(
            sha256,
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
        // The -sess algorithms share their base algorithm's unsalted HA1.
        assert_eq!(
            ha1(
                Algorithm::Sha256Sess,
                "Mufasa",
                "http-auth@example.org",
                &password
            ),
            sha256
        );
    }

    #[test]
    fn sess_without_qop_has_no_response() {
        let qop = QopAuth {
            nc: "00000001",
            cnonce: "c",
        };
        for algorithm in Algorithm::ALL {
            assert!(response(algorithm, "h", "n", "GET", "/", Some(qop)).is_some());
            let without = response(algorithm, "h", "n", "GET", "/", None);
            assert_eq!(without.is_none(), algorithm.is_sess(), "{algorithm}");
        }
    }
}
