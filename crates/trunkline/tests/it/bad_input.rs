//! Bad input, table-driven, for all three dialects.
//!
//! Every write endpoint (Ultravox `POST`/`PATCH /api/sip/registrations`, Dasha `POST`/`PUT`
//! `/api/v1/sip-credentials` and `/api/v1/sip-phone-numbers`, Vobiz `POST`/`PUT
//! /api/v1/account/{id}/credentials`) is fed a table of broken bodies: bad JSON syntax, the wrong
//! top-level type, the wrong content type, an oversized body, wrong field types, missing and
//! `null` required fields, over-long and blank strings, control characters, bad enums and bad SIP
//! addresses. Each case must get its precise status *and* the dialect's own error body (Ultravox:
//! `{"field": [..]}` naming the field, else `{"detail": ..}`; Dasha: `application/problem+json`
//! with `type`, `title`, `status`, `detail` and, for validation, `errors.{field}`; Vobiz: exactly
//! `{"api_id": uuid, "error": ..}`), never a 5xx, and must leave nothing written: the list total is
//! compared before and after every rejected create, the object itself (GET) before and after every
//! rejected update. A few accepted forms per field prove that the validator is not simply refusing
//! everything. Then list query parameters, path ids, authentication, methods, unknown paths, and
//! a burst of concurrent garbage.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::thread;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::blocking::{Body, RequestBuilder, Response};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{Method, Server, Tenant};

// --- the dialects and their collections -----------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Ultravox,
    Dasha,
    Vobiz,
}

impl Dialect {
    /// A request with this dialect's auth headers; Vobiz paths are relative to the account.
    fn request(
        self,
        server: &Server,
        method: Method,
        path: &str,
        tenant: &Tenant,
    ) -> RequestBuilder {
        match self {
            Dialect::Ultravox => server.ultravox(method, path, tenant),
            Dialect::Dasha => server.dasha(method, path, tenant),
            Dialect::Vobiz => server.vobiz(method, path, tenant),
        }
    }

    /// The same request without any auth header.
    fn anonymous(
        self,
        server: &Server,
        method: Method,
        path: &str,
        tenant: &Tenant,
    ) -> RequestBuilder {
        server
            .client
            .request(method, server.url(&self.absolute(path, tenant)))
    }

    fn absolute(self, path: &str, tenant: &Tenant) -> String {
        match self {
            Dialect::Vobiz => format!("/api/v1/account/{}{path}", tenant.account_id),
            _ => path.to_owned(),
        }
    }
}

#[derive(Clone, Copy)]
enum Verb {
    Patch,
    Put,
}

impl Verb {
    fn method(self) -> Method {
        match self {
            Verb::Patch => Method::PATCH,
            Verb::Put => Method::PUT,
        }
    }
}

/// One resource collection of one dialect.
#[derive(Clone, Copy)]
struct Collection {
    dialect: Dialect,
    /// Where `POST` creates.
    create: &'static str,
    /// Where `GET` lists.
    list: &'static str,
    /// An object's path is this plus its key.
    object: &'static str,
    update: Verb,
    /// The response field that holds the object's key.
    key: &'static str,
}

const REGISTRATIONS: Collection = Collection {
    dialect: Dialect::Ultravox,
    create: "/api/sip/registrations",
    list: "/api/sip/registrations",
    object: "/api/sip/registrations/",
    update: Verb::Patch,
    key: "registrationId",
};

const TRUNKS: Collection = Collection {
    dialect: Dialect::Dasha,
    create: "/api/v1/sip-credentials",
    list: "/api/v1/sip-credentials",
    object: "/api/v1/sip-credentials/",
    update: Verb::Put,
    key: "id",
};

const NUMBERS: Collection = Collection {
    dialect: Dialect::Dasha,
    create: "/api/v1/sip-phone-numbers",
    list: "/api/v1/sip-phone-numbers",
    object: "/api/v1/sip-phone-numbers/",
    update: Verb::Put,
    key: "phoneNumber",
};

const CREDENTIALS: Collection = Collection {
    dialect: Dialect::Vobiz,
    create: "/credentials",
    list: "/trunks/credentials",
    object: "/credentials/",
    update: Verb::Put,
    key: "id",
};

const ALL: [Collection; 4] = [REGISTRATIONS, TRUNKS, NUMBERS, CREDENTIALS];

impl Collection {
    fn object_path(&self, key: &str) -> String {
        format!("{}{key}", self.object)
    }

    /// The tenant's total as the list endpoint reports it.
    fn total(&self, server: &Server, tenant: &Tenant) -> u64 {
        let reply = read(
            self.dialect
                .request(server, Method::GET, self.list, tenant)
                .send()
                .expect("list"),
        );
        assert_eq!(reply.status, 200, "{:?} list: {}", self.dialect, reply.text);
        let total = match self.dialect {
            Dialect::Ultravox => &reply.body["total"],
            Dialect::Dasha => &reply.body["totalCount"],
            Dialect::Vobiz => &reply.body["meta"]["total"],
        };
        total
            .as_u64()
            .unwrap_or_else(|| panic!("no total in {}", reply.text))
    }

    /// The object as GET shows it, minus what the engine changes on its own.
    fn snapshot(&self, server: &Server, tenant: &Tenant, key: &str) -> Value {
        let reply = read(
            self.dialect
                .request(server, Method::GET, &self.object_path(key), tenant)
                .send()
                .expect("get"),
        );
        assert_eq!(
            reply.status, 200,
            "{:?} get {key}: {}",
            self.dialect, reply.text
        );
        let mut body = reply.body;
        if let Some(object) = body.as_object_mut() {
            object.remove("successful");
            object.remove("registrationStatus");
        }
        body
    }

    /// Creates an object that must be accepted; returns its key.
    fn create(&self, server: &Server, tenant: &Tenant, body: &Value) -> String {
        let reply = read(
            self.dialect
                .request(server, Method::POST, self.create, tenant)
                .json(body)
                .send()
                .expect("create"),
        );
        assert_eq!(
            reply.status, 201,
            "{:?} create {body}: {}",
            self.dialect, reply.text
        );
        reply.body[self.key].as_str().expect("key").to_owned()
    }
}

// --- responses and what they must look like ---------------------------------------------------

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    text: String,
    /// `Null` when the body is not JSON.
    body: Value,
}

fn read(response: Response) -> Reply {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        content_type,
        text,
        body,
    }
}

/// What the error body must say besides its status.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// A validation error about exactly this field.
    Field(&'static str),
    /// A validation error about exactly these fields.
    Fields(&'static [&'static str]),
    /// A validation error about the body as a whole (not an object): Ultravox
    /// `non_field_errors`, Dasha `errors.$`.
    NotAnObject,
    /// An error that is not about fields: Ultravox `{"detail"}`, Dasha without `errors` (except
    /// that a 400 may carry them), Vobiz `error`.
    Detail,
}

impl Want {
    fn fields(self) -> Option<BTreeSet<&'static str>> {
        match self {
            Want::Field(field) => Some([field].into()),
            Want::Fields(fields) => Some(fields.iter().copied().collect()),
            Want::NotAnObject | Want::Detail => None,
        }
    }
}

/// Checks status and the dialect's error body; the error names what is wrong.
fn check(dialect: Dialect, reply: &Reply, status: u16, want: Want) -> Result<(), String> {
    let fail = |why: &str| {
        Err(format!(
            "{why}; got {} [{}] {}",
            reply.status, reply.content_type, reply.text
        ))
    };
    if reply.status != status {
        return fail(&format!("expected status {status}"));
    }
    let Some(object) = reply.body.as_object() else {
        return fail("error body is not a JSON object");
    };
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    let non_empty_string = |v: &Value| v.as_str().is_some_and(|s| !s.trim().is_empty());
    let message_lists = |map: &serde_json::Map<String, Value>| {
        map.values().all(|v| {
            v.as_array()
                .is_some_and(|list| !list.is_empty() && list.iter().all(non_empty_string))
        })
    };
    match dialect {
        Dialect::Ultravox => {
            if !reply.content_type.starts_with("application/json") {
                return fail("Ultravox errors are application/json");
            }
            match want {
                Want::Detail => {
                    if keys != BTreeSet::from(["detail"]) || !non_empty_string(&object["detail"]) {
                        return fail("expected exactly {\"detail\": \"...\"}");
                    }
                }
                Want::NotAnObject => {
                    if keys != BTreeSet::from(["non_field_errors"]) || !message_lists(object) {
                        return fail("expected exactly {\"non_field_errors\": [\"...\"]}");
                    }
                }
                Want::Field(_) | Want::Fields(_) => {
                    let expected = want.fields().unwrap();
                    if keys != expected || !message_lists(object) {
                        return fail(&format!(
                            "expected exactly {expected:?} as field -> [messages]"
                        ));
                    }
                }
            }
        }
        Dialect::Dasha => {
            if !reply.content_type.starts_with("application/problem+json") {
                return fail("Dasha errors are application/problem+json");
            }
            if !object
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.starts_with("https://"))
            {
                return fail("problem `type` must be a URI");
            }
            if !object.get("title").is_some_and(non_empty_string) {
                return fail("problem `title` missing");
            }
            if object.get("status").and_then(Value::as_u64) != Some(u64::from(status)) {
                return fail("problem `status` must repeat the HTTP status");
            }
            if !object.get("detail").is_some_and(non_empty_string) {
                return fail("problem `detail` missing");
            }
            let errors = object.get("errors");
            match want {
                Want::Detail => {
                    if status != 400 && errors.is_some() {
                        return fail("`errors` appears on 400 only");
                    }
                    if errors.is_some_and(|e| !e.as_object().is_some_and(&message_lists)) {
                        return fail("`errors` must map fields to messages");
                    }
                }
                Want::NotAnObject | Want::Field(_) | Want::Fields(_) => {
                    let expected = want.fields().unwrap_or_else(|| ["$"].into());
                    let Some(errors) = errors.and_then(Value::as_object) else {
                        return fail("validation problem without `errors`");
                    };
                    let names: BTreeSet<&str> = errors.keys().map(String::as_str).collect();
                    if names != expected || !message_lists(errors) {
                        return fail(&format!("expected `errors` about exactly {expected:?}"));
                    }
                }
            }
        }
        Dialect::Vobiz => {
            if !reply.content_type.starts_with("application/json") {
                return fail("Vobiz errors are application/json");
            }
            if keys != BTreeSet::from(["api_id", "error"]) {
                return fail("expected exactly {api_id, error}");
            }
            if object["api_id"]
                .as_str()
                .is_none_or(|id| Uuid::try_parse(id).is_err())
            {
                return fail("api_id must be a uuid");
            }
            if !non_empty_string(&object["error"]) {
                return fail("error must be a non-empty string");
            }
            let error = object["error"].as_str().unwrap();
            if let Some(fields) = want.fields() {
                if let Some(missing) = fields.iter().find(|f| !error.contains(**f)) {
                    return fail(&format!("error must name `{missing}`"));
                }
            }
            if error.starts_with(':') {
                return fail("error starts with a bare colon");
            }
        }
    }
    Ok(())
}

/// Fails with every collected problem at once.
fn assert_clean(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// --- cases ------------------------------------------------------------------------------------

/// One bad request body and how it must be answered.
struct Case {
    name: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// Sent with chunked transfer encoding (no `Content-Length`).
    chunked: bool,
    status: u16,
    want: Want,
}

const JSON: Option<&str> = Some("application/json");

/// A JSON body answered with 400 as `want` says.
fn bad(name: impl Into<String>, body: Value, want: Want) -> Case {
    raw(name, JSON, body.to_string(), 400, want)
}

fn raw(
    name: impl Into<String>,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    want: Want,
) -> Case {
    Case {
        name: name.into(),
        content_type,
        body: body.into(),
        chunked: false,
        status,
        want,
    }
}

/// `base` with `field` set to `value`.
fn with(base: &Value, field: &str, value: Value) -> Value {
    let mut body = base.clone();
    body[field] = value;
    body
}

/// `base` without `field`.
fn without(base: &Value, field: &str) -> Value {
    let mut body = base.clone();
    body.as_object_mut().unwrap().remove(field);
    body
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

/// A valid host name of exactly `n` characters: two labels (each within the 63-character
/// limit) and `.com`.
fn host_of_len(n: usize) -> String {
    assert!((56..=118).contains(&n));
    format!("{}.{}.com", "h".repeat(50), "k".repeat(n - 55))
}

/// The largest accepted request body.
const BODY_LIMIT: usize = 64 * 1024;

/// `valid` plus an ignored `padding` field, `len` bytes long as JSON text.
fn padded(valid: &Value, len: usize) -> Value {
    let bare = with(valid, "padding", json!("")).to_string().len();
    let body = with(valid, "padding", Value::from("p".repeat(len - bare)));
    assert_eq!(body.to_string().len(), len);
    body
}

/// Cases every JSON endpoint must refuse the same way. `valid` is a body that would be
/// accepted; `text_field` a string field of it.
fn body_cases(valid: &Value, text_field: &'static str) -> Vec<Case> {
    let valid_text = valid.to_string();
    let huge = with(valid, "description", Value::from("x".repeat(70 * 1024))).to_string();
    let mut huge_chunked = raw(
        "70 KiB body, chunked",
        JSON,
        huge.clone(),
        413,
        Want::Detail,
    );
    huge_chunked.chunked = true;
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let mut cases = vec![
        raw("malformed JSON", JSON, "{\"username\":", 400, Want::Detail),
        raw("unclosed object", JSON, "{", 400, Want::Detail),
        raw(
            "trailing garbage",
            JSON,
            format!("{valid_text} garbage"),
            400,
            Want::Detail,
        ),
        raw(
            "two objects",
            JSON,
            format!("{valid_text}{valid_text}"),
            400,
            Want::Detail,
        ),
        raw(
            "trailing comma",
            JSON,
            valid_text.replacen('}', ",}", 1),
            400,
            Want::Detail,
        ),
        raw(
            "single quotes",
            JSON,
            "{'username': 'alice'}",
            400,
            Want::Detail,
        ),
        raw("empty body", JSON, "", 400, Want::Detail),
        raw("whitespace body", JSON, "  \n ", 400, Want::Detail),
        raw(
            "invalid UTF-8",
            JSON,
            b"{\"username\": \"\xff\xfe\"}".to_vec(),
            400,
            Want::Detail,
        ),
        raw(
            "lone surrogate escape",
            JSON,
            format!("{{\"{text_field}\": \"\\ud800\"}}"),
            400,
            Want::Detail,
        ),
        raw("nesting 5000 deep", JSON, nested, 400, Want::Detail),
        bad("empty array", json!([]), Want::NotAnObject),
        bad(
            "positional array of the fields",
            Value::Array(valid.as_object().unwrap().values().cloned().collect()),
            Want::NotAnObject,
        ),
        bad("array of the object", json!([valid]), Want::NotAnObject),
        bad("string", json!("username"), Want::NotAnObject),
        bad("number", json!(42), Want::NotAnObject),
        bad("boolean", json!(true), Want::NotAnObject),
        bad("null", Value::Null, Want::NotAnObject),
        raw(
            "text/plain",
            Some("text/plain"),
            valid_text.clone(),
            415,
            Want::Detail,
        ),
        raw(
            "no content type",
            None,
            valid_text.clone(),
            415,
            Want::Detail,
        ),
        raw(
            "form encoded",
            Some("application/x-www-form-urlencoded"),
            "username=alice&password=secret",
            415,
            Want::Detail,
        ),
        raw(
            "text/json",
            Some("text/json"),
            valid_text.clone(),
            415,
            Want::Detail,
        ),
        raw(
            "application/xml",
            Some("application/xml"),
            "<a/>",
            415,
            Want::Detail,
        ),
        raw("70 KiB body", JSON, huge.clone(), 413, Want::Detail),
        raw(
            "one byte over 64 KiB",
            JSON,
            padded(valid, BODY_LIMIT + 1).to_string(),
            413,
            Want::Detail,
        ),
        huge_chunked,
        raw(
            "70 KiB body as text/plain",
            Some("text/plain"),
            huge,
            415,
            Want::Detail,
        ),
    ];
    cases.push(bad(
        format!("NUL in {text_field}"),
        with(valid, text_field, json!("a\u{0}b")),
        Want::Field(text_field),
    ));
    cases
}

/// For each `(field, value)`: `valid` with `field` set to `value` is a 400 about `field`.
fn field_cases(valid: &Value, label: &str, items: &[(&'static str, Value)]) -> Vec<Case> {
    items
        .iter()
        .map(|(field, value)| {
            let shown: String = value.to_string().chars().take(40).collect();
            bad(
                format!("{label} {field}={shown}"),
                with(valid, field, value.clone()),
                Want::Field(field),
            )
        })
        .collect()
}

/// Sends one case.
fn send(
    server: &Server,
    dialect: Dialect,
    method: Method,
    path: &str,
    tenant: &Tenant,
    case: &Case,
) -> Reply {
    let mut request = dialect.request(server, method, path, tenant);
    if let Some(content_type) = case.content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let sent = if case.chunked {
        request
            .body(Body::new(Cursor::new(case.body.clone())))
            .send()
    } else {
        request.body(case.body.clone()).send()
    };
    match sent {
        Ok(response) => read(response),
        Err(err) => Reply {
            status: 0,
            content_type: String::new(),
            text: format!("transport error: {err}"),
            body: Value::Null,
        },
    }
}

/// Each case POSTed to the collection must be refused as it says and change no total.
fn refuse_creates(
    server: &Server,
    c: Collection,
    tenant: &Tenant,
    cases: &[Case],
    failures: &mut Vec<String>,
) {
    for case in cases {
        let before = c.total(server, tenant);
        let reply = send(server, c.dialect, Method::POST, c.create, tenant, case);
        if let Err(why) = check(c.dialect, &reply, case.status, case.want) {
            failures.push(format!(
                "{:?} POST {} [{}]: {why}",
                c.dialect, c.create, case.name
            ));
        }
        let after = c.total(server, tenant);
        if before != after {
            failures.push(format!(
                "{:?} POST {} [{}]: total went from {before} to {after}",
                c.dialect, c.create, case.name
            ));
        }
    }
}

/// Each case sent as the collection's update of `key` must be refused and leave it unchanged.
fn refuse_updates(
    server: &Server,
    c: Collection,
    tenant: &Tenant,
    key: &str,
    cases: &[Case],
    failures: &mut Vec<String>,
) {
    let path = c.object_path(key);
    for case in cases {
        let before = c.snapshot(server, tenant, key);
        let reply = send(server, c.dialect, c.update.method(), &path, tenant, case);
        if let Err(why) = check(c.dialect, &reply, case.status, case.want) {
            failures.push(format!(
                "{:?} {} {path} [{}]: {why}",
                c.dialect,
                c.update.method(),
                case.name
            ));
        }
        let after = c.snapshot(server, tenant, key);
        if before != after {
            failures.push(format!(
                "{:?} {} {path} [{}]: object changed from {before} to {after}",
                c.dialect,
                c.update.method(),
                case.name
            ));
        }
    }
}

/// Each body must be created (201, no secret in the answer), then deleted again.
fn accept_creates(
    server: &Server,
    c: Collection,
    tenant: &Tenant,
    bodies: &[Value],
    failures: &mut Vec<String>,
) {
    let before = c.total(server, tenant);
    for body in bodies {
        let reply = read(
            c.dialect
                .request(server, Method::POST, c.create, tenant)
                .json(body)
                .send()
                .expect("create"),
        );
        if reply.status != 201 {
            failures.push(format!(
                "{:?} POST {} {body}: expected 201, got {} {}",
                c.dialect, c.create, reply.status, reply.text
            ));
            continue;
        }
        if let Some(why) = leaked_secret(c.dialect, &reply.body) {
            failures.push(format!("{:?} POST {} {body}: {why}", c.dialect, c.create));
        }
        let key = reply.body[c.key].as_str().expect("key").to_owned();
        let deleted = c
            .dialect
            .request(server, Method::DELETE, &c.object_path(&key), tenant)
            .send()
            .expect("delete");
        assert_eq!(deleted.status().as_u16(), 204, "delete {key}");
    }
    assert_eq!(
        c.total(server, tenant),
        before,
        "{:?} accepted creates cleaned up",
        c.dialect
    );
}

/// Each body must be accepted as an update of `key` (200).
fn accept_updates(
    server: &Server,
    c: Collection,
    tenant: &Tenant,
    key: &str,
    bodies: &[Value],
    failures: &mut Vec<String>,
) {
    let path = c.object_path(key);
    for body in bodies {
        let reply = read(
            c.dialect
                .request(server, c.update.method(), &path, tenant)
                .json(body)
                .send()
                .expect("update"),
        );
        if reply.status != 200 {
            failures.push(format!(
                "{:?} {} {path} {body}: expected 200, got {} {}",
                c.dialect,
                c.update.method(),
                reply.status,
                reply.text
            ));
        } else if let Some(why) = leaked_secret(c.dialect, &reply.body) {
            failures.push(format!(
                "{:?} {} {path} {body}: {why}",
                c.dialect,
                c.update.method()
            ));
        }
    }
}

fn leaked_secret(dialect: Dialect, body: &Value) -> Option<String> {
    let bad = match dialect {
        Dialect::Ultravox => body.get("password").is_some(),
        Dialect::Dasha => body.get("authPassword").is_some_and(|v| !v.is_null()),
        Dialect::Vobiz => body.get("password") != Some(&json!("<redacted>")),
    };
    bad.then(|| format!("secret in response: {body}"))
}

/// Each `GET list?query` must be a 400 as `want` says.
fn refuse_queries(
    server: &Server,
    c: Collection,
    tenant: &Tenant,
    queries: &[(&str, Want)],
    failures: &mut Vec<String>,
) {
    for (query, want) in queries {
        let path = format!("{}?{query}", c.list);
        let reply = read(
            c.dialect
                .request(server, Method::GET, &path, tenant)
                .send()
                .expect("list"),
        );
        if let Err(why) = check(c.dialect, &reply, 400, *want) {
            failures.push(format!("{:?} GET {path}: {why}", c.dialect));
        }
    }
}

fn accept_queries(
    server: &Server,
    c: Collection,
    tenant: &Tenant,
    queries: &[&str],
    failures: &mut Vec<String>,
) {
    for query in queries {
        let path = format!("{}?{query}", c.list);
        let reply = read(
            c.dialect
                .request(server, Method::GET, &path, tenant)
                .send()
                .expect("list"),
        );
        if reply.status != 200 {
            failures.push(format!(
                "{:?} GET {path}: expected 200, got {} {}",
                c.dialect, reply.status, reply.text
            ));
        }
    }
}

// --- shared tables ------------------------------------------------------------------------------

/// Addresses no `proxy`/`outboundProxy` may be.
const BAD_TARGETS: &[&str] = &[
    "bad host",
    "sip:user@host",
    "sip:user@pbx.example.com:5060",
    "host:0",
    "host:99999",
    "host:abc",
    "host:",
    "[::1",
    "[zz]:5060",
    "[2001:db8::1]x",
    "::1",
    "sip:h;transport=sctp",
    "sips:pbx.example.com;transport=udp",
    "sip:pbx.example.com;lr",
    "sip:pbx.example.com;transport=tcp;transport=udp",
    "sip:pbx.example.com?subject=x",
    "sip:",
    "http://x",
    "https://pbx.example.com",
    " pbx.example.com",
    "pbx.example.com ",
    "-bad.example.com",
    "a..b",
    "999.1.1.1",
    "exa!mple.com",
    "pbx.example.com\r\nVia: evil",
];

/// Addresses a `proxy`/`outboundProxy` may be.
const GOOD_TARGETS: &[&str] = &[
    "pbx.example.com",
    "pbx.example.com:5080",
    "192.0.2.10",
    "192.0.2.10:5060",
    "[2001:db8::1]:5061",
    "[::1]",
    "sip:pbx.example.com",
    "sips:pbx.example.com;transport=tls",
    "sip:10.0.0.1:5060;transport=TCP",
    // `_` in host labels: realms such as Vobiz's, SRV-style names.
    "MA_ABCDEFGHIJ.sip.vobiz.ai",
    "sip:MA_ABCDEFGHIJ.sip.vobiz.ai:5060;transport=tcp",
    "_sip._udp.example.com",
];

/// What no Dasha `server` may be: `host[:port]` only, so no URIs either.
const BAD_SERVERS: &[&str] = &[
    "bad host",
    "sip:user@host",
    "host:0",
    "host:99999",
    "[::1",
    "::1",
    "http://x",
    "sip:pbx.example.com",
    "sips:pbx.example.com;transport=tls",
    "pbx.example.com;transport=tcp",
    " pbx.example.com",
    "999.1.1.1",
    "pbx.example.com\nx",
];

const GOOD_SERVERS: &[&str] = &[
    "pbx.example.com",
    "pbx.example.com:5080",
    "192.0.2.20",
    "[2001:db8::1]:5061",
    "MA_ABCDEFGHIJ.sip.vobiz.ai:5060",
];

// --- Ultravox -----------------------------------------------------------------------------------

fn registration_body() -> Value {
    json!({"username": "alice", "password": "s3cret-pass", "proxy": "192.0.2.10"})
}

/// Field cases shared by create and update.
fn registration_field_cases(valid: &Value, label: &str) -> Vec<Case> {
    let mut items: Vec<(&'static str, Value)> = vec![
        // wrong JSON types
        ("username", json!(5)),
        ("username", json!(true)),
        ("username", json!({})),
        ("username", json!(["alice"])),
        ("password", json!(12345678)),
        ("proxy", json!(5060)),
        ("proxy", json!(["192.0.2.10"])),
        ("outboundProxy", json!(1)),
        ("authUser", json!(false)),
        // over the limits
        ("username", Value::from(long(61))),
        ("authUser", Value::from(long(61))),
        ("password", Value::from(long(129))),
        ("proxy", Value::from(host_of_len(101))),
        ("outboundProxy", Value::from(host_of_len(101))),
        // blank
        ("username", json!("")),
        ("password", json!("")),
        ("proxy", json!("")),
        ("outboundProxy", json!("")),
        ("authUser", json!("")),
        // control and other forbidden characters
        ("username", json!("alice\r\nVia: evil")),
        ("username", json!("alice\n")),
        ("username", json!("al ice")),
        ("username", json!("alice@example.com")),
        ("username", json!("\u{7f}")),
        ("password", json!("pa\r\nss")),
        ("authUser", json!("ali\nce")),
        ("authUser", json!("ali\"ce")),
        ("authUser", json!("ali\\ce")),
    ];
    for target in BAD_TARGETS {
        items.push(("proxy", Value::from(*target)));
        items.push(("outboundProxy", Value::from(*target)));
    }
    field_cases(valid, label, &items)
}

#[test]
fn ultravox_registration_bodies() {
    let server = Server::start();
    let tenant = server.tenant();
    let c = REGISTRATIONS;
    let valid = registration_body();
    let mut failures = Vec::new();

    // create
    let mut cases = body_cases(&valid, "username");
    cases.extend(registration_field_cases(&valid, "create"));
    for field in ["username", "password", "proxy"] {
        cases.push(bad(
            format!("missing {field}"),
            without(&valid, field),
            Want::Field(field),
        ));
        cases.push(bad(
            format!("null {field}"),
            with(&valid, field, Value::Null),
            Want::Field(field),
        ));
    }
    cases.push(bad(
        "empty object",
        json!({}),
        Want::Fields(&["password", "proxy", "username"]),
    ));
    cases.push(bad(
        "only unknown fields",
        json!({"user": "alice", "pass": "x", "server": "h"}),
        Want::Fields(&["password", "proxy", "username"]),
    ));
    cases.push(bad(
        "one good field does not save the rest",
        json!({"username": "alice", "password": "s3cret-pass", "proxy": "bad host"}),
        Want::Field("proxy"),
    ));
    refuse_creates(&server, c, &tenant, &cases, &mut failures);
    let create_cases = cases.len();

    // accepted forms
    let mut good = vec![
        with(&valid, "username", Value::from(long(60))),
        with(&valid, "authUser", Value::from(long(60))),
        with(&valid, "password", Value::from(long(128))),
        with(&valid, "proxy", Value::from(host_of_len(100))),
        with(&valid, "outboundProxy", Value::Null),
        with(&valid, "authUser", Value::Null),
        with(&valid, "unknownField", json!({"ignored": [1, 2]})),
        padded(&valid, BODY_LIMIT),
        with(&valid, "username", json!("+14155550123")),
    ];
    for target in GOOD_TARGETS {
        good.push(with(&valid, "proxy", Value::from(*target)));
        good.push(with(&valid, "outboundProxy", Value::from(*target)));
    }
    accept_creates(&server, c, &tenant, &good, &mut failures);
    let accepted = good.len();

    // update
    let key = c.create(
        &server,
        &tenant,
        &with(&valid, "outboundProxy", json!("192.0.2.11")),
    );
    let mut cases = body_cases(&valid, "username");
    cases.extend(registration_field_cases(&valid, "update"));
    for field in ["username", "password", "proxy"] {
        cases.push(bad(
            format!("null {field}"),
            json!({ field: null }),
            Want::Field(field),
        ));
    }
    cases.push(bad(
        "a good username does not save a bad proxy",
        json!({"username": "bob", "proxy": "bad host"}),
        Want::Field("proxy"),
    ));
    cases.push(bad(
        "a good proxy does not save a bad authUser",
        json!({"proxy": "192.0.2.99", "authUser": long(61)}),
        Want::Field("authUser"),
    ));
    refuse_updates(&server, c, &tenant, &key, &cases, &mut failures);
    let update_cases = cases.len();
    accept_updates(
        &server,
        c,
        &tenant,
        &key,
        &[
            json!({}),
            json!({"outboundProxy": null, "authUser": null}),
            json!({"proxy": "[2001:db8::1]:5061"}),
            json!({"proxy": "sips:pbx.example.com;transport=tls"}),
            json!({"username": long(60)}),
        ],
        &mut failures,
    );
    eprintln!(
        "ultravox bodies: {create_cases} create + {update_cases} update refusals, {accepted} accepted creates"
    );
    assert_clean(failures);
}

// --- Dasha --------------------------------------------------------------------------------------

fn trunk_body() -> Value {
    json!({"server": "192.0.2.20:5060", "transport": "udp", "authUser": "trunk-user",
           "authPassword": "trunk-pass", "description": "main trunk", "cpsLimit": 5, "cpsKey": "carrier"})
}

fn trunk_field_cases(valid: &Value, label: &str) -> Vec<Case> {
    let mut items: Vec<(&'static str, Value)> = vec![
        // wrong JSON types
        ("server", json!(5060)),
        ("server", json!(true)),
        ("transport", json!(1)),
        ("domain", json!(1)),
        ("authUser", json!([])),
        ("authPassword", json!(1234)),
        ("description", json!({"text": "x"})),
        ("cpsLimit", json!("10")),
        ("cpsLimit", json!(1.5)),
        ("cpsLimit", json!(true)),
        ("cpsLimit", json!(1e30)),
        ("cpsKey", json!(5)),
        // range and enum
        ("cpsLimit", json!(0)),
        ("cpsLimit", json!(-1)),
        ("cpsLimit", json!(2_147_483_648_i64)),
        ("cpsLimit", json!(u64::MAX)),
        ("transport", json!("sctp")),
        ("transport", json!("")),
        ("transport", json!("udp ")),
        // over the limits
        ("server", Value::from(long(256))),
        ("domain", Value::from(long(256))),
        ("authUser", Value::from(long(129))),
        ("authPassword", Value::from(long(129))),
        ("description", Value::from(long(1025))),
        ("cpsKey", Value::from(long(129))),
        // blank
        ("server", json!("")),
        ("domain", json!("")),
        ("authUser", json!("")),
        ("cpsKey", json!("")),
        // control and other forbidden characters
        ("authUser", json!("trunk\r\nuser")),
        ("authUser", json!("trunk\"user")),
        ("authPassword", json!("pa\nss")),
        ("description", json!("bell \u{7}")),
        ("cpsKey", json!("a\tb")),
        // bad addresses
        ("domain", json!("pbx.example.com:5060")),
        ("domain", json!("bad host")),
        ("domain", json!("sip:example.com")),
    ];
    for server in BAD_SERVERS {
        items.push(("server", Value::from(*server)));
    }
    field_cases(valid, label, &items)
}

fn trunk_accepted(valid: &Value) -> Vec<Value> {
    let mut good = vec![
        with(
            &with(&valid.clone(), "transport", json!("tls")),
            "domain",
            json!("example.com"),
        ),
        with(valid, "transport", json!("tcp")),
        without(valid, "transport"),
        with(valid, "cpsLimit", json!(1)),
        with(valid, "cpsLimit", json!(i32::MAX)),
        with(valid, "cpsLimit", Value::Null),
        with(valid, "description", Value::from(long(1024))),
        with(valid, "description", json!("")),
        with(valid, "authUser", Value::from(long(128))),
        with(valid, "authPassword", Value::from(long(128))),
        with(valid, "authPassword", json!("")),
        with(valid, "cpsKey", Value::from(long(128))),
        with(valid, "domain", json!("192.0.2.1")),
        with(valid, "domain", json!("MA_ABCDEFGHIJ.sip.vobiz.ai")),
        with(valid, "providerId", json!("ignored, read-only")),
        json!({"server": "192.0.2.20"}),
        padded(valid, BODY_LIMIT),
    ];
    for server in GOOD_SERVERS {
        good.push(with(valid, "server", Value::from(*server)));
    }
    good
}

#[test]
fn dasha_trunk_bodies() {
    let server = Server::start();
    let tenant = server.tenant();
    let c = TRUNKS;
    let valid = trunk_body();
    let mut failures = Vec::new();

    let mut cases = body_cases(&valid, "server");
    cases.extend(trunk_field_cases(&valid, "create"));
    cases.push(bad(
        "missing server",
        without(&valid, "server"),
        Want::Field("server"),
    ));
    cases.push(bad(
        "null server",
        with(&valid, "server", Value::Null),
        Want::Field("server"),
    ));
    cases.push(bad("empty object", json!({}), Want::Field("server")));
    cases.push(bad(
        "two bad fields",
        json!({"server": "bad host", "cpsLimit": 0}),
        Want::Fields(&["cpsLimit", "server"]),
    ));
    refuse_creates(&server, c, &tenant, &cases, &mut failures);
    let create_cases = cases.len();

    let good = trunk_accepted(&valid);
    accept_creates(&server, c, &tenant, &good, &mut failures);

    // PUT is a full replace: the same table applies, and an absent server is missing
    let key = c.create(&server, &tenant, &valid);
    let mut cases = body_cases(&valid, "server");
    cases.extend(trunk_field_cases(&valid, "replace"));
    cases.push(bad(
        "missing server",
        without(&valid, "server"),
        Want::Field("server"),
    ));
    cases.push(bad(
        "null server",
        with(&valid, "server", Value::Null),
        Want::Field("server"),
    ));
    cases.push(bad("empty object", json!({}), Want::Field("server")));
    refuse_updates(&server, c, &tenant, &key, &cases, &mut failures);
    let update_cases = cases.len();
    accept_updates(&server, c, &tenant, &key, &good, &mut failures);
    eprintln!(
        "dasha trunk bodies: {create_cases} create + {update_cases} replace refusals, {} accepted",
        good.len()
    );
    assert_clean(failures);
}

#[test]
fn dasha_phone_number_bodies() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("other");
    let c = NUMBERS;
    let trunk = TRUNKS.create(&server, &tenant, &trunk_body());
    let foreign_trunk = TRUNKS.create(&server, &other, &trunk_body());
    let valid = json!({"phoneNumber": "+14155550100", "credentialsId": trunk, "registration": false,
                       "displayName": "Front desk", "description": "main line"});
    let mut failures = Vec::new();

    let mut items: Vec<(&'static str, Value)> = vec![
        // not E.164
        ("phoneNumber", json!("14155550123")),
        ("phoneNumber", json!("+0123456789")),
        ("phoneNumber", json!("+1")),
        ("phoneNumber", json!("+1234567890123456")),
        ("phoneNumber", json!("+1 415 555 0100")),
        ("phoneNumber", json!("+1-415-555-0100")),
        ("phoneNumber", json!("+1415555010a")),
        ("phoneNumber", json!("+")),
        ("phoneNumber", json!("")),
        ("phoneNumber", json!("+14155550100\n")),
        ("phoneNumber", json!(14155550100_i64)),
        // trunk reference
        ("credentialsId", json!("not-a-uuid")),
        ("credentialsId", json!(5)),
        ("credentialsId", json!("")),
        ("credentialsId", Value::from(Uuid::new_v4().to_string())),
        ("credentialsId", Value::from(foreign_trunk.clone())),
        // wrong types, limits, characters
        ("registration", json!("yes")),
        ("registration", json!("true")),
        ("registration", json!(1)),
        ("displayName", json!(5)),
        ("displayName", Value::from(long(129))),
        ("displayName", json!("Front \"desk\"")),
        ("displayName", json!("Front\r\ndesk")),
        ("description", json!(["x"])),
        ("description", Value::from(long(1025))),
        ("description", json!("a\u{0}b")),
        ("incomingCallsAgentId", json!(42)),
        ("incomingCallsAgentId", Value::from(long(257))),
        ("incomingCallsAgentId", json!("agent\n1")),
    ];
    let mut cases = body_cases(&valid, "description");
    cases.extend(field_cases(&valid, "create", &items));
    for field in ["phoneNumber", "credentialsId"] {
        cases.push(bad(
            format!("missing {field}"),
            without(&valid, field),
            Want::Field(field),
        ));
        cases.push(bad(
            format!("null {field}"),
            with(&valid, field, Value::Null),
            Want::Field(field),
        ));
    }
    cases.push(bad(
        "empty object",
        json!({}),
        Want::Fields(&["credentialsId", "phoneNumber"]),
    ));
    refuse_creates(&server, c, &tenant, &cases, &mut failures);
    let create_cases = cases.len();

    // accepted forms; the other tenant may hold the same number
    let good = vec![
        valid.clone(),
        with(&valid, "phoneNumber", json!("+44")),
        with(&valid, "phoneNumber", json!("+123456789012345")),
        with(&valid, "registration", Value::Null),
        without(&valid, "registration"),
        with(&valid, "displayName", Value::from(long(128))),
        with(&valid, "description", Value::from(long(1024))),
        with(&valid, "incomingCallsAgentId", Value::from(long(256))),
        with(&valid, "credentialsId", Value::from(trunk.to_uppercase())),
        padded(&valid, BODY_LIMIT),
    ];
    accept_creates(&server, c, &tenant, &good, &mut failures);
    let number = c.create(&server, &tenant, &valid);
    NUMBERS.create(
        &server,
        &other,
        &with(&valid, "credentialsId", Value::from(foreign_trunk.clone())),
    );

    // a duplicate number is a conflict
    let duplicate = vec![raw(
        "duplicate number",
        JSON,
        valid.to_string(),
        409,
        Want::Detail,
    )];
    refuse_creates(&server, c, &tenant, &duplicate, &mut failures);

    // replace
    items.retain(|(field, _)| *field != "phoneNumber");
    let mut cases = body_cases(&valid, "description");
    cases.extend(field_cases(&valid, "replace", &items));
    for other_number in ["+14155550199", "+0123", "", "14155550100"] {
        cases.push(bad(
            format!("phoneNumber changed to {other_number:?}"),
            with(&valid, "phoneNumber", Value::from(other_number)),
            Want::Field("phoneNumber"),
        ));
    }
    cases.push(bad(
        "missing credentialsId",
        without(&valid, "credentialsId"),
        Want::Field("credentialsId"),
    ));
    cases.push(bad(
        "null credentialsId",
        with(&valid, "credentialsId", Value::Null),
        Want::Field("credentialsId"),
    ));
    cases.push(bad("empty object", json!({}), Want::Field("credentialsId")));
    refuse_updates(&server, c, &tenant, &number, &cases, &mut failures);
    let update_cases = cases.len();
    accept_updates(
        &server,
        c,
        &tenant,
        &number,
        &[
            valid.clone(),
            without(&valid, "phoneNumber"),
            json!({"credentialsId": trunk}),
            with(&valid, "displayName", Value::Null),
        ],
        &mut failures,
    );
    eprintln!("dasha number bodies: {create_cases} create + {update_cases} replace refusals");
    assert_clean(failures);
}

// --- Vobiz --------------------------------------------------------------------------------------

fn credential_body() -> Value {
    json!({"username": "device_100", "password": "longenough1", "enabled": true, "description": "desk"})
}

#[test]
fn vobiz_credential_bodies() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("other");
    let c = CREDENTIALS;
    let valid = credential_body();
    let mut failures = Vec::new();

    let shared: Vec<(&'static str, Value)> = vec![
        ("password", json!(12345678)),
        ("password", json!(["longenough1"])),
        ("enabled", json!("yes")),
        ("enabled", json!("true")),
        ("enabled", json!(1)),
        ("enabled", Value::Null),
        ("description", json!(5)),
        ("description", Value::from(long(1025))),
        ("description", json!("a\r\nb")),
        ("password", Value::from(long(129))),
        ("password", json!("short7!")),
        ("password", json!("")),
        ("password", json!("pass\nword1")),
        ("password", Value::Null),
    ];
    let mut items = shared.clone();
    items.extend([
        ("username", json!(5)),
        ("username", json!(false)),
        ("username", Value::from(long(65))),
        ("username", json!("")),
        ("username", json!("bad user")),
        ("username", json!("user@example")),
        ("username", json!("dévice")),
        ("username", json!("device\r\n")),
        ("username", json!("device:1")),
        ("username", Value::Null),
    ]);
    let mut cases = body_cases(&valid, "username");
    cases.extend(field_cases(&valid, "create", &items));
    for field in ["username", "password"] {
        cases.push(bad(
            format!("missing {field}"),
            without(&valid, field),
            Want::Field(field),
        ));
    }
    cases.push(bad(
        "empty object",
        json!({}),
        Want::Fields(&["password", "username"]),
    ));
    refuse_creates(&server, c, &tenant, &cases, &mut failures);
    let create_cases = cases.len();

    let good = vec![
        with(&valid, "username", Value::from(long(64))),
        with(&valid, "password", json!("exactly8")),
        with(&valid, "password", Value::from(long(128))),
        with(&valid, "username", json!("a.b-c_D9")),
        without(&valid, "enabled"),
        with(&valid, "description", Value::Null),
        with(&valid, "description", Value::from(long(1024))),
        padded(&valid, BODY_LIMIT),
    ];
    accept_creates(&server, c, &tenant, &good, &mut failures);

    // duplicate username → 409; the same username in another account is fine
    let key = c.create(&server, &tenant, &valid);
    let duplicate = vec![
        raw(
            "duplicate username",
            JSON,
            valid.to_string(),
            409,
            Want::Detail,
        ),
        raw(
            "duplicate username, other fields differ",
            JSON,
            with(&valid, "password", json!("different-pass")).to_string(),
            409,
            Want::Detail,
        ),
    ];
    refuse_creates(&server, c, &tenant, &duplicate, &mut failures);
    c.create(&server, &other, &valid);

    // update: partial; the username is immutable
    let mut cases = body_cases(&valid, "description");
    cases.extend(field_cases(&valid, "update", &shared));
    for changed in [
        json!("device_101"),
        json!("DEVICE_100"),
        json!(""),
        Value::Null,
        json!(5),
    ] {
        cases.push(bad(
            format!("username changed to {changed}"),
            json!({ "username": changed }),
            Want::Field("username"),
        ));
    }
    cases.push(bad(
        "a good password does not save a changed username",
        json!({"username": "device_101", "password": "another-pass"}),
        Want::Field("username"),
    ));
    refuse_updates(&server, c, &tenant, &key, &cases, &mut failures);
    let update_cases = cases.len();
    accept_updates(
        &server,
        c,
        &tenant,
        &key,
        &[
            json!({}),
            json!({"username": "device_100"}),
            json!({"enabled": false}),
            json!({"description": null}),
            json!({"password": "exactly8"}),
        ],
        &mut failures,
    );
    eprintln!("vobiz bodies: {create_cases} create + {update_cases} update refusals");
    assert_clean(failures);
}

// --- list query parameters ----------------------------------------------------------------------

#[test]
fn list_query_parameters() {
    let server = Server::start();
    let tenant = server.tenant();
    let mut failures = Vec::new();
    REGISTRATIONS.create(&server, &tenant, &registration_body());

    let not_int = ["abc", "1.5", "1e3", "99999999999999999999", "%20", "0x10"];
    let mut ultravox: Vec<(String, Want)> = ["0", "-1", "1001", "-9223372036854775808"]
        .iter()
        .chain(not_int.iter())
        .map(|v| (format!("pageSize={v}"), Want::Field("pageSize")))
        .collect();
    let encode = |text: String| URL_SAFE_NO_PAD.encode(text);
    let some_id = Uuid::new_v4();
    let cursors = [
        "garbage".to_owned(),
        "%%%".to_owned(),
        "cursor with spaces".to_owned(),
        "A".repeat(200),
        encode("foo".to_owned()),
        encode(format!("xi123.{some_id}")), // no such direction
        encode(format!("fq123.{some_id}")), // no such inclusiveness
        encode(format!("fi12a.{some_id}")), // micros not a number
        encode(format!("fi99999999999999999999.{some_id}")), // micros overflow
        encode("fi123.not-a-uuid".to_owned()),
        encode("fi123".to_owned()),
        encode(format!("fi123.{some_id}")) + "==", // padded
        STANDARD.encode(format!("fi123.{some_id}???")), // not URL-safe
    ];
    for cursor in &cursors {
        ultravox.push((format!("cursor={cursor}"), Want::Detail));
    }
    ultravox.push(("pageSize=1&pageSize=2".to_owned(), Want::Detail));
    let ultravox: Vec<(&str, Want)> = ultravox.iter().map(|(q, w)| (q.as_str(), *w)).collect();
    refuse_queries(&server, REGISTRATIONS, &tenant, &ultravox, &mut failures);
    accept_queries(
        &server,
        REGISTRATIONS,
        &tenant,
        &[
            "pageSize=1",
            "pageSize=1000",
            "cursor=",
            "unknown=1",
            // well-formed cursors at positions no row has are simply empty pages
            &format!("cursor={}", encode(format!("fi0.{some_id}"))),
            &format!("cursor={}", encode(format!("bx-1.{some_id}"))),
            &format!(
                "cursor={}",
                encode(format!("fx9223372036854775807.{some_id}"))
            ),
        ],
        &mut failures,
    );

    let mut dasha: Vec<(String, Want)> = Vec::new();
    for v in ["0", "-1", "1001"].iter().chain(not_int.iter()) {
        dasha.push((format!("take={v}"), Want::Field("take")));
    }
    for v in ["-1", "-9223372036854775808"].iter().chain(not_int.iter()) {
        dasha.push((format!("skip={v}"), Want::Field("skip")));
    }
    dasha.push(("skip=-1&take=0".to_owned(), Want::Fields(&["skip", "take"])));
    dasha.push(("take=1&take=2".to_owned(), Want::Detail));
    let dasha: Vec<(&str, Want)> = dasha.iter().map(|(q, w)| (q.as_str(), *w)).collect();
    for c in [TRUNKS, NUMBERS] {
        refuse_queries(&server, c, &tenant, &dasha, &mut failures);
        accept_queries(
            &server,
            c,
            &tenant,
            &["take=1", "take=1000", "skip=0", "skip=9223372036854775807"],
            &mut failures,
        );
    }

    let mut vobiz: Vec<(String, Want)> = Vec::new();
    for v in ["0", "-1", "101"].iter().chain(not_int.iter()) {
        vobiz.push((format!("limit={v}"), Want::Field("limit")));
    }
    for v in ["-1"].iter().chain(not_int.iter()) {
        vobiz.push((format!("offset={v}"), Want::Field("offset")));
    }
    vobiz.push(("limit=1&limit=2".to_owned(), Want::Detail));
    let vobiz: Vec<(&str, Want)> = vobiz.iter().map(|(q, w)| (q.as_str(), *w)).collect();
    refuse_queries(&server, CREDENTIALS, &tenant, &vobiz, &mut failures);
    accept_queries(
        &server,
        CREDENTIALS,
        &tenant,
        &[
            "limit=1",
            "limit=100",
            "offset=0",
            "offset=9223372036854775807",
        ],
        &mut failures,
    );
    eprintln!(
        "query cases: ultravox {}, dasha {} x2, vobiz {}",
        ultravox.len(),
        dasha.len(),
        vobiz.len()
    );
    assert_clean(failures);
}

// --- ids in paths -------------------------------------------------------------------------------

/// Non-uuid, unknown and foreign ids are all the same 404, and nothing of the owner's changes.
#[test]
fn ids_in_paths() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("other");
    let mut failures = Vec::new();

    let foreign_trunk = TRUNKS.create(&server, &other, &trunk_body());
    let mine_trunk = TRUNKS.create(&server, &tenant, &trunk_body());
    let foreign_keys = [
        REGISTRATIONS.create(&server, &other, &registration_body()),
        foreign_trunk.clone(),
        NUMBERS.create(
            &server,
            &other,
            &json!({"phoneNumber": "+14155550100", "credentialsId": foreign_trunk}),
        ),
        CREDENTIALS.create(&server, &other, &credential_body()),
    ];
    // bodies that would be accepted as updates of an object of this tenant
    let updates = [
        json!({"username": "mallory"}),
        json!({"server": "192.0.2.66"}),
        json!({"credentialsId": mine_trunk}),
        json!({"enabled": false}),
    ];
    let mut cases = 0;
    for ((c, foreign), update) in ALL.iter().zip(&foreign_keys).zip(&updates) {
        let phone = c.key == "phoneNumber";
        let owner_before = c.snapshot(&server, &other, foreign);
        let totals = (c.total(&server, &tenant), c.total(&server, &other));
        // (id, whether it is the other tenant's object)
        let mut ids: Vec<(String, bool)> = vec![(foreign.clone(), true)];
        if phone {
            ids.push((foreign.replace('+', "%2B"), true));
            ids.extend(["14155550100", "+0155", "+1415555010a"].map(|id| (id.to_owned(), false)));
        } else {
            ids.push((foreign.to_uppercase(), true));
            ids.push((format!("{}x", Uuid::new_v4()), false));
            ids.push((Uuid::new_v4().simple().to_string() + "0", false));
        }
        for garbage in [
            "not-a-uuid",
            "1",
            "%20",
            "00000000-0000-0000-0000",
            "DROP%20TABLE",
            "%2B",
            "%00",
        ] {
            ids.push((garbage.to_owned(), false));
        }
        let unknown = if phone {
            "+19995550100".to_owned()
        } else {
            Uuid::new_v4().to_string()
        };
        for method in [Method::GET, c.update.method(), Method::DELETE] {
            let call = |id: &str| {
                let mut request =
                    c.dialect
                        .request(&server, method.clone(), &c.object_path(id), &tenant);
                if method != Method::GET && method != Method::DELETE {
                    request = request.json(update);
                }
                read(request.send().expect("send"))
            };
            // what an id that never existed gets; the other tenant's id must get the same
            // (for Vobiz apart from the random api_id)
            let reference = call(&unknown);
            cases += 1;
            if let Err(why) = check(c.dialect, &reference, 404, Want::Detail) {
                failures.push(format!("{:?} {method} unknown {unknown}: {why}", c.dialect));
            }
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("api_id");
                }
                v
            };
            for (id, is_foreign) in &ids {
                cases += 1;
                let reply = call(id);
                let label = format!("{:?} {method} {}", c.dialect, c.object_path(id));
                if let Err(why) = check(c.dialect, &reply, 404, Want::Detail) {
                    failures.push(format!("{label}: {why}"));
                } else if *is_foreign
                    && (strip(&reply.body) != strip(&reference.body)
                        || reply.content_type != reference.content_type)
                {
                    failures.push(format!(
                        "{label}: the other tenant's id answered {} but an unknown id {}",
                        reply.text, reference.text
                    ));
                }
            }
        }
        if c.snapshot(&server, &other, foreign) != owner_before {
            failures.push(format!("{:?}: the owner's object changed", c.dialect));
        }
        if (c.total(&server, &tenant), c.total(&server, &other)) != totals {
            failures.push(format!("{:?}: totals changed", c.dialect));
        }
    }
    eprintln!("path id cases: {cases}");
    assert_clean(failures);
}

// --- authentication -----------------------------------------------------------------------------

/// Builds one request of one way of (not) authenticating.
type Build<'a> = Box<dyn Fn(Method, &str) -> RequestBuilder + 'a>;

fn way<'a>(build: impl Fn(Method, &str) -> RequestBuilder + 'a) -> Build<'a> {
    Box::new(build)
}

/// Every way of not presenting this tenant's live key is a 401 in the dialect's words, checked
/// before the body is even read, and nothing is written.
#[test]
fn authentication_failures() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("other");
    let mut failures = Vec::new();

    // a key that worked, then was revoked
    let output = server.cli(&["apikey", "create", "--tenant", &tenant.account_id, "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let issued: Value = serde_json::from_slice(&output.stdout).expect("json");
    let revoked = Tenant {
        account_id: tenant.account_id.clone(),
        api_key: issued["api_key"].as_str().unwrap().to_owned(),
    };
    for c in ALL {
        let reply = read(
            c.dialect
                .request(&server, Method::GET, c.list, &revoked)
                .send()
                .unwrap(),
        );
        assert_eq!(
            reply.status, 200,
            "the new key works before revocation: {}",
            reply.text
        );
    }
    let output = server.cli(&["apikey", "revoke", &revoked.api_key[..12]]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // the right prefix with a wrong tail, and a key that was never issued
    let wrong = Tenant {
        account_id: tenant.account_id.clone(),
        api_key: format!("{}x", tenant.api_key),
    };
    let unknown = Tenant {
        account_id: tenant.account_id.clone(),
        api_key: format!("tl_{}", Uuid::new_v4().simple()),
    };
    let keys = [
        REGISTRATIONS.create(&server, &tenant, &registration_body()),
        TRUNKS.create(&server, &tenant, &trunk_body()),
        String::new(),
        CREDENTIALS.create(&server, &tenant, &credential_body()),
    ];
    let trunk = keys[1].clone();
    let number = NUMBERS.create(
        &server,
        &tenant,
        &json!({"phoneNumber": "+14155550100", "credentialsId": trunk}),
    );
    let valid_bodies = [
        with(&registration_body(), "username", json!("other")),
        trunk_body(),
        json!({"phoneNumber": "+14155550101", "credentialsId": trunk}),
        with(&credential_body(), "username", json!("other")),
    ];

    let mut cases = 0;
    for ((c, key), body) in ALL.iter().zip(&keys).zip(&valid_bodies) {
        let key = if c.key == "phoneNumber" { &number } else { key };
        let object = c.object_path(key);
        let totals = c.total(&server, &tenant);
        let snapshot = c.snapshot(&server, &tenant, key);
        let d = c.dialect;
        let s = &server;
        let empty = Tenant {
            account_id: tenant.account_id.clone(),
            api_key: String::new(),
        };
        let anonymous = |m: Method, p: &str| d.anonymous(s, m, p, &tenant);
        let mut ways: Vec<(&str, Build)> = vec![
            ("no credentials", way(anonymous)),
            ("wrong key", way(|m, p| d.request(s, m, p, &wrong))),
            ("unknown key", way(|m, p| d.request(s, m, p, &unknown))),
            ("revoked key", way(|m, p| d.request(s, m, p, &revoked))),
            ("empty key", way(|m, p| d.request(s, m, p, &empty))),
        ];
        match d {
            Dialect::Ultravox => {
                ways.push((
                    "key as bearer token",
                    way(|m, p| anonymous(m, p).bearer_auth(&tenant.api_key)),
                ));
                ways.push((
                    "key in the wrong header",
                    way(|m, p| anonymous(m, p).header("X-Auth-Token", &tenant.api_key)),
                ));
            }
            Dialect::Dasha => {
                ways.push((
                    "basic scheme",
                    way(|m, p| {
                        anonymous(m, p).header("Authorization", format!("Basic {}", tenant.api_key))
                    }),
                ));
                ways.push((
                    "bearer without token",
                    way(|m, p| anonymous(m, p).header("Authorization", "Bearer")),
                ));
                ways.push((
                    "key as X-API-Key",
                    way(|m, p| anonymous(m, p).header("X-API-Key", &tenant.api_key)),
                ));
            }
            Dialect::Vobiz => {
                ways.push((
                    "token without X-Auth-ID",
                    way(|m, p| anonymous(m, p).header("X-Auth-Token", &tenant.api_key)),
                ));
                ways.push((
                    "X-Auth-ID without token",
                    way(|m, p| anonymous(m, p).header("X-Auth-ID", &tenant.account_id)),
                ));
                ways.push((
                    "X-Auth-ID of another account",
                    way(|m, p| {
                        anonymous(m, p)
                            .header("X-Auth-ID", &other.account_id)
                            .header("X-Auth-Token", &tenant.api_key)
                    }),
                ));
                ways.push((
                    "another account's token",
                    way(|m, p| {
                        anonymous(m, p)
                            .header("X-Auth-ID", &tenant.account_id)
                            .header("X-Auth-Token", &other.api_key)
                    }),
                ));
            }
        }
        for (way, build) in &ways {
            let requests: Vec<(String, RequestBuilder)> = vec![
                (format!("GET {}", c.list), build(Method::GET, c.list)),
                (format!("GET {object}"), build(Method::GET, &object)),
                (
                    format!("POST {} valid", c.create),
                    build(Method::POST, c.create).json(body),
                ),
                (
                    format!("POST {} garbage", c.create),
                    build(Method::POST, c.create)
                        .header(CONTENT_TYPE, "application/json")
                        .body("{\"username\":"),
                ),
                (
                    format!("POST {} text/plain", c.create),
                    build(Method::POST, c.create)
                        .header(CONTENT_TYPE, "text/plain")
                        .body("x"),
                ),
                (
                    format!("{} {object}", c.update.method()),
                    build(c.update.method(), &object).json(body),
                ),
                (format!("DELETE {object}"), build(Method::DELETE, &object)),
            ];
            for (label, request) in requests {
                cases += 1;
                let reply = read(request.send().expect("send"));
                if let Err(why) = check(d, &reply, 401, Want::Detail) {
                    failures.push(format!("{d:?} {label} [{way}]: {why}"));
                }
            }
        }
        if c.total(&server, &tenant) != totals || c.snapshot(&server, &tenant, key) != snapshot {
            failures.push(format!("{d:?}: an unauthenticated request changed data"));
        }
    }

    // Vobiz: a good key, but the {auth_id} in the path is not X-Auth-ID → 403
    let totals = CREDENTIALS.total(&server, &tenant);
    let credential = &keys[3];
    for account in [
        other.account_id.as_str(),
        "MA_ZZZZZZZZZZ",
        "not-an-account",
        "ma_lowercase",
    ] {
        for (method, path) in [
            (Method::GET, "/trunks/credentials".to_owned()),
            (Method::POST, "/credentials".to_owned()),
            (Method::GET, format!("/credentials/{credential}")),
            (Method::PUT, format!("/credentials/{credential}")),
            (Method::DELETE, format!("/credentials/{credential}")),
        ] {
            cases += 1;
            let url = server.url(&format!("/api/v1/account/{account}{path}"));
            let reply = read(
                server
                    .client
                    .request(method.clone(), url)
                    .header("X-Auth-ID", &tenant.account_id)
                    .header("X-Auth-Token", &tenant.api_key)
                    .json(&with(&credential_body(), "username", json!("sneaky")))
                    .send()
                    .expect("send"),
            );
            if let Err(why) = check(Dialect::Vobiz, &reply, 403, Want::Detail) {
                failures.push(format!(
                    "Vobiz {method} /api/v1/account/{account}{path}: {why}"
                ));
            }
        }
    }
    if CREDENTIALS.total(&server, &tenant) != totals || CREDENTIALS.total(&server, &other) != 0 {
        failures.push("Vobiz: a 403 request changed data".to_owned());
    }
    eprintln!("auth cases: {cases}");
    assert_clean(failures);
}

// --- methods and unknown paths ------------------------------------------------------------------

#[test]
fn wrong_methods_and_unknown_paths() {
    let server = Server::start();
    let tenant = server.tenant();
    let mut failures = Vec::new();
    let id = Uuid::new_v4();
    let mut cases = 0;

    let wrong_methods: &[(Dialect, Method, String)] = &[
        (
            Dialect::Ultravox,
            Method::PUT,
            "/api/sip/registrations".into(),
        ),
        (
            Dialect::Ultravox,
            Method::DELETE,
            "/api/sip/registrations".into(),
        ),
        (
            Dialect::Ultravox,
            Method::PATCH,
            "/api/sip/registrations".into(),
        ),
        (
            Dialect::Ultravox,
            Method::POST,
            format!("/api/sip/registrations/{id}"),
        ),
        (
            Dialect::Ultravox,
            Method::PUT,
            format!("/api/sip/registrations/{id}"),
        ),
        (
            Dialect::Dasha,
            Method::PUT,
            "/api/v1/sip-credentials".into(),
        ),
        (
            Dialect::Dasha,
            Method::DELETE,
            "/api/v1/sip-credentials".into(),
        ),
        (
            Dialect::Dasha,
            Method::POST,
            format!("/api/v1/sip-credentials/{id}"),
        ),
        (
            Dialect::Dasha,
            Method::PATCH,
            format!("/api/v1/sip-credentials/{id}"),
        ),
        (
            Dialect::Dasha,
            Method::PUT,
            "/api/v1/sip-phone-numbers".into(),
        ),
        (
            Dialect::Dasha,
            Method::POST,
            "/api/v1/sip-phone-numbers/+14155550100".into(),
        ),
        (Dialect::Vobiz, Method::PUT, "/trunks/credentials".into()),
        (Dialect::Vobiz, Method::POST, "/trunks/credentials".into()),
        (Dialect::Vobiz, Method::PUT, "/credentials".into()),
        (Dialect::Vobiz, Method::DELETE, "/credentials".into()),
        (Dialect::Vobiz, Method::POST, format!("/credentials/{id}")),
        (Dialect::Vobiz, Method::PATCH, format!("/credentials/{id}")),
    ];
    for (dialect, method, path) in wrong_methods {
        for authenticated in [true, false] {
            cases += 1;
            let request = if authenticated {
                dialect.request(&server, method.clone(), path, &tenant)
            } else {
                dialect.anonymous(&server, method.clone(), path, &tenant)
            };
            let reply = read(request.json(&json!({})).send().expect("send"));
            if let Err(why) = check(*dialect, &reply, 405, Want::Detail) {
                failures.push(format!(
                    "{dialect:?} {method} {path} (auth {authenticated}): {why}"
                ));
            }
        }
    }

    let unknown_paths: &[(Dialect, String)] = &[
        (Dialect::Ultravox, "/api/sip/nothing".into()),
        (Dialect::Ultravox, "/api/sip".into()),
        (Dialect::Ultravox, "/api/sip/registrations/".into()),
        (
            Dialect::Ultravox,
            format!("/api/sip/registrations/{id}/extra"),
        ),
        (Dialect::Dasha, "/api/v1/sip-nothing".into()),
        (Dialect::Dasha, "/api/v1/sip-credentials/".into()),
        (
            Dialect::Dasha,
            format!("/api/v1/sip-credentials/{id}/extra"),
        ),
        (
            Dialect::Dasha,
            "/api/v1/sip-phone-numbers/+14155550100/extra".into(),
        ),
        (Dialect::Vobiz, "/nothing".into()),
        (Dialect::Vobiz, "/credentials/".into()),
        (Dialect::Vobiz, format!("/credentials/{id}/extra/more")),
        (Dialect::Vobiz, "/trunks".into()),
        (Dialect::Vobiz, "".into()),
    ];
    for (dialect, path) in unknown_paths {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            cases += 1;
            let reply = read(
                dialect
                    .request(&server, method.clone(), path, &tenant)
                    .json(&json!({}))
                    .send()
                    .expect("send"),
            );
            if let Err(why) = check(*dialect, &reply, 404, Want::Detail) {
                failures.push(format!("{dialect:?} {method} {path}: {why}"));
            }
        }
    }
    eprintln!("method/path cases: {cases}");
    assert_clean(failures);
}

// --- a burst of garbage at once -----------------------------------------------------------------

/// Many threads throw every kind of garbage at every dialect at once: no 5xx, no dropped
/// connection, nothing written, and the server still answers.
#[test]
fn concurrent_garbage_never_5xx() {
    let server = Server::start();
    let tenant = server.tenant();
    let trunk = TRUNKS.create(&server, &tenant, &trunk_body());
    let number = NUMBERS.create(
        &server,
        &tenant,
        &json!({"phoneNumber": "+14155550100", "credentialsId": trunk}),
    );
    let keys = [
        REGISTRATIONS.create(&server, &tenant, &registration_body()),
        trunk.clone(),
        number,
        CREDENTIALS.create(&server, &tenant, &credential_body()),
    ];
    let valid = [
        registration_body(),
        trunk_body(),
        json!({"phoneNumber": "+14155550111", "credentialsId": trunk}),
        credential_body(),
    ];
    let totals: Vec<u64> = ALL.iter().map(|c| c.total(&server, &tenant)).collect();
    let snapshots: Vec<Value> = ALL
        .iter()
        .zip(&keys)
        .map(|(c, k)| c.snapshot(&server, &tenant, k))
        .collect();

    // every request: (collection index, method, path, case)
    let mut work: Vec<(usize, Method, String, Case)> = Vec::new();
    for (i, c) in ALL.iter().enumerate() {
        let text_field = match c.dialect {
            Dialect::Dasha if c.key == "id" => "server",
            Dialect::Dasha => "description",
            _ => "username",
        };
        for case in body_cases(&valid[i], text_field) {
            work.push((i, Method::POST, c.create.to_owned(), case));
        }
        for case in body_cases(&valid[i], text_field) {
            work.push((i, c.update.method(), c.object_path(&keys[i]), case));
        }
        for query in [
            "?take=-1",
            "?pageSize=abc&cursor=%ff",
            "?limit=0&offset=x",
            "?cursor=AAAA",
        ] {
            let case = raw(format!("query {query}"), None, "", 400, Want::Detail);
            work.push((i, Method::GET, format!("{}{query}", c.list), case));
        }
        work.push((
            i,
            Method::PUT,
            c.list.to_owned(),
            raw("wrong method", JSON, "{}", 405, Want::Detail),
        ));
        work.push((
            i,
            Method::GET,
            c.object_path("%00"),
            raw("nul id", None, "", 404, Want::Detail),
        ));
    }
    let work = std::sync::Arc::new(work);
    let threads = 8;
    let rounds = 2;
    let server = std::sync::Arc::new(server);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let work = work.clone();
            let server = server.clone();
            let tenant = tenant.clone();
            thread::spawn(move || {
                let mut problems = Vec::new();
                let mut sent = 0;
                for round in 0..rounds {
                    // each thread walks the list from its own offset so different garbage overlaps
                    let start = (t * work.len() / threads + round * 7) % work.len();
                    for k in 0..work.len() {
                        let (i, method, path, case) = &work[(start + k) % work.len()];
                        let reply = send(
                            &server,
                            ALL[*i].dialect,
                            method.clone(),
                            path,
                            &tenant,
                            case,
                        );
                        sent += 1;
                        if reply.status == 0 || reply.status >= 500 {
                            problems.push(format!(
                                "{method} {path} [{}]: {} {}",
                                case.name, reply.status, reply.text
                            ));
                        }
                    }
                }
                (sent, problems)
            })
        })
        .collect();
    let mut problems = Vec::new();
    let mut sent = 0;
    for handle in handles {
        let (n, p) = handle.join().expect("thread");
        sent += n;
        problems.extend(p);
    }
    eprintln!("concurrent garbage: {sent} requests");
    let server = std::sync::Arc::try_unwrap(server)
        .ok()
        .expect("threads done");
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    for (i, c) in ALL.iter().enumerate() {
        if c.total(&server, &tenant) != totals[i] {
            problems.push(format!("{:?} {}: total changed", c.dialect, c.list));
        }
        if c.snapshot(&server, &tenant, &keys[i]) != snapshots[i] {
            problems.push(format!("{:?} {}: object changed", c.dialect, keys[i]));
        }
    }
    assert!(
        !server.logs().iter().any(|line| line.contains("panicked")),
        "the server panicked"
    );
    assert_clean(problems);
}
