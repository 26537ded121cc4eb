//! Vobiz dialect over raw HTTP (the official SDK has its own tests):
//! - create: 201 with exactly the nine fields, realm `{account_id}.sip.localhost`, password the
//!   literal `<redacted>`; validation naming the field; duplicate usernames (409, per account);
//! - list `/trunks/credentials`: newest first, `limit`/`offset` with `meta`, past the end, the
//!   default and bounds of `limit` and `offset`;
//! - PUT is partial (absent fields stay), the username is immutable (same value accepted, another
//!   refused), rejected PUTs change nothing; delete (204, then 404);
//! - `…/credentials/{id}/registrations` (the live bindings, not paginated): empty with its
//!   `meta` for a new credential, whatever the query says; unknown, malformed and other
//!   tenants' ids and deleted credentials → 404 (registered devices are tested with the
//!   registrar);
//! - auth: `{auth_id}` of another account → 403 (every route), `X-Auth-ID` of another account
//!   or a missing or unknown token → 401; another tenant's credential id → the same 404 as a random id;
//! - every error body is exactly `{api_id (uuid), error (non-empty)}`.

use std::collections::BTreeSet;

use reqwest::blocking::{RequestBuilder, Response};
use serde_json::{json, Value};

use crate::common::{Method, Server, Tenant};

const FIELDS: [&str; 9] = [
    "id",
    "account_id",
    "username",
    "password",
    "realm",
    "enabled",
    "description",
    "created_at",
    "updated_at",
];
/// Passwords sent in this module; no response may carry one.
const PASSWORDS: [&str; 3] = ["supersecret1", "anotherpass1", "pw-of-a-credential"];

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// Status and JSON body; asserts no password leaked into the text.
fn send(request: RequestBuilder) -> (u16, Value) {
    let response: Response = request.send().expect("request");
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    for secret in PASSWORDS {
        assert!(!text.contains(secret), "a password leaked: {text}");
    }
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, body)
}

/// An error answer: exactly `{api_id, error}`; returns the message.
fn error(request: RequestBuilder, status: u16) -> String {
    let (got, body) = send(request);
    assert_eq!(got, status, "{body}");
    assert_eq!(keys(&body), BTreeSet::from(["api_id", "error"]), "{body}");
    uuid::Uuid::parse_str(body["api_id"].as_str().expect("api_id string")).expect("api_id uuid");
    let message = body["error"].as_str().expect("error string");
    assert!(!message.trim().is_empty(), "{body}");
    message.to_owned()
}

fn assert_utc_micros(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    let b = text.as_bytes();
    let shape = b.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(shape, "not RFC 3339 UTC with microseconds: {text}");
}

fn assert_credential(value: &Value, tenant: &Tenant) {
    assert_eq!(keys(value), FIELDS.into_iter().collect(), "{value}");
    uuid::Uuid::parse_str(value["id"].as_str().unwrap()).expect("uuid id");
    assert_eq!(value["account_id"], tenant.account_id.as_str());
    assert_eq!(value["password"], "<redacted>");
    assert_eq!(
        value["realm"],
        format!("{}.sip.localhost", tenant.account_id)
    );
    assert!(value["enabled"].is_boolean());
    assert!(value["description"].is_null() || value["description"].is_string());
    assert_utc_micros(&value["created_at"]);
    assert_utc_micros(&value["updated_at"]);
}

fn item(id: &Value) -> String {
    format!("/credentials/{}", id.as_str().expect("id"))
}

fn registrations(id: &Value) -> String {
    format!("{}/registrations", item(id))
}

fn create(server: &Server, tenant: &Tenant, body: Value) -> Value {
    let (status, created) = send(
        server
            .vobiz(Method::POST, "/credentials", tenant)
            .json(&body),
    );
    assert_eq!(status, 201, "{body} -> {created}");
    assert_credential(&created, tenant);
    created
}

fn create_user(server: &Server, tenant: &Tenant, username: &str) -> Value {
    create(
        server,
        tenant,
        json!({"username": username, "password": "pw-of-a-credential"}),
    )
}

fn get(server: &Server, tenant: &Tenant, id: &Value) -> Value {
    let (status, found) = send(server.vobiz(Method::GET, &item(id), tenant));
    assert_eq!(status, 200, "{found}");
    assert_credential(&found, tenant);
    found
}

fn list(server: &Server, tenant: &Tenant, query: &str) -> Value {
    let (status, page) =
        send(server.vobiz(Method::GET, &format!("/trunks/credentials{query}"), tenant));
    assert_eq!(status, 200, "{query}: {page}");
    assert_eq!(keys(&page), BTreeSet::from(["meta", "objects"]));
    assert_eq!(
        keys(&page["meta"]),
        BTreeSet::from(["limit", "offset", "total"])
    );
    for object in page["objects"].as_array().unwrap() {
        assert_credential(object, tenant);
    }
    page
}

fn ids(page: &Value) -> Vec<Value> {
    page["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].clone())
        .collect()
}

#[test]
fn create_and_get() {
    let server = Server::start();
    let tenant = server.tenant();

    let created = create(
        &server,
        &tenant,
        json!({"username": "alice_01", "password": "supersecret1", "description": "desk phone"}),
    );
    assert_eq!(created["username"], "alice_01");
    assert_eq!(created["enabled"], true, "enabled defaults to true");
    assert_eq!(created["description"], "desk phone");
    assert_eq!(created["created_at"], created["updated_at"]);
    assert_eq!(get(&server, &tenant, &created["id"]), created);

    let minimal = create(
        &server,
        &tenant,
        json!({"username": "B.o-b_2", "password": "12345678", "enabled": false, "unknown": 1}),
    );
    assert_eq!(minimal["description"], Value::Null);
    assert_eq!(minimal["enabled"], false);
    assert_ne!(minimal["id"], created["id"]);
    let longest = "x".repeat(64);
    create(
        &server,
        &tenant,
        json!({"username": longest, "password": "p".repeat(128)}),
    );

    // Each rejected create names the offending field and leaves nothing behind.
    for (body, field) in [
        (json!({"password": "supersecret1"}), "username"),
        (
            json!({"username": null, "password": "supersecret1"}),
            "username",
        ),
        (
            json!({"username": "", "password": "supersecret1"}),
            "username",
        ),
        (
            json!({"username": "has space", "password": "supersecret1"}),
            "username",
        ),
        (
            json!({"username": "x".repeat(65), "password": "supersecret1"}),
            "username",
        ),
        (json!({"username": "carol"}), "password"),
        (
            json!({"username": "carol", "password": "1234567"}),
            "password",
        ),
        (
            json!({"username": "carol", "password": "p".repeat(129)}),
            "password",
        ),
        (
            json!({"username": "carol", "password": "supersecret1", "enabled": "yes"}),
            "enabled",
        ),
    ] {
        let message = error(
            server
                .vobiz(Method::POST, "/credentials", &tenant)
                .json(&body),
            400,
        );
        assert!(
            message.contains(field),
            "{body}: {message:?} does not name {field}"
        );
    }
    assert_eq!(list(&server, &tenant, "")["meta"]["total"], 3);

    // Duplicate username: 409; the original is untouched.
    let duplicate = json!({"username": "alice_01", "password": "anotherpass1"});
    error(
        server
            .vobiz(Method::POST, "/credentials", &tenant)
            .json(&duplicate),
        409,
    );
    assert_eq!(get(&server, &tenant, &created["id"]), created);
    assert_eq!(list(&server, &tenant, "")["meta"]["total"], 3);
    // Usernames are unique per account, not across accounts.
    let other = server.create_tenant("other");
    let theirs = create_user(&server, &other, "alice_01");
    assert_ne!(theirs["realm"], created["realm"]);

    // Delete: 204, then 404 everywhere; the username is free again.
    let (status, body) = send(server.vobiz(Method::DELETE, &item(&created["id"]), &tenant));
    assert_eq!((status, body), (204, Value::Null));
    for request in [
        server.vobiz(Method::GET, &item(&created["id"]), &tenant),
        server.vobiz(Method::DELETE, &item(&created["id"]), &tenant),
        server
            .vobiz(Method::PUT, &item(&created["id"]), &tenant)
            .json(&json!({"description": "x"})),
    ] {
        error(request, 404);
    }
    let again = create_user(&server, &tenant, "alice_01");
    assert_ne!(again["id"], created["id"]);
    assert_eq!(get(&server, &other, &theirs["id"]), theirs);
}

#[test]
fn list_is_newest_first_with_limit_and_offset() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("other");
    create_user(&server, &other, "not_mine");
    let created: Vec<Value> = (0..22)
        .map(|n| create_user(&server, &tenant, &format!("user_{n:02}"))["id"].clone())
        .collect();
    let newest_first: Vec<Value> = created.iter().rev().cloned().collect();

    let page = list(&server, &tenant, "");
    assert_eq!(page["meta"], json!({"limit": 20, "offset": 0, "total": 22}));
    assert_eq!(ids(&page), newest_first[..20]);

    for (limit, offset, range) in [
        (5, 0, 0..5),
        (5, 5, 5..10),
        (5, 20, 20..22),
        (1, 21, 21..22),
        (10, 22, 22..22),
        (100, 500, 22..22),
        (100, 0, 0..22),
        (1, 0, 0..1),
    ] {
        let page = list(&server, &tenant, &format!("?limit={limit}&offset={offset}"));
        assert_eq!(
            ids(&page),
            newest_first[range],
            "limit={limit} offset={offset}"
        );
        assert_eq!(
            page["meta"],
            json!({"limit": limit, "offset": offset, "total": 22})
        );
    }
    let page = list(&server, &tenant, "?offset=18");
    assert_eq!(
        page["meta"],
        json!({"limit": 20, "offset": 18, "total": 22})
    );
    assert_eq!(ids(&page), newest_first[18..]);

    // A new credential goes to the front.
    let newest = create_user(&server, &tenant, "user_new")["id"].clone();
    let page = list(&server, &tenant, "?limit=2");
    assert_eq!(ids(&page), [newest, newest_first[0].clone()]);
    assert_eq!(page["meta"]["total"], 23);

    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("offset=abc", "offset"),
    ] {
        let message = error(
            server.vobiz(
                Method::GET,
                &format!("/trunks/credentials?{query}"),
                &tenant,
            ),
            400,
        );
        assert!(message.contains(parameter), "{query}: {message:?}");
    }
}

#[test]
fn put_is_partial_and_username_is_immutable() {
    let server = Server::start();
    let tenant = server.tenant();
    let created = create(
        &server,
        &tenant,
        json!({"username": "alice_01", "password": "supersecret1", "description": "desk"}),
    );
    let id = &created["id"];
    let put = |body: Value| -> Value {
        let (status, updated) = send(server.vobiz(Method::PUT, &item(id), &tenant).json(&body));
        assert_eq!(status, 200, "{body} -> {updated}");
        assert_credential(&updated, &tenant);
        assert_eq!(
            get(&server, &tenant, id),
            updated,
            "GET after PUT shows what PUT returned"
        );
        updated
    };

    let mut expected = created.clone();
    let mut last_update = created["updated_at"].clone();
    for (body, changes) in [
        (
            json!({"description": "front desk"}),
            json!({"description": "front desk"}),
        ),
        (json!({"enabled": false}), json!({"enabled": false})),
        (json!({"description": null}), json!({"description": null})),
        (
            json!({"enabled": true, "description": "back"}),
            json!({"enabled": true, "description": "back"}),
        ),
        (
            json!({"username": "alice_01", "password": "anotherpass1"}),
            json!({}),
        ),
        (json!({"password": "supersecret1"}), json!({})),
        (json!({}), json!({})),
    ] {
        let updated = put(body.clone());
        for (field, value) in changes.as_object().unwrap() {
            expected[field.as_str()] = value.clone();
        }
        expected["updated_at"] = updated["updated_at"].clone();
        assert_eq!(updated, expected, "{body}");
        assert!(
            updated["updated_at"].as_str() > last_update.as_str(),
            "{body}: updated_at must move"
        );
        last_update = updated["updated_at"].clone();
    }
    assert_eq!(expected["created_at"], created["created_at"]);
    assert_eq!(expected["username"], "alice_01");

    // Rejected PUTs name the field and change nothing, not even the valid parts.
    for (body, field) in [
        (
            json!({"username": "bob", "description": "ignored"}),
            "username",
        ),
        (json!({"username": null}), "username"),
        (json!({"password": "short", "enabled": false}), "password"),
        (json!({"password": null}), "password"),
        (json!({"enabled": null}), "enabled"),
        (json!({"description": 5}), "description"),
    ] {
        let message = error(
            server.vobiz(Method::PUT, &item(id), &tenant).json(&body),
            400,
        );
        assert!(message.contains(field), "{body}: {message:?}");
        assert_eq!(
            get(&server, &tenant, id),
            expected,
            "{body} changed the credential"
        );
    }
}

#[test]
fn registrations_list_the_live_bindings_of_a_credential() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("other");
    let created = create_user(&server, &tenant, "alice_01");
    let theirs = create_user(&server, &other, "alice_01");

    // No device registered yet: an empty list whose `meta` says it is all there is. The list
    // is not paginated, so `limit` and `offset` in the query change nothing.
    let empty = json!({"meta": {"limit": 0, "offset": 0, "total": 0}, "objects": []});
    for query in ["", "?limit=5&offset=3", "?limit=abc"] {
        let path = format!("{}{query}", registrations(&created["id"]));
        let (status, body) = send(server.vobiz(Method::GET, &path, &tenant));
        assert_eq!((status, &body), (200, &empty), "{query}");
    }
    let (status, body) = send(server.vobiz(Method::GET, &registrations(&theirs["id"]), &other));
    assert_eq!((status, body), (200, empty));

    // Another tenant's credential answers exactly like an id that never existed; an id that
    // cannot exist answers 404 like the other credential routes.
    let random = json!(uuid::Uuid::new_v4().to_string());
    let unknown = error(
        server.vobiz(Method::GET, &registrations(&random), &tenant),
        404,
    );
    let foreign = error(
        server.vobiz(Method::GET, &registrations(&theirs["id"]), &tenant),
        404,
    );
    assert_eq!(foreign, unknown);
    error(
        server.vobiz(
            Method::GET,
            "/credentials/not-a-uuid/registrations",
            &tenant,
        ),
        404,
    );
    error(
        server.vobiz(Method::POST, &registrations(&created["id"]), &tenant),
        405,
    );

    // A deleted credential has no registrations to list.
    let (status, _) = send(server.vobiz(Method::DELETE, &item(&created["id"]), &tenant));
    assert_eq!(status, 204);
    error(
        server.vobiz(Method::GET, &registrations(&created["id"]), &tenant),
        404,
    );
}

#[test]
fn auth_and_tenant_isolation() {
    let server = Server::start();
    let a = server.tenant();
    let b = server.create_tenant("tenant-b");
    let a_cred = create_user(&server, &a, "alice_01");
    let b_cred = create_user(&server, &b, "bob_01");

    // `{auth_id}` of another (existing) account, with A's valid headers: 403 for every route.
    let as_a_on = |method: Method, path: &str| {
        server
            .client
            .request(
                method,
                server.url(&format!("/api/v1/account/{}{path}", b.account_id)),
            )
            .header("X-Auth-ID", &a.account_id)
            .header("X-Auth-Token", &a.api_key)
    };
    let routes = [
        (Method::GET, "/trunks/credentials".to_owned()),
        (Method::POST, "/credentials".to_owned()),
        (Method::GET, item(&b_cred["id"])),
        (Method::PUT, item(&b_cred["id"])),
        (Method::DELETE, item(&b_cred["id"])),
        (Method::GET, item(&a_cred["id"])),
        (Method::GET, registrations(&b_cred["id"])),
    ];
    for (method, path) in &routes {
        let body =
            json!({"username": "intruder", "password": "pw-of-a-credential", "description": "x"});
        error(as_a_on(method.clone(), path).json(&body), 403);
    }
    assert_eq!(get(&server, &b, &b_cred["id"]), b_cred);
    assert_eq!(list(&server, &b, "")["meta"]["total"], 1);
    assert_eq!(list(&server, &a, "")["meta"]["total"], 1);

    // X-Auth-ID naming another account with A's token: 401 (whichever account the path names).
    for account in [&a.account_id, &b.account_id] {
        let request = server
            .client
            .get(server.url(&format!("/api/v1/account/{account}/trunks/credentials")))
            .header("X-Auth-ID", &b.account_id)
            .header("X-Auth-Token", &a.api_key);
        error(request, 401);
    }
    // Missing or unknown credentials: 401.
    let url = server.url(&format!(
        "/api/v1/account/{}/trunks/credentials",
        a.account_id
    ));
    let item_url = server.url(&format!(
        "/api/v1/account/{}{}",
        a.account_id,
        item(&a_cred["id"])
    ));
    for request in [
        server.client.get(&url),
        server.client.get(&url).header("X-Auth-ID", &a.account_id),
        server.client.get(&url).header("X-Auth-Token", &a.api_key),
        server
            .client
            .get(&url)
            .header("X-Auth-ID", &a.account_id)
            .header("X-Auth-Token", format!("{}x", a.api_key)),
        server.client.get(&url).bearer_auth(&a.api_key),
        server
            .client
            .delete(&item_url)
            .header("X-Auth-ID", &a.account_id),
    ] {
        error(request, 401);
    }
    assert_eq!(get(&server, &a, &a_cred["id"]), a_cred);

    // B naming A's credential id on B's own path: the same 404 as an id that never existed.
    let random = json!(uuid::Uuid::new_v4().to_string());
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let attempt = |id: &Value| {
            let mut request = server.vobiz(method.clone(), &item(id), &b);
            if method == Method::PUT {
                request = request.json(&json!({"description": "mine now", "enabled": false}));
            }
            error(request, 404)
        };
        assert_eq!(attempt(&a_cred["id"]), attempt(&random), "{method}");
    }
    error(
        server.vobiz(Method::GET, "/credentials/not-a-uuid", &b),
        404,
    );
    assert_eq!(get(&server, &a, &a_cred["id"]), a_cred);
    assert_eq!(ids(&list(&server, &b, "")), [b_cred["id"].clone()]);
    assert_eq!(ids(&list(&server, &a, "")), [a_cred["id"].clone()]);
}

#[test]
fn errors_outside_handlers_keep_the_vobiz_shape() {
    let server = Server::start();
    let tenant = server.tenant();
    let cred = create_user(&server, &tenant, "alice_01");
    let cases = [
        (
            server
                .vobiz(Method::PATCH, &item(&cred["id"]), &tenant)
                .json(&json!({})),
            405,
        ),
        (server.vobiz(Method::GET, "/no/such/route", &tenant), 404),
        (
            server
                .vobiz(Method::POST, "/credentials", &tenant)
                .header("Content-Type", "text/plain")
                .body(r#"{"username": "u_1", "password": "pw-of-a-credential"}"#),
            415,
        ),
        (
            server
                .vobiz(Method::POST, "/credentials", &tenant)
                .header("Content-Type", "application/json")
                .body("{\"username\": "),
            400,
        ),
    ];
    let mut api_ids = BTreeSet::new();
    for (request, status) in cases {
        let (got, body) = send(request);
        assert_eq!(got, status, "{body}");
        assert_eq!(keys(&body), BTreeSet::from(["api_id", "error"]), "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.trim().is_empty()),
            "{body}"
        );
        let api_id = body["api_id"].as_str().unwrap().to_owned();
        uuid::Uuid::parse_str(&api_id).expect("api_id uuid");
        assert!(api_ids.insert(api_id), "api_id repeated: {body}");
    }
    assert_eq!(list(&server, &tenant, "")["meta"]["total"], 1);
}
