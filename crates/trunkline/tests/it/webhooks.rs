//! Webhooks against the real binary, with events from real SIP (registrations at a TCP port
//! nobody listens on fail at once: `registration.failed`) and a receiver in this process that
//! checks every request's Standard Webhooks signature and timestamp on its own (HMAC-SHA256,
//! ±5 minutes) and records what it accepted.
//!
//! Deliveries are signed, in `seq` order, with exactly the events' bodies, filtered by type; an
//! endpoint that is down is retried (attempts listed with their next attempt) and gets every
//! event once back, across a SIGKILL of trunkline too; a hanging endpoint of one tenant does
//! not hold up another tenant's; retries running out disable the endpoint with a reason and
//! enabling it delivers again; a destination in `outbound.deny_networks` is refused; webhooks
//! are the tenant's own; bad input is a problem-details 4xx; the secret is shown once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::{json as json_of, Server, ServerOptions, Tenant};
use crate::events::failing_registration;

/// How long a delivery or a status may take to show.
const WAIT: Duration = Duration::from_secs(30);
/// Standard Webhooks' tolerance for `webhook-timestamp`.
const TOLERANCE_SECS: i64 = 300;

// --- the receiver --------------------------------------------------------------------------------

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Accept,
    Status(u16),
    /// Holds the request until released (or until trunkline gives up on it).
    Hang,
}

/// A request the receiver accepted (verified, answered 2xx).
#[derive(Clone, Debug)]
struct Delivered {
    id: String,
    body: Value,
}

#[derive(Default)]
struct Inbox {
    delivered: Vec<Delivered>,
    /// Requests whose signature or timestamp did not verify, and why.
    forged: Vec<String>,
    /// Every verified request, whatever was answered.
    attempts: usize,
}

struct ReceiverState {
    key: Mutex<Option<Vec<u8>>>,
    answer: Mutex<Answer>,
    inbox: Mutex<Inbox>,
    changed: Condvar,
    hanging: AtomicUsize,
    release: tokio::sync::Notify,
}

/// A webhook receiver on 127.0.0.1 (its own runtime, stopped when dropped).
struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    _runtime: tokio::runtime::Runtime,
}

/// Decrements the count of hanging requests when a held request ends (answered or dropped).
struct HangGuard<'a>(&'a AtomicUsize, &'a Condvar);

impl Drop for HangGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        self.1.notify_all();
    }
}

impl Receiver {
    fn start(answer: Answer) -> Self {
        let state = Arc::new(ReceiverState {
            key: Mutex::new(None),
            answer: Mutex::new(answer),
            inbox: Mutex::new(Inbox::default()),
            changed: Condvar::new(),
            hanging: AtomicUsize::new(0),
            release: tokio::sync::Notify::new(),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let app_state = state.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new()
                .route("/hook", axum::routing::post(receive))
                .with_state(app_state);
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            state,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The signing key, from the secret the create response showed.
    fn trust(&self, secret: &str) {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
            .expect("base64 key");
        assert_eq!(key.len(), 24, "24 random bytes");
        *self.state.key.lock().unwrap() = Some(key);
    }

    fn answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    /// Lets every held request answer 200.
    fn release(&self) {
        self.answer(Answer::Accept);
        self.state.release.notify_waiters();
    }

    /// Waits (on the receiver's own notifications) until `done` holds for what it received.
    fn wait_until(&self, what: &str, done: impl Fn(&Inbox, usize) -> bool) {
        let deadline = Instant::now() + WAIT;
        let mut inbox = self.state.inbox.lock().unwrap();
        while !done(&inbox, self.state.hanging.load(Ordering::SeqCst)) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "receiver: {what} never happened");
            inbox = self.state.changed.wait_timeout(inbox, left).unwrap().0;
        }
        assert!(
            inbox.forged.is_empty(),
            "forged requests: {:?}",
            inbox.forged
        );
    }

    /// Waits until `n` deliveries were accepted; them, in arrival order.
    fn wait_for(&self, n: usize) -> Vec<Delivered> {
        self.wait_until(&format!("{n} deliveries"), |inbox, _| {
            inbox.delivered.len() >= n
        });
        self.delivered()
    }

    fn delivered(&self) -> Vec<Delivered> {
        let inbox = self.state.inbox.lock().unwrap();
        assert!(
            inbox.forged.is_empty(),
            "forged requests: {:?}",
            inbox.forged
        );
        inbox.delivered.clone()
    }

    fn attempts(&self) -> usize {
        self.state.inbox.lock().unwrap().attempts
    }
}

async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let verified = verify(&state, &headers, &body);
    let answer = {
        let mut inbox = state.inbox.lock().unwrap();
        match &verified {
            Err(why) => inbox.forged.push(why.clone()),
            Ok(_) => inbox.attempts += 1,
        }
        state.changed.notify_all();
        *state.answer.lock().unwrap()
    };
    let Ok(id) = verified else {
        return StatusCode::BAD_REQUEST;
    };
    match answer {
        Answer::Status(code) => return StatusCode::from_u16(code).unwrap(),
        Answer::Hang => {
            let released = state.release.notified();
            state.hanging.fetch_add(1, Ordering::SeqCst);
            state.changed.notify_all();
            let _guard = HangGuard(&state.hanging, &state.changed);
            released.await;
        }
        Answer::Accept => {}
    }
    let body: Value = serde_json::from_slice(&body).expect("a JSON body");
    state
        .inbox
        .lock()
        .unwrap()
        .delivered
        .push(Delivered { id, body });
    state.changed.notify_all();
    StatusCode::NO_CONTENT
}

/// Checks a request as a Standard Webhooks receiver does; its `webhook-id`.
fn verify(state: &ReceiverState, headers: &HeaderMap, body: &[u8]) -> Result<String, String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| format!("no {name}"))
    };
    let id = header("webhook-id")?;
    let timestamp: i64 = header("webhook-timestamp")?
        .parse()
        .map_err(|_| "webhook-timestamp is not a number".to_owned())?;
    let now = chrono::Utc::now().timestamp();
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(format!("timestamp {timestamp} too far from {now}"));
    }
    if header("content-type")? != "application/json" {
        return Err("content-type is not application/json".to_owned());
    }
    let key = state.key.lock().unwrap().clone().ok_or("no key yet")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let signatures = header("webhook-signature")?;
    if !signatures.split(' ').any(|s| s == expected) {
        return Err(format!("signature {signatures} is not {expected}"));
    }
    Ok(id)
}

// --- trunkline side --------------------------------------------------------------------------------

fn server_with(env: &[(&str, &str)], engine: bool) -> Server {
    Server::start_with(ServerOptions {
        engine,
        log: "info,trunkline_webhooks=debug".to_owned(),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    })
}

fn own(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    tenant: &Tenant,
) -> reqwest::blocking::RequestBuilder {
    server
        .client
        .request(method, server.url(path))
        .header("X-API-Key", &tenant.api_key)
}

/// Creates a webhook; its id and secret.
fn create_webhook(server: &Server, tenant: &Tenant, body: Value) -> (String, String) {
    let (status, created) = json_of(
        own(server, reqwest::Method::POST, "/v1/webhooks", tenant)
            .json(&body)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    (created["id"].as_str().unwrap().to_owned(), secret)
}

/// A webhook for everything at `receiver`, trusted by it.
fn hook(server: &Server, tenant: &Tenant, receiver: &Receiver) -> String {
    let (id, secret) = create_webhook(server, tenant, json!({"url": receiver.url()}));
    receiver.trust(&secret);
    id
}

fn get(server: &Server, tenant: &Tenant, path: &str) -> (u16, Value) {
    json_of(
        own(server, reqwest::Method::GET, path, tenant)
            .send()
            .unwrap(),
    )
}

fn deliveries(server: &Server, tenant: &Tenant, webhook: &str) -> Vec<Value> {
    let (status, body) = get(
        server,
        tenant,
        &format!("/v1/webhooks/{webhook}/deliveries"),
    );
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Polls a trunkline read (what operators read too) until `done` holds.
fn poll_until<T: std::fmt::Debug>(
    what: &str,
    read: impl Fn() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let value = read();
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never happened; last: {value:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The tenant's events, oldest first (`GET /v1/events`).
fn events(server: &Server, tenant: &Tenant) -> Vec<Value> {
    let (status, body) = get(server, tenant, "/v1/events?limit=1000");
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

fn delete_registration(server: &Server, tenant: &Tenant, id: &str) {
    let response = server
        .ultravox(
            reqwest::Method::DELETE,
            &format!("/api/sip/registrations/{id}"),
            tenant,
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 204);
}

fn ids(delivered: &[Delivered]) -> Vec<u64> {
    delivered
        .iter()
        .map(|d| d.body["seq"].as_u64().unwrap())
        .collect()
}

fn assert_secret_nowhere(server: &Server, tenant: &Tenant, webhook: &str, secret: &str) {
    for path in ["/v1/webhooks".to_owned(), format!("/v1/webhooks/{webhook}")] {
        let (status, body) = get(server, tenant, &path);
        assert_eq!(status, 200);
        assert!(
            !body.to_string().contains(secret),
            "{path} shows the secret"
        );
        assert!(!body.to_string().contains("secret"), "{path}: {body}");
    }
    let key = secret.strip_prefix("whsec_").unwrap();
    assert!(
        !server.logs().iter().any(|l| l.contains(key)),
        "the secret reached the log"
    );
}

// --- tests -----------------------------------------------------------------------------------------

#[test]
fn deliveries_are_signed_in_order_with_the_events_bodies_and_filtered_by_type() {
    let server = server_with(&[], true);
    let tenant = server.tenant();
    let everything = Receiver::start(Answer::Accept);
    let (all_id, secret) = create_webhook(&server, &tenant, json!({"url": everything.url()}));
    everything.trust(&secret);
    let removals = Receiver::start(Answer::Accept);
    let (removed_id, removed_secret) = create_webhook(
        &server,
        &tenant,
        json!({"url": removals.url(), "types": ["registration.removed", "registration.removed"],
               "description": "removals only"}),
    );
    removals.trust(&removed_secret);

    let a = failing_registration(&server, &tenant, "a");
    let _b = failing_registration(&server, &tenant, "b");
    let _c = failing_registration(&server, &tenant, "c");
    poll_until(
        "three failures",
        || events(&server, &tenant),
        |e| e.len() == 3,
    );
    delete_registration(&server, &tenant, &a);

    let delivered = everything.wait_for(4);
    let events = events(&server, &tenant);
    assert_eq!(events.len(), 4, "{events:#?}");
    assert_eq!(ids(&delivered), [1, 2, 3, 4], "in seq order, each once");
    for (delivered, event) in delivered.iter().zip(&events) {
        assert_eq!(&delivered.body, event, "exactly the event's body");
        assert_eq!(
            delivered.id,
            event["id"].as_str().unwrap(),
            "webhook-id is the event id"
        );
    }
    assert_eq!(events[3]["type"], "registration.removed");

    // Only its type, and nothing else, at the filtered endpoint (the others were passed over).
    let only = removals.wait_for(1);
    assert_eq!(only[0].body, events[3]);
    let attempts = deliveries(&server, &tenant, &removed_id);
    assert_eq!(attempts.len(), 1, "{attempts:#?}");

    let attempts = deliveries(&server, &tenant, &all_id);
    assert_eq!(attempts.len(), 4, "{attempts:#?}");
    let newest = &attempts[0];
    assert_eq!(newest["eventId"], events[3]["id"], "newest first");
    assert_eq!(newest["type"], "registration.removed");
    assert_eq!(newest["attempt"], 1);
    assert_eq!(newest["statusCode"], 204);
    assert_eq!(newest["error"], Value::Null);
    assert_eq!(newest["nextAttemptAt"], Value::Null);
    assert!(newest["durationMs"].is_u64());
    assert!(chrono::DateTime::parse_from_rfc3339(newest["at"].as_str().unwrap()).is_ok());
    assert!(
        delivered.len() == 4 && removals.delivered().len() == 1,
        "no repeats"
    );

    assert_secret_nowhere(&server, &tenant, &all_id, &secret);
}

#[test]
fn a_down_endpoint_is_retried_and_gets_every_event_once_back_across_a_sigkill() {
    // Holds of 3 s: the node started after the kill takes the webhook over soon.
    let env = [
        ("TRUNKLINE_CLUSTER_LEASE_SECS", "3"),
        ("TRUNKLINE_CLUSTER_RENEW_SECS", "1"),
    ];
    let mut server = server_with(&env, true);
    let tenant = server.tenant();
    let receiver = Receiver::start(Answer::Status(503));
    let webhook = hook(&server, &tenant, &receiver);

    failing_registration(&server, &tenant, "first");
    poll_until(
        "the first failure",
        || events(&server, &tenant),
        |e| e.len() == 1,
    );
    failing_registration(&server, &tenant, "second");
    poll_until(
        "the second failure",
        || events(&server, &tenant),
        |e| e.len() == 2,
    );

    // Retried, one event at a time: every attempt is at the first event.
    let attempts = poll_until(
        "two failed attempts",
        || deliveries(&server, &tenant, &webhook),
        |a| a.len() >= 2,
    );
    let first_id = events(&server, &tenant)[0]["id"].clone();
    for attempt in &attempts {
        assert_eq!(attempt["eventId"], first_id, "{attempts:#?}");
        assert_eq!(attempt["statusCode"], 503);
        assert_eq!(attempt["error"], "HTTP 503 Service Unavailable");
        let next = chrono::DateTime::parse_from_rfc3339(attempt["nextAttemptAt"].as_str().unwrap())
            .unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(attempt["at"].as_str().unwrap()).unwrap();
        assert!(next > at, "{attempt}");
    }
    assert_eq!(
        attempts[0]["attempt"],
        attempts[1]["attempt"].as_u64().unwrap() + 1
    );
    assert!(receiver.delivered().is_empty());

    // Killed mid-retries; the receiver comes back; a new process on the same data finds the
    // retry where it stood.
    server.kill();
    let tried = receiver.attempts();
    receiver.answer(Answer::Accept);
    let server = server.restart();
    let delivered = receiver.wait_for(2);
    let events = events(&server, &tenant);
    assert_eq!(ids(&delivered), [1, 2]);
    assert_eq!(delivered[0].body, events[0]);
    assert_eq!(delivered[1].body, events[1]);
    assert!(receiver.attempts() > tried);

    let attempts = deliveries(&server, &tenant, &webhook);
    assert_eq!(attempts[0]["eventId"], events[1]["id"]);
    assert_eq!(attempts[0]["statusCode"], 204);
    assert_eq!(attempts[1]["eventId"], events[0]["id"]);
    assert!(
        attempts[1]["attempt"].as_u64().unwrap() >= 3,
        "{attempts:#?}"
    );
    assert_eq!(receiver.delivered().len(), 2, "each event once");
}

#[test]
fn a_hanging_endpoint_of_one_tenant_does_not_hold_up_another_tenants() {
    let server = server_with(&[], true);
    let stuck_tenant = server.tenant();
    let other = server.create_tenant("unaffected");
    let stuck = Receiver::start(Answer::Hang);
    let fine = Receiver::start(Answer::Accept);
    hook(&server, &stuck_tenant, &stuck);
    hook(&server, &other, &fine);

    failing_registration(&server, &stuck_tenant, "stuck");
    stuck.wait_until("a held request", |_, hanging| hanging == 1);
    failing_registration(&server, &other, "fine");
    let delivered = fine.wait_for(1);
    assert_eq!(delivered[0].body, events(&server, &other)[0]);
    // Delivered while the other tenant's request is still held open.
    assert_eq!(stuck.state.hanging.load(Ordering::SeqCst), 1);
    assert_eq!(stuck.attempts(), 1);
    stuck.release();
    stuck.wait_for(1);
}

#[test]
fn retries_running_out_disable_the_endpoint_saying_why_and_enabling_it_delivers() {
    let server = server_with(&[("TRUNKLINE_EVENTS_WEBHOOK_RETRY_SECS", "3")], true);
    let tenant = server.tenant();
    let receiver = Receiver::start(Answer::Status(500));
    let webhook = hook(&server, &tenant, &receiver);
    failing_registration(&server, &tenant, "doomed");

    let disabled = poll_until(
        "the endpoint disabled",
        || get(&server, &tenant, &format!("/v1/webhooks/{webhook}")).1,
        |w| w["enabled"] == false,
    );
    assert_eq!(
        disabled["disabledReason"],
        "deliveries failed for 3s: last error: HTTP 500 Internal Server Error"
    );
    let attempts = deliveries(&server, &tenant, &webhook);
    assert!(attempts.len() >= 2, "{attempts:#?}");
    assert_eq!(attempts[0]["nextAttemptAt"], Value::Null, "given up");
    assert!(attempts[1]["nextAttemptAt"].is_string());
    let tried = receiver.attempts();
    assert_eq!(tried, attempts.len());

    // Fixed and enabled again: the reason goes, the event it stopped at is delivered.
    receiver.answer(Answer::Accept);
    let (status, enabled) = json_of(
        own(
            &server,
            reqwest::Method::PATCH,
            &format!("/v1/webhooks/{webhook}"),
            &tenant,
        )
        .json(&json!({"enabled": true}))
        .send()
        .unwrap(),
    );
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["disabledReason"], Value::Null);
    assert_eq!(enabled["enabled"], true);
    let delivered = receiver.wait_for(1);
    assert_eq!(delivered[0].body, events(&server, &tenant)[0]);
}

#[test]
fn a_destination_in_a_denied_network_is_refused_and_nothing_is_sent() {
    let server = server_with(
        &[("TRUNKLINE_OUTBOUND_DENY_NETWORKS", "127.0.0.0/8,::1/128")],
        true,
    );
    let tenant = server.tenant();
    let receiver = Receiver::start(Answer::Accept);
    let literal = hook(&server, &tenant, &receiver);
    let (by_name, _) = create_webhook(
        &server,
        &tenant,
        json!({"url": format!("http://localhost:{}/hook", receiver.addr.port())}),
    );
    // The registration is refused by the same rule, which still announces its failure.
    failing_registration(&server, &tenant, "denied");

    let refused = poll_until(
        "a refused attempt",
        || deliveries(&server, &tenant, &literal),
        |a| !a.is_empty(),
    );
    assert_eq!(
        refused[0]["error"],
        "destination 127.0.0.1 refused by outbound.deny_networks (127.0.0.0/8)"
    );
    assert_eq!(refused[0]["statusCode"], Value::Null);
    assert!(
        refused[0]["nextAttemptAt"].is_string(),
        "a failed attempt, retried"
    );
    let by_name = poll_until(
        "a refused attempt by name",
        || deliveries(&server, &tenant, &by_name),
        |a| !a.is_empty(),
    );
    let error = by_name[0]["error"].as_str().unwrap();
    assert!(
        error.contains("refused by outbound.deny_networks"),
        "{error}"
    );
    assert_eq!(receiver.attempts(), 0, "nothing reached the receiver");
    assert!(receiver.delivered().is_empty());
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("trunkline_webhook_deliveries_total{outcome=\"refused\"}")),
        "{metrics}"
    );
}

#[test]
fn webhooks_are_the_tenants_own_and_bad_input_is_a_problem() {
    let server = server_with(&[], false);
    let tenant = server.tenant();
    let other = server.create_tenant("other");
    let (id, secret) = create_webhook(
        &server,
        &tenant,
        json!({"url": "https://hooks.example.com/in?token=abc", "types": ["binding.created"],
               "description": "devices", "enabled": false}),
    );
    assert!(secret.starts_with("whsec_"));
    let (status, shown) = get(&server, &tenant, &format!("/v1/webhooks/{id}"));
    assert_eq!(status, 200);
    assert_eq!(shown["url"], "https://hooks.example.com/in?token=abc");
    assert_eq!(shown["types"], json!(["binding.created"]));
    assert_eq!(shown["description"], "devices");
    assert_eq!(shown["enabled"], false);
    assert_eq!(shown["disabledReason"], Value::Null);
    assert!(chrono::DateTime::parse_from_rfc3339(shown["createdAt"].as_str().unwrap()).is_ok());
    assert_secret_nowhere(&server, &tenant, &id, &secret);

    // Another tenant's id is not found, whatever the method.
    for (method, path) in [
        (reqwest::Method::GET, format!("/v1/webhooks/{id}")),
        (reqwest::Method::PATCH, format!("/v1/webhooks/{id}")),
        (reqwest::Method::DELETE, format!("/v1/webhooks/{id}")),
        (
            reqwest::Method::GET,
            format!("/v1/webhooks/{id}/deliveries"),
        ),
        (reqwest::Method::GET, "/v1/webhooks/not-a-uuid".to_owned()),
    ] {
        let response = own(&server, method.clone(), &path, &other)
            .json(&json!({"enabled": true}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    assert_eq!(get(&server, &other, "/v1/webhooks").1, json!({"items": []}));
    assert_eq!(
        get(&server, &tenant, "/v1/webhooks").1["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Bad input: a 400 naming the field, in problem details.
    let long = "d".repeat(257);
    for (body, field) in [
        (json!({"url": "ftp://example.com/"}), "url"),
        (json!({"url": "https://user:pw@example.com/"}), "url"),
        (json!({"url": "hooks.example.com/in"}), "url"),
        (
            json!({"url": format!("https://example.com/{}", "a".repeat(2048))}),
            "url",
        ),
        (json!({}), "url"),
        (json!({"url": 5}), "url"),
        (
            json!({"url": "https://example.com/", "types": ["registration.exploded"]}),
            "types",
        ),
        (
            json!({"url": "https://example.com/", "types": "registration.failed"}),
            "types",
        ),
        (
            json!({"url": "https://example.com/", "types": null}),
            "types",
        ),
        (
            json!({"url": "https://example.com/", "description": long}),
            "description",
        ),
        (
            json!({"url": "https://example.com/", "description": "a\nb"}),
            "description",
        ),
        (
            json!({"url": "https://example.com/", "enabled": "yes"}),
            "enabled",
        ),
        (
            json!({"url": "https://example.com/", "enabled": null}),
            "enabled",
        ),
    ] {
        let response = own(&server, reqwest::Method::POST, "/v1/webhooks", &tenant)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().unwrap();
        assert!(problem["errors"][field].is_array(), "{body}: {problem}");
    }
    let (status, problem) = json_of(
        own(
            &server,
            reqwest::Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &tenant,
        )
        .json(&json!({"url": "javascript:alert(1)"}))
        .send()
        .unwrap(),
    );
    assert_eq!(status, 400);
    assert!(problem["errors"]["url"].is_array(), "{problem}");
    let response = own(&server, reqwest::Method::POST, "/v1/webhooks", &tenant)
        .header("content-type", "text/plain")
        .body("{\"url\": \"https://example.com/\"}")
        .send()
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = own(&server, reqwest::Method::POST, "/v1/webhooks", &tenant)
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);

    // A partial update changes what it names; enabling clears nothing that was not set.
    let (status, patched) = json_of(
        own(
            &server,
            reqwest::Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &tenant,
        )
        .json(&json!({"types": [], "description": null}))
        .send()
        .unwrap(),
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["types"], json!([]));
    assert_eq!(patched["description"], Value::Null);
    assert_eq!(patched["url"], shown["url"]);
    assert_eq!(patched["enabled"], false);

    // At most 20 per tenant: the 21st is a conflict.
    let mut made = HashMap::new();
    for n in 1..20 {
        let (hook_id, _) = create_webhook(
            &server,
            &tenant,
            json!({"url": format!("https://h{n}.example/")}),
        );
        made.insert(n, hook_id);
    }
    let response = own(&server, reqwest::Method::POST, "/v1/webhooks", &tenant)
        .json(&json!({"url": "https://one-too-many.example/"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 409);
    let (status, _) = json_of(
        own(
            &server,
            reqwest::Method::DELETE,
            &format!("/v1/webhooks/{}", made[&1]),
            &tenant,
        )
        .send()
        .unwrap(),
    );
    assert_eq!(status, 204);
    create_webhook(
        &server,
        &tenant,
        json!({"url": "https://one-more.example/"}),
    );
    let (status, _) = get(&server, &tenant, &format!("/v1/webhooks/{}", made[&1]));
    assert_eq!(status, 404, "deleted");
}
