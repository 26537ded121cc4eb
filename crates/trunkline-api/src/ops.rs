//! Operational endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document,
//! plus the middleware that measures every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use trunkline_core::service::NotReady;

use crate::AppState;

/// Histogram buckets for request latency, in seconds (100 µs … 2.5 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Name of the request-latency histogram.
pub const LATENCY_METRIC: &str = "http_request_duration_seconds";

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database answers and the SIP engine (when enabled) is up and ticking; a 503 says what
/// is wrong.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.services.ready().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            // The database error's own text stays in the log (it may name paths).
            let body = match err {
                NotReady::Database(_) => "database unavailable".to_owned(),
                NotReady::Part(problem) => problem,
            };
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi())
}

/// Counts requests by route, method and status, and records their latency by route. Routes
/// are the matched templates (`/api/sip/registrations/{registrationId}`), never raw paths, so
/// ids do not explode the label space.
pub async fn measure(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16().to_string();
    tracing::debug!(%method, %route, %status, latency_us = elapsed.as_micros() as u64, "request");
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!(LATENCY_METRIC, "route" => route).record(elapsed.as_secs_f64());
    response
}

/// Runs every request that may write (anything but GET, HEAD and OPTIONS) in a task of its
/// own, awaited here: when a client hangs up, hyper drops this future, but the task goes on,
/// so a write that has been committed always reaches its change event (the SIP engine learns
/// of it) instead of stopping between the commit and the publish.
pub async fn detach_writes(request: Request, next: Next) -> Response {
    use axum::http::Method;
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(err) => {
            // A panic in a handler: answer as a handler error would be answered.
            tracing::error!(error = %err, "request task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
