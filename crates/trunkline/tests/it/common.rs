//! The test harness: starts the binary, waits for it to say it is listening (no sleeps), keeps
//! every stderr line for inspection, and offers small HTTP helpers per dialect.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_trunkline");
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A tenant's credentials as printed once at creation.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub account_id: String,
    pub api_key: String,
}

/// How to start a server.
pub struct ServerOptions {
    pub log: String,
    pub env: Vec<(String, String)>,
    /// Run the SIP engine. Off by default: the control-plane tests must not depend on what
    /// the engine makes of their made-up SIP servers (`successful` stays `null`).
    pub engine: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            log: "info".to_owned(),
            env: Vec::new(),
            engine: false,
        }
    }
}

/// A running `trunkline serve` with its own data directory.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    /// The SIP endpoint's UDP (and TCP) address (`None` with the engine disabled).
    pub sip: Option<std::net::SocketAddr>,
    /// The `default` tenant printed at first start (`None` after a restart).
    pub default_tenant: Option<Tenant>,
    data_dir: Arc<TempDir>,
    options_log: String,
    options_env: Vec<(String, String)>,
    logs: Arc<Mutex<Vec<String>>>,
    pub client: Client,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut env = vec![(
            "TRUNKLINE_OUTBOUND_ENABLED".to_owned(),
            options.engine.to_string(),
        )];
        if let Some(url) = test_database() {
            env.push(("TRUNKLINE_DATABASE_URL".to_owned(), url));
        }
        env.extend(options.env);
        Self::spawn(dir, options.log, env)
    }

    fn spawn(data_dir: Arc<TempDir>, log: String, env: Vec<(String, String)>) -> Self {
        let mut command = Command::new(BIN);
        command
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TRUNKLINE_LOG", &log)
            // Many servers run at once: every one gets its own SIP port.
            .env("TRUNKLINE_SIP_LISTEN", "127.0.0.1:0")
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn trunkline");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    logs.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let mut default_tenant = None;
        let mut sip = None;
        let base = loop {
            let line = match rx.recv_timeout(START_TIMEOUT) {
                Ok(line) => line,
                Err(_) => panic!(
                    "trunkline did not start; stderr:\n{}",
                    logs.lock().unwrap().join("\n")
                ),
            };
            if let Some(rest) = line.strip_prefix("default tenant: ") {
                default_tenant = Some(parse_tenant_line(rest));
            }
            if let Some(address) = line.strip_prefix("sip listening on ") {
                sip = address.trim().parse().ok();
            }
            if let Some(address) = line.strip_prefix("listening on ") {
                break address.trim().to_owned();
            }
        };
        Self {
            child: Some(child),
            base,
            sip,
            default_tenant,
            data_dir,
            options_log: log,
            options_env: env,
            logs,
            client: Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// The default tenant; panics after a restart.
    pub fn tenant(&self) -> Tenant {
        self.default_tenant
            .clone()
            .expect("first start prints the default tenant")
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("trunkline.db")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every stderr line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("wait");
        }
    }

    /// SIGSTOP: the process is frozen (as by a long pause or a VM stall) until [`resume`].
    ///
    /// [`resume`]: Server::resume
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`Server::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("running");
        // SAFETY: sending a signal to our own child process by its pid.
        let rc = unsafe { libc::kill(child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill({signal}) failed");
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: sending a signal to our own child process by its pid.
        let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        child.wait().expect("wait")
    }

    /// Starts a new process on the same data directory (this one must be stopped).
    pub fn restart(&mut self) -> Server {
        assert!(self.child.is_none(), "stop the server before restarting it");
        Self::spawn(
            self.data_dir.clone(),
            self.options_log.clone(),
            self.options_env.clone(),
        )
    }

    /// Like [`Server::restart`], with more environment (later values win).
    pub fn restart_with(&mut self, extra: Vec<(String, String)>) -> Server {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let mut env = self.options_env.clone();
        env.extend(extra);
        Self::spawn(self.data_dir.clone(), self.options_log.clone(), env)
    }

    /// A second process on the same data directory (so the same SQLite file and master key)
    /// while this one runs, with more environment (later values win).
    pub fn start_beside(&self, extra: Vec<(String, String)>) -> Server {
        let mut env = self.options_env.clone();
        env.extend(extra);
        Self::spawn(self.data_dir.clone(), self.options_log.clone(), env)
    }

    /// Runs a CLI command against this server's data directory (and database).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = cli_command(self.data_dir(), args);
        if let Some(url) = self.configured_database() {
            command.env("TRUNKLINE_DATABASE_URL", url);
        }
        command.output().expect("run trunkline CLI")
    }

    /// This server's database: its PostgreSQL database, else the SQLite file.
    pub fn database_url(&self) -> String {
        self.configured_database()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sqlite://{}", self.db_path().display()))
    }

    /// What another trunkline process needs to use this server's database.
    pub fn database_env(&self) -> Vec<(String, String)> {
        vec![("TRUNKLINE_DATABASE_URL".to_owned(), self.database_url())]
    }

    /// Runs `sql` straight against the database, behind trunkline's back: the `sqlite3` CLI
    /// on the file (busy timeout 5 s, foreign keys on) or `psql`. Rows one per line, columns
    /// separated by `|`; panics when the statement fails.
    pub fn sql(&self, sql: &str) -> String {
        let output = if self.on_sqlite() {
            Command::new("sqlite3")
                .args(["-cmd", ".timeout 5000", "-cmd", "PRAGMA foreign_keys=ON"])
                .arg(self.db_path())
                .arg(sql)
                .output()
                .expect("run sqlite3 (Debian package sqlite3)")
        } else {
            Command::new("psql")
                .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
                .arg(self.database_url())
                .args(["-c", sql])
                .output()
                .expect("run psql (Debian package postgresql-client)")
        };
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// [`Server::sql`] without telling the nodes: on PostgreSQL the change triggers are off
    /// for that statement (`session_replication_role = replica`), as for a write no change
    /// event announces (SQLite has no triggers of ours).
    pub fn sql_unannounced(&self, sql: &str) -> String {
        if self.on_sqlite() {
            self.sql(sql)
        } else {
            self.sql(&format!("SET session_replication_role = replica; {sql}"))
        }
    }

    /// Everything the database holds on disk, to search for what must not be there: the
    /// SQLite file with its -wal and -shm files, or a `pg_dump` of the PostgreSQL database
    /// (`bytea` in hex there, so search for hex forms too).
    pub fn database_bytes(&self) -> Vec<(String, Vec<u8>)> {
        if self.on_sqlite() {
            let db = self.db_path();
            ["", "-wal", "-shm"]
                .iter()
                .filter_map(|suffix| {
                    let path = format!("{}{suffix}", db.display());
                    std::fs::read(&path).ok().map(|bytes| (path, bytes))
                })
                .collect()
        } else {
            let output = Command::new("pg_dump")
                .args(["--no-owner", "--no-privileges"])
                .arg(self.database_url())
                .output()
                .expect("run pg_dump (Debian package postgresql-client)");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            vec![("pg_dump".to_owned(), output.stdout)]
        }
    }

    /// Whether this server's database is the SQLite file in its data directory.
    pub fn on_sqlite(&self) -> bool {
        !self
            .configured_database()
            .is_some_and(|url| url.starts_with("postgres"))
    }

    /// The `TRUNKLINE_DATABASE_URL` this server was started with (the last one wins).
    fn configured_database(&self) -> Option<&str> {
        self.options_env
            .iter()
            .rev()
            .find(|(name, _)| name == "TRUNKLINE_DATABASE_URL")
            .map(|(_, url)| url.as_str())
    }

    pub fn create_tenant(&self, name: &str) -> Tenant {
        let output = self.cli(&["tenant", "create", name, "--json"]);
        assert!(
            output.status.success(),
            "tenant create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let value: Value = serde_json::from_slice(&output.stdout).expect("json output");
        Tenant {
            account_id: value["account_id"].as_str().unwrap().to_owned(),
            api_key: value["api_key"].as_str().unwrap().to_owned(),
        }
    }

    // --- dialect request builders (auth headers set) ---

    pub fn ultravox(&self, method: reqwest::Method, path: &str, tenant: &Tenant) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("X-API-Key", &tenant.api_key)
    }

    pub fn dasha(&self, method: reqwest::Method, path: &str, tenant: &Tenant) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&tenant.api_key)
    }

    /// `path` is relative to `/api/v1/account/{account_id}`.
    pub fn vobiz(&self, method: reqwest::Method, path: &str, tenant: &Tenant) -> RequestBuilder {
        self.client
            .request(
                method,
                self.url(&format!("/api/v1/account/{}{path}", tenant.account_id)),
            )
            .header("X-Auth-ID", &tenant.account_id)
            .header("X-Auth-Token", &tenant.api_key)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn cli_in(data_dir: &Path, args: &[&str]) -> Output {
    cli_command(data_dir, args)
        .output()
        .expect("run trunkline CLI")
}

fn cli_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("TRUNKLINE_LOG", "warn")
        .env("NO_COLOR", "1");
    command
}

/// With `TRUNKLINE_TEST_BACKEND=postgres` (scripts/test runs the suite that way too), every
/// server started here gets a fresh database of its own on the test PostgreSQL server instead
/// of the SQLite file in its data directory.
fn test_database() -> Option<String> {
    match std::env::var("TRUNKLINE_TEST_BACKEND").as_deref() {
        Ok("postgres") => Some(test_postgres::PgServer::shared().database()),
        Ok("sqlite") | Err(_) => None,
        Ok(other) => panic!("TRUNKLINE_TEST_BACKEND={other}: expected sqlite or postgres"),
    }
}

fn parse_tenant_line(rest: &str) -> Tenant {
    let mut account_id = None;
    let mut api_key = None;
    for part in rest.split_whitespace() {
        if let Some(v) = part.strip_prefix("account_id=") {
            account_id = Some(v.to_owned());
        }
        if let Some(v) = part.strip_prefix("api_key=") {
            api_key = Some(v.to_owned());
        }
    }
    Tenant {
        account_id: account_id.expect("account_id in default tenant line"),
        api_key: api_key.expect("api_key in default tenant line"),
    }
}

/// Status and JSON body of a response (body `Null` when empty).
pub fn json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, body)
}

#[allow(unused_imports)]
pub use reqwest::Method;

// --- outbound registrations (the engine's tests) ---

/// How long a registration's status may take to reach what a test waits for.
pub const STATUS_WAIT: Duration = Duration::from_secs(30);

/// Creates an Ultravox registration (`body` as the dialect takes it); its id.
pub fn create_registration(server: &Server, tenant: &Tenant, body: Value) -> String {
    let (status, created) = json(
        server
            .ultravox(reqwest::Method::POST, "/api/sip/registrations", tenant)
            .json(&body)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{created}");
    created["registrationId"].as_str().unwrap().to_owned()
}

/// Creates an Ultravox registration for `username` (password `{username}-pw`) at `proxy`.
pub fn create_user_registration(
    server: &Server,
    tenant: &Tenant,
    username: &str,
    proxy: impl std::fmt::Display,
) -> String {
    create_registration(
        server,
        tenant,
        serde_json::json!({
            "username": username,
            "password": format!("{username}-pw"),
            "proxy": proxy.to_string(),
        }),
    )
}

/// `GET /v1/registrations/{id}`: the engine's status of a registration or a Dasha number.
pub fn registration_status(server: &Server, tenant: &Tenant, id: &str) -> Value {
    let (status, body) = json(
        server
            .client
            .get(server.url(&format!("/v1/registrations/{}", id.replace('+', "%2B"))))
            .header("X-API-Key", &tenant.api_key)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls the status until `done` holds (the status endpoint is what operators read too; the
/// engine has no push channel to wait on); panics after [`STATUS_WAIT`].
pub fn wait_for_registration(
    server: &Server,
    tenant: &Tenant,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + STATUS_WAIT;
    loop {
        let body = registration_status(server, tenant, id);
        if done(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status never matched; last: {body:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the registration's `state` is `state`.
pub fn wait_for_state(server: &Server, tenant: &Tenant, id: &str, state: &str) -> Value {
    wait_for_registration(server, tenant, id, |body| body["state"] == state)
}

/// The sum of a Prometheus metric's samples (all label sets) in `/metrics`.
pub fn metric(server: &Server, name: &str) -> f64 {
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
