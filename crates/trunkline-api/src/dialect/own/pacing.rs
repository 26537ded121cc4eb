//! `POST /v1/pacing/{trunkId}/admit`: a dialer asks before it starts each outbound call. The
//! rule (which key, which rate) is core's `Services::pace_rule`; the decision is the
//! `trunkline-pacing` crate's `Pacer`. Here: the HTTP shape, holding the answer for a reserved
//! slot (`waitMs`), and the 429/503 headers.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use trunkline_pacing::{Admission, MAX_WAIT};
use utoipa::{IntoParams, ToSchema};

use super::Own;
use crate::dialect::{Dialect, ProblemDetails};
use crate::error::{ApiError, Result};
use crate::extract::{int_param, uuid_path, Caller, PathParams, QueryParams};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdmitParams {
    /// Wait up to this many milliseconds for a slot (default 0). When the next free slot falls
    /// within it, the slot is reserved and the 200 is sent at that moment; when it does not,
    /// the 429 comes at once (waiting could not change it).
    #[serde(rename = "waitMs")]
    #[param(rename = "waitMs", value_type = Option<u32>, minimum = 0, maximum = 30000)]
    wait_ms: Option<String>,
}

impl AdmitParams {
    fn max_wait(&self) -> std::result::Result<Duration, ApiError> {
        let max = MAX_WAIT.as_millis() as i64;
        match int_param("waitMs", self.wait_ms.as_deref())? {
            None => Ok(Duration::ZERO),
            Some(ms @ 0..) if ms <= max => Ok(Duration::from_millis(ms.unsigned_abs())),
            Some(_) => Err(ApiError::invalid_field(
                "waitMs",
                format!("Must be between 0 and {max}."),
            )),
        }
    }
}

/// The call may start now.
#[derive(Serialize, ToSchema)]
pub struct Admitted {
    /// Always `true`.
    admitted: bool,
}

/// The call must not start yet.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotAdmitted {
    /// Always `false`.
    admitted: bool,
    /// Milliseconds until a slot is free (rounded up); `Retry-After` says the same in seconds.
    retry_after_ms: u64,
}

/// Asks whether a call may start on a trunk now.
///
/// Spends one slot of the trunk's budget when it may: the budget of its `cpsKey` (shared by the tenant's trunks with that key, at the smallest
/// `cpsLimit` among them), else its own. A trunk without `cpsLimit` is always admitted. 503
/// when the shared pacing state (Redis) does not answer and `pacing.fail_open` is off.
#[utoipa::path(post, path = "/v1/pacing/{trunkId}/admit", tag = "trunkline",
    params(("trunkId" = String, Path, description = "A Dasha trunk (`sip-credentials`) id."), AdmitParams),
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = Admitted),
        (status = 429, body = NotAdmitted, headers(("Retry-After" = u64, description = "Seconds, rounded up."))),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails),
        (status = 404, response = ProblemDetails),
        (status = 503, response = ProblemDetails)))]
pub(super) async fn pacing_admit(
    State(state): State<AppState>,
    caller: Caller<Own>,
    PathParams(trunk_id, ..): PathParams<Own, String>,
    QueryParams(params, ..): QueryParams<Own, AdmitParams>,
) -> Result<Response, Own> {
    let trunk_id = uuid_path(&trunk_id)?;
    let max_wait = params.max_wait()?;
    let Some(rule) = state.services.pace_rule(&caller.tenant, trunk_id).await? else {
        return Ok(admitted());
    };
    match state
        .pacer
        .admit(&rule.key, rule.per_second, max_wait)
        .await
    {
        Admission::Admitted { wait } => {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Ok(admitted())
        }
        Admission::Rejected { retry_after } => {
            let retry_after_ms = u64::try_from(retry_after.as_nanos().div_ceil(1_000_000))
                .unwrap_or(u64::MAX)
                .max(1);
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(NotAdmitted {
                    admitted: false,
                    retry_after_ms,
                }),
            )
                .into_response();
            response.headers_mut().insert(
                RETRY_AFTER,
                HeaderValue::from(retry_after_ms.div_ceil(1000)),
            );
            Ok(response)
        }
        Admission::Unavailable => {
            let mut response = Own::render(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Call pacing is unavailable: its shared state (Redis) does not answer. \
                 No call was admitted; try again shortly.",
            ));
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            Ok(response)
        }
    }
}

fn admitted() -> Response {
    Json(Admitted { admitted: true }).into_response()
}
