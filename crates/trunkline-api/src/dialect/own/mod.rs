//! trunkline's own endpoints under `/v1/`: any dialect's key authenticates, errors are RFC 9457
//! problem details. Here: the dialect itself and the router; outbound registrations (the list,
//! one's live status and history) in [`registrations`]; the caller's account in [`account`];
//! call pacing's admission in [`pacing`]; the nodes serving the database in [`cluster`]; the
//! tenant's events, streamed or polled, in [`events`]; webhook endpoints and their
//! delivery attempts in [`webhooks`].

mod account;
mod cluster;
mod events;
mod pacing;
mod registrations;
mod webhooks;

use axum::http::request::Parts;
use axum::response::Response;
use secrecy::SecretString;
use trunkline_core::AccountId;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{bearer, header, problem_details, Dialect, ProblemDetails};
use crate::error::ApiError;
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

/// The error responses of `/v1/` in the document's components.
#[derive(OpenApi)]
#[openapi(components(schemas(ProblemDetails), responses(ProblemDetails)))]
pub(crate) struct Components;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Components::openapi())
        .routes(routes!(registrations::registration_list))
        .routes(routes!(registrations::registration_status))
        .routes(routes!(registrations::registration_history))
        .routes(routes!(account::account))
        .routes(routes!(pacing::pacing_admit))
        .routes(routes!(cluster::cluster))
        .routes(routes!(events::events))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::webhook_deliveries))
}
