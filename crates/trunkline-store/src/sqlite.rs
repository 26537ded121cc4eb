//! [`SqlStore`]: the [`Store`] implementation over sqlx.
//!
//! Two pools: one connection that writes (SQLite admits one writer; serialising writers here
//! avoids lock contention inside the process, and `BEGIN IMMEDIATE` plus a busy timeout orders
//! writers from other processes such as the CLI) and a few that read concurrently (WAL).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};
use trunkline_core::model::{
    BindingChange, FailedBy, InboundBinding, InboundCredential, OutboundRegistration, PhoneNumber,
    Registration, RegistrationAttempt, RegistrationSource, RegistrationState, RegistrationStatus,
    Tenant, Transport, Trunk,
};
use trunkline_core::page::{Direction, Seek, Window};
use trunkline_core::secret::{ApiKeyHash, DigestHashes};
use trunkline_core::store::{SecretChange, Store, StoredApiKey, TrunkPacing, WriteOutcome};
use trunkline_core::{AccountId, StoreError, Timestamp};
use uuid::Uuid;

use crate::seal::{Sealed, Sealer};
use crate::{inbound, pacing};

/// Deletes what the engine wrote about a registration (status, history) inside `tx`.
async fn forget_engine_rows(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: &AccountId,
    id: &str,
) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM registration_status WHERE tenant_id = $1 AND registration_id = $2",
        "DELETE FROM registration_history WHERE tenant_id = $1 AND registration_id = $2",
    ] {
        sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
    }
    Ok(())
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Concurrent readers; SQLite in WAL mode lets them run beside the writer.
const READERS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("unsupported database URL `{0}`: expected sqlite://PATH")]
    UnsupportedUrl(String),
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

pub struct SqlStore {
    pub(crate) reader: SqlitePool,
    pub(crate) writer: SqlitePool,
    pub(crate) sealer: Sealer,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Opens (creating if missing) and migrates the database at `url`.
    pub async fn open(url: &str, sealer: Sealer) -> Result<Self, OpenError> {
        if !url.starts_with("sqlite:") {
            return Err(OpenError::UnsupportedUrl(redact_url(url)));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(OpenError::Connect)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a transaction is on disk before its response goes out.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Owner-only before SQLite opens it; its -wal/-shm files take its mode (file_mode).
        if !url.contains(":memory:") && !url.contains("mode=memory") {
            crate::file_mode::prepare_database_file(options.get_filename());
        }
        // No ping before each use (sqlx's default): an embedded connection has no server to
        // lose, and the ping is one more hand-off to the connection's thread per query (it
        // doubled the thread wake-ups of a pacing admission, measured with perf).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(OpenError::Connect)?;
        MIGRATOR.run(&writer).await.map_err(OpenError::Migrate)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(OpenError::Connect)?;
        Ok(Self {
            reader,
            writer,
            sealer,
        })
    }

    /// Closes both pools, waiting for connections to finish; readers first, so the writer's
    /// close can checkpoint the WAL and leave one file behind.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)
    }

    fn seal(&self, table: &str, tenant: &AccountId, id: Uuid, secret: &SecretString) -> Sealed {
        self.sealer.seal(secret, &seal_context(table, tenant, id))
    }

    fn open_sealed(
        &self,
        table: &str,
        tenant: &AccountId,
        id: Uuid,
        ciphertext: Option<Vec<u8>>,
        key_id: Option<String>,
    ) -> Result<Option<SecretString>, StoreError> {
        match (ciphertext, key_id) {
            (Some(ciphertext), Some(key_id)) => self
                .sealer
                .open(
                    &Sealed { ciphertext, key_id },
                    &seal_context(table, tenant, id),
                )
                .map(Some),
            _ => Ok(None),
        }
    }
}

/// A row's password, or why it cannot be opened (said in the registration's status).
fn usable(
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

/// After an optimistic update touched no row: was the row gone, or changed?
pub(crate) async fn missing_or_stale(
    tx: &mut Transaction<'static, Sqlite>,
    exists_sql: &str,
    tenant: &AccountId,
    key: &str,
) -> Result<WriteOutcome, StoreError> {
    let exists: Option<i64> = sqlx::query_scalar(exists_sql)
        .bind(tenant.as_str())
        .bind(key)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
    Ok(if exists.is_some() {
        WriteOutcome::Stale
    } else {
        WriteOutcome::NotFound
    })
}

// ---------------------------------------------------------------------------------------------
// Row shapes

/// Status columns as selected by `status_columns!()` through a LEFT JOIN (all nullable).
#[derive(sqlx::FromRow)]
struct StatusRow {
    state: Option<String>,
    last_code: Option<i64>,
    last_phrase: Option<String>,
    failed_by: Option<String>,
    last_attempt_at: Option<i64>,
    expires_at: Option<i64>,
    next_attempt_at: Option<i64>,
    consecutive_failures: Option<i64>,
    status_transport: Option<String>,
    remote: Option<String>,
    status_updated_at: Option<i64>,
}

macro_rules! status_columns {
    () => {
        "s.state, s.last_code, s.last_phrase, s.failed_by, s.last_attempt_at, s.expires_at, \
         s.next_attempt_at, s.consecutive_failures, s.transport AS status_transport, s.remote, \
         s.updated_at AS status_updated_at"
    };
}

impl StatusRow {
    fn into_status(self) -> Result<Option<RegistrationStatus>, StoreError> {
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
struct RegistrationRow {
    id: String,
    tenant_id: String,
    username: String,
    proxy: String,
    outbound_proxy: Option<String>,
    auth_user: Option<String>,
    created_at: i64,
    updated_at: i64,
    #[sqlx(flatten)]
    status: StatusRow,
}

impl RegistrationRow {
    fn into_model(self) -> Result<Registration, StoreError> {
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
            status_columns!(),
            " FROM registrations r LEFT JOIN registration_status s ON s.registration_id = r.id "
        )
    };
}

/// The five keyset page queries: from the start, or after/before a position, exclusive or
/// inclusive. Each reads the `(tenant_id, created_at, id)` index in order.
macro_rules! registration_page {
    ($op:literal, $order:literal) => {
        concat!(
            registration_select!(),
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

fn seek_comparison(seek: &Seek) -> &'static str {
    match (seek.direction, seek.inclusive) {
        (Direction::Forward, false) => ">",
        (Direction::Forward, true) => ">=",
        (Direction::Backward, false) => "<",
        (Direction::Backward, true) => "<=",
    }
}

#[derive(sqlx::FromRow)]
struct TrunkRow {
    id: String,
    tenant_id: String,
    server: String,
    transport: String,
    domain: Option<String>,
    auth_user: Option<String>,
    password_sealed: Option<Vec<u8>>,
    password_key_id: Option<String>,
    description: Option<String>,
    cps_limit: Option<i64>,
    cps_key: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const TRUNK_SELECT: &str = "SELECT id, tenant_id, server, transport, domain, auth_user, \
     password_sealed, password_key_id, description, cps_limit, cps_key, created_at, updated_at \
     FROM trunks ";

#[derive(sqlx::FromRow)]
struct PhoneNumberRow {
    id: String,
    tenant_id: String,
    phone_number: String,
    trunk_id: String,
    registration: bool,
    display_name: Option<String>,
    description: Option<String>,
    incoming_calls_agent_id: Option<String>,
    created_at: i64,
    updated_at: i64,
    #[sqlx(flatten)]
    status: StatusRow,
}

impl PhoneNumberRow {
    fn into_model(self) -> Result<PhoneNumber, StoreError> {
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
            status_columns!(),
            " FROM phone_numbers p LEFT JOIN registration_status s ON s.registration_id = p.id "
        )
    };
}

/// An Ultravox registration as the engine needs it.
#[derive(sqlx::FromRow)]
struct OutboundUltravoxRow {
    id: String,
    tenant_id: String,
    username: String,
    proxy: String,
    outbound_proxy: Option<String>,
    auth_user: Option<String>,
    password_sealed: Vec<u8>,
    password_key_id: String,
    updated_at: i64,
}

const OUTBOUND_ULTRAVOX_SELECT: &str = "SELECT id, tenant_id, username, proxy, outbound_proxy, \
     auth_user, password_sealed, password_key_id, updated_at FROM registrations ";

/// A Dasha phone number joined with its trunk, as the engine needs it.
#[derive(sqlx::FromRow)]
struct OutboundNumberRow {
    id: String,
    tenant_id: String,
    phone_number: String,
    updated_at: i64,
    trunk_id: String,
    server: String,
    transport: String,
    domain: Option<String>,
    auth_user: Option<String>,
    password_sealed: Option<Vec<u8>>,
    password_key_id: Option<String>,
    trunk_updated_at: i64,
}

const OUTBOUND_NUMBER_SELECT: &str = "SELECT p.id, p.tenant_id, p.phone_number, p.updated_at, \
     t.id AS trunk_id, t.server, t.transport, t.domain, t.auth_user, t.password_sealed, \
     t.password_key_id, t.updated_at AS trunk_updated_at \
     FROM phone_numbers p JOIN trunks t ON t.id = p.trunk_id AND t.tenant_id = p.tenant_id \
     WHERE p.registration ";

#[derive(sqlx::FromRow)]
struct AttemptRow {
    registration_id: String,
    tenant_id: String,
    at: i64,
    transport: String,
    remote: Option<String>,
    request_line: String,
    code: Option<i64>,
    phrase: Option<String>,
    duration_us: i64,
}

impl AttemptRow {
    fn into_model(self) -> Result<RegistrationAttempt, StoreError> {
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
struct TenantRow {
    account_id: String,
    name: String,
    created_at: i64,
}

impl TenantRow {
    fn into_model(self) -> Result<Tenant, StoreError> {
        Ok(Tenant {
            account_id: parse_tenant(&self.account_id)?,
            name: self.name,
            created_at: Timestamp::from_micros(self.created_at),
        })
    }
}

impl SqlStore {
    fn trunk_from_row(&self, row: TrunkRow, reveal: bool) -> Result<Trunk, StoreError> {
        let id = parse_uuid(&row.id)?;
        let tenant = parse_tenant(&row.tenant_id)?;
        let has_password = row.password_sealed.is_some();
        let revealed_password = if reveal {
            self.open_sealed(
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

    fn outbound_from_ultravox(
        &self,
        row: OutboundUltravoxRow,
    ) -> Result<OutboundRegistration, StoreError> {
        let id = parse_uuid(&row.id)?;
        let tenant = parse_tenant(&row.tenant_id)?;
        let (password, unusable) = usable(self.open_sealed(
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

    fn outbound_from_number(
        &self,
        row: OutboundNumberRow,
    ) -> Result<OutboundRegistration, StoreError> {
        let id = parse_uuid(&row.id)?;
        let tenant = parse_tenant(&row.tenant_id)?;
        let trunk = parse_uuid(&row.trunk_id)?;
        let (password, mut unusable) = usable(self.open_sealed(
            "trunks",
            &tenant,
            trunk,
            row.password_sealed,
            row.password_key_id,
        ));
        let transport = Transport::parse(&row.transport);
        if transport.is_none() {
            unusable.get_or_insert_with(|| {
                format!(
                    "the trunk's transport {:?} is not one of udp, tcp, tls",
                    row.transport
                )
            });
        }
        Ok(OutboundRegistration {
            id,
            tenant,
            source: RegistrationSource::DashaNumber,
            aor_user: row.phone_number,
            registrar: row.domain.unwrap_or_else(|| row.server.clone()),
            send_to: Some(row.server),
            transport,
            auth_user: row.auth_user,
            password,
            unusable,
            version: Timestamp::from_micros(row.updated_at.max(row.trunk_updated_at)),
        })
    }

    /// One offset window of a tenant's rows: `sql` binds the tenant as `$1`, the limit as `$2`
    /// and the offset as `$3`.
    pub(crate) async fn window_rows<R>(
        &self,
        sql: &str,
        tenant: &AccountId,
        window: Window,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        sqlx::query_as::<_, R>(sql)
            .bind(tenant.as_str())
            .bind(i64::from(window.limit))
            .bind(i64::try_from(window.offset).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await
            .map_err(db)
    }

    /// The tenant's row `sql` finds by id, if any: `sql` binds the tenant as `$1` and the id
    /// as `$2`.
    pub(crate) async fn row_by_id<R>(
        &self,
        sql: &str,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        sqlx::query_as::<_, R>(sql)
            .bind(tenant.as_str())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db)
    }

    pub(crate) async fn count(&self, sql: &str, tenant: &AccountId) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(sql)
            .bind(tenant.as_str())
            .fetch_one(&self.reader)
            .await
            .map_err(db)?;
        Ok(count.max(0) as u64)
    }
}

#[async_trait]
impl Store for SqlStore {
    // --- tenants and API keys -----------------------------------------------------------------

    async fn create_tenant(&self, tenant: &Tenant, key: &ApiKeyHash) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_tenant(&mut tx, tenant).await?;
        insert_key(&mut tx, &tenant.account_id, key, tenant.created_at).await?;
        tx.commit().await.map_err(db)
    }

    async fn create_first_tenant(
        &self,
        tenant: &Tenant,
        key: &ApiKeyHash,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if existing > 0 {
            return Ok(false);
        }
        insert_tenant(&mut tx, tenant).await?;
        insert_key(&mut tx, &tenant.account_id, key, tenant.created_at).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        sqlx::query_as::<_, TenantRow>(
            "SELECT account_id, name, created_at FROM tenants ORDER BY created_at, account_id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db)?
        .into_iter()
        .map(TenantRow::into_model)
        .collect()
    }

    async fn tenant(&self, id: &AccountId) -> Result<Option<Tenant>, StoreError> {
        sqlx::query_as::<_, TenantRow>(
            "SELECT account_id, name, created_at FROM tenants WHERE account_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?
        .map(TenantRow::into_model)
        .transpose()
    }

    async fn insert_api_key(
        &self,
        tenant: &AccountId,
        key: &ApiKeyHash,
        at: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tenants WHERE account_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if exists.is_none() {
            return Ok(WriteOutcome::NotFound);
        }
        insert_key(&mut tx, tenant, key, at).await?;
        tx.commit().await.map_err(db)?;
        Ok(WriteOutcome::Applied)
    }

    async fn api_key(&self, prefix: &str) -> Result<Option<StoredApiKey>, StoreError> {
        let row: Option<(String, Vec<u8>, Option<i64>)> =
            sqlx::query_as("SELECT tenant_id, sha256, revoked_at FROM api_keys WHERE prefix = $1")
                .bind(prefix)
                .fetch_optional(&self.reader)
                .await
                .map_err(db)?;
        row.map(|(tenant, sha256, revoked_at)| {
            Ok(StoredApiKey {
                tenant: parse_tenant(&tenant)?,
                sha256,
                revoked: revoked_at.is_some(),
            })
        })
        .transpose()
    }

    async fn revoke_api_key(&self, prefix: &str, at: Timestamp) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE prefix = $1 AND revoked_at IS NULL",
        )
        .bind(prefix)
        .bind(at.micros())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(result.rows_affected() > 0)
    }

    // --- registrations --------------------------------------------------------------------------

    async fn insert_registration(
        &self,
        r: &Registration,
        password: &SecretString,
    ) -> Result<(), StoreError> {
        let sealed = self.seal("registrations", &r.tenant, r.id, password);
        sqlx::query(
            "INSERT INTO registrations (id, tenant_id, username, proxy, outbound_proxy, auth_user, \
             password_sealed, password_key_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.id.to_string())
        .bind(r.tenant.as_str())
        .bind(&r.username)
        .bind(&r.proxy)
        .bind(&r.outbound_proxy)
        .bind(&r.auth_user)
        .bind(sealed.ciphertext)
        .bind(sealed.key_id)
        .bind(r.created_at.micros())
        .bind(r.updated_at.micros())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<Registration>, StoreError> {
        sqlx::query_as::<_, RegistrationRow>(concat!(
            registration_select!(),
            "WHERE r.tenant_id = $1 AND r.id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?
        .map(RegistrationRow::into_model)
        .transpose()
    }

    async fn update_registration(
        &self,
        r: &Registration,
        password: Option<&SecretString>,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        let sealed = password.map(|p| self.seal("registrations", &r.tenant, r.id, p));
        let (ciphertext, key_id) = sealed.map(|s| (s.ciphertext, s.key_id)).unzip();
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "UPDATE registrations SET username = $3, proxy = $4, outbound_proxy = $5, \
             auth_user = $6, password_sealed = COALESCE($7, password_sealed), \
             password_key_id = COALESCE($8, password_key_id), updated_at = $9 \
             WHERE tenant_id = $1 AND id = $2 AND updated_at = $10",
        )
        .bind(r.tenant.as_str())
        .bind(r.id.to_string())
        .bind(&r.username)
        .bind(&r.proxy)
        .bind(&r.outbound_proxy)
        .bind(&r.auth_user)
        .bind(ciphertext)
        .bind(key_id)
        .bind(r.updated_at.micros())
        .bind(expected.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if result.rows_affected() == 0 {
            return missing_or_stale(
                &mut tx,
                "SELECT 1 FROM registrations WHERE tenant_id = $1 AND id = $2",
                &r.tenant,
                &r.id.to_string(),
            )
            .await;
        }
        tx.commit().await.map_err(db)?;
        Ok(WriteOutcome::Applied)
    }

    async fn delete_registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let result = sqlx::query("DELETE FROM registrations WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        forget_engine_rows(&mut tx, tenant, &id.to_string()).await?;
        tx.commit().await.map_err(db)?;
        Ok(applied(result.rows_affected()))
    }

    async fn registrations_page(
        &self,
        tenant: &AccountId,
        seek: Option<Seek>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        let rows = match seek {
            None => {
                sqlx::query_as::<_, RegistrationRow>(concat!(
                    registration_select!(),
                    "WHERE r.tenant_id = $1 ORDER BY r.created_at, r.id LIMIT $2"
                ))
                .bind(tenant.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await
            }
            Some(seek) => {
                let sql = match seek_comparison(&seek) {
                    ">" => registration_page!(">", "ASC"),
                    ">=" => registration_page!(">=", "ASC"),
                    "<" => registration_page!("<", "DESC"),
                    _ => registration_page!("<=", "DESC"),
                };
                sqlx::query_as::<_, RegistrationRow>(sql)
                    .bind(tenant.as_str())
                    .bind(seek.position.created.micros())
                    .bind(seek.position.id.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(&self.reader)
                    .await
            }
        }
        .map_err(db)?;
        rows.into_iter().map(RegistrationRow::into_model).collect()
    }

    async fn registrations_exist(
        &self,
        tenant: &AccountId,
        seek: Seek,
    ) -> Result<bool, StoreError> {
        let sql = match seek_comparison(&seek) {
            ">" => "SELECT 1 FROM registrations WHERE tenant_id = $1 AND (created_at, id) > ($2, $3) LIMIT 1",
            ">=" => "SELECT 1 FROM registrations WHERE tenant_id = $1 AND (created_at, id) >= ($2, $3) LIMIT 1",
            "<" => "SELECT 1 FROM registrations WHERE tenant_id = $1 AND (created_at, id) < ($2, $3) LIMIT 1",
            _ => "SELECT 1 FROM registrations WHERE tenant_id = $1 AND (created_at, id) <= ($2, $3) LIMIT 1",
        };
        let found: Option<i64> = sqlx::query_scalar(sql)
            .bind(tenant.as_str())
            .bind(seek.position.created.micros())
            .bind(seek.position.id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db)?;
        Ok(found.is_some())
    }

    async fn count_registrations(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        self.count(
            "SELECT COUNT(*) FROM registrations WHERE tenant_id = $1",
            tenant,
        )
        .await
    }

    async fn registration_password(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<SecretString>, StoreError> {
        let row: Option<(Vec<u8>, String)> = sqlx::query_as(
            "SELECT password_sealed, password_key_id FROM registrations WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        match row {
            Some((ciphertext, key_id)) => {
                self.open_sealed("registrations", tenant, id, Some(ciphertext), Some(key_id))
            }
            None => Ok(None),
        }
    }

    // --- trunks ---------------------------------------------------------------------------------

    async fn insert_trunk(
        &self,
        t: &Trunk,
        password: Option<&SecretString>,
    ) -> Result<(), StoreError> {
        let sealed = password.map(|p| self.seal("trunks", &t.tenant, t.id, p));
        let (ciphertext, key_id) = sealed.map(|s| (s.ciphertext, s.key_id)).unzip();
        sqlx::query(
            "INSERT INTO trunks (id, tenant_id, server, transport, domain, auth_user, \
             password_sealed, password_key_id, description, cps_limit, cps_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(t.id.to_string())
        .bind(t.tenant.as_str())
        .bind(&t.server)
        .bind(t.transport.as_str())
        .bind(&t.domain)
        .bind(&t.auth_user)
        .bind(ciphertext)
        .bind(key_id)
        .bind(&t.description)
        .bind(t.cps_limit.map(i64::from))
        .bind(&t.cps_key)
        .bind(t.created_at.micros())
        .bind(t.updated_at.micros())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn trunk(
        &self,
        tenant: &AccountId,
        id: Uuid,
        reveal: bool,
    ) -> Result<Option<Trunk>, StoreError> {
        let row = sqlx::query_as::<_, TrunkRow>(&format!(
            "{TRUNK_SELECT} WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        row.map(|row| self.trunk_from_row(row, reveal)).transpose()
    }

    async fn update_trunk(
        &self,
        t: &Trunk,
        password: SecretChange,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        let (replace_password, sealed) = match &password {
            SecretChange::Keep => (false, None),
            SecretChange::Clear => (true, None),
            SecretChange::Set(secret) => (true, Some(self.seal("trunks", &t.tenant, t.id, secret))),
        };
        let (ciphertext, key_id) = sealed.map(|s| (s.ciphertext, s.key_id)).unzip();
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "UPDATE trunks SET server = $3, transport = $4, domain = $5, auth_user = $6, \
             password_sealed = CASE WHEN $7 THEN $8 ELSE password_sealed END, \
             password_key_id = CASE WHEN $7 THEN $9 ELSE password_key_id END, \
             description = $10, cps_limit = $11, cps_key = $12, updated_at = $13 \
             WHERE tenant_id = $1 AND id = $2 AND updated_at = $14",
        )
        .bind(t.tenant.as_str())
        .bind(t.id.to_string())
        .bind(&t.server)
        .bind(t.transport.as_str())
        .bind(&t.domain)
        .bind(&t.auth_user)
        .bind(replace_password)
        .bind(ciphertext)
        .bind(key_id)
        .bind(&t.description)
        .bind(t.cps_limit.map(i64::from))
        .bind(&t.cps_key)
        .bind(t.updated_at.micros())
        .bind(expected.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if result.rows_affected() == 0 {
            return missing_or_stale(
                &mut tx,
                "SELECT 1 FROM trunks WHERE tenant_id = $1 AND id = $2",
                &t.tenant,
                &t.id.to_string(),
            )
            .await;
        }
        tx.commit().await.map_err(db)?;
        Ok(WriteOutcome::Applied)
    }

    async fn delete_trunk(&self, tenant: &AccountId, id: Uuid) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let in_use: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM phone_numbers WHERE tenant_id = $1 AND trunk_id = $2 LIMIT 1",
        )
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if in_use.is_some() {
            // Phone numbers only ever point at a trunk of their own tenant, so the trunk is
            // this tenant's: the answer is "in use", not "not found".
            return Ok(WriteOutcome::InUse);
        }
        let result = sqlx::query("DELETE FROM trunks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(applied(result.rows_affected()))
    }

    async fn trunks_page(
        &self,
        tenant: &AccountId,
        window: Window,
        reveal: bool,
    ) -> Result<Vec<Trunk>, StoreError> {
        let rows = self
            .window_rows::<TrunkRow>(
                &format!("{TRUNK_SELECT} WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"),
                tenant,
                window,
            )
            .await?;
        rows.into_iter()
            .map(|row| self.trunk_from_row(row, reveal))
            .collect()
    }

    async fn count_trunks(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM trunks WHERE tenant_id = $1", tenant)
            .await
    }

    // --- phone numbers --------------------------------------------------------------------------

    async fn insert_phone_number(&self, p: &PhoneNumber) -> Result<WriteOutcome, StoreError> {
        let result = sqlx::query(
            "INSERT INTO phone_numbers (id, tenant_id, phone_number, trunk_id, registration, \
             display_name, description, incoming_calls_agent_id, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
             WHERE EXISTS (SELECT 1 FROM trunks WHERE tenant_id = $2 AND id = $4)",
        )
        .bind(p.id.to_string())
        .bind(p.tenant.as_str())
        .bind(&p.phone_number)
        .bind(p.trunk_id.to_string())
        .bind(p.registration)
        .bind(&p.display_name)
        .bind(&p.description)
        .bind(&p.incoming_calls_agent_id)
        .bind(p.created_at.micros())
        .bind(p.updated_at.micros())
        .execute(&self.writer)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => Ok(WriteOutcome::ReferenceMissing),
            Ok(_) => Ok(WriteOutcome::Applied),
            Err(err) if is_unique_violation(&err) => Ok(WriteOutcome::Duplicate),
            Err(err) => Err(db(err)),
        }
    }

    async fn phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
    ) -> Result<Option<PhoneNumber>, StoreError> {
        sqlx::query_as::<_, PhoneNumberRow>(concat!(
            phone_number_select!(),
            "WHERE p.tenant_id = $1 AND p.phone_number = $2"
        ))
        .bind(tenant.as_str())
        .bind(number)
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?
        .map(PhoneNumberRow::into_model)
        .transpose()
    }

    async fn update_phone_number(
        &self,
        p: &PhoneNumber,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let trunk: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM trunks WHERE tenant_id = $1 AND id = $2")
                .bind(p.tenant.as_str())
                .bind(p.trunk_id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if trunk.is_none() {
            return Ok(WriteOutcome::ReferenceMissing);
        }
        let result = sqlx::query(
            "UPDATE phone_numbers SET trunk_id = $3, registration = $4, display_name = $5, \
             description = $6, incoming_calls_agent_id = $7, updated_at = $8 \
             WHERE tenant_id = $1 AND phone_number = $2 AND updated_at = $9",
        )
        .bind(p.tenant.as_str())
        .bind(&p.phone_number)
        .bind(p.trunk_id.to_string())
        .bind(p.registration)
        .bind(&p.display_name)
        .bind(&p.description)
        .bind(&p.incoming_calls_agent_id)
        .bind(p.updated_at.micros())
        .bind(expected.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if result.rows_affected() == 0 {
            return missing_or_stale(
                &mut tx,
                "SELECT 1 FROM phone_numbers WHERE tenant_id = $1 AND phone_number = $2",
                &p.tenant,
                &p.phone_number,
            )
            .await;
        }
        tx.commit().await.map_err(db)?;
        Ok(WriteOutcome::Applied)
    }

    async fn delete_phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let id: Option<String> = sqlx::query_scalar(
            "DELETE FROM phone_numbers WHERE tenant_id = $1 AND phone_number = $2 RETURNING id",
        )
        .bind(tenant.as_str())
        .bind(number)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(id) = id else {
            return Ok(WriteOutcome::NotFound);
        };
        forget_engine_rows(&mut tx, tenant, &id).await?;
        tx.commit().await.map_err(db)?;
        Ok(WriteOutcome::Applied)
    }

    async fn phone_numbers_page(
        &self,
        tenant: &AccountId,
        window: Window,
    ) -> Result<Vec<PhoneNumber>, StoreError> {
        self.window_rows::<PhoneNumberRow>(
            concat!(
                phone_number_select!(),
                "WHERE p.tenant_id = $1 ORDER BY p.created_at, p.id LIMIT $2 OFFSET $3"
            ),
            tenant,
            window,
        )
        .await?
        .into_iter()
        .map(PhoneNumberRow::into_model)
        .collect()
    }

    async fn count_phone_numbers(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        self.count(
            "SELECT COUNT(*) FROM phone_numbers WHERE tenant_id = $1",
            tenant,
        )
        .await
    }

    // --- inbound credentials and bindings (SQL in `inbound`) ----------------------------------

    async fn insert_inbound_credential(
        &self,
        c: &InboundCredential,
        hashes: &DigestHashes,
    ) -> Result<WriteOutcome, StoreError> {
        inbound::insert_credential(self, c, hashes).await
    }

    async fn inbound_credential(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<InboundCredential>, StoreError> {
        inbound::credential(self, tenant, id).await
    }

    async fn update_inbound_credential(
        &self,
        c: &InboundCredential,
        hashes: Option<&DigestHashes>,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        inbound::update_credential(self, c, hashes, expected).await
    }

    async fn delete_inbound_credential(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<WriteOutcome, StoreError> {
        inbound::delete_credential(self, tenant, id).await
    }

    async fn inbound_credentials_page(
        &self,
        tenant: &AccountId,
        window: Window,
    ) -> Result<Vec<InboundCredential>, StoreError> {
        inbound::credentials_page(self, tenant, window).await
    }

    async fn count_inbound_credentials(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        inbound::count_credentials(self, tenant).await
    }

    async fn inbound_credential_directory(
        &self,
    ) -> Result<Vec<(InboundCredential, DigestHashes)>, StoreError> {
        inbound::directory(self).await
    }

    async fn inbound_credential_with_hashes(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<(InboundCredential, DigestHashes)>, StoreError> {
        inbound::credential_with_hashes(self, tenant, id).await
    }

    async fn trunk_pacing(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<TrunkPacing>, StoreError> {
        pacing::trunk_pacing(self, tenant, id).await
    }

    async fn inbound_credential_by_username(
        &self,
        tenant: &AccountId,
        username: &str,
    ) -> Result<Option<(InboundCredential, DigestHashes)>, StoreError> {
        inbound::credential_by_username(self, tenant, username).await
    }

    async fn write_binding_changes(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        inbound::write_binding_changes(self, changes).await
    }

    async fn live_inbound_bindings(
        &self,
        now: Timestamp,
    ) -> Result<Vec<InboundBinding>, StoreError> {
        inbound::live_bindings(self, now).await
    }

    async fn inbound_bindings(
        &self,
        tenant: &AccountId,
        credential: Uuid,
        now: Timestamp,
    ) -> Result<Vec<InboundBinding>, StoreError> {
        inbound::bindings(self, tenant, credential, now).await
    }

    async fn delete_expired_inbound_bindings(&self, now: Timestamp) -> Result<u64, StoreError> {
        inbound::delete_expired_bindings(self, now).await
    }

    // --- status -----------------------------------------------------------------------------------

    async fn put_registration_status(
        &self,
        tenant: &AccountId,
        id: Uuid,
        status: &RegistrationStatus,
    ) -> Result<(), StoreError> {
        self.write_registration_batch(&[(tenant.clone(), id, status.clone())], &[], 0)
            .await
    }

    async fn write_registration_batch(
        &self,
        statuses: &[(AccountId, Uuid, RegistrationStatus)],
        attempts: &[RegistrationAttempt],
        keep: u32,
    ) -> Result<(), StoreError> {
        if statuses.is_empty() && attempts.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for chunk in statuses.chunks(ROWS_PER_STATEMENT) {
            upsert_statuses(chunk)
                .build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        // One chunk at a time, in order: a registration's entries in a later chunk number on
        // from the earlier chunk's.
        for chunk in attempts.chunks(ROWS_PER_STATEMENT) {
            write_history(chunk, keep)
                .build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn outbound_registrations(&self) -> Result<Vec<OutboundRegistration>, StoreError> {
        let ultravox = sqlx::query_as::<_, OutboundUltravoxRow>(&format!(
            "{OUTBOUND_ULTRAVOX_SELECT} ORDER BY created_at, id"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        let numbers = sqlx::query_as::<_, OutboundNumberRow>(&format!(
            "{OUTBOUND_NUMBER_SELECT} ORDER BY p.created_at, p.id"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        // A row that cannot even be identified is skipped (logged), never the whole load.
        let mut all = Vec::with_capacity(ultravox.len() + numbers.len());
        let loaded = ultravox
            .into_iter()
            .map(|row| self.outbound_from_ultravox(row))
            .chain(
                numbers
                    .into_iter()
                    .map(|row| self.outbound_from_number(row)),
            );
        for registration in loaded {
            match registration {
                Ok(registration) => all.push(registration),
                Err(err) => {
                    tracing::error!(error = %err, "skipping an unreadable registration row")
                }
            }
        }
        Ok(all)
    }

    async fn outbound_registration_versions(
        &self,
    ) -> Result<Vec<(AccountId, Uuid, Timestamp)>, StoreError> {
        // A number's version is the later of its own and its trunk's, as in
        // `outbound_from_number` (CASE rather than a two-argument MAX, which PostgreSQL lacks).
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT tenant_id, id, updated_at FROM registrations \
             UNION ALL \
             SELECT p.tenant_id, p.id, \
                    CASE WHEN t.updated_at > p.updated_at THEN t.updated_at ELSE p.updated_at END \
             FROM phone_numbers p JOIN trunks t ON t.id = p.trunk_id AND t.tenant_id = p.tenant_id \
             WHERE p.registration",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|(tenant, id, version)| {
                match (parse_tenant(&tenant), parse_uuid(&id)) {
                    (Ok(tenant), Ok(id)) => Some((tenant, id, Timestamp::from_micros(version))),
                    // Skipped as `outbound_registrations` skips it (and logs it there).
                    _ => None,
                }
            })
            .collect())
    }

    async fn outbound_registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<OutboundRegistration>, StoreError> {
        let ultravox = sqlx::query_as::<_, OutboundUltravoxRow>(&format!(
            "{OUTBOUND_ULTRAVOX_SELECT} WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        if let Some(row) = ultravox {
            return self.outbound_from_ultravox(row).map(Some);
        }
        sqlx::query_as::<_, OutboundNumberRow>(&format!(
            "{OUTBOUND_NUMBER_SELECT} AND p.tenant_id = $1 AND p.id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?
        .map(|row| self.outbound_from_number(row))
        .transpose()
    }

    async fn registration_attempts(
        &self,
        tenant: &AccountId,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<RegistrationAttempt>, StoreError> {
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT registration_id, tenant_id, at, transport, remote, request_line, code, phrase, \
             duration_us FROM registration_history WHERE tenant_id = $1 AND registration_id = $2 \
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(id.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        rows.into_iter().map(AttemptRow::into_model).collect()
    }

    async fn registering_numbers_of_trunk(
        &self,
        tenant: &AccountId,
        trunk: Uuid,
    ) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM phone_numbers WHERE tenant_id = $1 AND trunk_id = $2 AND registration \
             ORDER BY created_at, id",
        )
        .bind(tenant.as_str())
        .bind(trunk.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        ids.iter().map(|id| parse_uuid(id)).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db)?;
        Ok(())
    }
}

async fn insert_tenant(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: &Tenant,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO tenants (account_id, name, created_at) VALUES ($1, $2, $3)")
        .bind(tenant.account_id.as_str())
        .bind(&tenant.name)
        .bind(tenant.created_at.micros())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

async fn insert_key(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: &AccountId,
    key: &ApiKeyHash,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (prefix, tenant_id, sha256, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&key.prefix)
    .bind(tenant.as_str())
    .bind(key.sha256.as_slice())
    .bind(at.micros())
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Rows per multi-row statement in engine batches (13 parameters a row stays far below
/// SQLite's 32,766-parameter limit). These statements are not kept in sqlx's statement cache
/// (`persistent(false)`): every batch size is a different SQL text, and a cache of up to 100
/// prepared multi-row statements held megabytes for statements rarely run twice.
const ROWS_PER_STATEMENT: usize = 500;

/// Keeps a batch's rows only for registrations (or registering phone numbers) that still
/// exist, so a late write never resurrects a deleted registration's status or history.
const STILL_EXISTS: &str = " WHERE EXISTS (SELECT 1 FROM registrations r \
     WHERE r.tenant_id = v.tenant_id AND r.id = v.registration_id) \
     OR EXISTS (SELECT 1 FROM phone_numbers p \
     WHERE p.tenant_id = v.tenant_id AND p.id = v.registration_id)";

/// One statement upserting a batch of status rows.
fn upsert_statuses(rows: &[(AccountId, Uuid, RegistrationStatus)]) -> QueryBuilder<'_, Sqlite> {
    let mut query = QueryBuilder::new(
        "WITH v (registration_id, tenant_id, state, last_code, last_phrase, failed_by, \
         last_attempt_at, expires_at, next_attempt_at, consecutive_failures, transport, remote, \
         updated_at) AS (",
    );
    query.push_values(rows, |mut row, (tenant, id, s)| {
        row.push_bind(id.to_string())
            .push_bind(tenant.as_str())
            .push_bind(s.state.as_str())
            .push_bind(s.last_code.map(i64::from))
            .push_bind(s.last_phrase.as_deref())
            .push_bind(s.failed_by.map(FailedBy::as_str))
            .push_bind(s.last_attempt_at.map(Timestamp::micros))
            .push_bind(s.expires_at.map(Timestamp::micros))
            .push_bind(s.next_attempt_at.map(Timestamp::micros))
            .push_bind(i64::from(s.consecutive_failures))
            .push_bind(s.transport.map(Transport::as_str))
            .push_bind(s.remote.as_deref())
            .push_bind(s.updated_at.micros());
    });
    query.push(
        ") INSERT INTO registration_status (registration_id, tenant_id, state, last_code, \
         last_phrase, failed_by, last_attempt_at, expires_at, next_attempt_at, \
         consecutive_failures, transport, remote, updated_at) SELECT * FROM v",
    );
    query.push(STILL_EXISTS);
    query.push(
        " ON CONFLICT (registration_id) DO UPDATE SET state = excluded.state, \
         last_code = excluded.last_code, last_phrase = excluded.last_phrase, \
         failed_by = excluded.failed_by, last_attempt_at = excluded.last_attempt_at, \
         expires_at = excluded.expires_at, next_attempt_at = excluded.next_attempt_at, \
         consecutive_failures = excluded.consecutive_failures, transport = excluded.transport, \
         remote = excluded.remote, updated_at = excluded.updated_at",
    );
    query
}

/// One statement writing a batch of history entries into their registrations' rings: entry
/// `seq` (counted per registration, from 1) goes to slot `seq % keep`, replacing what was
/// there. Entries of one registration within the batch take consecutive numbers in order.
fn write_history(rows: &[RegistrationAttempt], keep: u32) -> QueryBuilder<'_, Sqlite> {
    let mut ordinals: std::collections::HashMap<Uuid, i64> = std::collections::HashMap::new();
    let mut query = QueryBuilder::new(
        "WITH v (registration_id, ordinal, tenant_id, at, transport, remote, request_line, code, \
         phrase, duration_us) AS (",
    );
    query.push_values(rows, |mut row, a| {
        let ordinal = ordinals.entry(a.registration_id).or_default();
        *ordinal += 1;
        row.push_bind(a.registration_id.to_string())
            .push_bind(*ordinal)
            .push_bind(a.tenant.as_str())
            .push_bind(a.at.micros())
            .push_bind(a.transport.as_str())
            .push_bind(a.remote.as_deref())
            .push_bind(a.request_line.as_str())
            .push_bind(a.code.map(i64::from))
            .push_bind(a.phrase.as_deref())
            .push_bind(i64::try_from(a.duration_us).unwrap_or(i64::MAX));
    });
    query.push(
        "), w AS (SELECT v.*, v.ordinal + COALESCE((SELECT MAX(h.seq) FROM registration_history h \
         WHERE h.registration_id = v.registration_id), 0) AS seq FROM v) \
         INSERT INTO registration_history (registration_id, slot, seq, tenant_id, at, transport, \
         remote, request_line, code, phrase, duration_us) SELECT registration_id, seq % ",
    );
    query.push_bind(i64::from(keep.max(1)));
    query.push(
        ", seq, tenant_id, at, transport, remote, request_line, code, phrase, duration_us \
         FROM w AS v",
    );
    query.push(STILL_EXISTS);
    query.push(
        " ON CONFLICT (registration_id, slot) DO UPDATE SET seq = excluded.seq, \
         tenant_id = excluded.tenant_id, at = excluded.at, transport = excluded.transport, \
         remote = excluded.remote, request_line = excluded.request_line, code = excluded.code, \
         phrase = excluded.phrase, duration_us = excluded.duration_us",
    );
    query
}
