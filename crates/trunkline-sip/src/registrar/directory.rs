//! The registrar's directory: every inbound credential's digest hashes by (tenant, username),
//! and which tenants exist (their realms). Loaded from the store at start and kept current by
//! the services' change events (each re-read by id; everything again after missed events), so
//! a REGISTER costs no database read.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use trunkline_core::model::InboundCredential;
use trunkline_core::secret::DigestHashes;
use trunkline_core::AccountId;
use uuid::Uuid;

/// What the registrar verifies a device against.
pub struct Credential {
    pub id: Uuid,
    pub tenant: AccountId,
    pub enabled: bool,
    pub hashes: DigestHashes,
}

#[derive(Default)]
pub struct Directory {
    by_name: HashMap<(AccountId, String), Arc<Credential>>,
    by_id: HashMap<Uuid, (AccountId, String)>,
    tenants: HashSet<AccountId>,
}

impl Directory {
    /// Replaces everything.
    pub fn load(
        &mut self,
        tenants: Vec<AccountId>,
        credentials: Vec<(InboundCredential, DigestHashes)>,
    ) {
        *self = Self::default();
        self.tenants.extend(tenants);
        for (credential, hashes) in credentials {
            self.put(credential, hashes);
        }
    }

    /// Adds or replaces one credential.
    pub fn put(&mut self, credential: InboundCredential, hashes: DigestHashes) {
        self.remove(credential.id);
        let key = (credential.tenant.clone(), credential.username);
        self.tenants.insert(credential.tenant.clone());
        self.by_id.insert(credential.id, key.clone());
        self.by_name.insert(
            key,
            Arc::new(Credential {
                id: credential.id,
                tenant: credential.tenant,
                enabled: credential.enabled,
                hashes,
            }),
        );
    }

    pub fn remove(&mut self, id: Uuid) {
        if let Some(key) = self.by_id.remove(&id) {
            self.by_name.remove(&key);
        }
    }

    pub fn find(&self, tenant: &AccountId, username: &str) -> Option<Arc<Credential>> {
        self.by_name
            .get(&(tenant.clone(), username.to_owned()))
            .cloned()
    }

    pub fn has_tenant(&self, tenant: &AccountId) -> bool {
        self.tenants.contains(tenant)
    }

    pub fn add_tenant(&mut self, tenant: AccountId) {
        self.tenants.insert(tenant);
    }
}
