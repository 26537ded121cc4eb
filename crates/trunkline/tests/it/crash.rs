//! Crash safety: a burst of Ultravox creates from several threads, SIGKILL while requests are
//! in flight, restart on the same data directory. Every create that was acknowledged with a 201
//! must survive with its values; nothing half-written may appear; the service must start
//! without a new default tenant and keep accepting writes in every dialect.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json as body, Value};

use crate::common::{json, Method, Server};

const THREADS: usize = 8;
const PER_THREAD: usize = 200;
/// Kill once this many creates have been acknowledged.
const KILL_AFTER: usize = 300;
const PROXY: &str = "sip.crash.example:5060";
const OUTBOUND_PROXY: &str = "sip:edge.crash.example;transport=tcp";

#[test]
fn acknowledged_creates_survive_sigkill_and_nothing_half_written_appears() {
    let mut server = Server::start();
    let tenant = server.tenant();
    let acknowledged: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let successes = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let client = server.client.clone();
            let url = server.url("/api/sip/registrations");
            let key = tenant.api_key.clone();
            let (acknowledged, successes, failures) = (&acknowledged, &successes, &failures);
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    let username = format!("crash-{thread}-{i}");
                    let sent = client
                        .post(&url)
                        .header("X-API-Key", &key)
                        .json(&body!({
                            "username": username,
                            "password": format!("pw-{thread}-{i}"),
                            "proxy": PROXY,
                            "outboundProxy": OUTBOUND_PROXY,
                            "authUser": format!("auth-{thread}-{i}"),
                        }))
                        .send();
                    // After the kill, requests fail (reset, refused, or a truncated body).
                    let Ok(response) = sent else { break };
                    let status = response.status().as_u16();
                    let Ok(text) = response.text() else { break };
                    if status != 201 {
                        failures.fetch_add(1, Ordering::SeqCst);
                        panic!("create answered {status} before the kill: {text}");
                    }
                    let value: Value = serde_json::from_str(&text).expect("201 body is JSON");
                    let id = value["registrationId"]
                        .as_str()
                        .expect("registrationId")
                        .to_owned();
                    assert_eq!(value["username"], username.as_str());
                    acknowledged.lock().unwrap().push((id, username));
                    successes.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // Wait (polling the counter) until enough creates were acknowledged, then kill the
        // server while the other threads still have requests in flight.
        let deadline = Instant::now() + Duration::from_secs(120);
        while successes.load(Ordering::SeqCst) < KILL_AFTER {
            assert_eq!(
                failures.load(Ordering::SeqCst),
                0,
                "a create failed before the kill"
            );
            assert!(
                Instant::now() < deadline,
                "creates too slow: {}",
                successes.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        server.kill();
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(acknowledged.len() >= KILL_AFTER);
    assert!(
        acknowledged.len() < THREADS * PER_THREAD,
        "the kill came after every request finished; nothing was in flight"
    );

    // --- restart on the same data directory ---
    let restarted = server.restart();
    assert!(
        restarted.default_tenant.is_none(),
        "no new default tenant after a restart"
    );
    assert!(
        !restarted
            .logs()
            .iter()
            .any(|line| line.contains("default tenant")),
        "{:#?}",
        restarted.logs()
    );

    // Every acknowledged create is there with its values.
    for (id, username) in &acknowledged {
        let path = format!("/api/sip/registrations/{id}");
        let (status, row) = json(
            restarted
                .ultravox(Method::GET, &path, &tenant)
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200, "acknowledged {id} lost: {row}");
        assert_eq!(row["username"], username.as_str());
        assert_complete(&row);
    }

    // Every stored row is complete; the total counts all of them, and covers the acknowledged.
    let mut listed = Vec::new();
    let mut next = Some(restarted.url("/api/sip/registrations?pageSize=1000"));
    let mut total = None;
    while let Some(url) = next {
        let response = restarted
            .client
            .get(&url)
            .header("X-API-Key", &tenant.api_key)
            .send()
            .unwrap();
        let (status, page) = json(response);
        assert_eq!(status, 200, "{page}");
        total = Some(page["total"].as_u64().expect("total"));
        listed.extend(page["results"].as_array().expect("results").iter().cloned());
        next = page["next"].as_str().map(str::to_owned);
    }
    let total = total.unwrap() as usize;
    assert!(
        total >= acknowledged.len(),
        "total {total} < {} acknowledged",
        acknowledged.len()
    );
    assert_eq!(listed.len(), total, "pages hold exactly `total` rows");
    let mut ids = HashSet::new();
    let mut usernames = HashSet::new();
    for row in &listed {
        assert_complete(row);
        assert!(
            ids.insert(row["registrationId"].as_str().unwrap().to_owned()),
            "duplicate id: {row}"
        );
        assert!(
            usernames.insert(row["username"].as_str().unwrap().to_owned()),
            "duplicate: {row}"
        );
    }
    eprintln!(
        "{} creates acknowledged before the kill, {total} rows after the restart",
        acknowledged.len()
    );
    for (id, _) in &acknowledged {
        assert!(ids.contains(id), "acknowledged {id} missing from the list");
    }

    // The service keeps working in every dialect with the pre-crash key.
    let (status, created) = json(
        restarted
            .vobiz(Method::POST, "/credentials", &tenant)
            .json(&body!({"username": "after-crash", "password": "after-crash-pw"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{created}");
    let (status, trunk) = json(
        restarted
            .dasha(Method::POST, "/api/v1/sip-credentials", &tenant)
            .json(&body!({"server": "sip.after.example"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{trunk}");
    let (status, number) = json(
        restarted
            .dasha(Method::POST, "/api/v1/sip-phone-numbers", &tenant)
            .json(&body!({"phoneNumber": "+14155550199", "credentialsId": trunk["id"], "registration": true}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{number}");
    let (status, row) = json(
        restarted
            .ultravox(Method::POST, "/api/sip/registrations", &tenant)
            .json(&body!({"username": "after-crash", "password": "pw", "proxy": PROXY}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{row}");
}

/// A row written by this test, all fields present and consistent with each other (a torn write
/// would show up as a missing or mismatched field).
fn assert_complete(row: &Value) {
    let object = row.as_object().expect("object");
    for field in [
        "registrationId",
        "created",
        "username",
        "proxy",
        "outboundProxy",
        "authUser",
        "successful",
    ] {
        assert!(object.contains_key(field), "{field} missing: {row}");
    }
    assert!(!object.contains_key("password"), "{row}");
    let id = row["registrationId"].as_str().expect("id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{row}");
    let created = row["created"].as_str().expect("created");
    assert!(
        created.ends_with('Z') && created.len() >= 20 && created.as_bytes()[10] == b'T',
        "{row}"
    );
    let username = row["username"].as_str().expect("username");
    let suffix = username
        .strip_prefix("crash-")
        .unwrap_or_else(|| panic!("unexpected row {row}"));
    assert_eq!(row["authUser"], format!("auth-{suffix}").as_str(), "{row}");
    assert_eq!(row["proxy"], PROXY, "{row}");
    assert_eq!(row["outboundProxy"], OUTBOUND_PROXY, "{row}");
    assert!(
        row["successful"].is_null() || row["successful"].is_boolean(),
        "{row}"
    );
}
