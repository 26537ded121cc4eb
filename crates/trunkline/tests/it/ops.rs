//! Operational surface: liveness and readiness, Prometheus metrics labelled by route template,
//! the OpenAPI document (snapshot-tested), graceful shutdown on SIGTERM, trunkline's own
//! `GET /v1/registrations/{id}` (states, auth styles, errors), how a status row written by the
//! engine is rendered in each dialect and in the registrations list (`GET /v1/registrations`:
//! counts, filters, windows), `GET /v1/account`, and the admin API behind its token.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::blocking::Response;
use serde_json::{json as body, Value};
use trunkline_core::model::{FailedBy, RegistrationState, RegistrationStatus, Transport};
use trunkline_core::{AccountId, Timestamp};
use trunkline_store::{MasterKey, Sealer};
use uuid::Uuid;

use crate::common::{json, Method, Server, ServerOptions, Tenant};

const PROBLEM_JSON: &str = "application/problem+json";

#[test]
fn health_readiness_and_metrics_labelled_by_route_template() {
    let server = Server::start();
    let tenant = server.tenant();
    for (path, expected) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = server.client.get(server.url(path)).send().unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(response.text().unwrap().trim(), expected, "{path}");
    }

    let id = create_registration(&server, &tenant, "metrics-user");
    let path = format!("/api/sip/registrations/{id}");
    let (status, _) = json(server.ultravox(Method::GET, &path, &tenant).send().unwrap());
    assert_eq!(status, 200);
    let unmatched = server
        .client
        .get(server.url("/no-such-route-7f3a/deeper"))
        .send()
        .unwrap();
    assert_eq!(unmatched.status().as_u16(), 404);

    let response = server.client.get(server.url("/metrics")).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().unwrap();
    let counter = text.lines().find(|line| {
        line.starts_with("http_requests_total{")
            && line.contains(r#"route="/api/sip/registrations/{registrationId}""#)
            && line.contains(r#"method="GET""#)
            && line.contains(r#"status="200""#)
    });
    let counter = counter.unwrap_or_else(|| panic!("no counter for the GET by id:\n{text}"));
    let value: f64 = counter.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= 1.0, "{counter}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("http_requests_total{")
                && line.contains(r#"route="/api/sip/registrations""#)
                && line.contains(r#"method="POST""#)
                && line.contains(r#"status="201""#)),
        "{text}"
    );
    assert!(
        text.lines().any(
            |line| line.starts_with("http_request_duration_seconds_bucket{")
                && line.contains(r#"route="/api/sip/registrations/{registrationId}""#)
                && line.contains("le=")
        ),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_count"),
        "{text}"
    );
    // Raw paths never become label values: the label space stays bounded.
    assert!(!text.contains(&id), "a raw id became a label:\n{text}");
    assert!(
        !text.contains("no-such-route-7f3a"),
        "a raw path became a label:\n{text}"
    );
}

#[test]
fn openapi_document_is_generated_snapshot_tested_and_covers_every_dialect() {
    let server = Server::start();
    let response = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let document: Value = response.json().unwrap();

    // Served from the code: identical to what the API crate generates.
    assert_eq!(
        document,
        serde_json::to_value(trunkline_api::openapi()).unwrap()
    );

    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/api/sip/registrations",
        "/api/sip/registrations/{registrationId}",
        "/api/v1/sip-credentials",
        "/api/v1/sip-credentials/{id}",
        "/api/v1/sip-phone-numbers",
        "/api/v1/sip-phone-numbers/{phoneNumber}",
        "/api/v1/account/{auth_id}/trunks/credentials",
        "/api/v1/account/{auth_id}/credentials",
        "/api/v1/account/{auth_id}/credentials/{id}",
        "/api/v1/account/{auth_id}/credentials/{id}/registrations",
        "/v1/registrations",
        "/v1/registrations/{id}",
        "/v1/account",
        "/v1/admin/tenants",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    for (path, verbs) in [
        ("/api/sip/registrations", &["get", "post"][..]),
        (
            "/api/sip/registrations/{registrationId}",
            &["get", "patch", "delete"],
        ),
        ("/api/v1/sip-credentials/{id}", &["get", "put", "delete"]),
        (
            "/api/v1/sip-phone-numbers/{phoneNumber}",
            &["get", "put", "delete"],
        ),
        (
            "/api/v1/account/{auth_id}/credentials/{id}",
            &["get", "put", "delete"],
        ),
    ] {
        for verb in verbs {
            assert!(paths[path].get(*verb).is_some(), "{verb} {path}");
        }
    }
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    assert_eq!(schemes["apiKeyAuth"]["type"], "apiKey");
    assert_eq!(schemes["apiKeyAuth"]["in"], "header");
    assert_eq!(schemes["apiKeyAuth"]["name"], "X-API-Key");
    assert_eq!(schemes["bearerAuth"]["type"], "http");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["authId"]["name"], "X-Auth-ID");
    assert_eq!(schemes["authToken"]["name"], "X-Auth-Token");
    assert!(schemes.contains_key("adminToken"));
    // Write-only secrets are documented as such and never as response fields.
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["SipRegistrationInput"]["properties"]["password"]["writeOnly"],
        true
    );
    assert!(schemas["SipRegistration"]["properties"]
        .get("password")
        .is_none());

    insta::assert_json_snapshot!("openapi", document);
}

#[test]
fn sigterm_drains_and_exits_successfully() {
    let mut server = Server::start();
    let tenant = server.tenant();
    create_registration(&server, &tenant, "before-shutdown");
    let url = server.url("/healthz");
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let logs = wait_for_log(&server, "stopped");
    let shutting_down = logs.iter().position(|line| line.contains("shutting down"));
    let stopped = logs.iter().position(|line| line.contains("stopped"));
    assert!(
        matches!((shutting_down, stopped), (Some(a), Some(b)) if a < b),
        "expected `shutting down` then `stopped`:\n{}",
        logs.join("\n")
    );
    assert!(
        server.client.get(&url).send().is_err(),
        "the port is closed after exit"
    );
    // A clean stop leaves a database the next start opens, with the data in it.
    let restarted = server.restart();
    let (status, page) = json(
        restarted
            .ultravox(Method::GET, "/api/sip/registrations", &tenant)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(page["total"], 1);
}

#[test]
fn registration_status_endpoint_states_auth_styles_and_errors() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("status-other");
    let id = create_registration(&server, &tenant, "status-user");
    let trunk = create_trunk(&server, &tenant);
    create_number(&server, &tenant, &trunk, "+14155550100", false);
    create_number(&server, &tenant, &trunk, "+14155550101", true);

    // Every dialect's key style works.
    let path = format!("/v1/registrations/{id}");
    let styles: [(&str, Response); 3] = [
        (
            "X-API-Key",
            server.ultravox(Method::GET, &path, &tenant).send().unwrap(),
        ),
        (
            "Bearer",
            server.dasha(Method::GET, &path, &tenant).send().unwrap(),
        ),
        (
            "X-Auth-ID + X-Auth-Token",
            own_with_auth_id(&server, &path, &tenant, &tenant.account_id),
        ),
    ];
    for (style, response) in styles {
        let (status, view) = json(response);
        assert_eq!(status, 200, "{style}: {view}");
        assert_status_keys(&view);
        assert_eq!(view["id"], id.as_str());
        assert_eq!(view["kind"], "ultravox");
        assert_eq!(view["state"], "pending", "{style}");
        assert_eq!(view["lastCode"], Value::Null);
        assert_eq!(view["failedBy"], Value::Null);
        assert_eq!(view["consecutiveFailures"], 0);
    }

    for (number, state) in [
        ("%2B14155550100", "disabled"),
        ("%2B14155550101", "pending"),
    ] {
        let (status, view) = json(
            server
                .dasha(Method::GET, &format!("/v1/registrations/{number}"), &tenant)
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200, "{view}");
        assert_status_keys(&view);
        assert_eq!(view["id"], number.replace("%2B", "+"));
        assert_eq!(view["kind"], "dasha");
        assert_eq!(view["state"], state, "{number}");
    }

    // Unknown ids, other tenants' ids and missing keys: problem details.
    let unknown = [
        format!("/v1/registrations/{}", Uuid::new_v4()),
        "/v1/registrations/%2B19995550000".to_owned(),
        "/v1/registrations/not-an-id".to_owned(),
    ];
    for path in &unknown {
        assert_problem(
            server.ultravox(Method::GET, path, &tenant).send().unwrap(),
            404,
        );
    }
    assert_problem(
        server.ultravox(Method::GET, &path, &other).send().unwrap(),
        404,
    );
    assert_problem(
        server
            .dasha(Method::GET, "/v1/registrations/%2B14155550101", &other)
            .send()
            .unwrap(),
        404,
    );
    assert_problem(server.client.get(server.url(&path)).send().unwrap(), 401);
    let wrong_key = Tenant {
        account_id: tenant.account_id.clone(),
        api_key: format!("{}x", tenant.api_key),
    };
    assert_problem(
        server
            .ultravox(Method::GET, &path, &wrong_key)
            .send()
            .unwrap(),
        401,
    );
    // X-Auth-ID naming another account than the key's.
    assert_problem(
        own_with_auth_id(&server, &path, &tenant, &other.account_id),
        401,
    );
}

#[test]
fn engine_status_is_rendered_in_every_dialect() {
    // The rows are written by hand here: no engine may overwrite them.
    let mut server = Server::start();
    let tenant = server.tenant();
    let ok_id = create_registration(&server, &tenant, "engine-ok");
    let failed_id = create_registration(&server, &tenant, "engine-failed");
    let trunk = create_trunk(&server, &tenant);
    create_number(&server, &tenant, &trunk, "+14155550110", true);
    create_number(&server, &tenant, &trunk, "+14155550111", true);
    create_number(&server, &tenant, &trunk, "+14155550112", false);
    assert!(server.terminate().success());

    // What the engine would write: one live binding, one rejected by the registrar.
    let now = Timestamp::now().micros();
    let second = 1_000_000;
    let registered = RegistrationStatus {
        state: RegistrationState::Registered,
        last_code: Some(200),
        last_phrase: Some("OK".into()),
        failed_by: None,
        last_attempt_at: Some(Timestamp::from_micros(now - 10 * second)),
        expires_at: Some(Timestamp::from_micros(now + 3_600 * second)),
        next_attempt_at: Some(Timestamp::from_micros(now + 3_000 * second)),
        consecutive_failures: 0,
        transport: Some(Transport::Udp),
        remote: Some("198.51.100.7:5060".into()),
        updated_at: Timestamp::from_micros(now - 9 * second),
    };
    let failed = RegistrationStatus {
        state: RegistrationState::FailedAuth,
        last_code: Some(401),
        last_phrase: Some("Unauthorized".into()),
        failed_by: Some(FailedBy::Remote),
        last_attempt_at: Some(Timestamp::from_micros(now - 5 * second)),
        expires_at: None,
        next_attempt_at: Some(Timestamp::from_micros(now + 3_600 * second)),
        consecutive_failures: 3,
        transport: Some(Transport::Tls),
        remote: Some("203.0.113.9:5061".into()),
        updated_at: Timestamp::from_micros(now - 4 * second),
    };
    let account = AccountId::parse(&tenant.account_id).unwrap();
    let key = read_master_key(server.data_dir());
    let url = server.database_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = trunkline_store::open(&url, Sealer::new(&key, &[]))
            .await
            .expect("open store");
        let ok_number = store
            .phone_number(&account, "+14155550110")
            .await
            .unwrap()
            .expect("number")
            .id;
        let failed_number = store
            .phone_number(&account, "+14155550111")
            .await
            .unwrap()
            .expect("number")
            .id;
        for (id, status) in [
            (Uuid::parse_str(&ok_id).unwrap(), &registered),
            (Uuid::parse_str(&failed_id).unwrap(), &failed),
            (ok_number, &registered),
            (failed_number, &failed),
        ] {
            store
                .put_registration_status(&account, id, status)
                .await
                .unwrap();
        }
        store.close().await;
    });

    let server = server.restart();
    let rfc = |t: Option<Timestamp>| t.map_or(Value::Null, |t| Value::from(t.to_rfc3339()));

    // Ultravox: `successful`.
    for (id, successful) in [(&ok_id, true), (&failed_id, false)] {
        let (status, row) = json(
            server
                .ultravox(
                    Method::GET,
                    &format!("/api/sip/registrations/{id}"),
                    &tenant,
                )
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200, "{row}");
        assert_eq!(row["successful"], successful, "{row}");
    }
    let (_, page) = json(
        server
            .ultravox(Method::GET, "/api/sip/registrations", &tenant)
            .send()
            .unwrap(),
    );
    let listed: Vec<(&str, &Value)> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["username"].as_str().unwrap(), &r["successful"]))
        .collect();
    assert_eq!(
        listed,
        [
            ("engine-ok", &Value::from(true)),
            ("engine-failed", &Value::from(false))
        ]
    );

    // Dasha: `registrationStatus`.
    let (status, number) = json(
        server
            .dasha(
                Method::GET,
                "/api/v1/sip-phone-numbers/%2B14155550110",
                &tenant,
            )
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{number}");
    assert_eq!(
        number["registrationStatus"],
        body!({
            "state": "Registered",
            "errorDescription": null,
            "sipResponseMessage": "200 OK",
            "lastUpdated": registered.updated_at.to_rfc3339(),
            "expiresAt": rfc(registered.expires_at),
        })
    );
    let (status, number) = json(
        server
            .dasha(
                Method::GET,
                "/api/v1/sip-phone-numbers/%2B14155550111",
                &tenant,
            )
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{number}");
    let summary = &number["registrationStatus"];
    assert_eq!(summary["state"], "Failed", "{number}");
    assert_eq!(summary["sipResponseMessage"], "401 Unauthorized");
    assert!(
        summary["errorDescription"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{number}"
    );
    assert_eq!(summary["lastUpdated"], failed.updated_at.to_rfc3339());
    assert_eq!(summary["expiresAt"], Value::Null);
    let (_, list) = json(
        server
            .dasha(Method::GET, "/api/v1/sip-phone-numbers", &tenant)
            .send()
            .unwrap(),
    );
    let states: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["registrationStatus"]["state"])
        .collect();
    assert_eq!(
        states,
        [
            &Value::from("Registered"),
            &Value::from("Failed"),
            &Value::Null
        ],
        "the third without registration"
    );

    // trunkline's own view: every field of the row.
    let mut views = BTreeMap::new();
    for (id, kind, status) in [
        (ok_id.clone(), "ultravox", &registered),
        (failed_id.clone(), "ultravox", &failed),
        ("%2B14155550110".to_owned(), "dasha", &registered),
        ("%2B14155550111".to_owned(), "dasha", &failed),
    ] {
        let (code, view) = json(
            server
                .ultravox(Method::GET, &format!("/v1/registrations/{id}"), &tenant)
                .send()
                .unwrap(),
        );
        assert_eq!(code, 200, "{view}");
        assert_eq!(
            view,
            body!({
                "id": id.replace("%2B", "+"),
                "kind": kind,
                "state": status.state.as_str(),
                "lastCode": status.last_code,
                "lastPhrase": status.last_phrase,
                "failedBy": status.failed_by.map(FailedBy::as_str),
                "lastAttemptAt": rfc(status.last_attempt_at),
                "expiresAt": rfc(status.expires_at),
                "nextAttemptAt": rfc(status.next_attempt_at),
                "consecutiveFailures": status.consecutive_failures,
                "transport": status.transport.map(Transport::as_str),
                "remote": status.remote,
            })
        );
        views.insert(id.replace("%2B", "+"), view);
    }
    let disabled = "+14155550112";
    let (_, view) = json(
        server
            .ultravox(Method::GET, "/v1/registrations/%2B14155550112", &tenant)
            .send()
            .unwrap(),
    );
    views.insert(disabled.to_owned(), view);
    assert_registration_list(&server, &tenant, &views, [&failed_id, &ok_id], &trunk);
}

/// `GET /v1/registrations` over what `engine_status_is_rendered_in_every_dialect` stored: each
/// item is the `/v1/registrations/{id}` body (`views`) plus what a person finds it by; failing
/// ones first; counts over the whole tenant whatever the filters; filters and windows; bad
/// parameters refused by name.
fn assert_registration_list(
    server: &Server,
    tenant: &Tenant,
    views: &BTreeMap<String, Value>,
    [failed_id, ok_id]: [&str; 2],
    trunk: &str,
) {
    let list = |query: &str| {
        let (status, list) = json(
            server
                .ultravox(Method::GET, &format!("/v1/registrations{query}"), tenant)
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200, "{query}: {list}");
        list
    };
    let ids = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let all = list("");
    assert_eq!(
        ids(&all),
        [
            failed_id,
            "+14155550111",
            ok_id,
            "+14155550110",
            "+14155550112"
        ],
        "failing first, then by creation: {all}"
    );
    let counts = body!({
        "disabled": 1, "pending": 0, "registering": 0, "authenticating": 0, "registered": 2,
        "unregistering": 0, "failed_auth": 2, "failed_timeout": 0, "failed_transport": 0,
        "failed_registrar": 0,
    });
    assert_eq!(all["counts"], counts);
    assert_eq!(
        (&all["total"], &all["offset"], &all["limit"]),
        (&body!(5), &body!(0), &body!(100))
    );
    for item in all["items"].as_array().unwrap() {
        let mut item = item.as_object().unwrap().clone();
        let id = item["id"].as_str().unwrap().to_owned();
        let created = item.remove("createdAt").unwrap();
        assert!(
            created.as_str().is_some_and(|t| t.ends_with('Z')),
            "{created}"
        );
        let found_by =
            ["user", "authUser", "registrar", "trunkId"].map(|k| item.remove(k).unwrap());
        let expected = if id.starts_with('+') {
            [
                body!(id),
                body!("trunk"),
                body!("sip.carrier.example"),
                body!(trunk),
            ]
        } else {
            let user = if id == ok_id {
                "engine-ok"
            } else {
                "engine-failed"
            };
            [
                body!(user),
                Value::Null,
                body!("sip.example.com"),
                Value::Null,
            ]
        };
        assert_eq!(found_by, expected, "{id}");
        assert_eq!(Value::Object(item), views[&id], "{id}: the single body");
    }

    let failed = list("?state=failed");
    assert_eq!(ids(&failed), [failed_id, "+14155550111"]);
    assert_eq!(
        (&failed["counts"], &failed["total"]),
        (&counts, &body!(2)),
        "counts whatever the filter"
    );
    assert_eq!(ids(&list("?state=disabled")), ["+14155550112"]);
    assert_eq!(ids(&list("?state=registered&q=110")), ["+14155550110"]);
    assert_eq!(ids(&list("?q=ENGINE-")), [failed_id, ok_id], "any case");
    assert_eq!(ids(&list("?q=%2B1415555011")).len(), 3);
    assert_eq!(ids(&list("?state=pending")), Vec::<String>::new());
    let window = list("?limit=2&offset=1");
    assert_eq!(ids(&window), ["+14155550111", ok_id]);
    assert_eq!(
        (&window["total"], &window["offset"], &window["limit"]),
        (&body!(5), &body!(1), &body!(2))
    );
    assert_eq!(ids(&list("?offset=5")), Vec::<String>::new());

    let long = "x".repeat(101);
    for (query, field) in [
        ("?state=nope", "state"),
        ("?state=", "state"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=ten", "limit"),
        ("?offset=-1", "offset"),
        (&format!("?q={long}")[..], "q"),
    ] {
        let response = server
            .ultravox(Method::GET, &format!("/v1/registrations{query}"), tenant)
            .send()
            .unwrap();
        let (status, problem) = json(response);
        assert_eq!(status, 400, "{query}: {problem}");
        assert!(problem["errors"].get(field).is_some(), "{query}: {problem}");
    }
    assert_problem(
        server
            .client
            .get(server.url("/v1/registrations"))
            .send()
            .unwrap(),
        401,
    );

    let other = server.create_tenant("list-other");
    let empty = list_of(server, &other);
    assert_eq!(empty["items"], body!([]), "another tenant's are not listed");
    assert!(
        empty["counts"]
            .as_object()
            .unwrap()
            .values()
            .all(|n| n == 0),
        "{empty}"
    );
}

fn list_of(server: &Server, tenant: &Tenant) -> Value {
    let (status, list) = json(
        server
            .dasha(Method::GET, "/v1/registrations", tenant)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{list}");
    list
}

#[test]
fn account_names_the_key_s_tenant() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("account-other");
    for who in [&tenant, &other] {
        let (status, account) = json(
            server
                .dasha(Method::GET, "/v1/account", who)
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200, "{account}");
        assert_eq!(account["accountId"], who.account_id.as_str());
        assert!(account["name"].is_string(), "{account}");
    }
    let (_, other_account) = json(
        server
            .ultravox(Method::GET, "/v1/account", &other)
            .send()
            .unwrap(),
    );
    assert_eq!(other_account["name"], "account-other");
    assert_problem(
        server.client.get(server.url("/v1/account")).send().unwrap(),
        401,
    );
}

#[test]
fn admin_api_creates_tenants_behind_the_admin_token() {
    const TOKEN: &str = "admin-token-for-tests-5c1d0e";
    let server = Server::start_with(ServerOptions {
        env: vec![("TRUNKLINE_ADMIN_TOKEN".into(), TOKEN.into())],
        ..ServerOptions::default()
    });
    let admin = |method: Method, path: &str, token: Option<&str>| {
        let request = server.client.request(method, server.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };

    let (status, issued) = json(
        admin(Method::POST, "/v1/admin/tenants", Some(TOKEN))
            .json(&body!({"name": "x"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{issued}");
    let keys: BTreeSet<&str> = issued
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["account_id", "api_key"]));
    let created = Tenant {
        account_id: issued["account_id"].as_str().unwrap().to_owned(),
        api_key: issued["api_key"].as_str().unwrap().to_owned(),
    };
    assert!(is_account_id(&created.account_id), "{issued}");

    // The new key works in the dialects, on an empty tenant of its own.
    let (status, page) = json(
        server
            .ultravox(Method::GET, "/api/sip/registrations", &created)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 0);
    create_registration(&server, &created, "admin-made");
    let (status, page) = json(
        server
            .vobiz(Method::GET, "/trunks/credentials", &created)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{page}");

    let (status, tenants) = json(
        admin(Method::GET, "/v1/admin/tenants", Some(TOKEN))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert!(
        tenants
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["account_id"] == created.account_id.as_str() && t["name"] == "x"),
        "{tenants}"
    );

    // Wrong or missing token: 401 problem details; nothing created.
    for token in [Some("admin-token-for-tests-WRONG"), None] {
        assert_problem(
            admin(Method::POST, "/v1/admin/tenants", token)
                .json(&body!({"name": "intruder"}))
                .send()
                .unwrap(),
            401,
        );
    }
    // The admin token is not an API key.
    let as_tenant = Tenant {
        account_id: created.account_id.clone(),
        api_key: TOKEN.to_owned(),
    };
    let (status, _) = json(
        server
            .ultravox(Method::GET, "/api/sip/registrations", &as_tenant)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 401);
    let (_, tenants) = json(
        admin(Method::GET, "/v1/admin/tenants", Some(TOKEN))
            .send()
            .unwrap(),
    );
    assert!(!tenants.to_string().contains("intruder"), "{tenants}");
    for line in server.logs() {
        assert!(!line.contains(TOKEN), "the admin token is logged: {line}");
        assert!(
            !line.contains(&created.api_key),
            "an issued key is logged: {line}"
        );
    }
}

#[test]
fn admin_api_is_absent_without_an_admin_token() {
    let server = Server::start();
    for token in ["anything", server.tenant().api_key.as_str()] {
        let response = server
            .client
            .post(server.url("/v1/admin/tenants"))
            .bearer_auth(token)
            .json(&body!({"name": "x"}))
            .send()
            .unwrap();
        assert_problem(response, 404);
    }
}

// --- helpers ---

fn create_registration(server: &Server, tenant: &Tenant, username: &str) -> String {
    let (status, row) = json(
        server
            .ultravox(Method::POST, "/api/sip/registrations", tenant)
            .json(&body!({"username": username, "password": "registration-pw", "proxy": "sip.example.com"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{row}");
    row["registrationId"].as_str().unwrap().to_owned()
}

fn create_trunk(server: &Server, tenant: &Tenant) -> String {
    let (status, trunk) = json(
        server
            .dasha(Method::POST, "/api/v1/sip-credentials", tenant)
            .json(&body!({"server": "sip.carrier.example", "authUser": "trunk", "authPassword": "trunk-pw"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{trunk}");
    trunk["id"].as_str().unwrap().to_owned()
}

fn create_number(server: &Server, tenant: &Tenant, trunk: &str, number: &str, registration: bool) {
    let (status, created) = json(
        server
            .dasha(Method::POST, "/api/v1/sip-phone-numbers", tenant)
            .json(&body!({"phoneNumber": number, "credentialsId": trunk, "registration": registration}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{created}");
    if registration {
        assert_eq!(
            created["registrationStatus"]["state"], "Pending",
            "{created}"
        );
    } else {
        assert_eq!(created["registrationStatus"], Value::Null, "{created}");
    }
}

fn own_with_auth_id(server: &Server, path: &str, tenant: &Tenant, auth_id: &str) -> Response {
    server
        .client
        .get(server.url(path))
        .header("X-Auth-ID", auth_id)
        .header("X-Auth-Token", &tenant.api_key)
        .send()
        .unwrap()
}

/// An RFC 9457 problem details response with this status.
fn assert_problem(response: Response, status: u16) {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (got, problem) = json(response);
    assert_eq!(got, status, "{problem}");
    assert!(
        content_type.starts_with(PROBLEM_JSON),
        "{content_type}: {problem}"
    );
    assert_eq!(problem["status"], status, "{problem}");
    assert!(
        problem["type"].is_string() && problem["title"].is_string(),
        "{problem}"
    );
}

fn assert_status_keys(view: &Value) {
    let keys: BTreeSet<&str> = view
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = BTreeSet::from([
        "id",
        "kind",
        "state",
        "lastCode",
        "lastPhrase",
        "failedBy",
        "lastAttemptAt",
        "expiresAt",
        "nextAttemptAt",
        "consecutiveFailures",
        "transport",
        "remote",
    ]);
    assert_eq!(keys, expected, "{view}");
}

fn is_account_id(text: &str) -> bool {
    text.strip_prefix("MA_").is_some_and(|rest| {
        rest.len() == 10
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

fn read_master_key(data_dir: &Path) -> MasterKey {
    let text = std::fs::read_to_string(data_dir.join("master.key")).expect("master.key");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .expect("base64");
    MasterKey::from_bytes(bytes.try_into().expect("32 bytes"))
}

/// The server's log once a line containing `needle` has arrived (stderr is read by a thread).
fn wait_for_log(server: &Server, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = server.logs();
        if logs.iter().any(|line| line.contains(needle)) {
            return logs;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needle:?}:\n{}",
            logs.join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
