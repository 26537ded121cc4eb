//! The admin API (`/v1/admin/…`): tenants and API keys over HTTP, for operators who do not use
//! the CLI. Guarded by `Authorization: Bearer <admin_token>`; absent entirely (404) when no
//! admin token is configured. The presented and configured tokens are compared as SHA-256
//! digests in constant time, so neither the token's length nor its content shows in timing.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use trunkline_core::service::IssuedKey;
use trunkline_core::AccountId;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dialect::own::{self, Own};
use crate::dialect::schema::printable;
use crate::dialect::{bearer, ProblemDetails};
use crate::error::{ApiError, DialectError, Result};
use crate::extract::{JsonBody, PathParams};
use crate::AppState;

/// A configured admin token shorter than this is warned about at start.
pub const MIN_TOKEN_CHARS: usize = 32;

/// Whether `token` is shorter than [`MIN_TOKEN_CHARS`] characters.
pub fn token_is_short(token: &SecretString) -> bool {
    token.expose_secret().chars().count() < MIN_TOKEN_CHARS
}

/// Whether `presented` is the configured token. Both sides are reduced to SHA-256 digests
/// first: a byte-wise constant-time compare of the raw tokens would still return early on a
/// length mismatch (revealing the length), and digests are always 32 bytes.
fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    let presented = Sha256::digest(presented);
    let expected = Sha256::digest(expected);
    presented.ct_eq(&expected).into()
}

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = DialectError<Own>;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let Some(expected) = &state.admin_token else {
            return Err(ApiError::not_found().into());
        };
        let presented = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        if token_matches(
            presented.expose_secret().as_bytes(),
            expected.expose_secret().as_bytes(),
        ) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized().into())
        }
    }
}

/// A new tenant's (or key's) credentials; the key is shown this once.
#[derive(Serialize, ToSchema)]
pub struct IssuedKeyBody {
    account_id: String,
    api_key: String,
}

impl From<IssuedKey> for IssuedKeyBody {
    fn from(issued: IssuedKey) -> Self {
        Self {
            account_id: issued.account_id.to_string(),
            api_key: issued.api_key.expose_secret().to_owned(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewTenant {
    #[schema(schema_with = printable::<1, 100>)]
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TenantBody {
    account_id: String,
    name: String,
    created_at: String,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(own::Components::openapi())
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(create_api_key))
        .routes(routes!(revoke_api_key))
}

#[utoipa::path(get, path = "/v1/admin/tenants", tag = "admin", security(("adminToken" = [])),
    responses((status = 200, body = Vec<TenantBody>),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
async fn list_tenants(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<TenantBody>>, Own> {
    let tenants = state.services.tenants().await?;
    Ok(Json(
        tenants
            .into_iter()
            .map(|t| TenantBody {
                account_id: t.account_id.to_string(),
                name: t.name,
                created_at: t.created_at.to_rfc3339(),
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/admin/tenants", tag = "admin", security(("adminToken" = [])),
    request_body = NewTenant,
    responses((status = 201, body = IssuedKeyBody),
        (status = 400, response = ProblemDetails), (status = 401, response = ProblemDetails),
        (status = 404, response = ProblemDetails), (status = 413, response = ProblemDetails),
        (status = 415, response = ProblemDetails)))]
async fn create_tenant(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(body, ..): JsonBody<Own, NewTenant>,
) -> Result<(StatusCode, Json<IssuedKeyBody>), Own> {
    let issued = state.services.create_tenant(&body.name).await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

#[utoipa::path(post, path = "/v1/admin/tenants/{account_id}/api-keys", tag = "admin",
    security(("adminToken" = [])), params(("account_id" = String, Path)),
    responses((status = 201, body = IssuedKeyBody),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
async fn create_api_key(
    State(state): State<AppState>,
    _: Admin,
    PathParams(account_id, ..): PathParams<Own, String>,
) -> Result<(StatusCode, Json<IssuedKeyBody>), Own> {
    let tenant = AccountId::parse(&account_id).ok_or_else(ApiError::not_found)?;
    let issued = state.services.create_api_key(&tenant).await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

#[utoipa::path(delete, path = "/v1/admin/api-keys/{prefix}", tag = "admin",
    security(("adminToken" = [])), params(("prefix" = String, Path)),
    responses((status = 204),
        (status = 401, response = ProblemDetails), (status = 404, response = ProblemDetails)))]
async fn revoke_api_key(
    State(state): State<AppState>,
    _: Admin,
    PathParams(prefix, ..): PathParams<Own, String>,
) -> Result<StatusCode, Own> {
    state.services.revoke_api_key(&prefix).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal_whatever_their_lengths() {
        let token = b"an-admin-token-of-forty-characters-long!";
        assert!(token_matches(token, token));
        assert!(!token_matches(
            b"an-admin-token-of-forty-characters-long?",
            token
        ));
        // A prefix, an extension and the empty string all differ.
        assert!(!token_matches(&token[..10], token));
        assert!(!token_matches(
            b"an-admin-token-of-forty-characters-long!!",
            token
        ));
        assert!(!token_matches(b"", token));
    }

    #[test]
    fn short_means_fewer_than_32_characters() {
        assert!(token_is_short(&SecretString::from("x".repeat(31))));
        assert!(!token_is_short(&SecretString::from("x".repeat(32))));
        // Characters, not bytes: 16 two-byte characters are still short.
        assert!(token_is_short(&SecretString::from("é".repeat(16))));
    }
}
