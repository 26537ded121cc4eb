//! Ultravox dialect, `/api/sip/registrations`, over real HTTP:
//! - CRUD round trip: create (201, every field, `successful` null while no engine reports),
//!   get, PATCH partial (omitted fields kept, `null` clears the nullable ones, a password-only
//!   PATCH changes nothing visible), delete (204, then 404); the password never appears in any
//!   response;
//! - keyset pagination: a walk over 250 rows with inserts and deletes between pages, forwards via
//!   `next` and back via `previous`; `total`; an empty page past deleted rows; `pageSize` default
//!   and limits; garbled cursors; absolute links from the Host header or `TRUNKLINE_PUBLIC_URL`;
//! - tenant isolation and missing/unknown keys.

use std::collections::{BTreeSet, HashSet};

use base64::Engine as _;
use reqwest::blocking::Response;
use serde_json::{json, Value};

use crate::common::{json, Method, Server, ServerOptions, Tenant};

const LIST: &str = "/api/sip/registrations";
const FIELDS: [&str; 7] = [
    "registrationId",
    "created",
    "username",
    "proxy",
    "outboundProxy",
    "authUser",
    "successful",
];

fn item(id: &str) -> String {
    format!("{LIST}/{id}")
}

/// Status and body text, asserting that no password sent in this module leaks into it.
fn text(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body = response.text().expect("body");
    for secret in ["s3cret-pass", "n3w-pass-word", "pw-of-a-row"] {
        assert!(!body.contains(secret), "a password leaked: {body}");
    }
    (status, body)
}

fn parse(status: u16, body: &str) -> (u16, Value) {
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON ({status}): {body}"))
    };
    (status, value)
}

fn send(request: reqwest::blocking::RequestBuilder) -> (u16, Value) {
    let (status, body) = text(request.send().expect("request"));
    parse(status, &body)
}

/// A registration body: exactly the seed's fields, never a password, RFC 3339 UTC `created`.
fn assert_registration(value: &Value) {
    let keys: BTreeSet<&str> = value
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, FIELDS.into_iter().collect(), "{value}");
    uuid::Uuid::parse_str(value["registrationId"].as_str().unwrap()).expect("uuid id");
    assert_utc_timestamp(value["created"].as_str().unwrap());
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`.
fn assert_utc_timestamp(text: &str) {
    let bytes = text.as_bytes();
    let ok = bytes.len() >= 20
        && text.ends_with('Z')
        && bytes.iter().enumerate().take(19).all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        })
        && (bytes.len() == 20
            || (bytes[19] == b'.'
                && bytes.len() > 21
                && bytes[20..bytes.len() - 1].iter().all(u8::is_ascii_digit)));
    assert!(ok, "not an RFC 3339 UTC timestamp: {text}");
}

fn create(server: &Server, tenant: &Tenant, body: Value) -> Value {
    let (status, value) = send(server.ultravox(Method::POST, LIST, tenant).json(&body));
    assert_eq!(status, 201, "{value}");
    assert_registration(&value);
    value
}

fn create_row(server: &Server, tenant: &Tenant, n: usize) -> String {
    let row = create(
        server,
        tenant,
        json!({"username": format!("user{n}"), "password": "pw-of-a-row", "proxy": "sip.example.com"}),
    );
    row["registrationId"].as_str().unwrap().to_owned()
}

fn get(server: &Server, tenant: &Tenant, id: &str) -> (u16, Value) {
    send(server.ultravox(Method::GET, &item(id), tenant))
}

fn delete(server: &Server, tenant: &Tenant, id: &str) {
    let (status, body) = send(server.ultravox(Method::DELETE, &item(id), tenant));
    assert_eq!((status, body), (204, Value::Null));
}

/// GET of an absolute page URL (as found in `next`/`previous`).
fn page_at(server: &Server, tenant: &Tenant, url: &str) -> Value {
    let (status, page) = send(server.client.get(url).header("X-API-Key", &tenant.api_key));
    assert_eq!(status, 200, "{url}: {page}");
    let keys: BTreeSet<&str> = page
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["next", "previous", "results", "total"])
    );
    for row in page["results"].as_array().unwrap() {
        assert_registration(row);
    }
    page
}

fn ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["registrationId"].as_str().unwrap().to_owned())
        .collect()
}

/// Every id of the tenant in list order, in one page.
fn all_ids(server: &Server, tenant: &Tenant) -> Vec<String> {
    let page = page_at(
        server,
        tenant,
        &server.url(&format!("{LIST}?pageSize=1000")),
    );
    assert!(
        page["next"].is_null() && page["previous"].is_null(),
        "{page}"
    );
    let ids = ids(&page);
    assert_eq!(page["total"], ids.len());
    ids
}

/// A link must be absolute, on `base`, to the list, with a cursor.
fn assert_link(link: &Value, base: &str) -> String {
    let link = link
        .as_str()
        .unwrap_or_else(|| panic!("expected a link, got {link}"));
    assert!(
        link.starts_with(&format!("{base}{LIST}?cursor=")),
        "{link} is not on {base}"
    );
    link.to_owned()
}

#[test]
fn crud_round_trip_and_partial_updates() {
    let server = Server::start();
    let tenant = server.tenant();

    let created = create(
        &server,
        &tenant,
        json!({
            "username": "alice",
            "password": "s3cret-pass",
            "proxy": "sip.example.com:5060",
            "outboundProxy": "sip:edge.example.com;transport=tcp",
            "authUser": "alice-auth",
        }),
    );
    let id = created["registrationId"].as_str().unwrap().to_owned();
    assert_eq!(created["username"], "alice");
    assert_eq!(created["proxy"], "sip.example.com:5060");
    assert_eq!(
        created["outboundProxy"],
        "sip:edge.example.com;transport=tcp"
    );
    assert_eq!(created["authUser"], "alice-auth");
    assert_eq!(
        created["successful"],
        Value::Null,
        "no engine has attempted it yet"
    );

    // The minimal create: nullable fields come back null.
    let minimal = create(
        &server,
        &tenant,
        json!({"username": "bob", "password": "s3cret-pass", "proxy": "[2001:db8::1]:5061"}),
    );
    assert_eq!(minimal["outboundProxy"], Value::Null);
    assert_eq!(minimal["authUser"], Value::Null);
    assert_eq!(minimal["successful"], Value::Null);
    assert_ne!(minimal["registrationId"], created["registrationId"]);

    // Rejected creates name the field (DRF shape) and leave no row behind.
    for (body, field) in [
        (
            json!({"username": "c", "proxy": "sip.example.com"}),
            "password",
        ),
        (
            json!({"username": "c", "password": null, "proxy": "sip.example.com"}),
            "password",
        ),
        (
            json!({"password": "s3cret-pass", "proxy": "sip.example.com"}),
            "username",
        ),
        (json!({"username": "c", "password": "s3cret-pass"}), "proxy"),
        (
            json!({"username": "c", "password": "s3cret-pass", "proxy": "a b"}),
            "proxy",
        ),
        (
            json!({"username": "c", "password": "s3cret-pass", "proxy": format!("{}.example.com", "a".repeat(90))}),
            "proxy",
        ),
    ] {
        let (status, error) = send(server.ultravox(Method::POST, LIST, &tenant).json(&body));
        assert_eq!(status, 400, "{body} -> {error}");
        let names: Vec<&String> = error.as_object().unwrap().keys().collect();
        assert_eq!(names, [field], "{body} -> {error}");
    }
    assert_eq!(
        all_ids(&server, &tenant).len(),
        2,
        "a rejected create left a row"
    );

    let (status, fetched) = get(&server, &tenant, &id);
    assert_eq!((status, &fetched), (200, &created));

    // Listed too, identical, and still without a password.
    let listed = all_ids(&server, &tenant);
    assert_eq!(
        listed,
        [
            id.clone(),
            minimal["registrationId"].as_str().unwrap().to_owned()
        ]
    );

    let patch = |body: Value| -> Value {
        let (status, value) = send(
            server
                .ultravox(Method::PATCH, &item(&id), &tenant)
                .json(&body),
        );
        assert_eq!(status, 200, "{body} -> {value}");
        assert_registration(&value);
        let (_, again) = get(&server, &tenant, &id);
        assert_eq!(again, value, "GET after PATCH shows what PATCH returned");
        value
    };

    // One field: only that field changes.
    let mut expected = created.clone();
    let renamed = patch(json!({"username": "alice2"}));
    expected["username"] = json!("alice2");
    assert_eq!(renamed, expected);

    // Two fields at once, the others kept.
    let moved = patch(
        json!({"proxy": "sips:secure.example.com;transport=tls", "authUser": "alice-auth-2"}),
    );
    expected["proxy"] = json!("sips:secure.example.com;transport=tls");
    expected["authUser"] = json!("alice-auth-2");
    assert_eq!(moved, expected);

    // An empty PATCH changes nothing.
    assert_eq!(patch(json!({})), expected);

    // The password alone: nothing visible changes, and it is not echoed.
    assert_eq!(patch(json!({"password": "n3w-pass-word"})), expected);

    // `null` clears the nullable fields and keeps the rest.
    let cleared = patch(json!({"outboundProxy": null, "authUser": null}));
    expected["outboundProxy"] = Value::Null;
    expected["authUser"] = Value::Null;
    assert_eq!(cleared, expected);

    // ...and they can be set again.
    let reset = patch(json!({"outboundProxy": "edge.example.com:5080", "authUser": "again"}));
    expected["outboundProxy"] = json!("edge.example.com:5080");
    expected["authUser"] = json!("again");
    assert_eq!(reset, expected);
    assert_eq!(reset["created"], created["created"]);
    assert_eq!(reset["registrationId"], created["registrationId"]);

    // A rejected PATCH names the field and changes nothing, not even the valid parts.
    for (body, field) in [
        (json!({"username": null, "authUser": "ignored"}), "username"),
        (json!({"proxy": null}), "proxy"),
        (json!({"password": null}), "password"),
        (json!({"password": ""}), "password"),
        (
            json!({"proxy": "not a proxy", "username": "ignored"}),
            "proxy",
        ),
        (
            json!({"outboundProxy": "sip:x.example.com;transport=carrier-pigeon"}),
            "outboundProxy",
        ),
        (json!({"authUser": "a".repeat(61)}), "authUser"),
        (json!({"username": "a".repeat(61)}), "username"),
    ] {
        let (status, error) = send(
            server
                .ultravox(Method::PATCH, &item(&id), &tenant)
                .json(&body),
        );
        assert_eq!(status, 400, "{body} -> {error}");
        let names: Vec<&String> = error.as_object().unwrap().keys().collect();
        assert_eq!(names, [field], "{body} -> {error}");
        assert!(
            error[field].as_array().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
        assert_eq!(
            get(&server, &tenant, &id).1,
            expected,
            "{body} changed the row"
        );
    }

    delete(&server, &tenant, &id);
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = send(server.ultravox(method.clone(), &item(&id), &tenant));
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Not found."})),
            "{method}"
        );
    }
    let (status, body) = send(
        server
            .ultravox(Method::PATCH, &item(&id), &tenant)
            .json(&json!({"username": "x"})),
    );
    assert_eq!((status, body), (404, json!({"detail": "Not found."})));
    let after = page_at(&server, &tenant, &server.url(LIST));
    assert_eq!(ids(&after), [minimal["registrationId"].as_str().unwrap()]);
    assert_eq!(after["total"], 1);
}

#[test]
fn cursor_walk_is_stable_under_inserts_and_deletes() {
    let server = Server::start();
    let tenant = server.tenant();
    // Another tenant's rows must not count in this tenant's total.
    let other = server.create_tenant("other");
    for n in 0..3 {
        create_row(&server, &other, n);
    }
    for n in 0..250 {
        create_row(&server, &tenant, n);
    }
    let original = all_ids(&server, &tenant);
    assert_eq!(original.len(), 250);

    let mut live: HashSet<String> = original.iter().cloned().collect();
    let mut seen_set: HashSet<String> = HashSet::new();
    let mut seen: Vec<String> = Vec::new();
    let mut deleted_unseen: HashSet<String> = HashSet::new();
    let mut inserted: Vec<String> = Vec::new();
    let mut url = server.url(&format!("{LIST}?pageSize=40"));
    let mut pages = 0;
    let last_page = loop {
        pages += 1;
        assert!(pages < 30, "the walk does not end");
        let page = page_at(&server, &tenant, &url);
        assert_eq!(page["total"], live.len(), "page {pages}");
        if pages == 1 {
            assert_eq!(page["previous"], Value::Null);
        } else {
            assert_link(&page["previous"], &server.base);
        }
        let page_ids = ids(&page);
        for id in &page_ids {
            assert!(
                seen_set.insert(id.clone()),
                "{id} seen twice (page {pages})"
            );
            assert!(
                !deleted_unseen.contains(id),
                "{id} was deleted before it was seen"
            );
        }
        seen.extend(page_ids.iter().cloned());
        if page["next"].is_null() {
            break page;
        }
        let next = assert_link(&page["next"], &server.base);
        assert!(next.contains("pageSize=40"), "{next} drops the page size");
        assert_eq!(page_ids.len(), 40, "a page with a next link is full");

        // Delete unseen rows: the one right after the cursor, and two further on.
        let unseen: Vec<String> = original
            .iter()
            .filter(|id| live.contains(*id) && !seen_set.contains(*id))
            .cloned()
            .collect();
        for index in [0, 4, 17] {
            if let Some(id) = unseen.get(index) {
                delete(&server, &tenant, id);
                live.remove(id);
                deleted_unseen.insert(id.clone());
            }
        }
        // Delete seen rows: the cursor's own row (the page's last) and the page's first.
        for id in [page_ids.last().unwrap(), page_ids.first().unwrap()] {
            delete(&server, &tenant, id);
            live.remove(id);
        }
        // Insert new rows; they sort after everything.
        for _ in 0..2 {
            let id = create_row(&server, &tenant, 1000 + inserted.len());
            live.insert(id.clone());
            inserted.push(id);
        }
        url = next;
    };
    assert!(pages >= 6, "only {pages} pages");

    // Exactly the original order minus what was deleted unseen, then the inserts in order.
    let expected: Vec<String> = original
        .iter()
        .filter(|id| !deleted_unseen.contains(*id))
        .chain(inserted.iter())
        .cloned()
        .collect();
    assert_eq!(seen.len(), expected.len());
    assert_eq!(seen, expected);

    // Backwards from the last page: the surviving rows, in reverse.
    let current = all_ids(&server, &tenant);
    assert_eq!(current.len(), live.len());
    assert_eq!(current.iter().cloned().collect::<HashSet<_>>(), live);
    let mut backwards: Vec<String> = ids(&last_page).into_iter().rev().collect();
    let mut url = assert_link(&last_page["previous"], &server.base);
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 30, "the backward walk does not end");
        let page = page_at(&server, &tenant, &url);
        assert_eq!(page["total"], live.len());
        assert_link(&page["next"], &server.base);
        let page_ids = ids(&page);
        backwards.extend(page_ids.iter().rev().cloned());
        if page["previous"].is_null() {
            break;
        }
        assert_eq!(page_ids.len(), 40, "a page with a previous link is full");
        url = assert_link(&page["previous"], &server.base);
    }
    let reversed: Vec<String> = current.into_iter().rev().collect();
    assert_eq!(backwards, reversed);
}

#[test]
fn a_page_past_deleted_rows_is_empty_and_links_back() {
    let server = Server::start();
    let tenant = server.tenant();
    let rows: Vec<String> = (0..5).map(|n| create_row(&server, &tenant, n)).collect();
    let first = page_at(&server, &tenant, &server.url(&format!("{LIST}?pageSize=2")));
    assert_eq!(ids(&first), rows[..2]);
    let next = assert_link(&first["next"], &server.base);
    for id in &rows[2..] {
        delete(&server, &tenant, id);
    }
    let empty = page_at(&server, &tenant, &next);
    assert_eq!(empty["results"], json!([]));
    assert_eq!(empty["next"], Value::Null);
    assert_eq!(empty["total"], 2);
    let back = page_at(
        &server,
        &tenant,
        &assert_link(&empty["previous"], &server.base),
    );
    assert_eq!(ids(&back), rows[..2]);
    assert_eq!(back["previous"], Value::Null);
}

#[test]
fn page_size_default_limits_and_garbled_cursors() {
    let server = Server::start();
    let tenant = server.tenant();
    let rows: Vec<String> = (0..120).map(|n| create_row(&server, &tenant, n)).collect();

    // Default 100; the next link keeps the default (no pageSize in it).
    let first = page_at(&server, &tenant, &server.url(LIST));
    assert_eq!(ids(&first), rows[..100]);
    assert_eq!(first["total"], 120);
    assert_eq!(first["previous"], Value::Null);
    let next = assert_link(&first["next"], &server.base);
    assert!(!next.contains("pageSize"), "{next}");
    let second = page_at(&server, &tenant, &next);
    assert_eq!(ids(&second), rows[100..]);
    assert_eq!(second["next"], Value::Null);
    let previous = page_at(
        &server,
        &tenant,
        &assert_link(&second["previous"], &server.base),
    );
    assert_eq!(ids(&previous), rows[..100]);
    assert_eq!(previous["previous"], Value::Null);

    for (size, count) in [("1", 1), ("1000", 120), ("119", 119), ("120", 120)] {
        let page = page_at(
            &server,
            &tenant,
            &server.url(&format!("{LIST}?pageSize={size}")),
        );
        assert_eq!(ids(&page), rows[..count], "pageSize={size}");
        assert_eq!(page["next"].is_null(), count == 120, "pageSize={size}");
    }

    for size in ["0", "1001", "abc", "-1", "", "1.5", "99999999999999999999"] {
        let (status, body) = send(
            server
                .ultravox(Method::GET, LIST, &tenant)
                .query(&[("pageSize", size)]),
        );
        assert_eq!(status, 400, "pageSize={size:?}: {body}");
        let messages = body
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o["pageSize"].as_array());
        assert!(
            messages.is_some_and(|m| !m.is_empty() && m.iter().all(Value::is_string)),
            "pageSize={size:?}: {body}"
        );
    }

    let valid = next.split("cursor=").nth(1).unwrap().to_owned();
    let b64 = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let garbled = [
        "not-a-cursor".to_owned(),
        "!!!".to_owned(),
        b64("foo"),
        b64("fx123.not-a-uuid"),
        b64("qx123.00000000000000000000000000000000"),
        b64(&format!("fxabc.{}", uuid::Uuid::new_v4().simple())),
        valid[..valid.len() - 5].to_owned(),
        format!("{valid}==="),
        "A".repeat(300),
    ];
    for cursor in &garbled {
        let (status, body) = send(
            server
                .ultravox(Method::GET, LIST, &tenant)
                .query(&[("cursor", cursor)]),
        );
        assert_eq!(status, 400, "cursor={cursor:?}: {body}");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["detail"], "cursor={cursor:?}: {body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // The untouched cursor still works, so the 400s were about the damage.
    assert_eq!(ids(&page_at(&server, &tenant, &next)), rows[100..]);
}

#[test]
fn links_are_absolute_from_host_or_public_url() {
    // No public URL: the request's Host.
    let server = Server::start();
    let tenant = server.tenant();
    let rows: Vec<String> = (0..3).map(|n| create_row(&server, &tenant, n)).collect();
    assert!(
        server.base.starts_with("http://127.0.0.1:"),
        "{}",
        server.base
    );
    let first = page_at(&server, &tenant, &server.url(&format!("{LIST}?pageSize=2")));
    assert_eq!(ids(&first), rows[..2]);
    let next = assert_link(&first["next"], &server.base);
    assert!(next.ends_with("&pageSize=2"), "{next}");
    assert_eq!(ids(&page_at(&server, &tenant, &next)), rows[2..]);

    let (status, proxied) = send(
        server
            .ultravox(Method::GET, &format!("{LIST}?pageSize=2"), &tenant)
            .header(reqwest::header::HOST, "proxy.example.test:8443"),
    );
    assert_eq!(status, 200);
    assert_link(&proxied["next"], "http://proxy.example.test:8443");

    // A configured public URL wins over the Host header.
    let public = Server::start_with(ServerOptions {
        env: vec![(
            "TRUNKLINE_PUBLIC_URL".into(),
            "https://api.example.test".into(),
        )],
        ..Default::default()
    });
    let tenant = public.tenant();
    let public_rows: Vec<String> = (0..3).map(|n| create_row(&public, &tenant, n)).collect();
    let first = page_at(&public, &tenant, &public.url(&format!("{LIST}?pageSize=2")));
    assert_eq!(ids(&first), public_rows[..2]);
    let next = assert_link(&first["next"], "https://api.example.test");
    // Follow it on the real address: same path and query.
    let local = next.replacen("https://api.example.test", &public.base, 1);
    let second = page_at(&public, &tenant, &local);
    assert_eq!(ids(&second), public_rows[2..]);
    let previous = assert_link(&second["previous"], "https://api.example.test");
    let back = page_at(
        &public,
        &tenant,
        &previous.replacen("https://api.example.test", &public.base, 1),
    );
    assert_eq!(ids(&back), public_rows[..2]);
}

#[test]
fn tenants_are_isolated_and_keys_are_required() {
    let server = Server::start();
    let a = server.tenant();
    let b = server.create_tenant("tenant-b");
    let a_row = create(
        &server,
        &a,
        json!({"username": "alice", "password": "s3cret-pass", "proxy": "sip.example.com", "authUser": "x"}),
    );
    let a_id = a_row["registrationId"].as_str().unwrap().to_owned();
    let b_id = create_row(&server, &b, 1);
    let random = uuid::Uuid::new_v4().to_string();

    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let attempt = |id: &str| {
            let request = server.ultravox(method.clone(), &item(id), &b);
            let request = if method == Method::PATCH {
                request.json(&json!({"username": "mallory", "outboundProxy": null}))
            } else {
                request
            };
            send(request)
        };
        let foreign = attempt(&a_id);
        let never = attempt(&random);
        assert_eq!(
            foreign.0, 404,
            "{method} on another tenant's row: {}",
            foreign.1
        );
        assert_eq!(
            foreign, never,
            "{method}: another tenant's row must look like no row"
        );
    }
    // Nothing happened to A's row.
    assert_eq!(get(&server, &a, &a_id), (200, a_row.clone()));

    // Lists: each tenant sees only its own rows, and counts only those.
    let b_page = page_at(&server, &b, &server.url(LIST));
    assert_eq!(ids(&b_page), [b_id.as_str()]);
    assert_eq!(b_page["total"], 1);
    let a_page = page_at(&server, &a, &server.url(LIST));
    assert_eq!(ids(&a_page), [a_id.as_str()]);
    assert_eq!(a_page["total"], 1);

    // No key, or a key that is not one: 401 with a `detail`.
    let bad = Tenant {
        account_id: a.account_id.clone(),
        api_key: format!("{}x", a.api_key),
    };
    for request in [
        server.client.get(server.url(LIST)),
        server.client.get(server.url(&item(&a_id))),
        server.ultravox(Method::GET, &item(&a_id), &bad),
        server.ultravox(Method::DELETE, &item(&a_id), &bad),
        server.client.get(server.url(LIST)).bearer_auth(&a.api_key),
    ] {
        let (status, body) = send(request);
        assert_eq!(status, 401, "{body}");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["detail"], "{body}");
    }
    assert_eq!(
        json(
            server
                .ultravox(Method::GET, &item(&a_id), &a)
                .send()
                .unwrap()
        )
        .0,
        200
    );
}
