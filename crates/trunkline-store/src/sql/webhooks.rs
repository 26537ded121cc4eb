// Included into each backend module as `webhooks`: a tenant's webhook endpoints (secrets
// sealed), their delivery attempts, and the deliverer's claims and cursors.

use secrecy::SecretString;
use trunkline_core::outbox::{CursorUpdate, DeliveryAttempt, Webhook, WebhookCursor};
use trunkline_core::store::WriteOutcome;
use trunkline_core::{AccountId, StoreError, Timestamp};
use uuid::Uuid;

use super::SqlStore;

pub(crate) async fn insert_webhook(
    _store: &SqlStore,
    _webhook: &Webhook,
    _secret: &SecretString,
) -> Result<WriteOutcome, StoreError> {
    todo!()
}

pub(crate) async fn webhook(
    _store: &SqlStore,
    _tenant: &AccountId,
    _id: Uuid,
) -> Result<Option<Webhook>, StoreError> {
    todo!()
}

pub(crate) async fn webhooks(
    _store: &SqlStore,
    _tenant: &AccountId,
) -> Result<Vec<Webhook>, StoreError> {
    todo!()
}

pub(crate) async fn update_webhook(
    _store: &SqlStore,
    _webhook: &Webhook,
    _expected: Timestamp,
) -> Result<WriteOutcome, StoreError> {
    todo!()
}

pub(crate) async fn delete_webhook(
    _store: &SqlStore,
    _tenant: &AccountId,
    _id: Uuid,
) -> Result<WriteOutcome, StoreError> {
    todo!()
}

pub(crate) async fn webhook_deliveries(
    _store: &SqlStore,
    _tenant: &AccountId,
    _id: Uuid,
    _limit: u32,
) -> Result<Vec<DeliveryAttempt>, StoreError> {
    todo!()
}

pub(crate) async fn claim_webhooks(
    _store: &SqlStore,
    _node: &str,
    _now: Timestamp,
    _until: Timestamp,
) -> Result<Vec<WebhookCursor>, StoreError> {
    todo!()
}

pub(crate) async fn record_delivery(
    _store: &SqlStore,
    _node: &str,
    _attempt: &DeliveryAttempt,
    _cursor: &CursorUpdate,
    _keep: u32,
) -> Result<bool, StoreError> {
    todo!()
}

pub(crate) async fn skip_webhook_events(
    _store: &SqlStore,
    _node: &str,
    _webhook: Uuid,
    _delivered_seq: u64,
) -> Result<bool, StoreError> {
    todo!()
}

pub(crate) async fn release_webhooks(_store: &SqlStore, _node: &str) -> Result<(), StoreError> {
    todo!()
}
