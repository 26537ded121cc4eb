//! Inbound credentials and the bindings the registrar writes for them, on a real SQLite file:
//! a group of changes applies in order in one call; a `Put` replaces the binding of the same
//! contact and is skipped for a credential that is gone, disabled or another tenant's; reads
//! leave out expired bindings and the sweep deletes exactly those; disabling or deleting a
//! credential ends its bindings; reads are scoped by tenant; the directory carries the hashes.

use secrecy::SecretString;
use trunkline_core::model::{BindingChange, InboundBinding, InboundCredential, Transport};
use trunkline_core::secret::DigestHashes;
use trunkline_core::store::WriteOutcome;
use trunkline_core::{AccountId, Timestamp};
use uuid::Uuid;

use trunkline_store::{Backend, Database};

#[macro_use]
mod common;
use common::{add_tenant, store_with_tenant};

/// The instant the tests read at; bindings expire relative to it.
const NOW: i64 = 1_800_000_000_000_000;
const MINUTE: i64 = 60_000_000;

/// The hashes `common::inbound_credential` stores.
fn hashes(username: &str, realm: &str) -> DigestHashes {
    DigestHashes::compute(
        username,
        realm,
        &SecretString::from(common::CREDENTIAL_PASSWORD),
    )
}

async fn credential(
    store: &dyn Database,
    tenant: &AccountId,
    username: &str,
    enabled: bool,
) -> InboundCredential {
    common::inbound_credential(store, tenant, username, enabled).await
}

/// A binding of `credential` for `contact`, registered `registered` µs after NOW and
/// expiring `expires` µs after NOW.
fn binding(
    credential: &InboundCredential,
    contact: &str,
    registered: i64,
    expires: i64,
) -> InboundBinding {
    InboundBinding {
        tenant: credential.tenant.clone(),
        credential_id: credential.id,
        contact: contact.into(),
        source: "udp:203.0.113.5:5060".into(),
        transport: Transport::Udp,
        user_agent: Some("phone/1.0".into()),
        call_id: format!("call-{contact}"),
        cseq: 1,
        expires_at: Timestamp::from_micros(NOW + expires),
        registered_at: Timestamp::from_micros(NOW + registered),
    }
}

fn put(credential: &InboundCredential, contact: &str, registered: i64) -> BindingChange {
    BindingChange::Put(binding(credential, contact, registered, 60 * MINUTE))
}

async fn contacts(store: &dyn Database, credential: &InboundCredential) -> Vec<String> {
    store
        .inbound_bindings(
            &credential.tenant,
            credential.id,
            Timestamp::from_micros(NOW),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.contact)
        .collect()
}

async fn a_group_of_changes_applies_in_order(backend: Backend) {
    let (_dir, store, tenant) = store_with_tenant(backend).await;
    let alice = credential(&*store, &tenant, "alice", true).await;
    let bob = credential(&*store, &tenant, "bob", true).await;
    store
        .write_binding_changes(&[put(&bob, "sip:bob@old", 0)])
        .await
        .unwrap();

    store
        .write_binding_changes(&[
            put(&alice, "sip:a1", 1),
            put(&alice, "sip:a2", 2),
            put(&bob, "sip:b1", 3),
            // Removes what the same group put a moment ago.
            BindingChange::Remove {
                credential_id: alice.id,
                contact: "sip:a1".into(),
            },
            put(&alice, "sip:a3", 4),
            // Removes bob's older binding and the one this group put; only alice's stay.
            BindingChange::RemoveAll {
                credential_id: bob.id,
            },
            // Put after RemoveAll: it stays.
            put(&bob, "sip:b2", 5),
            // Removing what is not there changes nothing.
            BindingChange::Remove {
                credential_id: alice.id,
                contact: "sip:never".into(),
            },
        ])
        .await
        .unwrap();

    assert_eq!(contacts(&*store, &alice).await, ["sip:a2", "sip:a3"]);
    assert_eq!(contacts(&*store, &bob).await, ["sip:b2"]);
    store.write_binding_changes(&[]).await.unwrap();
    assert_eq!(
        store
            .live_inbound_bindings(Timestamp::from_micros(NOW))
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn a_put_replaces_the_binding_of_the_same_contact(backend: Backend) {
    let (_dir, store, tenant) = store_with_tenant(backend).await;
    let alice = credential(&*store, &tenant, "alice", true).await;
    let first = binding(&alice, "sip:alice@203.0.113.5", 0, 10 * MINUTE);
    store
        .write_binding_changes(&[BindingChange::Put(first.clone())])
        .await
        .unwrap();
    let second = InboundBinding {
        source: "tcp:198.51.100.7:40000".into(),
        transport: Transport::Tcp,
        user_agent: None,
        call_id: "another-call".into(),
        cseq: 42,
        expires_at: Timestamp::from_micros(NOW + 30 * MINUTE),
        registered_at: Timestamp::from_micros(NOW + MINUTE),
        ..first.clone()
    };
    store
        .write_binding_changes(&[BindingChange::Put(second.clone())])
        .await
        .unwrap();

    let stored = store
        .inbound_bindings(&tenant, alice.id, Timestamp::from_micros(NOW))
        .await
        .unwrap();
    assert_eq!(stored, [second]);
}

async fn puts_for_a_credential_gone_disabled_or_of_another_tenant_are_skipped(backend: Backend) {
    let (_dir, store, tenant) = store_with_tenant(backend).await;
    let other_tenant = add_tenant(&*store).await;
    let live = credential(&*store, &tenant, "live", true).await;
    let disabled = credential(&*store, &tenant, "disabled", false).await;
    let deleted = credential(&*store, &tenant, "deleted", true).await;
    assert_eq!(
        store
            .delete_inbound_credential(&tenant, deleted.id)
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
    let mut misattributed = binding(&live, "sip:intruder", 0, 60 * MINUTE);
    misattributed.tenant = other_tenant.clone();

    // The whole group commits; only the put for the live credential is written.
    store
        .write_binding_changes(&[
            put(&disabled, "sip:disabled", 0),
            put(&deleted, "sip:deleted", 0),
            BindingChange::Put(misattributed),
            put(&live, "sip:live", 0),
        ])
        .await
        .unwrap();

    assert_eq!(contacts(&*store, &live).await, ["sip:live"]);
    assert!(contacts(&*store, &disabled).await.is_empty());
    let everything = store
        .live_inbound_bindings(Timestamp::from_micros(NOW))
        .await
        .unwrap();
    assert_eq!(everything.len(), 1, "{everything:?}");
    assert_eq!(everything[0].tenant, tenant);
}

async fn expired_bindings_are_left_out_and_swept(backend: Backend) {
    let (_dir, store, tenant) = store_with_tenant(backend).await;
    let alice = credential(&*store, &tenant, "alice", true).await;
    let bob = credential(&*store, &tenant, "bob", true).await;
    store
        .write_binding_changes(&[
            BindingChange::Put(binding(&alice, "sip:expired", 0, -1)),
            BindingChange::Put(binding(&alice, "sip:expires-now", 1, 0)),
            BindingChange::Put(binding(&alice, "sip:live-late", 3, 1)),
            BindingChange::Put(binding(&alice, "sip:live-early", 2, MINUTE)),
            BindingChange::Put(binding(&bob, "sip:bob-expired", 0, -MINUTE)),
            BindingChange::Put(binding(&bob, "sip:bob-live", 4, MINUTE)),
        ])
        .await
        .unwrap();

    // Not expired at NOW means `expires_at > NOW`; oldest registration first.
    assert_eq!(
        contacts(&*store, &alice).await,
        ["sip:live-early", "sip:live-late"]
    );
    let live: Vec<String> = store
        .live_inbound_bindings(Timestamp::from_micros(NOW))
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.contact)
        .collect();
    assert_eq!(live, ["sip:live-early", "sip:live-late", "sip:bob-live"]);
    // Earlier, more is live.
    assert_eq!(
        store
            .live_inbound_bindings(Timestamp::from_micros(NOW - MINUTE - 1))
            .await
            .unwrap()
            .len(),
        6
    );

    assert_eq!(
        store
            .delete_expired_inbound_bindings(Timestamp::from_micros(NOW))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .delete_expired_inbound_bindings(Timestamp::from_micros(NOW))
            .await
            .unwrap(),
        0
    );
    // What the sweep left is exactly what was live.
    let remaining = store
        .live_inbound_bindings(Timestamp::from_micros(i64::MIN))
        .await
        .unwrap();
    let remaining: Vec<String> = remaining.into_iter().map(|b| b.contact).collect();
    assert_eq!(remaining, live);
}

async fn disabling_or_deleting_a_credential_ends_its_bindings(backend: Backend) {
    let (_dir, store, tenant) = store_with_tenant(backend).await;
    let alice = credential(&*store, &tenant, "alice", true).await;
    let bob = credential(&*store, &tenant, "bob", true).await;
    store
        .write_binding_changes(&[
            put(&alice, "sip:a1", 0),
            put(&alice, "sip:a2", 1),
            put(&bob, "sip:b1", 2),
        ])
        .await
        .unwrap();

    // An update that keeps it enabled keeps its bindings.
    let mut next = alice.clone();
    next.description = Some("desk".into());
    next.updated_at = Timestamp::from_micros(alice.updated_at.micros() + 1);
    assert_eq!(
        store
            .update_inbound_credential(&next, None, alice.updated_at)
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(contacts(&*store, &alice).await, ["sip:a1", "sip:a2"]);

    // A stale update that would disable it changes nothing.
    let mut stale = next.clone();
    stale.enabled = false;
    stale.updated_at = Timestamp::from_micros(next.updated_at.micros() + 1);
    assert_eq!(
        store
            .update_inbound_credential(&stale, None, alice.updated_at)
            .await
            .unwrap(),
        WriteOutcome::Stale
    );
    assert_eq!(contacts(&*store, &alice).await, ["sip:a1", "sip:a2"]);

    // Disabling ends them, and a late put does not bring one back.
    assert_eq!(
        store
            .update_inbound_credential(&stale, None, next.updated_at)
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
    assert!(contacts(&*store, &alice).await.is_empty());
    store
        .write_binding_changes(&[put(&alice, "sip:late", 3)])
        .await
        .unwrap();
    assert!(contacts(&*store, &alice).await.is_empty());
    assert_eq!(contacts(&*store, &bob).await, ["sip:b1"], "bob untouched");

    // Enabled again, it takes new bindings.
    let mut enabled = stale.clone();
    enabled.enabled = true;
    enabled.updated_at = Timestamp::from_micros(stale.updated_at.micros() + 1);
    store
        .update_inbound_credential(&enabled, None, stale.updated_at)
        .await
        .unwrap();
    store
        .write_binding_changes(&[put(&alice, "sip:again", 4)])
        .await
        .unwrap();
    assert_eq!(contacts(&*store, &alice).await, ["sip:again"]);

    // Deleting ends them too.
    for credential in [&alice, &bob] {
        assert_eq!(
            store
                .delete_inbound_credential(&tenant, credential.id)
                .await
                .unwrap(),
            WriteOutcome::Applied
        );
    }
    assert!(store
        .live_inbound_bindings(Timestamp::from_micros(i64::MIN))
        .await
        .unwrap()
        .is_empty());
}

async fn bindings_are_read_within_the_tenant(backend: Backend) {
    let (_dir, store, tenant) = store_with_tenant(backend).await;
    let other = add_tenant(&*store).await;
    let alice = credential(&*store, &tenant, "alice", true).await;
    let theirs = credential(&*store, &other, "alice", true).await;
    store
        .write_binding_changes(&[put(&alice, "sip:mine", 0), put(&theirs, "sip:theirs", 1)])
        .await
        .unwrap();

    let now = Timestamp::from_micros(NOW);
    assert_eq!(contacts(&*store, &alice).await, ["sip:mine"]);
    assert_eq!(contacts(&*store, &theirs).await, ["sip:theirs"]);
    assert!(store
        .inbound_bindings(&other, alice.id, now)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .inbound_bindings(&tenant, theirs.id, now)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .inbound_bindings(&tenant, Uuid::new_v4(), now)
        .await
        .unwrap()
        .is_empty());
}

async fn the_directory_carries_every_credential_with_its_hashes(backend: Backend) {
    let (_dir, store, tenant) = store_with_tenant(backend).await;
    let other = add_tenant(&*store).await;
    let alice = credential(&*store, &tenant, "alice", true).await;
    let disabled = credential(&*store, &tenant, "disabled", false).await;
    let theirs = credential(&*store, &other, "alice", true).await;

    let directory = store.inbound_credential_directory().await.unwrap();
    assert_eq!(directory.len(), 3);
    for expected in [&alice, &disabled, &theirs] {
        let (found, found_hashes) = directory
            .iter()
            .find(|(c, _)| c.id == expected.id)
            .unwrap_or_else(|| panic!("{} missing", expected.username));
        assert_eq!(found, expected);
        let computed = hashes(&expected.username, &expected.realm);
        assert_eq!(found_hashes.md5, computed.md5);
        assert_eq!(found_hashes.sha256, computed.sha256);
        assert_eq!(found_hashes.md5.len(), 32);
        assert_eq!(found_hashes.sha256.len(), 64);
    }
    let md5_of = |id: Uuid| {
        let (_, hashes) = directory.iter().find(|(c, _)| c.id == id).unwrap();
        hashes.md5.clone()
    };
    assert_ne!(
        md5_of(alice.id),
        md5_of(theirs.id),
        "another realm, another HA1"
    );

    let (found, found_hashes) = store
        .inbound_credential_with_hashes(&tenant, alice.id)
        .await
        .unwrap()
        .expect("alice");
    assert_eq!(found, alice);
    assert_eq!(found_hashes.sha256, hashes("alice", &alice.realm).sha256);
    // A new password reaches the directory.
    let mut next = alice.clone();
    next.updated_at = Timestamp::from_micros(alice.updated_at.micros() + 1);
    let new_hashes = DigestHashes::compute(
        "alice",
        &alice.realm,
        &SecretString::from("another-password"),
    );
    store
        .update_inbound_credential(&next, Some(&new_hashes), alice.updated_at)
        .await
        .unwrap();
    let (_, found_hashes) = store
        .inbound_credential_with_hashes(&tenant, alice.id)
        .await
        .unwrap()
        .expect("alice");
    assert_eq!(found_hashes.md5, new_hashes.md5);
    assert_eq!(found_hashes.sha256, new_hashes.sha256);

    assert!(store
        .inbound_credential_with_hashes(&other, alice.id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .inbound_credential_with_hashes(&tenant, Uuid::new_v4())
        .await
        .unwrap()
        .is_none());
}

on_both_backends!(
    a_group_of_changes_applies_in_order,
    a_put_replaces_the_binding_of_the_same_contact,
    puts_for_a_credential_gone_disabled_or_of_another_tenant_are_skipped,
    expired_bindings_are_left_out_and_swept,
    disabling_or_deleting_a_credential_ends_its_bindings,
    bindings_are_read_within_the_tenant,
    the_directory_carries_every_credential_with_its_hashes
);
