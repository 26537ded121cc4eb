//! trunkline's own endpoints under `/v1/`: any dialect's key authenticates, errors are RFC 9457
//! problem details. Here: the live status and history of one outbound registration; call
//! pacing's admission in [`pacing`]; the nodes serving the database in [`cluster`]; the
//! tenant's events, streamed or polled, in [`events`].

mod cluster;
mod events;
mod pacing;

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::Response;
use axum::Json;
use secrecy::SecretString;
use serde::Serialize;
use trunkline_core::view::RegistrationStatusView;
use trunkline_core::AccountId;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{bearer, header, problem_details, Dialect, ProblemDetails};
use crate::error::{ApiError, Result};
use crate::extract::{Caller, PathParams};
use crate::AppState;

pub struct Own;

impl Dialect for Own {
    fn render(error: ApiError) -> Response {
        problem_details(error)
    }

    /// `X-API-Key`, `Authorization: Bearer`, or `X-Auth-ID` + `X-Auth-Token` (both).
    fn presented_key(parts: &Parts) -> std::result::Result<SecretString, ApiError> {
        if let Some(key) = header(parts, "x-api-key") {
            return Ok(SecretString::from(key.to_owned()));
        }
        if let Some(bearer) = bearer(parts) {
            return Ok(bearer);
        }
        match (header(parts, "x-auth-id"), header(parts, "x-auth-token")) {
            (Some(_), Some(token)) => Ok(SecretString::from(token.to_owned())),
            _ => Err(ApiError::unauthorized()),
        }
    }

    fn check_tenant(parts: &Parts, tenant: &AccountId) -> std::result::Result<(), ApiError> {
        // With the Vobiz pair, `X-Auth-ID` must name the key's account.
        let vobiz_pair = header(parts, "x-api-key").is_none() && bearer(parts).is_none();
        match header(parts, "x-auth-id") {
            Some(id) if vobiz_pair && id != tenant.as_str() => Err(ApiError::unauthorized()),
            _ => Ok(()),
        }
    }
}

/// One REGISTER transaction (never the Authorization it carried).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    at: String,
    transport: &'static str,
    remote: Option<String>,
    /// `REGISTER sip:example.com SIP/2.0`.
    request_line: String,
    /// `null` when nothing came back.
    code: Option<u16>,
    phrase: Option<String>,
    duration_ms: f64,
}

#[derive(Serialize, ToSchema)]
pub struct History {
    /// Newest first, at most 20; a routine refresh answered like the one before it is not listed again.
    items: Vec<AttemptView>,
}

/// The error responses of `/v1/` in the document's components.
#[derive(OpenApi)]
#[openapi(components(schemas(ProblemDetails), responses(ProblemDetails)))]
pub(crate) struct Components;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Components::openapi())
        .routes(routes!(registration_status))
        .routes(routes!(registration_history))
        .routes(routes!(pacing::pacing_admit))
        .routes(routes!(cluster::cluster))
        .routes(routes!(events::events))
}

/// The last REGISTER transactions of a registration, newest first.
#[utoipa::path(get, path = "/v1/registrations/{id}/history", tag = "trunkline",
    params(("id" = String, Path)),
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = History),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
async fn registration_history(
    State(state): State<AppState>,
    caller: Caller<Own>,
    PathParams(id, ..): PathParams<Own, String>,
) -> Result<Json<History>, Own> {
    let attempts = state
        .services
        .registration_history(&caller.tenant, &id)
        .await?;
    Ok(Json(History {
        items: attempts
            .into_iter()
            .map(|a| AttemptView {
                at: a.at.to_rfc3339(),
                transport: a.transport.as_str(),
                remote: a.remote,
                request_line: a.request_line,
                code: a.code,
                phrase: a.phrase,
                duration_ms: a.duration_us as f64 / 1000.0,
            })
            .collect(),
    }))
}

/// Live status of a registration: `{id}` is an Ultravox registration id or a Dasha phone
/// number (`%2B…`).
#[utoipa::path(get, path = "/v1/registrations/{id}", tag = "trunkline",
    params(("id" = String, Path)),
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = RegistrationStatusView),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
async fn registration_status(
    State(state): State<AppState>,
    caller: Caller<Own>,
    PathParams(id, ..): PathParams<Own, String>,
) -> Result<Json<RegistrationStatusView>, Own> {
    let view = state
        .services
        .registration_view(&caller.tenant, &id)
        .await?;
    Ok(Json(RegistrationStatusView::from(&view)))
}
