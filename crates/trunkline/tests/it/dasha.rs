//! Dasha dialect over real HTTP:
//! - `sip-credentials`: create (every field, defaults, read-only fields), get, PUT as a full
//!   replace (omitted fields become null, `createdTime` kept, `lastUpdateTime` moves), validation
//!   leaves the row alone, delete (204, then 404), 409 while a phone number uses the trunk;
//!   `authPassword` semantics with `dasha.reveal_auth_password` off (write-only: absent/null keep,
//!   `""` clears — made observable by reopening the same data directory with reveal on) and on
//!   (returned, and PUT is a true full replace); `skip`/`take` pages and their limits;
//! - `sip-phone-numbers`: create with and without registration, `credentialsId` checks, duplicate
//!   numbers, get by `%2B…` and literal `+…`, PUT (number immutable, trunk switch), delete, pages;
//! - every error is `application/problem+json` with `type`, `title`, `status`, `detail` (and
//!   `errors` on validation failures only); tenant isolation; missing or unknown tokens.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use crate::common::{Method, Server, Tenant, BIN};

const TRUNKS: &str = "/api/v1/sip-credentials";
const NUMBERS: &str = "/api/v1/sip-phone-numbers";
const TRUNK_FIELDS: [&str; 14] = [
    "id",
    "orgId",
    "server",
    "transport",
    "source",
    "createdTime",
    "lastUpdateTime",
    "domain",
    "authUser",
    "authPassword",
    "description",
    "cpsLimit",
    "cpsKey",
    "providerId",
];
const NUMBER_FIELDS: [&str; 10] = [
    "phoneNumber",
    "credentialsId",
    "registration",
    "registrationStatus",
    "displayName",
    "description",
    "providerId",
    "incomingCallsAgentId",
    "createdTime",
    "lastUpdateTime",
];
/// Passwords sent while reveal is off; no response may ever carry them.
const HIDDEN: [&str; 4] = ["pw-one-1", "pw-two-2", "pw-three-3", "pw-four-4"];

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// A successful JSON answer with the given status, from a server that keeps passwords hidden.
fn ok(response: Response, status: u16) -> Value {
    answer(response, status, true)
}

fn answer(response: Response, status: u16, hidden: bool) -> Value {
    let got = response.status().as_u16();
    let content_type = header(&response, CONTENT_TYPE.as_str());
    let text = response.text().expect("body");
    assert_eq!(got, status, "{text}");
    for secret in HIDDEN.iter().filter(|_| hidden) {
        assert!(
            !text.contains(secret),
            "a write-only password leaked: {text}"
        );
    }
    if status == 204 {
        assert_eq!(text, "");
        return Value::Null;
    }
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// An RFC 9457 problem with the given status; `errors` exactly on 400s.
fn problem(response: Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let content_type = header(&response, CONTENT_TYPE.as_str());
    let text = response.text().expect("body");
    assert_eq!(got, status, "{text}");
    assert_eq!(content_type, "application/problem+json", "{text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    let mut expected = BTreeSet::from(["type", "title", "status", "detail"]);
    if status == 400 {
        expected.insert("errors");
    }
    assert_eq!(keys(&body), expected, "{body}");
    for field in ["type", "title", "detail"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {body}"
        );
    }
    assert_eq!(body["status"], status);
    body
}

/// The fields a validation problem names, each with at least one message.
fn error_fields(problem: &Value) -> Vec<String> {
    let errors = problem["errors"].as_object().expect("errors object");
    for (field, messages) in errors {
        let messages = messages
            .as_array()
            .unwrap_or_else(|| panic!("{field}: {problem}"));
        assert!(
            !messages.is_empty()
                && messages
                    .iter()
                    .all(|m| m.as_str().is_some_and(|m| !m.is_empty()))
        );
    }
    errors.keys().cloned().collect()
}

fn assert_utc(text: &Value) {
    let text = text
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {text}"));
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

fn assert_trunk(value: &Value, tenant: &Tenant) {
    assert_eq!(keys(value), TRUNK_FIELDS.into_iter().collect(), "{value}");
    uuid::Uuid::parse_str(value["id"].as_str().unwrap()).expect("uuid id");
    assert_eq!(value["orgId"], tenant.account_id.as_str());
    assert_eq!(value["source"], "manual");
    assert_eq!(value["providerId"], Value::Null);
    assert_utc(&value["createdTime"]);
    assert_utc(&value["lastUpdateTime"]);
}

fn assert_number(value: &Value) {
    assert_eq!(keys(value), NUMBER_FIELDS.into_iter().collect(), "{value}");
    assert_eq!(value["providerId"], Value::Null);
    assert_utc(&value["createdTime"]);
    assert_utc(&value["lastUpdateTime"]);
    match value["registration"]
        .as_bool()
        .expect("registration is a bool")
    {
        false => assert_eq!(value["registrationStatus"], Value::Null),
        true => assert_eq!(
            keys(&value["registrationStatus"]),
            BTreeSet::from([
                "state",
                "errorDescription",
                "sipResponseMessage",
                "lastUpdated",
                "expiresAt"
            ])
        ),
    }
}

/// Requests against any base URL (a [`Server`] or a [`Reopened`] process).
struct Api<'a> {
    client: &'a Client,
    base: &'a str,
    /// `dasha.reveal_auth_password` is off: no response may carry a [`HIDDEN`] password.
    hidden: bool,
}

impl<'a> Api<'a> {
    fn of(server: &'a Server) -> Self {
        Self {
            client: &server.client,
            base: &server.base,
            hidden: true,
        }
    }

    fn req(&self, method: Method, path: &str, tenant: &Tenant) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&tenant.api_key)
    }

    fn create_trunk(&self, tenant: &Tenant, body: Value) -> Value {
        let trunk = answer(
            self.req(Method::POST, TRUNKS, tenant)
                .json(&body)
                .send()
                .unwrap(),
            201,
            self.hidden,
        );
        assert_trunk(&trunk, tenant);
        trunk
    }

    fn get_trunk(&self, tenant: &Tenant, id: &Value) -> Value {
        let trunk = answer(
            self.req(Method::GET, &trunk_path(id), tenant)
                .send()
                .unwrap(),
            200,
            self.hidden,
        );
        assert_trunk(&trunk, tenant);
        trunk
    }

    fn put_trunk(&self, tenant: &Tenant, id: &Value, body: Value) -> Value {
        let trunk = answer(
            self.req(Method::PUT, &trunk_path(id), tenant)
                .json(&body)
                .send()
                .unwrap(),
            200,
            self.hidden,
        );
        assert_trunk(&trunk, tenant);
        assert_eq!(
            self.get_trunk(tenant, id),
            trunk,
            "GET after PUT shows what PUT returned"
        );
        trunk
    }

    fn create_number(&self, tenant: &Tenant, body: Value) -> Value {
        let number = answer(
            self.req(Method::POST, NUMBERS, tenant)
                .json(&body)
                .send()
                .unwrap(),
            201,
            self.hidden,
        );
        assert_number(&number);
        number
    }

    fn get_number(&self, tenant: &Tenant, number: &str) -> Value {
        let found = answer(
            self.req(Method::GET, &number_path(number), tenant)
                .send()
                .unwrap(),
            200,
            self.hidden,
        );
        assert_number(&found);
        found
    }

    fn list(&self, tenant: &Tenant, path: &str, query: &str) -> Value {
        let page = answer(
            self.req(Method::GET, &format!("{path}{query}"), tenant)
                .send()
                .unwrap(),
            200,
            self.hidden,
        );
        assert_eq!(
            keys(&page),
            BTreeSet::from(["items", "totalCount", "skip", "take"]),
            "{page}"
        );
        page
    }
}

fn trunk_path(id: &Value) -> String {
    format!("{TRUNKS}/{}", id.as_str().expect("id"))
}

/// `+14155550123` → `/api/v1/sip-phone-numbers/%2B14155550123`.
fn number_path(number: &str) -> String {
    format!("{NUMBERS}/{}", number.replace('+', "%2B"))
}

fn item_ids(page: &Value, field: &str) -> Vec<Value> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[field].clone())
        .collect()
}

/// Another `trunkline serve` on an existing (stopped) server's data directory, with extra
/// environment: lets a test read with one configuration what it wrote with another.
struct Reopened {
    child: Child,
    base: String,
    client: Client,
}

impl Reopened {
    fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TRUNKLINE_LOG", "warn")
            .env("NO_COLOR", "1")
            .env("TRUNKLINE_OUTBOUND_ENABLED", "false")
            .env("TRUNKLINE_SIP_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn trunkline");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let base = loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => match line.strip_prefix("listening on ") {
                    Some(address) => break address.trim().to_owned(),
                    None => seen.push(line),
                },
                Err(_) => {
                    let _ = child.kill();
                    panic!("reopened trunkline did not start:\n{}", seen.join("\n"));
                }
            }
        };
        let client = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            child,
            base,
            client,
        }
    }

    fn api(&self) -> Api<'_> {
        Api {
            client: &self.client,
            base: &self.base,
            hidden: false,
        }
    }
}

impl Drop for Reopened {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn credentials_crud_and_full_replace() {
    let server = Server::start();
    let tenant = server.tenant();
    let api = Api::of(&server);

    let full = api.create_trunk(
        &tenant,
        json!({
            "server": "sip.carrier.example:5062",
            "transport": "tcp",
            "domain": "carrier.example",
            "authUser": "trunk-user",
            "authPassword": "pw-one-1",
            "description": "Main trunk",
            "cpsLimit": 5,
            "cpsKey": "carrier-a",
        }),
    );
    for (field, value) in [
        ("server", json!("sip.carrier.example:5062")),
        ("transport", json!("tcp")),
        ("domain", json!("carrier.example")),
        ("authUser", json!("trunk-user")),
        ("authPassword", Value::Null),
        ("description", json!("Main trunk")),
        ("cpsLimit", json!(5)),
        ("cpsKey", json!("carrier-a")),
    ] {
        assert_eq!(full[field], value, "{field}");
    }
    assert_eq!(full["createdTime"], full["lastUpdateTime"]);
    assert_eq!(api.get_trunk(&tenant, &full["id"]), full);

    // Defaults: udp, every optional field null.
    let minimal = api.create_trunk(&tenant, json!({"server": "192.0.2.10"}));
    assert_eq!(minimal["transport"], "udp");
    for field in [
        "domain",
        "authUser",
        "authPassword",
        "description",
        "cpsLimit",
        "cpsKey",
    ] {
        assert_eq!(minimal[field], Value::Null, "{field}");
    }
    assert_ne!(minimal["id"], full["id"]);

    // PUT replaces every writable field: what is omitted becomes null (or the default).
    let replaced = api.put_trunk(
        &tenant,
        &full["id"],
        json!({"server": "sip2.carrier.example"}),
    );
    let mut expected = full.clone();
    expected["server"] = json!("sip2.carrier.example");
    expected["transport"] = json!("udp");
    for field in ["domain", "authUser", "description", "cpsLimit", "cpsKey"] {
        expected[field] = Value::Null;
    }
    expected["lastUpdateTime"] = replaced["lastUpdateTime"].clone();
    assert_eq!(replaced, expected);
    assert_eq!(replaced["createdTime"], full["createdTime"]);
    assert!(
        replaced["lastUpdateTime"].as_str() > full["lastUpdateTime"].as_str(),
        "lastUpdateTime must move forward: {} -> {}",
        full["lastUpdateTime"],
        replaced["lastUpdateTime"]
    );

    // ...and sets them all again; each PUT moves lastUpdateTime.
    let body = json!({
        "server": "[2001:db8::5]:5061",
        "transport": "tls",
        "domain": "tls.carrier.example",
        "authUser": "u2",
        "description": "",
        "cpsLimit": 2147483647,
        "cpsKey": "k",
    });
    let again = api.put_trunk(&tenant, &full["id"], body.clone());
    for (field, value) in body.as_object().unwrap() {
        assert_eq!(&again[field.as_str()], value, "{field}");
    }
    assert_eq!(again["createdTime"], full["createdTime"]);
    assert!(again["lastUpdateTime"].as_str() > replaced["lastUpdateTime"].as_str());
    let same_again = api.put_trunk(&tenant, &full["id"], body);
    assert!(same_again["lastUpdateTime"].as_str() > again["lastUpdateTime"].as_str());

    // Rejected PUTs (and POSTs) name the field and change nothing.
    let before = api.get_trunk(&tenant, &full["id"]);
    for (body, field) in [
        (json!({"transport": "udp"}), "server"),
        (json!({"server": null}), "server"),
        (
            json!({"server": "sip.example.com", "transport": "sctp"}),
            "transport",
        ),
        (
            json!({"server": "sip.example.com", "cpsLimit": 0}),
            "cpsLimit",
        ),
        (
            json!({"server": "sip.example.com", "cpsLimit": 2147483648_i64}),
            "cpsLimit",
        ),
        (
            json!({"server": "sip.example.com", "domain": "a.example:5060"}),
            "domain",
        ),
        (json!({"server": "sip:not a host"}), "server"),
    ] {
        let put = server
            .dasha(Method::PUT, &trunk_path(&full["id"]), &tenant)
            .json(&body);
        assert_eq!(
            error_fields(&problem(put.send().unwrap(), 400)),
            [field],
            "PUT {body}"
        );
        let post = server.dasha(Method::POST, TRUNKS, &tenant).json(&body);
        assert_eq!(
            error_fields(&problem(post.send().unwrap(), 400)),
            [field],
            "POST {body}"
        );
    }
    assert_eq!(api.get_trunk(&tenant, &full["id"]), before);
    assert_eq!(
        api.list(&tenant, TRUNKS, "")["totalCount"],
        2,
        "no rejected POST left a row"
    );

    // Delete: 204, then 404 for every verb.
    ok(
        server
            .dasha(Method::DELETE, &trunk_path(&full["id"]), &tenant)
            .send()
            .unwrap(),
        204,
    );
    let path = trunk_path(&full["id"]);
    for request in [
        server.dasha(Method::GET, &path, &tenant),
        server.dasha(Method::DELETE, &path, &tenant),
        server
            .dasha(Method::PUT, &path, &tenant)
            .json(&json!({"server": "sip.example.com"})),
    ] {
        problem(request.send().unwrap(), 404);
    }
    let page = api.list(&tenant, TRUNKS, "");
    assert_eq!(item_ids(&page, "id"), [minimal["id"].clone()]);
    assert_eq!(page["totalCount"], 1);
}

#[test]
fn auth_password_is_write_only_unless_revealed() {
    let mut server = Server::start();
    let tenant = server.tenant();
    let api = Api::of(&server);

    // Reveal off: never returned; absent or null keep it on PUT, "" clears it, a value sets it.
    let server_only = json!({"server": "sip.example.com", "authUser": "u"});
    let mut trunks = Vec::new();
    for (password, put_password, survives) in [
        ("pw-one-1", None, Some("pw-one-1")),
        ("pw-two-2", Some(Value::Null), Some("pw-two-2")),
        ("pw-three-3", Some(json!("")), None),
        ("pw-four-4", Some(json!("pw-four-4b")), Some("pw-four-4b")),
    ] {
        let created = api.create_trunk(
            &tenant,
            json!({"server": "sip.example.com", "authPassword": password}),
        );
        assert_eq!(created["authPassword"], Value::Null);
        assert_eq!(
            api.get_trunk(&tenant, &created["id"])["authPassword"],
            Value::Null
        );
        let mut body = server_only.clone();
        if let Some(put_password) = put_password {
            body["authPassword"] = put_password;
        }
        let replaced = api.put_trunk(&tenant, &created["id"], body);
        assert_eq!(replaced["authPassword"], Value::Null);
        trunks.push((created["id"].clone(), survives));
    }
    let without = api.create_trunk(&tenant, server_only.clone());
    api.put_trunk(&tenant, &without["id"], server_only);
    trunks.push((without["id"].clone(), None));
    for item in api.list(&tenant, TRUNKS, "")["items"].as_array().unwrap() {
        assert_eq!(item["authPassword"], Value::Null);
    }

    // The same database with reveal on shows what the PUTs kept.
    assert!(server.terminate().success());
    let database_url = server.database_url();
    let reveal = Reopened::start(
        server.data_dir(),
        &[
            ("TRUNKLINE_DASHA_REVEAL_AUTH_PASSWORD", "true"),
            ("TRUNKLINE_DATABASE_URL", &database_url),
        ],
    );
    let api = reveal.api();
    for (id, survives) in &trunks {
        assert_eq!(
            api.get_trunk(&tenant, id)["authPassword"],
            json!(survives),
            "trunk {id}"
        );
    }

    // Reveal on: returned everywhere, and PUT is a true full replace (absent or null clear).
    let created = api.create_trunk(
        &tenant,
        json!({"server": "sip.example.com", "authPassword": "open-1"}),
    );
    assert_eq!(created["authPassword"], "open-1");
    let id = &created["id"];
    assert_eq!(api.get_trunk(&tenant, id)["authPassword"], "open-1");
    let listed = api.list(&tenant, TRUNKS, "?take=1000");
    let row = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == *id)
        .unwrap();
    assert_eq!(row["authPassword"], "open-1");
    for (body, after) in [
        (json!({"server": "sip.example.com"}), Value::Null),
        (
            json!({"server": "sip.example.com", "authPassword": "open-2"}),
            json!("open-2"),
        ),
        (
            json!({"server": "sip.example.com", "authPassword": null}),
            Value::Null,
        ),
        (
            json!({"server": "sip.example.com", "authPassword": "open-3"}),
            json!("open-3"),
        ),
        (
            json!({"server": "sip.example.com", "authPassword": ""}),
            Value::Null,
        ),
    ] {
        assert_eq!(
            api.put_trunk(&tenant, id, body.clone())["authPassword"],
            after,
            "{body}"
        );
    }
}

#[test]
fn credentials_pages() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("other");
    let api = Api::of(&server);
    api.create_trunk(&other, json!({"server": "other.example.com"}));
    let ids: Vec<Value> = (0..23)
        .map(|n| {
            api.create_trunk(&tenant, json!({"server": format!("s{n}.example.com")}))["id"].clone()
        })
        .collect();

    // Default: skip 0, take 20, oldest first.
    let page = api.list(&tenant, TRUNKS, "");
    assert_eq!(
        (&page["skip"], &page["take"], &page["totalCount"]),
        (&json!(0), &json!(20), &json!(23))
    );
    assert_eq!(item_ids(&page, "id"), ids[..20]);
    for item in page["items"].as_array().unwrap() {
        assert_trunk(item, &tenant);
    }

    for (skip, take, range) in [
        (0, 5, 0..5),
        (5, 5, 5..10),
        (20, 5, 20..23),
        (22, 1, 22..23),
        (23, 5, 23..23),
        (100, 1000, 23..23),
        (0, 1000, 0..23),
        (0, 1, 0..1),
    ] {
        let page = api.list(&tenant, TRUNKS, &format!("?skip={skip}&take={take}"));
        assert_eq!(
            item_ids(&page, "id"),
            ids[range.clone()],
            "skip={skip} take={take}"
        );
        assert_eq!(page["skip"], skip);
        assert_eq!(page["take"], take);
        assert_eq!(page["totalCount"], 23, "skip={skip} take={take}");
    }
    // skip alone keeps the default take.
    let page = api.list(&tenant, TRUNKS, "?skip=21");
    assert_eq!(
        (&page["take"], item_ids(&page, "id")),
        (&json!(20), ids[21..].to_vec())
    );

    for (query, fields) in [
        ("take=0", vec!["take"]),
        ("take=1001", vec!["take"]),
        ("take=-1", vec!["take"]),
        ("take=abc", vec!["take"]),
        ("take=", vec!["take"]),
        ("skip=-1", vec!["skip"]),
        ("skip=abc", vec!["skip"]),
        ("skip=-1&take=0", vec!["skip", "take"]),
    ] {
        let response = server
            .dasha(Method::GET, &format!("{TRUNKS}?{query}"), &tenant)
            .send()
            .unwrap();
        let mut named = error_fields(&problem(response, 400));
        named.sort();
        assert_eq!(named, fields, "{query}");
    }
}

#[test]
fn phone_numbers_crud() {
    let server = Server::start();
    let tenant = server.tenant();
    let other = server.create_tenant("other");
    let api = Api::of(&server);
    let t1 = api.create_trunk(&tenant, json!({"server": "one.example.com"}))["id"].clone();
    let t2 = api.create_trunk(
        &tenant,
        json!({"server": "two.example.com", "authUser": "u2"}),
    )["id"]
        .clone();
    let foreign = api.create_trunk(&other, json!({"server": "other.example.com"}))["id"].clone();

    let main = api.create_number(
        &tenant,
        json!({
            "phoneNumber": "+14155550123",
            "credentialsId": t1,
            "registration": true,
            "displayName": "Front desk",
            "description": "main line",
            "incomingCallsAgentId": "agent-7",
        }),
    );
    for (field, value) in [
        ("phoneNumber", json!("+14155550123")),
        ("credentialsId", t1.clone()),
        ("registration", json!(true)),
        ("displayName", json!("Front desk")),
        ("description", json!("main line")),
        ("incomingCallsAgentId", json!("agent-7")),
    ] {
        assert_eq!(main[field], value, "{field}");
    }
    assert_eq!(
        main["registrationStatus"],
        json!({"state": "Pending", "errorDescription": null, "sipResponseMessage": null,
               "lastUpdated": null, "expiresAt": null})
    );
    assert_eq!(main["createdTime"], main["lastUpdateTime"]);

    let quiet = api.create_number(
        &tenant,
        json!({"phoneNumber": "+14155550124", "credentialsId": t1, "registration": false}),
    );
    assert_eq!(quiet["registrationStatus"], Value::Null);
    let bare = api.create_number(
        &tenant,
        json!({"phoneNumber": "+442071838750", "credentialsId": t1}),
    );
    assert_eq!(
        bare["registration"], false,
        "registration defaults to false"
    );
    assert_eq!(bare["registrationStatus"], Value::Null);
    for field in ["displayName", "description", "incomingCallsAgentId"] {
        assert_eq!(bare[field], Value::Null, "{field}");
    }

    // credentialsId must be one of this tenant's trunks.
    for (body, field) in [
        (
            json!({"phoneNumber": "+14155550125", "credentialsId": foreign}),
            "credentialsId",
        ),
        (
            json!({"phoneNumber": "+14155550125", "credentialsId": uuid::Uuid::new_v4().to_string()}),
            "credentialsId",
        ),
        (
            json!({"phoneNumber": "+14155550125", "credentialsId": "not-a-uuid"}),
            "credentialsId",
        ),
        (json!({"phoneNumber": "+14155550125"}), "credentialsId"),
        (
            json!({"phoneNumber": "+14155550125", "credentialsId": null}),
            "credentialsId",
        ),
        (
            json!({"phoneNumber": "14155550125", "credentialsId": t1}),
            "phoneNumber",
        ),
        (json!({"credentialsId": t1}), "phoneNumber"),
    ] {
        let response = server
            .dasha(Method::POST, NUMBERS, &tenant)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(error_fields(&problem(response, 400)), [field], "{body}");
    }
    // A duplicate number is a conflict, whichever trunk it names.
    for trunk in [&t1, &t2] {
        let body = json!({"phoneNumber": "+14155550123", "credentialsId": trunk});
        problem(
            server
                .dasha(Method::POST, NUMBERS, &tenant)
                .json(&body)
                .send()
                .unwrap(),
            409,
        );
    }
    assert_eq!(
        api.list(&tenant, NUMBERS, "")["totalCount"],
        3,
        "no failed POST left a row"
    );
    assert_eq!(
        api.get_number(&tenant, "+14155550123"),
        main,
        "the duplicate changed nothing"
    );

    // By `%2B…` and by a literal `+` in the path.
    let literal = ok(
        server
            .dasha(Method::GET, &format!("{NUMBERS}/+14155550123"), &tenant)
            .send()
            .unwrap(),
        200,
    );
    assert_eq!(literal, main);
    for missing in ["%2B14155550199", "+14155550199", "14155550123", "abc"] {
        let response = server
            .dasha(Method::GET, &format!("{NUMBERS}/{missing}"), &tenant)
            .send()
            .unwrap();
        problem(response, 404);
    }

    // PUT: the number is the key and cannot change; everything else is replaced.
    let put = |path: &str, body: Value| {
        server
            .dasha(Method::PUT, path, &tenant)
            .json(&body)
            .send()
            .unwrap()
    };
    let path = number_path("+14155550123");
    for (body, field) in [
        (
            json!({"phoneNumber": "+14155550999", "credentialsId": t1}),
            "phoneNumber",
        ),
        (
            json!({"phoneNumber": "+14155550123", "credentialsId": foreign}),
            "credentialsId",
        ),
        (json!({"phoneNumber": "+14155550123"}), "credentialsId"),
    ] {
        assert_eq!(
            error_fields(&problem(put(&path, body.clone()), 400)),
            [field],
            "{body}"
        );
    }
    assert_eq!(
        api.get_number(&tenant, "+14155550123"),
        main,
        "rejected PUTs changed nothing"
    );

    let moved = ok(
        put(
            &path,
            json!({"phoneNumber": "+14155550123", "credentialsId": t2, "registration": false}),
        ),
        200,
    );
    assert_number(&moved);
    assert_eq!(moved["credentialsId"], t2);
    assert_eq!(moved["registration"], false);
    for field in [
        "registrationStatus",
        "displayName",
        "description",
        "incomingCallsAgentId",
    ] {
        assert_eq!(
            moved[field],
            Value::Null,
            "{field} is replaced by its absence"
        );
    }
    assert_eq!(moved["createdTime"], main["createdTime"]);
    assert!(moved["lastUpdateTime"].as_str() > main["lastUpdateTime"].as_str());
    assert_eq!(api.get_number(&tenant, "+14155550123"), moved);

    // Without phoneNumber in the body, via the literal path.
    let named = ok(
        put(
            &format!("{NUMBERS}/+14155550123"),
            json!({"credentialsId": t2, "registration": true, "displayName": "Desk"}),
        ),
        200,
    );
    assert_eq!(named["displayName"], "Desk");
    assert_eq!(named["registrationStatus"]["state"], "Pending");
    assert!(named["lastUpdateTime"].as_str() > moved["lastUpdateTime"].as_str());
    problem(
        put(&number_path("+14155550199"), json!({"credentialsId": t2})),
        404,
    );

    // t2 now carries the number: it cannot be deleted until the number is gone.
    let in_use = problem(
        server
            .dasha(Method::DELETE, &trunk_path(&t2), &tenant)
            .send()
            .unwrap(),
        409,
    );
    assert!(
        in_use["detail"].as_str().unwrap().contains("phone number"),
        "{in_use}"
    );
    api.get_trunk(&tenant, &t2);
    ok(
        server.dasha(Method::DELETE, &path, &tenant).send().unwrap(),
        204,
    );
    problem(
        server.dasha(Method::GET, &path, &tenant).send().unwrap(),
        404,
    );
    problem(
        server.dasha(Method::DELETE, &path, &tenant).send().unwrap(),
        404,
    );
    ok(
        server
            .dasha(Method::DELETE, &trunk_path(&t2), &tenant)
            .send()
            .unwrap(),
        204,
    );
    // t1 still carries two numbers.
    problem(
        server
            .dasha(Method::DELETE, &trunk_path(&t1), &tenant)
            .send()
            .unwrap(),
        409,
    );

    // The number is free again.
    api.create_number(
        &tenant,
        json!({"phoneNumber": "+14155550123", "credentialsId": t1}),
    );

    // Pages: oldest first, skip/take as for trunks.
    let mut numbers = vec![
        json!("+14155550124"),
        json!("+442071838750"),
        json!("+14155550123"),
    ];
    for n in 0..3 {
        let number = format!("+3312345678{n}");
        api.create_number(&tenant, json!({"phoneNumber": number, "credentialsId": t1}));
        numbers.push(json!(number));
    }
    let page = api.list(&tenant, NUMBERS, "");
    assert_eq!(
        (&page["skip"], &page["take"], &page["totalCount"]),
        (&json!(0), &json!(20), &json!(6))
    );
    assert_eq!(item_ids(&page, "phoneNumber"), numbers);
    for item in page["items"].as_array().unwrap() {
        assert_number(item);
    }
    for (skip, take, range) in [(1, 2, 1..3), (4, 10, 4..6), (6, 1, 6..6), (50, 3, 6..6)] {
        let page = api.list(&tenant, NUMBERS, &format!("?skip={skip}&take={take}"));
        assert_eq!(
            item_ids(&page, "phoneNumber"),
            numbers[range],
            "skip={skip} take={take}"
        );
        assert_eq!(
            (&page["skip"], &page["take"], &page["totalCount"]),
            (&json!(skip), &json!(take), &json!(6))
        );
    }
    for (query, field) in [
        ("take=0", "take"),
        ("take=1001", "take"),
        ("skip=-1", "skip"),
    ] {
        let response = server
            .dasha(Method::GET, &format!("{NUMBERS}?{query}"), &tenant)
            .send()
            .unwrap();
        assert_eq!(error_fields(&problem(response, 400)), [field], "{query}");
    }
}

#[test]
fn tenants_are_isolated_and_tokens_are_required() {
    let server = Server::start();
    let a = server.tenant();
    let b = server.create_tenant("tenant-b");
    let api = Api::of(&server);
    let a_trunk = api.create_trunk(&a, json!({"server": "a.example.com", "description": "A"}));
    let a_number = api.create_number(
        &a,
        json!({"phoneNumber": "+14155550123", "credentialsId": a_trunk["id"], "registration": true}),
    );
    let b_trunk = api.create_trunk(&b, json!({"server": "b.example.com"}));

    // B touching A's trunk (in use, even) gets exactly what a random id gets.
    let random = json!(uuid::Uuid::new_v4().to_string());
    let trunk_body = json!({"server": "evil.example.com"});
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let attempt = |id: &Value| {
            let mut request = server.dasha(method.clone(), &trunk_path(id), &b);
            if method == Method::PUT {
                request = request.json(&trunk_body);
            }
            problem(request.send().unwrap(), 404)
        };
        assert_eq!(
            attempt(&a_trunk["id"]),
            attempt(&random),
            "{method} on A's trunk"
        );
    }
    // Same for A's phone number, against a number nobody has.
    let number_body = json!({"credentialsId": b_trunk["id"], "displayName": "evil"});
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let attempt = |number: &str| {
            let mut request = server.dasha(method.clone(), &number_path(number), &b);
            if method == Method::PUT {
                request = request.json(&number_body);
            }
            problem(request.send().unwrap(), 404)
        };
        assert_eq!(
            attempt("+14155550123"),
            attempt("+14155550777"),
            "{method} on A's number"
        );
    }
    assert_eq!(api.get_trunk(&a, &a_trunk["id"]), a_trunk);
    assert_eq!(api.get_number(&a, "+14155550123"), a_number);

    // Lists hold and count only one's own rows.
    let b_trunks = api.list(&b, TRUNKS, "");
    assert_eq!(
        (item_ids(&b_trunks, "id"), &b_trunks["totalCount"]),
        (vec![b_trunk["id"].clone()], &json!(1))
    );
    let b_numbers = api.list(&b, NUMBERS, "");
    assert_eq!(
        (&b_numbers["items"], &b_numbers["totalCount"]),
        (&json!([]), &json!(0))
    );

    // Numbers are unique per tenant: B may have the same number on its own trunk.
    let b_number = api.create_number(
        &b,
        json!({"phoneNumber": "+14155550123", "credentialsId": b_trunk["id"]}),
    );
    assert_eq!(b_number["credentialsId"], b_trunk["id"]);
    assert_eq!(api.get_number(&a, "+14155550123"), a_number);
    assert_eq!(api.get_number(&b, "+14155550123"), b_number);

    // Missing, unknown or wrongly presented tokens.
    let wrong = Tenant {
        account_id: a.account_id.clone(),
        api_key: format!("{}x", a.api_key),
    };
    for request in [
        server.client.get(server.url(TRUNKS)),
        server.client.get(server.url(&trunk_path(&a_trunk["id"]))),
        server
            .client
            .get(server.url(NUMBERS))
            .header("X-API-Key", &a.api_key),
        server
            .client
            .get(server.url(NUMBERS))
            .header("Authorization", format!("Basic {}", a.api_key)),
        server.dasha(Method::GET, TRUNKS, &wrong),
        server.dasha(Method::DELETE, &trunk_path(&a_trunk["id"]), &wrong),
    ] {
        problem(request.send().unwrap(), 401);
    }
    api.get_trunk(&a, &a_trunk["id"]);
}

#[test]
fn errors_outside_handlers_are_problem_details_too() {
    let server = Server::start();
    let tenant = server.tenant();
    let api = Api::of(&server);
    let trunk = api.create_trunk(&tenant, json!({"server": "sip.example.com"}));
    let cases = [
        (
            server
                .dasha(Method::PATCH, &trunk_path(&trunk["id"]), &tenant)
                .json(&json!({})),
            405,
        ),
        (
            server.dasha(Method::GET, "/api/v1/sip-nothing", &tenant),
            404,
        ),
        (
            server
                .dasha(Method::POST, TRUNKS, &tenant)
                .header("Content-Type", "text/plain")
                .body(r#"{"server": "sip.example.com"}"#),
            415,
        ),
    ];
    for (request, status) in cases {
        problem(request.send().unwrap(), status);
    }
    // A syntax error is a 400 about the body as a whole.
    let broken = server
        .dasha(Method::PUT, &trunk_path(&trunk["id"]), &tenant)
        .header("Content-Type", "application/json")
        .body("{\"server\": ");
    let response = broken.send().unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        header(&response, CONTENT_TYPE.as_str()),
        "application/problem+json"
    );
    let body: Value = response.json().unwrap();
    for field in ["type", "title", "detail"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "{body}"
        );
    }
    assert_eq!(body["status"], 400);
    assert_eq!(api.get_trunk(&tenant, &trunk["id"]), trunk);
    assert_eq!(api.list(&tenant, TRUNKS, "")["totalCount"], 1);
}
