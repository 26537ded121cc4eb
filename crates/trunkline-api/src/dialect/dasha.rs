//! Dasha dialect: trunks at `/api/v1/sip-credentials`, numbers at `/api/v1/sip-phone-numbers`,
//! `Authorization: Bearer`, RFC 9457 problem details, `skip`/`take` pages as
//! `{items, totalCount, skip, take}`.

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use trunkline_core::model::{CoarseState, PhoneNumber, Trunk};
use trunkline_core::page::OffsetPage;
use trunkline_core::service::{window, PageLimits, PhoneNumberDraft, TrunkDraft};
use trunkline_core::{Input, Timestamp};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{bearer, problem_details, Dialect};
use crate::error::{ApiError, Result};
use crate::extract::{int_param, uuid_path, Caller, JsonBody, QueryParams};
use crate::AppState;

pub struct Dasha;

impl Dialect for Dasha {
    fn render(error: ApiError) -> Response {
        problem_details(error)
    }

    fn presented_key(parts: &Parts) -> std::result::Result<SecretString, ApiError> {
        bearer(parts).ok_or_else(ApiError::unauthorized)
    }
}

const PAGE: PageLimits = PageLimits {
    default: 20,
    max: 1000,
};

/// A page in Dasha's shape.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashaPage<T> {
    items: Vec<T>,
    total_count: u64,
    skip: u64,
    take: u32,
}

impl<T> DashaPage<T> {
    fn from_page<M>(page: OffsetPage<M>, render: impl FnMut(M) -> T) -> Self {
        Self {
            items: page.items.into_iter().map(render).collect(),
            total_count: page.total,
            skip: page.offset,
            take: page.limit,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Rows to skip (≥ 0, default 0).
    #[param(value_type = Option<i64>)]
    skip: Option<String>,
    /// Rows to return (1–1000, default 20).
    #[param(value_type = Option<i64>)]
    take: Option<String>,
}

impl PageParams {
    fn window(&self) -> std::result::Result<trunkline_core::page::Window, ApiError> {
        Ok(window(
            "skip",
            int_param("skip", self.skip.as_deref())?,
            "take",
            int_param("take", self.take.as_deref())?,
            PAGE,
        )?)
    }
}

// --- trunks ---------------------------------------------------------------------------------------

/// SIP trunk credentials, as in the vendor's `GET /api/v1/sip-credentials/{id}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipCredential {
    id: String,
    org_id: String,
    server: String,
    #[schema(example = "udp")]
    transport: &'static str,
    /// Always `manual` for credentials created through the API.
    source: &'static str,
    created_time: String,
    last_update_time: String,
    domain: Option<String>,
    auth_user: Option<String>,
    /// `null` unless the operator enabled `dasha.reveal_auth_password`.
    auth_password: Option<String>,
    description: Option<String>,
    cps_limit: Option<i32>,
    cps_key: Option<String>,
    provider_id: Option<String>,
}

impl From<Trunk> for SipCredential {
    fn from(t: Trunk) -> Self {
        Self {
            id: t.id.to_string(),
            org_id: t.tenant.to_string(),
            server: t.server,
            transport: t.transport.as_str(),
            source: "manual",
            created_time: t.created_at.to_rfc3339(),
            last_update_time: t.updated_at.to_rfc3339(),
            domain: t.domain,
            auth_user: t.auth_user,
            auth_password: t
                .revealed_password
                .map(|secret| secret.expose_secret().to_owned()),
            description: t.description,
            cps_limit: t.cps_limit,
            cps_key: t.cps_key,
            provider_id: None,
        }
    }
}

/// Writable fields of SIP credentials (create, or full replace).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipCredentialInput {
    #[serde(default)]
    #[schema(value_type = String)]
    server: Input<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "udp")]
    transport: Input<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable)]
    domain: Input<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable)]
    auth_user: Input<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable, write_only)]
    auth_password: Input<SecretString>,
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable)]
    description: Input<String>,
    #[serde(default)]
    #[schema(value_type = Option<i32>, nullable, minimum = 1)]
    cps_limit: Input<i64>,
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable)]
    cps_key: Input<String>,
}

impl From<SipCredentialInput> for TrunkDraft {
    fn from(b: SipCredentialInput) -> Self {
        Self {
            server: b.server,
            transport: b.transport,
            domain: b.domain,
            auth_user: b.auth_user,
            auth_password: b.auth_password,
            description: b.description,
            cps_limit: b.cps_limit,
            cps_key: b.cps_key,
        }
    }
}

// --- phone numbers ----------------------------------------------------------------------------------

/// Live registration summary of a phone number with `registration: true`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationStatusBody {
    /// `Disabled`, `Pending`, `Registered` or `Failed`.
    state: &'static str,
    error_description: Option<&'static str>,
    sip_response_message: Option<String>,
    last_updated: Option<String>,
    expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipPhoneNumber {
    phone_number: String,
    credentials_id: String,
    registration: bool,
    /// `null` when `registration` is false.
    registration_status: Option<RegistrationStatusBody>,
    display_name: Option<String>,
    description: Option<String>,
    provider_id: Option<String>,
    incoming_calls_agent_id: Option<String>,
    created_time: String,
    last_update_time: String,
}

impl SipPhoneNumber {
    fn from_model(p: PhoneNumber, now: Timestamp) -> Self {
        let registration_status = p.registration.then(|| match &p.status {
            None => RegistrationStatusBody {
                state: "Pending",
                error_description: None,
                sip_response_message: None,
                last_updated: None,
                expires_at: None,
            },
            Some(status) => {
                let coarse = status.coarse(now);
                RegistrationStatusBody {
                    state: match coarse {
                        CoarseState::Disabled => "Disabled",
                        CoarseState::Pending => "Pending",
                        CoarseState::Registered => "Registered",
                        CoarseState::Failed => "Failed",
                    },
                    error_description: (coarse == CoarseState::Failed)
                        .then(|| status.state.describe()),
                    sip_response_message: status.sip_response_message(),
                    last_updated: Some(status.updated_at.to_rfc3339()),
                    expires_at: status.expires_at.map(Timestamp::to_rfc3339),
                }
            }
        });
        Self {
            phone_number: p.phone_number,
            credentials_id: p.trunk_id.to_string(),
            registration: p.registration,
            registration_status,
            display_name: p.display_name,
            description: p.description,
            provider_id: None,
            incoming_calls_agent_id: p.incoming_calls_agent_id,
            created_time: p.created_at.to_rfc3339(),
            last_update_time: p.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipPhoneNumberInput {
    #[serde(default)]
    #[schema(value_type = String, example = "+14155550123")]
    phone_number: Input<String>,
    #[serde(default)]
    #[schema(value_type = String, format = Uuid)]
    credentials_id: Input<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    registration: Input<bool>,
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable)]
    display_name: Input<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable)]
    description: Input<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable)]
    incoming_calls_agent_id: Input<String>,
}

impl From<SipPhoneNumberInput> for PhoneNumberDraft {
    fn from(b: SipPhoneNumberInput) -> Self {
        Self {
            phone_number: b.phone_number,
            credentials_id: b.credentials_id,
            registration: b.registration,
            display_name: b.display_name,
            description: b.description,
            incoming_calls_agent_id: b.incoming_calls_agent_id,
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_trunks, create_trunk))
        .routes(routes!(get_trunk, replace_trunk, delete_trunk))
        .routes(routes!(list_numbers, create_number))
        .routes(routes!(get_number, replace_number, delete_number))
}

#[utoipa::path(get, path = "/api/v1/sip-credentials", tag = "dasha", params(PageParams),
    security(("bearerAuth" = [])), responses((status = 200, body = DashaPage<SipCredential>)))]
async fn list_trunks(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    QueryParams(params, ..): QueryParams<Dasha, PageParams>,
) -> Result<Json<DashaPage<SipCredential>>, Dasha> {
    let page = state
        .services
        .list_trunks(&caller.tenant, params.window()?)
        .await?;
    Ok(Json(DashaPage::from_page(page, SipCredential::from)))
}

#[utoipa::path(post, path = "/api/v1/sip-credentials", tag = "dasha",
    security(("bearerAuth" = [])), request_body = SipCredentialInput,
    responses((status = 201, body = SipCredential)))]
async fn create_trunk(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    JsonBody(body, ..): JsonBody<Dasha, SipCredentialInput>,
) -> Result<(StatusCode, Json<SipCredential>), Dasha> {
    let trunk = state
        .services
        .create_trunk(&caller.tenant, body.into())
        .await?;
    Ok((StatusCode::CREATED, Json(trunk.into())))
}

#[utoipa::path(get, path = "/api/v1/sip-credentials/{id}", tag = "dasha",
    security(("bearerAuth" = [])), params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = SipCredential)))]
async fn get_trunk(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    Path(id): Path<String>,
) -> Result<Json<SipCredential>, Dasha> {
    let trunk = state
        .services
        .trunk(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(Json(trunk.into()))
}

/// Full replace of the writable fields. While passwords are write-only, an absent or `null`
/// `authPassword` keeps the stored one and `""` clears it.
#[utoipa::path(put, path = "/api/v1/sip-credentials/{id}", tag = "dasha",
    security(("bearerAuth" = [])), params(("id" = String, Path, format = Uuid)),
    request_body = SipCredentialInput, responses((status = 200, body = SipCredential)))]
async fn replace_trunk(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    Path(id): Path<String>,
    JsonBody(body, ..): JsonBody<Dasha, SipCredentialInput>,
) -> Result<Json<SipCredential>, Dasha> {
    let id = uuid_path(&id)?;
    let trunk = state
        .services
        .replace_trunk(&caller.tenant, id, body.into())
        .await?;
    Ok(Json(trunk.into()))
}

/// Deletes SIP credentials; 409 while phone numbers still use them.
#[utoipa::path(delete, path = "/api/v1/sip-credentials/{id}", tag = "dasha",
    security(("bearerAuth" = [])), params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 409)))]
async fn delete_trunk(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    Path(id): Path<String>,
) -> Result<StatusCode, Dasha> {
    state
        .services
        .delete_trunk(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/sip-phone-numbers", tag = "dasha", params(PageParams),
    security(("bearerAuth" = [])), responses((status = 200, body = DashaPage<SipPhoneNumber>)))]
async fn list_numbers(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    QueryParams(params, ..): QueryParams<Dasha, PageParams>,
) -> Result<Json<DashaPage<SipPhoneNumber>>, Dasha> {
    let page = state
        .services
        .list_phone_numbers(&caller.tenant, params.window()?)
        .await?;
    let now = Timestamp::now();
    Ok(Json(DashaPage::from_page(page, |p| {
        SipPhoneNumber::from_model(p, now)
    })))
}

#[utoipa::path(post, path = "/api/v1/sip-phone-numbers", tag = "dasha",
    security(("bearerAuth" = [])), request_body = SipPhoneNumberInput,
    responses((status = 201, body = SipPhoneNumber)))]
async fn create_number(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    JsonBody(body, ..): JsonBody<Dasha, SipPhoneNumberInput>,
) -> Result<(StatusCode, Json<SipPhoneNumber>), Dasha> {
    let number = state
        .services
        .create_phone_number(&caller.tenant, body.into())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SipPhoneNumber::from_model(number, Timestamp::now())),
    ))
}

#[utoipa::path(get, path = "/api/v1/sip-phone-numbers/{phoneNumber}", tag = "dasha",
    security(("bearerAuth" = [])), params(("phoneNumber" = String, Path, example = "+14155550123")),
    responses((status = 200, body = SipPhoneNumber)))]
async fn get_number(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    Path(number): Path<String>,
) -> Result<Json<SipPhoneNumber>, Dasha> {
    let number = state.services.phone_number(&caller.tenant, &number).await?;
    Ok(Json(SipPhoneNumber::from_model(number, Timestamp::now())))
}

/// Full replace of the writable fields; `phoneNumber` itself cannot change.
#[utoipa::path(put, path = "/api/v1/sip-phone-numbers/{phoneNumber}", tag = "dasha",
    security(("bearerAuth" = [])), params(("phoneNumber" = String, Path)),
    request_body = SipPhoneNumberInput, responses((status = 200, body = SipPhoneNumber)))]
async fn replace_number(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    Path(number): Path<String>,
    JsonBody(body, ..): JsonBody<Dasha, SipPhoneNumberInput>,
) -> Result<Json<SipPhoneNumber>, Dasha> {
    let number = state
        .services
        .replace_phone_number(&caller.tenant, &number, body.into())
        .await?;
    Ok(Json(SipPhoneNumber::from_model(number, Timestamp::now())))
}

#[utoipa::path(delete, path = "/api/v1/sip-phone-numbers/{phoneNumber}", tag = "dasha",
    security(("bearerAuth" = [])), params(("phoneNumber" = String, Path)),
    responses((status = 204)))]
async fn delete_number(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    Path(number): Path<String>,
) -> Result<StatusCode, Dasha> {
    state
        .services
        .delete_phone_number(&caller.tenant, &number)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
