//! The registration history keeps the newest attempts per registration and forgets a deleted
//! registration's, on a real SQLite file.

use secrecy::SecretString;
use trunkline_core::model::{Registration, RegistrationAttempt, Tenant, Transport};
use trunkline_core::secret::generate_api_key;
use trunkline_core::store::Store;
use trunkline_core::{AccountId, Timestamp};
use trunkline_store::{MasterKey, Sealer, SqlStore};

#[tokio::test]
async fn keeps_the_newest_attempts_and_drops_them_with_the_registration() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqlStore::open(&url, Sealer::new(&MasterKey::generate(), &[]))
        .await
        .unwrap();
    let tenant = Tenant {
        account_id: AccountId::generate(),
        name: "t".into(),
        created_at: Timestamp::now(),
    };
    store
        .create_tenant(&tenant, &generate_api_key().record)
        .await
        .unwrap();
    let registration = Registration {
        id: uuid::Uuid::new_v4(),
        tenant: tenant.account_id.clone(),
        username: "alice".into(),
        proxy: "127.0.0.1".into(),
        outbound_proxy: None,
        auth_user: None,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
        status: None,
    };
    store
        .insert_registration(&registration, &SecretString::from("pw"))
        .await
        .unwrap();
    let attempt = |n: i64| RegistrationAttempt {
        registration_id: registration.id,
        tenant: tenant.account_id.clone(),
        at: Timestamp::from_micros(1_000_000 + n),
        transport: Transport::Udp,
        remote: Some("127.0.0.1:5060".into()),
        request_line: "REGISTER sip:127.0.0.1 SIP/2.0".into(),
        code: Some(200),
        phrase: Some(format!("OK {n}")),
        duration_us: 10,
    };
    for batch in (0..25).collect::<Vec<i64>>().chunks(7) {
        let attempts: Vec<_> = batch.iter().map(|n| attempt(*n)).collect();
        store.record_attempts(&attempts, 20).await.unwrap();
    }
    let kept = store
        .registration_attempts(&tenant.account_id, registration.id, 100)
        .await
        .unwrap();
    assert_eq!(kept.len(), 20);
    assert_eq!(kept[0].phrase.as_deref(), Some("OK 24"), "newest first");
    assert_eq!(kept[19].phrase.as_deref(), Some("OK 5"));
    // Another tenant sees nothing.
    let other = AccountId::generate();
    assert!(store
        .registration_attempts(&other, registration.id, 100)
        .await
        .unwrap()
        .is_empty());
    store
        .delete_registration(&tenant.account_id, registration.id)
        .await
        .unwrap();
    assert!(store
        .registration_attempts(&tenant.account_id, registration.id, 100)
        .await
        .unwrap()
        .is_empty());
    // A late write for the deleted registration is dropped.
    store.record_attempts(&[attempt(99)], 20).await.unwrap();
    assert!(store
        .registration_attempts(&tenant.account_id, registration.id, 100)
        .await
        .unwrap()
        .is_empty());
}
