//! Process hygiene (issue 13):
//! - a first start creates the data directory 0700 and the database with its `-wal`/`-shm` files
//!   0600, under a permissive umask (022) that would otherwise give 0755/0644;
//! - existing files others can reach (data directory, database, `-wal`, `-shm`, key file) are
//!   warned about by path and mode, and left as they are;
//! - the admin token still admits exactly the configured token (401 otherwise, whatever the
//!   length), and a short one is warned about once without being printed;
//! - master key rotation: values sealed with key A open on a server with key B only when A is in
//!   `master_key_previous`; `trunkline rekey` (run while that server runs) re-seals them, after
//!   which B alone opens them; the database holds no plaintext; rekey is idempotent and refuses,
//!   naming the key id, when a value's key is not configured.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use secrecy::ExposeSecret;
use serde_json::json as body;
use trunkline_core::AccountId;
use trunkline_store::{MasterKey, Sealer};
use uuid::Uuid;

use crate::common::{json, Method, Server, ServerOptions, BIN};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|err| panic!("chmod {}: {err}", path.display()));
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `trunkline serve` on a data directory the harness did not create (its temporary
/// directories are already 0700), with umask 022 so that the modes seen are trunkline's own.
struct FreshServer {
    child: Child,
    logs: Vec<String>,
}

impl FreshServer {
    fn start(data_dir: &Path) -> Self {
        let mut command = Command::new(BIN);
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TRUNKLINE_LOG", "info")
            .env("TRUNKLINE_SIP_LISTEN", "127.0.0.1:0")
            .env("TRUNKLINE_OUTBOUND_ENABLED", "false")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: umask(2) is async-signal-safe and touches only the child's own state, between
        // fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        let mut child = command.spawn().expect("spawn trunkline");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut logs = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    let listening = line.starts_with("listening on ");
                    logs.push(line);
                    if listening {
                        break;
                    }
                }
                Err(_) => panic!("trunkline did not start; stderr:\n{}", logs.join("\n")),
            }
        }
        Self { child, logs }
    }
}

impl Drop for FreshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn first_start_creates_the_data_dir_0700_and_the_database_files_0600() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("nested").join("data");
    let server = FreshServer::start(&data_dir);

    // While the server runs, SQLite keeps its -wal and -shm files beside the database.
    let db = data_dir.join("trunkline.db");
    assert_eq!(mode(&data_dir), 0o700, "data directory");
    assert_eq!(
        mode(data_dir.parent().unwrap()),
        0o700,
        "a parent it created"
    );
    for path in [
        db.clone(),
        with_suffix(&db, "-wal"),
        with_suffix(&db, "-shm"),
        data_dir.join("master.key"),
    ] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    let warnings: Vec<_> = server
        .logs
        .iter()
        .filter(|line| line.contains("WARN"))
        .collect();
    assert!(
        warnings.is_empty(),
        "no warning on a fresh start: {warnings:?}"
    );
}

#[test]
fn files_others_can_reach_are_warned_about_and_left_alone() {
    let mut server = Server::start();
    if !server.on_sqlite() {
        eprintln!("SQLite's files only: this run's database is PostgreSQL");
        return;
    }
    let data_dir = server.data_dir().to_owned();
    let db = server.db_path();
    // SIGKILL leaves the -wal and -shm files behind, as a crash would.
    server.kill();
    let files = [
        (data_dir.clone(), 0o755),
        (db.clone(), 0o644),
        (with_suffix(&db, "-wal"), 0o640),
        (with_suffix(&db, "-shm"), 0o604),
        (data_dir.join("master.key"), 0o644),
    ];
    for (path, mode) in &files {
        chmod(path, *mode);
    }

    let restarted = server.restart();
    let logs = restarted.logs();
    for (path, mode) in &files {
        let path = path.display().to_string();
        let mode = format!("mode={mode:o}");
        assert!(
            logs.iter().any(|line| line.contains("WARN")
                && line.contains(&format!("path={path} "))
                && line.contains(&mode)),
            "a warning names {path} and {mode}:\n{}",
            logs.join("\n")
        );
    }
    // Warned about, not changed (the -wal/-shm files may have been recreated by SQLite in the
    // meantime, so only the ones trunkline never recreates are checked).
    assert_eq!(mode(&data_dir), 0o755);
    assert_eq!(mode(&db), 0o644);
    assert_eq!(mode(&data_dir.join("master.key")), 0o644);
}

/// GET /v1/admin/tenants with `token` as the bearer token.
fn admin_status(server: &Server, token: Option<&str>) -> u16 {
    let request = server.client.get(server.url("/v1/admin/tenants"));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().unwrap().status().as_u16()
}

#[test]
fn the_admin_token_admits_only_itself_and_a_short_one_is_warned_about_once() {
    const SHORT: &str = "short-admin-token-9f3e";
    let server = Server::start_with(ServerOptions {
        env: vec![("TRUNKLINE_ADMIN_TOKEN".into(), SHORT.into())],
        ..ServerOptions::default()
    });
    assert_eq!(admin_status(&server, Some(SHORT)), 200);
    for wrong in [
        "short-admin-token-9f3f",     // same length
        "short-admin-token",          // a prefix
        "short-admin-token-9f3e-and", // an extension
        "x",
    ] {
        assert_eq!(admin_status(&server, Some(wrong)), 401, "{wrong}");
    }
    assert_eq!(admin_status(&server, None), 401);
    let logs = server.logs();
    let warnings: Vec<_> = logs
        .iter()
        .filter(|line| line.contains("WARN") && line.contains("admin_token is shorter than 32"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{}", logs.join("\n"));
    for line in &logs {
        assert!(!line.contains(SHORT), "the token is printed: {line}");
    }

    const LONG: &str = "a-long-random-admin-token-0123456789abcdef";
    let server = Server::start_with(ServerOptions {
        env: vec![("TRUNKLINE_ADMIN_TOKEN".into(), LONG.into())],
        ..ServerOptions::default()
    });
    assert_eq!(admin_status(&server, Some(LONG)), 200);
    assert_eq!(admin_status(&server, Some(&LONG[..LONG.len() - 1])), 401);
    assert_eq!(admin_status(&server, Some(SHORT)), 401);
    let logs = server.logs();
    assert!(
        !logs
            .iter()
            .any(|line| line.contains("admin_token is shorter")),
        "no warning for a long token:\n{}",
        logs.join("\n")
    );
}

const UV_PASSWORD: &str = "rekey-uvx-Secret-Pw-Wombat-31";
const DA_PASSWORD: &str = "rekey-dasha-Secret-Pw-Dugong-47";
const TRUNK_SERVER: &str = "sip.rekey-carrier.example";

fn encoded(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `trunkline rekey` on `data_dir` with `pairs` in the environment.
fn rekey(data_dir: &Path, database_url: &str, pairs: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("rekey")
        .env("TRUNKLINE_LOG", "warn")
        .env("NO_COLOR", "1")
        .env("TRUNKLINE_DATABASE_URL", database_url)
        .envs(pairs.iter().copied())
        .output()
        .expect("run trunkline rekey")
}

/// The count in rekey's `re-sealed N secrets` line.
fn resealed(output: &Output) -> u64 {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rekey failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("re-sealed ")?.strip_suffix(" secrets"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `re-sealed N secrets` line: {stdout}"))
}

/// The trunk as Dasha shows it: status and `authPassword` (reveal is on in this test).
fn trunk_password(server: &Server, tenant: &crate::common::Tenant, id: &str) -> (u16, String) {
    let (status, trunk) = json(
        server
            .dasha(
                Method::GET,
                &format!("/api/v1/sip-credentials/{id}"),
                tenant,
            )
            .send()
            .unwrap(),
    );
    (status, trunk.to_string())
}

/// Opens the stopped server's database with `key` alone and reads both sealed passwords.
fn open_with_only(
    url: &str,
    key: u8,
    tenant: &str,
    registration: &str,
    trunk: &str,
) -> (Result<String, String>, Result<String, String>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = trunkline_store::open(url, Sealer::new(&MasterKey::from_bytes([key; 32]), &[]))
            .await
            .expect("open store");
        let tenant = AccountId::parse(tenant).unwrap();
        let registration = store
            .registration_password(&tenant, Uuid::parse_str(registration).unwrap())
            .await
            .map(|p| p.expect("sealed password").expose_secret().to_owned())
            .map_err(|err| err.to_string());
        let trunk = store
            .trunk(&tenant, Uuid::parse_str(trunk).unwrap(), true)
            .await
            .map(|t| {
                let trunk = t.expect("trunk");
                trunk
                    .revealed_password
                    .expect("revealed")
                    .expose_secret()
                    .to_owned()
            })
            .map_err(|err| err.to_string());
        store.close().await;
        (registration, trunk)
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn rekey_moves_every_secret_to_the_new_master_key_while_the_server_runs() {
    let (a, b) = (encoded(0xA1), encoded(0xB2));
    let mut server = Server::start_with(ServerOptions {
        env: env(&[
            ("TRUNKLINE_MASTER_KEY", &a),
            ("TRUNKLINE_DASHA_REVEAL_AUTH_PASSWORD", "true"),
        ]),
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let database_url = server.database_url();
    let data_dir = server.data_dir().to_owned();

    // Sealed with key A: an Ultravox registration and a Dasha trunk with passwords.
    let (status, created) = json(
        server
            .ultravox(Method::POST, "/api/sip/registrations", &tenant)
            .json(&body!({"username": "rekey-user", "password": UV_PASSWORD, "proxy": "sip.example.com"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{created}");
    let registration = created["registrationId"].as_str().unwrap().to_owned();
    let (status, created) = json(
        server
            .dasha(Method::POST, "/api/v1/sip-credentials", &tenant)
            .json(
                &body!({"server": TRUNK_SERVER, "authUser": "trunk", "authPassword": DA_PASSWORD}),
            )
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{created}");
    let trunk = created["id"].as_str().unwrap().to_owned();
    let (status, shown) = trunk_password(&server, &tenant, &trunk);
    assert!(
        status == 200 && shown.contains(DA_PASSWORD),
        "{status} {shown}"
    );
    assert!(server.terminate().success());

    // Key B alone cannot open what A sealed: neither the server nor the store.
    let mut only_b = server.restart_with(env(&[("TRUNKLINE_MASTER_KEY", &b)]));
    let (status, shown) = trunk_password(&only_b, &tenant, &trunk);
    assert_ne!(
        status, 200,
        "key B alone opened a value sealed with A: {shown}"
    );
    assert!(!shown.contains(DA_PASSWORD));
    assert!(only_b.terminate().success());
    let (uv, da) = open_with_only(
        &database_url,
        0xB2,
        &tenant.account_id,
        &registration,
        &trunk,
    );
    assert!(uv.is_err() && da.is_err(), "{uv:?} {da:?}");

    // B current, A previous: reads work; rekey runs beside the server.
    let mut rotating = only_b.restart_with(env(&[("TRUNKLINE_MASTER_KEY_PREVIOUS", &a)]));
    assert!(rotating
        .logs()
        .iter()
        .any(|line| line.contains("previous master keys accepted for reading")));
    let (status, shown) = trunk_password(&rotating, &tenant, &trunk);
    assert!(
        status == 200 && shown.contains(DA_PASSWORD),
        "{status} {shown}"
    );
    let keys = [
        ("TRUNKLINE_MASTER_KEY", b.as_str()),
        ("TRUNKLINE_MASTER_KEY_PREVIOUS", a.as_str()),
    ];
    assert_eq!(resealed(&rekey(&data_dir, &database_url, &keys)), 2);
    assert_eq!(
        resealed(&rekey(&data_dir, &database_url, &keys)),
        0,
        "idempotent"
    );
    let (status, shown) = trunk_password(&rotating, &tenant, &trunk);
    assert!(
        status == 200 && shown.contains(DA_PASSWORD),
        "{status} {shown}"
    );
    assert!(rotating.terminate().success());

    // No plaintext in the database (positive control: the trunk's server is found).
    let files: Vec<Vec<u8>> = rotating
        .database_bytes()
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect();
    assert!(files
        .iter()
        .any(|bytes| contains(bytes, TRUNK_SERVER.as_bytes())));
    for password in [UV_PASSWORD, DA_PASSWORD] {
        assert!(
            !files
                .iter()
                .any(|bytes| contains(bytes, password.as_bytes())),
            "{password} is in the database files"
        );
    }

    // Key B alone, previous unset: everything opens.
    let mut after = rotating.restart_with(env(&[("TRUNKLINE_MASTER_KEY_PREVIOUS", "")]));
    assert!(!after
        .logs()
        .iter()
        .any(|line| line.contains("previous master keys accepted")));
    let (status, shown) = trunk_password(&after, &tenant, &trunk);
    assert!(
        status == 200 && shown.contains(DA_PASSWORD),
        "{status} {shown}"
    );
    assert!(after.terminate().success());
    let (uv, da) = open_with_only(
        &database_url,
        0xB2,
        &tenant.account_id,
        &registration,
        &trunk,
    );
    assert_eq!(uv.as_deref(), Ok(UV_PASSWORD));
    assert_eq!(da.as_deref(), Ok(DA_PASSWORD));

    // Rekeying with a ring that lacks B fails and names B's id (never a key).
    let output = rekey(
        &data_dir,
        &database_url,
        &[("TRUNKLINE_MASTER_KEY", a.as_str())],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let b_id = MasterKey::from_bytes([0xB2; 32]).id();
    assert!(
        stderr.contains("2 sealed secrets could not be opened") && stderr.contains(&b_id),
        "{stderr}"
    );
    assert!(!stderr.contains(&b) && !stderr.contains(&a));
}
