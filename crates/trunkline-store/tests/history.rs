//! The engine's batched writes (status rows and history) on a real SQLite file: each
//! registration keeps its newest attempts, batches mixing registrations prune each one
//! separately, and nothing is written for a deleted registration.

use trunkline_core::model::{
    RegistrationAttempt, RegistrationState, RegistrationStatus, Transport,
};
use trunkline_core::outbox::StatusWrite;
use trunkline_core::service::RegistrationKind;
use trunkline_core::{AccountId, Timestamp};
use uuid::Uuid;

use trunkline_store::Backend;

#[macro_use]
mod common;
use common::{registration, store_with_tenant};

fn attempt(tenant: &AccountId, id: Uuid, n: i64) -> RegistrationAttempt {
    RegistrationAttempt {
        registration_id: id,
        tenant: tenant.clone(),
        at: Timestamp::from_micros(1_000_000 + n),
        transport: Transport::Udp,
        remote: Some("127.0.0.1:5060".into()),
        request_line: "REGISTER sip:127.0.0.1 SIP/2.0".into(),
        code: Some(200),
        phrase: Some(format!("OK {n}")),
        duration_us: 10,
    }
}

fn registered(at: i64) -> RegistrationStatus {
    RegistrationStatus {
        state: RegistrationState::Registered,
        last_code: Some(200),
        last_phrase: Some("OK".into()),
        failed_by: None,
        last_attempt_at: Some(Timestamp::from_micros(at)),
        expires_at: Some(Timestamp::from_micros(at + 60_000_000)),
        next_attempt_at: Some(Timestamp::from_micros(at + 30_000_000)),
        consecutive_failures: 0,
        transport: Some(Transport::Udp),
        remote: Some("127.0.0.1:5060".into()),
        updated_at: Timestamp::from_micros(at),
    }
}

fn write(tenant: &AccountId, id: Uuid, status: RegistrationStatus) -> StatusWrite {
    StatusWrite {
        tenant: tenant.clone(),
        id,
        public_id: id.to_string(),
        kind: RegistrationKind::Ultravox,
        status,
        removed: false,
    }
}

async fn batches_keep_the_newest_attempts_and_skip_deleted_registrations(backend: Backend) {
    let (db, store, account) = store_with_tenant(backend).await;
    let alice = registration(&*store, &account, "alice", Timestamp::now()).await;
    let bob = registration(&*store, &account, "bob", Timestamp::now()).await;

    // Batches that interleave both registrations: alice gets 25 attempts, bob 3.
    for batch in (0..25).collect::<Vec<i64>>().chunks(7) {
        let mut attempts: Vec<_> = batch.iter().map(|n| attempt(&account, alice, *n)).collect();
        if batch[0] < 21 {
            attempts.push(attempt(&account, bob, batch[0]));
        }
        let last = *batch.last().unwrap();
        let statuses = [
            write(&account, alice, registered(last)),
            write(&account, bob, registered(last)),
        ];
        store
            .write_registration_batch(&statuses, &attempts, 20)
            .await
            .unwrap();
    }
    let kept = store
        .registration_attempts(&account, alice, 100)
        .await
        .unwrap();
    assert_eq!(kept.len(), 20);
    assert_eq!(kept[0].phrase.as_deref(), Some("OK 24"), "newest first");
    assert_eq!(kept[19].phrase.as_deref(), Some("OK 5"));
    let bobs = store
        .registration_attempts(&account, bob, 100)
        .await
        .unwrap();
    let phrases: Vec<_> = bobs.iter().filter_map(|a| a.phrase.as_deref()).collect();
    assert_eq!(
        phrases,
        ["OK 14", "OK 7", "OK 0"],
        "bob's history is his own"
    );
    let status = store
        .registration(&account, bob)
        .await
        .unwrap()
        .unwrap()
        .status
        .expect("status written");
    assert_eq!(status, registered(24), "the last batch's status wins");

    // Another tenant sees nothing.
    let other = AccountId::generate();
    assert!(store
        .registration_attempts(&other, alice, 100)
        .await
        .unwrap()
        .is_empty());

    store.delete_registration(&account, alice).await.unwrap();
    assert!(store
        .registration_attempts(&account, alice, 100)
        .await
        .unwrap()
        .is_empty());
    // Late writes for the deleted registration are dropped; bob's in the same batch are kept.
    store
        .write_registration_batch(
            &[
                write(&account, alice, registered(99)),
                write(&account, bob, registered(99)),
            ],
            &[attempt(&account, alice, 99), attempt(&account, bob, 99)],
            20,
        )
        .await
        .unwrap();
    assert!(store
        .registration_attempts(&account, alice, 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .registration_attempts(&account, bob, 100)
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        store
            .registration(&account, bob)
            .await
            .unwrap()
            .unwrap()
            .status,
        Some(registered(99))
    );
    let rows = db.count("SELECT COUNT(*) FROM registration_status").await;
    assert_eq!(
        rows, 1,
        "no status row resurrected for the deleted registration"
    );
}

on_both_backends!(batches_keep_the_newest_attempts_and_skip_deleted_registrations);
