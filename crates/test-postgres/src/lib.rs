//! A real PostgreSQL server for tests, with no system service. This crate owns only that
//! harness; the schema lives with the store (`crates/trunkline-store/migrations/postgres`).
//!
//! [`PgServer::shared`] starts one server per test process, on first use: `initdb` into a fresh
//! directory under the system temporary directory, then `postgres` on a free port of 127.0.0.1
//! (its unix socket inside that directory, durability off: tests only). [`PgServer::database`]
//! creates an empty database of its own for each caller and returns its URL, so tests are
//! isolated and run in parallel.
//!
//! ```no_run
//! let url = test_postgres::PgServer::shared().database(); // postgres://postgres@127.0.0.1:…/test_0
//! ```
//!
//! The binaries come from `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`
//! (Debian's `postgresql` package). PostgreSQL refuses to run as root: as root, `initdb` and
//! `postgres` run as the user `postgres` (which that package creates), the directory chowned to
//! it; otherwise they run as the current user.
//!
//! The server's lifetime is the test process's, without relying on the process exiting
//! cleanly:
//! - `postgres` is a child of ours with a parent-death signal (`PR_SET_PDEATHSIG`, SIGQUIT:
//!   PostgreSQL's immediate shutdown, which stops its backends and releases shared memory).
//!   The kernel sends that signal when the *thread* that forked the child ends, not the
//!   process, and a test's thread ends with the test: the child is therefore spawned by a
//!   thread of its own that waits on it for the life of the process. The signal is set in
//!   `pre_exec`, which runs after the switch to the `postgres` user (a change of credentials
//!   clears it), so a killed or aborted test process still takes its server with it.
//! - When the process exits normally (the test harness ends with `exit`), an `atexit` handler
//!   stops the server the same way, waits for it, and removes the directory.
//! - A directory left by a test process that was killed is removed by the next start.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);
/// Prefix of the server directories under the temporary directory: `<prefix><pid>-<nanos>`.
const DIR_PREFIX: &str = "trunkline-pg-";

/// The server of this process (or why it could not start: every caller gets the same panic).
static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
/// Set once the postmaster has exited and been reaped.
static EXITED: AtomicBool = AtomicBool::new(false);
static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);

/// A PostgreSQL server running for this test process; see the crate documentation.
#[derive(Debug)]
pub struct PgServer {
    port: u16,
    pid: libc::pid_t,
    dir: PathBuf,
    bin: PathBuf,
}

impl PgServer {
    /// The server of this test process, started on first use (about a second); panics with the
    /// reason, and the server's log if it got that far, when it cannot start.
    #[track_caller]
    pub fn shared() -> &'static PgServer {
        let server = SERVER.get_or_init(|| {
            let started = start();
            if started.is_ok() {
                // SAFETY: registers a function that takes nothing and never unwinds.
                unsafe { libc::atexit(stop_at_exit) };
            }
            started
        });
        match server {
            Ok(server) => server,
            Err(reason) => panic!("test PostgreSQL server: {reason}"),
        }
    }

    /// Creates a fresh, empty database with a name unique in this process and returns its URL
    /// (`postgres://postgres@127.0.0.1:<port>/<name>`, no password: the server trusts local
    /// connections).
    pub fn database(&self) -> String {
        let name = format!("test_{}", NEXT_DATABASE.fetch_add(1, Ordering::Relaxed));
        self.psql(&format!("CREATE DATABASE {name}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    fn psql(&self, sql: &str) {
        let port = self.port.to_string();
        let out = Command::new(self.bin.join("psql"))
            .args("-X -q -v ON_ERROR_STOP=1 -U postgres -d postgres".split(' '))
            .args(["-h", "127.0.0.1", "-p", &port, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running psql: {e}"));
        if !out.status.success() {
            let gone = if EXITED.load(Ordering::Acquire) {
                " (the server has exited)"
            } else {
                ""
            };
            panic!(
                "psql -c {sql:?} failed{gone}: {}\nserver log:\n{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                read_log(&self.dir)
            );
        }
    }
}

extern "C" fn stop_at_exit() {
    let Some(Ok(server)) = SERVER.get() else {
        return;
    };
    if !EXITED.load(Ordering::Acquire) {
        // SAFETY: plain syscall; the pid is our child's, and not reaped yet.
        unsafe { libc::kill(server.pid, libc::SIGQUIT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !EXITED.load(Ordering::Acquire) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = fs::remove_dir_all(&server.dir);
}

fn start() -> Result<PgServer, String> {
    let bin = bindir()?;
    // SAFETY: geteuid cannot fail.
    let owner = if unsafe { libc::geteuid() } == 0 {
        Some(postgres_user()?)
    } else {
        None
    };
    remove_stale_dirs();
    let dir = make_dir(owner)?;
    let result = initdb(&bin, &dir, owner).and_then(|()| launch(&bin, &dir, owner));
    match result {
        Ok((port, pid)) => Ok(PgServer {
            port,
            pid,
            dir,
            bin,
        }),
        Err(reason) => {
            let _ = fs::remove_dir_all(&dir);
            Err(reason)
        }
    }
}

/// A command for one of the server's binaries, run in `dir` as `owner` (when root).
fn command(bin: &Path, name: &str, dir: &Path, owner: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(bin.join(name));
    command.current_dir(dir).stdin(Stdio::null());
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}

fn initdb(bin: &Path, dir: &Path, owner: Option<(u32, u32)>) -> Result<(), String> {
    let out = command(bin, "initdb", dir, owner)
        .arg("-D")
        .arg(dir.join("data"))
        .args("-A trust -U postgres -E UTF8 --locale=C --no-sync".split(' '))
        .output()
        .map_err(|e| match owner {
            // Typically a TMPDIR the user postgres cannot reach (under /root, say).
            Some(_) => format!(
                "running initdb as the user postgres in {}: {e}",
                dir.display()
            ),
            None => format!("running initdb: {e}"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "initdb failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Starts `postgres` from a thread that lives as long as the server (see the crate
/// documentation) and waits until it accepts connections; returns its port and pid.
fn launch(bin: &Path, dir: &Path, owner: Option<(u32, u32)>) -> Result<(u16, libc::pid_t), String> {
    let (tx, rx) = mpsc::channel();
    let (bin, dir) = (bin.to_owned(), dir.to_owned());
    thread::Builder::new()
        .name("test-postgres".into())
        .spawn(move || {
            // A port can be taken between our probe and the server's bind: try a few.
            let mut outcome = Err(String::new());
            for _ in 0..3 {
                outcome = spawn_postgres(&bin, &dir, owner);
                match &outcome {
                    Err(log) if log.contains("could not bind") => continue,
                    _ => break,
                }
            }
            match outcome {
                Ok((mut child, port)) => {
                    let _ = tx.send(Ok((port, child.id() as libc::pid_t)));
                    let _ = child.wait();
                    EXITED.store(true, Ordering::Release);
                }
                Err(reason) => {
                    let _ = tx.send(Err(reason));
                }
            }
        })
        .map_err(|e| format!("spawning the server's thread: {e}"))?;
    rx.recv()
        .map_err(|_| "the server's thread ended".to_owned())?
}

/// One attempt: `postgres` on a free port, ready to accept connections (and that port), or the
/// reason (with its log) it is not.
fn spawn_postgres(
    bin: &Path,
    dir: &Path,
    owner: Option<(u32, u32)>,
) -> Result<(Child, u16), String> {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a free port: {e}"))?
        .port();
    let log =
        fs::File::create(dir.join("postgres.log")).map_err(|e| format!("creating the log: {e}"))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("duplicating the log: {e}"))?;
    let mut command = command(bin, "postgres", dir, owner);
    command
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
        .arg(dir)
        // Tests only: nothing here needs to survive a crash.
        .args("-c fsync=off -c synchronous_commit=off -c full_page_writes=off".split(' '))
        .args(["-c", "max_connections=200"])
        .stdout(log)
        .stderr(log2);
    // SAFETY: getpid before the fork; between fork and exec the closure makes only
    // async-signal-safe calls (prctl, getppid) and allocates nothing.
    let parent = unsafe { libc::getpid() };
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have exited before the signal was armed.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("running postgres: {e}"))?;
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "postgres exited ({status}); its log:\n{}",
                read_log(dir)
            ));
        }
        let ready = Command::new(bin.join("pg_isready"))
            .args("-q -h 127.0.0.1 -U postgres -t 1 -p".split(' '))
            .arg(port.to_string())
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("running pg_isready: {e}"))?;
        if ready.success() {
            return Ok((child, port));
        }
        if Instant::now() >= deadline {
            // SAFETY: plain syscall on our unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGQUIT) };
            let _ = child.wait();
            return Err(format!(
                "postgres did not accept connections within {}s; its log:\n{}",
                START_DEADLINE.as_secs(),
                read_log(dir)
            ));
        }
        thread::sleep(POLL);
    }
}

fn read_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("postgres.log")).unwrap_or_else(|e| format!("(no log: {e})"))
}

/// The directory holding `initdb`, `postgres`, `pg_isready` and `psql`.
fn bindir() -> Result<PathBuf, String> {
    let complete = |dir: &Path| {
        ["initdb", "postgres", "pg_isready", "psql"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && complete(&dir) {
            return Ok(dir);
        }
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((major, bin))
        })
        .max();
    newest.map(|(_, bin)| bin).ok_or_else(|| {
        "no PostgreSQL server binaries (neither `pg_config --bindir` nor /usr/lib/postgresql/*/bin \
         has initdb, postgres, pg_isready and psql); install Debian's `postgresql`"
            .to_owned()
    })
}

/// The uid and gid of the user `postgres`.
fn postgres_user() -> Result<(u32, u32), String> {
    // SAFETY: getpwnam_r writes into `pwd` and `buf`, both ours and large enough or reported.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut found = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            c"postgres".as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        if rc != 0 || found.is_null() {
            return Err(
                "running as root, and there is no user `postgres` to run PostgreSQL as \
                        (Debian's `postgresql` package creates it)"
                    .to_owned(),
            );
        }
        Ok((pwd.pw_uid, pwd.pw_gid))
    }
}

/// A new directory `<tmp>/trunkline-pg-<pid>-<nanos>`, mode 0700, owned by `owner` if given.
fn make_dir(owner: Option<(u32, u32)>) -> Result<PathBuf, String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{nanos}", std::process::id()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("giving {} to the user postgres: {e}", dir.display()))?;
    }
    Ok(dir)
}

/// Removes the directories of test processes that no longer exist (killed before their
/// `atexit`); their servers went with them (the parent-death signal).
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
