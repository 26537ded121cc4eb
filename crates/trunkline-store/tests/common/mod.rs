//! What the store's integration tests share: a store on a fresh SQLite file with one tenant,
//! more tenants, and an Ultravox registration in it.

#![allow(dead_code)]

use secrecy::SecretString;
use trunkline_core::model::{Registration, Tenant};
use trunkline_core::secret::generate_api_key;
use trunkline_core::store::Store;
use trunkline_core::{AccountId, Timestamp};
use trunkline_store::{MasterKey, Sealer, SqlStore};
use uuid::Uuid;

/// A store on a new SQLite file (kept while the directory lives) holding one tenant.
pub async fn store_with_tenant() -> (tempfile::TempDir, SqlStore, AccountId) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqlStore::open(&url, Sealer::new(&MasterKey::generate(), &[]))
        .await
        .unwrap();
    let tenant = add_tenant(&store).await;
    (dir, store, tenant)
}

/// Creates another tenant (with a key) in `store`.
pub async fn add_tenant(store: &SqlStore) -> AccountId {
    let tenant = Tenant {
        account_id: AccountId::generate(),
        name: "t".into(),
        created_at: Timestamp::now(),
    };
    store
        .create_tenant(&tenant, &generate_api_key().record)
        .await
        .unwrap();
    tenant.account_id
}

/// Inserts an Ultravox registration for `username`, created and last updated `at`.
pub async fn registration(
    store: &SqlStore,
    tenant: &AccountId,
    username: &str,
    at: Timestamp,
) -> Uuid {
    let registration = Registration {
        id: Uuid::new_v4(),
        tenant: tenant.clone(),
        username: username.into(),
        proxy: "127.0.0.1".into(),
        outbound_proxy: None,
        auth_user: None,
        created_at: at,
        updated_at: at,
        status: None,
    };
    store
        .insert_registration(&registration, &SecretString::from("pw"))
        .await
        .unwrap();
    registration.id
}
