//! Status events against the real binary: a registrar (Kamailio) that is down and then comes
//! back is announced as exactly one `registration.failed` and one `registration.registered`
//! (not once per retry), with the `GET /v1/registrations/{id}` body of that moment; deleting it
//! announces `registration.removed`; a device (sipsak) registering to trunkline's registrar and
//! unregistering announces `binding.created` and `binding.removed`; the SSE stream resumes from
//! `Last-Event-ID` missing nothing and repeating nothing; polling filters by type; another
//! tenant sees none of it.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    create_user_registration, json as json_of, registration_status, Server, ServerOptions, Tenant,
};
use crate::devices::Sipsak;
use crate::kamailio::{Kamailio, KamailioOptions, Transport};

/// How long an event may take to be written after what causes it.
const EVENT_WAIT: Duration = Duration::from_secs(30);

fn engine_server() -> Server {
    Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    })
}

/// `GET /v1/events` as JSON (polling).
fn poll(server: &Server, tenant: &Tenant, query: &str) -> Vec<Value> {
    let (status, body) = json_of(
        server
            .client
            .get(server.url(&format!("/v1/events{query}")))
            .header("X-API-Key", &tenant.api_key)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Polls until `done` holds for the tenant's events (those after `after`).
fn wait_for_events(
    server: &Server,
    tenant: &Tenant,
    after: u64,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + EVENT_WAIT;
    loop {
        let events = poll(server, tenant, &format!("?after={after}"));
        if done(&events) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "events never matched: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[test]
fn a_registrar_down_then_back_is_announced_once_each_way_with_the_status_body() {
    let mut kamailio = Kamailio::start(
        KamailioOptions::default()
            .tcp()
            .subscriber("alice", "alice-pw"),
    );
    let uri = kamailio.uri(Transport::Tcp);
    kamailio.stop();
    let server = engine_server();
    let tenant = server.tenant();
    let other = server.create_tenant("bystander");

    let id = create_user_registration(&server, &tenant, "alice", &uri);
    let failed = wait_for_events(&server, &tenant, 0, |e| !e.is_empty());
    // Several retries fail before the registrar comes back; still one event.
    crate::common::wait_for_registration(&server, &tenant, &id, |b| {
        b["consecutiveFailures"].as_u64().unwrap_or(0) >= 3
    });
    kamailio.restart();
    let events = wait_for_events(&server, &tenant, 0, |e| e.len() >= 2);
    assert_eq!(
        types(&events),
        ["registration.failed", "registration.registered"]
    );
    assert_eq!(failed[0], events[0], "an event never changes");

    let (failed, registered) = (&events[0], &events[1]);
    assert_eq!(failed["seq"], 1);
    assert_eq!(registered["seq"], 2);
    assert!(failed["id"].as_str().unwrap().starts_with("evt_"));
    assert_ne!(failed["id"], registered["id"]);
    assert_eq!(failed["data"]["id"], id.as_str());
    assert_eq!(failed["data"]["kind"], "ultravox");
    assert_eq!(failed["data"]["state"], "failed_transport");
    assert_eq!(failed["data"]["failedBy"], "local");
    // The registered body is what GET /v1/registrations/{id} said at that moment: the same
    // fields, and (nothing having changed since but timestamps of refreshes) the same values.
    let now = registration_status(&server, &tenant, &id);
    assert_eq!(registered["data"]["state"], "registered");
    assert_eq!(registered["data"]["lastCode"], 200);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&registered["data"]), keys(&now));
    assert_eq!(registered["data"]["expiresAt"], now["expiresAt"]);
    chrono::DateTime::parse_from_rfc3339(registered["timestamp"].as_str().unwrap()).unwrap();

    // Deleted: removed, after its unregister.
    let (status, _) = json_of(
        server
            .ultravox(
                reqwest::Method::DELETE,
                &format!("/api/sip/registrations/{id}"),
                &tenant,
            )
            .send()
            .unwrap(),
    );
    assert_eq!(status, 204);
    let events = wait_for_events(&server, &tenant, 2, |e| !e.is_empty());
    assert_eq!(types(&events), ["registration.removed"]);
    assert_eq!(events[0]["data"]["id"], id.as_str());
    assert_eq!(events[0]["data"]["state"], "disabled");
    kamailio.wait_for_reply("alice", 200, EVENT_WAIT);
    assert!(kamailio.bindings("alice").is_empty(), "unregistered first");

    // Filters, bounds, and nothing for another tenant.
    let only = poll(
        &server,
        &tenant,
        "?types=registration.registered,registration.removed",
    );
    assert_eq!(
        types(&only),
        ["registration.registered", "registration.removed"]
    );
    assert_eq!(poll(&server, &tenant, "?after=1&limit=1").len(), 1);
    assert!(poll(&server, &other, "").is_empty());
    for bad in [
        "?types=registration.nope",
        "?types=",
        "?types=registration.failed,",
        "?limit=0",
        "?limit=1001",
        "?after=-1",
        "?after=x",
        "?after=9223372036854775808",
    ] {
        let response = server
            .client
            .get(server.url(&format!("/v1/events{bad}")))
            .header("X-API-Key", &tenant.api_key)
            .send()
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{bad}"
        );
    }
}

/// One SSE event as read off the wire.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: u64,
    kind: String,
    data: Value,
}

/// Opens the tenant's stream (resuming after `last_event_id`) and reads `count` events on a
/// thread, then hangs up; each arrives on the channel as it is read.
fn stream(
    server: &Server,
    tenant: &Tenant,
    last_event_id: Option<u64>,
    count: usize,
) -> mpsc::Receiver<Sse> {
    let mut request = server
        .client
        .get(server.url("/v1/events"))
        .header("Accept", "text/event-stream")
        .header("X-API-Key", &tenant.api_key);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let response = request.send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(response).lines();
        let (mut id, mut kind, mut data) = (None, None, None);
        let mut sent = 0;
        while sent < count {
            let Some(Ok(line)) = lines.next() else { return };
            if line.is_empty() {
                if let (Some(id), Some(kind), Some(data)) = (id.take(), kind.take(), data.take()) {
                    let _ = sender.send(Sse { id, kind, data });
                    sent += 1;
                }
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("event: ") {
                kind = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = serde_json::from_str(v).ok();
            }
        }
    });
    receiver
}

fn next(events: &mpsc::Receiver<Sse>) -> Sse {
    events
        .recv_timeout(EVENT_WAIT)
        .expect("an event on the stream")
}

/// A registration at a TCP port nobody listens on: one `registration.failed` soon after.
pub(crate) fn failing_registration(server: &Server, tenant: &Tenant, username: &str) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    create_user_registration(
        server,
        tenant,
        username,
        format!("sip:127.0.0.1:{port};transport=tcp"),
    )
}

#[test]
fn the_stream_resumes_after_last_event_id_missing_nothing_and_repeating_nothing() {
    let server = engine_server();
    let tenant = server.tenant();
    let other = server.create_tenant("bystander");
    let others_stream = stream(&server, &other, Some(0), 1);

    // A stream without a resume point starts with the next new event.
    let a = failing_registration(&server, &tenant, "a");
    wait_for_events(&server, &tenant, 0, |e| e.len() == 1);
    let live = stream(&server, &tenant, None, 1);
    let b = failing_registration(&server, &tenant, "b");
    let first = next(&live);
    assert_eq!((first.id, first.kind.as_str()), (2, "registration.failed"));
    assert_eq!(first.data["data"]["id"], b.as_str());
    assert_eq!(first.data["seq"], 2);

    // While nobody listens: two more.
    let _c = failing_registration(&server, &tenant, "c");
    let (status, _) = json_of(
        server
            .ultravox(
                reqwest::Method::DELETE,
                &format!("/api/sip/registrations/{a}"),
                &tenant,
            )
            .send()
            .unwrap(),
    );
    assert_eq!(status, 204);
    wait_for_events(&server, &tenant, 2, |e| e.len() == 2);

    // Resumed after 2: 3 and 4 from the outbox, then 5 live.
    let resumed = stream(&server, &tenant, Some(first.id), 3);
    let (third, fourth) = (next(&resumed), next(&resumed));
    assert_eq!((third.id, fourth.id), (3, 4));
    let mut kinds = [third.kind.clone(), fourth.kind.clone()];
    kinds.sort();
    assert_eq!(kinds, ["registration.failed", "registration.removed"]);
    let _d = failing_registration(&server, &tenant, "d");
    let fifth = next(&resumed);
    assert_eq!((fifth.id, fifth.kind.as_str()), (5, "registration.failed"));
    // Each SSE `data` is exactly the polled body.
    let polled = poll(&server, &tenant, "?after=2");
    assert_eq!(
        polled,
        [third.data, fourth.data, fifth.data],
        "the stream and polling carry the same bodies"
    );
    assert!(
        others_stream
            .recv_timeout(Duration::from_millis(500))
            .is_err(),
        "another tenant's stream sees nothing"
    );
    assert!(poll(&server, &other, "").is_empty());
}

#[test]
fn a_device_registering_and_unregistering_is_announced() {
    let server =
        crate::registrar::server_with(&[("TRUNKLINE_SIP_CHALLENGE_ALGORITHMS", "MD5,SHA-256")]);
    let tenant = server.tenant();
    let password = "device-pass-1";
    let credential = crate::registrar::create_credential(&server, &tenant, "desk", password);
    let sipsak = Sipsak::new(
        server.sip.unwrap(),
        &crate::registrar::realm(&tenant),
        "desk",
        password,
    )
    .expires(300);
    let run = sipsak.register();
    assert!(run.success(), "{}", run.text());
    let created = wait_for_events(&server, &tenant, 0, |e| !e.is_empty());
    assert_eq!(types(&created), ["binding.created"]);
    let data = &created[0]["data"];
    assert_eq!(data["credentialId"], credential.as_str());
    assert_eq!(
        data["contact"],
        sipsak.contact_uri().split(';').next().unwrap()
    );
    assert_eq!(data["transport"], "udp");
    // The binding object of the Vobiz list, plus credentialId.
    let listed = crate::registrar::objects(&server, &tenant, &credential);
    let mut expected = listed[0].clone();
    expected["credentialId"] = json!(credential);
    assert_eq!(data, &expected);

    // A refresh is no news; the unregister is.
    assert!(sipsak.register().success());
    let run = sipsak.unregister();
    assert!(run.success(), "{}", run.text());
    let events = wait_for_events(&server, &tenant, 0, |e| e.len() >= 2);
    assert_eq!(types(&events), ["binding.created", "binding.removed"]);
    assert_eq!(events[1]["data"]["contact"], data["contact"]);
}
