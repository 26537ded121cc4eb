// Included into each backend module as `webhooks`: a tenant's webhook endpoints (secrets
// sealed), their delivery attempts, and the deliverer's claims and cursors.
//
// A webhook row carries its own delivery cursor (`delivered_seq`, `attempt`, `failing_since`,
// `next_attempt_at`) and lease (`holder`, `held_until`). Only the holder writes the cursor:
// every deliverer write names the node and is fenced by `holder = node AND enabled`, so a node
// whose lease was taken over (or whose webhook was disabled or deleted meanwhile) writes
// nothing and learns so. Claims take rows with `super::SKIP_LOCKED` (PostgreSQL: rows another
// node is claiming are passed over, not waited for) and re-check in the update itself.

use secrecy::SecretString;
use trunkline_core::outbox::{
    CursorUpdate, DeliveryAttempt, EventType, Webhook, WebhookCursor, MAX_WEBHOOKS_PER_TENANT,
};
use trunkline_core::store::WriteOutcome;
use trunkline_core::{AccountId, StoreError, Timestamp};
use uuid::Uuid;

use super::support::missing_or_stale;
use super::{SqlStore, SKIP_LOCKED};
use crate::common::{applied, corrupt, db, open_sealed, parse_tenant, parse_uuid, seal};

/// The table's name, also the first part of a sealed secret's associated data.
const TABLE: &str = "webhooks";

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: String,
    tenant_id: String,
    url: String,
    types: String,
    description: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

macro_rules! webhook_columns {
    () => {
        "id, tenant_id, url, types, description, enabled, disabled_reason, created_at, updated_at"
    };
}

/// Event types as stored: their names, comma-separated; empty for all.
fn types_text(types: &[EventType]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_types(text: &str) -> Result<Vec<EventType>, StoreError> {
    text.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| EventType::parse(name).ok_or_else(|| corrupt("webhook event type")))
        .collect()
}

impl WebhookRow {
    fn into_model(self) -> Result<Webhook, StoreError> {
        Ok(Webhook {
            id: parse_uuid(&self.id)?,
            tenant: parse_tenant(&self.tenant_id)?,
            url: self.url,
            types: parse_types(&self.types)?,
            description: self.description,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            created_at: Timestamp::from_micros(self.created_at),
            updated_at: Timestamp::from_micros(self.updated_at),
        })
    }
}

/// A row as the deliverer reads it: the endpoint, its sealed secret and its cursor.
#[derive(sqlx::FromRow)]
struct CursorRow {
    #[sqlx(flatten)]
    webhook: WebhookRow,
    secret_sealed: Vec<u8>,
    secret_key_id: String,
    delivered_seq: i64,
    attempt: i64,
    failing_since: Option<i64>,
    next_attempt_at: Option<i64>,
}

impl CursorRow {
    fn into_model(self, store: &SqlStore) -> Result<WebhookCursor, StoreError> {
        let webhook = self.webhook.into_model()?;
        let secret = open_sealed(
            &store.sealer,
            TABLE,
            &webhook.tenant,
            webhook.id,
            Some(self.secret_sealed),
            Some(self.secret_key_id),
        )?
        .ok_or_else(|| corrupt("webhook secret"))?;
        Ok(WebhookCursor {
            webhook,
            secret,
            delivered_seq: u64::try_from(self.delivered_seq).unwrap_or(0),
            attempt: u32::try_from(self.attempt.max(0)).unwrap_or(u32::MAX),
            failing_since: self.failing_since.map(Timestamp::from_micros),
            next_attempt_at: self.next_attempt_at.map(Timestamp::from_micros),
        })
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    webhook_id: String,
    tenant_id: String,
    event_id: String,
    event_seq: i64,
    #[sqlx(rename = "type")]
    kind: String,
    attempt: i64,
    status_code: Option<i64>,
    duration_ms: i64,
    error: Option<String>,
    at: i64,
    next_attempt_at: Option<i64>,
}

impl DeliveryRow {
    fn into_model(self) -> Result<DeliveryAttempt, StoreError> {
        Ok(DeliveryAttempt {
            webhook_id: parse_uuid(&self.webhook_id)?,
            tenant: parse_tenant(&self.tenant_id)?,
            event_id: self.event_id,
            event_seq: u64::try_from(self.event_seq).map_err(|_| corrupt("event seq"))?,
            kind: EventType::parse(&self.kind).ok_or_else(|| corrupt("event type"))?,
            attempt: u32::try_from(self.attempt.max(0)).unwrap_or(u32::MAX),
            status_code: self
                .status_code
                .map(|c| u16::try_from(c).map_err(|_| corrupt("HTTP status")))
                .transpose()?,
            duration_ms: u64::try_from(self.duration_ms).unwrap_or(0),
            error: self.error,
            at: Timestamp::from_micros(self.at),
            next_attempt_at: self.next_attempt_at.map(Timestamp::from_micros),
        })
    }
}

fn seq(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) async fn insert_webhook(
    store: &SqlStore,
    webhook: &Webhook,
    secret: &SecretString,
) -> Result<WriteOutcome, StoreError> {
    let sealed = seal(&store.sealer, TABLE, &webhook.tenant, webhook.id, secret);
    let mut tx = store.write_tx().await?;
    // The tenant's event counter row, written as it is: it orders this insert with the
    // tenant's event writers (they update that row too), so the webhook's cursor starts exactly
    // after the last event committed before it, and two creates of one tenant count each
    // other's rows.
    let last_seq: i64 = sqlx::query_scalar(
        "INSERT INTO event_counters (tenant_id, last_seq) VALUES ($1, 0) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_seq = event_counters.last_seq \
         RETURNING last_seq",
    )
    .bind(webhook.tenant.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE tenant_id = $1")
        .bind(webhook.tenant.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    if count >= MAX_WEBHOOKS_PER_TENANT as i64 {
        return Ok(WriteOutcome::LimitReached);
    }
    sqlx::query(
        "INSERT INTO webhooks (id, tenant_id, url, types, description, enabled, \
         disabled_reason, secret_sealed, secret_key_id, created_at, updated_at, delivered_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(webhook.id.to_string())
    .bind(webhook.tenant.as_str())
    .bind(&webhook.url)
    .bind(types_text(&webhook.types))
    .bind(&webhook.description)
    .bind(webhook.enabled)
    .bind(&webhook.disabled_reason)
    .bind(sealed.ciphertext)
    .bind(sealed.key_id)
    .bind(webhook.created_at.micros())
    .bind(webhook.updated_at.micros())
    .bind(last_seq)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(WriteOutcome::Applied)
}

pub(crate) async fn webhook(
    store: &SqlStore,
    tenant: &AccountId,
    id: Uuid,
) -> Result<Option<Webhook>, StoreError> {
    store
        .row_by_id::<WebhookRow>(
            concat!(
                "SELECT ",
                webhook_columns!(),
                " FROM webhooks WHERE tenant_id = $1 AND id = $2"
            ),
            tenant,
            id,
        )
        .await?
        .map(WebhookRow::into_model)
        .transpose()
}

pub(crate) async fn webhooks(
    store: &SqlStore,
    tenant: &AccountId,
) -> Result<Vec<Webhook>, StoreError> {
    sqlx::query_as::<_, WebhookRow>(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id"
    ))
    .bind(tenant.as_str())
    .fetch_all(&store.reader)
    .await
    .map_err(db)?
    .into_iter()
    .map(WebhookRow::into_model)
    .collect()
}

/// The optimistic update. Enabling a disabled webhook, or pointing it at another URL, starts
/// its retries afresh (the event it stopped at is tried at once, with a new retry window).
pub(crate) async fn update_webhook(
    store: &SqlStore,
    webhook: &Webhook,
    expected: Timestamp,
) -> Result<WriteOutcome, StoreError> {
    let mut tx = store.write_tx().await?;
    let result = sqlx::query(
        "UPDATE webhooks SET \
         attempt = CASE WHEN ($5 AND NOT enabled) OR url <> $3 THEN 0 ELSE attempt END, \
         failing_since = CASE WHEN ($5 AND NOT enabled) OR url <> $3 THEN NULL \
             ELSE failing_since END, \
         next_attempt_at = CASE WHEN ($5 AND NOT enabled) OR url <> $3 THEN NULL \
             ELSE next_attempt_at END, \
         url = $3, types = $4, enabled = $5, description = $6, disabled_reason = $7, \
         updated_at = $8 \
         WHERE tenant_id = $1 AND id = $2 AND updated_at = $9",
    )
    .bind(webhook.tenant.as_str())
    .bind(webhook.id.to_string())
    .bind(&webhook.url)
    .bind(types_text(&webhook.types))
    .bind(webhook.enabled)
    .bind(&webhook.description)
    .bind(&webhook.disabled_reason)
    .bind(webhook.updated_at.micros())
    .bind(expected.micros())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if result.rows_affected() == 0 {
        return missing_or_stale(
            &mut tx,
            "SELECT 1 FROM webhooks WHERE tenant_id = $1 AND id = $2",
            &webhook.tenant,
            &webhook.id.to_string(),
        )
        .await;
    }
    tx.commit().await.map_err(db)?;
    Ok(WriteOutcome::Applied)
}

/// Deletes a webhook; its delivery attempts go with it (`ON DELETE CASCADE`).
pub(crate) async fn delete_webhook(
    store: &SqlStore,
    tenant: &AccountId,
    id: Uuid,
) -> Result<WriteOutcome, StoreError> {
    let result = sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id.to_string())
        .execute(&store.writer)
        .await
        .map_err(db)?;
    Ok(applied(result.rows_affected()))
}

pub(crate) async fn webhook_deliveries(
    store: &SqlStore,
    tenant: &AccountId,
    id: Uuid,
    limit: u32,
) -> Result<Vec<DeliveryAttempt>, StoreError> {
    sqlx::query_as::<_, DeliveryRow>(
        "SELECT webhook_id, tenant_id, event_id, event_seq, type, attempt, status_code, \
         duration_ms, error, at, next_attempt_at FROM webhook_deliveries \
         WHERE tenant_id = $1 AND webhook_id = $2 ORDER BY n DESC LIMIT $3",
    )
    .bind(tenant.as_str())
    .bind(id.to_string())
    .bind(i64::from(limit))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?
    .into_iter()
    .map(DeliveryRow::into_model)
    .collect()
}

/// A row `node` takes at `$2`: enabled, and held by nobody or by a node whose hold lapsed; or
/// held by `node` itself with less than half its hold left (`$4`), which renews it. A round
/// soon after the last renews nothing, and writes only the rows it takes.
const CLAIMABLE: &str = "webhooks.enabled AND (webhooks.holder = '' \
     OR webhooks.held_until < $2 OR (webhooks.holder = $1 AND webhooks.held_until < $4))";

pub(crate) async fn claim_webhooks(
    store: &SqlStore,
    node: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Vec<WebhookCursor>, StoreError> {
    let renew_before = now.micros() + (until.micros() - now.micros()) / 2;
    let mut tx = store.write_tx().await?;
    sqlx::query(&format!(
        "UPDATE webhooks SET holder = $1, held_until = $3 WHERE {CLAIMABLE} \
         AND id IN (SELECT id FROM webhooks WHERE {CLAIMABLE}{SKIP_LOCKED})"
    ))
    .bind(node)
    .bind(now.micros())
    .bind(until.micros())
    .bind(renew_before)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let rows: Vec<CursorRow> = sqlx::query_as(concat!(
        "SELECT ",
        webhook_columns!(),
        ", secret_sealed, secret_key_id, delivered_seq, attempt, failing_since, \
         next_attempt_at FROM webhooks WHERE holder = $1 AND enabled ORDER BY created_at, id"
    ))
    .bind(node)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let mut held = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.webhook.id.clone();
        match row.into_model(store) {
            Ok(cursor) => held.push(cursor),
            // One unreadable row (a secret sealed with a key not configured) never stops the
            // others; it stays held and undelivered until the key is configured.
            Err(err) => tracing::error!(webhook = %id, error = %err,
                "skipping a webhook that cannot be read"),
        }
    }
    Ok(held)
}

pub(crate) async fn record_delivery(
    store: &SqlStore,
    node: &str,
    attempt: &DeliveryAttempt,
    cursor: &CursorUpdate,
    keep: u32,
) -> Result<bool, StoreError> {
    let id = attempt.webhook_id.to_string();
    let mut tx = store.write_tx().await?;
    let moved = sqlx::query(
        "UPDATE webhooks SET delivered_seq = $3, attempt = $4, failing_since = $5, \
         next_attempt_at = $6, enabled = NOT $7, \
         disabled_reason = CASE WHEN $7 THEN $8 ELSE disabled_reason END \
         WHERE id = $1 AND holder = $2 AND enabled AND delivered_seq <= $3",
    )
    .bind(&id)
    .bind(node)
    .bind(seq(cursor.delivered_seq))
    .bind(i64::from(cursor.attempt))
    .bind(cursor.failing_since.map(Timestamp::micros))
    .bind(cursor.next_attempt_at.map(Timestamp::micros))
    .bind(cursor.disable.is_some())
    .bind(cursor.disable.as_deref())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if moved.rows_affected() == 0 {
        return Ok(false);
    }
    // Only the holder writes a webhook's attempts, and its row is locked by the update above:
    // `n` counts on from the last one without a race.
    let n: i64 = sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (webhook_id, n, tenant_id, event_id, event_seq, type, \
         attempt, status_code, duration_ms, error, at, next_attempt_at) \
         VALUES ($1, (SELECT COALESCE(MAX(n), 0) + 1 FROM webhook_deliveries \
         WHERE webhook_id = $1), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING n",
    )
    .bind(&id)
    .bind(attempt.tenant.as_str())
    .bind(&attempt.event_id)
    .bind(seq(attempt.event_seq))
    .bind(attempt.kind.as_str())
    .bind(i64::from(attempt.attempt))
    .bind(attempt.status_code.map(i64::from))
    .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
    .bind(&attempt.error)
    .bind(attempt.at.micros())
    .bind(attempt.next_attempt_at.map(Timestamp::micros))
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND n <= $2")
        .bind(&id)
        .bind(n - i64::from(keep.max(1)))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// Moves the cursor past events not of the webhook's types; whatever retries stood (for an
/// event it no longer wants, after its types changed) start afresh.
pub(crate) async fn skip_webhook_events(
    store: &SqlStore,
    node: &str,
    webhook: Uuid,
    delivered_seq: u64,
) -> Result<bool, StoreError> {
    let moved = sqlx::query(
        "UPDATE webhooks SET delivered_seq = $3, attempt = 0, failing_since = NULL, \
         next_attempt_at = NULL \
         WHERE id = $1 AND holder = $2 AND enabled AND delivered_seq <= $3",
    )
    .bind(webhook.to_string())
    .bind(node)
    .bind(seq(delivered_seq))
    .execute(&store.writer)
    .await
    .map_err(db)?;
    Ok(moved.rows_affected() == 1)
}

pub(crate) async fn release_webhooks(store: &SqlStore, node: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE webhooks SET holder = '', held_until = 0 WHERE holder = $1")
        .bind(node)
        .execute(&store.writer)
        .await
        .map_err(db)?;
    Ok(())
}
