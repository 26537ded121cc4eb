//! The command line and configuration, as operators and scripts use them: `tenant create/list`,
//! `apikey create/revoke` against a running server's data directory, `migrate`, configuration
//! errors (exit code 2, naming the key), the precedence of `listen` (command line > environment
//! > TOML file), and the default tenant line printed only by the first `serve`.
//!
//! `listen` precedence is observed through the `listening on` line: each source names a
//! different loopback address (127.0.0.2/3/4, port 0), so the winner is visible without racing
//! for fixed ports.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common::{cli_in, json, Method, Server, Tenant, BIN};

#[test]
fn tenants_and_api_keys_from_the_cli_work_against_a_running_server() {
    let server = Server::start();

    // `tenant create --json`: exactly {account_id, api_key}, on stdout only.
    let output = server.cli(&["tenant", "create", "acme corp", "--json"]);
    assert_success(&output);
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let keys: BTreeSet<&str> = printed
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["account_id", "api_key"]), "{printed}");
    let acme = Tenant {
        account_id: printed["account_id"].as_str().unwrap().to_owned(),
        api_key: printed["api_key"].as_str().unwrap().to_owned(),
    };
    assert!(is_account_id(&acme.account_id), "{printed}");
    assert!(
        acme.api_key.starts_with("tl_") && acme.api_key.len() >= 43,
        "{printed}"
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains(&acme.api_key));
    assert_eq!(list_status(&server, &acme), 200);

    // `tenant list --json`: both tenants, names and ids, never a key.
    let output = server.cli(&["tenant", "list", "--json"]);
    assert_success(&output);
    let listed: Value = serde_json::from_slice(&output.stdout).expect("JSON list");
    let entries: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["account_id"].as_str().unwrap(),
                t["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        entries.contains(&(acme.account_id.as_str(), "acme corp")),
        "{listed}"
    );
    assert!(
        entries.contains(&(server.tenant().account_id.as_str(), "default")),
        "{listed}"
    );
    assert!(
        !listed.to_string().contains("tl_"),
        "tenant list shows no key: {listed}"
    );
    let output = server.cli(&["tenant", "list"]);
    assert_success(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains(&acme.account_id));

    // `apikey create --tenant --json`: a second key for the same tenant.
    let output = server.cli(&["apikey", "create", "--tenant", &acme.account_id, "--json"]);
    assert_success(&output);
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(printed["account_id"], acme.account_id.as_str());
    let second = Tenant {
        account_id: acme.account_id.clone(),
        api_key: printed["api_key"].as_str().unwrap().to_owned(),
    };
    assert_ne!(second.api_key, acme.api_key);
    assert_eq!(list_status(&server, &second), 200);

    // `apikey revoke PREFIX` (the first 12 characters): that key is dead in every dialect, the
    // tenant's other key still works.
    let prefix = &second.api_key[..12];
    let output = server.cli(&["apikey", "revoke", prefix]);
    assert_success(&output);
    assert_eq!(list_status(&server, &second), 401);
    let (status, _) = json(
        server
            .dasha(Method::GET, "/api/v1/sip-credentials", &second)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 401);
    let (status, _) = json(
        server
            .vobiz(Method::GET, "/trunks/credentials", &second)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 401);
    assert_eq!(list_status(&server, &acme), 200);
    // Revoking it again finds no live key.
    let output = server.cli(&["apikey", "revoke", prefix]);
    assert!(!output.status.success(), "second revoke succeeded");

    // Plain (non-JSON) output names both values on stdout and warns on stderr.
    let output = server.cli(&["apikey", "create", "--tenant", &acme.account_id]);
    assert_success(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.trim();
    assert!(
        line.starts_with(&format!("account_id={} api_key=tl_", acme.account_id)),
        "{line}"
    );
    let plain = Tenant {
        account_id: acme.account_id.clone(),
        api_key: line.rsplit("api_key=").next().unwrap().to_owned(),
    };
    assert_eq!(list_status(&server, &plain), 200);
}

#[test]
fn cli_rejects_unknown_tenants_prefixes_and_names() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["apikey", "create", "--tenant", "MA_NOSUCH0000"][..],
        &["apikey", "create", "--tenant", "not-an-account", "--json"],
        &["apikey", "revoke", "tl_NoSuchKey"],
        &["tenant", "create", ""],
    ] {
        let output = cli_in(dir.path(), args);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            output.stdout.is_empty(),
            "{args:?} printed {:?}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(!output.stderr.is_empty(), "{args:?} says nothing on stderr");
    }
}

#[test]
fn migrate_creates_the_database_on_a_fresh_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested").join("data");
    let output = cli_in(&data_dir, &["migrate"]);
    assert_success(&output);
    let db = data_dir.join("trunkline.db");
    assert!(
        std::fs::metadata(&db).map(|m| m.len() > 0).unwrap_or(false),
        "{} missing",
        db.display()
    );
    // Migrating again is a no-op, and creates no tenant (that is the first `serve`'s job).
    assert_success(&cli_in(&data_dir, &["migrate"]));
    let output = cli_in(&data_dir, &["tenant", "list", "--json"]);
    assert_success(&output);
    assert_eq!(
        serde_json::from_slice::<Value>(&output.stdout).unwrap(),
        Value::Array(vec![])
    );
}

#[test]
fn migrate_and_the_cli_work_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_postgres::PgServer::shared().database();
    let env = [("TRUNKLINE_DATABASE_URL", url.as_str())];
    for _ in 0..2 {
        // Migrating again is a no-op.
        assert_success(&cli_env(dir.path(), &["migrate"], &env));
    }
    let tables = Command::new("psql")
        .args(["-X", "-A", "-t", &url, "-c"])
        .arg("SELECT count(*) FROM pg_tables WHERE tablename IN ('tenants', 'registrations', 'cluster_nodes')")
        .output()
        .expect("psql");
    assert_eq!(String::from_utf8_lossy(&tables.stdout).trim(), "3");
    assert!(
        !dir.path().join("trunkline.db").exists(),
        "no SQLite file beside a PostgreSQL database"
    );
    let output = cli_env(dir.path(), &["tenant", "create", "acme", "--json"], &env);
    assert_success(&output);
    let output = cli_env(dir.path(), &["tenant", "list", "--json"], &env);
    assert_success(&output);
    let tenants: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(tenants.as_array().unwrap().len(), 1, "{tenants}");
}

#[test]
fn configuration_errors_exit_2_and_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let cases: [(&str, &str); 4] = [
        ("[sip]\ndomian = \"sip.example\"\n", "domian"),
        ("listne = \"127.0.0.1:0\"\n", "listne"),
        ("[registrar]\nmin_expires = \"soon\"\n", "min_expires"),
        ("listen = \"not an address\"\n", "listen"),
    ];
    for (i, (toml, key)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&file, toml).unwrap();
        let output = cli_env(
            &data_dir,
            &["--config", file.to_str().unwrap(), "tenant", "list"],
            &[],
        );
        assert_eq!(
            output.status.code(),
            Some(2),
            "{toml:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(key),
            "{toml:?}: stderr does not name {key}: {}",
            stderr(&output)
        );
    }
    // The same from the environment (figment spells env keys in upper case).
    let output = cli_env(
        &data_dir,
        &["tenant", "list"],
        &[("TRUNKLINE_REGISTRAR_MIN_EXPIRES", "soon")],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).to_ascii_lowercase().contains("min_expires"),
        "{}",
        stderr(&output)
    );
    // A missing configuration file is an error too.
    let missing = dir.path().join("missing.toml");
    let output = cli_env(
        &data_dir,
        &["--config", missing.to_str().unwrap(), "tenant", "list"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    // Nothing was touched before the configuration was valid.
    assert!(
        !data_dir.exists(),
        "a failed start created the data directory"
    );

    // A valid file with every section is accepted.
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "log = \"warn\"\n[sip]\ndomain = \"sip.example\"\n[registrar]\nmin_expires = 30\n\
         [outbound]\nbackoff_cap_secs = 60\n[pacing]\nburst = 2\n[dasha]\n\
         reveal_auth_password = false\n[cluster]\nlease_secs = 20\n",
    )
    .unwrap();
    assert_success(&cli_env(
        &data_dir,
        &["--config", good.to_str().unwrap(), "tenant", "list"],
        &[],
    ));
}

#[test]
fn listen_comes_from_the_command_line_then_the_environment_then_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let file = dir.path().join("listen.toml");
    std::fs::write(&file, "listen = \"127.0.0.2:0\"\n").unwrap();
    let config = file.to_str().unwrap();
    // An address no interface has (TEST-NET-1): binding it fails, so if it is used, we know.
    let unusable = dir.path().join("unusable.toml");
    std::fs::write(&unusable, "listen = \"192.0.2.1:9\"\n").unwrap();
    let unusable = unusable.to_str().unwrap();

    let env = [("TRUNKLINE_LISTEN", "127.0.0.3:0")];
    assert_eq!(
        serve_host(&data_dir, &["--config", config, "serve"], &[]),
        "127.0.0.2"
    );
    assert_eq!(serve_host(&data_dir, &["serve"], &env), "127.0.0.3");
    assert_eq!(
        serve_host(&data_dir, &["--config", config, "serve"], &env),
        "127.0.0.3"
    );
    assert_eq!(
        serve_host(&data_dir, &["--config", unusable, "serve"], &env),
        "127.0.0.3"
    );
    let cli = ["--config", config, "serve", "--listen", "127.0.0.4:0"];
    assert_eq!(serve_host(&data_dir, &cli, &env), "127.0.0.4");
    let cli = ["--config", unusable, "serve", "--listen", "127.0.0.4:0"];
    assert_eq!(serve_host(&data_dir, &cli, &[]), "127.0.0.4");

    // Without a winner over it, the unusable file address is really used: serve fails.
    let output = cli_env(&data_dir, &["--config", unusable, "serve"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("192.0.2.1:9"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn only_the_first_serve_prints_the_default_tenant() {
    let mut server = Server::start();
    let tenant = server.tenant();
    assert!(is_account_id(&tenant.account_id));
    let lines: Vec<String> = server
        .logs()
        .into_iter()
        .filter(|l| l.contains("default tenant"))
        .collect();
    assert_eq!(
        lines,
        [format!(
            "default tenant: account_id={} api_key={}",
            tenant.account_id, tenant.api_key
        )]
    );
    assert_eq!(list_status(&server, &tenant), 200);
    let output = server.cli(&["tenant", "list", "--json"]);
    assert_success(&output);
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], "default");
    assert_eq!(listed[0]["account_id"], tenant.account_id.as_str());

    assert!(server.terminate().success());
    for _ in 0..2 {
        let mut again = server.restart();
        assert!(again.default_tenant.is_none());
        assert!(
            !again.logs().iter().any(|l| l.contains("default tenant")),
            "{:#?}",
            again.logs()
        );
        assert_eq!(
            list_status(&again, &tenant),
            200,
            "the first key survives restarts"
        );
        assert!(again.terminate().success());
    }
    let output = server.cli(&["tenant", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "no second default tenant: {listed}"
    );

    // A database that already has a tenant (made by the CLI) is not empty: no default tenant.
    let dir = tempfile::tempdir().unwrap();
    assert_success(&cli_in(
        dir.path(),
        &["tenant", "create", "first", "--json"],
    ));
    let (_, logs) = serve_until_listening(dir.path(), &["serve", "--listen", "127.0.0.1:0"], &[]);
    assert!(
        !logs.iter().any(|l| l.contains("default tenant")),
        "{logs:#?}"
    );
}

// --- helpers ---

fn list_status(server: &Server, tenant: &Tenant) -> u16 {
    server
        .ultravox(Method::GET, "/api/sip/registrations", tenant)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        stderr(output)
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn is_account_id(text: &str) -> bool {
    text.strip_prefix("MA_").is_some_and(|rest| {
        rest.len() == 10
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

/// A command with the environment of the harness's CLI plus `env`, run to completion.
fn cli_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(data_dir, args, env)
        .output()
        .expect("run trunkline")
}

fn command(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("TRUNKLINE_LISTEN")
        .env_remove("TRUNKLINE_ADMIN_TOKEN")
        .env("TRUNKLINE_LOG", "warn")
        .env("NO_COLOR", "1")
        // Tests run in parallel: no engine, and no fixed SIP port even if it were on.
        .env("TRUNKLINE_OUTBOUND_ENABLED", "false")
        .env("TRUNKLINE_SIP_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

/// Kills the child when dropped, so a failed assertion leaves no server behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` with these arguments, waits for `listening on`, kills it; returns the
/// address it listened on and its stderr lines.
fn serve_until_listening(
    data_dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (String, Vec<String>) {
    let mut child = command(data_dir, args, env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trunkline serve");
    let stderr = child.stderr.take().unwrap();
    let _guard = KillOnDrop(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let address = line
                    .strip_prefix("listening on ")
                    .map(|a| a.trim().to_owned());
                lines.push(line);
                if let Some(address) = address {
                    return (address, lines);
                }
            }
            Err(_) => panic!("serve {args:?} did not start:\n{}", lines.join("\n")),
        }
    }
}

/// The host part of the address `serve` listened on.
fn serve_host(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let (address, _) = serve_until_listening(data_dir, args, env);
    let authority = address.strip_prefix("http://").expect("http URL");
    let (host, port) = authority.rsplit_once(':').expect("host:port");
    assert!(port.parse::<u16>().is_ok_and(|p| p != 0), "{address}");
    host.to_owned()
}
