//! Sealing of secrets at rest: AES-256-GCM with a random 96-bit nonce per value, the row's
//! identity as associated data (a sealed value copied to another row does not open), and the
//! key's id stored beside each ciphertext so the master key can rotate.
//!
//! Layout of a sealed value: `version (1 byte) | nonce (12) | ciphertext + tag`.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};
use trunkline_core::StoreError;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// A 32-byte master key. Never printed.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    pub fn expose_bytes(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }

    /// A short, stable, non-secret identifier of this key.
    pub fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"trunkline master key id\0")
            .chain_update(self.0.expose_secret())
            .finalize();
        hex_prefix(&digest[..6])
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id={})", self.id())
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A value as stored: ciphertext and the id of the key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub key_id: String,
}

/// Seals with the current key; opens with any key it was given.
pub struct Sealer {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// `current` seals; `previous` keys only open values sealed before a rotation.
    pub fn new(current: &MasterKey, previous: &[MasterKey]) -> Self {
        let keys = std::iter::once(current)
            .chain(previous)
            .map(|key| (key.id(), Aes256Gcm::new(key.expose_bytes().into())))
            .collect();
        Self {
            current: current.id(),
            keys,
        }
    }

    pub fn seal(&self, plaintext: &SecretString, context: &str) -> Sealed {
        let cipher = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let encrypted = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short value cannot fail");
        let mut ciphertext = Vec::with_capacity(1 + NONCE_LEN + encrypted.len());
        ciphertext.push(VERSION);
        ciphertext.extend_from_slice(&nonce);
        ciphertext.extend_from_slice(&encrypted);
        Sealed {
            ciphertext,
            key_id: self.current.clone(),
        }
    }

    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<SecretString, StoreError> {
        let cipher = self.keys.get(&sealed.key_id).ok_or_else(|| {
            StoreError::Crypto(format!("no master key with id {}", sealed.key_id))
        })?;
        let (version, rest) = sealed
            .ciphertext
            .split_first()
            .ok_or_else(|| StoreError::Crypto("empty sealed value".into()))?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(StoreError::Crypto("unknown sealed value layout".into()));
        }
        let (nonce, encrypted) = rest.split_at(NONCE_LEN);
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: encrypted,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Crypto("authentication tag mismatch".into()))?;
        let text = String::from_utf8(plaintext)
            .map_err(|_| StoreError::Crypto("sealed value is not UTF-8".into()))?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_in_its_own_context() {
        let key = MasterKey::generate();
        let sealer = Sealer::new(&key, &[]);
        let secret = SecretString::from("hunter2-password");
        let sealed = sealer.seal(&secret, "registrations:MA_X:1");
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"hunter"));
        assert_eq!(
            sealer
                .open(&sealed, "registrations:MA_X:1")
                .unwrap()
                .expose_secret(),
            "hunter2-password"
        );
        assert!(sealer.open(&sealed, "registrations:MA_X:2").is_err());
        let other = Sealer::new(&MasterKey::generate(), &[]);
        assert!(other.open(&sealed, "registrations:MA_X:1").is_err());
    }

    #[test]
    fn rotated_keys_still_open_old_values() {
        let old = MasterKey::generate();
        let sealed = Sealer::new(&old, &[]).seal(&SecretString::from("x"), "c");
        let new = MasterKey::generate();
        let rotated = Sealer::new(&new, &[old]);
        assert_eq!(rotated.open(&sealed, "c").unwrap().expose_secret(), "x");
        assert_ne!(
            rotated.seal(&SecretString::from("x"), "c").key_id,
            sealed.key_id
        );
    }

    #[test]
    fn debug_shows_only_the_key_id() {
        let key = MasterKey::from_bytes([7; 32]);
        assert_eq!(format!("{key:?}"), format!("MasterKey(id={})", key.id()));
    }
}
