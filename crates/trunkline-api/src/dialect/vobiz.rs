//! Vobiz dialect: inbound credentials under `/api/v1/account/{auth_id}/…` and the live
//! registrations (bindings) of each, `X-Auth-ID` + `X-Auth-Token`, `{"api_id", "error"}` bodies,
//! `limit`/`offset` pages with `meta`.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use trunkline_core::model::InboundCredential;
use trunkline_core::service::{window, CredentialDraft, PageLimits};
use trunkline_core::view::BindingView;
use trunkline_core::{AccountId, Input};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, OpenApi, ToResponse, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::schema::{printable_or_null, secret, word};
use super::{error_response, header, Dialect};
use crate::error::{ApiError, Result};
use crate::extract::{int_param, uuid_path, Caller, JsonBody, PathParams, QueryParams};
use crate::AppState;

pub struct Vobiz;

impl Dialect for Vobiz {
    fn render(error: ApiError) -> Response {
        let body = VobizError {
            api_id: Uuid::new_v4().to_string(),
            error: error.message,
        };
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

/// The vendor's error body (its SDK reads `error`).
#[derive(Serialize, ToSchema)]
pub struct VobizError {
    /// Fresh per response; identifies nothing server-side yet.
    #[schema(format = Uuid)]
    api_id: String,
    /// A sentence for the client.
    error: String,
}

impl<'r> ToResponse<'r> for VobizError {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        error_response(
            "VobizError",
            "An error, in the vendor's shape.",
            "application/json",
            "VobizError",
        )
    }
}

/// The error responses of this dialect in the document's components.
#[derive(OpenApi)]
#[openapi(components(schemas(VobizError), responses(VobizError)))]
struct Components;

const PAGE: PageLimits = PageLimits {
    default: 20,
    max: 100,
};

/// A credential as the vendor shows it; the password is always the literal `<redacted>`.
#[derive(Serialize, ToSchema)]
pub struct Credential {
    #[schema(format = Uuid)]
    id: String,
    account_id: String,
    username: String,
    /// Always `<redacted>`.
    #[schema(example = "<redacted>")]
    password: &'static str,
    realm: String,
    enabled: bool,
    #[schema(required = true)]
    description: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
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

/// A credential to create; `username` is unique per account (a duplicate is a 409).
#[derive(Deserialize, ToSchema)]
pub struct CredentialInput {
    #[serde(default)]
    #[schema(schema_with = word::<1, 64>, required = true)]
    username: Input<String>,
    #[serde(default)]
    #[schema(schema_with = secret::<8, 128>, required = true)]
    password: Input<SecretString>,
    /// Default true.
    #[serde(default)]
    #[schema(value_type = bool)]
    enabled: Input<bool>,
    #[serde(default)]
    #[schema(schema_with = printable_or_null::<0, 1024>)]
    description: Input<String>,
}

/// A partial update: absent fields stay as they are. The username cannot change: a
/// `username` in the body must repeat it (any other, or `null`, is a 400).
#[derive(Deserialize, ToSchema)]
pub struct CredentialUpdateInput {
    #[serde(default)]
    #[schema(ignore)]
    username: Input<String>,
    #[serde(default)]
    #[schema(schema_with = secret::<8, 128>)]
    password: Input<SecretString>,
    #[serde(default)]
    #[schema(value_type = bool)]
    enabled: Input<bool>,
    #[serde(default)]
    #[schema(schema_with = printable_or_null::<0, 1024>)]
    description: Input<String>,
}

macro_rules! credential_draft {
    ($body:ty) => {
        impl From<$body> for CredentialDraft {
            fn from(b: $body) -> Self {
                Self {
                    username: b.username,
                    password: b.password,
                    enabled: b.enabled,
                    description: b.description,
                }
            }
        }
    };
}
credential_draft!(CredentialInput);
credential_draft!(CredentialUpdateInput);

#[derive(Serialize, ToSchema)]
pub struct Meta {
    limit: u32,
    offset: u64,
    total: u64,
}

impl Meta {
    /// What a list that is not paginated says: everything, from the start.
    fn whole(count: usize) -> Self {
        Self {
            limit: u32::try_from(count).unwrap_or(u32::MAX),
            offset: 0,
            total: count as u64,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CredentialList {
    meta: Meta,
    objects: Vec<Credential>,
}

/// Every live binding of a credential, oldest registration first. Not paginated (the registrar
/// keeps a few contacts per credential): `meta` says so, with `limit` and `total` the number of
/// objects and `offset` 0; `limit` and `offset` in the query are not read.
#[derive(Serialize, ToSchema)]
pub struct BindingList {
    meta: Meta,
    objects: Vec<BindingView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Maximum number of credentials to return (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Number of credentials to skip (default 0).
    #[param(value_type = Option<i64>, minimum = 0)]
    offset: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Components::openapi())
        .routes(routes!(list_credentials))
        .routes(routes!(create_credential))
        .routes(routes!(
            get_credential,
            update_credential,
            delete_credential
        ))
        .routes(routes!(list_bindings))
}

#[utoipa::path(get, path = "/api/v1/account/{auth_id}/trunks/credentials", tag = "vobiz",
    params(
        ("auth_id" = String, Path, description = "The `X-Auth-ID` account; any other is a 403."),
        PageParams
    ),
    security(("authId" = [], "authToken" = [])),
    responses((status = 200, body = CredentialList),
        (status = 400, response = VobizError), (status = 401, response = VobizError),
        (status = 403, response = VobizError)))]
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
    params(
        ("auth_id" = String, Path, description = "The `X-Auth-ID` account; any other is a 403.")
    ),
    security(("authId" = [], "authToken" = [])),
    request_body = CredentialInput,
    responses((status = 201, body = Credential),
        (status = 400, response = VobizError), (status = 401, response = VobizError),
        (status = 403, response = VobizError), (status = 409, response = VobizError),
        (status = 413, response = VobizError), (status = 415, response = VobizError)))]
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
    params(
        ("auth_id" = String, Path, description = "The `X-Auth-ID` account; any other is a 403."),
        ("id" = String, Path, format = Uuid)
    ),
    security(("authId" = [], "authToken" = [])),
    responses((status = 200, body = Credential),
        (status = 401, response = VobizError), (status = 403, response = VobizError),
        (status = 404, response = VobizError)))]
async fn get_credential(
    State(state): State<AppState>,
    caller: Caller<Vobiz>,
    PathParams((_, id), ..): PathParams<Vobiz, (String, String)>,
) -> Result<Json<Credential>, Vobiz> {
    let found = state
        .services
        .inbound_credential(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(Json(found.into()))
}

/// Partial update of `password`, `enabled` and `description`; `username` cannot change.
#[utoipa::path(put, path = "/api/v1/account/{auth_id}/credentials/{id}", tag = "vobiz",
    params(
        ("auth_id" = String, Path, description = "The `X-Auth-ID` account; any other is a 403."),
        ("id" = String, Path, format = Uuid)
    ),
    security(("authId" = [], "authToken" = [])), request_body = CredentialUpdateInput,
    responses((status = 200, body = Credential),
        (status = 400, response = VobizError), (status = 401, response = VobizError),
        (status = 403, response = VobizError), (status = 404, response = VobizError),
        (status = 413, response = VobizError), (status = 415, response = VobizError)))]
async fn update_credential(
    State(state): State<AppState>,
    caller: Caller<Vobiz>,
    PathParams((_, id), ..): PathParams<Vobiz, (String, String)>,
    JsonBody(body, ..): JsonBody<Vobiz, CredentialUpdateInput>,
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
    params(
        ("auth_id" = String, Path, description = "The `X-Auth-ID` account; any other is a 403."),
        ("id" = String, Path, format = Uuid)
    ),
    security(("authId" = [], "authToken" = [])),
    responses((status = 204),
        (status = 401, response = VobizError), (status = 403, response = VobizError),
        (status = 404, response = VobizError)))]
async fn delete_credential(
    State(state): State<AppState>,
    caller: Caller<Vobiz>,
    PathParams((_, id), ..): PathParams<Vobiz, (String, String)>,
) -> Result<StatusCode, Vobiz> {
    state
        .services
        .delete_inbound_credential(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The credential's live registrations (bindings not expired), oldest first, all in one answer.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/credentials/{id}/registrations",
    tag = "vobiz",
    params(
        ("auth_id" = String, Path, description = "The `X-Auth-ID` account; any other is a 403."),
        ("id" = String, Path, format = Uuid)
    ),
    security(("authId" = [], "authToken" = [])),
    responses((status = 200, body = BindingList),
        (status = 401, response = VobizError), (status = 403, response = VobizError),
        (status = 404, response = VobizError)))]
async fn list_bindings(
    State(state): State<AppState>,
    caller: Caller<Vobiz>,
    PathParams((_, id), ..): PathParams<Vobiz, (String, String)>,
) -> Result<Json<BindingList>, Vobiz> {
    let bindings = state
        .services
        .inbound_bindings(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(Json(BindingList {
        meta: Meta::whole(bindings.len()),
        objects: bindings.iter().map(BindingView::from).collect(),
    }))
}
