//! Error types of the domain layer.
//!
//! Policy: the services return [`ServiceError`], whose variants are the outcomes a client can
//! act on (validation, not found, conflict, authentication, permission) plus one opaque
//! `Internal` for store failures. Each REST dialect renders these in its own error body; the
//! internal detail is logged, never sent. [`StoreError`] is what a store implementation may
//! return; the services translate it.

use std::collections::BTreeMap;

/// Per-field validation messages, keyed by the field's wire name in camelCase or snake_case as
/// the dialect names it. Ordered so error bodies are deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.0.iter()
    }

    /// `Ok(())` when nothing was recorded, else the errors as a [`ServiceError::Validation`].
    pub fn into_result(self) -> Result<(), ServiceError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Validation(self))
        }
    }

    /// One line naming every field and its first message, for dialects with a single-string
    /// error body. Errors about the body as a whole (field `""`) carry no name.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(field, messages)| {
                let message = messages.first().map(String::as_str).unwrap_or("");
                if field.is_empty() {
                    message.to_owned()
                } else {
                    format!("{field}: {message}")
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What a service call can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("validation failed: {}", .0.summary())]
    Validation(FieldErrors),
    /// The object does not exist *for this tenant* (another tenant's id looks the same).
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("authentication credentials were not provided or are not valid")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl ServiceError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(FieldErrors::single(field, message))
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        Self::Internal(err)
    }
}

/// Failures a store implementation reports.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness or reference constraint refused the write; nothing was written.
    #[error("constraint violated: {0}")]
    Constraint(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("sealed secret could not be opened: {0}")]
    Crypto(String),
}
