// Included into each backend module as `pacing`: the one read call pacing makes of the store: a trunk's `cps_limit` and `cps_key`, and the
// smallest limit among the tenant's trunks sharing that key, in one indexed query
// (`trunks_cps_key`, migration 0006). The pacing rule itself is core's (`Services::pace_rule`).

use trunkline_core::store::TrunkPacing;
use trunkline_core::{AccountId, StoreError};
use uuid::Uuid;

use super::SqlStore;
use crate::common::{corrupt, db};

#[derive(sqlx::FromRow)]
struct PacingRow {
    cps_limit: Option<i64>,
    cps_key: Option<String>,
    smallest: Option<i64>,
}

pub(crate) async fn trunk_pacing(
    store: &SqlStore,
    tenant: &AccountId,
    id: Uuid,
) -> Result<Option<TrunkPacing>, StoreError> {
    let row = sqlx::query_as::<_, PacingRow>(
        "SELECT t.cps_limit, t.cps_key, \
           (SELECT MIN(s.cps_limit) FROM trunks s \
             WHERE s.tenant_id = t.tenant_id AND s.cps_key = t.cps_key) AS smallest \
         FROM trunks t WHERE t.tenant_id = $1 AND t.id = $2",
    )
    .bind(tenant.as_str())
    .bind(id.to_string())
    .fetch_optional(&store.reader)
    .await
    .map_err(db)?;
    let limit = |value: Option<i64>| {
        value
            .map(|n| i32::try_from(n).map_err(|_| corrupt("cps_limit")))
            .transpose()
    };
    row.map(|row| {
        Ok(TrunkPacing {
            cps_limit: limit(row.cps_limit)?,
            cps_key: row.cps_key,
            smallest_limit_sharing_key: limit(row.smallest)?,
        })
    })
    .transpose()
}
