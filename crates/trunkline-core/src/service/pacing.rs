//! Which pacing key and rate a trunk's calls use ("Pacing keys are per tenant"):
//! - a trunk without `cpsLimit` is never paced: it neither asks nor spends any budget;
//! - with a `cpsKey`, the key is (tenant, `cpsKey`): the tenant's trunks sharing it share one
//!   budget whose rate is the smallest `cpsLimit` among them (trunks of that key without a
//!   limit do not count); two tenants' equal keys are different keys;
//! - without one, the key is the trunk itself, at its own `cpsLimit`.
//!
//! Read from the store at every admission (one indexed query), so a changed `cpsLimit` or
//! `cpsKey` applies to the next admission on every node, with nothing to invalidate.

use uuid::Uuid;

use super::Services;
use crate::error::ServiceError;
use crate::ids::AccountId;
use crate::store::TrunkPacing;

/// The budget one admission spends from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceRule {
    /// Opaque and unique across tenants: `{tenant}/key/{cpsKey}` or `{tenant}/trunk/{id}`.
    pub key: String,
    /// Calls per second, at least 1.
    pub per_second: u32,
}

impl Services {
    /// The rule for `trunk_id`'s next call; `None` when the trunk is never paced. Another
    /// tenant's trunk, or none, is `NotFound`.
    pub async fn pace_rule(
        &self,
        tenant: &AccountId,
        trunk_id: Uuid,
    ) -> Result<Option<PaceRule>, ServiceError> {
        let pacing = self
            .store
            .trunk_pacing(tenant, trunk_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok(rule_for(tenant, trunk_id, pacing))
    }
}

fn rule_for(tenant: &AccountId, trunk_id: Uuid, pacing: TrunkPacing) -> Option<PaceRule> {
    let own = pacing.cps_limit?;
    let (key, limit) = match pacing.cps_key {
        Some(shared) => (
            format!("{tenant}/key/{shared}"),
            pacing.smallest_limit_sharing_key.unwrap_or(own).min(own),
        ),
        None => (format!("{tenant}/trunk/{trunk_id}"), own),
    };
    Some(PaceRule {
        key,
        per_second: u32::try_from(limit).unwrap_or(1).max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing(limit: Option<i32>, key: Option<&str>, smallest: Option<i32>) -> TrunkPacing {
        TrunkPacing {
            cps_limit: limit,
            cps_key: key.map(str::to_owned),
            smallest_limit_sharing_key: smallest,
        }
    }

    #[test]
    fn keys_and_rates_follow_the_rule() {
        let tenant = AccountId::generate();
        let other = AccountId::generate();
        let trunk = Uuid::new_v4();
        assert_eq!(
            rule_for(&tenant, trunk, pacing(None, Some("k"), Some(3))),
            None
        );
        assert_eq!(
            rule_for(&tenant, trunk, pacing(Some(5), None, None)),
            Some(PaceRule {
                key: format!("{tenant}/trunk/{trunk}"),
                per_second: 5
            })
        );
        let shared = rule_for(&tenant, trunk, pacing(Some(5), Some("carrier"), Some(2))).unwrap();
        assert_eq!(shared.per_second, 2);
        assert_eq!(shared.key, format!("{tenant}/key/carrier"));
        let elsewhere = rule_for(&other, trunk, pacing(Some(5), Some("carrier"), Some(2))).unwrap();
        assert_ne!(shared.key, elsewhere.key);
        // A key spelled like a trunk id is still not that trunk's key.
        let spelled = rule_for(
            &tenant,
            trunk,
            pacing(Some(5), Some(&trunk.to_string()), Some(5)),
        );
        assert_ne!(spelled.unwrap().key, format!("{tenant}/trunk/{trunk}"));
    }
}
