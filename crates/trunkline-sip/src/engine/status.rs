//! Status and history writes (and, through them, the `registration.*` events the store
//! appends in the same transactions). The engine changes a registration's [`LiveStatus`] in place,
//! and the live [`StatusBoard`] shows it at once; changes that matter after a restart (not
//! routine refreshes) are also handed to a writer task that coalesces them per registration
//! and writes each batch, as the statuses are when it is written, as one transaction of two
//! multi-row statements (status upsert, history ring write), so a wave of 10,000
//! registrations is a few dozen database transactions, not 20,000; routine refreshes reach
//! the table through the engine's sweep, a slice of the registrations per batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use trunkline_core::live::{LiveStatus, StatusBoard};
use trunkline_core::model::{
    OutboundRegistration, RegistrationAttempt, RegistrationState, RegistrationStatus,
};
use trunkline_core::outbox::StatusWrite;
use trunkline_core::service::HISTORY_LENGTH;
use trunkline_core::store::Store;
use trunkline_core::Timestamp;
use uuid::Uuid;

/// How long changes gather before a batch is written.
const BATCH_WINDOW: Duration = Duration::from_millis(50);

enum Message {
    Put(Arc<OutboundRegistration>, Arc<LiveStatus>),
    /// Deleted or disabled, and unregistered: the last status, announced as removed.
    Removed(Arc<OutboundRegistration>, RegistrationStatus),
    Attempts(Vec<RegistrationAttempt>),
    Close(tokio::sync::oneshot::Sender<()>),
}

pub struct StatusWriter {
    sender: mpsc::UnboundedSender<Message>,
    board: Arc<StatusBoard>,
}

impl StatusWriter {
    /// Starts the writer task on `runtime` (not the SIP thread; see `Core::store_runtime`).
    pub fn start(
        runtime: &tokio::runtime::Handle,
        store: Arc<dyn Store>,
        board: Arc<StatusBoard>,
    ) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        runtime.spawn(write_batches(store, receiver));
        Self { sender, board }
    }

    /// The live status the board already holds for a registration (left by an engine that
    /// panicked), for the restarted engine to carry on with.
    pub fn tracked(&self, id: Uuid) -> Option<Arc<LiveStatus>> {
        self.board.live(id)
    }

    /// Forgets the board's entries for registrations the engine no longer holds.
    pub fn retain_tracked(&self, keep: impl FnMut(Uuid) -> bool) {
        self.board.retain(keep);
    }

    /// The engine holds a registration: its live status shows on the board from now on.
    pub fn track(&self, id: Uuid, status: Arc<LiveStatus>) {
        self.board.track(id, status);
    }

    /// A status change that matters after a restart: to the table in the next batch (the
    /// board shows it already).
    pub fn save(&self, registration: &Arc<OutboundRegistration>, status: &Arc<LiveStatus>) {
        let _ = self
            .sender
            .send(Message::Put(registration.clone(), status.clone()));
    }

    /// The engine is done with a registration that was deleted or disabled (unregistered if it
    /// was bound): its last status goes to the table as `disabled` with nothing bound, and
    /// `registration.removed` is announced.
    pub fn removed(&self, registration: &Arc<OutboundRegistration>, status: &LiveStatus) {
        let mut last = status.snapshot();
        last.state = RegistrationState::Disabled;
        last.expires_at = None;
        last.next_attempt_at = None;
        last.updated_at = Timestamp::now();
        let _ = self
            .sender
            .send(Message::Removed(registration.clone(), last));
    }

    /// The engine forgot a registration: its live status goes (the table's row goes with the
    /// registration itself).
    pub fn forget(&self, id: Uuid) {
        self.board.remove(id);
    }

    /// Appends REGISTER transactions to the history, in the next batch.
    pub fn record(&self, attempts: Vec<RegistrationAttempt>) {
        if !attempts.is_empty() {
            let _ = self.sender.send(Message::Attempts(attempts));
        }
    }

    /// Writes what is pending and stops.
    pub async fn close(self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.sender.send(Message::Close(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// A registration's status waiting for the next batch.
enum Entry {
    /// Written as it is when the batch is written.
    Live(Arc<LiveStatus>),
    Removed(RegistrationStatus),
}

#[derive(Default)]
struct Pending {
    statuses: HashMap<Uuid, (Arc<OutboundRegistration>, Entry)>,
    attempts: Vec<RegistrationAttempt>,
}

impl Pending {
    /// Takes a message in; the close signal is handed back.
    fn take(&mut self, message: Message) -> Option<tokio::sync::oneshot::Sender<()>> {
        match message {
            Message::Put(registration, status) => {
                self.statuses
                    .insert(registration.id, (registration, Entry::Live(status)));
                None
            }
            Message::Removed(registration, last) => {
                self.statuses
                    .insert(registration.id, (registration, Entry::Removed(last)));
                None
            }
            Message::Attempts(attempts) => {
                self.attempts.extend(attempts);
                None
            }
            Message::Close(done) => Some(done),
        }
    }
}

async fn write_batches(store: Arc<dyn Store>, mut receiver: mpsc::UnboundedReceiver<Message>) {
    let mut pending = Pending::default();
    loop {
        let closing = match receiver.recv().await {
            Some(message) => pending.take(message),
            None => return,
        };
        if closing.is_none() {
            // Gather whatever else arrives within the window.
            let deadline = tokio::time::sleep(BATCH_WINDOW);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    message = receiver.recv() => match message.map(|m| pending.take(m)) {
                        Some(None) => {}
                        Some(Some(done)) => { flush(&store, &mut pending, true).await; let _ = done.send(()); return; }
                        None => break,
                    },
                    _ = &mut deadline => break,
                }
            }
        }
        flush(&store, &mut pending, closing.is_some()).await;
        if let Some(done) = closing {
            let _ = done.send(());
            return;
        }
    }
}

/// Writes the pending batch; a batch that fails is kept and retried with a doubling pause,
/// never dropped while the engine runs (what arrives meanwhile waits in the channel for the
/// next batch; statuses are written as they are at the time of writing). Each failure is
/// counted in `trunkline_status_write_failures_total`. At shutdown it gives up after
/// [`CLOSE_RETRY_LIMIT`], so a dead database cannot hold the process.
async fn flush(store: &Arc<dyn Store>, pending: &mut Pending, closing: bool) {
    let mut entries = Vec::with_capacity(pending.statuses.len());
    let mut statuses = Vec::with_capacity(pending.statuses.len());
    for (_, (registration, entry)) in pending.statuses.drain() {
        let (status, removed) = match &entry {
            Entry::Live(live) => (live.snapshot(), false),
            Entry::Removed(last) => (last.clone(), true),
        };
        statuses.push(StatusWrite {
            tenant: registration.tenant.clone(),
            id: registration.id,
            public_id: registration.public_id(),
            kind: registration.kind(),
            status,
            removed,
        });
        entries.push(entry);
    }
    let mut pause = RETRY_PAUSE_MIN;
    let give_up = tokio::time::Instant::now() + CLOSE_RETRY_LIMIT;
    loop {
        let Err(err) = store
            .write_registration_batch(&statuses, &pending.attempts, HISTORY_LENGTH)
            .await
        else {
            pending.attempts.clear();
            return;
        };
        metrics::counter!("trunkline_status_write_failures_total").increment(1);
        tracing::error!(
            error = %err,
            statuses = statuses.len(),
            attempts = pending.attempts.len(),
            retry_in_ms = pause.as_millis() as u64,
            "cannot write registration status and history; will retry"
        );
        if closing && tokio::time::Instant::now() + pause > give_up {
            tracing::error!(
                statuses = statuses.len(),
                "giving up on the last status batch at shutdown"
            );
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RETRY_PAUSE_MAX);
        // Written as they are by the time of the retry.
        for (row, entry) in statuses.iter_mut().zip(&entries) {
            if let Entry::Live(live) = entry {
                row.status = live.snapshot();
            }
        }
    }
}

/// Pause before retrying a failed batch: doubling from the first to the last.
const RETRY_PAUSE_MIN: Duration = Duration::from_millis(250);
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(10);
/// How long the last batch is retried at shutdown.
const CLOSE_RETRY_LIMIT: Duration = Duration::from_secs(3);
