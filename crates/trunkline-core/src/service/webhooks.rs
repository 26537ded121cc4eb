//! Webhook endpoints (`/v1/webhooks`): validation, the signing secret (made here, returned
//! once), CRUD scoped to the tenant, the per-tenant limit, and the delivery attempts a tenant
//! may read. Delivering is the `trunkline-webhooks` crate's; it reads and writes the cursor
//! through the store, not through these rules.

use base64::Engine as _;
use rand::RngCore;
use secrecy::SecretString;
use uuid::Uuid;

use super::registrations::{apply_nullable, too_contended};
use super::{expect_applied, next_version, Services, UPDATE_ATTEMPTS};
use crate::error::ServiceError;
use crate::ids::{AccountId, Timestamp};
use crate::input::Input;
use crate::outbox::{DeliveryAttempt, EventType, Webhook, MAX_WEBHOOKS_PER_TENANT};
use crate::store::WriteOutcome;
use crate::validate::{Charset, TextRule, Validator, NOT_NULL, REQUIRED};

/// A webhook URL: at most 2048 characters.
pub const URL_MAX: usize = 2048;
const DESCRIPTION: TextRule = TextRule::new(0, 256, Charset::Printable);
/// Delivery attempts kept per webhook (and listed by `deliveries`), newest first.
pub const DELIVERIES_KEPT: u32 = 100;
/// Random bytes of a signing secret (Standard Webhooks: 24 to 64).
const SECRET_BYTES: usize = 24;
/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

const INVALID_URL: &str = "Enter a valid URL.";

/// A webhook's writable fields as a client sent them (create, or a partial update).
#[derive(Debug, Default)]
pub struct WebhookDraft {
    pub url: Input<String>,
    /// Event type names; empty (or absent on create) means every type.
    pub types: Input<Vec<String>>,
    pub description: Input<String>,
    pub enabled: Input<bool>,
}

/// A partial update: absent fields stay as they are.
pub type WebhookPatch = WebhookDraft;

/// A new signing secret: `whsec_` and the base64 of 24 random bytes.
fn new_secret() -> SecretString {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    zeroize::Zeroize::zeroize(&mut bytes);
    SecretString::from(secret)
}

/// Checks a webhook URL: absolute `http://` or `https://` with a host, no user or password,
/// no white space or control characters, at most [`URL_MAX`] characters. The URL is kept as
/// sent (the deliverer parses it again the same way).
fn check_url(v: &mut Validator, url: &str) -> bool {
    if url.chars().count() > URL_MAX {
        v.error(
            "url",
            format!("Ensure this field has no more than {URL_MAX} characters."),
        );
        return false;
    }
    if url.is_empty() {
        v.error("url", "This field may not be blank.");
        return false;
    }
    // The URL parser would drop tabs and line breaks silently, and trim spaces.
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        v.error("url", INVALID_URL);
        return false;
    }
    let Ok(parsed) = url::Url::parse(url) else {
        v.error("url", INVALID_URL);
        return false;
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        v.error("url", "Must be an http:// or https:// URL.");
        return false;
    }
    // As written, not as the URL standard repairs it (`http:///x` and `http:\\x` are read
    // there as `http://x/`): the authority follows `//` at once.
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .chars()
        .next();
    if url.contains('\\') || authority.is_none_or(|c| c == '/') {
        v.error("url", INVALID_URL);
        return false;
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        v.error("url", "Must name a host.");
        return false;
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        v.error("url", "Must not contain a user name or password.");
        return false;
    }
    true
}

/// Event type names into types: each known, duplicates dropped, in the order of
/// [`EventType::ALL`]; empty means every type.
fn check_types(v: &mut Validator, names: &[String]) -> Option<Vec<EventType>> {
    let mut types = Vec::new();
    for name in names {
        match EventType::parse(name) {
            Some(kind) => types.push(kind),
            None => {
                // The name is the client's: cut before it is echoed.
                let shown: String = name.chars().take(64).collect();
                v.error("types", format!("\"{shown}\" is not a valid choice."));
                return None;
            }
        }
    }
    types.sort();
    types.dedup();
    Some(types)
}

impl Services {
    /// Creates a webhook; the secret is returned here and never again.
    pub async fn create_webhook(
        &self,
        tenant: &AccountId,
        draft: WebhookDraft,
    ) -> Result<(Webhook, SecretString), ServiceError> {
        let mut v = Validator::new();
        let url = match draft.url {
            Input::Absent => {
                v.error("url", REQUIRED);
                None
            }
            Input::Null => {
                v.error("url", NOT_NULL);
                None
            }
            Input::Value(url) => check_url(&mut v, &url).then_some(url),
        };
        let types = match draft.types {
            Input::Absent => Some(Vec::new()),
            Input::Null => {
                v.error("types", NOT_NULL);
                None
            }
            Input::Value(names) => check_types(&mut v, &names),
        };
        let description = v.optional_text("description", draft.description, DESCRIPTION);
        let enabled = v.or_default("enabled", draft.enabled, true);
        v.finish()?;
        let (Some(url), Some(types)) = (url, types) else {
            unreachable!("validation passed")
        };
        let now = Timestamp::now();
        let webhook = Webhook {
            id: Uuid::new_v4(),
            tenant: tenant.clone(),
            url,
            types,
            description,
            enabled,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        let secret = new_secret();
        match self.store.insert_webhook(&webhook, &secret).await? {
            WriteOutcome::LimitReached => Err(ServiceError::Conflict(format!(
                "A tenant may have at most {MAX_WEBHOOKS_PER_TENANT} webhooks; delete one first."
            ))),
            outcome => {
                expect_applied(outcome, "")?;
                Ok((webhook, secret))
            }
        }
    }

    /// `NotFound` for another tenant's webhook.
    pub async fn webhook(&self, tenant: &AccountId, id: Uuid) -> Result<Webhook, ServiceError> {
        self.store
            .webhook(tenant, id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Every webhook of the tenant (at most [`MAX_WEBHOOKS_PER_TENANT`]), oldest first.
    pub async fn list_webhooks(&self, tenant: &AccountId) -> Result<Vec<Webhook>, ServiceError> {
        Ok(self.store.webhooks(tenant).await?)
    }

    /// Partial update of `url`, `types`, `description` and `enabled`. `enabled: true` clears
    /// the reason trunkline disabled it for, and its retries start afresh (so does a new URL).
    pub async fn update_webhook(
        &self,
        tenant: &AccountId,
        id: Uuid,
        patch: WebhookPatch,
    ) -> Result<Webhook, ServiceError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.webhook(tenant, id).await?;
            let mut v = Validator::new();
            let mut next = current.clone();
            match &patch.url {
                Input::Absent => {}
                Input::Null => v.error("url", NOT_NULL),
                Input::Value(url) => {
                    if check_url(&mut v, url) {
                        next.url = url.clone();
                    }
                }
            }
            match &patch.types {
                Input::Absent => {}
                Input::Null => v.error("types", NOT_NULL),
                Input::Value(names) => {
                    if let Some(types) = check_types(&mut v, names) {
                        next.types = types;
                    }
                }
            }
            let description =
                v.patch_text("description", patch.description.clone(), DESCRIPTION, true);
            match patch.enabled {
                Input::Absent => {}
                Input::Null => v.error("enabled", NOT_NULL),
                Input::Value(flag) => {
                    next.enabled = flag;
                    if flag {
                        next.disabled_reason = None;
                    }
                }
            }
            v.finish()?;
            apply_nullable(&mut next.description, &description);
            next.updated_at = next_version(current.updated_at);
            match self.store.update_webhook(&next, current.updated_at).await? {
                WriteOutcome::Stale => continue,
                outcome => expect_applied(outcome, "")?,
            }
            return Ok(next);
        }
        Err(too_contended())
    }

    pub async fn delete_webhook(&self, tenant: &AccountId, id: Uuid) -> Result<(), ServiceError> {
        expect_applied(self.store.delete_webhook(tenant, id).await?, "")
    }

    /// The webhook's last delivery attempts (at most [`DELIVERIES_KEPT`]), newest first.
    pub async fn webhook_deliveries(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Vec<DeliveryAttempt>, ServiceError> {
        self.webhook(tenant, id).await?;
        Ok(self
            .store
            .webhook_deliveries(tenant, id, DELIVERIES_KEPT)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn url_errors(url: &str) -> Option<String> {
        let mut v = Validator::new();
        if check_url(&mut v, url) {
            return None;
        }
        match v.finish() {
            Err(ServiceError::Validation(errors)) => Some(errors.summary()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn urls_are_absolute_http_with_a_host_and_no_credentials() {
        for good in [
            "http://hooks.example.com/in",
            "https://127.0.0.1:8443/a?b=c",
            "https://[::1]/x",
            "http://a_b.example.",
        ] {
            assert_eq!(url_errors(good), None, "{good}");
        }
        for (bad, says) in [
            ("ftp://example.com/", "http:// or https://"),
            ("javascript:alert(1)", "http:// or https://"),
            ("/relative/path", "valid URL"),
            ("https://user:pw@example.com/", "user name or password"),
            ("https://user@example.com/", "user name or password"),
            ("http://exa mple.com/", "valid URL"),
            ("http://example.com/\r\nX: y", "valid URL"),
            ("http:///path", "valid URL"),
            ("http:\\\\evil.example/", "valid URL"),
            ("http:/evil.example/", "valid URL"),
            ("", "blank"),
        ] {
            let errors = url_errors(bad).unwrap_or_else(|| panic!("{bad} passed"));
            assert!(errors.contains(says), "{bad}: {errors}");
        }
        let long = format!("https://example.com/{}", "a".repeat(URL_MAX));
        assert!(url_errors(&long).unwrap().contains("2048"));
        let longest = format!("https://example.com/{}", "a".repeat(URL_MAX - 20));
        assert_eq!(longest.len(), URL_MAX);
        assert_eq!(url_errors(&longest), None);
    }

    #[test]
    fn types_are_known_names_deduplicated_in_one_order() {
        let mut v = Validator::new();
        let names = ["binding.removed", "registration.failed", "binding.removed"];
        let types = check_types(&mut v, &names.map(String::from)).unwrap();
        assert_eq!(
            types,
            [EventType::RegistrationFailed, EventType::BindingRemoved]
        );
        assert!(check_types(&mut v, &["registration.exploded".into()]).is_none());
        let Err(ServiceError::Validation(errors)) = v.finish() else {
            panic!("an unknown type must fail")
        };
        assert!(errors.summary().contains("\"registration.exploded\""));
    }

    #[test]
    fn secrets_are_whsec_and_24_random_bytes() {
        let a = new_secret();
        let b = new_secret();
        let text = a.expose_secret();
        let key = base64::engine::general_purpose::STANDARD
            .decode(text.strip_prefix(SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(key.len(), SECRET_BYTES);
        assert_ne!(text, b.expose_secret());
    }
}
