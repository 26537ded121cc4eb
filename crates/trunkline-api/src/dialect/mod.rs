//! The vendor dialects. Each module holds shapes only — request and response types, its error
//! body, its auth header, its pagination parameters — and calls the shared services for every
//! rule. Adding a dialect means adding a module here and mounting its router in `lib.rs`.

pub mod dasha;
pub mod own;
pub mod ultravox;
pub mod vobiz;

use axum::http::request::Parts;
use axum::response::Response;
use secrecy::SecretString;
use trunkline_core::AccountId;

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
    let mut body = serde_json::json!({
        "type": format!("https://tools.ietf.org/html/rfc9110#section-{section}"),
        "title": title,
        "status": error.status.as_u16(),
        "detail": error.message,
    });
    if validation {
        let errors: serde_json::Map<String, serde_json::Value> = error
            .fields
            .iter()
            .map(|(field, messages)| {
                let name = if field.is_empty() {
                    "$"
                } else {
                    field.as_str()
                };
                (name.to_owned(), serde_json::Value::from(messages.clone()))
            })
            .collect();
        body["errors"] = serde_json::Value::Object(errors);
    }
    (
        error.status,
        [(CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}
