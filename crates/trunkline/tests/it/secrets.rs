//! Secrets stay secret: with logging at `debug`, objects are created and changed in all three
//! dialects with distinctive passwords, every read endpoint is called, and then no response
//! (body or header), no log line and no byte of the database files may hold a password or an
//! API key — except the one `default tenant:` line the spec prints at first start. The database
//! must still hold what the service needs: the HA1 digests of the current Vobiz passwords, and
//! sealed Ultravox/Dasha passwords that open (with the data directory's `master.key`) to the
//! current plaintext and to nothing under another key.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::blocking::Response;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json as body, Value};
use trunkline_core::secret::DigestHashes;
use trunkline_core::AccountId;
use trunkline_store::{MasterKey, Sealer};
use uuid::Uuid;

use crate::common::{Method, Server, ServerOptions};

// Distinctive passwords: each one must never show up outside the request that sets it.
const UV_FIRST: &str = "uvx-Secret-Pw1-Quokka-41";
const UV_SECOND: &str = "uvx-Secret-Pw2-Narwhal-52";
const DA_FIRST: &str = "dasha-Secret-Pw1-Axolotl-63";
const DA_SECOND: &str = "dasha-Secret-Pw2-Pangolin-74";
const VB_FIRST: &str = "vobiz-Secret-Pw1-Okapi-85";
const VB_SECOND: &str = "vobiz-Secret-Pw2-Tapir-96";
const T2_UV: &str = "t2-uvx-Secret-Pw-Lynx-18";
const T2_VB: &str = "t2-vobiz-Secret-Pw-Ibex-07";
/// Sent only in requests that are rejected (validation error, duplicate).
const REJECTED: &str = "rejected-Secret-Pw-Gecko-29";

const PASSWORDS: [&str; 9] = [
    UV_FIRST, UV_SECOND, DA_FIRST, DA_SECOND, VB_FIRST, VB_SECOND, T2_UV, T2_VB, REJECTED,
];

const NUMBER: &str = "+14155550123";
const NUMBER_PATH: &str = "%2B14155550123";

/// Every response seen, as text (status line, headers and body), for the leak checks.
#[derive(Default)]
struct Seen {
    responses: Vec<(String, String)>,
}

impl Seen {
    /// Records the response and returns its status and JSON body (`Null` if empty or not JSON).
    fn take(&mut self, label: &str, response: Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let mut text = format!("{status}\n");
        for (name, value) in response.headers() {
            text.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        let body = response.text().expect("body");
        text.push_str(&body);
        self.responses.push((label.to_owned(), text));
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn expect(&mut self, label: &str, response: Response, status: u16) -> Value {
        let (got, value) = self.take(label, response);
        assert_eq!(got, status, "{label}: {value}");
        value
    }
}

#[test]
fn no_password_or_api_key_leaks_into_responses_logs_or_the_database() {
    let mut server = Server::start_with(ServerOptions {
        log: "debug".into(),
        ..ServerOptions::default()
    });
    let t1 = server.tenant();
    let t2 = server.create_tenant("second-tenant");
    let mut seen = Seen::default();

    // --- writes in all three dialects ---
    let uv = seen.expect(
        "ultravox create",
        server
            .ultravox(Method::POST, "/api/sip/registrations", &t1)
            .json(
                &body!({"username": "alice", "password": UV_FIRST, "proxy": "sip.example.com",
                          "authUser": "alice-auth"}),
            )
            .send()
            .unwrap(),
        201,
    );
    let uv_id = uv["registrationId"].as_str().unwrap().to_owned();
    let uv_path = format!("/api/sip/registrations/{uv_id}");
    seen.expect(
        "ultravox patch",
        server
            .ultravox(Method::PATCH, &uv_path, &t1)
            .json(&body!({"password": UV_SECOND}))
            .send()
            .unwrap(),
        200,
    );
    let (status, _) = seen.take(
        "ultravox create rejected",
        server
            .ultravox(Method::POST, "/api/sip/registrations", &t1)
            .json(&body!({"username": "bob", "password": REJECTED, "proxy": "not a proxy!"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400);

    let trunk = seen.expect(
        "dasha trunk create",
        server
            .dasha(Method::POST, "/api/v1/sip-credentials", &t1)
            .json(
                &body!({"server": "sip.carrier.example:5060", "transport": "udp",
                          "domain": "carrier.example", "authUser": "trunk-user",
                          "authPassword": DA_FIRST}),
            )
            .send()
            .unwrap(),
        201,
    );
    assert_eq!(trunk["authPassword"], Value::Null);
    let trunk_id = trunk["id"].as_str().unwrap().to_owned();
    let trunk_path = format!("/api/v1/sip-credentials/{trunk_id}");
    let replaced = seen.expect(
        "dasha trunk put",
        server
            .dasha(Method::PUT, &trunk_path, &t1)
            .json(
                &body!({"server": "sip.carrier.example:5060", "transport": "udp",
                          "domain": "carrier.example", "authUser": "trunk-user",
                          "authPassword": DA_SECOND}),
            )
            .send()
            .unwrap(),
        200,
    );
    assert_eq!(replaced["authPassword"], Value::Null);
    seen.expect(
        "dasha number create",
        server
            .dasha(Method::POST, "/api/v1/sip-phone-numbers", &t1)
            .json(&body!({"phoneNumber": NUMBER, "credentialsId": trunk_id, "registration": true}))
            .send()
            .unwrap(),
        201,
    );

    let vb = seen.expect(
        "vobiz create",
        server
            .vobiz(Method::POST, "/credentials", &t1)
            .json(&body!({"username": "desk-phone-1", "password": VB_FIRST, "description": "desk"}))
            .send()
            .unwrap(),
        201,
    );
    assert_eq!(vb["password"], "<redacted>");
    let vb_id = vb["id"].as_str().unwrap().to_owned();
    let vb_realm = vb["realm"].as_str().unwrap().to_owned();
    let vb_path = format!("/credentials/{vb_id}");
    seen.expect(
        "vobiz put",
        server
            .vobiz(Method::PUT, &vb_path, &t1)
            .json(&body!({"password": VB_SECOND}))
            .send()
            .unwrap(),
        200,
    );
    let (status, _) = seen.take(
        "vobiz duplicate",
        server
            .vobiz(Method::POST, "/credentials", &t1)
            .json(&body!({"username": "desk-phone-1", "password": REJECTED}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 409);

    // The second tenant (created by the CLI) has objects of its own.
    let t2_uv = seen.expect(
        "t2 ultravox create",
        server
            .ultravox(Method::POST, "/api/sip/registrations", &t2)
            .json(&body!({"username": "carol", "password": T2_UV, "proxy": "sips:reg.example.org;transport=tls"}))
            .send()
            .unwrap(),
        201,
    );
    let t2_uv_id = t2_uv["registrationId"].as_str().unwrap().to_owned();
    let t2_vb = seen.expect(
        "t2 vobiz create",
        server
            .vobiz(Method::POST, "/credentials", &t2)
            .json(&body!({"username": "lobby-phone", "password": T2_VB}))
            .send()
            .unwrap(),
        201,
    );
    let t2_vb_realm = t2_vb["realm"].as_str().unwrap().to_owned();

    // --- every read endpoint, both tenants, plus rejected cross-tenant attempts ---
    for (tenant, label) in [(&t1, "t1"), (&t2, "t2")] {
        for path in [
            "/api/sip/registrations",
            "/api/sip/registrations?pageSize=1",
        ] {
            seen.expect(
                &format!("{label} GET {path}"),
                server.ultravox(Method::GET, path, tenant).send().unwrap(),
                200,
            );
        }
        for path in ["/api/v1/sip-credentials", "/api/v1/sip-phone-numbers"] {
            seen.expect(
                &format!("{label} GET {path}"),
                server.dasha(Method::GET, path, tenant).send().unwrap(),
                200,
            );
        }
        seen.expect(
            &format!("{label} vobiz list"),
            server
                .vobiz(Method::GET, "/trunks/credentials", tenant)
                .send()
                .unwrap(),
            200,
        );
    }
    seen.expect(
        "ultravox get",
        server.ultravox(Method::GET, &uv_path, &t1).send().unwrap(),
        200,
    );
    seen.expect(
        "dasha trunk get",
        server.dasha(Method::GET, &trunk_path, &t1).send().unwrap(),
        200,
    );
    let number_path = format!("/api/v1/sip-phone-numbers/{NUMBER_PATH}");
    seen.expect(
        "dasha number get",
        server.dasha(Method::GET, &number_path, &t1).send().unwrap(),
        200,
    );
    seen.expect(
        "vobiz get",
        server.vobiz(Method::GET, &vb_path, &t1).send().unwrap(),
        200,
    );
    // Live bindings and status history may not exist yet; whatever they answer must not leak.
    seen.take(
        "vobiz bindings",
        server
            .vobiz(Method::GET, &format!("{vb_path}/registrations"), &t1)
            .send()
            .unwrap(),
    );
    for id in [uv_id.as_str(), NUMBER_PATH] {
        let path = format!("/v1/registrations/{id}");
        seen.expect(
            &format!("own {path} X-API-Key"),
            server.ultravox(Method::GET, &path, &t1).send().unwrap(),
            200,
        );
        seen.expect(
            &format!("own {path} Bearer"),
            server.dasha(Method::GET, &path, &t1).send().unwrap(),
            200,
        );
        let with_auth_id = server
            .client
            .get(server.url(&path))
            .header("X-Auth-ID", &t1.account_id)
            .header("X-Auth-Token", &t1.api_key)
            .send()
            .unwrap();
        seen.expect(&format!("own {path} X-Auth-ID"), with_auth_id, 200);
        seen.take(
            &format!("own {path}/history"),
            server
                .ultravox(Method::GET, &format!("{path}/history"), &t1)
                .send()
                .unwrap(),
        );
    }
    seen.expect(
        "t2 ultravox get",
        server
            .ultravox(
                Method::GET,
                &format!("/api/sip/registrations/{t2_uv_id}"),
                &t2,
            )
            .send()
            .unwrap(),
        200,
    );
    seen.expect(
        "t1 reads t2's registration",
        server
            .ultravox(
                Method::GET,
                &format!("/api/sip/registrations/{t2_uv_id}"),
                &t1,
            )
            .send()
            .unwrap(),
        404,
    );
    let foreign_path = server
        .client
        .get(server.url(&format!(
            "/api/v1/account/{}/trunks/credentials",
            t2.account_id
        )))
        .header("X-Auth-ID", &t1.account_id)
        .header("X-Auth-Token", &t1.api_key)
        .send()
        .unwrap();
    seen.expect("t1 on t2's vobiz path", foreign_path, 403);
    let mismatched = server
        .client
        .get(server.url(&format!(
            "/api/v1/account/{}/trunks/credentials",
            t2.account_id
        )))
        .header("X-Auth-ID", &t2.account_id)
        .header("X-Auth-Token", &t1.api_key)
        .send()
        .unwrap();
    seen.expect("t1 key with t2's auth id", mismatched, 401);
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        seen.expect(
            path,
            server.client.get(server.url(path)).send().unwrap(),
            200,
        );
    }

    // --- responses ---
    let keys = [t1.api_key.as_str(), t2.api_key.as_str()];
    for (label, text) in &seen.responses {
        for secret in PASSWORDS.iter().chain(&keys) {
            assert!(
                !text.contains(secret),
                "response to {label} contains a secret:\n{text}"
            );
        }
    }

    // --- logs, including the shutdown ---
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let logs = wait_for_log(&server, "stopped");
    assert!(
        logs.iter()
            .filter(|line| line.contains("DEBUG") && line.contains(" route="))
            .count()
            >= seen.responses.len(),
        "debug logging is on, so every request is logged:\n{}",
        logs.join("\n")
    );
    let key_lines: Vec<&String> = logs
        .iter()
        .filter(|line| line.contains(&t1.api_key))
        .collect();
    assert_eq!(
        key_lines,
        [&format!(
            "default tenant: account_id={} api_key={}",
            t1.account_id, t1.api_key
        )],
        "the default tenant's key is printed once, on its own line, and nowhere else"
    );
    for line in &logs {
        assert!(
            !line.contains(&t2.api_key),
            "log line holds the second tenant's key: {line}"
        );
        for password in PASSWORDS {
            assert!(
                !line.contains(password),
                "log line holds a password: {line}"
            );
        }
    }

    // --- the database files hold no plaintext, base64 or hex of any password or key ---
    let files = server.database_bytes();
    assert!(
        !files.is_empty() && !files[0].1.is_empty(),
        "trunkline.db exists"
    );
    // Positive control: plain (non-secret) values written above are found by the same search.
    for plain in ["desk-phone-1", "sip.carrier.example:5060", uv_id.as_str()] {
        assert!(
            files
                .iter()
                .any(|(_, bytes)| contains(bytes, plain.as_bytes())),
            "{plain} is stored"
        );
    }
    for (name, bytes) in &files {
        for secret in PASSWORDS.iter().chain(&keys) {
            for form in encodings(secret) {
                assert!(
                    !contains(bytes, form.as_bytes()),
                    "{name} holds {secret} as {form:?}"
                );
            }
        }
    }

    // --- … but it holds what the registrar needs: HA1 digests of the current passwords ---
    for (username, realm, password) in [
        ("desk-phone-1", vb_realm.as_str(), VB_SECOND),
        ("lobby-phone", t2_vb_realm.as_str(), T2_VB),
    ] {
        let hashes =
            DigestHashes::compute(username, realm, &SecretString::from(password.to_owned()));
        for (algorithm, ha1) in [("MD5", &hashes.md5), ("SHA-256", &hashes.sha256)] {
            assert!(
                files
                    .iter()
                    .any(|(_, bytes)| contains(bytes, ha1.as_bytes())),
                "the {algorithm} HA1 of {username}'s current password is stored"
            );
        }
    }

    // --- … and sealed passwords that open to the current values with the data dir's key ---
    let key = read_master_key(server.data_dir());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = server.database_url();
        let account1 = AccountId::parse(&t1.account_id).unwrap();
        let account2 = AccountId::parse(&t2.account_id).unwrap();
        let uv_uuid = Uuid::parse_str(&uv_id).unwrap();
        let t2_uv_uuid = Uuid::parse_str(&t2_uv_id).unwrap();
        let trunk_uuid = Uuid::parse_str(&trunk_id).unwrap();

        let store = trunkline_store::open(&url, Sealer::new(&key, &[]))
            .await
            .expect("open store");
        let opened = store
            .registration_password(&account1, uv_uuid)
            .await
            .unwrap()
            .expect("sealed password");
        assert_eq!(opened.expose_secret(), UV_SECOND);
        let opened = store
            .registration_password(&account2, t2_uv_uuid)
            .await
            .unwrap()
            .expect("sealed password");
        assert_eq!(opened.expose_secret(), T2_UV);
        let trunk = store
            .trunk(&account1, trunk_uuid, true)
            .await
            .unwrap()
            .expect("trunk");
        assert!(trunk.has_password);
        assert_eq!(
            trunk.revealed_password.expect("revealed").expose_secret(),
            DA_SECOND
        );
        // Sealed to its row: another tenant's scope finds nothing.
        assert!(store
            .registration_password(&account2, uv_uuid)
            .await
            .unwrap()
            .is_none());
        store.close().await;

        // Another master key cannot open them: they are encrypted, not merely encoded.
        let other = trunkline_store::open(&url, Sealer::new(&MasterKey::generate(), &[]))
            .await
            .unwrap();
        assert!(other
            .registration_password(&account1, uv_uuid)
            .await
            .is_err());
        assert!(other.trunk(&account1, trunk_uuid, true).await.is_err());
        other.close().await;
    });
}

/// The forms a leaked secret could take in a file.
fn encodings(secret: &str) -> [String; 4] {
    [
        secret.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        secret.bytes().map(|b| format!("{b:02x}")).collect(),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
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
