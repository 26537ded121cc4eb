//! The outbound registration engine.
//!
//! One task owns every registration's state ([`Slot`]) and one timer queue; it starts an
//! exchange ([`Exchange::run`]) when a registration is due, and applies the outcome when the
//! exchange completes. Exchanges are futures the engine task polls itself (one per REGISTER
//! in flight), never a task per registration. Changes reach the engine as [`ChangeEvent`]s
//! from the services; the store is re-read for the registration concerned. Every status
//! change is made in place on the registration's [`LiveStatus`], which the services read
//! through the [`StatusBoard`]; outcomes also go to the store through a batching writer
//! ([`status::StatusWriter`]), routine refreshes through a sweep (see [`is_routine_refresh`]).
//!
//! Rules (see ARCHITECTURE.md and RFC 3261 §10.2): stable Call-ID and increasing CSeq per
//! registration; refresh per [`policy::refresh_delay`] (late in the granted expiry, never
//! sooner than `min_refresh`); every number a registrar sends bounded by [`policy::Bounds`];
//! 423 → retry with `Min-Expires`; 401/407 answered once per attempt; a fresh challenge to our
//! answer (not `stale`) or a 403 → `failed_auth`, retried only after a change or
//! `failed_auth_retry`; timeouts, transport errors, 408, 5xx, 6xx → exponential backoff with
//! full jitter, honouring `Retry-After` up to its cap; initial REGISTERs spread over a ramp of
//! `ramp_per_sec`. The engine is supervised ([`supervise`]) and reconciled with the store
//! every `reconcile_interval`.

mod exchange;
mod status;
pub(crate) mod supervise;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};

use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::time::{delay_queue, DelayQueue};
use trunkline_core::events::{ChangeEvent, ChangeOp, EntityKind};
use trunkline_core::health::Heartbeat;
use trunkline_core::live::{LiveStatus, StatusBoard};
use trunkline_core::model::{
    FailedBy, OutboundRegistration, RecordedBinding, RegistrationState, RegistrationStatus,
    Transport,
};
use trunkline_core::ownership::{Ownership, OwnershipChange};
use trunkline_core::store::Store;
use trunkline_core::{AccountId, Timestamp};
use uuid::Uuid;

use crate::digest::DigestSession;
use crate::policy;
use crate::target::Addressing;
use crate::transport::SipEndpoint;
use exchange::{Exchange, ExchangeResult, Outcome};
use status::StatusWriter;
use supervise::{Suspects, HEARTBEAT_INTERVAL};

/// Engine settings (from `sip.*` and `outbound.*`).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub ramp_per_sec: u32,
    pub unregister_on_shutdown: bool,
    pub shutdown_deadline: Duration,
    pub failed_auth_retry: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Expiry asked for in each REGISTER.
    pub requested_expires: u32,
    /// What a registrar's numbers are held to.
    pub bounds: policy::Bounds,
    /// How often the slots are compared with the store (`outbound.reconcile_secs`).
    pub reconcile_interval: Duration,
}

/// Where the engine's state goes: the store, the live board, and the runtime that runs the
/// store's work.
pub(crate) struct Storage {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) board: Arc<StatusBoard>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// When nodes share the database: the registrations this node holds leases for (the only
    /// ones it registers). `None`: all of them.
    pub(crate) ownership: Option<Arc<Ownership>>,
}

/// One registration's state.
struct Slot {
    /// Shared with the binding made from it (no copy per binding).
    registration: Arc<OutboundRegistration>,
    /// Where to register, or why the registration cannot be: the failed state to show and
    /// its phrase ([`addressing_of`]).
    addressing: Result<Arc<Addressing>, (RegistrationState, String)>,
    /// Shared with each exchange (no copy per REGISTER).
    call_id: Arc<str>,
    from_tag: Arc<str>,
    cseq: u32,
    /// Moved into an exchange while one is in flight.
    digest: Option<DigestSession>,
    /// Shared with the live board, changed in place.
    status: Arc<LiveStatus>,
    /// The Contact this registration's exchanges build, kept between them.
    own_contact: Option<(Transport, Arc<str>)>,
    /// Taken over from a node that died: its Contact, removed by our next REGISTER.
    stale_contact: Option<Arc<str>>,
    /// The Contact last recorded in the database for the node that may take over (only where
    /// nodes share the database).
    recorded_contact: Option<Arc<str>>,
    /// The binding the registrar holds for us (what to remove on unregister).
    bound: Option<Bound>,
    timer: Option<delay_queue::Key>,
    /// The remembered challenge came in a 407 (answer with `Proxy-Authorization`).
    proxy_auth: bool,
    in_flight: bool,
    /// What to do when the exchange in flight returns.
    after_flight: AfterFlight,
    /// The status changed on the live board only (routine refreshes) since it last went to
    /// the table.
    unsaved: bool,
    /// How the last exchange ended on the wire ([`ExchangeResult::signature`]).
    last_exchange: u64,
    /// Deleted or disabled: when the engine lets go of it, `registration.removed` is
    /// announced (not when it is only handed to another node).
    gone: bool,
}

#[derive(Clone)]
struct Bound {
    addressing: Arc<Addressing>,
    contact: Arc<str>,
    expires_at: Instant,
    /// Where and how the binding was made (the connection to watch over TCP/TLS).
    remote: Option<SocketAddr>,
    transport: Transport,
    /// The values the binding was made with: an unregister must authenticate as they did.
    made_with: Arc<OutboundRegistration>,
}

/// How often the per-state gauges are refreshed.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);

/// Refresh and retry times are rounded up to this grid (ramp slots are not): a few due
/// REGISTERs per wake-up instead of one, at most this much later than their jittered time.
const TIMER_GRID: Duration = Duration::from_millis(100);

/// How often a slice of the registrations has its live-only changes (routine refreshes) saved
/// to the status table.
const SAVE_LIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Slices swept in turn: each registration is saved within a minute, and a sweep stays small
/// (no burst of 10,000 rows and their buffers). A slice is a contiguous range of ids, which
/// the status table keeps together on disk ([`save_slice`]).
const SAVE_LIVE_SLICES: u128 = 12;

/// How often idle TCP/TLS connections to registrars get a CRLF keepalive (RFC 5626 §4.4.1;
/// at most every 120 s).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterFlight {
    Nothing,
    /// The registration changed: register again with its new values.
    Refresh,
    /// It was deleted: unregister and forget.
    Remove,
}

/// The next change of this node's leases; never, when there are none.
async fn next_ownership_change(
    changes: &mut Option<mpsc::UnboundedReceiver<OwnershipChange>>,
) -> Option<OwnershipChange> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

/// How long a REGISTER waits when this node's leases may have lapsed, before it is tried again.
const LEASE_WAIT: Duration = Duration::from_secs(1);

/// What background store reads hand back to the engine task.
enum Load {
    /// Re-read these registrations (their trunk changed).
    Reload(AccountId, Vec<Uuid>),
    /// A registration as re-read after a change (`None`: gone, or no longer registering).
    /// Applied only if `ticket` is still the latest reload asked for it, so results that
    /// arrive out of order, or after a deletion, are dropped.
    Loaded {
        id: Uuid,
        ticket: u64,
        registration: Option<OutboundRegistration>,
    },
    /// Every registration (the start-up load, retried after a failure).
    All(Vec<OutboundRegistration>),
    /// Every registration's tenant, id and version, read for a periodic reconcile (`None`: the
    /// read failed).
    Reconcile(Option<Vec<(AccountId, Uuid, Timestamp)>>),
    /// Registrations leased to this node, with the Contacts other nodes recorded for them:
    /// the Contacts are set aside before the registrations are loaded, so the first REGISTER
    /// of each removes its dead node's Contact.
    Gained {
        leases: Vec<(AccountId, Uuid)>,
        contacts: Vec<(Uuid, String)>,
    },
}

struct Core {
    settings: EngineSettings,
    store: Arc<dyn Store>,
    ownership: Option<Arc<Ownership>>,
    /// Contacts of gained registrations whose slot is not made yet (see `Load::Gained`).
    pending_stale: HashMap<Uuid, Arc<str>>,
    /// The runtime store calls run on (the HTTP API's), not the SIP thread: rows stream from
    /// SQLite's thread in small chunks, and the SIP thread waits a moment before each
    /// sleep, which made loading 10,000 registrations take a second instead of 0.1 s.
    store_runtime: tokio::runtime::Handle,
    sip: Arc<SipEndpoint>,
    slots: HashMap<Uuid, Slot>,
    queue: DelayQueue<Uuid>,
    /// The exchanges in flight, polled by the engine task itself.
    exchanges: FuturesUnordered<Pin<Box<dyn Future<Output = ExchangeResult>>>>,
    loads_tx: mpsc::UnboundedSender<Load>,
    /// The latest reload ticket per registration with a reload under way.
    reloading: HashMap<Uuid, u64>,
    next_ticket: u64,
    /// While a reconcile's read is under way: the registrations changed since it began, which
    /// it leaves alone (the change events have the newer word on them).
    changed_since_reconcile: Option<HashSet<Uuid>>,
    status: StatusWriter,
    /// Earliest start for the next initial REGISTER (the ramp).
    next_ramp_slot: Instant,
    /// The origin of the timer grid.
    started: Instant,
    metrics: ExchangeMetrics,
    suspects: Rc<Suspects>,
}

/// Handles to the per-REGISTER metrics, looked up once rather than per REGISTER.
struct ExchangeMetrics {
    /// `trunkline_register_responses_total` by final code (`None`: `local`).
    responses: HashMap<Option<u16>, metrics::Counter>,
    duration: metrics::Histogram,
}

impl ExchangeMetrics {
    fn new() -> Self {
        Self {
            responses: HashMap::new(),
            duration: metrics::histogram!("trunkline_register_duration_seconds"),
        }
    }

    fn response(&mut self, code: Option<u16>) -> &metrics::Counter {
        self.responses.entry(code).or_insert_with(|| {
            let label = code.map_or_else(|| "local".to_owned(), |code| code.to_string());
            metrics::counter!("trunkline_register_responses_total", "code" => label)
        })
    }
}

impl Core {
    /// A fresh engine over `storage` (at start, and after a panic); what it receives from
    /// background store reads comes through the returned channel.
    fn new(
        settings: EngineSettings,
        storage: &Storage,
        sip: Arc<SipEndpoint>,
        suspects: Rc<Suspects>,
    ) -> (Self, mpsc::UnboundedReceiver<Load>) {
        let (loads_tx, loads) = mpsc::unbounded_channel();
        let core = Core {
            settings,
            store: storage.store.clone(),
            ownership: storage.ownership.clone(),
            pending_stale: HashMap::new(),
            status: StatusWriter::start(
                &storage.runtime,
                storage.store.clone(),
                storage.board.clone(),
            ),
            store_runtime: storage.runtime.clone(),
            sip,
            slots: HashMap::new(),
            queue: DelayQueue::new(),
            exchanges: FuturesUnordered::new(),
            loads_tx,
            reloading: HashMap::new(),
            next_ticket: 0,
            changed_since_reconcile: None,
            next_ramp_slot: Instant::now(),
            started: Instant::now(),
            metrics: ExchangeMetrics::new(),
            suspects,
        };
        (core, loads)
    }

    /// Runs until `stop`, then unregisters and flushes ([`Core::shutdown`]).
    async fn run(
        (mut core, mut loads): (Self, mpsc::UnboundedReceiver<Load>),
        events: &mut broadcast::Receiver<ChangeEvent>,
        ownership: &mut Option<mpsc::UnboundedReceiver<OwnershipChange>>,
        closed: &mut mpsc::UnboundedReceiver<SocketAddr>,
        stop: &CancellationToken,
        heartbeat: &Heartbeat,
    ) {
        heartbeat.beat();
        core.load_all().await;
        core.status
            .retain_tracked(|id| core.slots.contains_key(&id));
        let mut keepalive = tokio::time::interval(KEEPALIVE_INTERVAL);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut save_live = tokio::time::interval(SAVE_LIVE_INTERVAL);
        save_live.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beat = tokio::time::interval(HEARTBEAT_INTERVAL);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reconcile_every = core.settings.reconcile_interval.max(Duration::from_secs(1));
        let mut reconcile =
            tokio::time::interval_at(Instant::now() + reconcile_every, reconcile_every);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_slice = 0;
        loop {
            tokio::select! {
                _ = beat.tick() => heartbeat.beat(),
                _ = save_live.tick() => {
                    core.save_live_changes(Some(next_slice));
                    next_slice = (next_slice + 1) % SAVE_LIVE_SLICES;
                }
                Some(remote) = closed.recv() => core.connection_closed(remote),
                _ = keepalive.tick() => core.send_keepalives(),
                _ = housekeeping.tick() => core.housekeeping(),
                _ = reconcile.tick() => core.start_reconcile(),
                Some(expired) = std::future::poll_fn(|cx| core.queue.poll_expired(cx)), if !core.queue.is_empty() => {
                    let id = expired.into_inner();
                    if let Some(slot) = core.slots.get_mut(&id) {
                        slot.timer = None;
                    }
                    core.start_exchange(id, false);
                }
                Some(result) = core.exchanges.next(), if !core.exchanges.is_empty() => core.finish_exchange(result),
                Some(load) = loads.recv() => core.on_load(load),
                Some(change) = next_ownership_change(ownership) => core.on_ownership(change),
                event = events.recv() => match event {
                    Ok(event) => core.on_change(event),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "engine missed change events; reloading everything");
                        core.load_all().await;
                    }
                    Err(broadcast::error::RecvError::Closed) => {}
                },
                _ = stop.cancelled() => break,
            }
        }
        core.shutdown().await;
    }

    /// Loads every registration (start, or after missed events).
    async fn load_all(&mut self) {
        let store = self.store.clone();
        let loaded = match self
            .store_runtime
            .spawn(async move { store.outbound_registrations().await })
            .await
        {
            Ok(result) => result.map_err(|err| err.to_string()),
            Err(join) => Err(join.to_string()),
        };
        match loaded {
            Ok(registrations) => self.adopt_all(registrations),
            Err(err) => {
                tracing::error!(error = %err, "cannot load registrations; retrying in 5 s");
                let retry = self.loads_tx.clone();
                let store = self.store.clone();
                self.store_runtime.spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        match store.outbound_registrations().await {
                            Ok(all) => {
                                let _ = retry.send(Load::All(all));
                                return;
                            }
                            Err(err) => tracing::error!(error = %err, "cannot load registrations"),
                        }
                    }
                });
            }
        }
    }

    /// Makes the slots match the full set: new ones scheduled along the ramp, changed ones
    /// re-registered, vanished ones unregistered.
    fn adopt_all(&mut self, registrations: Vec<OutboundRegistration>) {
        tracing::info!(count = registrations.len(), "registrations loaded");
        let present: HashSet<Uuid> = registrations.iter().map(|r| r.id).collect();
        let vanished: Vec<Uuid> = self
            .slots
            .keys()
            .filter(|id| !present.contains(id))
            .copied()
            .collect();
        for id in vanished {
            self.remove(id, true);
        }
        for registration in registrations {
            self.apply(registration);
        }
    }

    fn on_load(&mut self, load: Load) {
        match load {
            Load::Reload(tenant, ids) => {
                for id in ids {
                    self.reload(tenant.clone(), id);
                }
            }
            Load::Loaded {
                id,
                ticket,
                registration,
            } => {
                if self.reloading.get(&id) != Some(&ticket) {
                    return;
                }
                self.reloading.remove(&id);
                match registration {
                    Some(registration) => self.apply(registration),
                    None => self.remove(id, true),
                }
            }
            Load::All(registrations) => self.adopt_all(registrations),
            Load::Reconcile(registrations) => self.reconcile(registrations),
            Load::Gained { leases, contacts } => {
                for (id, contact) in contacts {
                    if !self.owns(id) {
                        continue; // lost again meanwhile
                    }
                    let contact: Arc<str> = contact.into();
                    match self.slots.get_mut(&id) {
                        Some(slot) => slot.stale_contact = Some(contact),
                        None => {
                            self.pending_stale.insert(id, contact);
                        }
                    }
                }
                for (tenant, id) in leases {
                    if self.owns(id) {
                        self.reload(tenant, id);
                    }
                }
            }
        }
    }

    /// Reads every registration's version in the background to compare with the slots
    /// ([`Core::reconcile`]): the safety net under change events that never came. Versions
    /// only, so no password is opened and no registration built for the rows that did not
    /// drift (see bench/RESULTS.md, run 4, for what the reconcile costs).
    fn start_reconcile(&mut self) {
        if self.changed_since_reconcile.is_some() {
            return; // the last one is still reading
        }
        self.changed_since_reconcile = Some(HashSet::new());
        let store = self.store.clone();
        let loads = self.loads_tx.clone();
        let holder = self.ownership.as_ref().map(|o| o.node_id().to_owned());
        self.store_runtime.spawn(async move {
            match store
                .outbound_registration_versions(holder.as_deref())
                .await
            {
                Ok(all) => {
                    let _ = loads.send(Load::Reconcile(Some(all)));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read registrations to reconcile");
                    let _ = loads.send(Load::Reconcile(None));
                }
            }
        });
    }

    /// Makes the slots match the store where they drifted: a registration missing or older
    /// than its row is re-read ([`Core::reload`]), one that should be gone is removed; those
    /// changed while the read was under way are left to their change events. Each fix is
    /// counted in `trunkline_engine_reconcile_fixes_total`.
    fn reconcile(&mut self, versions: Option<Vec<(AccountId, Uuid, Timestamp)>>) {
        let (Some(changed), Some(mut versions)) = (self.changed_since_reconcile.take(), versions)
        else {
            return;
        };
        versions.retain(|(_, id, _)| self.owns(*id));
        let present: HashSet<Uuid> = versions.iter().map(|(_, id, _)| *id).collect();
        let vanished: Vec<Uuid> = self
            .slots
            .keys()
            .filter(|id| !present.contains(id) && !changed.contains(id))
            .copied()
            .collect();
        let mut fixes: Vec<(Uuid, &'static str)> = Vec::new();
        // On one node, vanished means deleted (or no longer registering): announced as
        // removed. Where nodes share the database it may also mean a lease that moved before
        // this node heard of it, which is no removal: nothing is announced from here then
        // (deletions reach every node as change events, and are announced from those).
        let gone = self.ownership.is_none();
        for id in vanished {
            fixes.push((id, "vanished"));
            self.remove(id, gone);
        }
        for (tenant, id, version) in versions {
            if changed.contains(&id) || self.reloading.contains_key(&id) {
                continue;
            }
            let drift = match self.slots.get(&id) {
                None => "missing",
                Some(slot) if slot.registration.version < version => "stale",
                Some(_) => continue,
            };
            fixes.push((id, drift));
            self.reload(tenant, id);
        }
        for (id, drift) in fixes {
            tracing::warn!(%id, drift, "engine drifted from the store; fixed by the reconcile");
            metrics::counter!("trunkline_engine_reconcile_fixes_total", "drift" => drift)
                .increment(1);
        }
    }

    fn insert(&mut self, registration: OutboundRegistration) {
        let id = registration.id;
        let slot = Slot {
            addressing: addressing_of(&registration),
            call_id: format!("{}@trunkline", Uuid::new_v4().simple()).into(),
            from_tag: Uuid::new_v4().simple().to_string()[..12].into(),
            cseq: 0,
            digest: Some(DigestSession::new()),
            // After a restart, what was last known stays shown until the new outcome.
            status: self
                .status
                .tracked(id)
                .unwrap_or_else(|| LiveStatus::new(RegistrationStatus::pending(Timestamp::now()))),
            own_contact: None,
            stale_contact: self.pending_stale.remove(&id),
            recorded_contact: None,
            bound: None,
            timer: None,
            proxy_auth: false,
            in_flight: false,
            after_flight: AfterFlight::Nothing,
            unsaved: false,
            last_exchange: 0,
            gone: false,
            registration: Arc::new(registration),
        };
        self.status.track(id, slot.status.clone());
        self.slots.insert(id, slot);
        let at = self.ramp_slot();
        self.schedule_at(id, at);
    }

    /// The next start time on the ramp for an initial REGISTER.
    fn ramp_slot(&mut self) -> Instant {
        let now = Instant::now();
        let at = self.next_ramp_slot.max(now);
        let step = Duration::from_secs_f64(1.0 / f64::from(self.settings.ramp_per_sec.max(1)));
        self.next_ramp_slot = at + step;
        at
    }

    /// Sets a registration's timer; never further out than [`policy::MAX_TIMER`], whatever
    /// the caller computed (the timer queue panics on deadlines about two years out).
    fn schedule_at(&mut self, id: Uuid, at: Instant) {
        let at = at.min(Instant::now() + policy::MAX_TIMER);
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        match slot.timer.take() {
            Some(key) => {
                self.queue.reset_at(&key, at);
                slot.timer = Some(key);
            }
            None => slot.timer = Some(self.queue.insert_at(id, at)),
        }
    }

    fn cancel_timer(&mut self, id: Uuid) {
        if let Some(key) = self.slots.get_mut(&id).and_then(|slot| slot.timer.take()) {
            self.queue.remove(&key);
        }
    }

    fn on_change(&mut self, event: ChangeEvent) {
        if let Some(changed) = self.changed_since_reconcile.as_mut() {
            changed.insert(event.id);
        }
        match (event.kind, event.op) {
            (EntityKind::Registration | EntityKind::PhoneNumber, ChangeOp::Deleted) => {
                self.remove(event.id, true);
            }
            (EntityKind::Registration | EntityKind::PhoneNumber, _) => {
                self.reload(event.tenant, event.id);
            }
            (EntityKind::Trunk, ChangeOp::Updated) => {
                let store = self.store.clone();
                let loads = self.loads_tx.clone();
                self.store_runtime.spawn(async move {
                    match store
                        .registering_numbers_of_trunk(&event.tenant, event.id)
                        .await
                    {
                        Ok(numbers) => {
                            let _ = loads.send(Load::Reload(event.tenant, numbers));
                        }
                        Err(err) => tracing::error!(error = %err, "cannot list a trunk's numbers"),
                    }
                });
            }
            _ => {}
        }
    }

    /// Re-reads one registration in the background; see [`Load::Loaded`]. Not one another
    /// node holds: every node hears of every change, and only the holder reads it (one that
    /// nobody holds yet is read by the node that claims it).
    fn reload(&mut self, tenant: AccountId, id: Uuid) {
        if !self.owns(id) {
            return;
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.reloading.insert(id, ticket);
        let store = self.store.clone();
        let loads = self.loads_tx.clone();
        self.store_runtime.spawn(async move {
            match store.outbound_registration(&tenant, id).await {
                Ok(registration) => {
                    let _ = loads.send(Load::Loaded {
                        id,
                        ticket,
                        registration,
                    });
                }
                Err(err) => tracing::error!(error = %err, %id, "cannot reload a registration"),
            }
        });
    }

    /// Takes in a registration's current values: new → scheduled, changed → re-registered.
    fn apply(&mut self, registration: OutboundRegistration) {
        let id = registration.id;
        if !self.owns(id) {
            // Another node's (a load that raced a lost or released lease).
            self.drop_slot(id);
            return;
        }
        let Some(slot) = self.slots.get_mut(&id) else {
            // New: register at once (still respecting the ramp).
            self.insert(registration);
            return;
        };
        if registration.version <= slot.registration.version {
            return;
        }
        let addressing = addressing_of(&registration);
        slot.registration = Arc::new(registration);
        slot.addressing = addressing;
        slot.own_contact = None;
        // A changed registration starts a new digest session: no remembered challenge and no
        // downgrade guard (the operator may have moved it to a registrar that only speaks
        // MD5). One in flight is reset when it comes back (`apply_outcome`).
        if let Some(digest) = slot.digest.as_mut() {
            digest.reset();
        }
        // The failure belongs to the old values: the new ones are being tried.
        {
            let mut status = slot.status.lock();
            status.consecutive_failures = 0;
            if status.state.is_failed() {
                status.state = RegistrationState::Registering;
                status.updated_at = Timestamp::now();
            }
        }
        if slot.in_flight {
            slot.after_flight = AfterFlight::Refresh;
            return;
        }
        self.cancel_timer(id);
        self.register_changed(id);
    }

    /// Registers a registration's new values at once; a binding for another address of record
    /// (or registrar, or route) is removed first.
    fn register_changed(&mut self, id: Uuid) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let moved = match (&slot.bound, &slot.addressing) {
            (Some(bound), Ok(new)) => {
                bound.expires_at > Instant::now() && !same_binding(&bound.addressing, new)
            }
            (Some(bound), Err(_)) => bound.expires_at > Instant::now(),
            (None, _) => false,
        };
        if moved {
            slot.after_flight = AfterFlight::Refresh;
            self.start_exchange(id, true);
        } else {
            self.start_exchange(id, false);
        }
    }

    /// A TCP/TLS connection closed: the registrations bound over it re-register at once.
    fn connection_closed(&mut self, remote: SocketAddr) {
        let affected: Vec<Uuid> =
            self.slots
                .iter()
                .filter(|(_, slot)| {
                    !slot.in_flight
                        && slot.bound.as_ref().is_some_and(|b| {
                            b.remote == Some(remote) && b.transport != Transport::Udp
                        })
                })
                .map(|(id, _)| *id)
                .collect();
        if !affected.is_empty() {
            tracing::info!(%remote, count = affected.len(), "connection to registrar closed; re-registering");
        }
        for id in affected {
            self.cancel_timer(id);
            self.start_exchange(id, false);
        }
    }

    /// Per-state gauges.
    fn housekeeping(&self) {
        let mut counts: HashMap<RegistrationState, u64> = HashMap::new();
        for slot in self.slots.values() {
            *counts.entry(slot.status.lock().state).or_default() += 1;
        }
        for state in RegistrationState::ALL {
            metrics::gauge!("trunkline_registrations", "state" => state.as_str())
                .set(counts.get(&state).copied().unwrap_or(0) as f64);
        }
    }

    /// One CRLF keepalive per distinct TCP/TLS connection that carries a live binding.
    fn send_keepalives(&self) {
        let now = Instant::now();
        let targets: HashSet<(Transport, SocketAddr)> = self
            .slots
            .values()
            .filter_map(|slot| slot.bound.as_ref())
            .filter(|b| b.expires_at > now && b.transport != Transport::Udp)
            .filter_map(|b| Some((b.transport, b.remote?)))
            .collect();
        for (transport, remote) in targets {
            let sip = self.sip.clone();
            tokio::spawn(async move { sip.keepalive(transport, remote).await });
        }
    }

    /// Deleted or disabled (`gone`), or handed to another node: unregister the binding if
    /// there is one, then forget the registration.
    fn remove(&mut self, id: Uuid, gone: bool) {
        // A reload still under way would bring back what was deleted.
        self.reloading.remove(&id);
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        slot.gone |= gone;
        if slot.in_flight {
            slot.after_flight = AfterFlight::Remove;
            return;
        }
        self.cancel_timer(id);
        let bound = self.slots.get(&id).and_then(|slot| slot.bound.clone());
        match bound {
            Some(bound) if bound.expires_at > Instant::now() => self.start_exchange(id, true),
            _ => self.forget(id),
        }
    }

    /// Starts a REGISTER (or an unregister, `Expires: 0`) for a registration.
    fn start_exchange(&mut self, id: Uuid, unregister: bool) {
        let outer = self.suspects.handling.replace(Some(id));
        self.start_exchange_for(id, unregister);
        self.suspects.handling.set(outer);
    }

    fn start_exchange_for(&mut self, id: Uuid, unregister: bool) {
        // Where nodes share the database: no REGISTER starts once this node's leases may have
        // lapsed (it was paused, or could not renew); the lease keeper decides what becomes
        // of them. Tried again in a second, should they be renewed after all. (An unregister
        // removes only this node's own contact, so it may always go.)
        if !unregister
            && self
                .ownership
                .as_ref()
                .is_some_and(|ownership| !ownership.is_fresh())
        {
            self.schedule_at(id, Instant::now() + LEASE_WAIT);
            return;
        }
        if !unregister {
            if let Some(until) = self.suspects.held_until(id) {
                let hold = until.saturating_duration_since(Instant::now());
                self.fail_without_exchange(
                    id,
                    RegistrationState::FailedRegistrar,
                    format!(
                        "held back for {} s: the engine failed while handling this registration",
                        hold.as_secs()
                    ),
                    Some(hold),
                );
                return;
            }
        }
        let requested_expires = self.settings.requested_expires;
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.in_flight {
            return;
        }
        let (addressing, contact_override, values) = if unregister {
            match &slot.bound {
                Some(bound) => (
                    bound.addressing.clone(),
                    Some(bound.contact.clone()),
                    bound.made_with.clone(),
                ),
                None => return,
            }
        } else {
            match &slot.addressing {
                Ok(addressing) => (addressing.clone(), None, slot.registration.clone()),
                Err((state, problem)) => {
                    let (state, problem) = (*state, problem.clone());
                    self.fail_without_exchange(id, state, problem, None);
                    return;
                }
            }
        };
        // A refresh of a live binding keeps showing "registered"; otherwise say we are trying.
        let live = slot
            .bound
            .as_ref()
            .is_some_and(|b| b.expires_at > Instant::now());
        if !live && !unregister {
            // Transient (one round trip): shown live, left to the outcome or the next sweep
            // for the table, which saves a row write per registration in a start-up wave. A
            // retry after a failure keeps showing the failure until it succeeds.
            let mut status = slot.status.lock();
            if !status.state.is_failed() {
                status.state = RegistrationState::Registering;
                status.updated_at = Timestamp::now();
                slot.unsaved = true;
            }
        }
        slot.in_flight = true;
        let exchange = Exchange {
            id,
            rounds: Vec::new(),
            sip: self.sip.clone(),
            addressing,
            contact: contact_override,
            own_contact: slot.own_contact.clone(),
            drop_contact: if unregister {
                None
            } else {
                slot.stale_contact.clone()
            },
            values,
            call_id: slot.call_id.clone(),
            from_tag: slot.from_tag.clone(),
            cseq: slot.cseq,
            digest: slot.digest.take().unwrap_or_default(),
            expires: if unregister { 0 } else { requested_expires },
            bounds: self.settings.bounds,
            proxy_auth: slot.proxy_auth,
        };
        // Polled with this registration named as the one being handled (see [`Suspects`]).
        let suspects = self.suspects.clone();
        let mut run = Box::pin(exchange.run());
        self.exchanges
            .push(Box::pin(std::future::poll_fn(move |cx| {
                suspects.handling.set(Some(id));
                let poll = run.as_mut().poll(cx);
                suspects.handling.set(None);
                poll
            })));
    }

    /// Applies an exchange's outcome (with its registration named as the one being handled;
    /// see [`Suspects`]).
    fn finish_exchange(&mut self, result: ExchangeResult) {
        let outer = self.suspects.handling.replace(Some(result.id));
        self.apply_outcome(result);
        self.suspects.handling.set(outer);
    }

    fn apply_outcome(&mut self, result: ExchangeResult) {
        let id = result.id;
        if let Some(phrase) = result.rounds.last().and_then(|r| r.phrase.as_deref()) {
            trunkline_core::fault::panic_on_phrase(phrase);
        }
        let (failed_auth_retry, backoff_base, backoff_cap, bounds) = (
            self.settings.failed_auth_retry,
            self.settings.backoff_base,
            self.settings.backoff_cap,
            self.settings.bounds,
        );
        self.metrics.response(result.last_code()).increment(1);
        self.metrics.duration.record(result.elapsed.as_secs_f64());
        let Some(slot) = self.slots.get_mut(&id) else {
            // Forgotten while in flight: its history went with it.
            return;
        };
        let signature = result.signature();
        let routine = is_routine_refresh(
            slot.status.lock().state,
            slot.last_exchange,
            signature,
            &result,
        );
        slot.last_exchange = signature;
        if !routine {
            self.status
                .record(result.attempts(&slot.registration.tenant));
        }
        slot.in_flight = false;
        slot.cseq = result.cseq;
        slot.proxy_auth = result.proxy_auth;
        slot.digest = Some(result.digest);
        if result.values_version == slot.registration.version {
            slot.own_contact = result.own_contact;
        } else if let Some(digest) = slot.digest.as_mut() {
            // The registration changed in flight: the contact was built from old values, and
            // the digest session belongs to them.
            digest.reset();
        }
        let now_ts = Timestamp::now();
        let now = Instant::now();
        let mut rng = rand::thread_rng();
        let mut status = slot.status.lock();
        status.last_attempt_at = Some(now_ts);
        status.transport = Some(result.transport);
        // Set only when they change: a refresh allocates nothing that outlives it.
        if status.remote.as_deref().and_then(|r| r.parse().ok()) != result.remote {
            status.remote = result.remote.map(|r| r.to_string());
        }
        status.updated_at = now_ts;
        // The binding now held at the registrar (`Some(None)`: none), for the record below.
        let mut binding_now: Option<Option<(Arc<str>, Timestamp)>> = None;
        let next = match result.outcome {
            Outcome::Registered {
                granted,
                contact,
                code,
                phrase,
            } => {
                let granted_at =
                    Timestamp::from_micros(now_ts.micros() + i64::from(granted) * 1_000_000);
                binding_now = Some(Some((contact.clone(), granted_at)));
                // A dead node's contact went with this request.
                slot.stale_contact = None;
                let made_with = if slot.registration.version == result.values_version {
                    slot.registration.clone()
                } else {
                    // Changed while in flight: the binding was made with the old values; the
                    // pending refresh replaces it.
                    slot.bound
                        .as_ref()
                        .map_or_else(|| slot.registration.clone(), |b| b.made_with.clone())
                };
                slot.bound = Some(Bound {
                    addressing: result.addressing.clone(),
                    contact,
                    expires_at: now + Duration::from_secs(u64::from(granted)),
                    remote: result.remote,
                    transport: result.transport,
                    made_with,
                });
                let delay = policy::refresh_delay(granted, &bounds, &mut rng);
                status.state = RegistrationState::Registered;
                status.last_code = Some(code);
                set_phrase(&mut status.last_phrase, Some(phrase));
                status.failed_by = None;
                status.expires_at = Some(granted_at);
                status.consecutive_failures = 0;
                Some(delay)
            }
            Outcome::Unregistered { code, phrase } => {
                binding_now = Some(None);
                slot.bound = None;
                status.last_code = Some(code);
                set_phrase(&mut status.last_phrase, Some(phrase));
                status.expires_at = None;
                None
            }
            Outcome::Failed {
                state,
                code,
                phrase,
                failed_by,
                retry_after,
            } => {
                status.state = state;
                status.last_code = code;
                set_phrase(&mut status.last_phrase, phrase);
                status.failed_by = Some(failed_by);
                status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                if slot.bound.as_ref().is_some_and(|b| b.expires_at <= now) {
                    slot.bound = None;
                    status.expires_at = None;
                }
                let delay = if state == RegistrationState::FailedAuth {
                    failed_auth_retry
                } else {
                    let backoff = policy::backoff(
                        status.consecutive_failures,
                        backoff_base,
                        backoff_cap,
                        &mut rng,
                    );
                    policy::retry_delay(backoff, retry_after, &bounds)
                };
                Some(delay)
            }
        };
        drop(status);
        // Where nodes share the database, the binding is recorded for whichever node takes the
        // registration over should this one die (written when its Contact changes, not per
        // refresh).
        if let (Some(ownership), Some(binding)) = (&self.ownership, binding_now) {
            let contact = binding.as_ref().map(|(contact, _)| contact.clone());
            if slot.recorded_contact != contact {
                slot.recorded_contact = contact;
                let store = self.store.clone();
                let tenant = slot.registration.tenant.clone();
                let node_id = ownership.node_id().to_owned();
                let record = binding.map(|(contact, expires_at)| RecordedBinding {
                    tenant: tenant.clone(),
                    registration_id: id,
                    node_id: node_id.clone(),
                    contact: contact.to_string(),
                    call_id: slot.call_id.to_string(),
                    cseq: slot.cseq,
                    expires_at,
                });
                self.store_runtime.spawn(async move {
                    let written = match record {
                        Some(record) => store.record_binding(&record).await,
                        None => store.forget_binding(&tenant, id, &node_id).await,
                    };
                    if let Err(err) = written {
                        tracing::warn!(error = %err, %id, "cannot record a registration's binding");
                    }
                });
            }
        }

        match std::mem::replace(&mut slot.after_flight, AfterFlight::Nothing) {
            AfterFlight::Remove => {
                let live = slot.bound.as_ref().is_some_and(|b| b.expires_at > now);
                if live && !result.was_unregister {
                    self.start_exchange(id, true);
                } else {
                    self.forget(id);
                }
                return;
            }
            AfterFlight::Refresh => {
                self.status.save(&slot.registration, &slot.status);
                self.register_changed(id);
                return;
            }
            AfterFlight::Nothing => {}
        }
        if result.was_unregister {
            // Only deletions unregister outside shutdown: forget the registration now.
            self.forget(id);
            return;
        }
        if let Some(delay) = next {
            let at = on_grid(self.started, now + delay.min(policy::MAX_TIMER));
            let delay = at - now;
            slot.status.lock().next_attempt_at = Some(Timestamp::from_micros(
                now_ts.micros() + delay.as_micros() as i64,
            ));
            // A routine refresh is live already; the sweep takes it to the table.
            slot.unsaved = routine;
            if !routine {
                self.status.save(&slot.registration, &slot.status);
            }
            self.schedule_at(id, at);
        }
    }

    /// Brings the status table up to the live board for one slice of the registrations (all
    /// with `None`): routine refreshes' timestamps, written in one batch (a few pages of a
    /// small table) instead of a row per refresh.
    fn save_live_changes(&mut self, slice: Option<u128>) {
        for (id, slot) in &mut self.slots {
            let in_slice = slice.is_none_or(|slice| save_slice(*id) == slice);
            if in_slice && std::mem::take(&mut slot.unsaved) {
                self.status.save(&slot.registration, &slot.status);
            }
        }
    }

    /// Drops a registration's slot and its live status.
    fn forget(&mut self, id: Uuid) {
        if let Some(slot) = self.slots.remove(&id) {
            if slot.gone {
                self.status.removed(&slot.registration, &slot.status);
            }
        }
        self.pending_stale.remove(&id);
        self.status.forget(id);
    }

    /// Whether this node registers `id` (always, unless nodes share the database).
    fn owns(&self, id: Uuid) -> bool {
        self.ownership
            .as_ref()
            .is_none_or(|ownership| ownership.owns(id))
    }

    /// Lets go of a registration without a word to its registrar: its lease may have passed
    /// to another node, which takes the binding over. An exchange in flight finishes, and
    /// its outcome is dropped.
    fn drop_slot(&mut self, id: Uuid) {
        self.reloading.remove(&id);
        self.cancel_timer(id);
        self.forget(id);
    }

    fn on_ownership(&mut self, change: OwnershipChange) {
        match change {
            OwnershipChange::Gained(leases) => {
                tracing::info!(count = leases.len(), "registrations leased to this node");
                // First what a node that died left at the registrars (removed by our first
                // REGISTER), then the registrations themselves: see `Load::Gained`.
                let store = self.store.clone();
                let loads = self.loads_tx.clone();
                self.store_runtime.spawn(async move {
                    let ids: Vec<Uuid> = leases.iter().map(|(_, id)| *id).collect();
                    let contacts = store.bound_contacts(&ids).await.unwrap_or_else(|err| {
                        tracing::warn!(error = %err, "cannot read recorded bindings");
                        Vec::new()
                    });
                    let _ = loads.send(Load::Gained { leases, contacts });
                });
            }
            OwnershipChange::Released(ids) => {
                tracing::info!(count = ids.len(), "registrations handed to other nodes");
                for id in ids {
                    self.remove(id, false);
                }
            }
            OwnershipChange::Lost(ids) => {
                tracing::warn!(count = ids.len(), "leases lost; registering them no more");
                for id in ids {
                    self.drop_slot(id);
                }
            }
        }
    }

    /// A registration that cannot even be addressed (or is held back): report it and retry
    /// after `hold`, else on the backoff.
    fn fail_without_exchange(
        &mut self,
        id: Uuid,
        state: RegistrationState,
        problem: String,
        hold: Option<Duration>,
    ) {
        let settings = self.settings.clone();
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        tracing::warn!(%id, %problem, "registration not attempted");
        let mut status = slot.status.lock();
        status.state = state;
        status.failed_by = Some(FailedBy::Local);
        status.last_code = None;
        set_phrase(&mut status.last_phrase, Some(problem));
        status.consecutive_failures = status.consecutive_failures.saturating_add(1);
        let delay = hold.unwrap_or_else(|| {
            policy::backoff(
                status.consecutive_failures,
                settings.backoff_base,
                settings.backoff_cap,
                &mut rand::thread_rng(),
            )
        });
        let now = Instant::now();
        let at = on_grid(self.started, now + delay.min(policy::MAX_TIMER));
        let delay = at - now;
        let now_ts = Timestamp::now();
        status.updated_at = now_ts;
        status.last_attempt_at = Some(now_ts);
        status.next_attempt_at = Some(Timestamp::from_micros(
            now_ts.micros() + delay.as_micros() as i64,
        ));
        drop(status);
        slot.unsaved = false;
        self.status.save(&slot.registration, &slot.status);
        self.schedule_at(id, at);
    }

    /// Graceful stop: unregister every live binding within the deadline, flush status.
    async fn shutdown(mut self) {
        if self.settings.unregister_on_shutdown {
            let now = Instant::now();
            let mut live = Vec::new();
            for (id, slot) in &mut self.slots {
                slot.after_flight = AfterFlight::Nothing;
                if !slot.in_flight && slot.bound.as_ref().is_some_and(|b| b.expires_at > now) {
                    live.push(*id);
                }
            }
            tracing::info!(
                count = live.len(),
                in_flight = self.exchanges.len(),
                "unregistering before shutdown"
            );
            for id in live {
                self.start_exchange(id, true);
            }
            // Exchanges that were in flight finish first; a binding one of them made (or
            // refreshed) is unregistered too. An unregister answered with a 5xx is tried
            // again after its Retry-After (else a second) while the deadline allows.
            let deadline_at = Instant::now() + self.settings.shutdown_deadline;
            let deadline = tokio::time::sleep_until(deadline_at);
            tokio::pin!(deadline);
            let mut retries = FuturesUnordered::new();
            while !self.exchanges.is_empty() || !retries.is_empty() {
                tokio::select! {
                    Some(id) = retries.next(), if !retries.is_empty() => self.start_exchange(id, true),
                    Some(result) = self.exchanges.next(), if !self.exchanges.is_empty() => {
                        if result.was_unregister {
                            let id = result.id;
                            let retry = unregister_retry(&result.outcome, &self.settings.bounds)
                                .filter(|delay| Instant::now() + *delay < deadline_at);
                            if let Some(slot) = self.slots.get_mut(&id) {
                                slot.in_flight = false;
                                // The next request on this Call-ID must carry a higher CSeq.
                                slot.cseq = result.cseq;
                                slot.digest = Some(result.digest);
                                slot.proxy_auth = result.proxy_auth;
                            }
                            if let Some(delay) = retry {
                                tracing::info!(%id, delay_ms = delay.as_millis() as u64, "unregister refused for now; trying again");
                                retries.push(async move {
                                    tokio::time::sleep(delay).await;
                                    id
                                });
                            }
                            continue;
                        }
                        let id = result.id;
                        self.finish_exchange(result);
                        let bound = self.slots.get(&id).is_some_and(|slot| {
                            slot.bound.as_ref().is_some_and(|b| b.expires_at > Instant::now())
                        });
                        if bound {
                            self.start_exchange(id, true);
                        }
                    }
                    _ = &mut deadline => {
                        tracing::warn!(remaining = self.exchanges.len(), "shutdown deadline reached before every unregister finished");
                        break;
                    }
                }
            }
        }
        self.save_live_changes(None);
        self.status.close().await;
    }
}

/// How long to wait before trying an unregister again: after a `5xx` (the registrar is
/// overloaded or restarting), its `Retry-After` (capped), else a second; nothing else is
/// retried at shutdown.
fn unregister_retry(outcome: &Outcome, bounds: &policy::Bounds) -> Option<Duration> {
    match outcome {
        Outcome::Failed {
            code: Some(500..=599),
            failed_by: FailedBy::Remote,
            retry_after,
            ..
        } => Some(policy::retry_delay(
            Duration::from_secs(1),
            *retry_after,
            bounds,
        )),
        _ => None,
    }
}

/// A refresh that changed nothing but timestamps: while registered, an exchange that ended
/// exactly like the one before it ([`ExchangeResult::signature`]: the final REGISTER's request
/// line, transport, registrar address, response code and phrase), whether or not it had to
/// answer a challenge first, so registrars that challenge every refresh are covered too. It
/// goes to the live board only, not at once to the status table, and not to the history (see
/// [`StatusBoard`]).
fn is_routine_refresh(
    before: RegistrationState,
    last_exchange: u64,
    signature: u64,
    result: &ExchangeResult,
) -> bool {
    matches!(result.outcome, Outcome::Registered { .. })
        && before == RegistrationState::Registered
        && !result.was_unregister
        && last_exchange == signature
}

/// The sweep slice of a registration: its id's place among [`SAVE_LIVE_SLICES`] equal ranges
/// of ids, so a slice is rows that sit together in the status table (clustered on the id,
/// whose text form sorts like the number).
fn save_slice(id: Uuid) -> u128 {
    ((id.as_u128() >> 64) * SAVE_LIVE_SLICES) >> 64
}

/// Replaces a status phrase only when it differs (the usual refresh keeps the string it has),
/// cut to [`MAX_STATUS_PHRASE_CHARS`] (the registrar's own phrase is already cut to 128; this
/// bounds our additions around it).
fn set_phrase(current: &mut Option<String>, new: Option<String>) {
    let new = new.map(|phrase| {
        match crate::message::truncate_chars(&phrase, MAX_STATUS_PHRASE_CHARS).len() {
            len if len < phrase.len() => phrase[..len].to_owned(),
            _ => phrase,
        }
    });
    if *current != new {
        *current = new;
    }
}

/// Longest status phrase kept, in characters.
const MAX_STATUS_PHRASE_CHARS: usize = 256;

/// Rounds a refresh or retry time up to the next [`TIMER_GRID`] step after `origin`, so that
/// the REGISTERs due within one step go out on one wake-up of the engine's thread.
fn on_grid(origin: Instant, at: Instant) -> Instant {
    let grid = TIMER_GRID.as_micros();
    let offset = at.saturating_duration_since(origin).as_micros();
    let steps = offset.div_ceil(grid);
    origin + Duration::from_micros(u64::try_from(steps * grid).unwrap_or(u64::MAX))
}

/// Where a registration registers, or why it cannot: a stored row that cannot be used
/// (`failed_auth`: its password cannot be opened; the phrase says why), or values that do not
/// make a SIP address (`failed_transport`).
fn addressing_of(
    registration: &OutboundRegistration,
) -> Result<Arc<Addressing>, (RegistrationState, String)> {
    if let Some(problem) = &registration.unusable {
        return Err((RegistrationState::FailedAuth, problem.clone()));
    }
    Addressing::of(registration)
        .map(Arc::new)
        .map_err(|err| (RegistrationState::FailedTransport, err.to_string()))
}

/// Whether two addressings name the same binding (same AOR at the same registrar, reached the
/// same way).
fn same_binding(a: &Addressing, b: &Addressing) -> bool {
    a.aor == b.aor
        && a.request_uri == b.request_uri
        && a.transport == b.transport
        && a.next_hop_host == b.next_hop_host
        && a.next_hop_port == b.next_hop_port
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_slices_are_contiguous_id_ranges() {
        let mut ids: Vec<Uuid> = (0..2000).map(|_| Uuid::new_v4()).collect();
        ids.push(Uuid::nil());
        ids.push(Uuid::max());
        ids.sort_by_key(|id| id.hyphenated().to_string());
        let slices: Vec<u128> = ids.iter().map(|id| save_slice(*id)).collect();
        assert!(
            slices.windows(2).all(|w| w[0] <= w[1]),
            "text order, slice order"
        );
        assert_eq!(slices.first(), Some(&0));
        assert_eq!(slices.last(), Some(&(SAVE_LIVE_SLICES - 1)));
        for slice in 0..SAVE_LIVE_SLICES {
            let share = slices.iter().filter(|s| **s == slice).count();
            assert!(
                (100..240).contains(&share),
                "slice {slice}: {share} of 2002"
            );
        }
    }

    #[test]
    fn timer_grid_rounds_up_within_one_step() {
        let origin = Instant::now();
        for micros in [0, 1, 99_999, 100_000, 100_001, 1_234_567] {
            let at = origin + Duration::from_micros(micros);
            let on = on_grid(origin, at);
            assert!(on >= at, "{micros}: never earlier");
            assert!(on - at < TIMER_GRID, "{micros}: less than one step later");
            assert_eq!(
                (on - origin).as_micros() % TIMER_GRID.as_micros(),
                0,
                "{micros}: on the grid"
            );
        }
        // Times before the origin (cannot happen in the engine) stay usable.
        assert_eq!(on_grid(origin + TIMER_GRID, origin), origin + TIMER_GRID);
    }
}
