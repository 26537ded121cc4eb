//! The vendor dialects. Each module holds shapes only — request and response types, its error
//! body, its auth header, its pagination parameters — and calls the shared services for every
//! rule. Adding a dialect means adding a module here and mounting its router in `lib.rs`.

pub mod dasha;
pub mod own;
pub(crate) mod schema;
pub mod ultravox;
pub mod vobiz;

use std::collections::BTreeMap;

use axum::http::request::Parts;
use axum::response::Response;
use secrecy::SecretString;
use serde::Serialize;
use trunkline_core::AccountId;
use utoipa::openapi::RefOr;
use utoipa::{ToResponse, ToSchema};

use crate::error::ApiError;

/// What distinguishes one dialect's HTTP surface from another's.
pub trait Dialect: Send + Sync + 'static {
    /// Renders an error in this dialect's body format.
    fn render(error: ApiError) -> Response;

    /// The API key the request presents, in this dialect's header(s).
    fn presented_key(parts: &Parts) -> Result<SecretString, ApiError>;

    /// Further checks once the key's tenant is known (e.g. Vobiz's `X-Auth-ID`).
    fn check_tenant(_parts: &Parts, _tenant: &AccountId) -> Result<(), ApiError> {
        Ok(())
    }
}

/// A header's value as text, if present and readable.
pub(crate) fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `Authorization: Bearer <token>`.
pub(crate) fn bearer(parts: &Parts) -> Option<SecretString> {
    let value = header(parts, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| SecretString::from(token.trim().to_owned()))
}

/// An RFC 9457 problem details body, as Dasha and trunkline's own `/v1/` write it (fields in
/// the order they are written).
#[derive(Serialize, ToSchema)]
pub struct ProblemDetails {
    /// A sentence for the client.
    detail: String,
    /// Messages per field (`$` for the body as a whole); on validation failures (400) only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    errors: Option<BTreeMap<String, Vec<String>>>,
    /// The HTTP status code.
    status: u16,
    /// The status's reason phrase, or "One or more validation errors occurred.".
    title: String,
    /// The status's section of RFC 9110.
    #[serde(rename = "type")]
    kind: String,
}

impl<'r> ToResponse<'r> for ProblemDetails {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        error_response(
            "ProblemDetails",
            "RFC 9457 problem details.",
            PROBLEM_JSON,
            "ProblemDetails",
        )
    }
}

const PROBLEM_JSON: &str = "application/problem+json";

/// A reusable error response (`components.responses`) whose body is the schema `schema`.
pub(crate) fn error_response<'r>(
    name: &'r str,
    description: &str,
    content_type: &str,
    schema: &str,
) -> (&'r str, RefOr<utoipa::openapi::Response>) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(schema)))
        .build();
    let response = ResponseBuilder::new()
        .description(description)
        .content(content_type, content)
        .build();
    (name, RefOr::T(response))
}

/// RFC 9457 problem details (`application/problem+json`), as ASP.NET Core writes them: `type`
/// points at the status's section of RFC 9110, `errors` appears on validation failures only.
pub(crate) fn problem_details(error: ApiError) -> Response {
    use axum::http::header::CONTENT_TYPE;
    use axum::response::IntoResponse;

    let section = match error.status.as_u16() {
        400 => "15.5.1",
        401 => "15.5.2",
        403 => "15.5.4",
        404 => "15.5.5",
        405 => "15.5.6",
        409 => "15.5.10",
        413 => "15.5.14",
        415 => "15.5.16",
        429 => "15.5.29",
        _ => "15.6.1",
    };
    let validation = !error.fields.is_empty();
    let title = if validation {
        "One or more validation errors occurred."
    } else {
        error.status.canonical_reason().unwrap_or("Error")
    };
    let errors = validation.then(|| {
        error
            .fields
            .iter()
            .map(|(field, messages)| {
                let name = if field.is_empty() {
                    "$"
                } else {
                    field.as_str()
                };
                (name.to_owned(), messages.clone())
            })
            .collect()
    });
    let body = ProblemDetails {
        detail: error.message,
        errors,
        status: error.status.as_u16(),
        title: title.to_owned(),
        kind: format!("https://tools.ietf.org/html/rfc9110#section-{section}"),
    };
    (
        error.status,
        [(CONTENT_TYPE, PROBLEM_JSON)],
        serde_json::to_string(&body).expect("serializable"),
    )
        .into_response()
}
