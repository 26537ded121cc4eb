//! One webhook's deliveries, in a task of its own: the tenant's events after the cursor, one at
//! a time in `seq` order; events not of its types are passed over (`skip_webhook_events`); an
//! event is retried on the schedule (`schedule`) until delivered or the endpoint is disabled.
//! Every attempt is recorded with the cursor in one store write fenced by the node's hold: when
//! that write is refused (the hold was taken over, the webhook disabled or deleted), the worker
//! stops. A slow or dead endpoint only ever holds up this task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use trunkline_core::outbox::{DeliveryAttempt, StoredEvent, WebhookCursor};
use trunkline_core::store::Store;
use trunkline_core::Timestamp;
use uuid::Uuid;

use crate::delivery::{self, Message};
use crate::destination::DenyList;
use crate::schedule;
use crate::signing::Signer;

/// Events read per query.
const BATCH: u32 = 100;
/// Delivery attempts kept per webhook.
pub const KEEP: u32 = trunkline_core::service::DELIVERIES_KEPT;
/// With nothing to deliver, the outbox is read again this often even without a wake-up (an
/// event written by another process on the same SQLite file wakes nobody here).
const REREAD: Duration = Duration::from_secs(5);
/// After a store error, the next try.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// What every worker of a deliverer shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub node: String,
    pub client: Client,
    pub deny: DenyList,
    /// `events.webhook_retry_secs`.
    pub retry_window: Duration,
    /// When each webhook's oldest undelivered event happened (for the gauge).
    pub heads: Arc<Mutex<HashMap<Uuid, Timestamp>>>,
}

impl Shared {
    /// The gauge's map. A worker that panicked while holding it leaves a map that is still
    /// whole (every change is one insert or remove), so it is used as it is rather than
    /// stopping every other webhook's worker with a second panic.
    pub(crate) fn heads(&self) -> MutexGuard<'_, HashMap<Uuid, Timestamp>> {
        self.heads.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a worker ended.
enum Stop {
    /// Shut down, or no longer held (the deliverer said so).
    Told,
    /// The store refused its write: taken over, disabled or deleted.
    Fenced,
}

pub(crate) struct Worker {
    shared: Shared,
    cursor: WebhookCursor,
    /// The claims' latest view of this webhook (an API change is adopted from here).
    updates: watch::Receiver<WebhookCursor>,
    stop: CancellationToken,
}

impl Worker {
    pub fn new(
        shared: Shared,
        updates: watch::Receiver<WebhookCursor>,
        stop: CancellationToken,
    ) -> Self {
        let cursor = updates.borrow().clone();
        Self {
            shared,
            cursor,
            updates,
            stop,
        }
    }

    pub async fn run(mut self) {
        let id = self.cursor.webhook.id;
        let ended = self.deliver_all().await;
        self.shared.heads().remove(&id);
        if matches!(ended, Stop::Fenced) {
            tracing::debug!(webhook = %id, "webhook no longer held or enabled; its worker stops");
        }
    }

    async fn deliver_all(&mut self) -> Stop {
        let mut wakeups = self.shared.store.event_wakeups();
        loop {
            self.adopt_changes();
            let signer = match Signer::new(&self.cursor.secret) {
                Ok(signer) => signer,
                Err(err) => {
                    tracing::error!(webhook = %self.cursor.webhook.id, error = %err,
                        "webhook secret unusable; not delivering");
                    if let Some(stop) = self.wait(None, Duration::MAX).await {
                        return stop;
                    }
                    continue;
                }
            };
            if let Some(due) = self.cursor.next_attempt_at {
                let wait = micros_until(due);
                if !wait.is_zero() {
                    if let Some(stop) = self.wait(None, wait).await {
                        return stop;
                    }
                    continue;
                }
            }
            let events = match self
                .shared
                .store
                .events_after(
                    &self.cursor.webhook.tenant,
                    self.cursor.delivered_seq,
                    &[],
                    BATCH,
                )
                .await
            {
                Ok(events) => events,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read events for a webhook; retrying");
                    if let Some(stop) = self.wait(None, STORE_RETRY).await {
                        return stop;
                    }
                    continue;
                }
            };
            if events.is_empty() {
                self.shared.heads().remove(&self.cursor.webhook.id);
                wakeups.borrow_and_update();
                if let Some(stop) = self.wait(Some(&mut wakeups), REREAD).await {
                    return stop;
                }
                continue;
            }
            if let Some(stop) = self.work_through(&events, &signer).await {
                return stop;
            }
        }
    }

    /// Delivers `events` in order until one fails (its retry is then due later) or the
    /// webhook changed; `Some` when the worker must stop.
    async fn work_through(&mut self, events: &[StoredEvent], signer: &Signer) -> Option<Stop> {
        let mut skipped = None;
        for event in events {
            if self.stop.is_cancelled() {
                return Some(Stop::Told);
            }
            if self.updates.has_changed().unwrap_or(false) {
                break;
            }
            if !self.cursor.webhook.wants(event.kind) {
                skipped = Some(event.seq);
                continue;
            }
            if let Some(seq) = skipped.take() {
                if let Some(stop) = self.skip_to(seq).await {
                    return Some(stop);
                }
            }
            self.shared.heads().insert(self.cursor.webhook.id, event.at);
            match self.deliver(event, signer).await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(stop) => return Some(stop),
            }
        }
        if let Some(seq) = skipped {
            return self.skip_to(seq).await;
        }
        None
    }

    /// Moves the cursor past events not of the webhook's types.
    async fn skip_to(&mut self, seq: u64) -> Option<Stop> {
        let id = self.cursor.webhook.id;
        match self
            .shared
            .store
            .skip_webhook_events(&self.shared.node, id, seq)
            .await
        {
            Ok(true) => {
                self.cursor.delivered_seq = seq;
                self.cursor.attempt = 0;
                self.cursor.failing_since = None;
                self.cursor.next_attempt_at = None;
                None
            }
            Ok(false) => Some(Stop::Fenced),
            Err(err) => {
                tracing::warn!(webhook = %id, error = %err, "cannot move a webhook's cursor");
                self.wait(None, STORE_RETRY).await
            }
        }
    }

    /// One attempt at `event`, recorded: `Ok(true)` delivered, `Ok(false)` failed (retry
    /// later) or not recorded, `Err` to stop.
    async fn deliver(&mut self, event: &StoredEvent, signer: &Signer) -> Result<bool, Stop> {
        let body = event.body_json();
        let now = Timestamp::now();
        let message = Message {
            id: &event.id,
            body: &body,
            timestamp: now.micros().div_euclid(1_000_000),
        };
        let attempted = tokio::select! {
            attempted = delivery::attempt(
                &self.shared.client,
                &self.shared.deny,
                &self.cursor.webhook.url,
                signer,
                &message,
            ) => attempted,
            // An attempt cut short is not recorded: the event is sent again (at least once).
            _ = self.stop.cancelled() => return Err(Stop::Told),
        };
        let outcome = attempted.outcome.as_str();
        metrics::counter!("trunkline_webhook_deliveries_total", "outcome" => outcome).increment(1);
        metrics::histogram!(crate::DELIVERY_METRIC).record(attempted.duration.as_secs_f64());
        let attempt = self.cursor.attempt.saturating_add(1);
        let cursor = match &attempted.error {
            None => schedule::after_success(event.seq),
            Some(error) => schedule::after_failure(
                self.cursor.delivered_seq,
                attempt,
                self.cursor.failing_since,
                Timestamp::now(),
                self.shared.retry_window,
                error,
                &mut rand::thread_rng(),
            ),
        };
        let record = DeliveryAttempt {
            webhook_id: self.cursor.webhook.id,
            tenant: self.cursor.webhook.tenant.clone(),
            event_id: event.id.clone(),
            event_seq: event.seq,
            kind: event.kind,
            attempt,
            status_code: attempted.status,
            duration_ms: u64::try_from(attempted.duration.as_millis()).unwrap_or(u64::MAX),
            error: attempted.error.clone(),
            at: now,
            next_attempt_at: cursor.next_attempt_at,
        };
        if let Some(reason) = &cursor.disable {
            tracing::warn!(webhook = %self.cursor.webhook.id, tenant = %self.cursor.webhook.tenant,
                %reason, "webhook disabled: its retries ran out");
        } else if let Some(error) = &attempted.error {
            tracing::info!(webhook = %self.cursor.webhook.id, event = %event.id, attempt,
                %error, "webhook delivery failed");
        }
        match self
            .shared
            .store
            .record_delivery(&self.shared.node, &record, &cursor, KEEP)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(Stop::Fenced),
            Err(err) => {
                // The cursor stays where the store has it: the event is tried again.
                tracing::warn!(webhook = %self.cursor.webhook.id, error = %err,
                    "cannot record a webhook delivery");
                return match self.wait(None, STORE_RETRY).await {
                    Some(stop) => Err(stop),
                    None => Ok(false),
                };
            }
        }
        if cursor.disable.is_some() {
            return Err(Stop::Fenced);
        }
        self.cursor.delivered_seq = cursor.delivered_seq;
        self.cursor.attempt = cursor.attempt;
        self.cursor.failing_since = cursor.failing_since;
        self.cursor.next_attempt_at = cursor.next_attempt_at;
        Ok(attempted.error.is_none())
    }

    /// Takes the claims' view when the webhook was changed through the API (its version
    /// moved): URL, types, enabled, and where the store says its deliveries stand.
    fn adopt_changes(&mut self) {
        let latest = self.updates.borrow_and_update();
        if latest.webhook.updated_at != self.cursor.webhook.updated_at {
            self.cursor = latest.clone();
        }
    }

    /// Waits `for_at_most`, or for a wake-up, a change of the webhook or the stop; `Some`
    /// when stopped.
    async fn wait(
        &mut self,
        wakeups: Option<&mut watch::Receiver<u64>>,
        for_at_most: Duration,
    ) -> Option<Stop> {
        let sleep = tokio::time::sleep(for_at_most.min(Duration::from_secs(86_400)));
        let woken = async {
            match wakeups {
                // A closed channel (the store is going away) wakes nobody.
                Some(wakeups) => {
                    if wakeups.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.stop.cancelled() => Some(Stop::Told),
            _ = sleep => None,
            _ = woken => None,
            changed = self.updates.changed() => match changed {
                Ok(()) => None,
                Err(_) => Some(Stop::Told),
            },
        }
    }
}

/// How long until `due` (zero when past).
fn micros_until(due: Timestamp) -> Duration {
    let left = due.micros().saturating_sub(Timestamp::now().micros());
    Duration::from_micros(u64::try_from(left).unwrap_or(0))
}
