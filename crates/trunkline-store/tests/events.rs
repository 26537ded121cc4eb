//! The outbox on both backends: a registration's outcome is announced once per change (not per
//! refresh or retry), removal once, nothing for a late write of a deleted registration; binding
//! events for new contacts, unregisters, `Contact: *`, expiry and credential changes; `seq`
//! per tenant; reads filtered by type and bounded; other tenants see nothing; wake-ups follow
//! commits; pruning by age.

use trunkline_core::model::{
    BindingChange, InboundBinding, InboundCredential, RegistrationState, RegistrationStatus,
    Transport,
};
use trunkline_core::outbox::{EventType, StatusWrite, StoredEvent};
use trunkline_core::service::RegistrationKind;
use trunkline_core::{AccountId, Timestamp};
use uuid::Uuid;

use trunkline_store::{Backend, Database};

#[macro_use]
mod common;
use common::{add_tenant, registration, store_with_tenant};

fn status(state: RegistrationState) -> RegistrationStatus {
    let mut status = RegistrationStatus::pending(Timestamp::now());
    status.state = state;
    status.last_code = match state {
        RegistrationState::Registered => Some(200),
        RegistrationState::FailedRegistrar => Some(503),
        _ => None,
    };
    status
}

fn write(tenant: &AccountId, id: Uuid, state: RegistrationState, removed: bool) -> StatusWrite {
    StatusWrite {
        tenant: tenant.clone(),
        id,
        public_id: id.to_string(),
        kind: RegistrationKind::Ultravox,
        status: status(state),
        removed,
    }
}

async fn all_events(store: &dyn Database, tenant: &AccountId) -> Vec<StoredEvent> {
    store.events_after(tenant, 0, &[], 1000).await.unwrap()
}

fn kinds(events: &[StoredEvent]) -> Vec<(u64, &'static str)> {
    events.iter().map(|e| (e.seq, e.kind.as_str())).collect()
}

async fn registration_outcomes_are_announced_once_per_change(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let id = registration(&*store, &tenant, "alice", Timestamp::now()).await;
    let mut wakeups = store.event_wakeups();
    wakeups.borrow_and_update();
    use RegistrationState::*;
    for (state, removed) in [
        (Registering, false),
        (Registered, false),
        (Registered, false), // a refresh
        (FailedTimeout, false),
        (FailedRegistrar, false), // a retry failing otherwise
        (Registering, false),
        (Registered, false),
        (Disabled, true),
        (Disabled, true),
    ] {
        store
            .write_registration_batch(&[write(&tenant, id, state, removed)], &[], 20)
            .await
            .unwrap();
    }
    assert!(wakeups.has_changed().unwrap(), "commits with events wake");
    let events = all_events(&*store, &tenant).await;
    assert_eq!(
        kinds(&events),
        [
            (1, "registration.registered"),
            (2, "registration.failed"),
            (3, "registration.registered"),
            (4, "registration.removed"),
        ]
    );
    let failed: serde_json::Value = serde_json::from_str(&events[1].data).unwrap();
    assert_eq!(failed["id"], id.to_string());
    assert_eq!(failed["kind"], "ultravox");
    assert_eq!(
        failed["state"], "failed_timeout",
        "the body as at that moment"
    );
    let body: serde_json::Value = serde_json::from_str(&events[3].body_json()).unwrap();
    assert_eq!(body["type"], "registration.removed");
    assert_eq!(body["seq"], 4);
    assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(body["data"]["state"], "disabled");

    // Deleted: a late status write announces nothing; the engine's removal still does.
    let bob = registration(&*store, &tenant, "bob", Timestamp::now()).await;
    store
        .write_registration_batch(&[write(&tenant, bob, Registered, false)], &[], 20)
        .await
        .unwrap();
    store.delete_registration(&tenant, bob).await.unwrap();
    store
        .write_registration_batch(&[write(&tenant, bob, FailedTimeout, false)], &[], 20)
        .await
        .unwrap();
    store
        .write_registration_batch(&[write(&tenant, bob, Disabled, true)], &[], 20)
        .await
        .unwrap();
    let events = all_events(&*store, &tenant).await;
    assert_eq!(
        kinds(&events[4..]),
        [(5, "registration.registered"), (6, "registration.removed")]
    );
    assert_eq!(store.last_event_seq(&tenant).await.unwrap(), 6);

    // Reads: after a seq, by type, bounded.
    let after = store.events_after(&tenant, 4, &[], 1000).await.unwrap();
    assert_eq!(
        kinds(&after),
        [(5, "registration.registered"), (6, "registration.removed")]
    );
    let failed_only = store
        .events_after(&tenant, 0, &[EventType::RegistrationFailed], 1000)
        .await
        .unwrap();
    assert_eq!(kinds(&failed_only), [(2, "registration.failed")]);
    assert_eq!(
        store.events_after(&tenant, 0, &[], 2).await.unwrap().len(),
        2
    );

    // Another tenant: its own numbering, and none of these.
    let other = add_tenant(&*store).await;
    assert!(all_events(&*store, &other).await.is_empty());
    assert_eq!(store.last_event_seq(&other).await.unwrap(), 0);
    let carol = registration(&*store, &other, "carol", Timestamp::now()).await;
    store
        .write_registration_batch(
            &[
                write(&other, carol, FailedAuth, false),
                write(&tenant, id, Registered, false),
            ],
            &[],
            20,
        )
        .await
        .unwrap();
    assert_eq!(
        kinds(&all_events(&*store, &other).await),
        [(1, "registration.failed")]
    );
    assert_eq!(
        kinds(&all_events(&*store, &tenant).await[6..]),
        [(7, "registration.registered")]
    );

    // Pruning goes by age.
    let pruned = store
        .prune_events(Timestamp::from_micros(
            Timestamp::now().micros() + 1_000_000,
        ))
        .await
        .unwrap();
    assert_eq!(pruned, 8);
    assert!(all_events(&*store, &tenant).await.is_empty());
    assert_eq!(
        store.last_event_seq(&tenant).await.unwrap(),
        7,
        "seq never goes back"
    );
}

async fn credential(store: &dyn Database, tenant: &AccountId, username: &str) -> InboundCredential {
    common::inbound_credential(store, tenant, username, true).await
}

fn put(credential: &InboundCredential, contact: &str, expires_in_secs: i64) -> BindingChange {
    let now = Timestamp::now().micros();
    BindingChange::Put(InboundBinding {
        tenant: credential.tenant.clone(),
        credential_id: credential.id,
        contact: contact.into(),
        source: "udp:203.0.113.5:5060".into(),
        transport: Transport::Udp,
        user_agent: Some("phone/1.0".into()),
        call_id: format!("call-{contact}"),
        cseq: 1,
        expires_at: Timestamp::from_micros(now + expires_in_secs * 1_000_000),
        registered_at: Timestamp::from_micros(now),
    })
}

/// (type, contact) of each event after `after`.
async fn binding_events(
    store: &dyn Database,
    tenant: &AccountId,
    after: u64,
) -> Vec<(&'static str, String)> {
    store
        .events_after(tenant, after, &[], 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            (
                e.kind.as_str(),
                data["contact"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn binding_changes_are_announced(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let alice = credential(&*store, &tenant, "alice").await;
    let created = |c: &str| ("binding.created", c.to_owned());
    let removed = |c: &str| ("binding.removed", c.to_owned());

    store
        .write_binding_changes(&[put(&alice, "sip:a1", 60), put(&alice, "sip:a1", 60)])
        .await
        .unwrap();
    store
        .write_binding_changes(&[put(&alice, "sip:a1", 60), put(&alice, "sip:a2", 60)])
        .await
        .unwrap();
    assert_eq!(
        binding_events(&*store, &tenant, 0).await,
        [created("sip:a1"), created("sip:a2")],
        "a refresh is no news"
    );
    let first = &store.events_after(&tenant, 0, &[], 1).await.unwrap()[0];
    let data: serde_json::Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(data["credentialId"], alice.id.to_string());
    assert_eq!(data["transport"], "udp");
    assert_eq!(data["source"], "udp:203.0.113.5:5060");

    store
        .write_binding_changes(&[BindingChange::Remove {
            credential_id: alice.id,
            contact: "sip:a1".into(),
        }])
        .await
        .unwrap();
    store
        .write_binding_changes(&[
            put(&alice, "sip:a3", 60),
            BindingChange::RemoveAll {
                credential_id: alice.id,
            },
        ])
        .await
        .unwrap();
    let mut tail = binding_events(&*store, &tenant, 2).await;
    tail[2..].sort();
    assert_eq!(
        tail,
        [
            removed("sip:a1"),
            created("sip:a3"),
            removed("sip:a2"),
            removed("sip:a3")
        ]
    );

    // Expiry, and a credential disabled or deleted, end bindings with an event each.
    let bob = credential(&*store, &tenant, "bob").await;
    let carol = credential(&*store, &tenant, "carol").await;
    store
        .write_binding_changes(&[
            put(&alice, "sip:short", -1),
            put(&bob, "sip:b1", 60),
            put(&carol, "sip:c1", 60),
        ])
        .await
        .unwrap();
    let seen = store.last_event_seq(&tenant).await.unwrap();
    assert_eq!(
        store
            .delete_expired_inbound_bindings(Timestamp::now())
            .await
            .unwrap(),
        1
    );
    let mut disabled = bob.clone();
    disabled.enabled = false;
    disabled.updated_at = Timestamp::from_micros(bob.updated_at.micros() + 1);
    store
        .update_inbound_credential(&disabled, None, bob.updated_at)
        .await
        .unwrap();
    store
        .delete_inbound_credential(&tenant, carol.id)
        .await
        .unwrap();
    assert_eq!(
        binding_events(&*store, &tenant, seen).await,
        [removed("sip:short"), removed("sip:b1"), removed("sip:c1")]
    );
}

on_both_backends!(
    registration_outcomes_are_announced_once_per_change,
    binding_changes_are_announced,
);
