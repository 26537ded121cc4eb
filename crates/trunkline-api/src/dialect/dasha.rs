//! Dasha dialect: trunks at `/api/v1/sip-credentials`, numbers at `/api/v1/sip-phone-numbers`,
//! `Authorization: Bearer`, RFC 9457 problem details, `skip`/`take` pages as
//! `{items, totalCount, skip, take}`.

use axum::extract::State;
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
use utoipa::openapi::schema::Object;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::{
    e164, host_or_null, host_port, one_of, one_of_or_null, printable_or_null, quotable_or_null,
    secret_or_null, transport_name, uuid, TRANSPORTS,
};
use super::{bearer, problem_details, Dialect, ProblemDetails};
use crate::error::{ApiError, Result};
use crate::extract::{int_param, uuid_path, Caller, JsonBody, PathParams, QueryParams};
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

/// The error responses of this dialect in the document's components.
#[derive(OpenApi)]
#[openapi(components(schemas(ProblemDetails), responses(ProblemDetails)))]
struct Components;

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
    /// Rows to skip (default 0).
    #[param(value_type = Option<i64>, minimum = 0)]
    skip: Option<String>,
    /// Rows to return (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
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

/// SIP trunk credentials, as in the vendor's `GET /api/v1/sip-credentials/{id}`; `source` is
/// always `manual` for credentials created through the API.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipCredential {
    #[schema(format = Uuid)]
    id: String,
    org_id: String,
    server: String,
    #[schema(schema_with = transport_name)]
    transport: &'static str,
    #[schema(schema_with = source_name)]
    source: &'static str,
    #[schema(format = DateTime)]
    created_time: String,
    #[schema(format = DateTime)]
    last_update_time: String,
    #[schema(required = true)]
    domain: Option<String>,
    #[schema(required = true)]
    auth_user: Option<String>,
    /// `null` unless the operator enabled `dasha.reveal_auth_password`.
    #[schema(required = true)]
    auth_password: Option<String>,
    #[schema(required = true)]
    description: Option<String>,
    #[schema(required = true)]
    cps_limit: Option<i32>,
    #[schema(required = true)]
    cps_key: Option<String>,
    /// Always `null`: no VoIP provider integration.
    #[schema(required = true, format = Uuid)]
    provider_id: Option<String>,
}

fn transport_or_null() -> Object {
    one_of_or_null(TRANSPORTS)
}

fn source_name() -> Object {
    one_of(&["manual", "provider"])
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

/// Writable fields of SIP credentials (create, or full replace). `server` is `host` or
/// `host:port` (a name, an IPv4 address or a bracketed IPv6 address); `transport` defaults to
/// `udp`; `domain` is a host without port, the registrar's domain when it is not `server`'s
/// host. While passwords are write-only, an absent or `null` `authPassword` keeps the stored one
/// on a PUT, and `""` clears it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipCredentialInput {
    #[serde(default)]
    #[schema(schema_with = host_port, required = true)]
    server: Input<String>,
    #[serde(default)]
    #[schema(schema_with = transport_or_null)]
    transport: Input<String>,
    #[serde(default)]
    #[schema(schema_with = host_or_null)]
    domain: Input<String>,
    #[serde(default)]
    #[schema(schema_with = quotable_or_null::<1, 128>)]
    auth_user: Input<String>,
    #[serde(default)]
    #[schema(schema_with = secret_or_null::<0, 128>)]
    auth_password: Input<SecretString>,
    #[serde(default)]
    #[schema(schema_with = printable_or_null::<0, 1024>)]
    description: Input<String>,
    #[serde(default)]
    #[schema(value_type = Option<i32>, nullable, minimum = 1, maximum = 2147483647)]
    cps_limit: Input<WholeNumber>,
    #[serde(default)]
    #[schema(schema_with = printable_or_null::<1, 128>)]
    cps_key: Input<String>,
}

/// A JSON integer. A number written with a zero fraction (`5.0`) is one too, as JSON Schema
/// counts integers; any other fraction is a type error.
pub struct WholeNumber(i64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        use serde::de::{Error, Unexpected, Visitor};

        struct Whole;

        impl Visitor<'_> for Whole {
            type Value = WholeNumber;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: Error>(self, v: i64) -> std::result::Result<WholeNumber, E> {
                Ok(WholeNumber(v))
            }

            fn visit_u64<E: Error>(self, v: u64) -> std::result::Result<WholeNumber, E> {
                i64::try_from(v)
                    .map(WholeNumber)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }

            fn visit_f64<E: Error>(self, v: f64) -> std::result::Result<WholeNumber, E> {
                // i64's range is [-2^63, 2^63); both bounds are exact in f64.
                if v.fract() == 0.0
                    && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v)
                {
                    Ok(WholeNumber(v as i64))
                } else {
                    Err(E::invalid_type(Unexpected::Float(v), &self))
                }
            }
        }

        deserializer.deserialize_any(Whole)
    }
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
            cps_limit: b.cps_limit.map(|n| n.0),
            cps_key: b.cps_key,
        }
    }
}

// --- phone numbers ----------------------------------------------------------------------------------

/// Live registration summary of a phone number with `registration: true`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationStatusBody {
    #[schema(schema_with = coarse_state)]
    state: &'static str,
    #[schema(required = true)]
    error_description: Option<&'static str>,
    #[schema(required = true)]
    sip_response_message: Option<String>,
    #[schema(required = true, format = DateTime)]
    last_updated: Option<String>,
    #[schema(required = true, format = DateTime)]
    expires_at: Option<String>,
}

fn coarse_state() -> Object {
    one_of(&["Disabled", "Pending", "Registered", "Failed"])
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipPhoneNumber {
    phone_number: String,
    #[schema(format = Uuid)]
    credentials_id: String,
    registration: bool,
    /// `null` when `registration` is false.
    #[schema(required = true)]
    registration_status: Option<RegistrationStatusBody>,
    #[schema(required = true)]
    display_name: Option<String>,
    #[schema(required = true)]
    description: Option<String>,
    /// Always `null`: no VoIP provider integration.
    #[schema(required = true, format = Uuid)]
    provider_id: Option<String>,
    #[schema(required = true)]
    incoming_calls_agent_id: Option<String>,
    #[schema(format = DateTime)]
    created_time: String,
    #[schema(format = DateTime)]
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

/// A phone number to create: `phoneNumber` (E.164, unique per tenant: a duplicate is a 409)
/// on the SIP credentials `credentialsId` of the same tenant (any other id is a 400).
/// `incomingCallsAgentId` is opaque, stored and returned.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipPhoneNumberInput {
    #[serde(default)]
    #[schema(schema_with = e164, required = true)]
    phone_number: Input<String>,
    #[serde(default)]
    #[schema(schema_with = uuid, required = true)]
    credentials_id: Input<String>,
    /// Keep a REGISTER alive for this number on those credentials (default false).
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    registration: Input<bool>,
    #[serde(default)]
    #[schema(schema_with = quotable_or_null::<0, 128>)]
    display_name: Input<String>,
    #[serde(default)]
    #[schema(schema_with = printable_or_null::<0, 1024>)]
    description: Input<String>,
    #[serde(default)]
    #[schema(schema_with = printable_or_null::<0, 256>)]
    incoming_calls_agent_id: Input<String>,
}

/// A phone number's writable fields (full replace): as for creating one, but the number is the
/// path's, and a `phoneNumber` in the body must repeat it (any other is a 400).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipPhoneNumberReplaceInput {
    #[serde(default)]
    #[schema(ignore)]
    phone_number: Input<String>,
    #[serde(default)]
    #[schema(schema_with = uuid, required = true)]
    credentials_id: Input<String>,
    /// Keep a REGISTER alive for this number on those credentials (default false).
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    registration: Input<bool>,
    #[serde(default)]
    #[schema(schema_with = quotable_or_null::<0, 128>)]
    display_name: Input<String>,
    #[serde(default)]
    #[schema(schema_with = printable_or_null::<0, 1024>)]
    description: Input<String>,
    #[serde(default)]
    #[schema(schema_with = printable_or_null::<0, 256>)]
    incoming_calls_agent_id: Input<String>,
}

macro_rules! number_draft {
    ($body:ty) => {
        impl From<$body> for PhoneNumberDraft {
            fn from(b: $body) -> Self {
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
    };
}
number_draft!(SipPhoneNumberInput);
number_draft!(SipPhoneNumberReplaceInput);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Components::openapi())
        .routes(routes!(list_trunks, create_trunk))
        .routes(routes!(get_trunk, replace_trunk, delete_trunk))
        .routes(routes!(list_numbers, create_number))
        .routes(routes!(get_number, replace_number, delete_number))
}

#[utoipa::path(get, path = "/api/v1/sip-credentials", tag = "dasha", params(PageParams),
    security(("bearerAuth" = [])),
    responses((status = 200, body = DashaPage<SipCredential>),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails)))]
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
    responses((status = 201, body = SipCredential),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails),
        (status = 413, response = ProblemDetails), (status = 415, response = ProblemDetails)))]
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
    responses((status = 200, body = SipCredential),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
async fn get_trunk(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    PathParams(id, ..): PathParams<Dasha, String>,
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
    request_body = SipCredentialInput,
    responses((status = 200, body = SipCredential),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails),
        (status = 404, response = ProblemDetails), (status = 413, response = ProblemDetails),
        (status = 415, response = ProblemDetails)))]
async fn replace_trunk(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    PathParams(id, ..): PathParams<Dasha, String>,
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
    responses((status = 204),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails),
        (status = 409, response = ProblemDetails)))]
async fn delete_trunk(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    PathParams(id, ..): PathParams<Dasha, String>,
) -> Result<StatusCode, Dasha> {
    state
        .services
        .delete_trunk(&caller.tenant, uuid_path(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/sip-phone-numbers", tag = "dasha", params(PageParams),
    security(("bearerAuth" = [])),
    responses((status = 200, body = DashaPage<SipPhoneNumber>),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails)))]
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
    responses((status = 201, body = SipPhoneNumber),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails),
        (status = 409, response = ProblemDetails), (status = 413, response = ProblemDetails),
        (status = 415, response = ProblemDetails)))]
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
    responses((status = 200, body = SipPhoneNumber),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
async fn get_number(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    PathParams(number, ..): PathParams<Dasha, String>,
) -> Result<Json<SipPhoneNumber>, Dasha> {
    let number = state.services.phone_number(&caller.tenant, &number).await?;
    Ok(Json(SipPhoneNumber::from_model(number, Timestamp::now())))
}

/// Full replace of the writable fields; `phoneNumber` itself cannot change.
#[utoipa::path(put, path = "/api/v1/sip-phone-numbers/{phoneNumber}", tag = "dasha",
    security(("bearerAuth" = [])), params(("phoneNumber" = String, Path, example = "+14155550123")),
    request_body = SipPhoneNumberReplaceInput,
    responses((status = 200, body = SipPhoneNumber),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails),
        (status = 404, response = ProblemDetails), (status = 413, response = ProblemDetails),
        (status = 415, response = ProblemDetails)))]
async fn replace_number(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    PathParams(number, ..): PathParams<Dasha, String>,
    JsonBody(body, ..): JsonBody<Dasha, SipPhoneNumberReplaceInput>,
) -> Result<Json<SipPhoneNumber>, Dasha> {
    let number = state
        .services
        .replace_phone_number(&caller.tenant, &number, body.into())
        .await?;
    Ok(Json(SipPhoneNumber::from_model(number, Timestamp::now())))
}

#[utoipa::path(delete, path = "/api/v1/sip-phone-numbers/{phoneNumber}", tag = "dasha",
    security(("bearerAuth" = [])), params(("phoneNumber" = String, Path, example = "+14155550123")),
    responses((status = 204),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
async fn delete_number(
    State(state): State<AppState>,
    caller: Caller<Dasha>,
    PathParams(number, ..): PathParams<Dasha, String>,
) -> Result<StatusCode, Dasha> {
    state
        .services
        .delete_phone_number(&caller.tenant, &number)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::WholeNumber;

    fn whole(json: &str) -> Result<i64, serde_json::Error> {
        serde_json::from_str::<WholeNumber>(json).map(|n| n.0)
    }

    #[test]
    fn integers_may_carry_a_zero_fraction_and_nothing_else() {
        assert_eq!(whole("5").unwrap(), 5);
        assert_eq!(whole("-1").unwrap(), -1);
        assert_eq!(whole("5.0").unwrap(), 5);
        assert_eq!(whole("2147483647.0").unwrap(), 2_147_483_647);
        assert_eq!(whole("9223372036854775807").unwrap(), i64::MAX);
        for bad in ["1.5", "1e30", "18446744073709551615", "\"5\"", "true"] {
            assert!(whole(bad).is_err(), "{bad} was accepted");
        }
    }
}
