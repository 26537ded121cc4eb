// Included into each backend module as `events`: the outbox. Events are appended inside the
// transactions of the writes that announce them ([`append`]), read per tenant in `seq` order,
// and pruned by age.

use std::collections::BTreeMap;

use sqlx::{QueryBuilder, Transaction};
use trunkline_core::outbox::{EventType, NewEvent, StoredEvent};
use trunkline_core::{AccountId, StoreError, Timestamp};

use super::{Db, SqlStore};
use crate::common::{corrupt, db, parse_tenant};

/// Wakes whoever waits for new events, after a commit that appended some.
#[derive(Debug, Clone)]
pub(crate) struct Wakeups(std::sync::Arc<tokio::sync::watch::Sender<u64>>);

impl Default for Wakeups {
    fn default() -> Self {
        Self(std::sync::Arc::new(tokio::sync::watch::channel(0).0))
    }
}

impl Wakeups {
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }

    pub(crate) fn wake(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// After the commit of a transaction that appended `events` ([`append`]'s answer): counts
    /// them in `trunkline_events_written_total{type}` and wakes the waiting.
    pub(crate) fn committed(&self, events: &[EventType]) {
        if events.is_empty() {
            return;
        }
        for kind in events {
            metrics::counter!("trunkline_events_written_total", "type" => kind.as_str())
                .increment(1);
        }
        self.wake();
    }
}

/// Rows per multi-row insert (6 parameters each).
const ROWS_PER_STATEMENT: usize = 500;

/// Appends `events` in `tx`, numbering each tenant's on from its counter row. Tenants are taken
/// in one order (sorted), so two transactions never wait for each other's counters in opposite
/// orders; a tenant's counter row stays locked until `tx` ends, so its `seq` order is commit
/// order (a reader never sees seq 6 committed before seq 5). Returns the types appended, for
/// [`Wakeups::committed`] after the commit.
pub(crate) async fn append(
    tx: &mut Transaction<'static, Db>,
    events: &[NewEvent],
) -> Result<Vec<EventType>, StoreError> {
    let mut by_tenant: BTreeMap<&str, Vec<&NewEvent>> = BTreeMap::new();
    for event in events {
        by_tenant.entry(event.tenant.as_str()).or_default().push(event);
    }
    let mut numbered = Vec::with_capacity(events.len());
    for (tenant, events) in by_tenant {
        let count = events.len() as i64;
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO event_counters (tenant_id, last_seq) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET last_seq = event_counters.last_seq + $2 \
             RETURNING last_seq",
        )
        .bind(tenant)
        .bind(count)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?;
        let first = last - count + 1;
        numbered.extend(
            events
                .into_iter()
                .enumerate()
                .map(|(i, event)| (first + i as i64, StoredEvent::new_id(), event)),
        );
    }
    for chunk in numbered.chunks(ROWS_PER_STATEMENT) {
        let mut query =
            QueryBuilder::<Db>::new("INSERT INTO events (tenant_id, seq, id, type, at, data) ");
        query.push_values(chunk, |mut row, (seq, id, event)| {
            row.push_bind(event.tenant.as_str())
                .push_bind(*seq)
                .push_bind(id.as_str())
                .push_bind(event.kind.as_str())
                .push_bind(event.at.micros())
                .push_bind(event.data.as_str());
        });
        query
            .build()
            .persistent(false)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
    }
    Ok(numbered.iter().map(|(_, _, event)| event.kind).collect())
}

#[derive(sqlx::FromRow)]
struct EventRow {
    tenant_id: String,
    seq: i64,
    id: String,
    #[sqlx(rename = "type")]
    kind: String,
    at: i64,
    data: String,
}

impl EventRow {
    fn into_model(self) -> Result<StoredEvent, StoreError> {
        Ok(StoredEvent {
            tenant: parse_tenant(&self.tenant_id)?,
            seq: u64::try_from(self.seq).map_err(|_| corrupt("event seq"))?,
            id: self.id,
            kind: EventType::parse(&self.kind).ok_or_else(|| corrupt("event type"))?,
            at: Timestamp::from_micros(self.at),
            data: self.data,
        })
    }
}

pub(crate) async fn events_after(
    store: &SqlStore,
    tenant: &AccountId,
    after: u64,
    types: &[EventType],
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut query = QueryBuilder::<Db>::new(
        "SELECT tenant_id, seq, id, type, at, data FROM events WHERE tenant_id = ",
    );
    query.push_bind(tenant.as_str());
    query.push(" AND seq > ");
    query.push_bind(i64::try_from(after).unwrap_or(i64::MAX));
    if !types.is_empty() {
        query.push(" AND type IN (");
        let mut list = query.separated(", ");
        for kind in types {
            list.push_bind(kind.as_str());
        }
        query.push(")");
    }
    query.push(" ORDER BY seq LIMIT ");
    query.push_bind(i64::from(limit));
    query
        .build_query_as::<EventRow>()
        .fetch_all(&store.reader)
        .await
        .map_err(db)?
        .into_iter()
        .map(EventRow::into_model)
        .collect()
}

pub(crate) async fn last_event_seq(store: &SqlStore, tenant: &AccountId) -> Result<u64, StoreError> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT last_seq FROM event_counters WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&store.reader)
            .await
            .map_err(db)?;
    Ok(last.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

pub(crate) async fn prune_events(store: &SqlStore, before: Timestamp) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM events WHERE at < $1")
        .bind(before.micros())
        .execute(&store.writer)
        .await
        .map_err(db)?;
    Ok(result.rows_affected())
}
