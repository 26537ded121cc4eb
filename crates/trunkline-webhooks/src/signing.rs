//! Standard Webhooks signatures: `webhook-signature: v1,<base64(HMAC-SHA256(key,
//! "{id}.{timestamp}.{body}"))>`, where the key is the base64-decoded part of the secret after
//! `whsec_`. The key is held in a `SecretBox` and never printed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

/// The prefix of a signing secret.
const PREFIX: &str = "whsec_";

/// Why a stored secret cannot sign (it never left trunkline in this shape, so the row is bad).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningError {
    #[error("the signing secret does not start with `whsec_`")]
    Prefix,
    #[error("the signing secret is not base64 after `whsec_`")]
    Base64,
    #[error("the signing secret's key is empty")]
    Empty,
}

/// Signs with one webhook's key.
pub struct Signer {
    key: SecretBox<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(…)")
    }
}

impl Signer {
    /// The key of a `whsec_…` secret.
    pub fn new(secret: &SecretString) -> Result<Self, SigningError> {
        let encoded = secret
            .expose_secret()
            .strip_prefix(PREFIX)
            .ok_or(SigningError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SigningError::Base64)?;
        if key.is_empty() {
            return Err(SigningError::Empty);
        }
        Ok(Self {
            key: SecretBox::new(Box::new(key)),
        })
    }

    /// The `webhook-signature` value for message `id` sent at `timestamp` (Unix seconds).
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_the_standard_webhooks_vector() {
        let signer = Signer::new(&SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ))
        .unwrap();
        assert_eq!(
            signer.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // Any change of id, time or body changes the signature.
        assert_ne!(
            signer.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265331,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn refuses_secrets_that_are_not_whsec_base64() {
        for (secret, error) in [
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SigningError::Prefix),
            ("whsec_not base64!", SigningError::Base64),
            ("whsec_", SigningError::Empty),
        ] {
            assert_eq!(
                Signer::new(&SecretString::from(secret)).unwrap_err(),
                error,
                "{secret}"
            );
        }
        assert_eq!(
            format!(
                "{:?}",
                Signer::new(&SecretString::from("whsec_YQ==")).unwrap()
            ),
            "Signer(…)"
        );
    }
}
