//! Call pacing over real HTTP: `POST /v1/pacing/{trunkId}/admit`, in memory and through a real
//! `redis-server` shared by two trunkline processes.
//!
//! Timing assertions are sound whatever the machine's load: an admission is decided at some
//! instant between the request's send and its response, so two admissions whose
//! send-to-response spans are closer than the interval, or more spans than the budget inside
//! one second, prove a violation. Load can only make them weaker, never fail them wrongly.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{json, Server, ServerOptions, Tenant};

/// One admit call as the client saw it.
#[derive(Debug, Clone, Copy)]
struct Call {
    sent: Instant,
    answered: Instant,
    admitted: bool,
}

fn create_trunk(server: &Server, tenant: &Tenant, body: Value) -> String {
    let (status, trunk) = json(
        server
            .dasha(Method::POST, "/api/v1/sip-credentials", tenant)
            .json(&body)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{trunk}");
    trunk["id"].as_str().unwrap().to_owned()
}

fn admit(server: &Server, tenant: &Tenant, trunk: &str, query: &str) -> Response {
    server
        .client
        .post(server.url(&format!("/v1/pacing/{trunk}/admit{query}")))
        .header("X-API-Key", &tenant.api_key)
        .send()
        .unwrap()
}

fn timed_admit(server: &Server, tenant: &Tenant, trunk: &str, query: &str) -> Call {
    let sent = Instant::now();
    let response = admit(server, tenant, trunk, query);
    let answered = Instant::now();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap();
    match status {
        200 => assert_eq!(body, json!({"admitted": true})),
        429 => {
            assert_eq!(body["admitted"], false);
            assert!(body["retryAfterMs"].as_u64().unwrap() >= 1, "{body}");
        }
        other => panic!("admit answered {other}: {body}"),
    }
    Call {
        sent,
        answered,
        admitted: status == 200,
    }
}

/// `callers` threads, each making `per_caller` admit calls spread evenly over `span`, against
/// the (server, trunk) pairs in turn.
fn hammer(
    targets: &[(&Server, &Tenant, &str)],
    callers: usize,
    per_caller: usize,
    span: Duration,
) -> Vec<Call> {
    let barrier = Arc::new(Barrier::new(callers));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..callers)
            .map(|caller| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let step = span / per_caller as u32;
                    // Callers are offset from each other so arrivals spread over the span.
                    let offset = step * caller as u32 / callers as u32;
                    (0..per_caller)
                        .map(|i| {
                            let due = start + offset + step * i as u32;
                            if let Some(left) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(left); // pacing the load generator itself
                            }
                            let (server, tenant, trunk) = targets[(caller + i) % targets.len()];
                            timed_admit(server, tenant, trunk, "")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// `callers` threads, released together, each making one admit call with `query`, against the
/// (server, trunk) pairs in turn.
fn all_at_once(targets: &[(&Server, &Tenant, &str)], callers: usize, query: &str) -> Vec<Call> {
    let barrier = Arc::new(Barrier::new(callers));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..callers)
            .map(|caller| {
                let barrier = barrier.clone();
                let (server, tenant, trunk) = targets[caller % targets.len()];
                scope.spawn(move || {
                    barrier.wait();
                    timed_admit(server, tenant, trunk, query)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Asserts the admitted calls obey `per_second` with burst 1, and returns how many there were.
fn assert_paced(calls: &[Call], per_second: u32) -> usize {
    let interval = Duration::from_secs(1) / per_second;
    let mut admitted: Vec<Call> = calls.iter().copied().filter(|c| c.admitted).collect();
    admitted.sort_by_key(|c| c.sent);
    // Spacing: each admission's decision lies in its [sent, answered]; for any two, the later
    // answered minus the earlier sent bounds their distance from above.
    for (i, a) in admitted.iter().enumerate() {
        for b in &admitted[i + 1..] {
            let (first, second) = if a.sent <= b.sent { (a, b) } else { (b, a) };
            let widest = second.answered.max(first.answered) - first.sent.min(second.sent);
            assert!(
                widest >= interval,
                "two admissions within {widest:?} (interval {interval:?})"
            );
        }
    }
    // Every one-second window: spans wholly inside it are at most the budget.
    for start in admitted.iter().map(|c| c.sent) {
        let inside = admitted
            .iter()
            .filter(|c| c.sent >= start && c.answered < start + Duration::from_secs(1))
            .count();
        assert!(
            inside <= per_second as usize,
            "{inside} admissions inside one second (limit {per_second})"
        );
    }
    admitted.len()
}

#[test]
fn admissions_follow_the_trunk_rate_exactly() {
    let server = Server::start();
    let tenant = server.tenant();
    let trunk = create_trunk(
        &server,
        &tenant,
        json!({"server": "sip.example.com", "cpsLimit": 5}),
    );

    // 200 calls from 20 callers over 3 s against 5 per second.
    let calls = hammer(
        &[(&server, &tenant, &trunk)],
        20,
        10,
        Duration::from_secs(3),
    );
    assert_eq!(calls.len(), 200);
    let admitted = assert_paced(&calls, 5);
    // Not vacuous: about 5 per second were admitted (15–16 in 3 s), the rest refused.
    assert!((12..=17).contains(&admitted), "{admitted} admitted");

    // A refusal says when to come back, in both forms, and it is honest.
    timed_admit(&server, &tenant, &trunk, "?waitMs=1000"); // takes the next slot
    let refused = admit(&server, &tenant, &trunk, "");
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = refused.json().unwrap();
    let retry_after_ms = body["retryAfterMs"].as_u64().unwrap();
    assert!((1..=200).contains(&retry_after_ms), "{body}");
    assert_eq!(retry_after, retry_after_ms.div_ceil(1000));
    std::thread::sleep(Duration::from_millis(retry_after_ms)); // the wait under test
    assert_eq!(admit(&server, &tenant, &trunk, "").status(), 200);

    assert!(crate::common::metric(&server, "trunkline_pacing_decisions_total") >= 200.0);
}

#[test]
fn wait_ms_holds_each_caller_for_its_own_slot() {
    let server = Server::start();
    let tenant = server.tenant();
    let trunk = create_trunk(
        &server,
        &tenant,
        json!({"server": "sip.example.com", "cpsLimit": 10}),
    );

    // 25 callers at once, each willing to wait 5 s: all are admitted, 100 ms apart.
    let calls = all_at_once(&[(&server, &tenant, &trunk)], 25, "?waitMs=5000");
    assert!(calls.iter().all(|c| c.admitted));
    assert_paced(&calls, 10);
    let first_sent = calls.iter().map(|c| c.sent).min().unwrap();
    let last_answered = calls.iter().map(|c| c.answered).max().unwrap();
    assert!(last_answered - first_sent >= Duration::from_millis(2400));

    // A wait too short for the next free slot is refused at once, and takes nothing.
    let refused = admit(&server, &tenant, &trunk, "?waitMs=1");
    assert_eq!(refused.status(), 429);
}

#[test]
fn trunks_sharing_a_key_share_the_smallest_limit() {
    let server = Server::start();
    let tenant = server.tenant();
    let fast = create_trunk(
        &server,
        &tenant,
        json!({"server": "sip.example.com", "cpsLimit": 10, "cpsKey": "carrier-a"}),
    );
    let slow = create_trunk(
        &server,
        &tenant,
        json!({"server": "sip.example.com", "cpsLimit": 4, "cpsKey": "carrier-a"}),
    );
    // Same key without a limit: never paced, and it does not lower the others' rate.
    let unlimited = create_trunk(
        &server,
        &tenant,
        json!({"server": "sip.example.com", "cpsKey": "carrier-a"}),
    );

    let calls = hammer(
        &[(&server, &tenant, &fast), (&server, &tenant, &slow)],
        16,
        10,
        Duration::from_secs(2),
    );
    let admitted = assert_paced(&calls, 4);
    assert!((6..=10).contains(&admitted), "{admitted} admitted");
    for _ in 0..30 {
        assert_eq!(admit(&server, &tenant, &unlimited, "").status(), 200);
    }

    // Moving the slow trunk to its own key applies on the next admission: the fast one is
    // paced at 10 again, independently of the slow one.
    let (status, _) = json(
        server
            .dasha(
                Method::PUT,
                &format!("/api/v1/sip-credentials/{slow}"),
                &tenant,
            )
            .json(&json!({"server": "sip.example.com", "cpsLimit": 4, "cpsKey": "carrier-b"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    let calls = hammer(&[(&server, &tenant, &fast)], 10, 10, Duration::from_secs(2));
    let admitted = assert_paced(&calls, 10);
    assert!(
        admitted >= 12,
        "{admitted} admitted at 10 per second over 2 s"
    );
    assert!(timed_admit(&server, &tenant, &slow, "?waitMs=1000").admitted);
}

#[test]
fn equal_keys_of_two_tenants_are_independent() {
    let server = Server::start();
    let alice = server.tenant();
    let bob = server.create_tenant("bob");
    let body = json!({"server": "sip.example.com", "cpsLimit": 1, "cpsKey": "carrier-a"});
    let alices = create_trunk(&server, &alice, body.clone());
    let bobs = create_trunk(&server, &bob, body);

    assert_eq!(admit(&server, &alice, &alices, "").status(), 200);
    assert_eq!(admit(&server, &alice, &alices, "").status(), 429);
    // Bob's "carrier-a" still has its whole budget.
    assert_eq!(admit(&server, &bob, &bobs, "").status(), 200);
    assert_eq!(admit(&server, &bob, &bobs, "").status(), 429);
}

#[test]
fn admit_refuses_bad_requests_in_problem_details() {
    let server = Server::start();
    let alice = server.tenant();
    let bob = server.create_tenant("bob");
    let trunk = create_trunk(
        &server,
        &alice,
        json!({"server": "sip.example.com", "cpsLimit": 1}),
    );

    let problem = |response: Response, status: u16| {
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        response.json::<Value>().unwrap()
    };
    // Another tenant's trunk, an unknown id and a malformed one are all the same 404.
    for (tenant, id) in [
        (&bob, trunk.as_str()),
        (&alice, "6a1c5f0e-0000-4000-8000-000000000000"),
        (&alice, "nope"),
    ] {
        problem(admit(&server, tenant, id, ""), 404);
    }
    for query in ["?waitMs=30001", "?waitMs=-1", "?waitMs=soon", "?waitMs=1e3"] {
        let body = problem(admit(&server, &alice, &trunk, query), 400);
        assert!(body["errors"]["waitMs"].is_array(), "{query}: {body}");
    }
    let anonymous = server
        .client
        .post(server.url(&format!("/v1/pacing/{trunk}/admit")))
        .send()
        .unwrap();
    problem(anonymous, 401);
    // None of those spent the budget; the other dialects' keys are accepted too.
    let bearer = server
        .client
        .post(server.url(&format!("/v1/pacing/{trunk}/admit")))
        .bearer_auth(&alice.api_key)
        .send()
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let vobiz_pair = server
        .client
        .post(server.url(&format!("/v1/pacing/{trunk}/admit")))
        .header("X-Auth-ID", &alice.account_id)
        .header("X-Auth-Token", &alice.api_key)
        .send()
        .unwrap();
    assert_eq!(vobiz_pair.status(), 429);
}

// --- Redis -----------------------------------------------------------------------------------

/// A `redis-server` of our own on a free port, without persistence.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian redis-server; scripts/test installs it)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines.next().expect("redis-server exited").unwrap();
            if line.contains("Ready to accept connections") {
                break;
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8(output.stdout).unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn redis_env(redis: &Redis, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![("TRUNKLINE_PACING_REDIS_URL".to_owned(), redis.url())];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

#[test]
fn two_processes_on_one_redis_share_the_budget_and_survive_its_outage() {
    let mut redis = Redis::start();
    let a = Server::start_with(ServerOptions {
        env: redis_env(&redis, &[]),
        ..Default::default()
    });
    let tenant = a.tenant();
    let b = a.start_beside(redis_env(&redis, &[]));
    let trunk = create_trunk(
        &a,
        &tenant,
        json!({"server": "sip.example.com", "cpsLimit": 5}),
    );

    // Both processes, 200 calls over 3 s: together they keep to 5 per second.
    let calls = hammer(
        &[(&a, &tenant, &trunk), (&b, &tenant, &trunk)],
        20,
        10,
        Duration::from_secs(3),
    );
    let admitted = assert_paced(&calls, 5);
    assert!((12..=17).contains(&admitted), "{admitted} admitted");
    // The key lives in Redis only while it matters.
    let keys = redis.cli(&["--scan", "--pattern", "trunkline:pace:*"]);
    let key = keys.lines().next().expect("a pacing key in Redis");
    let ttl: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap();
    assert!((1..=1000).contains(&ttl), "PTTL {ttl}");

    // Callers that may wait are served in turn, across both processes.
    let waited = all_at_once(
        &[(&a, &tenant, &trunk), (&b, &tenant, &trunk)],
        10,
        "?waitMs=5000",
    );
    assert!(waited.iter().all(|c| c.admitted));
    assert_paced(&waited, 5);

    // Redis dies: fail-closed by default, a clear 503, no panic; fail-open admits.
    redis.kill();
    let refused = admit(&a, &tenant, &trunk, "");
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(refused.headers()["retry-after"], "1");
    let problem: Value = refused.json().unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("Redis"),
        "{problem}"
    );
    let open = a.start_beside(redis_env(&redis, &[("TRUNKLINE_PACING_FAIL_OPEN", "true")]));
    assert_eq!(admit(&open, &tenant, &trunk, "").status(), 200);
    assert_eq!(admit(&open, &tenant, &trunk, "").status(), 200);
    assert!(crate::common::metric(&a, "trunkline_pacing_redis_errors_total") >= 1.0);
    assert!(a.logs().iter().any(|l| l.contains("Redis unavailable")));
    assert_eq!(
        a.client.get(a.url("/healthz")).send().unwrap().status(),
        200
    );

    // Redis back on the same port: both processes pace again without a restart (the first
    // call after the restart may still meet the dead connection).
    redis.spawn();
    for server in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = admit(server, &tenant, &trunk, "?waitMs=1000").status();
            if status == 200 {
                break;
            }
            assert_eq!(status, 503);
            assert!(Instant::now() < deadline, "pacing did not recover");
        }
    }
    assert_eq!(admit(&a, &tenant, &trunk, "").status(), 429);
    assert!(a.logs().iter().any(|l| l.contains("Redis answers again")));
    assert!(!a
        .logs()
        .iter()
        .chain(b.logs().iter())
        .any(|l| l.contains("panicked")));
}

#[test]
fn bad_pacing_settings_stop_the_start_and_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value, named) in [
        (
            "TRUNKLINE_PACING_REDIS_URL",
            "redis://:hunter2-secret@/",
            "pacing.redis_url",
        ),
        (
            "TRUNKLINE_PACING_REDIS_URL",
            "http://:hunter2-secret@cache:6379",
            "pacing.redis_url",
        ),
        ("TRUNKLINE_PACING_BURST", "0", "pacing.burst"),
    ] {
        let output = Command::new(crate::common::BIN)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TRUNKLINE_SIP_LISTEN", "127.0.0.1:0")
            .env("TRUNKLINE_OUTBOUND_ENABLED", "false")
            .env("NO_COLOR", "1")
            .env(name, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{value}: started");
        assert!(stderr.contains(named), "{value}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "the URL's password was printed: {stderr}"
        );
        // Stopped before anything was opened or bound.
        assert!(!stderr.contains("listening on"), "{stderr}");
        assert!(!stderr.contains("default tenant"), "{stderr}");
    }
}
