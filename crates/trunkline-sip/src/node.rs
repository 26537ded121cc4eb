//! The process's SIP node: one thread with a current-thread runtime, one rsipstack endpoint
//! ([`SipEndpoint`]: UDP+TCP on `sip.listen`, TLS on `sip.tls_listen`), and what runs on it —
//! the outbound registration engine ([`crate::engine`], `outbound.enabled`) and the inbound
//! registrar ([`crate::registrar`], `registrar.enabled`), either without the other.
//!
//! Requests sent to us are dispatched by method here ([`dispatch`]): REGISTER to the
//! registrar, OPTIONS answered `200 OK`, anything else `405 Method Not Allowed` with `Allow`.
//!
//! Everything SIP runs on this one thread: a REGISTER passes timer → exchange → transport →
//! transaction → engine (or transaction → registrar) as task switches, not cross-thread
//! wake-ups, which were most of the engine's CPU on the multi-threaded runtime the HTTP API
//! uses. Store work runs on the caller's (the API's) runtime.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use trunkline_core::events::ChangeEvent;
use trunkline_core::health::Heartbeat;
use trunkline_core::live::StatusBoard;
use trunkline_core::ownership::{Ownership, OwnershipChange};
use trunkline_core::store::Store;

use crate::engine::{self, EngineSettings};
use crate::registrar::{Registrar, RegistrarSettings};
use crate::transport::{SipEndpoint, TransportError, TransportSettings};

/// How long the SIP thread waits, each time it runs out of work, before it sleeps until the
/// next datagram or timer: what arrives meanwhile (a registrar's answers to a burst of
/// refreshes, devices' REGISTERs) is then handled in one wake-up instead of one each.
/// Interrupt moderation, as network cards do it; at most this much latency.
const PARK_COALESCE: Duration = Duration::from_millis(5);

/// The outbound engine's part of a node.
pub struct EnginePart {
    pub settings: EngineSettings,
    pub board: Arc<StatusBoard>,
    pub events: broadcast::Receiver<ChangeEvent>,
    pub heartbeat: Arc<Heartbeat>,
    /// When nodes share the database: this node's leases and their changes; `None`: the
    /// engine registers every registration.
    pub ownership: Option<(Arc<Ownership>, mpsc::UnboundedReceiver<OwnershipChange>)>,
}

/// The inbound registrar's part of a node.
pub struct RegistrarPart {
    pub settings: RegistrarSettings,
    pub events: broadcast::Receiver<ChangeEvent>,
}

/// The running node.
pub struct SipNode {
    sip: Arc<SipEndpoint>,
    stop: CancellationToken,
    /// Fires when the SIP thread has finished (its runtime and every SIP task dropped).
    finished: oneshot::Receiver<()>,
}

impl SipNode {
    /// Binds the endpoint on a thread of its own and starts the parts given. The engine is
    /// supervised (see [`crate::engine`]); the registrar answers each REGISTER in a task of
    /// its own, so a panic in one ends that request only.
    pub async fn start(
        transport: TransportSettings,
        store: Arc<dyn Store>,
        engine: Option<EnginePart>,
        registrar: Option<RegistrarPart>,
    ) -> Result<Self, TransportError> {
        // Database work stays on the caller's runtime.
        let store_runtime = tokio::runtime::Handle::current();
        let (ready_tx, ready) = oneshot::channel();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let (finished_tx, finished) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(|| std::thread::sleep(PARK_COALESCE))
            .build()
            .map_err(TransportError::Thread)?;
        std::thread::Builder::new()
            .name("trunkline-sip".into())
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                local.block_on(
                    &runtime,
                    run(
                        transport,
                        store,
                        store_runtime,
                        engine,
                        registrar,
                        ready_tx,
                        stopped,
                    ),
                );
                drop(local);
                drop(runtime);
                let _ = finished_tx.send(());
            })
            .map_err(TransportError::Thread)?;
        let sip = ready.await.map_err(|_| {
            TransportError::Thread(std::io::Error::other("the SIP thread ended at start"))
        })??;
        Ok(Self {
            sip,
            stop,
            finished,
        })
    }

    /// Where the endpoint listens.
    pub fn endpoint(&self) -> &SipEndpoint {
        &self.sip
    }

    /// Stops: the engine unregisters every live binding (if configured) within its deadline,
    /// the registrar finishes the writes under way; then the endpoint closes.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.finished.await;
    }
}

/// The SIP thread's whole life.
async fn run(
    transport: TransportSettings,
    store: Arc<dyn Store>,
    store_runtime: tokio::runtime::Handle,
    engine: Option<EnginePart>,
    registrar: Option<RegistrarPart>,
    ready: oneshot::Sender<Result<Arc<SipEndpoint>, TransportError>>,
    stop: CancellationToken,
) {
    let (sip, closed) = match SipEndpoint::bind(&transport).await {
        Ok((sip, closed)) => (Arc::new(sip), closed),
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    tracing::info!(udp = %sip.udp, tcp = %sip.tcp, tls = ?sip.tls, "SIP endpoint listening");
    if ready.send(Ok(sip.clone())).is_err() {
        sip.shutdown();
        return;
    }
    let registrar = registrar.map(|part| {
        Registrar::new(
            part.settings,
            store.clone(),
            store_runtime.clone(),
            part.events,
        )
    });
    match sip.endpoint.incoming_transactions() {
        Ok(incoming) => {
            tokio::task::spawn_local(dispatch(incoming, registrar.clone()));
        }
        Err(err) => tracing::error!(error = %err, "cannot take the SIP endpoint's requests"),
    }
    let engine = async {
        if let Some(part) = engine {
            let (ownership, changes) = part.ownership.unzip();
            engine::supervise::run_engine(
                part.settings,
                engine::Storage {
                    store: store.clone(),
                    board: part.board,
                    runtime: store_runtime.clone(),
                    ownership,
                },
                engine::supervise::Feeds {
                    events: part.events,
                    ownership: changes,
                    closed,
                },
                sip.clone(),
                stop.clone(),
                part.heartbeat,
            )
            .await;
        }
    };
    let registrar = async {
        if let Some(registrar) = registrar {
            registrar.run(stop.clone()).await;
        }
    };
    tokio::join!(engine, registrar);
    sip.shutdown();
}

/// The methods we answer, for `Allow`.
fn allow(registrar: bool) -> Header {
    Header::Allow(
        if registrar {
            "REGISTER, OPTIONS"
        } else {
            "OPTIONS"
        }
        .into(),
    )
}

/// Hands every request sent to us to whoever answers its method.
async fn dispatch(
    mut incoming: rsipstack::transaction::TransactionReceiver,
    registrar: Option<Rc<Registrar>>,
) {
    while let Some(mut tx) = incoming.recv().await {
        match (&tx.original.method, &registrar) {
            (Method::Register, Some(registrar)) => {
                tokio::task::spawn_local(registrar.clone().handle(tx));
            }
            (Method::Options, _) => {
                let allow = allow(registrar.is_some());
                reply(&mut tx, StatusCode::OK, vec![allow]).await;
            }
            // An ACK has no answer (rsipstack absorbs those of our own final responses).
            (Method::Ack, _) => {}
            _ => {
                let allow = allow(registrar.is_some());
                reply(&mut tx, StatusCode::MethodNotAllowed, vec![allow]).await;
            }
        }
    }
}

async fn reply(tx: &mut Transaction, code: StatusCode, headers: Vec<Header>) {
    if let Err(err) = tx.reply_with(code, headers, None).await {
        tracing::debug!(error = %err, "cannot answer an incoming SIP request");
    }
}
