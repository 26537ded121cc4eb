//! The store contract: everything the services need from persistence, scoped by tenant.
//!
//! Invariants every implementation keeps:
//! - every method that writes runs as one transaction: it applies completely or not at all;
//! - every read and write names the tenant, and never touches another tenant's rows;
//! - plaintext secrets passed in are sealed before they reach storage, and opened only by the
//!   methods that say so;
//! - lists are ordered by (created time, id), ascending unless the method says otherwise.

use async_trait::async_trait;
use secrecy::SecretString;
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::{AccountId, Timestamp};
use crate::model::{
    BindingChange, ClusterNode, InboundBinding, InboundCredential, Lease, OutboundRegistration,
    PhoneNumber, RecordedBinding, Registration, RegistrationAttempt, RegistrationStatus,
    RegistrationSummary, Tenant, Trunk,
};
use crate::outbox::{
    CursorUpdate, DeliveryAttempt, EventType, StatusWrite, StoredEvent, Webhook, WebhookCursor,
};
use crate::page::{Seek, Window};
use crate::secret::{ApiKeyHash, DigestHashes};

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Applied,
    /// The target row does not exist for this tenant.
    NotFound,
    /// A row with the same unique key exists.
    Duplicate,
    /// A row the write refers to (e.g. a phone number's trunk) does not exist for this tenant.
    ReferenceMissing,
    /// Other rows still refer to the target (e.g. a trunk with phone numbers).
    InUse,
    /// The row changed since it was read (its `updated_at` moved); read again and retry.
    Stale,
    /// The tenant already has as many rows of this kind as it may have (e.g.
    /// [`crate::outbox::MAX_WEBHOOKS_PER_TENANT`]); nothing was written.
    LimitReached,
}

/// What pacing needs of a trunk, read in one query at each admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkPacing {
    pub cps_limit: Option<i32>,
    pub cps_key: Option<String>,
    /// `MIN(cps_limit)` over the tenant's trunks with this `cps_key`; `None` without a key.
    pub smallest_limit_sharing_key: Option<i32>,
}

/// A stored API key, as found by its prefix.
#[derive(Debug, Clone)]
pub struct StoredApiKey {
    pub tenant: AccountId,
    pub sha256: Vec<u8>,
    pub revoked: bool,
}

/// How an update treats a sealed password.
#[derive(Debug, Clone)]
pub enum SecretChange {
    Keep,
    Clear,
    Set(SecretString),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- tenants and API keys ---
    /// Creates a tenant with its first key.
    async fn create_tenant(&self, tenant: &Tenant, key: &ApiKeyHash) -> Result<(), StoreError>;
    /// Creates the tenant only if no tenant exists at all (first start); false if there was one.
    async fn create_first_tenant(
        &self,
        tenant: &Tenant,
        key: &ApiKeyHash,
    ) -> Result<bool, StoreError>;
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    async fn tenant(&self, id: &AccountId) -> Result<Option<Tenant>, StoreError>;
    async fn insert_api_key(
        &self,
        tenant: &AccountId,
        key: &ApiKeyHash,
        at: Timestamp,
    ) -> Result<WriteOutcome, StoreError>;
    async fn api_key(&self, prefix: &str) -> Result<Option<StoredApiKey>, StoreError>;
    /// Revokes by prefix; false when no live key has it.
    async fn revoke_api_key(&self, prefix: &str, at: Timestamp) -> Result<bool, StoreError>;

    // --- outbound registrations (Ultravox) ---
    async fn insert_registration(
        &self,
        registration: &Registration,
        password: &SecretString,
    ) -> Result<(), StoreError>;
    async fn registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<Registration>, StoreError>;
    /// Writes the registration's editable fields and, if given, a new password, provided the
    /// stored row's `updated_at` is still `expected` (else `Stale`). Every `update_*` method
    /// below follows the same optimistic rule.
    async fn update_registration(
        &self,
        registration: &Registration,
        password: Option<&SecretString>,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError>;
    async fn delete_registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<WriteOutcome, StoreError>;
    /// Up to `limit` rows from `seek` (or the start), in the seek's direction.
    async fn registrations_page(
        &self,
        tenant: &AccountId,
        seek: Option<Seek>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError>;
    /// Whether any row lies in the seek's direction from its position.
    async fn registrations_exist(&self, tenant: &AccountId, seek: Seek)
        -> Result<bool, StoreError>;
    async fn count_registrations(&self, tenant: &AccountId) -> Result<u64, StoreError>;
    /// Opens the sealed password (for the SIP engine).
    async fn registration_password(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<SecretString>, StoreError>;

    // --- trunks (Dasha sip-credentials) ---
    async fn insert_trunk(
        &self,
        trunk: &Trunk,
        password: Option<&SecretString>,
    ) -> Result<(), StoreError>;
    /// `reveal` opens the sealed password into `Trunk::revealed_password`.
    async fn trunk(
        &self,
        tenant: &AccountId,
        id: Uuid,
        reveal: bool,
    ) -> Result<Option<Trunk>, StoreError>;
    async fn update_trunk(
        &self,
        trunk: &Trunk,
        password: SecretChange,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError>;
    /// `InUse` while phone numbers refer to it.
    async fn delete_trunk(&self, tenant: &AccountId, id: Uuid) -> Result<WriteOutcome, StoreError>;
    async fn trunks_page(
        &self,
        tenant: &AccountId,
        window: Window,
        reveal: bool,
    ) -> Result<Vec<Trunk>, StoreError>;
    async fn count_trunks(&self, tenant: &AccountId) -> Result<u64, StoreError>;
    /// A trunk's pacing fields, with the smallest `cps_limit` among this tenant's trunks that
    /// share its `cps_key` (itself included); `None` when the trunk is not this tenant's.
    async fn trunk_pacing(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<TrunkPacing>, StoreError>;

    // --- phone numbers (Dasha sip-phone-numbers) ---
    /// `Duplicate` if the number exists for the tenant, `ReferenceMissing` if the trunk does not.
    async fn insert_phone_number(&self, number: &PhoneNumber) -> Result<WriteOutcome, StoreError>;
    async fn phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
    ) -> Result<Option<PhoneNumber>, StoreError>;
    /// `ReferenceMissing` if the new trunk does not exist for the tenant.
    async fn update_phone_number(
        &self,
        number: &PhoneNumber,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError>;
    async fn delete_phone_number(
        &self,
        tenant: &AccountId,
        number: &str,
    ) -> Result<WriteOutcome, StoreError>;
    async fn phone_numbers_page(
        &self,
        tenant: &AccountId,
        window: Window,
    ) -> Result<Vec<PhoneNumber>, StoreError>;
    async fn count_phone_numbers(&self, tenant: &AccountId) -> Result<u64, StoreError>;

    // --- inbound credentials (Vobiz) ---
    /// `Duplicate` if the username exists for the tenant.
    async fn insert_inbound_credential(
        &self,
        credential: &InboundCredential,
        hashes: &DigestHashes,
    ) -> Result<WriteOutcome, StoreError>;
    async fn inbound_credential(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<InboundCredential>, StoreError>;
    /// Disabling the credential (`enabled: false`) deletes its bindings in the same
    /// transaction.
    async fn update_inbound_credential(
        &self,
        credential: &InboundCredential,
        hashes: Option<&DigestHashes>,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError>;
    /// Its bindings go with it.
    async fn delete_inbound_credential(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<WriteOutcome, StoreError>;
    /// Newest first, then id descending.
    async fn inbound_credentials_page(
        &self,
        tenant: &AccountId,
        window: Window,
    ) -> Result<Vec<InboundCredential>, StoreError>;
    async fn count_inbound_credentials(&self, tenant: &AccountId) -> Result<u64, StoreError>;

    /// Every inbound credential of every tenant with its digest hashes: the registrar's
    /// directory, loaded at start and after missed change events.
    async fn inbound_credential_directory(
        &self,
    ) -> Result<Vec<(InboundCredential, DigestHashes)>, StoreError>;
    /// One credential with its digest hashes (the registrar, after a change event).
    async fn inbound_credential_with_hashes(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<(InboundCredential, DigestHashes)>, StoreError>;

    /// One credential with its digest hashes, by username (the registrar, for a user its
    /// directory does not know yet: created through another node, or a moment ago).
    async fn inbound_credential_by_username(
        &self,
        tenant: &AccountId,
        username: &str,
    ) -> Result<Option<(InboundCredential, DigestHashes)>, StoreError>;

    // --- inbound bindings (written by the SIP registrar) ---
    /// Applies the changes in order, in one transaction. A `Put` for a credential that no
    /// longer exists, is disabled, or is not the binding's tenant's is skipped (a late write
    /// never brings a binding back). `Remove` and `RemoveAll` of nothing are no-ops.
    async fn write_binding_changes(&self, changes: &[BindingChange]) -> Result<(), StoreError>;
    /// Every binding of every tenant not expired at `now` (the registrar's start), oldest
    /// registration first. A binding is expired at `now` when `expires_at <= now`.
    async fn live_inbound_bindings(
        &self,
        now: Timestamp,
    ) -> Result<Vec<InboundBinding>, StoreError>;
    /// A credential's bindings not expired at `now`, oldest registration first; empty when the
    /// credential is not the tenant's.
    async fn inbound_bindings(
        &self,
        tenant: &AccountId,
        credential: Uuid,
        now: Timestamp,
    ) -> Result<Vec<InboundBinding>, StoreError>;
    /// Deletes the bindings expired at `now`; how many went.
    async fn delete_expired_inbound_bindings(&self, now: Timestamp) -> Result<u64, StoreError>;

    // --- live registration status (written by the SIP engine) ---
    async fn put_registration_status(
        &self,
        tenant: &AccountId,
        id: Uuid,
        status: &RegistrationStatus,
    ) -> Result<(), StoreError>;

    // --- for the SIP engine ---
    /// Writes a batch of status rows and history entries in one transaction. Each
    /// registration's history keeps its newest `keep` entries (a ring of `keep` slots, so `keep`
    /// stays the same from call to call). Rows of registrations that no longer exist are
    /// skipped, so a late write never resurrects a deleted registration's status or history.
    ///
    /// Each write whose outcome ([`crate::outbox::Outcome`]) differs from the one last
    /// announced for the registration appends its event ([`crate::outbox::announcement`]),
    /// in the same transaction; a `removed` write appends `registration.removed` even when the
    /// registration's rows are gone (it was deleted).
    async fn write_registration_batch(
        &self,
        statuses: &[StatusWrite],
        attempts: &[RegistrationAttempt],
        keep: u32,
    ) -> Result<(), StoreError>;
    /// Every registration the engine should keep alive: all Ultravox registrations and every
    /// Dasha phone number with `registration: true`, across tenants, passwords opened.
    async fn outbound_registrations(&self) -> Result<Vec<OutboundRegistration>, StoreError>;
    /// The tenant, id and version of every registration [`Store::outbound_registrations`]
    /// returns, without reading or opening anything else: what the engine's periodic reconcile
    /// compares with its own. With `holder`, only those that node holds a lease on.
    async fn outbound_registration_versions(
        &self,
        holder: Option<&str>,
    ) -> Result<Vec<(AccountId, Uuid, Timestamp)>, StoreError>;
    /// One of them by id (an Ultravox registration id or a phone number's id); `None` when it
    /// no longer exists or no longer asks for registration.
    async fn outbound_registration(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<Option<OutboundRegistration>, StoreError>;
    /// The newest `limit` attempts of a registration, newest first.
    async fn registration_attempts(
        &self,
        tenant: &AccountId,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<RegistrationAttempt>, StoreError>;
    /// Every outbound registration of the tenant as a list shows it: its Ultravox registrations
    /// and all its phone numbers (with registration or not), each with its stored status,
    /// ordered by (created time, id) within each kind, Ultravox first. Opens no secret.
    async fn registration_summaries(
        &self,
        tenant: &AccountId,
    ) -> Result<Vec<RegistrationSummary>, StoreError>;
    /// Ids of the phone numbers on a trunk that ask for registration.
    async fn registering_numbers_of_trunk(
        &self,
        tenant: &AccountId,
        trunk: Uuid,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Whether the database answers (readiness).
    // --- cluster membership (not tenant-scoped: the nodes serve every tenant) ---
    /// Inserts or refreshes the node's row.
    async fn record_heartbeat(&self, node: &ClusterNode) -> Result<(), StoreError>;
    /// The nodes heard from since `since`, or whose lease still runs at `now` (a node that
    /// died holds its registrations until then), by node id.
    async fn cluster_nodes(
        &self,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<ClusterNode>, StoreError>;
    /// Removes the node's row (a clean stop), releasing any lease it still holds.
    async fn forget_node(&self, node_id: &str) -> Result<(), StoreError>;

    // --- registration leases (which node registers what) ---
    /// Claims up to `limit` outbound registrations for `node` that have no lease, or whose
    /// holder released them or let its own lease lapse by `now`; never one a live node holds.
    /// Concurrent claims of several nodes get disjoint sets. Leases of registrations that
    /// stopped registering are dropped on the way, once nobody holds them.
    async fn claim_leases(
        &self,
        node: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Lease>, StoreError>;
    /// Extends `node`'s lease (covering every registration it holds) to `until`, if it had
    /// not lapsed by `now`: `true`. Otherwise (lapsed, or the first): whatever still names
    /// `node` is released, since another node may have registered it meanwhile, a fresh lease
    /// until `until` begins, and the answer is `false`: `node` holds nothing.
    async fn renew_node_lease(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// How many registrations `node` holds (a cheap check against what its engine has).
    async fn held_lease_count(&self, node: &str) -> Result<u64, StoreError>;
    /// The registrations `node` holds.
    async fn held_leases(&self, node: &str) -> Result<Vec<Lease>, StoreError>;
    /// Gives up `node`'s leases (all, or those of `ids`): others may claim them at once.
    async fn release_leases(&self, node: &str, ids: Option<&[Uuid]>) -> Result<u64, StoreError>;
    /// How many outbound registrations there are (Ultravox registrations and phone numbers
    /// with `registration: true`), to share among the nodes.
    async fn count_outbound_registrations(&self) -> Result<u64, StoreError>;

    // --- bindings the engine made (where nodes share the database) ---
    async fn record_binding(&self, binding: &RecordedBinding) -> Result<(), StoreError>;
    /// Forgets the binding `node` recorded for `id` (none other: by then another node may
    /// hold the registration and have recorded its own).
    async fn forget_binding(
        &self,
        tenant: &AccountId,
        id: Uuid,
        node: &str,
    ) -> Result<(), StoreError>;
    /// The recorded Contact of each of `ids` that has one.
    async fn bound_contacts(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>, StoreError>;

    async fn ping(&self) -> Result<(), StoreError>;

    // --- events (the outbox; appended by the writes above that announce something) ---
    /// The tenant's events after `after` (a `seq`), oldest first, at most `limit`, of `types`
    /// only (all when empty).
    async fn events_after(
        &self,
        tenant: &AccountId,
        after: u64,
        types: &[EventType],
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The last `seq` given to the tenant's events (0 before the first).
    async fn last_event_seq(&self, tenant: &AccountId) -> Result<u64, StoreError>;
    /// Deletes events that happened before `before`; how many went.
    async fn prune_events(&self, before: Timestamp) -> Result<u64, StoreError>;
    /// Changes after every commit that appended events (on a shared database, other nodes'
    /// too): SSE streams and deliverers wait on it instead of polling.
    fn event_wakeups(&self) -> tokio::sync::watch::Receiver<u64>;

    // --- webhooks ---
    /// Inserts a webhook, its secret sealed; it receives the events appended after this.
    /// `LimitReached` when the tenant has [`crate::outbox::MAX_WEBHOOKS_PER_TENANT`] already
    /// (checked in the insert's transaction).
    async fn insert_webhook(
        &self,
        webhook: &Webhook,
        secret: &SecretString,
    ) -> Result<WriteOutcome, StoreError>;
    async fn webhook(&self, tenant: &AccountId, id: Uuid) -> Result<Option<Webhook>, StoreError>;
    /// Every webhook of the tenant (a handful), oldest first.
    async fn webhooks(&self, tenant: &AccountId) -> Result<Vec<Webhook>, StoreError>;
    /// Optimistic update of url, types, description, enabled and disabled reason. Enabling a
    /// disabled webhook starts its retries afresh from the event it stopped at.
    async fn update_webhook(
        &self,
        webhook: &Webhook,
        expected: Timestamp,
    ) -> Result<WriteOutcome, StoreError>;
    async fn delete_webhook(
        &self,
        tenant: &AccountId,
        id: Uuid,
    ) -> Result<WriteOutcome, StoreError>;
    /// The newest `limit` delivery attempts of a webhook, newest first.
    async fn webhook_deliveries(
        &self,
        tenant: &AccountId,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<DeliveryAttempt>, StoreError>;

    // --- webhook delivery (the deliverer; not tenant-scoped) ---
    /// Takes (or keeps) every enabled webhook no other node holds at `now`, held by `node`
    /// until `until` (a hold of `node`'s with more than half of it left stays as it is);
    /// returns all `node` holds, secrets opened.
    async fn claim_webhooks(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<WebhookCursor>, StoreError>;
    /// Records an attempt and where the webhook's deliveries now stand, keeping its newest
    /// `keep` attempts; `false` (nothing written) when `node` no longer holds it, or it was
    /// deleted or disabled meanwhile.
    async fn record_delivery(
        &self,
        node: &str,
        attempt: &DeliveryAttempt,
        cursor: &CursorUpdate,
        keep: u32,
    ) -> Result<bool, StoreError>;
    /// Moves a webhook's cursor past events not of its types (no attempt recorded); `false`
    /// when `node` no longer holds it.
    async fn skip_webhook_events(
        &self,
        node: &str,
        webhook: Uuid,
        delivered_seq: u64,
    ) -> Result<bool, StoreError>;
    /// Lets go of every webhook `node` holds (a clean stop).
    async fn release_webhooks(&self, node: &str) -> Result<(), StoreError>;
}
