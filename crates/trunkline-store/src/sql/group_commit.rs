// Included into each backend module as `group_commit`: creates gathered into shared write
// transactions ("group commit"), so that concurrent creates pay for one commit (one fsync on
// SQLite with `synchronous = FULL`) between them instead of one each.
//
// One task per store owns the queue: it takes every create waiting (at most `MAX_BATCH`),
// inserts them in one transaction and commits, then answers each caller with its own row's
// outcome. A caller is answered only after the transaction holding its row committed, so an
// `Ok` means the row is durable, as it did when each create committed alone. While one batch
// commits the next one gathers; nothing waits on a timer, so a lone create is written at once.
//
// One row's refusal by a constraint (a duplicate key, a missing tenant) fails that row only:
// on SQLite a failed statement is undone alone and the transaction goes on; on PostgreSQL, where
// any error aborts the transaction, each row is inside a savepoint (`SAVEPOINT_PER_ROW`). Any
// other error (I/O, a lost connection, a failed commit) fails every row of the batch, and none
// of them is written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::error::ErrorKind;
use sqlx::{Pool, Transaction};
use tokio::sync::{mpsc, oneshot};
use trunkline_core::StoreError;

use super::{begin_write, Db, SAVEPOINT_PER_ROW};
use crate::common::db;

/// Most rows one transaction holds.
const MAX_BATCH: usize = 64;

/// Creates queued for the writer; beyond this, callers wait to be queued.
const QUEUE: usize = 1024;

/// An Ultravox registration's row, its password already sealed.
pub(crate) struct NewRegistration {
    pub(crate) id: String,
    pub(crate) tenant: String,
    pub(crate) username: String,
    pub(crate) proxy: String,
    pub(crate) outbound_proxy: Option<String>,
    pub(crate) auth_user: Option<String>,
    pub(crate) password_sealed: Vec<u8>,
    pub(crate) password_key_id: String,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

/// A row the writer inserts on a caller's behalf.
pub(crate) enum Insert {
    Registration(NewRegistration),
}

struct Job {
    insert: Insert,
    answer: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle to a store's group-commit writer; the writer stops once this is dropped and
/// the creates queued before have been answered.
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Job>,
    commits: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the writer on `writer`, the pool write transactions are taken from.
    pub(crate) fn start(writer: Pool<Db>) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(writer, jobs, commits.clone()));
        Self { queue, commits }
    }

    /// Inserts `insert` and returns once it is committed, or why it was not.
    pub(crate) async fn insert(&self, insert: Insert) -> Result<(), StoreError> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Job { insert, answer })
            .await
            .map_err(|_| StoreError::Database("the store's writer has stopped".into()))?;
        answered.await.map_err(|_| {
            StoreError::Database("the store's writer stopped before answering".into())
        })?
    }

    /// Transactions committed so far (a lone create counts as one).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

async fn run(writer: Pool<Db>, mut queue: mpsc::Receiver<Job>, commits: Arc<AtomicU64>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        match write(&writer, &jobs).await {
            Ok(outcomes) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for (job, outcome) in jobs.drain(..).zip(outcomes) {
                    // A caller that stopped waiting (its request was dropped) needs no answer.
                    let _ = job.answer.send(outcome);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, rows = jobs.len(), "a group of creates failed");
                for job in jobs.drain(..) {
                    let _ = job.answer.send(Err(StoreError::Database(err.to_string())));
                }
            }
        }
    }
}

/// Writes `jobs` in one transaction: each row's own outcome once it committed, or the error
/// that left all of them unwritten.
async fn write(
    writer: &Pool<Db>,
    jobs: &[Job],
) -> Result<Vec<Result<(), StoreError>>, sqlx::Error> {
    if let [job] = jobs {
        // Alone: one statement, committed on its own; no transaction to open and close.
        let mut conn = writer.acquire().await?;
        return match execute(&mut conn, &job.insert).await {
            Ok(()) => Ok(vec![Ok(())]),
            Err(err) if refused(&err) => Ok(vec![Err(db(err))]),
            Err(err) => Err(err),
        };
    }
    let mut tx: Transaction<'static, Db> = begin_write(writer).await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        if SAVEPOINT_PER_ROW {
            sqlx::query("SAVEPOINT grouped_row")
                .execute(&mut *tx)
                .await?;
        }
        match execute(&mut tx, &job.insert).await {
            Ok(()) => outcomes.push(Ok(())),
            Err(err) if refused(&err) => {
                if SAVEPOINT_PER_ROW {
                    sqlx::query("ROLLBACK TO SAVEPOINT grouped_row")
                        .execute(&mut *tx)
                        .await?;
                }
                outcomes.push(Err(db(err)));
            }
            // Dropping `tx` rolls the whole group back.
            Err(err) => return Err(err),
        }
        if SAVEPOINT_PER_ROW {
            sqlx::query("RELEASE SAVEPOINT grouped_row")
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Whether a constraint refused this one row (the transaction can go on without it).
fn refused(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if matches!(
        e.kind(),
        ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation
    ))
}

async fn execute(
    conn: &mut <Db as sqlx::Database>::Connection,
    insert: &Insert,
) -> Result<(), sqlx::Error> {
    match insert {
        Insert::Registration(r) => {
            sqlx::query(
                "INSERT INTO registrations (id, tenant_id, username, proxy, outbound_proxy, \
                 auth_user, password_sealed, password_key_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&r.id)
            .bind(&r.tenant)
            .bind(&r.username)
            .bind(&r.proxy)
            .bind(&r.outbound_proxy)
            .bind(&r.auth_user)
            .bind(&r.password_sealed)
            .bind(&r.password_key_id)
            .bind(r.created_at)
            .bind(r.updated_at)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}
