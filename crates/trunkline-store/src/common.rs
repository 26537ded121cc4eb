//! What both backends share and no SQL statement depends on: error mapping, id parsing, the
//! associated data of sealed values, the row shapes (`sqlx::FromRow` is generic over the
//! database) and their conversion into the model, and the SQL fragments the statements are
//! built from. The statements themselves are in `sql/`, compiled once per backend.

use secrecy::SecretString;
use trunkline_core::model::{
    DashaNumberOnTrunk, FailedBy, OutboundRegistration, PhoneNumber, Registration,
    RegistrationAttempt, RegistrationSource, RegistrationState, RegistrationStatus, Tenant,
    Transport, Trunk,
};
use trunkline_core::page::{Direction, Seek};
use trunkline_core::store::WriteOutcome;
use trunkline_core::{AccountId, StoreError, Timestamp};
use uuid::Uuid;

use crate::seal::{Sealed, Sealer};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("unsupported database URL `{0}`: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Seals `secret` for the row `(table, tenant, id)`.
pub(crate) fn seal(
    sealer: &Sealer,
    table: &str,
    tenant: &AccountId,
    id: Uuid,
    secret: &SecretString,
) -> Sealed {
    sealer.seal(secret, &seal_context(table, tenant, id))
}

/// Opens a row's sealed value; `None` when the row holds none.
pub(crate) fn open_sealed(
    sealer: &Sealer,
    table: &str,
    tenant: &AccountId,
    id: Uuid,
    ciphertext: Option<Vec<u8>>,
    key_id: Option<String>,
) -> Result<Option<SecretString>, StoreError> {
    match (ciphertext, key_id) {
        (Some(ciphertext), Some(key_id)) => sealer
            .open(
                &Sealed { ciphertext, key_id },
                &seal_context(table, tenant, id),
            )
            .map(Some),
        _ => Ok(None),
    }
}

/// A row's password, or why it cannot be opened (said in the registration's status).
pub(crate) fn usable(
    opened: Result<Option<SecretString>, StoreError>,
) -> (Option<SecretString>, Option<String>) {
    match opened {
        Ok(password) => (password, None),
        Err(err) => (
            None,
            Some(format!("cannot open the stored password: {err}")),
        ),
    }
}

/// Associated data binding a sealed value to its row.
pub(crate) fn seal_context(table: &str, tenant: &AccountId, id: Uuid) -> String {
    format!("{table}:{tenant}:{id}")
}

/// A database URL safe to log or show: the user-info part (which may hold a password) is
/// replaced by `…`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

pub(crate) fn db(err: sqlx::Error) -> StoreError {
    StoreError::Database(err.to_string())
}

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Database(format!("stored row has an invalid {what}"))
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(text).map_err(|_| corrupt("id"))
}

pub(crate) fn parse_tenant(text: &str) -> Result<AccountId, StoreError> {
    AccountId::parse(text).ok_or_else(|| corrupt("tenant id"))
}

pub(crate) fn applied(rows: u64) -> WriteOutcome {
    if rows == 0 {
        WriteOutcome::NotFound
    } else {
        WriteOutcome::Applied
    }
}

// ---------------------------------------------------------------------------------------------
// Row shapes

/// Status columns as selected by `status_columns!()` through a LEFT JOIN (all nullable).
#[derive(sqlx::FromRow)]
pub(crate) struct StatusRow {
    pub(crate) state: Option<String>,
    pub(crate) last_code: Option<i64>,
    pub(crate) last_phrase: Option<String>,
    pub(crate) failed_by: Option<String>,
    pub(crate) last_attempt_at: Option<i64>,
    pub(crate) expires_at: Option<i64>,
    pub(crate) next_attempt_at: Option<i64>,
    pub(crate) consecutive_failures: Option<i64>,
    pub(crate) status_transport: Option<String>,
    pub(crate) remote: Option<String>,
    pub(crate) status_updated_at: Option<i64>,
}

macro_rules! status_columns {
    () => {
        "s.state, s.last_code, s.last_phrase, s.failed_by, s.last_attempt_at, s.expires_at, \
         s.next_attempt_at, s.consecutive_failures, s.transport AS status_transport, s.remote, \
         s.updated_at AS status_updated_at"
    };
}

impl StatusRow {
    pub(crate) fn into_status(self) -> Result<Option<RegistrationStatus>, StoreError> {
        let Some(state) = self.state else {
            return Ok(None);
        };
        Ok(Some(RegistrationStatus {
            state: RegistrationState::parse(&state).ok_or_else(|| corrupt("state"))?,
            last_code: self
                .last_code
                .map(|c| u16::try_from(c).map_err(|_| corrupt("SIP code")))
                .transpose()?,
            last_phrase: self.last_phrase,
            failed_by: self
                .failed_by
                .map(|f| FailedBy::parse(&f).ok_or_else(|| corrupt("failed_by")))
                .transpose()?,
            last_attempt_at: self.last_attempt_at.map(Timestamp::from_micros),
            expires_at: self.expires_at.map(Timestamp::from_micros),
            next_attempt_at: self.next_attempt_at.map(Timestamp::from_micros),
            consecutive_failures: self
                .consecutive_failures
                .unwrap_or(0)
                .clamp(0, u32::MAX.into()) as u32,
            transport: self
                .status_transport
                .map(|t| Transport::parse(&t).ok_or_else(|| corrupt("transport")))
                .transpose()?,
            remote: self.remote,
            updated_at: Timestamp::from_micros(self.status_updated_at.unwrap_or(0)),
        }))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RegistrationRow {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) username: String,
    pub(crate) proxy: String,
    pub(crate) outbound_proxy: Option<String>,
    pub(crate) auth_user: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    #[sqlx(flatten)]
    pub(crate) status: StatusRow,
}

impl RegistrationRow {
    pub(crate) fn into_model(self) -> Result<Registration, StoreError> {
        Ok(Registration {
            id: parse_uuid(&self.id)?,
            tenant: parse_tenant(&self.tenant_id)?,
            username: self.username,
            proxy: self.proxy,
            outbound_proxy: self.outbound_proxy,
            auth_user: self.auth_user,
            created_at: Timestamp::from_micros(self.created_at),
            updated_at: Timestamp::from_micros(self.updated_at),
            status: self.status.into_status()?,
        })
    }
}

macro_rules! registration_select {
    () => {
        concat!(
            "SELECT r.id, r.tenant_id, r.username, r.proxy, r.outbound_proxy, r.auth_user, \
             r.created_at, r.updated_at, ",
            $crate::common::status_columns!(),
            " FROM registrations r LEFT JOIN registration_status s ON s.registration_id = r.id "
        )
    };
}

/// The five keyset page queries: from the start, or after/before a position, exclusive or
/// inclusive. Each reads the `(tenant_id, created_at, id)` index in order.
macro_rules! registration_page {
    ($op:literal, $order:literal) => {
        concat!(
            $crate::common::registration_select!(),
            "WHERE r.tenant_id = $1 AND (r.created_at, r.id) ",
            $op,
            " ($2, $3) ORDER BY r.created_at ",
            $order,
            ", r.id ",
            $order,
            " LIMIT $4"
        )
    };
}

pub(crate) fn seek_comparison(seek: &Seek) -> &'static str {
    match (seek.direction, seek.inclusive) {
        (Direction::Forward, false) => ">",
        (Direction::Forward, true) => ">=",
        (Direction::Backward, false) => "<",
        (Direction::Backward, true) => "<=",
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TrunkRow {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) server: String,
    pub(crate) transport: String,
    pub(crate) domain: Option<String>,
    pub(crate) auth_user: Option<String>,
    pub(crate) password_sealed: Option<Vec<u8>>,
    pub(crate) password_key_id: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) cps_limit: Option<i64>,
    pub(crate) cps_key: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

pub(crate) const TRUNK_SELECT: &str =
    "SELECT id, tenant_id, server, transport, domain, auth_user, \
     password_sealed, password_key_id, description, cps_limit, cps_key, created_at, updated_at \
     FROM trunks ";

#[derive(sqlx::FromRow)]
pub(crate) struct PhoneNumberRow {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) phone_number: String,
    pub(crate) trunk_id: String,
    pub(crate) registration: bool,
    pub(crate) display_name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) incoming_calls_agent_id: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    #[sqlx(flatten)]
    pub(crate) status: StatusRow,
}

impl PhoneNumberRow {
    pub(crate) fn into_model(self) -> Result<PhoneNumber, StoreError> {
        Ok(PhoneNumber {
            id: parse_uuid(&self.id)?,
            tenant: parse_tenant(&self.tenant_id)?,
            phone_number: self.phone_number,
            trunk_id: parse_uuid(&self.trunk_id)?,
            registration: self.registration,
            display_name: self.display_name,
            description: self.description,
            incoming_calls_agent_id: self.incoming_calls_agent_id,
            created_at: Timestamp::from_micros(self.created_at),
            updated_at: Timestamp::from_micros(self.updated_at),
            status: self.status.into_status()?,
        })
    }
}

macro_rules! phone_number_select {
    () => {
        concat!(
            "SELECT p.id, p.tenant_id, p.phone_number, p.trunk_id, p.registration, \
             p.display_name, p.description, p.incoming_calls_agent_id, p.created_at, \
             p.updated_at, ",
            $crate::common::status_columns!(),
            " FROM phone_numbers p LEFT JOIN registration_status s ON s.registration_id = p.id "
        )
    };
}

/// An Ultravox registration as the engine needs it.
#[derive(sqlx::FromRow)]
pub(crate) struct OutboundUltravoxRow {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) username: String,
    pub(crate) proxy: String,
    pub(crate) outbound_proxy: Option<String>,
    pub(crate) auth_user: Option<String>,
    pub(crate) password_sealed: Vec<u8>,
    pub(crate) password_key_id: String,
    pub(crate) updated_at: i64,
}

pub(crate) const OUTBOUND_ULTRAVOX_SELECT: &str =
    "SELECT id, tenant_id, username, proxy, outbound_proxy, \
     auth_user, password_sealed, password_key_id, updated_at FROM registrations ";

/// A Dasha phone number joined with its trunk, as the engine needs it.
#[derive(sqlx::FromRow)]
pub(crate) struct OutboundNumberRow {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) phone_number: String,
    pub(crate) updated_at: i64,
    pub(crate) trunk_id: String,
    pub(crate) server: String,
    pub(crate) transport: String,
    pub(crate) domain: Option<String>,
    pub(crate) auth_user: Option<String>,
    pub(crate) password_sealed: Option<Vec<u8>>,
    pub(crate) password_key_id: Option<String>,
    pub(crate) trunk_updated_at: i64,
}

pub(crate) const OUTBOUND_NUMBER_SELECT: &str =
    "SELECT p.id, p.tenant_id, p.phone_number, p.updated_at, \
     t.id AS trunk_id, t.server, t.transport, t.domain, t.auth_user, t.password_sealed, \
     t.password_key_id, t.updated_at AS trunk_updated_at \
     FROM phone_numbers p JOIN trunks t ON t.id = p.trunk_id AND t.tenant_id = p.tenant_id \
     WHERE p.registration ";

#[derive(sqlx::FromRow)]
pub(crate) struct AttemptRow {
    pub(crate) registration_id: String,
    pub(crate) tenant_id: String,
    pub(crate) at: i64,
    pub(crate) transport: String,
    pub(crate) remote: Option<String>,
    pub(crate) request_line: String,
    pub(crate) code: Option<i64>,
    pub(crate) phrase: Option<String>,
    pub(crate) duration_us: i64,
}

impl AttemptRow {
    pub(crate) fn into_model(self) -> Result<RegistrationAttempt, StoreError> {
        Ok(RegistrationAttempt {
            registration_id: parse_uuid(&self.registration_id)?,
            tenant: parse_tenant(&self.tenant_id)?,
            at: Timestamp::from_micros(self.at),
            transport: Transport::parse(&self.transport).ok_or_else(|| corrupt("transport"))?,
            remote: self.remote,
            request_line: self.request_line,
            code: self
                .code
                .map(|c| u16::try_from(c).map_err(|_| corrupt("SIP code")))
                .transpose()?,
            phrase: self.phrase,
            duration_us: u64::try_from(self.duration_us).unwrap_or(0),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    pub(crate) account_id: String,
    pub(crate) name: String,
    pub(crate) created_at: i64,
}

impl TenantRow {
    pub(crate) fn into_model(self) -> Result<Tenant, StoreError> {
        Ok(Tenant {
            account_id: parse_tenant(&self.account_id)?,
            name: self.name,
            created_at: Timestamp::from_micros(self.created_at),
        })
    }
}

pub(crate) use {phone_number_select, registration_page, registration_select, status_columns};

// ---------------------------------------------------------------------------------------------
// Rows into the model

pub(crate) fn trunk_from_row(
    sealer: &Sealer,
    row: TrunkRow,
    reveal: bool,
) -> Result<Trunk, StoreError> {
    let id = parse_uuid(&row.id)?;
    let tenant = parse_tenant(&row.tenant_id)?;
    let has_password = row.password_sealed.is_some();
    let revealed_password = if reveal {
        open_sealed(
            sealer,
            "trunks",
            &tenant,
            id,
            row.password_sealed,
            row.password_key_id,
        )?
    } else {
        None
    };
    Ok(Trunk {
        id,
        tenant,
        server: row.server,
        transport: Transport::parse(&row.transport).ok_or_else(|| corrupt("transport"))?,
        domain: row.domain,
        auth_user: row.auth_user,
        has_password,
        revealed_password,
        description: row.description,
        cps_limit: row
            .cps_limit
            .map(|l| i32::try_from(l).map_err(|_| corrupt("cps limit")))
            .transpose()?,
        cps_key: row.cps_key,
        created_at: Timestamp::from_micros(row.created_at),
        updated_at: Timestamp::from_micros(row.updated_at),
    })
}

pub(crate) fn outbound_from_ultravox(
    sealer: &Sealer,
    row: OutboundUltravoxRow,
) -> Result<OutboundRegistration, StoreError> {
    let id = parse_uuid(&row.id)?;
    let tenant = parse_tenant(&row.tenant_id)?;
    let (password, unusable) = usable(open_sealed(
        sealer,
        "registrations",
        &tenant,
        id,
        Some(row.password_sealed),
        Some(row.password_key_id),
    ));
    Ok(OutboundRegistration {
        id,
        tenant,
        source: RegistrationSource::Ultravox,
        aor_user: row.username,
        registrar: row.proxy,
        send_to: row.outbound_proxy,
        transport: None,
        auth_user: row.auth_user,
        password,
        unusable,
        version: Timestamp::from_micros(row.updated_at),
    })
}

pub(crate) fn outbound_from_number(
    sealer: &Sealer,
    row: OutboundNumberRow,
) -> Result<OutboundRegistration, StoreError> {
    let id = parse_uuid(&row.id)?;
    let tenant = parse_tenant(&row.tenant_id)?;
    let trunk = parse_uuid(&row.trunk_id)?;
    let (password, unusable) = usable(open_sealed(
        sealer,
        "trunks",
        &tenant,
        trunk,
        row.password_sealed,
        row.password_key_id,
    ));
    // Which registrar, which user, where to send: core's rule.
    Ok(OutboundRegistration::for_dasha_number(DashaNumberOnTrunk {
        id,
        tenant,
        phone_number: row.phone_number,
        server: row.server,
        transport: row.transport,
        domain: row.domain,
        auth_user: row.auth_user,
        password,
        unusable,
        version: Timestamp::from_micros(row.updated_at.max(row.trunk_updated_at)),
    }))
}
