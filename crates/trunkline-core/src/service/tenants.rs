//! Tenants and API keys: creation (key shown once), the first-start default tenant, revocation,
//! and authentication of a presented key.

use secrecy::{ExposeSecret, SecretString};

use super::Services;
use crate::error::ServiceError;
use crate::ids::{AccountId, Timestamp};
use crate::model::Tenant;
use crate::secret::{api_key_matches, generate_api_key, hash_api_key};
use crate::store::WriteOutcome;
use crate::validate::{Charset, TextRule, Validator};

const TENANT_NAME: TextRule = TextRule::new(1, 100, Charset::Printable);

/// A key as handed out: the only moment its plaintext exists outside the client.
pub struct IssuedKey {
    pub account_id: AccountId,
    pub api_key: SecretString,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl Services {
    pub async fn create_tenant(&self, name: &str) -> Result<IssuedKey, ServiceError> {
        let mut v = Validator::new();
        v.check_text("name", name, TENANT_NAME);
        v.finish()?;
        let tenant = new_tenant(name);
        let key = generate_api_key();
        self.store.create_tenant(&tenant, &key.record).await?;
        tracing::info!(account_id = %tenant.account_id, name, "tenant created");
        Ok(IssuedKey {
            account_id: tenant.account_id,
            api_key: key.plaintext,
        })
    }

    /// On an empty database, creates tenant `default` and returns its key; otherwise `None`.
    pub async fn ensure_default_tenant(&self) -> Result<Option<IssuedKey>, ServiceError> {
        let tenant = new_tenant("default");
        let key = generate_api_key();
        if self.store.create_first_tenant(&tenant, &key.record).await? {
            Ok(Some(IssuedKey {
                account_id: tenant.account_id,
                api_key: key.plaintext,
            }))
        } else {
            Ok(None)
        }
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>, ServiceError> {
        Ok(self.store.tenants().await?)
    }

    /// One tenant (the caller's own, once its key is authenticated).
    pub async fn tenant(&self, id: &AccountId) -> Result<Tenant, ServiceError> {
        self.store.tenant(id).await?.ok_or(ServiceError::NotFound)
    }

    pub async fn create_api_key(&self, tenant: &AccountId) -> Result<IssuedKey, ServiceError> {
        let key = generate_api_key();
        match self
            .store
            .insert_api_key(tenant, &key.record, Timestamp::now())
            .await?
        {
            WriteOutcome::Applied => Ok(IssuedKey {
                account_id: tenant.clone(),
                api_key: key.plaintext,
            }),
            _ => Err(ServiceError::NotFound),
        }
    }

    pub async fn revoke_api_key(&self, prefix: &str) -> Result<(), ServiceError> {
        if self.store.revoke_api_key(prefix, Timestamp::now()).await? {
            tracing::info!(prefix, "api key revoked");
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// The tenant a presented key belongs to.
    pub async fn authenticate(&self, presented: &SecretString) -> Result<AccountId, ServiceError> {
        let hash = hash_api_key(presented.expose_secret()).ok_or(ServiceError::Unauthorized)?;
        match self.store.api_key(&hash.prefix).await? {
            Some(stored) if !stored.revoked && api_key_matches(&stored.sha256, &hash) => {
                Ok(stored.tenant)
            }
            _ => Err(ServiceError::Unauthorized),
        }
    }
}

fn new_tenant(name: &str) -> Tenant {
    Tenant {
        account_id: AccountId::generate(),
        name: name.to_owned(),
        created_at: Timestamp::now(),
    }
}
