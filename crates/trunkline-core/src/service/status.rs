//! Reading live registration status by an id any dialect knows: an Ultravox registration id or
//! a Dasha phone number. The engine writes the status; this only reads it, and says `pending`
//! when nothing has been written yet.

use uuid::Uuid;

use super::Services;
use crate::error::ServiceError;
use crate::ids::AccountId;
use crate::model::{RegistrationAttempt, RegistrationState, RegistrationStatus};

/// Attempts shown by the history endpoint (the engine keeps as many).
pub const HISTORY_LENGTH: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationKind {
    Ultravox,
    Dasha,
}

impl RegistrationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationKind::Ultravox => "ultravox",
            RegistrationKind::Dasha => "dasha",
        }
    }
}

/// A registration's identity and its status (`None`: not yet attempted).
#[derive(Debug, Clone)]
pub struct RegistrationView {
    pub id: String,
    /// The id the engine and the status table use (a phone number's internal id).
    pub key: Uuid,
    pub kind: RegistrationKind,
    /// The state to show: the stored one, `disabled` for a number without registration, else
    /// `pending`.
    pub state: RegistrationState,
    pub status: Option<RegistrationStatus>,
}

impl RegistrationView {
    /// The state shown for a registration: `disabled` for a phone number without registration,
    /// else the engine's, else `pending` (nothing attempted yet).
    pub fn shown_state(
        registering: bool,
        status: Option<&RegistrationStatus>,
    ) -> RegistrationState {
        match status {
            _ if !registering => RegistrationState::Disabled,
            Some(status) => status.state,
            None => RegistrationState::Pending,
        }
    }
}

impl Services {
    pub async fn registration_view(
        &self,
        tenant: &AccountId,
        id: &str,
    ) -> Result<RegistrationView, ServiceError> {
        if let Ok(uuid) = Uuid::try_parse(id) {
            let registration = self.registration(tenant, uuid).await?;
            return Ok(RegistrationView {
                id: id.to_owned(),
                key: uuid,
                kind: RegistrationKind::Ultravox,
                state: RegistrationView::shown_state(true, registration.status.as_ref()),
                status: registration.status,
            });
        }
        let number = self.phone_number(tenant, id).await?;
        let state = RegistrationView::shown_state(number.registration, number.status.as_ref());
        Ok(RegistrationView {
            key: number.id,
            id: number.phone_number,
            kind: RegistrationKind::Dasha,
            state,
            status: number.status,
        })
    }

    /// The last REGISTER transactions of a registration, newest first.
    pub async fn registration_history(
        &self,
        tenant: &AccountId,
        id: &str,
    ) -> Result<Vec<RegistrationAttempt>, ServiceError> {
        let view = self.registration_view(tenant, id).await?;
        Ok(self
            .store
            .registration_attempts(tenant, view.key, HISTORY_LENGTH)
            .await?)
    }
}
