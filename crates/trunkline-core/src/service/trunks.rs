//! Outbound trunks (Dasha `sip-credentials`): validation, CRUD, offset pages, sealed passwords.

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::registrations::too_contended;
use super::{expect_applied, next_version, Services, UPDATE_ATTEMPTS};
use crate::error::ServiceError;
use crate::events::{ChangeOp, EntityKind};
use crate::ids::{AccountId, Timestamp};
use crate::input::Input;
use crate::model::{Transport, Trunk};
use crate::page::{OffsetPage, Window};
use crate::sip_uri::SipTarget;
use crate::store::{SecretChange, WriteOutcome};
use crate::validate::{Charset, TextRule, Validator};

const SERVER: TextRule = TextRule::new(1, 255, Charset::Printable);
const DOMAIN: TextRule = TextRule::new(1, 255, Charset::Printable);
const AUTH_USER: TextRule = TextRule::new(1, 128, Charset::Quotable);
const PASSWORD: TextRule = TextRule::new(0, 128, Charset::Printable);
const DESCRIPTION: TextRule = TextRule::new(0, 1024, Charset::Printable);
const CPS_KEY: TextRule = TextRule::new(1, 128, Charset::Printable);

/// A trunk's writable fields as a client sent them (create, or full replace).
#[derive(Debug, Default)]
pub struct TrunkDraft {
    pub server: Input<String>,
    pub transport: Input<String>,
    pub domain: Input<String>,
    pub auth_user: Input<String>,
    pub auth_password: Input<SecretString>,
    pub description: Input<String>,
    pub cps_limit: Input<i64>,
    pub cps_key: Input<String>,
}

/// A checked draft: the trunk's fields and what to do with the password.
struct CheckedTrunk {
    server: String,
    transport: Transport,
    domain: Option<String>,
    auth_user: Option<String>,
    password: SecretChange,
    description: Option<String>,
    cps_limit: Option<i32>,
    cps_key: Option<String>,
}

impl Services {
    /// Validates a draft. `absent_password` is what an absent or `null` password means.
    fn check_trunk(
        draft: TrunkDraft,
        absent_password: SecretChange,
    ) -> Result<CheckedTrunk, ServiceError> {
        let mut v = Validator::new();
        let server = v.required_text("server", draft.server, SERVER);
        if let Some(server) = &server {
            if let Err(problem) = SipTarget::parse_host_port(server) {
                v.error(
                    "server",
                    format!("Enter a valid host or host:port: {problem}."),
                );
            }
        }
        let transport = match draft.transport {
            Input::Absent | Input::Null => Transport::Udp,
            Input::Value(text) => Transport::parse(&text).unwrap_or_else(|| {
                v.error(
                    "transport",
                    format!("\"{text}\" is not a valid choice: use udp, tcp or tls."),
                );
                Transport::Udp
            }),
        };
        let domain = v.optional_text("domain", draft.domain, DOMAIN);
        if let Some(domain) = &domain {
            match SipTarget::parse_host_port(domain) {
                Ok((_, None)) => {}
                _ => v.error("domain", "Enter a valid domain name or IP address."),
            }
        }
        let auth_user = v.optional_text("authUser", draft.auth_user, AUTH_USER);
        let password = match draft.auth_password {
            Input::Absent | Input::Null => absent_password,
            Input::Value(secret) => match v.check_secret("authPassword", secret, PASSWORD) {
                Some(secret) if secret.expose_secret().is_empty() => SecretChange::Clear,
                Some(secret) => SecretChange::Set(secret),
                None => SecretChange::Keep,
            },
        };
        let description = v.optional_text("description", draft.description, DESCRIPTION);
        let cps_limit = match draft.cps_limit {
            Input::Value(limit) => match i32::try_from(limit) {
                Ok(limit) if limit >= 1 => Some(limit),
                _ => {
                    v.error(
                        "cpsLimit",
                        format!("Ensure this value is between 1 and {}.", i32::MAX),
                    );
                    None
                }
            },
            Input::Absent | Input::Null => None,
        };
        let cps_key = v.optional_text("cpsKey", draft.cps_key, CPS_KEY);
        v.finish()?;
        Ok(CheckedTrunk {
            server: server.expect("validated"),
            transport,
            domain,
            auth_user,
            password,
            description,
            cps_limit,
            cps_key,
        })
    }

    pub async fn create_trunk(
        &self,
        tenant: &AccountId,
        draft: TrunkDraft,
    ) -> Result<Trunk, ServiceError> {
        let checked = Self::check_trunk(draft, SecretChange::Clear)?;
        let now = Timestamp::now();
        let password = match &checked.password {
            SecretChange::Set(secret) => Some(secret.clone()),
            SecretChange::Keep | SecretChange::Clear => None,
        };
        let mut trunk = Trunk {
            id: Uuid::new_v4(),
            tenant: tenant.clone(),
            server: checked.server,
            transport: checked.transport,
            domain: checked.domain,
            auth_user: checked.auth_user,
            has_password: password.is_some(),
            revealed_password: None,
            description: checked.description,
            cps_limit: checked.cps_limit,
            cps_key: checked.cps_key,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_trunk(&trunk, password.as_ref()).await?;
        if self.settings.reveal_dasha_password {
            trunk.revealed_password = password;
        }
        self.publish(tenant, EntityKind::Trunk, trunk.id, ChangeOp::Created)
            .await;
        Ok(trunk)
    }

    pub async fn trunk(&self, tenant: &AccountId, id: Uuid) -> Result<Trunk, ServiceError> {
        self.store
            .trunk(tenant, id, self.settings.reveal_dasha_password)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Full replace of the writable fields. While passwords are write-only (not revealed), an
    /// absent or `null` `authPassword` keeps the stored one and `""` clears it, so a client that
    /// PUTs back what it read does not wipe the password it cannot see.
    pub async fn replace_trunk(
        &self,
        tenant: &AccountId,
        id: Uuid,
        draft: TrunkDraft,
    ) -> Result<Trunk, ServiceError> {
        let absent = if self.settings.reveal_dasha_password {
            SecretChange::Clear
        } else {
            SecretChange::Keep
        };
        let checked = Self::check_trunk(draft, absent)?;
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self
                .store
                .trunk(tenant, id, false)
                .await?
                .ok_or(ServiceError::NotFound)?;
            let next = Trunk {
                server: checked.server.clone(),
                transport: checked.transport,
                domain: checked.domain.clone(),
                auth_user: checked.auth_user.clone(),
                description: checked.description.clone(),
                cps_limit: checked.cps_limit,
                cps_key: checked.cps_key.clone(),
                updated_at: next_version(current.updated_at),
                ..current.clone()
            };
            match self
                .store
                .update_trunk(&next, checked.password.clone(), current.updated_at)
                .await?
            {
                WriteOutcome::Stale => continue,
                outcome => expect_applied(outcome, "")?,
            }
            self.publish(tenant, EntityKind::Trunk, id, ChangeOp::Updated)
                .await;
            return self.trunk(tenant, id).await;
        }
        Err(too_contended())
    }

    pub async fn delete_trunk(&self, tenant: &AccountId, id: Uuid) -> Result<(), ServiceError> {
        expect_applied(
            self.store.delete_trunk(tenant, id).await?,
            "These SIP credentials are still used by phone numbers; delete or move them first.",
        )?;
        self.publish(tenant, EntityKind::Trunk, id, ChangeOp::Deleted)
            .await;
        Ok(())
    }

    pub async fn list_trunks(
        &self,
        tenant: &AccountId,
        window: Window,
    ) -> Result<OffsetPage<Trunk>, ServiceError> {
        let items = self
            .store
            .trunks_page(tenant, window, self.settings.reveal_dasha_password)
            .await?;
        let total = self.store.count_trunks(tenant).await?;
        Ok(OffsetPage {
            items,
            total,
            offset: window.offset,
            limit: window.limit,
        })
    }
}
