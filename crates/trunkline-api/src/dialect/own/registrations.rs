//! Outbound registrations of both kinds in trunkline's own words: the list with its counts by
//! state (`GET /v1/registrations`, what the web console shows), one registration's live status
//! (`GET /v1/registrations/{id}`) and its last attempts (`…/history`). Each item of the list is
//! the `{id}` body (`trunkline_core::view::RegistrationStatusView`) plus what a person finds
//! it by; the rules (live state, filters, order) are core's `Services::registration_list`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use trunkline_core::model::RegistrationState;
use trunkline_core::service::{
    registration_list_window, ListedRegistration, RegistrationFilter, QUERY_MAX_CHARS,
};
use trunkline_core::view::RegistrationStatusView;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::Own;
use crate::dialect::ProblemDetails;
use crate::error::Result;
use crate::extract::{int_param, Caller, PathParams, QueryParams};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    // Described in `state_filter` (a `schema_with` schema drops the doc comment).
    #[param(value_type = Option<String>, schema_with = state_filter)]
    state: Option<String>,
    /// Only registrations whose user (Ultravox `username`) or phone number contains this, in
    /// any case; empty keeps all.
    #[param(value_type = Option<String>, max_length = 100)]
    q: Option<String>,
    /// Matching registrations to skip (default 0).
    #[param(value_type = Option<i64>, minimum = 0)]
    offset: Option<String>,
    /// Registrations to return (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// `failed`, or one of the states.
fn state_filter() -> Object {
    let names = std::iter::once("failed").chain(RegistrationState::ALL.iter().map(|s| s.as_str()));
    ObjectBuilder::new()
        .description(Some(
            "Only registrations in this state; `failed` keeps every `failed_*` state.",
        ))
        .schema_type(Type::String)
        .enum_values(Some(names))
        .build()
}

/// Every state's name, each with its count.
fn state_counts() -> Object {
    let count = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .build();
    RegistrationState::ALL
        .iter()
        .fold(ObjectBuilder::new(), |object, state| {
            object
                .property(state.as_str(), count.clone())
                .required(state.as_str())
        })
        .schema_type(Type::Object)
        .build()
}

/// One outbound registration of the list: the `GET /v1/registrations/{id}` body, and what a
/// person finds it by.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListedRegistrationView {
    #[serde(flatten)]
    status: RegistrationStatusView,
    /// The Ultravox `username`, or the phone number.
    user: String,
    /// The digest username where one is set (Ultravox `authUser`, the trunk's `authUser`).
    #[schema(required = true)]
    auth_user: Option<String>,
    /// Ultravox `proxy`; for a phone number its trunk's `domain`, else its `server`.
    registrar: String,
    /// A phone number's trunk (Dasha `credentialsId`); `null` for Ultravox.
    #[schema(required = true, format = Uuid)]
    trunk_id: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<ListedRegistration> for ListedRegistrationView {
    fn from(item: ListedRegistration) -> Self {
        Self {
            status: RegistrationStatusView::from(&item.view),
            user: item.user,
            auth_user: item.auth_user,
            registrar: item.registrar,
            trunk_id: item.trunk_id.map(|id| id.to_string()),
            created_at: item.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RegistrationList {
    /// Failing ones (`failed_*`) first, then oldest first.
    items: Vec<ListedRegistrationView>,
    /// How many of the tenant's registrations are in each state, whatever the filters.
    #[schema(schema_with = state_counts)]
    counts: BTreeMap<&'static str, u64>,
    /// How many registrations the filters keep (`items` is a window of them).
    total: u64,
    offset: u64,
    limit: u32,
}

/// Every outbound registration of the caller's tenant, both kinds (Ultravox registrations,
/// and Dasha phone numbers: `disabled` when their registration is off), in the live state
/// `GET /v1/registrations/{id}` shows, failing ones first; with the counts by state.
#[utoipa::path(get, path = "/v1/registrations", tag = "trunkline", params(ListParams),
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = RegistrationList),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails)))]
pub(super) async fn registration_list(
    State(state): State<AppState>,
    caller: Caller<Own>,
    QueryParams(params, ..): QueryParams<Own, ListParams>,
) -> Result<Json<RegistrationList>, Own> {
    let offset = int_param("offset", params.offset.as_deref());
    let limit = int_param("limit", params.limit.as_deref());
    let window = registration_list_window(offset?, limit?)?;
    let filter = RegistrationFilter::parse(params.state.as_deref(), params.q.as_deref())?;
    let list = state
        .services
        .registration_list(&caller.tenant, &filter, window)
        .await?;
    Ok(Json(RegistrationList {
        items: list.items.into_iter().map(Into::into).collect(),
        counts: RegistrationState::ALL
            .iter()
            .map(|s| (s.as_str(), list.counts.get(*s)))
            .collect(),
        total: list.matching,
        offset: window.offset,
        limit: window.limit,
    }))
}

// The document states `q`'s limit as a literal (`ListParams`); it must be core's.
const _: () = assert!(QUERY_MAX_CHARS == 100);

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

/// The last REGISTER transactions of a registration, newest first.
#[utoipa::path(get, path = "/v1/registrations/{id}/history", tag = "trunkline",
    params(("id" = String, Path)),
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = History),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
pub(super) async fn registration_history(
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
pub(super) async fn registration_status(
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
