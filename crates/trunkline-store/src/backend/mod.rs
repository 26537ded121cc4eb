//! The two backends, each the shared statements of `sql/` compiled against its database, with
//! its own pools, write transactions and migrations.

/// The shared statements of `sql/`, as modules of the backend module that invokes this; each
/// file refers to that backend's `Db` and `SqlStore` as `super::…`.
macro_rules! shared_statements {
    () => {
        mod bindings {
            include!("../sql/bindings.rs");
        }
        mod cluster {
            include!("../sql/cluster.rs");
        }
        mod group_commit {
            include!("../sql/group_commit.rs");
        }
        mod engine {
            include!("../sql/engine.rs");
        }
        mod events {
            include!("../sql/events.rs");
        }
        mod leases {
            include!("../sql/leases.rs");
        }
        mod inbound {
            include!("../sql/inbound.rs");
        }
        mod pacing {
            include!("../sql/pacing.rs");
        }
        mod phone_numbers {
            include!("../sql/phone_numbers.rs");
        }
        mod registrations {
            include!("../sql/registrations.rs");
        }
        mod registration_list {
            include!("../sql/registration_list.rs");
        }
        mod rekey {
            include!("../sql/rekey.rs");
        }
        mod store {
            include!("../sql/store.rs");
        }
        mod support {
            include!("../sql/support.rs");
        }
        mod tenants {
            include!("../sql/tenants.rs");
        }
        mod trunks {
            include!("../sql/trunks.rs");
        }
        mod webhooks {
            include!("../sql/webhooks.rs");
        }
    };
}

pub mod postgres;
pub mod sqlite;

#[cfg(test)]
mod counts_backfill_tests;

/// A new tenant (with an API key) in `store`, for this crate's own tests.
#[cfg(test)]
pub(crate) async fn test_tenant(
    store: &dyn trunkline_core::store::Store,
) -> trunkline_core::AccountId {
    let tenant = trunkline_core::model::Tenant {
        account_id: trunkline_core::AccountId::generate(),
        name: "t".into(),
        created_at: trunkline_core::Timestamp::now(),
    };
    store
        .create_tenant(&tenant, &trunkline_core::secret::generate_api_key().record)
        .await
        .unwrap();
    tenant.account_id
}

#[cfg(test)]
mod group_commit_tests;
