//! `registration_summaries`, what the registrations list reads: a tenant's Ultravox
//! registrations and every phone number (registering or not) with its trunk's registrar and
//! digest user, each with the status the engine stored, in (created, id) order per kind, never
//! another tenant's rows, and without a deleted number, on both backends.

use trunkline_core::model::{
    RegistrationSource, RegistrationState, RegistrationStatus, RegistrationSummary,
};
use trunkline_core::Timestamp;

use trunkline_store::Backend;

#[macro_use]
mod common;
use common::{add_tenant, number, registration, store_with_tenant, trunk};

on_both_backends!(both_kinds_of_one_tenant_with_their_stored_status);

fn failed_auth(at: Timestamp) -> RegistrationStatus {
    RegistrationStatus {
        state: RegistrationState::FailedAuth,
        last_code: Some(403),
        last_phrase: Some("Forbidden".into()),
        consecutive_failures: 1,
        ..RegistrationStatus::pending(at)
    }
}

async fn both_kinds_of_one_tenant_with_their_stored_status(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let other = add_tenant(&*store).await;
    assert_eq!(store.registration_summaries(&tenant).await.unwrap(), []);

    let t0 = Timestamp::from_micros(1_700_000_000_000_000);
    let later = Timestamp::from_micros(t0.micros() + 1);
    // Created out of order: the list is by creation time.
    let bob = registration(&*store, &tenant, "bob", later).await;
    let alice = registration(&*store, &tenant, "alice", t0).await;
    registration(&*store, &other, "mallory", t0).await;

    let plain = trunk(&tenant);
    let mut with_domain = trunk(&tenant);
    with_domain.domain = Some("registrar.example.net".into());
    with_domain.auth_user = Some("trunk-user".into());
    store.insert_trunk(&plain, None).await.unwrap();
    store.insert_trunk(&with_domain, None).await.unwrap();
    let mut registering = number(&tenant, with_domain.id, "+14155550100");
    registering.registration = true;
    registering.created_at = t0;
    let mut quiet = number(&tenant, plain.id, "+14155550101");
    quiet.created_at = later;
    let gone = number(&tenant, plain.id, "+14155550102");
    for n in [&quiet, &registering, &gone] {
        store.insert_phone_number(n).await.unwrap();
    }
    store
        .delete_phone_number(&tenant, &gone.phone_number)
        .await
        .unwrap();
    let other_trunk = trunk(&other);
    store.insert_trunk(&other_trunk, None).await.unwrap();
    store
        .insert_phone_number(&number(&other, other_trunk.id, "+14155550199"))
        .await
        .unwrap();

    store
        .put_registration_status(&tenant, bob, &failed_auth(later))
        .await
        .unwrap();
    store
        .put_registration_status(&tenant, registering.id, &failed_auth(later))
        .await
        .unwrap();

    let listed = store.registration_summaries(&tenant).await.unwrap();
    let expected = [
        RegistrationSummary {
            id: alice,
            source: RegistrationSource::Ultravox,
            aor_user: "alice".into(),
            auth_user: None,
            registrar: "127.0.0.1".into(),
            trunk_id: None,
            registering: true,
            created_at: t0,
            status: None,
        },
        RegistrationSummary {
            id: bob,
            source: RegistrationSource::Ultravox,
            aor_user: "bob".into(),
            auth_user: None,
            registrar: "127.0.0.1".into(),
            trunk_id: None,
            registering: true,
            created_at: later,
            status: Some(failed_auth(later)),
        },
        RegistrationSummary {
            id: registering.id,
            source: RegistrationSource::DashaNumber,
            aor_user: "+14155550100".into(),
            auth_user: Some("trunk-user".into()),
            registrar: "registrar.example.net".into(),
            trunk_id: Some(with_domain.id),
            registering: true,
            created_at: t0,
            status: Some(failed_auth(later)),
        },
        RegistrationSummary {
            id: quiet.id,
            source: RegistrationSource::DashaNumber,
            aor_user: "+14155550101".into(),
            auth_user: None,
            registrar: "sip.example.com".into(),
            trunk_id: Some(plain.id),
            registering: false,
            created_at: later,
            status: None,
        },
    ];
    assert_eq!(listed, expected);

    let others = store.registration_summaries(&other).await.unwrap();
    let users: Vec<&str> = others.iter().map(|s| s.aor_user.as_str()).collect();
    assert_eq!(users, ["mallory", "+14155550199"], "the other tenant's own");
}
