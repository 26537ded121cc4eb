//! Secrets and what is derived from them: API keys (generated, shown once, stored as SHA-256
//! with a lookup prefix) and SIP digest HA1 values for inbound credentials (RFC 2617 / RFC 7616).
//! Plaintext only ever lives in [`SecretString`], which never prints.

use base64::Engine as _;
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use trunkline_digest::{ha1, Algorithm};

/// Marker every trunkline API key starts with, so a leaked key is recognisable by scanners.
const API_KEY_MARKER: &str = "tl_";
/// Characters of the key used as its public lookup prefix (marker included).
pub const API_KEY_PREFIX_LEN: usize = 12;

/// A freshly minted API key: the plaintext (to show once) and what is stored.
pub struct NewApiKey {
    pub plaintext: SecretString,
    pub record: ApiKeyHash,
}

/// The stored form of an API key: public prefix and SHA-256 of the whole key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyHash {
    pub prefix: String,
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyHash")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// 32 random bytes, URL-safe base64, behind a `tl_` marker.
pub fn generate_api_key() -> NewApiKey {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let plaintext = format!(
        "{API_KEY_MARKER}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let record = hash_api_key(&plaintext).expect("a generated key is well formed");
    NewApiKey {
        plaintext: SecretString::from(plaintext),
        record,
    }
}

/// Prefix and hash of a presented key; `None` when it cannot be a trunkline key.
pub fn hash_api_key(presented: &str) -> Option<ApiKeyHash> {
    let well_formed = presented.starts_with(API_KEY_MARKER)
        && presented.len() > API_KEY_PREFIX_LEN
        && presented.len() <= 128
        && presented
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return None;
    }
    Some(ApiKeyHash {
        prefix: presented[..API_KEY_PREFIX_LEN].to_owned(),
        sha256: Sha256::digest(presented.as_bytes()).into(),
    })
}

/// Constant-time comparison of stored and presented key hashes.
pub fn api_key_matches(stored: &[u8], presented: &ApiKeyHash) -> bool {
    stored.ct_eq(&presented.sha256).into()
}

/// The HA1 pair stored for an inbound credential, computed by [`trunkline_digest::ha1`] (the
/// values the registrar's checks take, for `-sess` answers too). Not secret-equivalent to the
/// password, but it is enough to authenticate in that realm, so it is kept out of `Debug` too.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestHashes {
    pub md5: String,
    pub sha256: String,
}

impl DigestHashes {
    pub fn compute(username: &str, realm: &str, password: &SecretString) -> Self {
        Self {
            md5: ha1(Algorithm::Md5, username, realm, password),
            sha256: ha1(Algorithm::Sha256, username, realm, password),
        }
    }
}

impl std::fmt::Debug for DigestHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestHashes(..)")
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn generated_keys_hash_to_their_record() {
        let key = generate_api_key();
        let presented = hash_api_key(key.plaintext.expose_secret()).unwrap();
        assert_eq!(presented, key.record);
        assert!(api_key_matches(&key.record.sha256, &presented));
        assert_eq!(key.plaintext.expose_secret().len(), 46);
        let other = generate_api_key();
        assert!(!api_key_matches(&other.record.sha256, &presented));
    }

    #[test]
    fn malformed_keys_are_refused_before_lookup() {
        for bad in [
            "",
            "tl_",
            "tl_short",
            "xx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "tl_AAAA AAAAAAAAA",
        ] {
            assert!(hash_api_key(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn hashes_are_md5_and_sha256_of_the_rfc_7616_example() {
        // RFC 7616 §3.9.1: Mufasa / http-auth@example.org / Circle of Life.
        let hashes = DigestHashes::compute(
            "Mufasa",
            "http-auth@example.org",
            &SecretString::from("Circle of Life"),
        );
        // Checked with Python's hashlib.
        assert_eq!(hashes.md5, "3d78807defe7de2157e2b0b6573a855f");
        assert_eq!(
            hashes.sha256,
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
    }

    #[test]
    fn debug_never_shows_hashes() {
        let hashes = DigestHashes::compute("u", "r", &SecretString::from("password1"));
        assert_eq!(format!("{hashes:?}"), "DigestHashes(..)");
    }
}
