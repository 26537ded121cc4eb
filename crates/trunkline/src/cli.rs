//! The command line, with the names of the CLI/config spec.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "trunkline",
    version,
    about = "Self-hosted SIP trunk control plane"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (database, master key file).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (default sqlite://{data_dir}/trunkline.db).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (and, as they land, the SIP endpoint).
    Serve {
        /// HTTP listen address.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Apply database migrations and exit.
    Migrate,
    /// Re-seal every secret with the current master key (server may run). Keys listed in
    /// master_key_previous can be dropped afterwards.
    Rekey,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints its account id and a new API key (shown once).
    Create {
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create another API key for a tenant (shown once).
    Create {
        #[arg(long, value_name = "ACCOUNT_ID")]
        tenant: String,
        #[command(flatten)]
        output: Output,
    },
    /// Revoke the key that starts with KEY_PREFIX (its first 12 characters).
    Revoke { key_prefix: String },
}

#[derive(Debug, Args)]
pub struct Output {
    /// Machine-readable JSON output.
    #[arg(long)]
    pub json: bool,
}
