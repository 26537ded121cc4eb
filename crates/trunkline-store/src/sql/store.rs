// Included into each backend module as `store`: the `Store` contract, each method handed to
// the entity module that holds its SQL.

use async_trait::async_trait;
use secrecy::SecretString;
use trunkline_core::model::{
    BindingChange, ClusterNode, Lease, RecordedBinding, InboundBinding, InboundCredential, OutboundRegistration, PhoneNumber,
    Registration, RegistrationAttempt, RegistrationStatus, RegistrationSummary, Tenant, Trunk,
};
use trunkline_core::outbox::{
    CursorUpdate, DeliveryAttempt, EventType, StatusWrite, StoredEvent, Webhook, WebhookCursor,
};
use trunkline_core::page::{Seek, Window};
use trunkline_core::secret::{ApiKeyHash, DigestHashes};
use trunkline_core::store::{SecretChange, Store, StoredApiKey, TrunkPacing, WriteOutcome};
use trunkline_core::{AccountId, StoreError, Timestamp};
use uuid::Uuid;

use super::{events, inbound, pacing, registration_list, webhooks, SqlStore};
use crate::common::db;

#[async_trait]
impl Store for SqlStore {
    async fn create_tenant(&self, tenant: &Tenant, key: &ApiKeyHash) -> Result<(), StoreError> {
        SqlStore::create_tenant(self, tenant, key).await
    }

    async fn create_first_tenant(
        &self,
        tenant: &Tenant,
        key: &ApiKeyHash,
    ) -> Result<bool, StoreError> {
        SqlStore::create_first_tenant(self, tenant, key).await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        SqlStore::tenants(self).await
    }

    async fn tenant(&self, id: &AccountId) -> Result<Option<Tenant>, StoreError> {
        SqlStore::tenant(self, id).await
    }

    async fn insert_api_key(
        &self,
        tenant: &AccountId,
        key: &ApiKeyHash,
        at: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        SqlStore::insert_api_key(self, tenant, key, at).await
    }

    async fn api_key(&self, prefix: &str) -> Result<Option<StoredApiKey>, StoreError> {
        SqlStore::api_key(self, prefix).await
    }

    async fn revoke_api_key(&self, prefix: &str, at: Timestamp) -> Result<bool, StoreError> {
        SqlStore::revoke_api_key(self, prefix, at).await
    }

    async fn insert_registration(
        &self,
        r: &Registration,
        password: &SecretString,
    ) -> Result<(), StoreError> {
        SqlStore::insert_registration(self, r, password).await
    }

    async fn registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<Registration>, StoreError> {
        SqlStore::registration(self, tenant, id).await
    }

    async fn update_registration(
        &self,
        r: &Registration,
        password: Option<&SecretString>,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        SqlStore::update_registration(self, r, password, expected).await
    }

    async fn delete_registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<WriteOutcome, StoreError> {
        SqlStore::delete_registration(self, tenant, id).await
    }

    async fn registrations_page(
        &self,
        tenant: &AccountId,
        seek: Option<Seek>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        SqlStore::registrations_page(self, tenant, seek, limit).await
    }

    async fn registrations_exist(
        &self,
        tenant: &AccountId,
        seek: Seek,
    ) -> Result<bool, StoreError> {
        SqlStore::registrations_exist(self, tenant, seek).await
    }

    async fn count_registrations(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        SqlStore::count_registrations(self, tenant).await
    }

    async fn registration_password(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<SecretString>, StoreError> {
        SqlStore::registration_password(self, tenant, id).await
    }

    async fn insert_trunk(
        &self,
        t: &Trunk,
        password: Option<&SecretString>,
    ) -> Result<(), StoreError> {
        SqlStore::insert_trunk(self, t, password).await
    }

    async fn trunk(
        &self,
        tenant: &AccountId,
        id: Uuid,
        reveal: bool,
    ) -> Result<Option<Trunk>, StoreError> {
        SqlStore::trunk(self, tenant, id, reveal).await
    }

    async fn update_trunk(
        &self,
        t: &Trunk,
        password: SecretChange,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        SqlStore::update_trunk(self, t, password, expected).await
    }

    async fn delete_trunk(&self, tenant: &AccountId, id: Uuid) -> Result<WriteOutcome, StoreError> {
        SqlStore::delete_trunk(self, tenant, id).await
    }

    async fn trunks_page(
        &self,
        tenant: &AccountId,
        window: Window,
        reveal: bool,
    ) -> Result<Vec<Trunk>, StoreError> {
        SqlStore::trunks_page(self, tenant, window, reveal).await
    }

    async fn count_trunks(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        SqlStore::count_trunks(self, tenant).await
    }

    async fn insert_phone_number(&self, p: &PhoneNumber) -> Result<WriteOutcome, StoreError> {
        SqlStore::insert_phone_number(self, p).await
    }

    async fn phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
    ) -> Result<Option<PhoneNumber>, StoreError> {
        SqlStore::phone_number(self, tenant, number).await
    }

    async fn update_phone_number(
        &self,
        p: &PhoneNumber,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        SqlStore::update_phone_number(self, p, expected).await
    }

    async fn delete_phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
    ) -> Result<WriteOutcome, StoreError> {
        SqlStore::delete_phone_number(self, tenant, number).await
    }

    async fn phone_numbers_page(
        &self,
        tenant: &AccountId,
        window: Window,
    ) -> Result<Vec<PhoneNumber>, StoreError> {
        SqlStore::phone_numbers_page(self, tenant, window).await
    }

    async fn count_phone_numbers(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        SqlStore::count_phone_numbers(self, tenant).await
    }

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

    async fn put_registration_status(
        &self,
        tenant: &AccountId,
        id: Uuid,
        status: &RegistrationStatus,
    ) -> Result<(), StoreError> {
        SqlStore::put_registration_status(self, tenant, id, status).await
    }

    async fn write_registration_batch(
        &self,
        statuses: &[StatusWrite],
        attempts: &[RegistrationAttempt],
        keep: u32,
    ) -> Result<(), StoreError> {
        SqlStore::write_registration_batch(self, statuses, attempts, keep).await
    }

    async fn outbound_registrations(&self) -> Result<Vec<OutboundRegistration>, StoreError> {
        SqlStore::outbound_registrations(self).await
    }

    async fn outbound_registration_versions(
        &self,
        holder: Option<&str>,
    ) -> Result<Vec<(AccountId, Uuid, Timestamp)>, StoreError> {
        SqlStore::outbound_registration_versions(self, holder).await
    }

    async fn outbound_registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<OutboundRegistration>, StoreError> {
        SqlStore::outbound_registration(self, tenant, id).await
    }

    async fn registration_attempts(
        &self,
        tenant: &AccountId,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<RegistrationAttempt>, StoreError> {
        SqlStore::registration_attempts(self, tenant, id, limit).await
    }

    async fn registration_summaries(
        &self,
        tenant: &AccountId,
    ) -> Result<Vec<RegistrationSummary>, StoreError> {
        registration_list::summaries(self, tenant).await
    }

    async fn registering_numbers_of_trunk(
        &self,
        tenant: &AccountId,
        trunk: Uuid,
    ) -> Result<Vec<Uuid>, StoreError> {
        SqlStore::registering_numbers_of_trunk(self, tenant, trunk).await
    }

    async fn record_heartbeat(&self, node: &ClusterNode) -> Result<(), StoreError> {
        SqlStore::record_heartbeat(self, node).await
    }

    async fn cluster_nodes(
        &self,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<ClusterNode>, StoreError> {
        SqlStore::cluster_nodes(self, since, now).await
    }

    async fn forget_node(&self, node_id: &str) -> Result<(), StoreError> {
        SqlStore::forget_node(self, node_id).await
    }

    async fn claim_leases(
        &self,
        node: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Lease>, StoreError> {
        SqlStore::claim_leases(self, node, now, limit).await
    }

    async fn renew_node_lease(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        SqlStore::renew_node_lease(self, node, now, until).await
    }

    async fn held_lease_count(&self, node: &str) -> Result<u64, StoreError> {
        SqlStore::held_lease_count(self, node).await
    }

    async fn held_leases(&self, node: &str) -> Result<Vec<Lease>, StoreError> {
        SqlStore::held_leases(self, node).await
    }

    async fn release_leases(&self, node: &str, ids: Option<&[Uuid]>) -> Result<u64, StoreError> {
        SqlStore::release_leases(self, node, ids).await
    }

    async fn count_outbound_registrations(&self) -> Result<u64, StoreError> {
        SqlStore::count_outbound_registrations(self).await
    }

    async fn record_binding(&self, binding: &RecordedBinding) -> Result<(), StoreError> {
        SqlStore::record_binding(self, binding).await
    }

    async fn forget_binding(
        &self,
        tenant: &AccountId,
        id: Uuid,
        node: &str,
    ) -> Result<(), StoreError> {
        SqlStore::forget_binding(self, tenant, id, node).await
    }

    async fn bound_contacts(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>, StoreError> {
        SqlStore::bound_contacts(self, ids).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn events_after(
        &self,
        tenant: &AccountId,
        after: u64,
        types: &[EventType],
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        events::events_after(self, tenant, after, types, limit).await
    }

    async fn last_event_seq(&self, tenant: &AccountId) -> Result<u64, StoreError> {
        events::last_event_seq(self, tenant).await
    }

    async fn prune_events(&self, before: Timestamp) -> Result<u64, StoreError> {
        events::prune_events(self, before).await
    }

    fn event_wakeups(&self) -> tokio::sync::watch::Receiver<u64> {
        self.events_appended.subscribe()
    }

    async fn insert_webhook(
        &self,
        webhook: &Webhook,
        secret: &SecretString,
    ) -> Result<WriteOutcome, StoreError> {
        webhooks::insert_webhook(self, webhook, secret).await
    }

    async fn webhook(&self, tenant: &AccountId, id: Uuid) -> Result<Option<Webhook>, StoreError> {
        webhooks::webhook(self, tenant, id).await
    }

    async fn webhooks(&self, tenant: &AccountId) -> Result<Vec<Webhook>, StoreError> {
        webhooks::webhooks(self, tenant).await
    }

    async fn update_webhook(
        &self,
        webhook: &Webhook,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError> {
        webhooks::update_webhook(self, webhook, expected).await
    }

    async fn delete_webhook(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<WriteOutcome, StoreError> {
        webhooks::delete_webhook(self, tenant, id).await
    }

    async fn webhook_deliveries(
        &self,
        tenant: &AccountId,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        webhooks::webhook_deliveries(self, tenant, id, limit).await
    }

    async fn claim_webhooks(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<WebhookCursor>, StoreError> {
        webhooks::claim_webhooks(self, node, now, until).await
    }

    async fn record_delivery(
        &self,
        node: &str,
        attempt: &DeliveryAttempt,
        cursor: &CursorUpdate,
        keep: u32,
    ) -> Result<bool, StoreError> {
        webhooks::record_delivery(self, node, attempt, cursor, keep).await
    }

    async fn skip_webhook_events(
        &self,
        node: &str,
        webhook: Uuid,
        delivered_seq: u64,
    ) -> Result<bool, StoreError> {
        webhooks::skip_webhook_events(self, node, webhook, delivered_seq).await
    }

    async fn release_webhooks(&self, node: &str) -> Result<(), StoreError> {
        webhooks::release_webhooks(self, node).await
    }
}
