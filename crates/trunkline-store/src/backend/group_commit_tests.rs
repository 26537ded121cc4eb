//! Group commit (`sql/group_commit.rs`) on both backends: creates queued together are written
//! in one transaction, and a row a constraint refuses (a duplicate id, an unknown tenant) fails
//! alone while the others of its group are committed and answered `Ok`.
//!
//! The tests run on a current-thread runtime: `tokio::join!` queues every create before the
//! writer task can run, so they form one group by construction, and the commit counter checks it.

use secrecy::SecretString;
use trunkline_core::model::Registration;
use trunkline_core::store::Store;
use trunkline_core::{AccountId, Timestamp};
use uuid::Uuid;

use crate::{MasterKey, Sealer};

fn registration(tenant: &AccountId, id: Uuid) -> Registration {
    let at = Timestamp::now();
    Registration {
        id,
        tenant: tenant.clone(),
        username: "u".into(),
        proxy: "sip.example.com".into(),
        outbound_proxy: None,
        auth_user: None,
        created_at: at,
        updated_at: at,
        status: None,
    }
}

/// Runs the group on `store`; `commits` reads its writer's commit counter.
async fn one_refused_row_fails_alone(store: &dyn Store, commits: impl Fn() -> u64) {
    let tenant = super::test_tenant(store).await;
    let pw = SecretString::from("pw");
    let existing = registration(&tenant, Uuid::new_v4());
    store.insert_registration(&existing, &pw).await.unwrap();
    let before = commits();

    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (ra, duplicate, rb, unknown_tenant, rc) = (
        registration(&tenant, a),
        registration(&tenant, existing.id),
        registration(&tenant, b),
        registration(&AccountId::generate(), Uuid::new_v4()),
        registration(&tenant, c),
    );
    let outcomes = tokio::join!(
        store.insert_registration(&ra, &pw),
        store.insert_registration(&duplicate, &pw),
        store.insert_registration(&rb, &pw),
        store.insert_registration(&unknown_tenant, &pw),
        store.insert_registration(&rc, &pw),
    );
    assert!(outcomes.0.is_ok(), "{:?}", outcomes.0);
    assert!(outcomes.1.is_err(), "the duplicate id is refused");
    assert!(outcomes.2.is_ok(), "{:?}", outcomes.2);
    assert!(outcomes.3.is_err(), "the unknown tenant is refused");
    assert!(outcomes.4.is_ok(), "{:?}", outcomes.4);
    assert_eq!(
        commits(),
        before + 1,
        "the five creates were one transaction"
    );

    for id in [existing.id, a, b, c] {
        assert!(store.registration(&tenant, id).await.unwrap().is_some());
    }
    assert_eq!(store.count_registrations(&tenant).await.unwrap(), 4);
}

#[tokio::test]
async fn sqlite_group_with_a_refused_row() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = super::sqlite::SqlStore::open(&url, Sealer::new(&MasterKey::generate(), &[]))
        .await
        .unwrap();
    one_refused_row_fails_alone(&store, || store.group_commit.commits()).await;
}

#[tokio::test]
async fn postgres_group_with_a_refused_row() {
    let url = test_postgres::PgServer::shared().database();
    let store =
        super::postgres::SqlStore::open(&url, Sealer::new(&MasterKey::generate(), &[]), "n1")
            .await
            .unwrap();
    one_refused_row_fails_alone(&store, || store.group_commit.commits()).await;
}
