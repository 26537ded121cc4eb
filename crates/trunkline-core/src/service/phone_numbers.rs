//! Phone numbers on trunks (Dasha `sip-phone-numbers`); with `registration: true` each is an
//! outbound registration the engine keeps alive.

use uuid::Uuid;

use super::registrations::too_contended;
use super::{expect_applied, next_version, Services, UPDATE_ATTEMPTS};
use crate::error::ServiceError;
use crate::events::{ChangeOp, EntityKind};
use crate::ids::{AccountId, Timestamp};
use crate::input::Input;
use crate::model::PhoneNumber;
use crate::page::{OffsetPage, Window};
use crate::store::WriteOutcome;
use crate::validate::{Charset, TextRule, Validator};

const DISPLAY_NAME: TextRule = TextRule::new(0, 128, Charset::Quotable);
const DESCRIPTION: TextRule = TextRule::new(0, 1024, Charset::Printable);
const AGENT_ID: TextRule = TextRule::new(0, 256, Charset::Printable);

const NOT_E164: &str = "Enter a phone number in E.164 form, e.g. +14155550123.";
const NO_SUCH_TRUNK: &str = "No SIP credentials with this id.";

/// A phone number's writable fields as a client sent them (create, or full replace).
#[derive(Debug, Default)]
pub struct PhoneNumberDraft {
    pub phone_number: Input<String>,
    pub credentials_id: Input<String>,
    pub registration: Input<bool>,
    pub display_name: Input<String>,
    pub description: Input<String>,
    pub incoming_calls_agent_id: Input<String>,
}

/// `+` then 2–15 digits, the first not zero (ITU-T E.164).
pub fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

struct CheckedNumber {
    trunk_id: Uuid,
    registration: bool,
    display_name: Option<String>,
    description: Option<String>,
    incoming_calls_agent_id: Option<String>,
}

fn check_fields(v: &mut Validator, draft: PhoneNumberDraft) -> Option<CheckedNumber> {
    let trunk_id = match v.required("credentialsId", draft.credentials_id) {
        Some(text) => match Uuid::try_parse(&text) {
            Ok(id) => Some(id),
            Err(_) => {
                v.error("credentialsId", "Must be a valid UUID.");
                None
            }
        },
        None => None,
    };
    let registration = match draft.registration {
        Input::Value(flag) => flag,
        Input::Absent | Input::Null => false,
    };
    let display_name = v.optional_text("displayName", draft.display_name, DISPLAY_NAME);
    let description = v.optional_text("description", draft.description, DESCRIPTION);
    let incoming_calls_agent_id = v.optional_text(
        "incomingCallsAgentId",
        draft.incoming_calls_agent_id,
        AGENT_ID,
    );
    Some(CheckedNumber {
        trunk_id: trunk_id?,
        registration,
        display_name,
        description,
        incoming_calls_agent_id,
    })
}

impl Services {
    pub async fn create_phone_number(
        &self,
        tenant: &AccountId,
        mut draft: PhoneNumberDraft,
    ) -> Result<PhoneNumber, ServiceError> {
        let mut v = Validator::new();
        let number = v.required("phoneNumber", std::mem::take(&mut draft.phone_number));
        if number.as_deref().is_some_and(|n| !is_e164(n)) {
            v.error("phoneNumber", NOT_E164);
        }
        let checked = check_fields(&mut v, draft);
        v.finish()?;
        let (Some(number), Some(checked)) = (number, checked) else {
            unreachable!("validation passed")
        };
        let now = Timestamp::now();
        let phone_number = PhoneNumber {
            id: Uuid::new_v4(),
            tenant: tenant.clone(),
            phone_number: number,
            trunk_id: checked.trunk_id,
            registration: checked.registration,
            display_name: checked.display_name,
            description: checked.description,
            incoming_calls_agent_id: checked.incoming_calls_agent_id,
            created_at: now,
            updated_at: now,
            status: None,
        };
        match self.store.insert_phone_number(&phone_number).await? {
            WriteOutcome::ReferenceMissing => {
                return Err(ServiceError::invalid("credentialsId", NO_SUCH_TRUNK))
            }
            outcome => expect_applied(outcome, "This phone number already exists.")?,
        }
        self.publish(
            tenant,
            EntityKind::PhoneNumber,
            phone_number.id,
            ChangeOp::Created,
        )
        .await;
        Ok(phone_number)
    }

    pub async fn phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
    ) -> Result<PhoneNumber, ServiceError> {
        if !is_e164(number) {
            return Err(ServiceError::NotFound);
        }
        let mut found = self
            .store
            .phone_number(tenant, number)
            .await?
            .ok_or(ServiceError::NotFound)?;
        found.status = self.live.overlay(found.id, found.status.take());
        Ok(found)
    }

    /// Full replace of the writable fields; the number itself is the key and cannot change.
    pub async fn replace_phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
        mut draft: PhoneNumberDraft,
    ) -> Result<PhoneNumber, ServiceError> {
        let mut v = Validator::new();
        match std::mem::take(&mut draft.phone_number) {
            Input::Value(sent) if sent != number => v.error(
                "phoneNumber",
                "The phone number cannot be changed; create a new one.",
            ),
            _ => {}
        }
        let checked = check_fields(&mut v, draft);
        v.finish()?;
        let checked = checked.expect("validation passed");
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.phone_number(tenant, number).await?;
            let next = PhoneNumber {
                trunk_id: checked.trunk_id,
                registration: checked.registration,
                display_name: checked.display_name.clone(),
                description: checked.description.clone(),
                incoming_calls_agent_id: checked.incoming_calls_agent_id.clone(),
                updated_at: next_version(current.updated_at),
                ..current.clone()
            };
            match self
                .store
                .update_phone_number(&next, current.updated_at)
                .await?
            {
                WriteOutcome::Stale => continue,
                WriteOutcome::ReferenceMissing => {
                    return Err(ServiceError::invalid("credentialsId", NO_SUCH_TRUNK))
                }
                outcome => expect_applied(outcome, "")?,
            }
            self.publish(tenant, EntityKind::PhoneNumber, next.id, ChangeOp::Updated)
                .await;
            return Ok(next);
        }
        Err(too_contended())
    }

    pub async fn delete_phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
    ) -> Result<(), ServiceError> {
        let current = self.phone_number(tenant, number).await?;
        expect_applied(self.store.delete_phone_number(tenant, number).await?, "")?;
        self.publish(
            tenant,
            EntityKind::PhoneNumber,
            current.id,
            ChangeOp::Deleted,
        )
        .await;
        Ok(())
    }

    pub async fn list_phone_numbers(
        &self,
        tenant: &AccountId,
        window: Window,
    ) -> Result<OffsetPage<PhoneNumber>, ServiceError> {
        let mut items = self.store.phone_numbers_page(tenant, window).await?;
        for item in &mut items {
            item.status = self.live.overlay(item.id, item.status.take());
        }
        let total = self.store.count_phone_numbers(tenant).await?;
        Ok(OffsetPage {
            items,
            total,
            offset: window.offset,
            limit: window.limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_e164;

    #[test]
    fn e164() {
        assert!(is_e164("+14155550123"));
        assert!(is_e164("+44"));
        for bad in [
            "14155550123",
            "+0123",
            "+1",
            "+1234567890123456",
            "+1 415",
            "+",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }
}
