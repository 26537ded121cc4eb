//! Sealing of secrets at rest: AES-256-GCM with a random 96-bit nonce per value, the row's
//! identity as associated data (a sealed value copied to another row does not open), and the
//! key's id stored beside each ciphertext so the master key can rotate.
//!
//! A [`Sealer`] is a key ring: the current key seals, previous keys (`master_key_previous`)
//! only open what they sealed before a rotation, and [`Sealer::reseal`] moves a value to the
//! current key (what `trunkline rekey` does to every stored value, see `rekey`).
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

    /// The id of the key that seals ([`MasterKey::id`]).
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Whether the ring holds the key with id `key_id`.
    pub fn holds_key(&self, key_id: &str) -> bool {
        self.keys.contains_key(key_id)
    }

    /// Whether `sealed` was sealed with the current key (nothing for `rekey` to do).
    pub fn is_current(&self, sealed: &Sealed) -> bool {
        sealed.key_id == self.current
    }

    /// Opens `sealed` with whichever key of the ring sealed it and seals the plaintext again
    /// with the current key, in the same `context`. The plaintext lives only inside this call.
    pub fn reseal(&self, sealed: &Sealed, context: &str) -> Result<Sealed, StoreError> {
        let plaintext = self.open(sealed, context)?;
        Ok(self.seal(&plaintext, context))
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
    fn the_ring_opens_with_every_key_and_seals_only_with_the_current_one() {
        let a = MasterKey::from_bytes([1; 32]);
        let b = MasterKey::from_bytes([2; 32]);
        let c = MasterKey::from_bytes([3; 32]);
        let by_a = Sealer::new(&a, &[]).seal(&SecretString::from("pw-a"), "ctx");
        let by_b = Sealer::new(&b, &[]).seal(&SecretString::from("pw-b"), "ctx");

        let ring = Sealer::new(&c, &[MasterKey::from_bytes([1; 32]), b]);
        assert_eq!(ring.current_key_id(), c.id());
        assert_eq!(ring.open(&by_a, "ctx").unwrap().expose_secret(), "pw-a");
        assert_eq!(ring.open(&by_b, "ctx").unwrap().expose_secret(), "pw-b");
        assert!(!ring.is_current(&by_a) && !ring.is_current(&by_b));
        let fresh = ring.seal(&SecretString::from("pw-c"), "ctx");
        assert_eq!(fresh.key_id, c.id());
        assert!(ring.is_current(&fresh));

        // A key dropped from the ring no longer opens what it sealed, and the error says which
        // key is missing (an id, never key material).
        let err = Sealer::new(&c, &[]).open(&by_a, "ctx").unwrap_err();
        assert!(err.to_string().contains(&a.id()), "{err}");
        // Listing the current key among the previous ones changes nothing.
        let doubled = Sealer::new(&c, &[MasterKey::from_bytes([3; 32])]);
        assert_eq!(doubled.seal(&SecretString::from("x"), "ctx").key_id, c.id());
    }

    #[test]
    fn reseal_moves_a_value_to_the_current_key_in_its_own_context() {
        let old = MasterKey::from_bytes([4; 32]);
        let new = MasterKey::from_bytes([5; 32]);
        let sealed = Sealer::new(&old, &[]).seal(&SecretString::from("pw"), "trunks:MA_X:1");
        let ring = Sealer::new(&new, &[MasterKey::from_bytes([4; 32])]);

        let resealed = ring.reseal(&sealed, "trunks:MA_X:1").unwrap();
        assert_eq!(resealed.key_id, new.id());
        assert!(ring.is_current(&resealed));
        assert_ne!(resealed.ciphertext, sealed.ciphertext);
        // Only the new key is needed from now on; the old one cannot open the new value.
        let new_only = Sealer::new(&MasterKey::from_bytes([5; 32]), &[]);
        assert_eq!(
            new_only
                .open(&resealed, "trunks:MA_X:1")
                .unwrap()
                .expose_secret(),
            "pw"
        );
        assert!(Sealer::new(&old, &[])
            .open(&resealed, "trunks:MA_X:1")
            .is_err());
        // The row binding survives: the re-sealed value does not open as another row's, and a
        // value cannot be re-sealed into another row's context.
        assert!(new_only.open(&resealed, "trunks:MA_X:2").is_err());
        assert!(ring.reseal(&sealed, "trunks:MA_X:2").is_err());
        // A key the ring does not hold cannot re-seal.
        assert!(new_only.reseal(&sealed, "trunks:MA_X:1").is_err());
    }

    #[test]
    fn debug_shows_only_the_key_id() {
        let key = MasterKey::from_bytes([7; 32]);
        assert_eq!(format!("{key:?}"), format!("MasterKey(id={})", key.id()));
    }
}
