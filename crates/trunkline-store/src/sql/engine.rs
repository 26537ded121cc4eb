// Included into each backend module as `engine`: what the SIP engine reads (the registrations
// to keep, with their secrets opened) and writes (status rows and history rings, in batches).

use sqlx::QueryBuilder;
use std::collections::HashMap;

use trunkline_core::model::{FailedBy, OutboundRegistration, RegistrationAttempt, RegistrationStatus, Transport};
use trunkline_core::outbox::{announcement, NewEvent, Outcome, StatusWrite};
use trunkline_core::{AccountId, StoreError, Timestamp};
use uuid::Uuid;

use super::{events, Db, SqlStore};
use crate::common::{
    db, outbound_from_number, outbound_from_ultravox, parse_tenant, parse_uuid, AttemptRow,
    OutboundNumberRow, OutboundUltravoxRow, OUTBOUND_NUMBER_SELECT, OUTBOUND_ULTRAVOX_SELECT,
};

impl SqlStore {
    /// One status row, as it is, announcing nothing (for tools and tests; the engine writes
    /// through [`Self::write_registration_batch`]).
    pub(crate) async fn put_registration_status(
        &self,
        tenant: &AccountId,
        id: Uuid,
        status: &RegistrationStatus,
    ) -> Result<(), StoreError> {
        let rows = [(tenant, id, status, None)];
        let mut tx = self.write_tx().await?;
        upsert_statuses(&rows)
            .build()
            .persistent(false)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(crate) async fn write_registration_batch(
        &self,
        statuses: &[StatusWrite],
        attempts: &[RegistrationAttempt],
        keep: u32,
    ) -> Result<(), StoreError> {
        if statuses.is_empty() && attempts.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        // What each registration last announced (absent: no status row, never written or
        // deleted), for the writes whose outcome may be news.
        let outcomes: Vec<Option<Outcome>> = statuses
            .iter()
            .map(|w| if w.removed { Some(Outcome::Removed) } else { Outcome::of(w.status.state) })
            .collect();
        let asking: Vec<String> = statuses
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| outcome.is_some())
            .map(|(w, _)| w.id.to_string())
            .collect();
        let mut announced: HashMap<Uuid, Option<Outcome>> = HashMap::new();
        for chunk in asking.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Db>::new(
                "SELECT registration_id, announced FROM registration_status WHERE registration_id IN (",
            );
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            query.push(")");
            let rows: Vec<(String, Option<String>)> = query
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            for (id, last) in rows {
                announced.insert(parse_uuid(&id)?, last.as_deref().and_then(Outcome::parse));
            }
        }
        let mut rows = Vec::with_capacity(statuses.len());
        let mut news = Vec::new();
        for (write, outcome) in statuses.iter().zip(&outcomes) {
            let last = announced.get(&write.id).copied().flatten();
            if let Some(kind) = announcement(last, *outcome) {
                news.push((write, kind));
            }
            rows.push((&write.tenant, write.id, &write.status, outcome.or(last)));
        }
        let mut written = std::collections::HashSet::new();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let ids: Vec<(String,)> = upsert_statuses(chunk)
                .push(" RETURNING registration_id")
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            written.extend(ids.into_iter().map(|(id,)| id));
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
        // Events for the rows written (a late write of a deleted registration announces
        // nothing), and for removals whatever is left of the rows.
        let events: Vec<NewEvent> = news
            .into_iter()
            .filter(|(w, _)| w.removed || written.contains(&w.id.to_string()))
            .map(|(w, kind)| NewEvent {
                tenant: w.tenant.clone(),
                kind,
                at: w.status.updated_at,
                data: w.event_data(),
            })
            .collect();
        let appended = events::append(&mut tx, &events).await?;
        tx.commit().await.map_err(db)?;
        self.events_appended.committed(&appended);
        Ok(())
    }

    pub(crate) async fn outbound_registrations(&self) -> Result<Vec<OutboundRegistration>, StoreError> {
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
            .map(|row| outbound_from_ultravox(&self.sealer, row))
            .chain(
                numbers
                    .into_iter()
                    .map(|row| outbound_from_number(&self.sealer, row)),
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

    pub(crate) async fn outbound_registration_versions(
        &self,
        holder: Option<&str>,
    ) -> Result<Vec<(AccountId, Uuid, Timestamp)>, StoreError> {
        // A number's version is the later of its own and its trunk's, as in
        // `outbound_from_number` (CASE rather than a two-argument MAX, which PostgreSQL lacks).
        // With a holder, only the registrations it holds a lease on (nodes sharing a database
        // each reconcile their own share, not every registration).
        let (lease_r, lease_p) = match holder {
            Some(_) => (
                " JOIN registration_leases l ON l.registration_id = r.id AND l.node_id = $1",
                " JOIN registration_leases l ON l.registration_id = p.id AND l.node_id = $1",
            ),
            None => ("", ""),
        };
        let sql = format!(
            "SELECT r.tenant_id, r.id, r.updated_at FROM registrations r{lease_r} \
             UNION ALL \
             SELECT p.tenant_id, p.id, \
                    CASE WHEN t.updated_at > p.updated_at THEN t.updated_at ELSE p.updated_at END \
             FROM phone_numbers p JOIN trunks t ON t.id = p.trunk_id AND t.tenant_id = p.tenant_id\
             {lease_p} WHERE p.registration"
        );
        let mut query = sqlx::query_as(&sql);
        if let Some(holder) = holder {
            query = query.bind(holder);
        }
        let rows: Vec<(String, String, i64)> =
            query.fetch_all(&self.reader).await.map_err(db)?;
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

    pub(crate) async fn outbound_registration(
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
            return outbound_from_ultravox(&self.sealer, row).map(Some);
        }
        sqlx::query_as::<_, OutboundNumberRow>(&format!(
            "{OUTBOUND_NUMBER_SELECT} AND p.tenant_id = $1 AND p.id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?
        .map(|row| outbound_from_number(&self.sealer, row))
        .transpose()
    }

    pub(crate) async fn registration_attempts(
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

    pub(crate) async fn registering_numbers_of_trunk(
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
}

/// Rows per multi-row statement in engine batches (14 parameters a row stays far below
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

/// A status row to upsert, with the outcome last announced (`None` keeps what the row has).
type StatusRow<'a> = (&'a AccountId, Uuid, &'a RegistrationStatus, Option<Outcome>);

/// One statement upserting a batch of status rows.
fn upsert_statuses<'a>(rows: &'a [StatusRow<'a>]) -> QueryBuilder<'a, Db> {
    let mut query = QueryBuilder::new(
        "WITH v (registration_id, tenant_id, state, last_code, last_phrase, failed_by, \
         last_attempt_at, expires_at, next_attempt_at, consecutive_failures, transport, remote, \
         updated_at, announced) AS (",
    );
    query.push_values(rows, |mut row, (tenant, id, s, announced)| {
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
            .push_bind(s.updated_at.micros())
            .push_bind(announced.map(Outcome::as_str));
    });
    query.push(
        ") INSERT INTO registration_status (registration_id, tenant_id, state, last_code, \
         last_phrase, failed_by, last_attempt_at, expires_at, next_attempt_at, \
         consecutive_failures, transport, remote, updated_at, announced) SELECT * FROM v",
    );
    query.push(STILL_EXISTS);
    query.push(
        " ON CONFLICT (registration_id) DO UPDATE SET state = excluded.state, \
         last_code = excluded.last_code, last_phrase = excluded.last_phrase, \
         failed_by = excluded.failed_by, last_attempt_at = excluded.last_attempt_at, \
         expires_at = excluded.expires_at, next_attempt_at = excluded.next_attempt_at, \
         consecutive_failures = excluded.consecutive_failures, transport = excluded.transport, \
         remote = excluded.remote, updated_at = excluded.updated_at, \
         announced = COALESCE(excluded.announced, registration_status.announced)",
    );
    query
}

/// One statement writing a batch of history entries into their registrations' rings: entry
/// `seq` (counted per registration, from 1) goes to slot `seq % keep`, replacing what was
/// there. Entries of one registration within the batch take consecutive numbers in order.
fn write_history(rows: &[RegistrationAttempt], keep: u32) -> QueryBuilder<'_, Db> {
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
