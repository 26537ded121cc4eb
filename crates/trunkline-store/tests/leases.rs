//! Registration leases on both backends: claims never overlap, one renewal keeps all a node
//! holds, a lapsed node's and released registrations pass on with a higher token.

use std::collections::BTreeSet;
use std::sync::Arc;

use trunkline_core::model::{Lease, RecordedBinding};
use trunkline_core::Timestamp;
use trunkline_store::{Backend, Database};
use uuid::Uuid;

#[macro_use]
mod common;
use common::{registration, store_with_tenant};

const SEC: i64 = 1_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000 * SEC + secs * SEC)
}

fn ids(leases: &[Lease]) -> BTreeSet<Uuid> {
    leases.iter().map(|l| l.registration_id).collect()
}

async fn claim(store: &dyn Database, node: &str, now: i64, limit: u32) -> Vec<Lease> {
    store.claim_leases(node, at(now), limit).await.unwrap()
}

/// `node` renews its lease at `now` for 15 s: whether it had held it all along.
async fn renew(store: &dyn Database, node: &str, now: i64) -> bool {
    store
        .renew_node_lease(node, at(now), at(now + 15))
        .await
        .unwrap()
}

async fn held(store: &dyn Database, node: &str) -> BTreeSet<Uuid> {
    let leases = store.held_leases(node).await.unwrap();
    assert_eq!(
        store.held_lease_count(node).await.unwrap(),
        leases.len() as u64
    );
    ids(&leases)
}

async fn nodes_share_registrations_without_overlap(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let mut all = BTreeSet::new();
    for n in 0..10 {
        all.insert(registration(&*store, &tenant, &format!("user{n}"), Timestamp::now()).await);
    }
    assert_eq!(store.count_outbound_registrations().await.unwrap(), 10);
    for node in ["node-a", "node-b", "node-c", "node-d"] {
        assert!(
            !renew(&*store, node, 0).await,
            "a first lease held nothing before"
        );
    }

    let a = claim(&*store, "node-a", 0, 4).await;
    let b = claim(&*store, "node-b", 0, 100).await;
    assert_eq!(a.len(), 4);
    assert_eq!(b.len(), 6, "b takes what a left");
    assert!(ids(&a).is_disjoint(&ids(&b)));
    assert_eq!(&ids(&a) | &ids(&b), all);
    assert_eq!(held(&*store, "node-a").await, ids(&a));
    assert!(a
        .iter()
        .chain(&b)
        .all(|l| l.token == 1 && l.tenant == tenant));
    assert!(
        claim(&*store, "node-c", 1, 100).await.is_empty(),
        "all held"
    );

    // a renews in time (one write for all it holds); b does not: once b's lease lapses, c
    // takes b's registrations with a higher token, and none of a's.
    assert!(renew(&*store, "node-a", 10).await);
    assert!(renew(&*store, "node-c", 10).await);
    assert!(
        claim(&*store, "node-c", 14, 100).await.is_empty(),
        "b's lease still runs"
    );
    let c = claim(&*store, "node-c", 16, 100).await;
    assert_eq!(ids(&c), ids(&b));
    assert!(c.iter().all(|l| l.token == 2));
    // b's renewal comes too late: it is told, and holds nothing any more.
    assert!(!renew(&*store, "node-b", 17).await);
    assert!(held(&*store, "node-b").await.is_empty());
    assert_eq!(held(&*store, "node-c").await, ids(&b));

    // a releases two at once, then everything at a clean stop: claimable immediately.
    let two: Vec<Uuid> = ids(&a).into_iter().take(2).collect();
    assert_eq!(store.release_leases("node-a", Some(&two)).await.unwrap(), 2);
    assert!(
        !renew(&*store, "node-d", 18).await,
        "lapsed at 15, holding nothing"
    );
    let d = claim(&*store, "node-d", 18, 100).await;
    assert_eq!(ids(&d), two.iter().copied().collect());
    assert_eq!(store.release_leases("node-a", None).await.unwrap(), 2);
    assert_eq!(claim(&*store, "node-d", 18, 100).await.len(), 2);
    assert_eq!(store.release_leases("node-a", Some(&[])).await.unwrap(), 0);

    // A node that stops cleanly leaves with its leases released.
    store.forget_node("node-d").await.unwrap();
    assert_eq!(claim(&*store, "node-a", 19, 100).await.len(), 4);
}

async fn a_lapsed_node_whose_leases_nobody_took_holds_nothing_on_renewal(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    registration(&*store, &tenant, "paused", Timestamp::now()).await;
    assert!(!renew(&*store, "node-a", 0).await);
    assert_eq!(claim(&*store, "node-a", 0, 10).await.len(), 1);
    // Paused past its lease; nobody claimed meanwhile. Its rows are released all the same
    // (it cannot know that nobody took them and gave them back), and claimable by anyone.
    assert!(!renew(&*store, "node-a", 20).await);
    assert!(held(&*store, "node-a").await.is_empty());
    let again = claim(&*store, "node-b", 20, 10).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].token, 2);
}

async fn leases_of_deleted_registrations_go_away(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let id = registration(&*store, &tenant, "gone", Timestamp::now()).await;
    assert!(!renew(&*store, "node-a", 0).await);
    assert_eq!(claim(&*store, "node-a", 0, 10).await.len(), 1);
    store.delete_registration(&tenant, id).await.unwrap();
    assert!(held(&*store, "node-a").await.is_empty(), "gone with it");
    assert!(claim(&*store, "node-b", 20, 10).await.is_empty());
    assert_eq!(store.count_outbound_registrations().await.unwrap(), 0);
}

async fn bindings_are_recorded_and_forgotten_by_the_holder_only(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let id = registration(&*store, &tenant, "moving", Timestamp::now()).await;
    let record = |node: &str, contact: &str| RecordedBinding {
        tenant: tenant.clone(),
        registration_id: id,
        node_id: node.to_owned(),
        contact: contact.to_owned(),
        call_id: format!("{node}@trunkline"),
        cseq: 2,
        expires_at: at(3600),
    };
    let contacts = || async { store.bound_contacts(&[id]).await.unwrap() };
    for node in ["node-a", "node-b"] {
        renew(&*store, node, 0).await;
    }
    assert_eq!(claim(&*store, "node-a", 0, 10).await.len(), 1);
    store
        .record_binding(&record("node-a", "sip:a"))
        .await
        .unwrap();
    // A node without the lease records nothing.
    store
        .record_binding(&record("node-b", "sip:b"))
        .await
        .unwrap();
    assert_eq!(contacts().await, vec![(id, "sip:a".to_owned())]);

    // Handed over: b records its own; a's late unregister forgets nothing of b's, nor does
    // a late record of a's replace it.
    store.release_leases("node-a", None).await.unwrap();
    assert_eq!(claim(&*store, "node-b", 1, 10).await.len(), 1);
    store
        .record_binding(&record("node-b", "sip:b"))
        .await
        .unwrap();
    store.forget_binding(&tenant, id, "node-a").await.unwrap();
    store
        .record_binding(&record("node-a", "sip:a"))
        .await
        .unwrap();
    assert_eq!(contacts().await, vec![(id, "sip:b".to_owned())]);
    store.forget_binding(&tenant, id, "node-b").await.unwrap();
    assert!(contacts().await.is_empty());
}

async fn concurrent_claims_are_disjoint(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    for n in 0..200 {
        registration(&*store, &tenant, &format!("user{n}"), Timestamp::now()).await;
    }
    let claims: Vec<Vec<Lease>> = futures_join(&store, 4).await;
    let mut seen = BTreeSet::new();
    for leases in &claims {
        for lease in leases {
            assert!(seen.insert(lease.registration_id), "claimed twice");
        }
    }
    assert_eq!(seen.len(), 200, "every registration claimed once");
}

/// `nodes` claimers at once, 10 at a time until nothing is left.
async fn futures_join(store: &Arc<dyn Database>, nodes: usize) -> Vec<Vec<Lease>> {
    let tasks: Vec<_> = (0..nodes)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = claim(&*store, &format!("node-{n}"), 0, 10).await;
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.push(task.await.unwrap());
    }
    all
}

on_both_backends!(
    nodes_share_registrations_without_overlap,
    a_lapsed_node_whose_leases_nobody_took_holds_nothing_on_renewal,
    leases_of_deleted_registrations_go_away,
    bindings_are_recorded_and_forgotten_by_the_holder_only,
    concurrent_claims_are_disjoint,
);
