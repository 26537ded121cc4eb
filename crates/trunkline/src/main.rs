//! The `trunkline` binary: parses the command line, loads configuration, sets up logging and
//! runs one command. `anyhow` lives here and nowhere else.

mod cli;
mod cluster;
mod commands;
mod config;
mod http_server;
mod master_key;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::config::{Config, Overrides};

/// mimalloc rather than glibc's allocator: the SIP engine allocates and frees many small
/// buffers per REGISTER on one thread while SQLite churns its page cache on another; glibc spent
/// about a quarter of the engine's CPU in its free-list searches and consolidation after a
/// burst, and kept the burst's peak as RSS (see bench/RESULTS.md). Built without transparent
/// huge pages (`no_thp`): mimalloc otherwise advises them for its arena, and one live object
/// then holds a whole 2 MiB page resident (the kernel even fills such regions in while the
/// process idles), which made RSS per registration grow for minutes after a wave.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The tracing filter for `log`, with rsipstack held to warnings unless the filter names it:
/// rsipstack logs every SIP message it sends or receives, raw, at INFO (Authorization headers
/// included), which is neither a service log nor ours to show. `TRUNKLINE_LOG=info,rsipstack=info`
/// brings the messages back for debugging.
fn log_filter(configured: &str) -> String {
    if configured.contains("rsipstack") {
        configured.to_owned()
    } else if configured.trim().is_empty() {
        "rsipstack=warn".to_owned()
    } else {
        format!("{configured},rsipstack=warn")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        listen,
    };
    let config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("trunkline: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let filter = match EnvFilter::try_new(log_filter(&config.log)) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("trunkline: configuration error: log: {err}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("trunkline: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { .. } => serve::run(config).await,
            Command::Tenant(command) => commands::tenant(&config, command).await,
            Command::Apikey(command) => commands::apikey(&config, command).await,
            Command::Migrate => commands::migrate(&config).await,
            Command::Rekey => commands::rekey(&config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("trunkline: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn rsipstack_stays_at_warn_unless_named() {
        assert_eq!(log_filter("info"), "info,rsipstack=warn");
        assert_eq!(
            log_filter("debug,sqlx=warn"),
            "debug,sqlx=warn,rsipstack=warn"
        );
        assert_eq!(log_filter(""), "rsipstack=warn");
        assert_eq!(log_filter("info,rsipstack=info"), "info,rsipstack=info");
        for filter in ["info", "", "trace,rsipstack=debug"] {
            assert!(tracing_subscriber::EnvFilter::try_new(log_filter(filter)).is_ok());
        }
    }
}
