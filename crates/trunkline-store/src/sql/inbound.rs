// Included into each backend module as `inbound`: inbound credentials (Vobiz) and the bindings
// the SIP registrar holds for them.
//
// A binding never outlives its credential: deleting the credential cascades to its bindings
// (`ON DELETE CASCADE`, foreign keys are on for every connection), disabling it deletes them in
// the same transaction, and the registrar's writes skip a credential that is gone or disabled.

use trunkline_core::model::{BindingChange, InboundBinding, InboundCredential, Transport};
use trunkline_core::outbox::{binding_event_data, EventType, NewEvent};
use trunkline_core::page::Window;
use trunkline_core::secret::DigestHashes;
use trunkline_core::store::WriteOutcome;
use trunkline_core::{AccountId, StoreError, Timestamp};
use uuid::Uuid;

use super::support::missing_or_stale;
use super::SqlStore;
use crate::common::{applied, corrupt, db, is_unique_violation, parse_tenant, parse_uuid};

/// The columns of a binding row, in `BindingRow`'s order.
macro_rules! binding_columns {
    () => {
        "tenant_id, credential_id, contact, source, transport, user_agent, call_id, cseq, \
         expires_at, registered_at "
    };
}

// ---------------------------------------------------------------------------------------------
// Credentials

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: String,
    tenant_id: String,
    username: String,
    realm: String,
    enabled: bool,
    description: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl CredentialRow {
    fn into_model(self) -> Result<InboundCredential, StoreError> {
        Ok(InboundCredential {
            id: parse_uuid(&self.id)?,
            tenant: parse_tenant(&self.tenant_id)?,
            username: self.username,
            realm: self.realm,
            enabled: self.enabled,
            description: self.description,
            created_at: Timestamp::from_micros(self.created_at),
            updated_at: Timestamp::from_micros(self.updated_at),
        })
    }
}

/// A credential with its digest hashes (the registrar's view).
#[derive(sqlx::FromRow)]
struct HashedCredentialRow {
    #[sqlx(flatten)]
    credential: CredentialRow,
    ha1_md5: String,
    ha1_sha256: String,
}

impl HashedCredentialRow {
    fn into_model(self) -> Result<(InboundCredential, DigestHashes), StoreError> {
        let hashes = DigestHashes {
            md5: self.ha1_md5,
            sha256: self.ha1_sha256,
        };
        Ok((self.credential.into_model()?, hashes))
    }
}

macro_rules! credential_columns {
    () => {
        "id, tenant_id, username, realm, enabled, description, created_at, updated_at"
    };
}

macro_rules! credential_select {
    () => {
        concat!(
            "SELECT ",
            credential_columns!(),
            " FROM inbound_credentials "
        )
    };
}

macro_rules! hashed_credential_select {
    () => {
        concat!(
            "SELECT ",
            credential_columns!(),
            ", ha1_md5, ha1_sha256 FROM inbound_credentials "
        )
    };
}

pub(crate) async fn insert_credential(
    store: &SqlStore,
    c: &InboundCredential,
    hashes: &DigestHashes,
) -> Result<WriteOutcome, StoreError> {
    let result = sqlx::query(
        "INSERT INTO inbound_credentials (id, tenant_id, username, realm, ha1_md5, ha1_sha256, \
         enabled, description, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(c.id.to_string())
    .bind(c.tenant.as_str())
    .bind(&c.username)
    .bind(&c.realm)
    .bind(&hashes.md5)
    .bind(&hashes.sha256)
    .bind(c.enabled)
    .bind(&c.description)
    .bind(c.created_at.micros())
    .bind(c.updated_at.micros())
    .execute(&store.writer)
    .await;
    match result {
        Ok(_) => Ok(WriteOutcome::Applied),
        Err(err) if is_unique_violation(&err) => Ok(WriteOutcome::Duplicate),
        Err(err) => Err(db(err)),
    }
}

pub(crate) async fn credential(
    store: &SqlStore,
    tenant: &AccountId,
    id: Uuid,
) -> Result<Option<InboundCredential>, StoreError> {
    store
        .row_by_id::<CredentialRow>(
            concat!(credential_select!(), "WHERE tenant_id = $1 AND id = $2"),
            tenant,
            id,
        )
        .await?
        .map(CredentialRow::into_model)
        .transpose()
}

/// The optimistic update; a credential it disables loses its bindings in the same transaction.
pub(crate) async fn update_credential(
    store: &SqlStore,
    c: &InboundCredential,
    hashes: Option<&DigestHashes>,
    expected: Timestamp,
) -> Result<WriteOutcome, StoreError> {
    let mut tx = store.write_tx().await?;
    let result = sqlx::query(
        "UPDATE inbound_credentials SET enabled = $3, description = $4, \
         ha1_md5 = COALESCE($5, ha1_md5), ha1_sha256 = COALESCE($6, ha1_sha256), updated_at = $7 \
         WHERE tenant_id = $1 AND id = $2 AND updated_at = $8",
    )
    .bind(c.tenant.as_str())
    .bind(c.id.to_string())
    .bind(c.enabled)
    .bind(&c.description)
    .bind(hashes.map(|h| h.md5.as_str()))
    .bind(hashes.map(|h| h.sha256.as_str()))
    .bind(c.updated_at.micros())
    .bind(expected.micros())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if result.rows_affected() == 0 {
        return missing_or_stale(
            &mut tx,
            "SELECT 1 FROM inbound_credentials WHERE tenant_id = $1 AND id = $2",
            &c.tenant,
            &c.id.to_string(),
        )
        .await;
    }
    let ended = if c.enabled {
        Vec::new()
    } else {
        end_bindings_of(&mut tx, &c.tenant, c.id).await?
    };
    commit_with_events(store, tx, &ended).await?;
    Ok(WriteOutcome::Applied)
}

/// Deletes a credential's bindings in `tx`, each announced as `binding.removed`.
async fn end_bindings_of(
    tx: &mut sqlx::Transaction<'static, super::Db>,
    tenant: &AccountId,
    credential: Uuid,
) -> Result<Vec<NewEvent>, StoreError> {
    let rows: Vec<BindingRow> = sqlx::query_as(concat!(
        "DELETE FROM inbound_bindings WHERE tenant_id = $1 AND credential_id = $2 RETURNING ",
        binding_columns!()
    ))
    .bind(tenant.as_str())
    .bind(credential.to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    removed_events(rows)
}

/// `binding.removed` for each of `rows`, as of now.
fn removed_events(rows: Vec<BindingRow>) -> Result<Vec<NewEvent>, StoreError> {
    let now = Timestamp::now();
    rows.into_iter()
        .map(|row| Ok(binding_event(&row.into_model()?, EventType::BindingRemoved, now)))
        .collect()
}

fn binding_event(binding: &InboundBinding, kind: EventType, at: Timestamp) -> NewEvent {
    NewEvent {
        tenant: binding.tenant.clone(),
        kind,
        at,
        data: binding_event_data(binding),
    }
}

/// Appends `events` in `tx`, commits, and wakes whoever waits for events.
async fn commit_with_events(
    store: &SqlStore,
    mut tx: sqlx::Transaction<'static, super::Db>,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    let appended = super::events::append(&mut tx, events).await?;
    tx.commit().await.map_err(db)?;
    store.events_appended.committed(&appended);
    Ok(())
}

/// Deletes the credential and its bindings (each announced as removed; the foreign key's
/// `ON DELETE CASCADE` would take them silently).
pub(crate) async fn delete_credential(
    store: &SqlStore,
    tenant: &AccountId,
    id: Uuid,
) -> Result<WriteOutcome, StoreError> {
    let mut tx = store.write_tx().await?;
    let ended = end_bindings_of(&mut tx, tenant, id).await?;
    let result = sqlx::query("DELETE FROM inbound_credentials WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    if result.rows_affected() == 0 {
        return Ok(WriteOutcome::NotFound);
    }
    commit_with_events(store, tx, &ended).await?;
    Ok(applied(result.rows_affected()))
}

pub(crate) async fn credentials_page(
    store: &SqlStore,
    tenant: &AccountId,
    window: Window,
) -> Result<Vec<InboundCredential>, StoreError> {
    store
        .window_rows::<CredentialRow>(
            concat!(
                credential_select!(),
                "WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
            ),
            tenant,
            window,
        )
        .await?
        .into_iter()
        .map(CredentialRow::into_model)
        .collect()
}

pub(crate) async fn count_credentials(
    store: &SqlStore,
    tenant: &AccountId,
) -> Result<u64, StoreError> {
    store.tenant_count(tenant, "inbound_credentials").await
}

/// Every credential of every tenant, disabled ones included, with its hashes.
pub(crate) async fn directory(
    store: &SqlStore,
) -> Result<Vec<(InboundCredential, DigestHashes)>, StoreError> {
    sqlx::query_as::<_, HashedCredentialRow>(concat!(
        hashed_credential_select!(),
        "ORDER BY created_at, id"
    ))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?
    .into_iter()
    .map(HashedCredentialRow::into_model)
    .collect()
}

pub(crate) async fn credential_with_hashes(
    store: &SqlStore,
    tenant: &AccountId,
    id: Uuid,
) -> Result<Option<(InboundCredential, DigestHashes)>, StoreError> {
    store
        .row_by_id::<HashedCredentialRow>(
            concat!(
                hashed_credential_select!(),
                "WHERE tenant_id = $1 AND id = $2"
            ),
            tenant,
            id,
        )
        .await?
        .map(HashedCredentialRow::into_model)
        .transpose()
}

pub(crate) async fn credential_by_username(
    store: &SqlStore,
    tenant: &AccountId,
    username: &str,
) -> Result<Option<(InboundCredential, DigestHashes)>, StoreError> {
    sqlx::query_as::<_, HashedCredentialRow>(concat!(
        hashed_credential_select!(),
        "WHERE tenant_id = $1 AND username = $2"
    ))
    .bind(tenant.as_str())
    .bind(username)
    .fetch_optional(&store.reader)
    .await
    .map_err(db)?
    .map(HashedCredentialRow::into_model)
    .transpose()
}

// ---------------------------------------------------------------------------------------------
// Bindings

#[derive(sqlx::FromRow)]
struct BindingRow {
    tenant_id: String,
    credential_id: String,
    contact: String,
    source: String,
    transport: String,
    user_agent: Option<String>,
    call_id: String,
    cseq: i64,
    expires_at: i64,
    registered_at: i64,
}

impl BindingRow {
    fn into_model(self) -> Result<InboundBinding, StoreError> {
        Ok(InboundBinding {
            tenant: parse_tenant(&self.tenant_id)?,
            credential_id: parse_uuid(&self.credential_id)?,
            contact: self.contact,
            source: self.source,
            transport: Transport::parse(&self.transport).ok_or_else(|| corrupt("transport"))?,
            user_agent: self.user_agent,
            call_id: self.call_id,
            cseq: u32::try_from(self.cseq).map_err(|_| corrupt("CSeq"))?,
            expires_at: Timestamp::from_micros(self.expires_at),
            registered_at: Timestamp::from_micros(self.registered_at),
        })
    }
}

macro_rules! binding_select {
    () => {
        concat!("SELECT ", binding_columns!(), "FROM inbound_bindings ")
    };
}

/// Inserts or replaces one binding, only while its credential exists for the binding's tenant
/// and is enabled (a write that comes late never brings a binding back). SQLite's single
/// writer orders this against a disable; on PostgreSQL the check will need the credential row
/// locked (`FOR SHARE`) so that a concurrent disable cannot slip between check and insert (a
/// concurrent delete is already held off by the foreign key's lock).
const PUT_BINDING: &str = "INSERT INTO inbound_bindings (tenant_id, credential_id, contact, \
     source, transport, user_agent, call_id, cseq, expires_at, registered_at) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
     WHERE EXISTS (SELECT 1 FROM inbound_credentials c \
     WHERE c.tenant_id = $1 AND c.id = $2 AND c.enabled) \
     ON CONFLICT (credential_id, contact) DO UPDATE SET source = excluded.source, \
     transport = excluded.transport, user_agent = excluded.user_agent, \
     call_id = excluded.call_id, cseq = excluded.cseq, expires_at = excluded.expires_at, \
     registered_at = excluded.registered_at";

/// What a `Put` replaces: when nothing live, the binding is new (`binding.created`).
const BINDING_BEFORE_PUT: &str = concat!(
    "SELECT ",
    binding_columns!(),
    "FROM inbound_bindings WHERE credential_id = $1 AND contact = $2"
);

const REMOVE_BINDING: &str = concat!(
    "DELETE FROM inbound_bindings WHERE credential_id = $1 AND contact = $2 RETURNING ",
    binding_columns!()
);

const REMOVE_ALL_BINDINGS: &str = concat!(
    "DELETE FROM inbound_bindings WHERE credential_id = $1 RETURNING ",
    binding_columns!()
);

/// The registrar's group commit: every change in order, in one transaction, one statement
/// execution each. The three statements are prepared once on the writer connection and kept
/// in sqlx's statement cache (keyed by their text), so a group costs no parsing, only binds and
/// steps; the group's single commit is the one fsync.
pub(crate) async fn write_binding_changes(
    store: &SqlStore,
    changes: &[BindingChange],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let now = Timestamp::now();
    let mut events = Vec::new();
    let mut tx = store.write_tx().await?;
    for change in changes {
        match change {
            BindingChange::Put(b) => {
                let before: Option<BindingRow> = sqlx::query_as(BINDING_BEFORE_PUT)
                    .bind(b.credential_id.to_string())
                    .bind(b.contact.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                let put = sqlx::query(PUT_BINDING)
                    .bind(b.tenant.as_str())
                    .bind(b.credential_id.to_string())
                    .bind(b.contact.as_str())
                    .bind(b.source.as_str())
                    .bind(b.transport.as_str())
                    .bind(b.user_agent.as_deref())
                    .bind(b.call_id.as_str())
                    .bind(i64::from(b.cseq))
                    .bind(b.expires_at.micros())
                    .bind(b.registered_at.micros())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                if put.rows_affected() == 0 {
                    continue; // the credential is gone or disabled
                }
                // A refresh of a live binding is no news; one replacing an expired binding
                // (not swept yet) ends that one and starts another.
                match before.map(BindingRow::into_model).transpose()? {
                    Some(old) if old.expires_at > now => {}
                    Some(old) => {
                        events.push(binding_event(&old, EventType::BindingRemoved, now));
                        events.push(binding_event(b, EventType::BindingCreated, b.registered_at));
                    }
                    None => events.push(binding_event(b, EventType::BindingCreated, b.registered_at)),
                }
            }
            BindingChange::Remove {
                credential_id,
                contact,
            } => {
                let rows: Vec<BindingRow> = sqlx::query_as(REMOVE_BINDING)
                    .bind(credential_id.to_string())
                    .bind(contact.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                events.extend(removed_events(rows)?);
            }
            BindingChange::RemoveAll { credential_id } => {
                let rows: Vec<BindingRow> = sqlx::query_as(REMOVE_ALL_BINDINGS)
                    .bind(credential_id.to_string())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                events.extend(removed_events(rows)?);
            }
        }
    }
    commit_with_events(store, tx, &events).await
}

/// Bindings not expired at `now` (`expires_at > now`), of every tenant.
pub(crate) async fn live_bindings(
    store: &SqlStore,
    now: Timestamp,
) -> Result<Vec<InboundBinding>, StoreError> {
    sqlx::query_as::<_, BindingRow>(concat!(
        binding_select!(),
        "WHERE expires_at > $1 ORDER BY registered_at, credential_id, contact"
    ))
    .bind(now.micros())
    .fetch_all(&store.reader)
    .await
    .map_err(db)?
    .into_iter()
    .map(BindingRow::into_model)
    .collect()
}

pub(crate) async fn bindings(
    store: &SqlStore,
    tenant: &AccountId,
    credential: Uuid,
    now: Timestamp,
) -> Result<Vec<InboundBinding>, StoreError> {
    sqlx::query_as::<_, BindingRow>(concat!(
        binding_select!(),
        "WHERE tenant_id = $1 AND credential_id = $2 AND expires_at > $3 \
         ORDER BY registered_at, contact"
    ))
    .bind(tenant.as_str())
    .bind(credential.to_string())
    .bind(now.micros())
    .fetch_all(&store.reader)
    .await
    .map_err(db)?
    .into_iter()
    .map(BindingRow::into_model)
    .collect()
}

/// Deletes the bindings expired at `now` (`expires_at <= now`, the complement of
/// [`live_bindings`]), through the expiry index, each announced as `binding.removed`.
pub(crate) async fn delete_expired_bindings(
    store: &SqlStore,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let mut tx = store.write_tx().await?;
    let rows: Vec<BindingRow> = sqlx::query_as(concat!(
        "DELETE FROM inbound_bindings WHERE expires_at <= $1 RETURNING ",
        binding_columns!()
    ))
    .bind(now.micros())
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let count = rows.len() as u64;
    commit_with_events(store, tx, &removed_events(rows)?).await?;
    Ok(count)
}
