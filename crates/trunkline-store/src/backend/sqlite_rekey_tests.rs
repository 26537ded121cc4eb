//! The rekey tests, on SQLite (the PostgreSQL backend runs the same statements).

use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeSet;
use trunkline_core::model::{Registration, Transport, Trunk};

use trunkline_core::store::{SecretChange, WriteOutcome};
use trunkline_core::Timestamp;

use trunkline_core::AccountId;
use uuid::Uuid;

use super::SqlStore;
use crate::rekey::{RekeyReport, REKEY_BATCH};
use crate::{MasterKey, Sealer};

fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes([byte; 32])
}

async fn open(url: &str, current: u8, previous: &[u8]) -> SqlStore {
    let previous: Vec<_> = previous.iter().map(|b| key(*b)).collect();
    SqlStore::open(url, Sealer::new(&key(current), &previous))
        .await
        .unwrap()
}

fn trunk(tenant: &AccountId, n: i64) -> Trunk {
    Trunk {
        id: Uuid::new_v4(),
        tenant: tenant.clone(),
        server: "sip.example.com".into(),
        transport: Transport::Udp,
        domain: None,
        auth_user: Some("user".into()),
        has_password: true,
        revealed_password: None,
        description: None,
        cps_limit: None,
        cps_key: None,
        created_at: Timestamp::from_micros(n),
        updated_at: Timestamp::from_micros(n),
    }
}

/// Every stored key id of both tables, sorted.
async fn key_ids(store: &SqlStore) -> Vec<String> {
    let mut ids: Vec<String> = sqlx::query_scalar(
        "SELECT password_key_id FROM registrations UNION ALL \
         SELECT password_key_id FROM trunks WHERE password_key_id IS NOT NULL",
    )
    .fetch_all(&store.reader)
    .await
    .unwrap();
    ids.sort();
    ids
}

/// A tenant with three trunks (two with a password) and two registrations, sealed under
/// key 1. Returns the tenant, the trunks and the registrations.
async fn seed(url: &str) -> (AccountId, Vec<Uuid>, Vec<Uuid>) {
    let store = open(url, 1, &[]).await;
    let account = crate::backend::test_tenant(&store).await;
    let mut trunks = Vec::new();
    for n in 0..3 {
        let trunk = trunk(&account, n);
        let password = (n < 2).then(|| SecretString::from(format!("trunk-pw-{n}")));
        store.insert_trunk(&trunk, password.as_ref()).await.unwrap();
        trunks.push(trunk.id);
    }
    let mut registrations = Vec::new();
    for n in 0..2 {
        let registration = Registration {
            id: Uuid::new_v4(),
            tenant: account.clone(),
            username: format!("user{n}"),
            proxy: "sip.example.com".into(),
            outbound_proxy: None,
            auth_user: None,
            created_at: Timestamp::from_micros(n),
            updated_at: Timestamp::from_micros(n),
            status: None,
        };
        let password = SecretString::from(format!("reg-pw-{n}"));
        store
            .insert_registration(&registration, &password)
            .await
            .unwrap();
        registrations.push(registration.id);
    }
    store.close().await;
    (account, trunks, registrations)
}

#[tokio::test]
async fn rekey_reseals_every_table_in_batches_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let (tenant, trunks, registrations) = seed(&url).await;

    // Key 2 current, key 1 previous; one row per transaction, so batches are exercised.
    let store = open(&url, 2, &[1]).await;
    let report = store.rekey(1).await.unwrap();
    assert_eq!(report.resealed, 4, "{report:?}");
    assert_eq!((report.skipped, report.unreadable), (0, 0));
    assert_eq!(key_ids(&store).await, vec![key(2).id(); 4]);
    assert_eq!(
        store.rekey(REKEY_BATCH).await.unwrap(),
        RekeyReport::default()
    );
    store.close().await;

    // Key 2 alone opens every value now, to the same plaintext, in its own row.
    let store = open(&url, 2, &[]).await;
    for (n, id) in trunks.iter().enumerate().take(2) {
        let trunk = store.trunk(&tenant, *id, true).await.unwrap().unwrap();
        let password = trunk.revealed_password.expect("revealed");
        assert_eq!(password.expose_secret(), format!("trunk-pw-{n}"));
    }
    let without = store
        .trunk(&tenant, trunks[2], true)
        .await
        .unwrap()
        .unwrap();
    assert!(!without.has_password && without.revealed_password.is_none());
    for (n, id) in registrations.iter().enumerate() {
        let password = store.registration_password(&tenant, *id).await.unwrap();
        assert_eq!(password.unwrap().expose_secret(), format!("reg-pw-{n}"));
    }
    store.close().await;

    // A ring without the key that sealed the values reports them and leaves them alone.
    let store = open(&url, 3, &[]).await;
    let report = store.rekey(REKEY_BATCH).await.unwrap();
    assert_eq!((report.resealed, report.unreadable), (0, 4), "{report:?}");
    assert_eq!(report.missing_key_ids, BTreeSet::from([key(2).id()]));
    assert_eq!(key_ids(&store).await, vec![key(2).id(); 4]);
    store.close().await;
}

#[tokio::test]
async fn a_password_replaced_between_read_and_write_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let (tenant, trunks, _) = seed(&url).await;
    let store = open(&url, 2, &[1]).await;

    // Read and re-seal the trunks, then let an API update replace one password.
    let rows = store.rekey_read("trunks", "", REKEY_BATCH).await.unwrap();
    assert_eq!(rows.len(), 2);
    let mut report = RekeyReport::default();
    let resealed = store.rekey_reseal("trunks", rows, &mut report).unwrap();
    let before = store
        .trunk(&tenant, trunks[0], false)
        .await
        .unwrap()
        .unwrap();
    let mut changed = before.clone();
    changed.updated_at = Timestamp::from_micros(before.updated_at.micros() + 1);
    let outcome = store
        .update_trunk(
            &changed,
            SecretChange::Set(SecretString::from("replaced-pw")),
            before.updated_at,
        )
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Applied);

    store
        .rekey_write("trunks", resealed, &mut report)
        .await
        .unwrap();
    assert_eq!((report.resealed, report.skipped), (1, 1), "{report:?}");
    let trunk = store
        .trunk(&tenant, trunks[0], true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        trunk.revealed_password.unwrap().expose_secret(),
        "replaced-pw",
        "the newer password survives the rekey"
    );
    // Row versions are left alone: the API update's stays, the re-sealed row keeps its own.
    assert_eq!(trunk.updated_at, changed.updated_at);
    let other = store
        .trunk(&tenant, trunks[1], true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.updated_at, Timestamp::from_micros(1));
    assert_eq!(
        other.revealed_password.unwrap().expose_secret(),
        "trunk-pw-1"
    );
    store.close().await;
}
