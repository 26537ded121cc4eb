//! Webhooks on both backends: a new webhook starts after the events already there; its secret
//! is sealed and opens only for the deliverer; claims are leases that fence a node whose hold
//! was taken over; an attempt moves the cursor and keeps the newest attempts; retries running
//! out disable the endpoint, and enabling it again starts afresh; the per-tenant limit holds.

use secrecy::{ExposeSecret, SecretString};
use trunkline_core::model::{RegistrationState, RegistrationStatus};
use trunkline_core::outbox::{
    CursorUpdate, DeliveryAttempt, EventType, StatusWrite, Webhook, WebhookCursor,
    MAX_WEBHOOKS_PER_TENANT,
};
use trunkline_core::service::RegistrationKind;
use trunkline_core::store::WriteOutcome;
use trunkline_core::{AccountId, Timestamp};
use trunkline_store::{Backend, Database, MasterKey, Sealer, REKEY_BATCH};
use uuid::Uuid;

#[macro_use]
mod common;
use common::{add_tenant, registration, store_with_tenant, TestDb};

const SEC: i64 = 1_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000 * SEC + secs * SEC)
}

fn new_webhook(tenant: &AccountId, url: &str, types: &[EventType]) -> Webhook {
    let now = Timestamp::now();
    Webhook {
        id: Uuid::new_v4(),
        tenant: tenant.clone(),
        url: url.to_owned(),
        types: types.to_vec(),
        description: Some("ops".into()),
        enabled: true,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    }
}

async fn insert(store: &dyn Database, webhook: &Webhook, secret: &str) {
    assert_eq!(
        store
            .insert_webhook(webhook, &SecretString::from(secret.to_owned()))
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
}

/// Appends one `registration.*` event for a new registration of `tenant` (a failure, so the
/// announcement rule writes it); its `seq`.
async fn append_event(store: &dyn Database, tenant: &AccountId) -> u64 {
    let id = registration(store, tenant, "events", Timestamp::now()).await;
    let status = RegistrationStatus {
        state: RegistrationState::FailedTransport,
        last_code: None,
        last_phrase: Some("no answer".into()),
        failed_by: None,
        last_attempt_at: None,
        expires_at: None,
        next_attempt_at: None,
        consecutive_failures: 1,
        transport: None,
        remote: None,
        updated_at: Timestamp::now(),
    };
    let write = StatusWrite {
        tenant: tenant.clone(),
        id,
        public_id: id.to_string(),
        kind: RegistrationKind::Ultravox,
        status,
        removed: false,
    };
    store
        .write_registration_batch(&[write], &[], 20)
        .await
        .unwrap();
    store.last_event_seq(tenant).await.unwrap()
}

async fn claim(store: &dyn Database, node: &str, now: i64) -> Vec<WebhookCursor> {
    store
        .claim_webhooks(node, at(now), at(now + 30))
        .await
        .unwrap()
}

fn ids(cursors: &[WebhookCursor]) -> Vec<Uuid> {
    cursors.iter().map(|c| c.webhook.id).collect()
}

fn attempt(webhook: &Webhook, seq: u64, n: u32, error: Option<&str>) -> DeliveryAttempt {
    DeliveryAttempt {
        webhook_id: webhook.id,
        tenant: webhook.tenant.clone(),
        event_id: format!("evt_{seq}"),
        event_seq: seq,
        kind: EventType::RegistrationFailed,
        attempt: n,
        status_code: error.map(|_| 503),
        duration_ms: 12,
        error: error.map(str::to_owned),
        at: at(i64::from(n)),
        next_attempt_at: error.map(|_| at(i64::from(n) + 2)),
    }
}

fn failing(delivered_seq: u64, attempt: u32) -> CursorUpdate {
    CursorUpdate {
        delivered_seq,
        attempt,
        failing_since: Some(at(1)),
        next_attempt_at: Some(at(i64::from(attempt) + 2)),
        disable: None,
    }
}

async fn a_new_webhook_starts_after_the_events_already_there(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let other = add_tenant(&*store).await;
    assert_eq!(append_event(&*store, &tenant).await, 1);
    assert_eq!(append_event(&*store, &tenant).await, 2);

    let webhook = new_webhook(
        &tenant,
        "https://hooks.example.com/in?x=1",
        &[EventType::RegistrationFailed, EventType::BindingCreated],
    );
    insert(&*store, &webhook, "whsec_c2VjcmV0").await;
    // A tenant whose events never started gets a cursor at 0.
    let theirs = new_webhook(&other, "http://other.example/", &[]);
    insert(&*store, &theirs, "whsec_b3RoZXI=").await;

    assert_eq!(
        store.webhook(&tenant, webhook.id).await.unwrap(),
        Some(webhook.clone())
    );
    assert_eq!(store.webhook(&other, webhook.id).await.unwrap(), None);
    assert_eq!(
        store.webhooks(&tenant).await.unwrap(),
        vec![webhook.clone()]
    );
    assert_eq!(store.webhooks(&other).await.unwrap(), vec![theirs.clone()]);

    let held = claim(&*store, "node-a", 0).await;
    assert_eq!(held.len(), 2);
    let mine = held.iter().find(|c| c.webhook.id == webhook.id).unwrap();
    assert_eq!(mine.webhook, webhook);
    assert_eq!(mine.secret.expose_secret(), "whsec_c2VjcmV0");
    assert_eq!(
        (
            mine.delivered_seq,
            mine.attempt,
            mine.failing_since,
            mine.next_attempt_at
        ),
        (2, 0, None, None),
        "only events after its creation"
    );
    let theirs_held = held.iter().find(|c| c.webhook.id == theirs.id).unwrap();
    assert_eq!(theirs_held.delivered_seq, 0);

    // The next event is the first it sees.
    append_event(&*store, &tenant).await;
    let next = store
        .events_after(&tenant, mine.delivered_seq, &[], 10)
        .await
        .unwrap();
    assert_eq!(next.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
}

async fn claims_are_leases_and_a_node_taken_over_writes_nothing(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let first = new_webhook(&tenant, "http://a.example/", &[]);
    let second = new_webhook(&tenant, "http://b.example/", &[]);
    insert(&*store, &first, "whsec_YQ==").await;
    insert(&*store, &second, "whsec_Yg==").await;

    assert_eq!(
        ids(&claim(&*store, "node-a", 0).await),
        [first.id, second.id]
    );
    assert!(claim(&*store, "node-b", 1).await.is_empty(), "a holds both");
    // a renews (keeps) what it holds.
    assert_eq!(claim(&*store, "node-a", 20).await.len(), 2);
    assert!(
        claim(&*store, "node-b", 40).await.is_empty(),
        "renewed until 50"
    );
    assert!(store
        .record_delivery("node-a", &attempt(&first, 1, 1, None), &failing(1, 0), 10)
        .await
        .unwrap());

    // a stops renewing; once its hold lapses, b takes both, and a's writes are refused.
    assert_eq!(
        ids(&claim(&*store, "node-b", 51).await),
        [first.id, second.id]
    );
    assert!(!store
        .record_delivery("node-a", &attempt(&first, 2, 1, None), &failing(2, 0), 10)
        .await
        .unwrap());
    assert!(!store
        .skip_webhook_events("node-a", first.id, 5)
        .await
        .unwrap());
    assert!(claim(&*store, "node-a", 52).await.is_empty());
    let deliveries = store
        .webhook_deliveries(&tenant, first.id, 10)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1, "only the holder's attempt is recorded");

    // A clean stop lets go at once.
    store.release_webhooks("node-b").await.unwrap();
    assert_eq!(claim(&*store, "node-a", 53).await.len(), 2);
}

async fn attempts_move_the_cursor_keep_the_newest_and_running_out_disables(backend: Backend) {
    let (db, store, tenant) = store_with_tenant(backend).await;
    let other = add_tenant(&*store).await;
    let webhook = new_webhook(&tenant, "http://hooks.example/", &[]);
    insert(&*store, &webhook, "whsec_c2VjcmV0").await;
    claim(&*store, "node-a", 0).await;

    // Event 1 delivered at once, event 2 fails four times.
    assert!(store
        .record_delivery(
            "node-a",
            &attempt(&webhook, 1, 1, None),
            &CursorUpdate {
                delivered_seq: 1,
                attempt: 0,
                failing_since: None,
                next_attempt_at: None,
                disable: None
            },
            3
        )
        .await
        .unwrap());
    for n in 1..=4 {
        assert!(store
            .record_delivery(
                "node-a",
                &attempt(&webhook, 2, n, Some("HTTP 503")),
                &failing(1, n),
                3
            )
            .await
            .unwrap());
    }
    let deliveries = store
        .webhook_deliveries(&tenant, webhook.id, 10)
        .await
        .unwrap();
    assert_eq!(
        deliveries.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        [4, 3, 2],
        "newest first, the newest 3 kept"
    );
    assert_eq!(deliveries[0], attempt(&webhook, 2, 4, Some("HTTP 503")));
    assert_eq!(
        store
            .webhook_deliveries(&tenant, webhook.id, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .webhook_deliveries(&other, webhook.id, 10)
        .await
        .unwrap()
        .is_empty());
    let cursor = claim(&*store, "node-a", 1).await.remove(0);
    assert_eq!(
        (
            cursor.delivered_seq,
            cursor.attempt,
            cursor.failing_since,
            cursor.next_attempt_at
        ),
        (1, 4, Some(at(1)), Some(at(6)))
    );

    // Retries run out: the endpoint is disabled, saying why; the deliverer holds it no more.
    let mut last = failing(1, 5);
    last.next_attempt_at = None;
    last.disable = Some("deliveries failed for 24h: last error: HTTP 503".into());
    assert!(store
        .record_delivery(
            "node-a",
            &attempt(&webhook, 2, 5, Some("HTTP 503")),
            &last,
            3
        )
        .await
        .unwrap());
    let disabled = store.webhook(&tenant, webhook.id).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        disabled.disabled_reason.as_deref(),
        Some("deliveries failed for 24h: last error: HTTP 503")
    );
    assert_eq!(
        disabled.updated_at, webhook.updated_at,
        "not the API's version"
    );
    assert!(claim(&*store, "node-a", 2).await.is_empty());
    assert!(!store
        .record_delivery("node-a", &attempt(&webhook, 2, 6, None), &failing(2, 0), 3)
        .await
        .unwrap());

    // Enabled again (the service clears the reason): retries start afresh at event 2.
    let mut enabled = disabled.clone();
    enabled.enabled = true;
    enabled.disabled_reason = None;
    enabled.updated_at = Timestamp::from_micros(disabled.updated_at.micros() + 1);
    assert_eq!(
        store
            .update_webhook(&enabled, disabled.updated_at)
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
    let cursor = claim(&*store, "node-a", 3).await.remove(0);
    assert_eq!(cursor.webhook, enabled);
    assert_eq!(
        (
            cursor.delivered_seq,
            cursor.attempt,
            cursor.failing_since,
            cursor.next_attempt_at
        ),
        (1, 0, None, None)
    );

    // Deleting it takes its attempts along.
    assert_eq!(
        store.delete_webhook(&other, webhook.id).await.unwrap(),
        WriteOutcome::NotFound
    );
    assert_eq!(
        store.delete_webhook(&tenant, webhook.id).await.unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM webhook_deliveries").await,
        0,
        "attempts deleted with their webhook"
    );
    assert_eq!(
        store.delete_webhook(&tenant, webhook.id).await.unwrap(),
        WriteOutcome::NotFound
    );
    assert!(claim(&*store, "node-a", 4).await.is_empty());
}

async fn updates_are_optimistic_and_a_new_url_retries_at_once(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let other = add_tenant(&*store).await;
    let webhook = new_webhook(&tenant, "http://old.example/", &[]);
    insert(&*store, &webhook, "whsec_c2VjcmV0").await;
    claim(&*store, "node-a", 0).await;
    assert!(store
        .record_delivery(
            "node-a",
            &attempt(&webhook, 1, 1, Some("refused")),
            &failing(0, 1),
            10
        )
        .await
        .unwrap());

    let mut next = webhook.clone();
    next.url = "http://new.example/".into();
    next.types = vec![EventType::BindingRemoved];
    next.description = None;
    next.updated_at = Timestamp::from_micros(webhook.updated_at.micros() + 1);
    let mut foreign = next.clone();
    foreign.tenant = other;
    assert_eq!(
        store
            .update_webhook(&foreign, webhook.updated_at)
            .await
            .unwrap(),
        WriteOutcome::NotFound
    );
    assert_eq!(
        store.update_webhook(&next, at(0)).await.unwrap(),
        WriteOutcome::Stale
    );
    assert_eq!(
        store
            .update_webhook(&next, webhook.updated_at)
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(
        store.webhook(&tenant, webhook.id).await.unwrap(),
        Some(next.clone())
    );
    let cursor = claim(&*store, "node-a", 1).await.remove(0);
    assert_eq!(
        (cursor.attempt, cursor.failing_since, cursor.next_attempt_at),
        (0, None, None),
        "a new URL is tried at once"
    );

    // Skipping events not of its types moves the cursor and never back.
    assert!(store
        .skip_webhook_events("node-a", webhook.id, 7)
        .await
        .unwrap());
    assert!(!store
        .skip_webhook_events("node-a", webhook.id, 5)
        .await
        .unwrap());
    assert_eq!(claim(&*store, "node-a", 2).await[0].delivered_seq, 7);
}

async fn a_tenant_has_at_most_the_limit_of_webhooks(backend: Backend) {
    let (_db, store, tenant) = store_with_tenant(backend).await;
    let other = add_tenant(&*store).await;
    for n in 0..MAX_WEBHOOKS_PER_TENANT {
        insert(
            &*store,
            &new_webhook(&tenant, &format!("http://h{n}.example/"), &[]),
            "whsec_c2VjcmV0",
        )
        .await;
    }
    let extra = new_webhook(&tenant, "http://extra.example/", &[]);
    assert_eq!(
        store
            .insert_webhook(&extra, &SecretString::from("whsec_c2VjcmV0"))
            .await
            .unwrap(),
        WriteOutcome::LimitReached
    );
    assert_eq!(store.webhook(&tenant, extra.id).await.unwrap(), None);
    assert_eq!(
        store.webhooks(&tenant).await.unwrap().len(),
        MAX_WEBHOOKS_PER_TENANT
    );
    // Another tenant's count is its own.
    insert(
        &*store,
        &new_webhook(&other, "http://o.example/", &[]),
        "whsec_bw==",
    )
    .await;
}

async fn rekey_reseals_webhook_secrets(backend: Backend) {
    let db = TestDb::new(backend);
    let old = MasterKey::generate();
    let store = trunkline_store::open(&db.url, Sealer::new(&old, &[]))
        .await
        .unwrap();
    let tenant = add_tenant(&*store).await;
    let webhook = new_webhook(&tenant, "http://hooks.example/", &[]);
    insert(&*store, &webhook, "whsec_cmVrZXk=").await;
    store.close().await;

    let new = MasterKey::generate();
    let store = trunkline_store::open(&db.url, Sealer::new(&new, &[old]))
        .await
        .unwrap();
    let report = store.rekey(REKEY_BATCH).await.unwrap();
    assert_eq!(report.resealed, 1);
    store.close().await;

    // Without the old key, the secret still opens.
    let store = trunkline_store::open(&db.url, Sealer::new(&new, &[]))
        .await
        .unwrap();
    let held = claim(&*store, "node-a", 0).await;
    assert_eq!(held[0].secret.expose_secret(), "whsec_cmVrZXk=");
    store.close().await;
}

on_both_backends!(
    a_new_webhook_starts_after_the_events_already_there,
    claims_are_leases_and_a_node_taken_over_writes_nothing,
    attempts_move_the_cursor_keep_the_newest_and_running_out_disables,
    updates_are_optimistic_and_a_new_url_retries_at_once,
    a_tenant_has_at_most_the_limit_of_webhooks,
    rekey_reseals_webhook_secrets,
);
