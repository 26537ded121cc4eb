//! The deliverer: which webhooks this node delivers for, and a worker task for each. A claim
//! round (`Store::claim_webhooks`) takes enabled webhooks nobody else holds and renews this
//! node's hold on the rest; it runs every `claim_every`, and soon after new events (a webhook
//! created a moment ago gets its first event without waiting for the round). Workers of
//! webhooks no longer held or enabled are stopped; a worker whose webhook changed through the
//! API is handed the new version. On a clean stop every worker ends and the holds are
//! released, so another node takes over at once rather than after the hold lapses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trunkline_core::outbox::WebhookCursor;
use trunkline_core::store::Store;
use trunkline_core::Timestamp;
use uuid::Uuid;

use crate::destination::DenyList;
use crate::worker::{Shared, Worker};

/// How the deliverer runs.
#[derive(Debug, Clone)]
pub struct DelivererSettings {
    /// This node's id: the holder named in the claims.
    pub node_id: String,
    /// `events.webhook_retry_secs`: how long an event is retried before the endpoint is
    /// disabled.
    pub retry_window: Duration,
    /// `outbound.deny_networks`: never a destination.
    pub deny_networks: Vec<IpNet>,
    /// How long a claim holds (renewed every `claim_every`).
    pub hold: Duration,
    pub claim_every: Duration,
}

/// Claims never come closer together than this, however many wake-ups arrive.
const CLAIM_SPACING: Duration = Duration::from_secs(1);
/// How long a clean stop waits for the workers to end before it releases the holds.
const STOP_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The running deliverer; [`Deliverer::shutdown`] stops it cleanly.
pub struct Deliverer {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Deliverer {
    /// Starts delivering on the current runtime.
    pub fn start(store: Arc<dyn Store>, settings: DelivererSettings) -> Result<Self, StartError> {
        let deny = DenyList::new(settings.deny_networks.clone());
        let client = crate::delivery::client(deny.clone()).map_err(StartError::Client)?;
        let shared = Shared {
            store,
            node: settings.node_id.clone(),
            client,
            deny,
            retry_window: settings.retry_window,
            heads: Arc::new(Mutex::new(HashMap::new())),
        };
        let stop = CancellationToken::new();
        let supervisor = Supervisor {
            shared,
            settings,
            workers: HashMap::new(),
            stop: stop.clone(),
        };
        Ok(Self {
            stop,
            task: tokio::spawn(supervisor.run()),
        })
    }

    /// Stops every worker (an attempt in flight is abandoned and made again later) and
    /// releases this node's holds.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(err) = self.task.await {
            tracing::warn!(error = %err, "the webhook deliverer ended abnormally");
        }
    }
}

struct WorkerHandle {
    updates: watch::Sender<WebhookCursor>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

struct Supervisor {
    shared: Shared,
    settings: DelivererSettings,
    workers: HashMap<Uuid, WorkerHandle>,
    stop: CancellationToken,
}

impl Supervisor {
    async fn run(mut self) {
        let mut wakeups = self.shared.store.event_wakeups();
        let mut wakeups_open = true;
        let every = self.settings.claim_every.max(Duration::from_millis(100));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_claim = Instant::now();
        // A claim due soon after a wake-up, spaced from the last one.
        let mut claim_at: Option<Instant> = None;
        loop {
            let soon = async {
                match claim_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tick.tick() => {}
                _ = soon => {}
                changed = wakeups.changed(), if wakeups_open => {
                    if changed.is_err() {
                        wakeups_open = false;
                    }
                    claim_at = Some(claim_at.unwrap_or(last_claim + CLAIM_SPACING));
                    continue;
                }
            }
            claim_at = None;
            last_claim = Instant::now();
            self.round().await;
        }
        self.stop_all().await;
    }

    /// One claim round: take or renew, then start, update or stop workers to match.
    async fn round(&mut self) {
        let now = Timestamp::now();
        let held = match self
            .shared
            .store
            .claim_webhooks(&self.shared.node, now, now.plus(self.settings.hold))
            .await
        {
            Ok(held) => held,
            Err(err) => {
                // Workers go on; their writes are fenced should another node take over.
                tracing::warn!(error = %err, "cannot claim webhooks; retrying next round");
                return;
            }
        };
        let held: HashMap<Uuid, WebhookCursor> =
            held.into_iter().map(|c| (c.webhook.id, c)).collect();
        self.workers.retain(|id, worker| {
            let keep = held.contains_key(id) && !worker.task.is_finished();
            if !keep {
                worker.stop.cancel();
            }
            keep
        });
        for (id, cursor) in held {
            match self.workers.get(&id) {
                Some(worker) => {
                    // Only an API change (a new version) is news to a running worker: the
                    // cursor it holds is newer than the row read here.
                    worker.updates.send_if_modified(|current| {
                        let changed = current.webhook.updated_at != cursor.webhook.updated_at;
                        if changed {
                            *current = cursor;
                        }
                        changed
                    });
                }
                None => self.spawn(cursor),
            }
        }
        self.report_oldest(now);
    }

    fn spawn(&mut self, cursor: WebhookCursor) {
        let id = cursor.webhook.id;
        let (updates, receiver) = watch::channel(cursor);
        let stop = self.stop.child_token();
        let worker = Worker::new(self.shared.clone(), receiver, stop.clone());
        let task = tokio::spawn(worker.run());
        self.workers.insert(
            id,
            WorkerHandle {
                updates,
                stop,
                task,
            },
        );
    }

    /// `trunkline_webhook_oldest_undelivered_seconds`: the age of the oldest event a webhook
    /// of this node is still trying to deliver (0 when all are caught up).
    fn report_oldest(&self, now: Timestamp) {
        let oldest = self.shared.heads().values().min().copied();
        let age = oldest.map_or(0.0, |at| {
            (now.micros().saturating_sub(at.micros())).max(0) as f64 / 1e6
        });
        metrics::gauge!("trunkline_webhook_oldest_undelivered_seconds").set(age);
    }

    async fn stop_all(&mut self) {
        for worker in self.workers.values() {
            worker.stop.cancel();
        }
        let tasks = self.workers.drain().map(|(_, worker)| worker.task);
        let all = join_in_turn(tasks);
        if tokio::time::timeout(STOP_WAIT, all).await.is_err() {
            tracing::warn!("webhook workers still running at shutdown");
        }
        if let Err(err) = self.shared.store.release_webhooks(&self.shared.node).await {
            tracing::warn!(error = %err, "cannot release this node's webhooks");
        }
    }
}

/// Awaits every task in turn (they were all told to stop; the order does not matter).
async fn join_in_turn(tasks: impl Iterator<Item = JoinHandle<()>>) {
    for task in tasks.collect::<Vec<_>>() {
        let _ = task.await;
    }
}
