//! Vobiz dialect: inbound credentials under `/api/v1/account/{auth_id}/…`, `X-Auth-ID` +
//! `X-Auth-Token`, `{"api_id", "error"}` bodies, `limit`/`offset` pages with `meta`.

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use trunkline_core::model::InboundCredential;
use trunkline_core::service::{window, CredentialDraft, PageLimits};
use trunkline_core::{AccountId, Input};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{header, Dialect};
use crate::error::{ApiError, Result};
use crate::extract::{int_param, uuid_path, Caller, JsonBody, QueryParams};
use crate::AppState;

pub struct Vobiz;

impl Dialect for Vobiz {
    fn render(error: ApiError) -> Response {
        let body = serde_json::json!({
            "api_id": Uuid::new_v4().to_string(),
            "error": error.message,
        });
        (error.status, Json(body)).into_response()
    }

    fn presented_key(parts: &Parts) -> std::result::Result<SecretString, ApiError> {
        match (header(parts, "x-auth-id"), header(parts, "x-auth-token")) {
            (Some(_), Some(token)) => Ok(SecretString::from(token.to_owned())),
            _ => Err(ApiError::unauthorized()),
        }
    }

    /// `X-Auth-ID` must name the key's account (else 401), and the `{auth_id}` in the path the
    /// same account (else 403).
    fn check_tenant(parts: &Parts, tenant: &AccountId) -> std::result::Result<(), ApiError> {
        if header(parts, "x-auth-id") != Some(tenant.as_str()) {
            return Err(ApiError::unauthorized());
        }
        let path_account = parts
            .uri
            .path()
            .strip_prefix("/api/v1/account/")
            .and_then(|rest| rest.split('/').next());
        if path_account != Some(tenant.as_str()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "The auth_id in the URL is not the authenticated account.",
            ));
        }
        Ok(())
    }
}

const PAGE: PageLimits = PageLimits {
    default: 20,
    max: 100,
};

/// A credential as the vendor shows it; the password is always the literal `<redacted>`.
#[derive(Serialize, ToSchema)]
pub struct Credential {
    id: String,
    account_id: String,
    username: String,
    #[schema(example = "<redacted>")]
    password: &'static str,
    realm: String,
    enabled: bool,
    description: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<InboundCredential> for Credential {
    fn from(c: InboundCredential) -> Self {
        Self {
            id: c.id.to_string(),
            account_id: c.tenant.to_string(),
            username: c.username,
            password: "<redacted>",
            realm: c.realm,
            enabled: c.enabled,
            description: c.description,
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CredentialInput {
    #[serde(default)]
    #[schema(value_type = String, max_length = 64, pattern = "^[A-Za-z0-9_.-]+$")]
    username: Input<String>,
    #[serde(default)]
    #[schema(value_type = String, min_length = 8, max_length = 128, write_only)]
    password: Input<SecretString>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    enabled: Input<bool>,
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable)]
    description: Input<String>,
}

impl From<CredentialInput> for CredentialDraft {
    fn from(b: CredentialInput) -> Self {
        Self {
            username: b.username,
            password: b.password,
            enabled: b.enabled,
            description: b.description,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Meta {
    limit: u32,
    offset: u64,
    total: u64,
}

#[derive(Serialize, ToSchema)]
pub struct CredentialList {
    meta: Meta,
    objects: Vec<Credential>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Maximum number of credentials to return (1–100, default 20).
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// Number of credentials to skip (default 0).
    #[param(value_type = Option<i64>)]
    offset: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_credentials))
        .routes(routes!(create_credential))
        .routes(routes!(
            get_credential,
            update_credential,
            delete_credential
        ))
}

#[utoipa::path(get, path = "/api/v1/account/{auth_id}/trunks/credentials", tag = "vobiz",
    params(("auth_id" = String, Path), PageParams),
    security(("authId" = [], "authToken" = [])), responses((status = 200, body = CredentialList)))]
async fn list_credentials(
    State(state): State<AppState>,
    caller: Caller<Vobiz>,
    QueryParams(params, ..): QueryParams<Vobiz, PageParams>,
) -> Result<Json<CredentialList>, Vobiz> {
    let window = window(
        "offset",
        int_param("offset", params.offset.as_deref())?,
        "limit",
        int_param("limit", params.limit.as_deref())?,
        PAGE,
    )?;
    let page = state
        .services
        .list_inbound_credentials(&caller.tenant, window)
        .await?;
    Ok(Json(CredentialList {
        meta: Meta {
            limit: page.limit,
            offset: page.offset,
            total: page.total,
        },
        objects: page.items.into_iter().map(Credential::from).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/account/{auth_id}/credentials", tag = "vobiz",
    params(("auth_id" = String, Path)), security(("authId" = [], "authToken" = [])),
    request_body = CredentialInput, responses((status = 201, body = Credential), (status = 409)))]
async fn create_credential(
    State(state): State<AppState>,
    caller: Caller<Vobiz>,
    JsonBody(body, ..): JsonBody<Vobiz, CredentialInput>,
) -> Result<(StatusCode, Json<Credential>), Vobiz> {
    let created = state
        .services
        .create_inbound_credential(&caller.tenant, body.into())
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/api/v1/account/{auth_id}/credentials/{id}", tag = "vobiz",
    params(("auth_id" = String, Path), ("id" = String, Path, format = Uuid)),
    security(("authId" = [], "authToken" = [])), responses((status = 200, body = Credential)))]
async fn get_credential(
    State(state): State<AppState>,
    caller: Caller<Vobiz>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Credential>, Vobiz> {
    let found = state
        .services
        .inbound_credential(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(Json(found.into()))
}

/// Partial update of `password`, `enabled` and `description`; `username` cannot change.
#[utoipa::path(put, path = "/api/v1/account/{auth_id}/credentials/{id}", tag = "vobiz",
    params(("auth_id" = String, Path), ("id" = String, Path, format = Uuid)),
    security(("authId" = [], "authToken" = [])), request_body = CredentialInput,
    responses((status = 200, body = Credential)))]
async fn update_credential(
    State(state): State<AppState>,
    caller: Caller<Vobiz>,
    Path((_, id)): Path<(String, String)>,
    JsonBody(body, ..): JsonBody<Vobiz, CredentialInput>,
) -> Result<Json<Credential>, Vobiz> {
    let id = uuid_path(&id)?;
    let updated = state
        .services
        .update_inbound_credential(&caller.tenant, id, body.into())
        .await?;
    Ok(Json(updated.into()))
}

/// Deletes a credential; its live bindings end with it.
#[utoipa::path(delete, path = "/api/v1/account/{auth_id}/credentials/{id}", tag = "vobiz",
    params(("auth_id" = String, Path), ("id" = String, Path, format = Uuid)),
    security(("authId" = [], "authToken" = [])), responses((status = 204)))]
async fn delete_credential(
    State(state): State<AppState>,
    caller: Caller<Vobiz>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, Vobiz> {
    state
        .services
        .delete_inbound_credential(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
