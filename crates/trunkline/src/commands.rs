//! The administrative commands (`tenant`, `apikey`, `migrate`, `rekey`) and the wiring they
//! share with `serve`: preparing the data directory (created 0700), opening the store with the
//! master key ring and building the services from configuration.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use secrecy::ExposeSecret;
use trunkline_core::events::EventBus;
use trunkline_core::service::{IssuedKey, ServiceSettings};
use trunkline_core::{AccountId, ServiceError, Services};
use trunkline_store::{Database, Sealer, REKEY_BATCH};

use crate::cli::{ApikeyCommand, TenantCommand};
use crate::config::Config;
use crate::master_key;

/// Opens (creating and migrating) the configured database, sealing with the current master key
/// and opening with it and the keys of `master_key_previous`.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Database>> {
    let node_id = format!("cli-{:08x}", rand::random::<u32>());
    open_store_as(config, &node_id).await
}

/// [`open_store`] as node `node_id` (`serve` names its node; see [`Config::node_id`]).
pub async fn open_store_as(config: &Config, node_id: &str) -> anyhow::Result<Arc<dyn Database>> {
    prepare_data_dir(&config.data_dir)?;
    let key = master_key::load(config.master_key.as_ref(), &config.data_dir)?;
    let previous = master_key::load_previous(config.master_key_previous.as_ref())?;
    if !previous.is_empty() {
        tracing::info!(
            key_id = %key.id(),
            previous = previous.len(),
            "previous master keys accepted for reading; `trunkline rekey` re-seals with the current one"
        );
    }
    Ok(trunkline_store::open_as(
        &config.database_url(),
        Sealer::new(&key, &previous),
        node_id,
    )
    .await?)
}

/// Creates the data directory (and any missing parents) owner-only, 0700. An existing one that
/// group or others may enter is warned about, never changed: its mode is the operator's choice.
fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    if let Ok(metadata) = fs::metadata(dir) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = %format_args!("{mode:o}"),
                "data directory is accessible to group or others; chmod 700 it"
            );
        }
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))
}

pub fn services(config: &Config, store: Arc<dyn Database>, events: EventBus) -> Services {
    Services::new(
        store,
        events,
        ServiceSettings {
            sip_domain: config.sip.domain.clone(),
            reveal_dasha_password: config.dasha.reveal_auth_password,
            node_lease: std::time::Duration::from_secs(config.cluster.lease_secs.clamp(1, 3600)),
        },
    )
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    store.close().await;
    eprintln!("migrations applied");
    Ok(())
}

/// Re-seals every sealed secret with the current master key; safe while servers run (the store
/// writes a row only if it is unchanged since it was read) and idempotent.
pub async fn rekey(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let outcome = store.rekey(REKEY_BATCH).await;
    store.close().await;
    let report = outcome.context("rekey failed")?;
    println!("re-sealed {} secrets", report.resealed);
    if report.skipped > 0 {
        eprintln!(
            "{} secrets changed while rekeying and were left as written; run rekey again if a \
             server still seals with an older key",
            report.skipped
        );
    }
    if report.unreadable > 0 {
        let ids: Vec<&str> = report.missing_key_ids.iter().map(String::as_str).collect();
        bail!(
            "{} sealed secrets could not be opened (sealed by master key ids [{}]); add those \
             keys to master_key_previous and run rekey again",
            report.unreadable,
            ids.join(", ")
        );
    }
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
