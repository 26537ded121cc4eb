//! trunkline's HTTP API.
//!
//! [`router`] assembles the three vendor dialects ([`dialect::ultravox`], [`dialect::dasha`],
//! [`dialect::vobiz`]), trunkline's own `/v1/` endpoints, the admin API and the operational
//! endpoints into one axum router over [`AppState`]. Every route is registered through
//! `utoipa_axum`, so [`openapi`] is generated from the same code that serves. The web console
//! ([`console`], HTML and assets, outside the document) is mounted beside them.

pub mod admin;
pub mod console;
pub mod dialect;
pub mod error;
pub mod extract;
pub mod ops;

use axum::extract::{DefaultBodyLimit, FromRef, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use std::sync::Arc;
use trunkline_core::Services;
use trunkline_pacing::Pacer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::dialect::{dasha::Dasha, own::Own, ultravox::Ultravox, vobiz::Vobiz, Dialect};
use crate::error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// `public_url`: base of absolute links; else taken from the request's `Host`.
    pub public_url: Option<String>,
    pub metrics: Option<PrometheusHandle>,
    pub admin_token: Option<Arc<SecretString>>,
    /// Call pacing's decisions (in memory or in Redis).
    pub pacer: Arc<Pacer>,
    /// Turns `true` when the server stops: long-lived responses (event streams) end, so the
    /// drain does not wait for them.
    pub shutting_down: tokio::sync::watch::Receiver<bool>,
}

impl FromRef<AppState> for Services {
    fn from_ref(state: &AppState) -> Self {
        state.services.clone()
    }
}

impl AppState {
    /// Scheme and authority for absolute URLs in responses.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        format!("http://{host}")
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "trunkline", description = "SIP trunk control plane: Ultravox, Dasha and Vobiz dialects over one model."),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let header = |name: &str| SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(name)));
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("apiKeyAuth", header("X-API-Key"));
        components.add_security_scheme("bearerAuth", bearer());
        components.add_security_scheme("authId", header("X-Auth-ID"));
        components.add_security_scheme("authToken", header("X-Auth-Token"));
        components.add_security_scheme("adminToken", bearer());
    }
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(dialect::ultravox::router())
        .merge(dialect::dasha::router())
        .merge(dialect::vobiz::router())
        .merge(dialect::own::router())
        .merge(admin::router())
}

/// The generated OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    api.merge(console::router())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi_json))
        .fallback(|request: Request| async move {
            render_for_path(request.uri().path(), ApiError::not_found())
        })
        .method_not_allowed_fallback(|request: Request| async move {
            render_for_path(
                request.uri().path(),
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("Method \"{}\" not allowed.", request.method()),
                ),
            )
        })
        .layer(axum::middleware::from_fn(ops::detach_writes))
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .layer(axum::middleware::from_fn(ops::measure))
        .with_state(state)
}

/// An error answer to a request that carried a body may leave part of that body unread (a
/// refused content type, an oversized or unauthenticated upload, a wrong path). hyper then
/// drops the connection after the response, but decides so only once the response has gone out
/// without `Connection: close`, so a pooling client reuses the dead connection and its *next*
/// request fails. Saying `close` up front on such errors lets clients reconnect cleanly. Not on
/// 429: a paced client comes straight back and should find its connection still open.
async fn close_after_refused_body(request: Request, next: axum::middleware::Next) -> Response {
    use axum::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
    use axum::http::HeaderValue;

    let headers = request.headers();
    let has_body = headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let mut response = next.run(request).await;
    let status = response.status();
    let refused = status.is_client_error() || status.is_server_error();
    if has_body && refused && status != StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Errors outside any handler (unknown path, wrong method) still speak the dialect the path
/// belongs to.
fn render_for_path(path: &str, error: ApiError) -> Response {
    if path.starts_with("/api/sip/") || path == "/api/sip" {
        Ultravox::render(error)
    } else if path.starts_with("/api/v1/account/") {
        Vobiz::render(error)
    } else if path.starts_with("/api/v1/sip-") {
        Dasha::render(error)
    } else {
        Own::render(error)
    }
}
