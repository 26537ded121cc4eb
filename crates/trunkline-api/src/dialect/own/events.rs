//! `GET /v1/events`: the tenant's events, as Server-Sent Events (`Accept: text/event-stream`)
//! or as JSON pages for clients that poll. A stream starts after `Last-Event-ID` (or `?after=`),
//! else with the next new event; it reads the outbox in `seq` order and waits on the store's
//! wake-ups between reads, so it neither misses nor repeats an event.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::ACCEPT;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use trunkline_core::outbox::{EventBody, EventType};
use trunkline_core::service::{EVENT_PAGE_DEFAULT, EVENT_PAGE_MAX};
use trunkline_core::{AccountId, Services};
use utoipa::{IntoParams, ToSchema};

use super::Own;
use crate::dialect::ProblemDetails;
use crate::error::{ApiError, Result};
use crate::extract::{int_param, Caller, QueryParams};
use crate::AppState;

/// How often an idle stream sends a `: keep-alive` comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a stream waits for a wake-up before it reads the outbox anyway (events written by
/// another process on the same SQLite file wake nobody).
const REREAD: Duration = Duration::from_secs(5);
/// Events a stream reads per query.
const STREAM_BATCH: u32 = 500;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Events after this `seq` (default 0 when polling; a stream without it or
    /// `Last-Event-ID` starts with the next new event).
    #[param(value_type = Option<u64>, minimum = 0)]
    after: Option<String>,
    /// Comma-separated event types; all when absent.
    #[param(value_type = Option<String>, example = "registration.failed,registration.registered",
        pattern = r"^(registration\.(registered|failed|removed)|binding\.(created|removed))(,(registration\.(registered|failed|removed)|binding\.(created|removed)))*$")]
    types: Option<String>,
    /// Events per page when polling, 1–1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

impl EventParams {
    fn after(&self) -> std::result::Result<Option<u64>, ApiError> {
        seq_param("after", self.after.as_deref())
    }

    fn types(&self) -> std::result::Result<Vec<EventType>, ApiError> {
        match self.types.as_deref() {
            None => Ok(Vec::new()),
            Some(text) => EventType::parse_list(text).map_err(|unknown| {
                ApiError::invalid_field("types", format!("Unknown event type `{unknown}`."))
            }),
        }
    }

    fn limit(&self) -> std::result::Result<u32, ApiError> {
        match int_param("limit", self.limit.as_deref())? {
            None => Ok(EVENT_PAGE_DEFAULT),
            Some(n) if (1..=i64::from(EVENT_PAGE_MAX)).contains(&n) => Ok(n as u32),
            Some(_) => Err(ApiError::invalid_field(
                "limit",
                format!("Must be between 1 and {EVENT_PAGE_MAX}."),
            )),
        }
    }
}

fn seq_param(name: &str, value: Option<&str>) -> std::result::Result<Option<u64>, ApiError> {
    match value {
        None => Ok(None),
        // A `seq` is stored as a signed 64-bit integer.
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|seq| i64::try_from(*seq).is_ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid_field(
                    name,
                    "An integer from 0 to 9223372036854775807 is required.",
                )
            }),
    }
}

/// A page of events, oldest first.
#[derive(Serialize, ToSchema)]
pub struct EventList {
    items: Vec<EventBody>,
}

/// The tenant's events: a page of JSON, or with `Accept: text/event-stream` a live stream
/// (`id` = `seq`, `event` = type, `data` = the event body; `: keep-alive` every 15 s).
///
/// A stream resumes after the `seq` in its `Last-Event-ID` header (else after `after`, else it
/// starts with the next new event).
#[utoipa::path(get, path = "/v1/events", tag = "trunkline",
    params(EventParams),
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = EventList, content_type = "application/json",
            description = "Events after `after`, oldest first."),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails)))]
pub(super) async fn events(
    State(state): State<AppState>,
    caller: Caller<Own>,
    QueryParams(params, ..): QueryParams<Own, EventParams>,
    parts: Parts,
) -> Result<Response, Own> {
    let types = params.types()?;
    let limit = params.limit()?;
    let after = params.after()?;
    if !wants_stream(&parts) {
        let events = state
            .services
            .events_after(&caller.tenant, after.unwrap_or(0), &types, limit)
            .await?;
        return Ok(Json(EventList {
            items: events.iter().map(|e| e.body()).collect(),
        })
        .into_response());
    }
    let resume = match parts.headers.get("last-event-id") {
        Some(value) => seq_param("Last-Event-ID", value.to_str().ok())?,
        None => None,
    };
    // Subscribed before the start is read: nothing appended after that read goes unnoticed.
    let wakeups = state.services.event_wakeups();
    let start = match resume.or(after) {
        Some(seq) => seq,
        None => state.services.last_event_seq(&caller.tenant).await?,
    };
    let stream = event_stream(
        state.services.clone(),
        caller.tenant,
        types,
        start,
        wakeups,
        state.shutting_down.clone(),
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text(" keep-alive"))
        .into_response())
}

fn wants_stream(parts: &Parts) -> bool {
    parts
        .headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

struct Cursor {
    services: Services,
    tenant: AccountId,
    types: Vec<EventType>,
    after: u64,
    wakeups: tokio::sync::watch::Receiver<u64>,
    shutting_down: tokio::sync::watch::Receiver<bool>,
    ready: VecDeque<Event>,
}

/// The events after `after`, read in batches, waiting on `wakeups` when caught up. A read that
/// fails ends the stream (the client resumes with `Last-Event-ID`), and so does the server's
/// shutdown.
fn event_stream(
    services: Services,
    tenant: AccountId,
    types: Vec<EventType>,
    after: u64,
    wakeups: tokio::sync::watch::Receiver<u64>,
    shutting_down: tokio::sync::watch::Receiver<bool>,
) -> impl Stream<Item = std::result::Result<Event, Infallible>> {
    let cursor = Cursor {
        services,
        tenant,
        types,
        after,
        wakeups,
        shutting_down,
        ready: VecDeque::new(),
    };
    stream::unfold(cursor, |mut cursor| async move {
        loop {
            if *cursor.shutting_down.borrow() {
                return None;
            }
            if let Some(event) = cursor.ready.pop_front() {
                return Some((Ok(event), cursor));
            }
            cursor.wakeups.borrow_and_update();
            let events = match cursor
                .services
                .events_after(&cursor.tenant, cursor.after, &cursor.types, STREAM_BATCH)
                .await
            {
                Ok(events) => events,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read events; ending the stream");
                    return None;
                }
            };
            if events.is_empty() {
                if cursor.wakeups.has_changed().unwrap_or(false) {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::timeout(REREAD, cursor.wakeups.changed()) => {}
                    closed = cursor.shutting_down.changed() => if closed.is_err() {
                        return None; // the server is gone
                    }
                }
                continue;
            }
            for event in events {
                cursor.after = event.seq;
                cursor.ready.push_back(
                    Event::default()
                        .id(event.seq.to_string())
                        .event(event.kind.as_str())
                        .data(event.body_json()),
                );
            }
        }
    })
}
