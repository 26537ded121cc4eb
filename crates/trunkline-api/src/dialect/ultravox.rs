//! Ultravox dialect: `/api/sip/registrations`, `X-API-Key`, Django REST framework error bodies
//! (`{"field": ["…"]}` for validation, `{"detail": "…"}` otherwise), keyset cursor pages with
//! absolute `next`/`previous` URLs.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use trunkline_core::model::{ultravox_successful, Registration};
use trunkline_core::page::Cursor;
use trunkline_core::service::{page_size, PageLimits, RegistrationDraft};
use trunkline_core::{Input, Timestamp};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, OpenApi, ToResponse, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::{quotable_or_null, secret, sip_target, sip_target_or_null, sip_user};
use super::{error_response, header, Dialect};
use crate::error::{ApiError, Result, BODY_FIELD};
use crate::extract::{int_param, uuid_path, Caller, JsonBody, PathParams, QueryParams};
use crate::AppState;

pub struct Ultravox;

impl Dialect for Ultravox {
    fn render(error: ApiError) -> Response {
        let body = if error.fields.is_empty() {
            UltravoxError::Detail {
                detail: error.message,
            }
        } else {
            let fields = error
                .fields
                .iter()
                .map(|(field, messages)| {
                    let name = if field == BODY_FIELD {
                        "non_field_errors"
                    } else {
                        field
                    };
                    (name.to_owned(), messages.clone())
                })
                .collect();
            UltravoxError::Fields(fields)
        };
        (error.status, Json(body)).into_response()
    }

    fn presented_key(parts: &Parts) -> std::result::Result<SecretString, ApiError> {
        header(parts, "x-api-key")
            .map(|key| SecretString::from(key.to_owned()))
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Django REST framework's error body.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum UltravoxError {
    /// Anything but a validation failure: `{"detail": "…"}`.
    Detail { detail: String },
    /// A validation failure (400): messages per field, `non_field_errors` for the body as a
    /// whole.
    Fields(BTreeMap<String, Vec<String>>),
}

impl<'r> ToResponse<'r> for UltravoxError {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        error_response(
            "UltravoxError",
            "An error, in Django REST framework's shape.",
            "application/json",
            "UltravoxError",
        )
    }
}

/// The error responses of this dialect in the document's components.
#[derive(OpenApi)]
#[openapi(components(schemas(UltravoxError), responses(UltravoxError)))]
struct Components;

const PAGE: PageLimits = PageLimits {
    default: 100,
    max: 1000,
};
const PATH: &str = "/api/sip/registrations";

/// `SipRegistration` as the vendor documents it. `password` is write-only and never appears.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipRegistration {
    #[schema(format = Uuid)]
    registration_id: String,
    #[schema(format = DateTime)]
    created: String,
    username: String,
    proxy: String,
    #[schema(required = true)]
    outbound_proxy: Option<String>,
    #[schema(required = true)]
    auth_user: Option<String>,
    /// `null` until the first attempt resolves, `true` while registered, `false` after a failure.
    #[schema(required = true)]
    successful: Option<bool>,
}

impl SipRegistration {
    fn from_model(r: Registration, now: Timestamp) -> Self {
        Self {
            registration_id: r.id.to_string(),
            created: r.created_at.to_rfc3339(),
            successful: ultravox_successful(r.status.as_ref(), now),
            username: r.username,
            proxy: r.proxy,
            outbound_proxy: r.outbound_proxy,
            auth_user: r.auth_user,
        }
    }
}

/// Create body: `username` (the SIP username to register as), `password` (write-only),
/// `proxy` (the SIP server to register with), and optionally `outboundProxy` (a proxy used to
/// reach it) and `authUser` (the authentication username, if not `username`). `proxy` and
/// `outboundProxy` take `host`, `host:port`, `[v6]:port`, or a `sip:`/`sips:` URI of one with an
/// optional `;transport=udp|tcp|tls`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipRegistrationInput {
    #[serde(default)]
    #[schema(schema_with = sip_user::<1, 60>, required = true)]
    username: Input<String>,
    #[serde(default)]
    #[schema(schema_with = secret::<1, 128>, required = true)]
    password: Input<SecretString>,
    #[serde(default)]
    #[schema(schema_with = sip_target::<100>, required = true)]
    proxy: Input<String>,
    #[serde(default)]
    #[schema(schema_with = sip_target_or_null::<100>)]
    outbound_proxy: Input<String>,
    #[serde(default)]
    #[schema(schema_with = quotable_or_null::<1, 60>)]
    auth_user: Input<String>,
}

impl From<SipRegistrationInput> for RegistrationDraft {
    fn from(body: SipRegistrationInput) -> Self {
        Self {
            username: body.username,
            password: body.password,
            proxy: body.proxy,
            outbound_proxy: body.outbound_proxy,
            auth_user: body.auth_user,
        }
    }
}

/// Partial-update body: omitted fields stay unchanged; `outboundProxy` and `authUser` may be
/// `null` (cleared), the others may not.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchedSipRegistrationInput {
    #[serde(default)]
    #[schema(schema_with = sip_user::<1, 60>)]
    username: Input<String>,
    #[serde(default)]
    #[schema(schema_with = secret::<1, 128>)]
    password: Input<SecretString>,
    #[serde(default)]
    #[schema(schema_with = sip_target::<100>)]
    proxy: Input<String>,
    #[serde(default)]
    #[schema(schema_with = sip_target_or_null::<100>)]
    outbound_proxy: Input<String>,
    #[serde(default)]
    #[schema(schema_with = quotable_or_null::<1, 60>)]
    auth_user: Input<String>,
}

impl From<PatchedSipRegistrationInput> for RegistrationDraft {
    fn from(body: PatchedSipRegistrationInput) -> Self {
        Self {
            username: body.username,
            password: body.password,
            proxy: body.proxy,
            outbound_proxy: body.outbound_proxy,
            auth_user: body.auth_user,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PaginatedSipRegistrationList {
    #[schema(required = true)]
    next: Option<String>,
    #[schema(required = true)]
    previous: Option<String>,
    results: Vec<SipRegistration>,
    total: u64,
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The pagination cursor value: `next` or `previous` of an earlier page, as given (any
    /// other text is a 400); empty means the first page.
    #[param(max_length = 128, pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
    /// Number of results to return per page (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    page_size: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Components::openapi())
        .routes(routes!(list_registrations, create_registration))
        .routes(routes!(
            get_registration,
            update_registration,
            delete_registration
        ))
}

/// Lists the tenant's registrations, oldest first.
#[utoipa::path(get, path = "/api/sip/registrations", tag = "ultravox", params(ListParams),
    security(("apiKeyAuth" = [])),
    responses((status = 200, body = PaginatedSipRegistrationList),
        (status = 400, response = UltravoxError), (status = 401, response = UltravoxError)))]
async fn list_registrations(
    State(state): State<AppState>,
    caller: Caller<Ultravox>,
    headers: HeaderMap,
    QueryParams(params, ..): QueryParams<Ultravox, ListParams>,
) -> Result<Json<PaginatedSipRegistrationList>, Ultravox> {
    let size = page_size(
        "pageSize",
        int_param("pageSize", params.page_size.as_deref())?,
        PAGE,
    )?;
    let cursor = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            Cursor::decode(text)
                .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "Invalid cursor"))?,
        ),
    };
    let page = state
        .services
        .list_registrations(&caller.tenant, cursor, size)
        .await?;
    let base = state.base_url(&headers);
    let link = |cursor: Cursor| {
        let mut url = format!("{base}{PATH}?cursor={}", cursor.encode());
        if params.page_size.is_some() {
            url.push_str(&format!("&pageSize={size}"));
        }
        url
    };
    let now = Timestamp::now();
    Ok(Json(PaginatedSipRegistrationList {
        next: page.next.map(link),
        previous: page.previous.map(link),
        results: page
            .items
            .into_iter()
            .map(|r| SipRegistration::from_model(r, now))
            .collect(),
        total: page.total,
    }))
}

/// Creates a registration; the engine registers it at once.
#[utoipa::path(post, path = "/api/sip/registrations", tag = "ultravox",
    security(("apiKeyAuth" = [])), request_body = SipRegistrationInput,
    responses((status = 201, body = SipRegistration),
        (status = 400, response = UltravoxError), (status = 401, response = UltravoxError),
        (status = 413, response = UltravoxError), (status = 415, response = UltravoxError)))]
async fn create_registration(
    State(state): State<AppState>,
    caller: Caller<Ultravox>,
    JsonBody(body, ..): JsonBody<Ultravox, SipRegistrationInput>,
) -> Result<(StatusCode, Json<SipRegistration>), Ultravox> {
    let created = state
        .services
        .create_registration(&caller.tenant, body.into())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SipRegistration::from_model(created, Timestamp::now())),
    ))
}

#[utoipa::path(get, path = "/api/sip/registrations/{registrationId}", tag = "ultravox",
    security(("apiKeyAuth" = [])), params(("registrationId" = String, Path, format = Uuid)),
    responses((status = 200, body = SipRegistration),
        (status = 401, response = UltravoxError), (status = 404, response = UltravoxError)))]
async fn get_registration(
    State(state): State<AppState>,
    caller: Caller<Ultravox>,
    PathParams(id, ..): PathParams<Ultravox, String>,
) -> Result<Json<SipRegistration>, Ultravox> {
    let found = state
        .services
        .registration(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(Json(SipRegistration::from_model(found, Timestamp::now())))
}

/// Partial update: omitted fields stay unchanged; the engine re-registers with the new values.
#[utoipa::path(patch, path = "/api/sip/registrations/{registrationId}", tag = "ultravox",
    security(("apiKeyAuth" = [])), params(("registrationId" = String, Path, format = Uuid)),
    request_body = PatchedSipRegistrationInput,
    responses((status = 200, body = SipRegistration),
        (status = 400, response = UltravoxError), (status = 401, response = UltravoxError),
        (status = 404, response = UltravoxError), (status = 413, response = UltravoxError),
        (status = 415, response = UltravoxError)))]
async fn update_registration(
    State(state): State<AppState>,
    caller: Caller<Ultravox>,
    PathParams(id, ..): PathParams<Ultravox, String>,
    JsonBody(body, ..): JsonBody<Ultravox, PatchedSipRegistrationInput>,
) -> Result<Json<SipRegistration>, Ultravox> {
    let id = uuid_path(&id)?;
    let updated = state
        .services
        .update_registration(&caller.tenant, id, body.into())
        .await?;
    Ok(Json(SipRegistration::from_model(updated, Timestamp::now())))
}

/// Deletes a registration; the engine unregisters it.
#[utoipa::path(delete, path = "/api/sip/registrations/{registrationId}", tag = "ultravox",
    security(("apiKeyAuth" = [])), params(("registrationId" = String, Path, format = Uuid)),
    responses((status = 204),
        (status = 401, response = UltravoxError), (status = 404, response = UltravoxError)))]
async fn delete_registration(
    State(state): State<AppState>,
    caller: Caller<Ultravox>,
    PathParams(id, ..): PathParams<Ultravox, String>,
) -> Result<StatusCode, Ultravox> {
    state
        .services
        .delete_registration(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
