//! The engine's reconcile reads versions only (`outbound_registration_versions`): on a real
//! SQLite file they name exactly what `outbound_registrations` loads, with the same versions
//! (a Dasha number's is the later of its own and its trunk's), and leave out numbers that do
//! not register.

use std::collections::BTreeSet;

use secrecy::SecretString;
use trunkline_core::model::{PhoneNumber, Transport, Trunk};
use trunkline_core::{AccountId, Timestamp};
use uuid::Uuid;

use trunkline_store::Backend;

#[macro_use]
mod common;
use common::{registration, store_with_tenant};

fn number(tenant: &AccountId, trunk: Uuid, e164: &str, registration: bool, at: i64) -> PhoneNumber {
    PhoneNumber {
        id: Uuid::new_v4(),
        tenant: tenant.clone(),
        phone_number: e164.into(),
        trunk_id: trunk,
        registration,
        display_name: None,
        description: None,
        incoming_calls_agent_id: None,
        created_at: Timestamp::from_micros(at),
        updated_at: Timestamp::from_micros(at),
        status: None,
    }
}

async fn versions_name_what_the_engine_loads(backend: Backend) {
    let (_dir, store, account) = store_with_tenant(backend).await;
    let registration =
        registration(&*store, &account, "alice", Timestamp::from_micros(1_000)).await;
    // The trunk changed after one number and before the other.
    let trunk = Trunk {
        id: Uuid::new_v4(),
        tenant: account.clone(),
        server: "127.0.0.1".into(),
        transport: Transport::Udp,
        domain: None,
        auth_user: None,
        has_password: true,
        revealed_password: None,
        description: None,
        cps_limit: None,
        cps_key: None,
        created_at: Timestamp::from_micros(2_000),
        updated_at: Timestamp::from_micros(5_000),
    };
    store
        .insert_trunk(&trunk, Some(&SecretString::from("trunk-pw")))
        .await
        .unwrap();
    let older = number(&account, trunk.id, "+14155550001", true, 3_000);
    let newer = number(&account, trunk.id, "+14155550002", true, 9_000);
    let silent = number(&account, trunk.id, "+14155550003", false, 3_000);
    for n in [&older, &newer, &silent] {
        store.insert_phone_number(n).await.unwrap();
    }

    let versions: BTreeSet<(String, Uuid, i64)> = store
        .outbound_registration_versions(None)
        .await
        .unwrap()
        .into_iter()
        .map(|(tenant, id, version)| (tenant.to_string(), id, version.micros()))
        .collect();
    let loaded: BTreeSet<(String, Uuid, i64)> = store
        .outbound_registrations()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.tenant.to_string(), r.id, r.version.micros()))
        .collect();
    assert_eq!(versions, loaded);
    let expected: BTreeSet<(String, Uuid, i64)> = [
        (account.to_string(), registration, 1_000),
        (account.to_string(), older.id, 5_000),
        (account.to_string(), newer.id, 9_000),
    ]
    .into_iter()
    .collect();
    assert_eq!(versions, expected);

    // A node sharing the database reconciles only what it holds.
    let node = "node-a";
    store
        .renew_node_lease(
            node,
            Timestamp::now(),
            Timestamp::now().plus(std::time::Duration::from_secs(15)),
        )
        .await
        .unwrap();
    let held = store.claim_leases(node, Timestamp::now(), 2).await.unwrap();
    let mine: BTreeSet<Uuid> = store
        .outbound_registration_versions(Some(node))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    assert_eq!(mine, held.iter().map(|l| l.registration_id).collect());
    assert_eq!(mine.len(), 2);
    assert!(store
        .outbound_registration_versions(Some("node-b"))
        .await
        .unwrap()
        .is_empty());

    // What the nodes share: counted on SQLite, kept by triggers on PostgreSQL.
    assert_eq!(store.count_outbound_registrations().await.unwrap(), 3);
    let mut registering = silent.clone();
    registering.registration = true;
    registering.updated_at = Timestamp::from_micros(10_000);
    store
        .update_phone_number(&registering, silent.updated_at)
        .await
        .unwrap();
    assert_eq!(store.count_outbound_registrations().await.unwrap(), 4);
    store
        .delete_phone_number(&account, &older.phone_number)
        .await
        .unwrap();
    store
        .delete_registration(&account, registration)
        .await
        .unwrap();
    assert_eq!(store.count_outbound_registrations().await.unwrap(), 2);
}

on_both_backends!(versions_name_what_the_engine_loads);
