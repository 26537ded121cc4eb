//! The HTTP error model: one [`ApiError`] for every failure, rendered by the dialect that
//! served the request ([`Dialect::render`]), so a client always gets its vendor's error body.
//!
//! Policy: service outcomes map to fixed statuses here and nowhere else; internal errors are
//! logged with their cause and answered with a bare 500 that reveals nothing.

use std::marker::PhantomData;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use trunkline_core::{FieldErrors, ServiceError};

use crate::dialect::Dialect;

/// Field name under which errors about the body as a whole are reported.
pub const BODY_FIELD: &str = "";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// A sentence for the client.
    pub message: String,
    /// Per-field messages (validation errors only).
    pub fields: FieldErrors,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            fields: FieldErrors::new(),
        }
    }

    pub fn validation(fields: FieldErrors) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: fields.summary(),
            fields,
        }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(FieldErrors::single(field, message))
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found.")
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Authentication credentials were not provided or are not valid.",
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Validation(fields) => Self::validation(fields),
            ServiceError::NotFound => Self::not_found(),
            ServiceError::Conflict(message) => Self::new(StatusCode::CONFLICT, message),
            ServiceError::Unauthorized => Self::unauthorized(),
            ServiceError::Forbidden(message) => Self::new(StatusCode::FORBIDDEN, message),
            ServiceError::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
            }
        }
    }
}

/// An [`ApiError`] that knows which dialect renders it; what handlers and extractors return.
pub struct DialectError<D>(pub ApiError, PhantomData<D>);

impl<D> DialectError<D> {
    pub fn new(error: ApiError) -> Self {
        Self(error, PhantomData)
    }
}

impl<D> std::fmt::Debug for DialectError<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<D> From<ApiError> for DialectError<D> {
    fn from(error: ApiError) -> Self {
        Self::new(error)
    }
}

impl<D> From<ServiceError> for DialectError<D> {
    fn from(error: ServiceError) -> Self {
        Self::new(error.into())
    }
}

impl<D: Dialect> IntoResponse for DialectError<D> {
    fn into_response(self) -> Response {
        D::render(self.0)
    }
}

/// A handler's result in dialect `D`.
pub type Result<T, D> = std::result::Result<T, DialectError<D>>;
