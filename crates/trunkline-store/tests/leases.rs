//! Registration leases on both backends: claims never overlap, renewals keep only what has
//! not expired, releases and expiries hand registrations over with a higher token.

use std::collections::BTreeSet;
use std::sync::Arc;

use trunkline_core::model::Lease;
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
    store
        .claim_leases(node, at(now), at(now + 15), limit)
        .await
        .unwrap()
}

async fn nodes_share_registrations_without_overlap(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let mut all = BTreeSet::new();
    for n in 0..10 {
        all.insert(registration(&*store, &tenant, &format!("user{n}"), Timestamp::now()).await);
    }
    assert_eq!(store.count_outbound_registrations().await.unwrap(), 10);

    let a = claim(&*store, "node-a", 0, 4).await;
    let b = claim(&*store, "node-b", 0, 100).await;
    assert_eq!(a.len(), 4);
    assert_eq!(b.len(), 6, "b takes what a left");
    assert!(ids(&a).is_disjoint(&ids(&b)));
    assert_eq!(&ids(&a) | &ids(&b), all);
    assert!(a
        .iter()
        .chain(&b)
        .all(|l| l.token == 1 && l.tenant == tenant));
    assert!(
        claim(&*store, "node-c", 1, 100).await.is_empty(),
        "all held"
    );

    // a renews in time; b does not: b's expire and c takes them with a higher token.
    assert_eq!(
        store
            .renew_leases("node-a", at(10), at(25))
            .await
            .unwrap()
            .len(),
        4
    );
    let c = claim(&*store, "node-c", 16, 100).await;
    assert_eq!(ids(&c), ids(&b));
    assert!(c.iter().all(|l| l.token == 2));
    // b's renewal comes too late: it holds nothing any more.
    assert!(store
        .renew_leases("node-b", at(17), at(32))
        .await
        .unwrap()
        .is_empty());

    // a releases two at once, then everything at a clean stop: claimable immediately.
    let two: Vec<Uuid> = ids(&a).into_iter().take(2).collect();
    assert_eq!(store.release_leases("node-a", Some(&two)).await.unwrap(), 2);
    let d = claim(&*store, "node-d", 18, 100).await;
    assert_eq!(ids(&d), two.iter().copied().collect());
    assert_eq!(store.release_leases("node-a", None).await.unwrap(), 2);
    assert_eq!(claim(&*store, "node-d", 18, 100).await.len(), 2);
    assert_eq!(store.release_leases("node-a", Some(&[])).await.unwrap(), 0);
}

async fn leases_of_deleted_registrations_go_away(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let id = registration(&*store, &tenant, "gone", Timestamp::now()).await;
    assert_eq!(claim(&*store, "node-a", 0, 10).await.len(), 1);
    store.delete_registration(&tenant, id).await.unwrap();
    // Its holder renews it no more.
    assert!(store
        .renew_leases("node-a", at(5), at(20))
        .await
        .unwrap()
        .is_empty());
    // Expired and gone: nobody gets it back.
    assert!(claim(&*store, "node-b", 20, 10).await.is_empty());
    assert_eq!(store.count_outbound_registrations().await.unwrap(), 0);
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
    leases_of_deleted_registrations_go_away,
    concurrent_claims_are_disjoint,
);
