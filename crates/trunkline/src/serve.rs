//! `trunkline serve`: opens the store, creates the default tenant on first start, starts the SIP
//! node (engine and registrar), serves the HTTP API until SIGTERM or SIGINT, then drains
//! in-flight requests and unregisters (engine shutdown), side by side within
//! `outbound.shutdown_deadline_secs`, and closes the database.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use trunkline_api::{ops, AppState};
use trunkline_core::events::EventBus;
use trunkline_core::ownership::{Ownership, OwnershipChange};
use trunkline_core::Timestamp;
use trunkline_pacing::Pacer;
use trunkline_sip::{EnginePart, RegistrarPart, SipNode};
use trunkline_store::redact_url;

use crate::cluster;
use crate::commands::{open_store_as, services};
use crate::config::Config;
use crate::http_server;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    // First: a bad pacing setting stops the start before anything is opened or bound.
    let pacer = start_pacer(&config)?;
    let node_id = config.node_id().map_err(anyhow::Error::msg)?;
    let store = open_store_as(&config, &node_id).await?;
    let events = EventBus::default();
    let services = services(&config, store.clone(), events.clone());
    // On a shared database, what other nodes change reaches this node's engine and registrar.
    store.forward_remote_changes(events.clone());

    if let Some(issued) = services.ensure_default_tenant().await? {
        // Printed exactly once, as the spec requires; never logged.
        eprintln!(
            "default tenant: account_id={} api_key={}",
            issued.account_id,
            issued.api_key.expose_secret()
        );
    }

    let metrics = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(ops::LATENCY_METRIC.to_owned()),
            ops::LATENCY_BUCKETS,
        )
        .context("metrics buckets")?
        .set_buckets_for_metric(
            Matcher::Full(trunkline_pacing::DECISION_METRIC.to_owned()),
            trunkline_pacing::DECISION_BUCKETS,
        )
        .context("metrics buckets")?
        .set_buckets_for_metric(
            Matcher::Full(trunkline_webhooks::DELIVERY_METRIC.to_owned()),
            trunkline_webhooks::DELIVERY_BUCKETS,
        )
        .context("metrics buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    // Histograms accumulate until drained: drain them even when nobody scrapes /metrics.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });

    // Nodes sharing PostgreSQL split the registrations by leases; on SQLite (one node) the
    // engine registers all of them.
    let (ownership, ownership_changes) =
        if store.backend() == trunkline_store::Backend::Postgres && config.outbound.enabled {
            let (ownership, changes) = Ownership::new(&node_id);
            (Some(ownership), Some(changes))
        } else {
            (None, None)
        };
    let node = start_sip_node(
        &config,
        &services,
        store.clone(),
        &events,
        ownership.clone().zip(ownership_changes),
    )
    .await?;
    let stop_leases = CancellationToken::new();
    if let Some(ownership) = &ownership {
        let times = cluster::LeaseTimes {
            lease: Duration::from_secs(config.cluster.lease_secs.clamp(2, 3600)),
            renew: Duration::from_secs(config.cluster.renew_secs.clamp(1, 3600)),
        };
        tokio::spawn(cluster::keep_leases(
            store.clone(),
            node_id.clone(),
            times,
            ownership.clone(),
            events.subscribe(),
            stop_leases.clone(),
        ));
    }
    if config
        .admin_token
        .as_ref()
        .is_some_and(trunkline_api::admin::token_is_short)
    {
        // Once per start; the token itself is never logged.
        tracing::warn!(
            "admin_token is shorter than {} characters; use a long random token",
            trunkline_api::admin::MIN_TOKEN_CHARS
        );
    }
    let heartbeat = start_heartbeat(&config, &node_id, &services, store.clone()).await;
    let webhooks = trunkline_webhooks::Deliverer::start(
        store.clone(),
        config
            .webhook_settings(&node_id)
            .map_err(anyhow::Error::msg)?,
    )?;
    let (stop_streams, shutting_down) = tokio::sync::watch::channel(false);
    let pruning = start_event_pruning(&config, store.clone());
    let state = AppState {
        services,
        public_url: config.public_url.clone(),
        metrics: Some(metrics),
        admin_token: config.admin_token.clone().map(Arc::new),
        pacer,
        shutting_down,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    if let Some(node) = &node {
        // `listen` may say port 0: refuse the bound address as a SIP destination.
        node.endpoint().set_http_listen(address);
    }
    tracing::info!(%address, node = %node_id, database = %redact_url(&config.database_url()), "serving");
    eprintln!("listening on http://{address}");

    let drain = http_server::serve(listener, trunkline_api::router(state), async {
        shutdown.await;
        // Event streams end now; the drain would otherwise wait them out.
        let _ = stop_streams.send(true);
    })
    .await;
    // No more claims: what this node holds is unregistered below, then released.
    stop_leases.cancel();
    // Both within the one deadline, side by side: the HTTP side drains, the engine unregisters
    // (it has the same deadline for that) and flushes the status.
    let deadline = std::time::Duration::from_secs(config.outbound.shutdown_deadline_secs);
    tokio::join!(drain.within(deadline), async {
        if let Some(node) = node {
            node.shutdown().await;
        }
    });
    if ownership.is_some() {
        if let Err(err) = store.release_leases(&node_id, None).await {
            tracing::warn!(error = %err, "cannot release this node's registration leases");
        }
    }
    // A clean stop leaves the cluster at once (a killed node drops out after a lease).
    heartbeat.abort();
    pruning.abort();
    // Attempts in flight are abandoned (made again later); the holds are released.
    webhooks.shutdown().await;
    if let Err(err) = store.forget_node(&node_id).await {
        tracing::warn!(error = %err, "cannot remove this node from the cluster table");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Deletes events older than `events.retention_secs`, every minute (on every node: the
/// deletes are idempotent).
fn start_event_pruning(
    config: &Config,
    store: Arc<dyn trunkline_store::Database>,
) -> tokio::task::JoinHandle<()> {
    let retention = i64::try_from(config.events.retention_secs.min(10 * 365 * 86_400))
        .unwrap_or(i64::MAX)
        * 1_000_000;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let before = Timestamp::from_micros(Timestamp::now().micros() - retention);
            match store.prune_events(before).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(pruned, "old events pruned"),
                Err(err) => tracing::warn!(error = %err, "cannot prune old events"),
            }
        }
    })
}

/// Call pacing, in memory or in Redis (`pacing.redis_url`; connected on first use, so the
/// service starts while Redis is down and answers 503 or admits, per `pacing.fail_open`).
fn start_pacer(config: &Config) -> anyhow::Result<Arc<Pacer>> {
    let settings = config.pacing_settings().map_err(anyhow::Error::msg)?;
    // The URL may carry a password: the error names the setting, never the URL.
    let pacer =
        Arc::new(Pacer::new(&settings).map_err(|err| anyhow::anyhow!("pacing.redis_url: {err}"))?);
    tracing::info!(
        mode = pacer.mode(),
        burst = settings.burst,
        fail_open = settings.fail_open,
        "call pacing"
    );
    // In memory, idle keys are dropped every minute (Redis expires its own).
    if pacer.mode() == "memory" {
        let housekeeping = pacer.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                housekeeping.forget_idle();
            }
        });
    }
    Ok(pacer)
}

/// This node's row in the cluster table, written before the API serves and then every
/// `cluster.renew_secs`: when it was last heard from and how many registrations its engine
/// holds.
async fn start_heartbeat(
    config: &Config,
    node_id: &str,
    services: &trunkline_core::Services,
    store: Arc<dyn trunkline_store::Database>,
) -> tokio::task::JoinHandle<()> {
    let every = std::time::Duration::from_secs(config.cluster.renew_secs.clamp(1, 3600));
    let board = services.live_status().clone();
    let mut node = trunkline_core::model::ClusterNode {
        node_id: node_id.to_owned(),
        started_at: trunkline_core::Timestamp::now(),
        last_heartbeat: trunkline_core::Timestamp::now(),
        owned: 0,
        registers: config.outbound.enabled,
        lease_until: trunkline_core::Timestamp::from_micros(0),
    };
    if let Err(err) = store.record_heartbeat(&node).await {
        tracing::warn!(error = %err, "cannot record this node's heartbeat");
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            node.last_heartbeat = trunkline_core::Timestamp::now();
            node.owned = board.len() as u64;
            if let Err(err) = store.record_heartbeat(&node).await {
                tracing::warn!(error = %err, "cannot record this node's heartbeat");
            }
        }
    })
}

/// The SIP node with the parts configured (`outbound.enabled`, `registrar.enabled`); none
/// when both are off.
async fn start_sip_node(
    config: &Config,
    services: &trunkline_core::Services,
    store: Arc<dyn trunkline_core::store::Store>,
    events: &EventBus,
    ownership: Option<(Arc<Ownership>, mpsc::UnboundedReceiver<OwnershipChange>)>,
) -> anyhow::Result<Option<SipNode>> {
    let engine = if config.outbound.enabled {
        Some(EnginePart {
            settings: config.engine_settings(),
            board: services.live_status().clone(),
            events: events.subscribe(),
            heartbeat: services.health().register("the registration engine"),
            ownership,
        })
    } else {
        tracing::info!("outbound registrations disabled (outbound.enabled = false)");
        None
    };
    let registrar = if config.registrar.enabled {
        Some(RegistrarPart {
            settings: config.registrar_settings().map_err(anyhow::Error::msg)?,
            events: events.subscribe(),
        })
    } else {
        tracing::info!("inbound registrar disabled (registrar.enabled = false)");
        None
    };
    if engine.is_none() && registrar.is_none() {
        tracing::info!("no SIP listener: both the engine and the registrar are disabled");
        return Ok(None);
    }
    let transport = config.transport_settings().map_err(anyhow::Error::msg)?;
    let node = SipNode::start(transport, store, engine, registrar)
        .await
        .context("cannot start the SIP node")?;
    eprintln!("sip listening on {}", node.endpoint().udp);
    Ok(Some(node))
}

/// SIGTERM or SIGINT. The handlers are installed here, at once (not when the future is first
/// polled), so a signal that arrives while the server starts is not met by the default action,
/// which kills the process without its shutdown: it stops the server as soon as it serves.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutting down");
    })
}
