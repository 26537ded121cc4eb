//! Inbound credentials (Vobiz `credentials`): usernames devices register to trunkline with.
//! Passwords are turned into HA1 digests for the tenant's realm at once and never kept. The
//! bindings devices hold with them are written by the SIP registrar and only read here.

use secrecy::SecretString;
use uuid::Uuid;

use super::registrations::{apply_nullable, too_contended};
use super::{expect_applied, next_version, Services, UPDATE_ATTEMPTS};
use crate::error::ServiceError;
use crate::events::{ChangeOp, EntityKind};
use crate::ids::{AccountId, Timestamp};
use crate::input::Input;
use crate::model::{InboundBinding, InboundCredential};
use crate::page::{OffsetPage, Window};
use crate::secret::DigestHashes;
use crate::store::WriteOutcome;
use crate::validate::{Charset, TextRule, Validator, NOT_NULL};

const USERNAME: TextRule = TextRule::new(1, 64, Charset::Word);
const PASSWORD: TextRule = TextRule::new(8, 128, Charset::Printable);
const DESCRIPTION: TextRule = TextRule::new(0, 1024, Charset::Printable);

const DUPLICATE: &str = "A credential with this username already exists.";

#[derive(Debug, Default)]
pub struct CredentialDraft {
    pub username: Input<String>,
    pub password: Input<SecretString>,
    pub enabled: Input<bool>,
    pub description: Input<String>,
}

/// A partial update: absent fields stay as they are.
pub type CredentialPatch = CredentialDraft;

impl Services {
    /// The realm inbound credentials of `tenant` authenticate in.
    pub fn realm(&self, tenant: &AccountId) -> String {
        format!("{tenant}.{}", self.settings.sip_domain)
    }

    pub async fn create_inbound_credential(
        &self,
        tenant: &AccountId,
        draft: CredentialDraft,
    ) -> Result<InboundCredential, ServiceError> {
        let mut v = Validator::new();
        let username = v.required_text("username", draft.username, USERNAME);
        let password = v.required_secret("password", draft.password, PASSWORD);
        let enabled = v.or_default("enabled", draft.enabled, true);
        let description = v.optional_text("description", draft.description, DESCRIPTION);
        v.finish()?;
        let (Some(username), Some(password)) = (username, password) else {
            unreachable!("validation passed")
        };
        let now = Timestamp::now();
        let credential = InboundCredential {
            id: Uuid::new_v4(),
            tenant: tenant.clone(),
            realm: self.realm(tenant),
            username,
            enabled,
            description,
            created_at: now,
            updated_at: now,
        };
        let hashes = DigestHashes::compute(&credential.username, &credential.realm, &password);
        expect_applied(
            self.store
                .insert_inbound_credential(&credential, &hashes)
                .await?,
            DUPLICATE,
        )?;
        self.publish(
            tenant,
            EntityKind::InboundCredential,
            credential.id,
            ChangeOp::Created,
        )
        .await;
        Ok(credential)
    }

    pub async fn inbound_credential(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<InboundCredential, ServiceError> {
        self.store
            .inbound_credential(tenant, id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Partial update of `password`, `enabled`, `description`; the username is immutable.
    pub async fn update_inbound_credential(
        &self,
        tenant: &AccountId,
        id: Uuid,
        patch: CredentialPatch,
    ) -> Result<InboundCredential, ServiceError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.inbound_credential(tenant, id).await?;
            let mut v = Validator::new();
            match &patch.username {
                Input::Value(sent) if *sent != current.username => {
                    v.error("username", "The username cannot be changed.")
                }
                Input::Null => v.error("username", "The username cannot be changed."),
                _ => {}
            }
            let password = match &patch.password {
                Input::Null => {
                    v.error("password", NOT_NULL);
                    None
                }
                Input::Value(secret) => v.check_secret("password", secret.clone(), PASSWORD),
                Input::Absent => None,
            };
            let description =
                v.patch_text("description", patch.description.clone(), DESCRIPTION, true);
            let mut next = current.clone();
            match patch.enabled {
                Input::Value(flag) => next.enabled = flag,
                Input::Null => v.error("enabled", NOT_NULL),
                Input::Absent => {}
            }
            v.finish()?;
            apply_nullable(&mut next.description, &description);
            next.updated_at = next_version(current.updated_at);
            let hashes = password.map(|password| {
                DigestHashes::compute(&current.username, &current.realm, &password)
            });
            match self
                .store
                .update_inbound_credential(&next, hashes.as_ref(), current.updated_at)
                .await?
            {
                WriteOutcome::Stale => continue,
                outcome => expect_applied(outcome, DUPLICATE)?,
            }
            self.publish(tenant, EntityKind::InboundCredential, id, ChangeOp::Updated)
                .await;
            return Ok(next);
        }
        Err(too_contended())
    }

    pub async fn delete_inbound_credential(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        expect_applied(self.store.delete_inbound_credential(tenant, id).await?, "")?;
        self.publish(tenant, EntityKind::InboundCredential, id, ChangeOp::Deleted)
            .await;
        Ok(())
    }

    /// The credential's live bindings (not expired now), oldest registration first.
    /// `NotFound` when the credential is not the tenant's.
    pub async fn inbound_bindings(
        &self,
        tenant: &AccountId,
        credential: Uuid,
    ) -> Result<Vec<InboundBinding>, ServiceError> {
        self.inbound_credential(tenant, credential).await?;
        Ok(self
            .store
            .inbound_bindings(tenant, credential, Timestamp::now())
            .await?)
    }

    pub async fn list_inbound_credentials(
        &self,
        tenant: &AccountId,
        window: Window,
    ) -> Result<OffsetPage<InboundCredential>, ServiceError> {
        let items = self.store.inbound_credentials_page(tenant, window).await?;
        let total = self.store.count_inbound_credentials(tenant).await?;
        Ok(OffsetPage {
            items,
            total,
            offset: window.offset,
            limit: window.limit,
        })
    }
}
