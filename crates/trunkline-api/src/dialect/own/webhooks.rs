//! `/v1/webhooks`: a tenant's webhook endpoints (create, list, read, partial update, delete)
//! and their delivery attempts. Shapes only; the rules are core's (`Services::create_webhook`
//! and the rest), delivering is the `trunkline-webhooks` crate's. The signing secret appears in
//! the create response and nowhere else.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use trunkline_core::outbox::{DeliveryAttempt, Webhook};
use trunkline_core::service::{WebhookDraft, URL_MAX};
use trunkline_core::Input;
use utoipa::ToSchema;

use super::Own;
use crate::dialect::schema::{event_types, printable_or_null, webhook_url};
use crate::dialect::ProblemDetails;
use crate::error::Result;
use crate::extract::{uuid_path, Caller, JsonBody, PathParams};
use crate::AppState;

/// A webhook endpoint (never its secret).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    #[schema(format = Uuid)]
    id: String,
    url: String,
    /// The event types sent; empty means every type.
    #[schema(schema_with = event_types)]
    types: Vec<&'static str>,
    #[schema(required = true)]
    description: Option<String>,
    enabled: bool,
    #[schema(format = DateTime)]
    created_at: String,
    /// Why trunkline disabled the endpoint (its deliveries failed for
    /// `events.webhook_retry_secs`); `null` otherwise. Enabling it again clears it.
    #[schema(required = true)]
    disabled_reason: Option<String>,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id.to_string(),
            url: w.url,
            types: w.types.iter().map(|t| t.as_str()).collect(),
            description: w.description,
            enabled: w.enabled,
            created_at: w.created_at.to_rfc3339(),
            disabled_reason: w.disabled_reason,
        }
    }
}

/// A webhook just created, with its signing secret: shown this once, keep it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    #[serde(flatten)]
    webhook: WebhookView,
    /// `whsec_` and the base64 of 24 random bytes; the key of `webhook-signature` is its
    /// base64-decoded part after `whsec_`.
    secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first; at most 20.
    items: Vec<WebhookView>,
}

/// A webhook to create.
#[derive(Deserialize, ToSchema)]
pub struct WebhookInput {
    #[serde(default)]
    #[schema(schema_with = webhook_url::<URL_MAX>, required = true)]
    url: Input<String>,
    /// Event types to send; absent or empty: every type.
    #[serde(default)]
    #[schema(schema_with = event_types)]
    types: Input<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = printable_or_null::<0, 256>)]
    description: Input<String>,
    /// Default true.
    #[serde(default)]
    #[schema(value_type = bool)]
    enabled: Input<bool>,
}

/// A partial update: absent fields stay as they are. `enabled: true` clears `disabledReason`
/// and retries the undelivered event at once (so does a new `url`).
#[derive(Deserialize, ToSchema)]
pub struct WebhookUpdateInput {
    #[serde(default)]
    #[schema(schema_with = webhook_url::<URL_MAX>)]
    url: Input<String>,
    /// Event types to send; empty: every type.
    #[serde(default)]
    #[schema(schema_with = event_types)]
    types: Input<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = printable_or_null::<0, 256>)]
    description: Input<String>,
    #[serde(default)]
    #[schema(value_type = bool)]
    enabled: Input<bool>,
}

macro_rules! webhook_draft {
    ($body:ty) => {
        impl From<$body> for WebhookDraft {
            fn from(b: $body) -> Self {
                Self {
                    url: b.url,
                    types: b.types,
                    description: b.description,
                    enabled: b.enabled,
                }
            }
        }
    };
}
webhook_draft!(WebhookInput);
webhook_draft!(WebhookUpdateInput);

/// One delivery attempt of an event.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// The event's id (its `webhook-id`).
    event_id: String,
    /// The event's type.
    #[serde(rename = "type")]
    #[schema(schema_with = event_type_name)]
    kind: &'static str,
    /// 1 for the first attempt at this event.
    attempt: u32,
    /// The endpoint's HTTP status; `null` when none came back.
    #[schema(required = true)]
    status_code: Option<u16>,
    duration_ms: u64,
    /// Why the attempt failed (at most 256 characters); `null` when delivered.
    #[schema(required = true)]
    error: Option<String>,
    #[schema(format = DateTime)]
    at: String,
    /// When the event is tried again; `null` when delivered or given up.
    #[schema(required = true, format = DateTime)]
    next_attempt_at: Option<String>,
}

fn event_type_name() -> utoipa::openapi::schema::Object {
    let names: Vec<&str> = trunkline_core::outbox::EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    crate::dialect::schema::one_of(&names)
}

impl From<DeliveryAttempt> for DeliveryView {
    fn from(d: DeliveryAttempt) -> Self {
        Self {
            event_id: d.event_id,
            kind: d.kind.as_str(),
            attempt: d.attempt,
            status_code: d.status_code,
            duration_ms: d.duration_ms,
            error: d.error,
            at: d.at.to_rfc3339(),
            next_attempt_at: d.next_attempt_at.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first; the last 100 attempts.
    items: Vec<DeliveryView>,
}

/// Creates a webhook: the tenant's events from now on are POSTed to `url`, signed (Standard
/// Webhooks) with the `secret` returned here and never again. A tenant has at most 20 (409).
#[utoipa::path(post, path = "/v1/webhooks", tag = "trunkline",
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    request_body = WebhookInput,
    responses((status = 201, body = CreatedWebhook),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails),
        (status = 409, response = ProblemDetails), (status = 413, response = ProblemDetails),
        (status = 415, response = ProblemDetails)))]
pub(super) async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller<Own>,
    JsonBody(body, ..): JsonBody<Own, WebhookInput>,
) -> Result<(StatusCode, Json<CreatedWebhook>), Own> {
    let (webhook, secret) = state
        .services
        .create_webhook(&caller.tenant, body.into())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: webhook.into(),
            secret: secret.expose_secret().to_owned(),
        }),
    ))
}

/// The tenant's webhooks, oldest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "trunkline",
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = WebhookList), (status = 401, response = ProblemDetails)))]
pub(super) async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller<Own>,
) -> Result<Json<WebhookList>, Own> {
    let webhooks = state.services.list_webhooks(&caller.tenant).await?;
    Ok(Json(WebhookList {
        items: webhooks.into_iter().map(WebhookView::from).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "trunkline",
    params(("id" = String, Path, format = Uuid)),
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = WebhookView),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
pub(super) async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller<Own>,
    PathParams(id, ..): PathParams<Own, String>,
) -> Result<Json<WebhookView>, Own> {
    let webhook = state
        .services
        .webhook(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(Json(webhook.into()))
}

/// Partial update of `url`, `types`, `description` and `enabled`.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "trunkline",
    params(("id" = String, Path, format = Uuid)),
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    request_body = WebhookUpdateInput,
    responses((status = 200, body = WebhookView),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails),
        (status = 404, response = ProblemDetails), (status = 413, response = ProblemDetails),
        (status = 415, response = ProblemDetails)))]
pub(super) async fn update_webhook(
    State(state): State<AppState>,
    caller: Caller<Own>,
    PathParams(id, ..): PathParams<Own, String>,
    JsonBody(body, ..): JsonBody<Own, WebhookUpdateInput>,
) -> Result<Json<WebhookView>, Own> {
    let id = uuid_path(&id)?;
    let webhook = state
        .services
        .update_webhook(&caller.tenant, id, body.into())
        .await?;
    Ok(Json(webhook.into()))
}

/// Deletes a webhook and its delivery attempts; nothing more is sent to it.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "trunkline",
    params(("id" = String, Path, format = Uuid)),
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 204),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
pub(super) async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller<Own>,
    PathParams(id, ..): PathParams<Own, String>,
) -> Result<StatusCode, Own> {
    state
        .services
        .delete_webhook(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook's last delivery attempts, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "trunkline",
    params(("id" = String, Path, format = Uuid)),
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = DeliveryList),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
pub(super) async fn webhook_deliveries(
    State(state): State<AppState>,
    caller: Caller<Own>,
    PathParams(id, ..): PathParams<Own, String>,
) -> Result<Json<DeliveryList>, Own> {
    let attempts = state
        .services
        .webhook_deliveries(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(Json(DeliveryList {
        items: attempts.into_iter().map(DeliveryView::from).collect(),
    }))
}
