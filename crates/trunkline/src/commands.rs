//! The administrative commands (`tenant`, `apikey`, `migrate`) and the wiring they share with
//! `serve`: opening the store and building the services from configuration.

use std::sync::Arc;

use anyhow::{bail, Context};
use secrecy::ExposeSecret;
use trunkline_core::events::EventBus;
use trunkline_core::service::{IssuedKey, ServiceSettings};
use trunkline_core::{AccountId, ServiceError, Services};
use trunkline_store::{Sealer, SqlStore};

use crate::cli::{ApikeyCommand, TenantCommand};
use crate::config::Config;
use crate::master_key;

/// Opens (creating and migrating) the configured database.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<SqlStore>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let key = master_key::load(config.master_key.as_ref(), &config.data_dir)?;
    let store = SqlStore::open(&config.database_url(), Sealer::new(&key, &[])).await?;
    Ok(Arc::new(store))
}

pub fn services(config: &Config, store: Arc<SqlStore>, events: EventBus) -> Services {
    Services::new(
        store,
        events,
        ServiceSettings {
            sip_domain: config.sip.domain.clone(),
            reveal_dasha_password: config.dasha.reveal_auth_password,
        },
    )
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    store.close().await;
    eprintln!("migrations applied");
    Ok(())
}

pub async fn tenant(config: &Config, command: TenantCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let services = services(config, store.clone(), EventBus::default());
    let outcome = match command {
        TenantCommand::Create { name, output } => {
            let issued = services.create_tenant(&name).await.map_err(explain)?;
            print_issued(&issued, output.json);
            Ok(())
        }
        TenantCommand::List { output } => {
            let tenants = services.tenants().await.map_err(explain)?;
            if output.json {
                let list: Vec<_> = tenants
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "account_id": t.account_id.as_str(),
                            "name": t.name,
                            "created_at": t.created_at.to_rfc3339(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::from(list));
            } else {
                for t in &tenants {
                    println!(
                        "{}\t{}\t{}",
                        t.account_id,
                        t.created_at.to_rfc3339(),
                        t.name
                    );
                }
            }
            Ok(())
        }
    };
    store.close().await;
    outcome
}

pub async fn apikey(config: &Config, command: ApikeyCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let services = services(config, store.clone(), EventBus::default());
    let outcome = match command {
        ApikeyCommand::Create { tenant, output } => {
            let Some(account) = AccountId::parse(&tenant) else {
                bail!("`{tenant}` is not an account id (MA_ and 10 letters or digits)");
            };
            match services.create_api_key(&account).await {
                Ok(issued) => {
                    print_issued(&issued, output.json);
                    Ok(())
                }
                Err(ServiceError::NotFound) => Err(anyhow::anyhow!("no tenant {account}")),
                Err(err) => Err(explain(err)),
            }
        }
        ApikeyCommand::Revoke { key_prefix } => match services.revoke_api_key(&key_prefix).await {
            Ok(()) => {
                eprintln!("revoked");
                Ok(())
            }
            Err(ServiceError::NotFound) => {
                Err(anyhow::anyhow!("no live API key with prefix {key_prefix}"))
            }
            Err(err) => Err(explain(err)),
        },
    };
    store.close().await;
    outcome
}

fn print_issued(issued: &IssuedKey, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "account_id": issued.account_id.as_str(),
                "api_key": issued.api_key.expose_secret(),
            })
        );
    } else {
        println!(
            "account_id={} api_key={}",
            issued.account_id,
            issued.api_key.expose_secret()
        );
        eprintln!("the API key is shown only now; store it safely");
    }
}

/// A service error as a message for the operator.
fn explain(err: ServiceError) -> anyhow::Error {
    match err {
        ServiceError::Validation(fields) => anyhow::anyhow!("invalid input: {}", fields.summary()),
        other => anyhow::Error::new(other),
    }
}
