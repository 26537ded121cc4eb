//! Benchmark ceiling for `bench/rest.sh` — not product code.
//!
//! The least an axum + sqlx server can do to answer trunkline's Ultravox list and create over
//! the same SQLite file, opened the same way (WAL, `synchronous = FULL`, foreign keys, a 10 s
//! busy timeout, one writer connection and four read-only readers):
//!
//! - `GET /api/sip/registrations?pageSize=N`: the first keyset page trunkline runs
//!   (`registrations LEFT JOIN registration_status … WHERE tenant_id = ? ORDER BY created_at, id
//!   LIMIT N+1`) plus the same `COUNT(*)`, answered as `{next, previous, results, total}`.
//! - `POST /api/sip/registrations`: the body as JSON, no validation, an AES-256-GCM seal of the
//!   password (random nonce, row identity as associated data, same byte layout) and one
//!   `INSERT`; `201` with the new registration.
//!
//! The tenant comes from `--tenant` or an `X-Tenant` header: no API-key lookup, no cursor
//! decoding, no metrics middleware, no change events. That is what makes it a ceiling. Rows it
//! creates are sealed under a throw-away key; point it only at a copy of a benchmark database.
//!
//! `--auth-query` adds one thing trunkline does, to attribute the gap: the tenant comes from
//! trunkline's API-key query (`api_keys` by the `X-API-Key` prefix) on the reader pool.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use clap::Parser;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// The same statement as trunkline's `registrations_page` without a cursor.
const PAGE_SQL: &str = "SELECT r.id, r.tenant_id, r.username, r.proxy, r.outbound_proxy, \
     r.auth_user, r.created_at, r.updated_at, s.state, s.last_code, s.last_phrase, s.failed_by, \
     s.last_attempt_at, s.expires_at, s.next_attempt_at, s.consecutive_failures, \
     s.transport AS status_transport, s.remote, s.updated_at AS status_updated_at \
     FROM registrations r LEFT JOIN registration_status s ON s.registration_id = r.id \
     WHERE r.tenant_id = $1 ORDER BY r.created_at, r.id LIMIT $2";
const COUNT_SQL: &str = "SELECT COUNT(*) FROM registrations WHERE tenant_id = $1";
const INSERT_SQL: &str = "INSERT INTO registrations (id, tenant_id, username, proxy, \
     outbound_proxy, auth_user, password_sealed, password_key_id, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

#[derive(Parser)]
#[command(
    name = "ceiling",
    about = "Benchmark ceiling for trunkline's Ultravox list/create"
)]
struct Args {
    /// SQLite database file (already migrated and seeded by trunkline).
    #[arg(long)]
    db: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Tenant (account id) served when a request has no `X-Tenant` header.
    #[arg(long)]
    tenant: String,
    /// Look the tenant up by the `X-API-Key` prefix, as trunkline does (no hash check).
    #[arg(long)]
    auth_query: bool,
}

#[derive(Clone)]
struct App {
    reader: SqlitePool,
    writer: SqlitePool,
    cipher: Arc<Aes256Gcm>,
    tenant: Arc<str>,
    auth_query: bool,
}

#[derive(sqlx::FromRow)]
#[allow(dead_code)] // selected to match trunkline's statement, not all shown
struct Row {
    id: String,
    tenant_id: String,
    username: String,
    proxy: String,
    outbound_proxy: Option<String>,
    auth_user: Option<String>,
    created_at: i64,
    updated_at: i64,
    state: Option<String>,
    last_code: Option<i64>,
    last_phrase: Option<String>,
    failed_by: Option<String>,
    last_attempt_at: Option<i64>,
    expires_at: Option<i64>,
    next_attempt_at: Option<i64>,
    consecutive_failures: Option<i64>,
    status_transport: Option<String>,
    remote: Option<String>,
    status_updated_at: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SipRegistration {
    registration_id: String,
    created: String,
    username: String,
    proxy: String,
    outbound_proxy: Option<String>,
    auth_user: Option<String>,
    successful: Option<bool>,
}

#[derive(Serialize)]
struct PageBody {
    next: Option<String>,
    previous: Option<String>,
    results: Vec<SipRegistration>,
    total: i64,
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(rename = "pageSize")]
    page_size: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    username: String,
    password: String,
    proxy: String,
    outbound_proxy: Option<String>,
    auth_user: Option<String>,
}

fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

async fn tenant(app: &App, headers: &HeaderMap) -> Result<String, Response> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    if !app.auth_query {
        return Ok(header("x-tenant").unwrap_or(&app.tenant).to_owned());
    }
    let key = header("x-api-key").unwrap_or_default();
    let row: Option<(String, Vec<u8>, Option<i64>)> =
        sqlx::query_as("SELECT tenant_id, sha256, revoked_at FROM api_keys WHERE prefix = $1")
            .bind(key.get(..12).unwrap_or_default())
            .fetch_optional(&app.reader)
            .await
            .map_err(internal)?;
    match row {
        Some((tenant, _, None)) => Ok(tenant),
        _ => Err(StatusCode::UNAUTHORIZED.into_response()),
    }
}

fn internal(err: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response()
}

async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<Json<PageBody>, Response> {
    let tenant = &tenant(&app, &headers).await?;
    let size = params.page_size.unwrap_or(100).clamp(1, 1000);
    let mut rows: Vec<Row> = sqlx::query_as(PAGE_SQL)
        .bind(tenant)
        .bind(i64::from(size) + 1)
        .fetch_all(&app.reader)
        .await
        .map_err(internal)?;
    let total: i64 = sqlx::query_scalar(COUNT_SQL)
        .bind(tenant)
        .fetch_one(&app.reader)
        .await
        .map_err(internal)?;
    let more = rows.len() > size as usize;
    rows.truncate(size as usize);
    let next = match rows.last() {
        Some(last) if more => {
            let simple = last.id.replace('-', "");
            let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("fx{}.{simple}", last.created_at));
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            Some(format!(
                "http://{host}/api/sip/registrations?cursor={cursor}&pageSize={size}"
            ))
        }
        _ => None,
    };
    let now = now_micros();
    let results = rows
        .into_iter()
        .map(|r| {
            let successful = match r.state.as_deref() {
                None => None,
                Some("registered") => Some(true),
                Some("registering" | "authenticating") if r.expires_at.is_some_and(|e| e > now) => {
                    Some(true)
                }
                Some(s) if s.starts_with("failed_") => Some(false),
                Some(_) => None,
            };
            SipRegistration {
                registration_id: r.id,
                created: rfc3339(r.created_at),
                username: r.username,
                proxy: r.proxy,
                outbound_proxy: r.outbound_proxy,
                auth_user: r.auth_user,
                successful,
            }
        })
        .collect();
    Ok(Json(PageBody {
        next,
        previous: None,
        results,
        total,
    }))
}

async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<SipRegistration>), Response> {
    let tenant = &tenant(&app, &headers).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_micros();
    // Same layout as trunkline's sealer: version | nonce | ciphertext+tag.
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let aad = format!("registrations:{tenant}:{id}");
    let encrypted = app
        .cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: body.password.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .map_err(internal)?;
    let mut sealed = Vec::with_capacity(13 + encrypted.len());
    sealed.push(1);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&encrypted);
    sqlx::query(INSERT_SQL)
        .bind(&id)
        .bind(tenant)
        .bind(&body.username)
        .bind(&body.proxy)
        .bind(&body.outbound_proxy)
        .bind(&body.auth_user)
        .bind(sealed)
        .bind("ceiling00000")
        .bind(now)
        .bind(now)
        .execute(&app.writer)
        .await
        .map_err(internal)?;
    Ok((
        StatusCode::CREATED,
        Json(SipRegistration {
            registration_id: id,
            created: rfc3339(now),
            username: body.username,
            proxy: body.proxy,
            outbound_proxy: body.outbound_proxy,
            auth_user: body.auth_user,
            successful: None,
        }),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = SqliteConnectOptions::new()
        .filename(&args.db)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    // Pools as trunkline's: no ping before each use.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(options.clone())
        .await?;
    let reader = SqlitePoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(options.read_only(true))
        .await?;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let app = App {
        reader,
        writer,
        cipher: Arc::new(Aes256Gcm::new(&key.into())),
        tenant: args.tenant.into(),
        auth_query: args.auth_query,
    };
    let router = Router::new()
        .route("/api/sip/registrations", get(list).post(create))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await?;
    Ok(())
}
