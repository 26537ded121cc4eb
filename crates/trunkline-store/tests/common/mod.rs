//! What the store's integration tests share: a store on a fresh database of either backend
//! (an SQLite file, or a database of its own on the test PostgreSQL server) with one tenant,
//! more tenants, an Ultravox registration, an inbound credential, a trunk and a phone number in
//! it, and [`on_both_backends!`], which runs each test on both.

#![allow(dead_code)]

use secrecy::SecretString;
use std::sync::Arc;
use trunkline_core::model::{
    InboundCredential, PhoneNumber, Registration, Tenant, Transport, Trunk,
};
use trunkline_core::secret::generate_api_key;
use trunkline_core::secret::DigestHashes;
use trunkline_core::{AccountId, Timestamp};

use trunkline_store::{Backend, Database, MasterKey, Sealer};
use uuid::Uuid;

/// Runs each named `async fn name(backend: Backend)` as two tests, `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(trunkline_store::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(trunkline_store::Backend::Postgres).await
                }
            }
        )*
    };
}

/// A fresh, empty database; an SQLite file lives as long as this.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("t.db").display());
                Self {
                    backend,
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => Self {
                backend,
                url: test_postgres::PgServer::shared().database(),
                _dir: None,
            },
        }
    }

    /// `SELECT COUNT(*) …` straight from the database, past the store.
    pub async fn count(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => sqlx::query_scalar(sql)
                .fetch_one(&sqlx::SqlitePool::connect(&self.url).await.unwrap())
                .await
                .unwrap(),
            Backend::Postgres => sqlx::query_scalar(sql)
                .fetch_one(&sqlx::PgPool::connect(&self.url).await.unwrap())
                .await
                .unwrap(),
        }
    }
}

/// A store on a new database holding one tenant.
pub async fn store_with_tenant(backend: Backend) -> (TestDb, Arc<dyn Database>, AccountId) {
    let db = TestDb::new(backend);
    let store = trunkline_store::open(&db.url, Sealer::new(&MasterKey::generate(), &[]))
        .await
        .unwrap();
    assert_eq!(store.backend(), backend);
    let tenant = add_tenant(&*store).await;
    (db, store, tenant)
}

/// Creates another tenant (with a key) in `store`.
pub async fn add_tenant(store: &dyn Database) -> AccountId {
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
    store: &dyn Database,
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

/// The password of every credential [`inbound_credential`] makes.
pub const CREDENTIAL_PASSWORD: &str = "pw-of-a-credential";

/// Inserts an inbound (Vobiz) credential for `username` in the tenant's realm.
pub async fn inbound_credential(
    store: &dyn Database,
    tenant: &AccountId,
    username: &str,
    enabled: bool,
) -> InboundCredential {
    let at = Timestamp::now();
    let credential = InboundCredential {
        id: Uuid::new_v4(),
        tenant: tenant.clone(),
        username: username.into(),
        realm: format!("{tenant}.sip.localhost"),
        enabled,
        description: None,
        created_at: at,
        updated_at: at,
    };
    let hashes = DigestHashes::compute(
        username,
        &credential.realm,
        &SecretString::from(CREDENTIAL_PASSWORD),
    );
    let outcome = store
        .insert_inbound_credential(&credential, &hashes)
        .await
        .unwrap();
    assert_eq!(outcome, trunkline_core::store::WriteOutcome::Applied);
    credential
}

/// A trunk of `tenant` on `sip.example.com` over UDP, no domain, user or password.
pub fn trunk(tenant: &AccountId) -> Trunk {
    let at = Timestamp::now();
    Trunk {
        id: Uuid::new_v4(),
        tenant: tenant.clone(),
        server: "sip.example.com".into(),
        transport: Transport::Udp,
        domain: None,
        auth_user: None,
        has_password: false,
        revealed_password: None,
        description: None,
        cps_limit: None,
        cps_key: None,
        created_at: at,
        updated_at: at,
    }
}

/// Phone number `digits` on `trunk`, registration off.
pub fn number(tenant: &AccountId, trunk: Uuid, digits: &str) -> PhoneNumber {
    let at = Timestamp::now();
    PhoneNumber {
        id: Uuid::new_v4(),
        tenant: tenant.clone(),
        phone_number: digits.into(),
        trunk_id: trunk,
        registration: false,
        display_name: None,
        description: None,
        incoming_calls_agent_id: None,
        created_at: at,
        updated_at: at,
        status: None,
    }
}
