// Included into each backend module as `registration_list`: every outbound registration of one
// tenant, both kinds, as trunkline's registrations list shows them (`GET /v1/registrations`):
// Ultravox registrations and all phone numbers with their trunk's registrar, each with the
// status the engine stored. Two reads of the `(tenant_id, created_at, id)` indexes, each row's
// status by its primary key; no secret is read. Counting, filtering and ordering by the live
// state is core's (`Services::registration_list`), over what this returns.

use trunkline_core::model::{trunk_registrar, RegistrationSource, RegistrationSummary};
use trunkline_core::{AccountId, StoreError, Timestamp};

use super::SqlStore;
use crate::common::{db, parse_uuid, status_columns, StatusRow};

#[derive(sqlx::FromRow)]
struct UltravoxSummaryRow {
    id: String,
    username: String,
    proxy: String,
    auth_user: Option<String>,
    created_at: i64,
    #[sqlx(flatten)]
    status: StatusRow,
}

#[derive(sqlx::FromRow)]
struct NumberSummaryRow {
    id: String,
    phone_number: String,
    registration: bool,
    created_at: i64,
    trunk_id: String,
    server: String,
    domain: Option<String>,
    auth_user: Option<String>,
    #[sqlx(flatten)]
    status: StatusRow,
}

pub(crate) async fn summaries(
    store: &SqlStore,
    tenant: &AccountId,
) -> Result<Vec<RegistrationSummary>, StoreError> {
    let registrations = sqlx::query_as::<_, UltravoxSummaryRow>(concat!(
        "SELECT r.id, r.username, r.proxy, r.auth_user, r.created_at, ",
        status_columns!(),
        " FROM registrations r LEFT JOIN registration_status s ON s.registration_id = r.id \
         WHERE r.tenant_id = $1 ORDER BY r.created_at, r.id"
    ))
    .bind(tenant.as_str())
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    let numbers = sqlx::query_as::<_, NumberSummaryRow>(concat!(
        "SELECT p.id, p.phone_number, p.registration, p.created_at, t.id AS trunk_id, \
         t.server, t.domain, t.auth_user, ",
        status_columns!(),
        " FROM phone_numbers p \
         JOIN trunks t ON t.id = p.trunk_id AND t.tenant_id = p.tenant_id \
         LEFT JOIN registration_status s ON s.registration_id = p.id \
         WHERE p.tenant_id = $1 ORDER BY p.created_at, p.id"
    ))
    .bind(tenant.as_str())
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;

    let mut summaries = Vec::with_capacity(registrations.len() + numbers.len());
    for row in registrations {
        summaries.push(RegistrationSummary {
            id: parse_uuid(&row.id)?,
            source: RegistrationSource::Ultravox,
            aor_user: row.username,
            auth_user: row.auth_user,
            registrar: row.proxy,
            trunk_id: None,
            registering: true,
            created_at: Timestamp::from_micros(row.created_at),
            status: row.status.into_status()?,
        });
    }
    for row in numbers {
        summaries.push(RegistrationSummary {
            id: parse_uuid(&row.id)?,
            source: RegistrationSource::DashaNumber,
            aor_user: row.phone_number,
            auth_user: row.auth_user,
            registrar: trunk_registrar(row.domain, &row.server),
            trunk_id: Some(parse_uuid(&row.trunk_id)?),
            registering: row.registration,
            created_at: Timestamp::from_micros(row.created_at),
            status: row.status.into_status()?,
        });
    }
    Ok(summaries)
}
