//! Request extractors shared by the dialects: the JSON body (content type, size, syntax and
//! types checked, errors in the dialect's shape), the authenticated tenant, and small parsers
//! for query and path values that name the offending parameter.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use trunkline_core::{AccountId, FieldErrors, Services};
use uuid::Uuid;

use crate::dialect::Dialect;
use crate::error::{ApiError, DialectError, BODY_FIELD};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON request body of type `T`, rejected in dialect `D`'s words.
pub struct JsonBody<D, T>(pub T, pub PhantomData<D>);

impl<S, D, T> FromRequest<S> for JsonBody<D, T>
where
    S: Send + Sync,
    D: Dialect,
    T: DeserializeOwned,
{
    type Rejection = DialectError<D>;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            let shown = if content_type.is_empty() {
                "none"
            } else {
                content_type
            };
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Unsupported media type \"{shown}\" in request: send application/json."),
            )
            .into());
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("Request body is larger than {BODY_LIMIT} bytes."),
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "The request body could not be read.",
                    )
                }
            })?;
        parse_json(&bytes)
            .map(|value| Self(value, PhantomData))
            .map_err(Into::into)
    }
}

/// `application/json`, optionally with parameters, or any `+json` type.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses JSON, telling syntax errors (the body as a whole) from type errors (one field).
///
/// Every request body is a JSON object. The text is parsed into a [`serde_json::Value`] first
/// and anything but an object is refused: serde would otherwise accept a struct written as a
/// positional array (`["alice", "secret", "pbx"]`), bypassing the field names altogether.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("JSON parse error: {}", without_location(&err.to_string())),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::validation(FieldErrors::single(
            BODY_FIELD,
            format!(
                "Invalid data. Expected a dictionary, but got {}.",
                python_type_name(&value)
            ),
        )));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." {
            BODY_FIELD.to_owned()
        } else {
            path
        };
        let inner = without_location(&err.inner().to_string()).to_owned();
        let message = if field.is_empty() {
            format!("Invalid data: {inner}.")
        } else {
            format!("Invalid value: {inner}.")
        };
        ApiError::validation(FieldErrors::single(field, message))
    })
}

/// What Django REST framework (and so an Ultravox client) calls a JSON value's type.
fn python_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "NoneType",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) if n.is_f64() => "float",
        serde_json::Value::Number(_) => "int",
        serde_json::Value::String(_) => "str",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "dict",
    }
}

/// serde_json appends " at line L column C"; clients do not need it.
fn without_location(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
}

/// The tenant whose API key the request presents, authenticated as dialect `D` does it.
pub struct Caller<D> {
    pub tenant: AccountId,
    _dialect: PhantomData<D>,
}

impl<S, D> FromRequestParts<S> for Caller<D>
where
    S: Send + Sync,
    Services: FromRef<S>,
    D: Dialect,
{
    type Rejection = DialectError<D>;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let key = D::presented_key(parts)?;
        let services = Services::from_ref(state);
        let tenant = services.authenticate(&key).await?;
        D::check_tenant(parts, &tenant)?;
        Ok(Self {
            tenant,
            _dialect: PhantomData,
        })
    }
}

/// Query parameters of type `T` (use `Option<String>` fields and parse with [`int_param`] so
/// errors name the parameter); a malformed query string is a 400 in dialect `D`'s words.
pub struct QueryParams<D, T>(pub T, pub PhantomData<D>);

impl<S, D, T> FromRequestParts<S> for QueryParams<D, T>
where
    S: Send + Sync,
    D: Dialect,
    T: DeserializeOwned,
{
    type Rejection = DialectError<D>;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(|value| Self(value, PhantomData))
            .map_err(|err| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid query string: {err}."),
                )
                .into()
            })
    }
}

/// Path parameters of type `T`. A segment that does not decode (percent-escapes that are not
/// UTF-8) cannot name a row, so it is a 404 in dialect `D`'s words, like any unknown id.
pub struct PathParams<D, T>(pub T, pub PhantomData<D>);

impl<S, D, T> FromRequestParts<S> for PathParams<D, T>
where
    S: Send + Sync,
    D: Dialect,
    T: DeserializeOwned + Send,
{
    type Rejection = DialectError<D>;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value, PhantomData))
            .map_err(|_| ApiError::not_found().into())
    }
}

/// An optional integer query parameter; anything else is a 400 naming it.
pub fn int_param(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    match value {
        None => Ok(None),
        Some(text) => text
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid_field(name, "A valid integer is required.")),
    }
}

/// A uuid path segment; anything else cannot name a row, so it is a 404.
pub fn uuid_path(text: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| ApiError::not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
        count: Option<i64>,
    }

    #[test]
    fn syntax_errors_are_body_level_and_type_errors_name_the_field() {
        let err = parse_json::<Body>(b"{\"name\": ").unwrap_err();
        assert!(err.fields.is_empty());
        assert!(err.message.starts_with("JSON parse error"));
        let err = parse_json::<Body>(b"{\"name\": 5}").unwrap_err();
        assert_eq!(err.fields.iter().next().unwrap().0, "name");
        let err = parse_json::<Body>(b"[1]").unwrap_err();
        assert_eq!(err.fields.iter().next().unwrap().0, BODY_FIELD);
        // A struct written as a positional array is still not an object.
        let err = parse_json::<Body>(b"[\"alice\", 5]").unwrap_err();
        assert_eq!(err.fields.iter().next().unwrap().0, BODY_FIELD);
        let err = parse_json::<Body>(b"[]").unwrap_err();
        assert_eq!(err.fields.iter().next().unwrap().0, BODY_FIELD);
        let err = parse_json::<Body>(b"{} trailing").unwrap_err();
        assert!(err.message.starts_with("JSON parse error"));
        assert!(parse_json::<Body>(b"{\"unknown\": true}").is_ok());
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }
}
