//! Batched status and history writes: the engine hands over every status change at once; a writer task
//! coalesces them per registration and writes each batch in one transaction, so a wave of
//! 10,000 registrations is a few dozen database transactions, not 20,000.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use trunkline_core::model::{RegistrationAttempt, RegistrationStatus};
use trunkline_core::service::HISTORY_LENGTH;
use trunkline_core::store::Store;
use trunkline_core::AccountId;
use uuid::Uuid;

/// How long changes gather before a batch is written.
const BATCH_WINDOW: Duration = Duration::from_millis(50);

enum Message {
    Put(AccountId, Uuid, RegistrationStatus),
    Attempts(Vec<RegistrationAttempt>),
    Close(tokio::sync::oneshot::Sender<()>),
}

pub struct StatusWriter {
    sender: mpsc::UnboundedSender<Message>,
}

impl StatusWriter {
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(store, receiver));
        Self { sender }
    }

    pub fn put(&self, tenant: &AccountId, id: Uuid, status: RegistrationStatus) {
        let _ = self.sender.send(Message::Put(tenant.clone(), id, status));
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

#[derive(Default)]
struct Pending {
    statuses: HashMap<Uuid, (AccountId, RegistrationStatus)>,
    attempts: Vec<RegistrationAttempt>,
}

impl Pending {
    /// Takes a message in; the close signal is handed back.
    fn take(&mut self, message: Message) -> Option<tokio::sync::oneshot::Sender<()>> {
        match message {
            Message::Put(tenant, id, status) => {
                self.statuses.insert(id, (tenant, status));
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
                        Some(Some(done)) => { flush(&store, &mut pending).await; let _ = done.send(()); return; }
                        None => break,
                    },
                    _ = &mut deadline => break,
                }
            }
        }
        flush(&store, &mut pending).await;
        if let Some(done) = closing {
            let _ = done.send(());
            return;
        }
    }
}

async fn flush(store: &Arc<dyn Store>, pending: &mut Pending) {
    if !pending.statuses.is_empty() {
        let batch: Vec<_> = pending
            .statuses
            .drain()
            .map(|(id, (tenant, status))| (tenant, id, status))
            .collect();
        if let Err(err) = store.put_registration_statuses(&batch).await {
            tracing::error!(error = %err, count = batch.len(), "cannot write registration status");
        }
    }
    if !pending.attempts.is_empty() {
        let attempts = std::mem::take(&mut pending.attempts);
        if let Err(err) = store.record_attempts(&attempts, HISTORY_LENGTH).await {
            tracing::error!(error = %err, count = attempts.len(), "cannot write registration history");
        }
    }
}
