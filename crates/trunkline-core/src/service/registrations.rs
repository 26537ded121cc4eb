//! Outbound registrations (Ultravox `SipRegistration`): validation, CRUD, keyset pages.

use secrecy::SecretString;
use uuid::Uuid;

use super::{expect_applied, next_version, Services, UPDATE_ATTEMPTS};
use crate::error::{ServiceError, StoreError};
use crate::events::{ChangeOp, EntityKind};
use crate::ids::{AccountId, Timestamp};
use crate::input::Input;
use crate::model::Registration;
use crate::page::{Cursor, Direction, KeysetPage, Position, Seek};
use crate::sip_uri::SipTarget;
use crate::store::WriteOutcome;
use crate::validate::{Charset, TextRule, Validator};

const USERNAME: TextRule = TextRule::new(1, 60, Charset::SipUser);
const AUTH_USER: TextRule = TextRule::new(1, 60, Charset::Quotable);
const PASSWORD: TextRule = TextRule::new(1, 128, Charset::Printable);
const PROXY: TextRule = TextRule::new(1, 100, Charset::Printable);

/// A registration as a client sent it, for create (all required fields) or partial update.
#[derive(Debug, Default)]
pub struct RegistrationDraft {
    pub username: Input<String>,
    pub password: Input<SecretString>,
    pub proxy: Input<String>,
    pub outbound_proxy: Input<String>,
    pub auth_user: Input<String>,
}

fn check_target(v: &mut Validator, field: &str, value: &str) {
    if let Err(problem) = SipTarget::parse(value) {
        v.error(
            field,
            format!("Enter a valid SIP server address: {problem}."),
        );
    }
}

impl Services {
    pub async fn create_registration(
        &self,
        tenant: &AccountId,
        draft: RegistrationDraft,
    ) -> Result<Registration, ServiceError> {
        let mut v = Validator::new();
        let username = v.required_text("username", draft.username, USERNAME);
        let password = v.required_secret("password", draft.password, PASSWORD);
        let proxy = v.required_text("proxy", draft.proxy, PROXY);
        if let Some(proxy) = &proxy {
            check_target(&mut v, "proxy", proxy);
        }
        let outbound_proxy = v.optional_text("outboundProxy", draft.outbound_proxy, PROXY);
        if let Some(outbound) = &outbound_proxy {
            check_target(&mut v, "outboundProxy", outbound);
        }
        let auth_user = v.optional_text("authUser", draft.auth_user, AUTH_USER);
        v.finish()?;
        let (Some(username), Some(password), Some(proxy)) = (username, password, proxy) else {
            unreachable!("validation passed, so required fields are present")
        };
        let now = Timestamp::now();
        let registration = Registration {
            id: Uuid::new_v4(),
            tenant: tenant.clone(),
            username,
            proxy,
            outbound_proxy,
            auth_user,
            created_at: now,
            updated_at: now,
            status: None,
        };
        self.store
            .insert_registration(&registration, &password)
            .await?;
        self.publish(
            tenant,
            EntityKind::Registration,
            registration.id,
            ChangeOp::Created,
        )
        .await;
        Ok(registration)
    }

    pub async fn registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Registration, ServiceError> {
        let mut registration = self
            .store
            .registration(tenant, id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        registration.status = self.live.overlay(id, registration.status.take());
        Ok(registration)
    }

    /// Partial update: absent fields stay, `null` clears nullable ones.
    pub async fn update_registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
        draft: RegistrationDraft,
    ) -> Result<Registration, ServiceError> {
        let mut v = Validator::new();
        let username = v.patch_text("username", draft.username, USERNAME, false);
        let password = match draft.password {
            Input::Null => {
                v.error("password", crate::validate::NOT_NULL);
                None
            }
            Input::Value(secret) => v.check_secret("password", secret, PASSWORD),
            Input::Absent => None,
        };
        let proxy = v.patch_text("proxy", draft.proxy, PROXY, false);
        if let Input::Value(proxy) = &proxy {
            check_target(&mut v, "proxy", proxy);
        }
        let outbound_proxy = v.patch_text("outboundProxy", draft.outbound_proxy, PROXY, true);
        if let Input::Value(outbound) = &outbound_proxy {
            check_target(&mut v, "outboundProxy", outbound);
        }
        let auth_user = v.patch_text("authUser", draft.auth_user, AUTH_USER, true);
        v.finish()?;

        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.registration(tenant, id).await?;
            let mut next = current.clone();
            apply(&mut next.username, &username);
            apply(&mut next.proxy, &proxy);
            apply_nullable(&mut next.outbound_proxy, &outbound_proxy);
            apply_nullable(&mut next.auth_user, &auth_user);
            next.updated_at = next_version(current.updated_at);
            match self
                .store
                .update_registration(&next, password.as_ref(), current.updated_at)
                .await?
            {
                WriteOutcome::Stale => continue,
                outcome => expect_applied(outcome, "")?,
            }
            self.publish(tenant, EntityKind::Registration, id, ChangeOp::Updated)
                .await;
            return Ok(next);
        }
        Err(too_contended())
    }

    pub async fn delete_registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        expect_applied(self.store.delete_registration(tenant, id).await?, "")?;
        self.publish(tenant, EntityKind::Registration, id, ChangeOp::Deleted)
            .await;
        Ok(())
    }

    /// One keyset page. `next`/`previous` are present exactly when rows lie beyond the page.
    pub async fn list_registrations(
        &self,
        tenant: &AccountId,
        cursor: Option<Cursor>,
        size: u32,
    ) -> Result<KeysetPage<Registration>, ServiceError> {
        let seek = cursor.map(|c| c.0);
        let mut rows = self
            .store
            .registrations_page(tenant, seek, size + 1)
            .await?;
        let more_in_direction = rows.len() > size as usize;
        rows.truncate(size as usize);
        for row in &mut rows {
            row.status = self.live.overlay(row.id, row.status.take());
        }
        let backward = matches!(
            seek,
            Some(Seek {
                direction: Direction::Backward,
                ..
            })
        );
        if backward {
            rows.reverse();
        }
        let first = rows.first().map(position);
        let last = rows.last().map(position);

        // Beyond the far end of the page we know from the extra row; beyond the near end we ask,
        // unless this is the first page.
        let (has_next, has_previous) = match seek {
            None => (more_in_direction, false),
            Some(seek) => {
                let near = match seek.direction {
                    Direction::Forward => first.map(|p| before(p, false)),
                    Direction::Backward => last.map(|p| after(p, false)),
                }
                .unwrap_or(Seek {
                    // Empty page: look back across the cursor position itself.
                    direction: opposite(seek.direction),
                    position: seek.position,
                    inclusive: !seek.inclusive,
                });
                let near_exists = self.store.registrations_exist(tenant, near).await?;
                match seek.direction {
                    Direction::Forward => (more_in_direction, near_exists),
                    Direction::Backward => (near_exists, more_in_direction),
                }
            }
        };
        let next = match (has_next, last) {
            (true, Some(last)) => Some(Cursor(after(last, false))),
            (true, None) => seek.map(|s| {
                Cursor(Seek {
                    direction: Direction::Forward,
                    inclusive: !s.inclusive,
                    ..s
                })
            }),
            _ => None,
        };
        let previous = match (has_previous, first) {
            (true, Some(first)) => Some(Cursor(before(first, false))),
            (true, None) => seek.map(|s| {
                Cursor(Seek {
                    direction: Direction::Backward,
                    inclusive: !s.inclusive,
                    ..s
                })
            }),
            _ => None,
        };
        let total = self.store.count_registrations(tenant).await?;
        Ok(KeysetPage {
            items: rows,
            next,
            previous,
            total,
        })
    }
}

fn position(registration: &Registration) -> Position {
    Position {
        created: registration.created_at,
        id: registration.id,
    }
}

fn after(position: Position, inclusive: bool) -> Seek {
    Seek {
        direction: Direction::Forward,
        position,
        inclusive,
    }
}

fn before(position: Position, inclusive: bool) -> Seek {
    Seek {
        direction: Direction::Backward,
        position,
        inclusive,
    }
}

fn opposite(direction: Direction) -> Direction {
    match direction {
        Direction::Forward => Direction::Backward,
        Direction::Backward => Direction::Forward,
    }
}

pub(super) fn apply(field: &mut String, change: &Input<String>) {
    if let Input::Value(value) = change {
        field.clone_from(value);
    }
}

pub(super) fn apply_nullable(field: &mut Option<String>, change: &Input<String>) {
    match change {
        Input::Absent => {}
        Input::Null => *field = None,
        Input::Value(value) => *field = Some(value.clone()),
    }
}

pub(super) fn too_contended() -> ServiceError {
    ServiceError::Internal(StoreError::Database(
        "the row kept changing during the update".to_owned(),
    ))
}
