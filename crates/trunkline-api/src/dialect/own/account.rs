//! `GET /v1/account`: the account an API key belongs to, so a client holding only the key
//! (the web console) learns the account id that Vobiz paths and `X-Auth-ID` name.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::Own;
use crate::dialect::ProblemDetails;
use crate::error::Result;
use crate::extract::Caller;
use crate::AppState;

/// The caller's account (tenant).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// `MA_` and 10 upper-case letters or digits: Vobiz's `X-Auth-ID` and `{auth_id}`, Dasha's
    /// `orgId`.
    #[schema(pattern = "^MA_[A-Z0-9]{10}$")]
    account_id: String,
    name: String,
}

/// The account the presented API key belongs to.
#[utoipa::path(get, path = "/v1/account", tag = "trunkline",
    security(("apiKeyAuth" = []), ("bearerAuth" = []), ("authId" = [], "authToken" = [])),
    responses((status = 200, body = Account), (status = 401, response = ProblemDetails)))]
pub(super) async fn account(
    State(state): State<AppState>,
    caller: Caller<Own>,
) -> Result<Json<Account>, Own> {
    let tenant = state.services.tenant(&caller.tenant).await?;
    Ok(Json(Account {
        account_id: tenant.account_id.to_string(),
        name: tenant.name,
    }))
}
