//! Group commit of binding changes: concurrent REGISTERs hand their changes to one writer
//! task, which stores everything that queued up meanwhile in one transaction and then answers
//! each. A REGISTER is answered only after its changes are on disk, and the disk sees one
//! commit (one fsync) per batch instead of one per REGISTER.
//!
//! The task runs on the store's runtime (the API's), not the SIP thread.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use trunkline_core::model::BindingChange;
use trunkline_core::store::Store;

/// Most changes written in one transaction.
const MAX_BATCH: usize = 2_000;

/// The write failed (the store's error, already logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteFailed;

struct Job {
    changes: Vec<BindingChange>,
    done: oneshot::Sender<Result<(), WriteFailed>>,
}

#[derive(Clone)]
pub struct BindingWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl BindingWriter {
    pub fn start(runtime: &tokio::runtime::Handle, store: Arc<dyn Store>) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        runtime.spawn(run(store, queue));
        Self { jobs }
    }

    /// Stores `changes`; resolves once they are committed (or the commit failed).
    pub async fn write(&self, changes: Vec<BindingChange>) -> Result<(), WriteFailed> {
        if changes.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job { changes, done })
            .map_err(|_| WriteFailed)?;
        committed.await.unwrap_or(Err(WriteFailed))
    }
}

async fn run(store: Arc<dyn Store>, mut queue: mpsc::UnboundedReceiver<Job>) {
    let batches = metrics::histogram!("trunkline_registrar_write_batch_size");
    let failures = metrics::counter!("trunkline_registrar_write_failures_total");
    let mut jobs = Vec::new();
    let mut changes = Vec::new();
    while let Some(first) = queue.recv().await {
        jobs.push(first);
        let mut count = jobs[0].changes.len();
        while count < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => {
                    count += job.changes.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        for job in &mut jobs {
            changes.append(&mut job.changes);
        }
        let result = store.write_binding_changes(&changes).await;
        batches.record(jobs.len() as f64);
        let outcome = match result {
            Ok(()) => Ok(()),
            Err(err) => {
                failures.increment(1);
                tracing::error!(error = %err, registers = jobs.len(), "cannot store bindings");
                Err(WriteFailed)
            }
        };
        for job in jobs.drain(..) {
            let _ = job.done.send(outcome);
        }
        changes.clear();
    }
}
