// Included into each backend module as `bindings`: the binding each outbound registration
// has at its registrar, recorded by the engine where nodes share the database.

use trunkline_core::model::RecordedBinding;
use trunkline_core::{AccountId, StoreError};
use uuid::Uuid;

use super::SqlStore;
use crate::common::{db, parse_uuid};

impl SqlStore {
    pub(crate) async fn record_binding(&self, b: &RecordedBinding) -> Result<(), StoreError> {
        // Only by the lease's holder: a node that lost it meanwhile must not overwrite what the
        // next holder recorded.
        sqlx::query(
            "INSERT INTO registration_bindings (registration_id, tenant_id, node_id, contact, \
             call_id, cseq, expires_at) SELECT $1, $2, $3, $4, $5, $6, $7 \
             WHERE EXISTS (SELECT 1 FROM registration_leases \
             WHERE registration_id = $1 AND node_id = $3) \
             ON CONFLICT (registration_id) DO UPDATE SET tenant_id = excluded.tenant_id, \
             node_id = excluded.node_id, contact = excluded.contact, call_id = excluded.call_id, \
             cseq = excluded.cseq, expires_at = excluded.expires_at",
        )
        .bind(b.registration_id.to_string())
        .bind(b.tenant.as_str())
        .bind(&b.node_id)
        .bind(&b.contact)
        .bind(&b.call_id)
        .bind(i64::from(b.cseq))
        .bind(b.expires_at.micros())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn forget_binding(
        &self,
        tenant: &AccountId,
        id: Uuid,
        node: &str,
    ) -> Result<(), StoreError> {
        // Only this node's record: the registration may be another node's by now, which
        // recorded its own binding (a handover's unregister can land after the next holder's
        // first REGISTER).
        sqlx::query(
            "DELETE FROM registration_bindings \
             WHERE tenant_id = $1 AND registration_id = $2 AND node_id = $3",
        )
        .bind(tenant.as_str())
        .bind(id.to_string())
        .bind(node)
            .execute(&self.writer)
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn bound_contacts(
        &self,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, String)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::QueryBuilder::<super::Db>::new(
            "SELECT registration_id, contact FROM registration_bindings WHERE registration_id IN (",
        );
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.to_string());
        }
        query.push(")");
        let rows: Vec<(String, String)> = query
            .build_query_as()
            .persistent(false)
            .fetch_all(&self.reader)
            .await
            .map_err(db)?;
        rows.into_iter()
            .map(|(id, contact)| Ok((parse_uuid(&id)?, contact)))
            .collect()
    }
}
