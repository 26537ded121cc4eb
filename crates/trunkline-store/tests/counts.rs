//! The per-tenant totals the lists return (`count_*`): kept in the transaction of every insert
//! and delete, they stay equal to a `COUNT(*)` of the rows across creates, deletes, deletes of
//! what is not there, refused inserts (duplicates, missing references) and many concurrent
//! creates, per tenant, on both backends.

use secrecy::SecretString;
use trunkline_core::model::InboundCredential;
use trunkline_core::secret::DigestHashes;
use trunkline_core::store::WriteOutcome;
use trunkline_core::{AccountId, Timestamp};
use uuid::Uuid;

use trunkline_store::{Backend, Database};

#[macro_use]
mod common;
use common::{add_tenant, number, registration, store_with_tenant, trunk, TestDb};

on_both_backends!(
    registration_totals_follow_creates_and_deletes,
    trunk_number_and_credential_totals_follow_writes,
    concurrent_creates_are_all_counted,
);

/// The store's total for each entity equals a `COUNT(*)` of the tenant's rows.
async fn assert_totals(db: &TestDb, store: &dyn Database, tenant: &AccountId) {
    for (entity, total) in [
        (
            "registrations",
            store.count_registrations(tenant).await.unwrap(),
        ),
        ("trunks", store.count_trunks(tenant).await.unwrap()),
        (
            "phone_numbers",
            store.count_phone_numbers(tenant).await.unwrap(),
        ),
        (
            "inbound_credentials",
            store.count_inbound_credentials(tenant).await.unwrap(),
        ),
    ] {
        let counted = db
            .count(&format!(
                "SELECT COUNT(*) FROM {entity} WHERE tenant_id = '{tenant}'"
            ))
            .await;
        assert_eq!(total as i64, counted, "{entity} of {tenant}");
    }
}

async fn registration_totals_follow_creates_and_deletes(backend: Backend) {
    let (db, store, a) = store_with_tenant(backend).await;
    let b = add_tenant(&*store).await;
    assert_eq!(store.count_registrations(&a).await.unwrap(), 0, "none yet");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(registration(&*store, &a, &format!("a{i}"), Timestamp::now()).await);
    }
    registration(&*store, &b, "b0", Timestamp::now()).await;
    assert_eq!(store.count_registrations(&a).await.unwrap(), 5);
    assert_eq!(store.count_registrations(&b).await.unwrap(), 1);

    assert_eq!(
        store.delete_registration(&a, ids[0]).await.unwrap(),
        WriteOutcome::Applied
    );
    // Deleting again, or through the wrong tenant, deletes nothing and counts nothing.
    assert_eq!(
        store.delete_registration(&a, ids[0]).await.unwrap(),
        WriteOutcome::NotFound
    );
    assert_eq!(
        store.delete_registration(&b, ids[1]).await.unwrap(),
        WriteOutcome::NotFound
    );
    assert_eq!(store.count_registrations(&a).await.unwrap(), 4);
    assert_eq!(store.count_registrations(&b).await.unwrap(), 1);
    for id in &ids[1..] {
        store.delete_registration(&a, *id).await.unwrap();
    }
    assert_eq!(store.count_registrations(&a).await.unwrap(), 0, "all gone");
    registration(&*store, &a, "again", Timestamp::now()).await;
    assert_totals(&db, &*store, &a).await;
    assert_totals(&db, &*store, &b).await;
}

fn credential(tenant: &AccountId, username: &str) -> (InboundCredential, DigestHashes) {
    let at = Timestamp::now();
    let realm = format!("{tenant}.sip.localhost");
    let hashes = DigestHashes::compute(username, &realm, &SecretString::from("pw"));
    let credential = InboundCredential {
        id: Uuid::new_v4(),
        tenant: tenant.clone(),
        username: username.into(),
        realm,
        enabled: true,
        description: None,
        created_at: at,
        updated_at: at,
    };
    (credential, hashes)
}

async fn trunk_number_and_credential_totals_follow_writes(backend: Backend) {
    let (db, store, a) = store_with_tenant(backend).await;
    let b = add_tenant(&*store).await;
    let (t1, t2) = (trunk(&a), trunk(&a));
    store.insert_trunk(&t1, None).await.unwrap();
    store.insert_trunk(&t2, None).await.unwrap();
    store.insert_trunk(&trunk(&b), None).await.unwrap();

    let n1 = number(&a, t1.id, "+15550001");
    assert_eq!(
        store.insert_phone_number(&n1).await.unwrap(),
        WriteOutcome::Applied
    );
    store
        .insert_phone_number(&number(&a, t1.id, "+15550002"))
        .await
        .unwrap();
    // Refused inserts count nothing: a duplicate number, a trunk of another tenant.
    assert_eq!(
        store
            .insert_phone_number(&number(&a, t1.id, "+15550001"))
            .await
            .unwrap(),
        WriteOutcome::Duplicate
    );
    assert_eq!(
        store
            .insert_phone_number(&number(&b, t1.id, "+15550003"))
            .await
            .unwrap(),
        WriteOutcome::ReferenceMissing
    );

    let (c1, h1) = credential(&a, "alice");
    assert_eq!(
        store.insert_inbound_credential(&c1, &h1).await.unwrap(),
        WriteOutcome::Applied
    );
    let (dup, dup_hashes) = credential(&a, "alice");
    assert_eq!(
        store
            .insert_inbound_credential(&dup, &dup_hashes)
            .await
            .unwrap(),
        WriteOutcome::Duplicate
    );
    let (c2, h2) = credential(&b, "bob");
    store.insert_inbound_credential(&c2, &h2).await.unwrap();

    assert_eq!(store.count_trunks(&a).await.unwrap(), 2);
    assert_eq!(store.count_phone_numbers(&a).await.unwrap(), 2);
    assert_eq!(store.count_inbound_credentials(&a).await.unwrap(), 1);
    assert_eq!(store.count_trunks(&b).await.unwrap(), 1);
    assert_eq!(store.count_phone_numbers(&b).await.unwrap(), 0);
    assert_eq!(store.count_inbound_credentials(&b).await.unwrap(), 1);

    // A trunk in use is not deleted, and not uncounted.
    assert_eq!(
        store.delete_trunk(&a, t1.id).await.unwrap(),
        WriteOutcome::InUse
    );
    assert_eq!(
        store.delete_trunk(&a, t2.id).await.unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(
        store.delete_phone_number(&a, "+15550001").await.unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(
        store.delete_phone_number(&a, "+15550001").await.unwrap(),
        WriteOutcome::NotFound
    );
    assert_eq!(
        store.delete_inbound_credential(&a, c1.id).await.unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(
        store.delete_inbound_credential(&a, c2.id).await.unwrap(),
        WriteOutcome::NotFound,
        "another tenant's"
    );
    assert_eq!(store.count_trunks(&a).await.unwrap(), 1);
    assert_eq!(store.count_phone_numbers(&a).await.unwrap(), 1);
    assert_eq!(store.count_inbound_credentials(&a).await.unwrap(), 0);
    assert_totals(&db, &*store, &a).await;
    assert_totals(&db, &*store, &b).await;
}

async fn concurrent_creates_are_all_counted(backend: Backend) {
    let (db, store, a) = store_with_tenant(backend).await;
    let b = add_tenant(&*store).await;
    let creates = (0..64).map(|i| {
        let store = store.clone();
        let tenant = if i % 4 == 0 { b.clone() } else { a.clone() };
        tokio::spawn(async move {
            registration(&*store, &tenant, &format!("u{i}"), Timestamp::now()).await
        })
    });
    for create in creates.collect::<Vec<_>>() {
        create.await.unwrap();
    }
    assert_eq!(store.count_registrations(&a).await.unwrap(), 48);
    assert_eq!(store.count_registrations(&b).await.unwrap(), 16);
    assert_totals(&db, &*store, &a).await;
    assert_totals(&db, &*store, &b).await;
}
