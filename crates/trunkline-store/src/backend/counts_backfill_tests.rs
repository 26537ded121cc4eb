//! The migration that adds the per-tenant totals counts the rows that exist before it, on both
//! backends: rows are written under the schema just before it, then the rest is migrated.

use std::borrow::Cow;

use sqlx::migrate::Migrator;

/// Rows of two tenants, in the schema before `tenant_counts` (the same on both backends).
const ROWS: &[&str] = &[
    "INSERT INTO tenants (account_id, name, created_at) VALUES ('ta', 'a', 1), ('tb', 'b', 1)",
    "INSERT INTO registrations (id, tenant_id, username, proxy, password_sealed, password_key_id, \
     created_at, updated_at) VALUES \
     ('r1', 'ta', 'u', 'p', 'x', 'k', 1, 1), ('r2', 'ta', 'u', 'p', 'x', 'k', 2, 2), \
     ('r3', 'ta', 'u', 'p', 'x', 'k', 3, 3), ('r4', 'tb', 'u', 'p', 'x', 'k', 4, 4)",
    "INSERT INTO trunks (id, tenant_id, server, transport, created_at, updated_at) VALUES \
     ('t1', 'ta', 's', 'udp', 1, 1), ('t2', 'tb', 's', 'udp', 1, 1), ('t3', 'tb', 's', 'udp', 2, 2)",
    "INSERT INTO phone_numbers (id, tenant_id, phone_number, trunk_id, registration, created_at, \
     updated_at) VALUES ('n1', 'tb', '+1555', 't2', false, 1, 1)",
    "INSERT INTO inbound_credentials (id, tenant_id, username, realm, ha1_md5, ha1_sha256, enabled, \
     created_at, updated_at) VALUES ('c1', 'ta', 'u', 'r', 'h', 'h', true, 1, 1)",
];

/// What the migration must find: (tenant, entity, n), sorted.
const EXPECTED: &[(&str, &str, i64)] = &[
    ("ta", "inbound_credentials", 1),
    ("ta", "registrations", 3),
    ("ta", "trunks", 1),
    ("tb", "phone_numbers", 1),
    ("tb", "registrations", 1),
    ("tb", "trunks", 2),
];

const READ: &str = "SELECT tenant_id, entity, n FROM tenant_counts ORDER BY tenant_id, entity";

/// `full` less the migrations from `first_counted` on.
fn before(full: &Migrator, first_counted: i64) -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            full.iter()
                .filter(|m| m.version < first_counted)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

fn expected() -> Vec<(String, String, i64)> {
    EXPECTED
        .iter()
        .map(|(t, e, n)| (t.to_string(), e.to_string(), *n))
        .collect()
}

#[tokio::test]
async fn sqlite_backfills_existing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("t.db"))
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    before(&super::sqlite::MIGRATOR, 13)
        .run(&pool)
        .await
        .unwrap();
    for sql in ROWS {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    super::sqlite::MIGRATOR.run(&pool).await.unwrap();
    let counts: Vec<(String, String, i64)> = sqlx::query_as(READ).fetch_all(&pool).await.unwrap();
    assert_eq!(counts, expected());
}

#[tokio::test]
async fn postgres_backfills_existing_rows() {
    let url = test_postgres::PgServer::shared().database();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    before(&super::postgres::MIGRATOR, 9)
        .run(&pool)
        .await
        .unwrap();
    for sql in ROWS {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    super::postgres::MIGRATOR.run(&pool).await.unwrap();
    let counts: Vec<(String, String, i64)> = sqlx::query_as(READ).fetch_all(&pool).await.unwrap();
    assert_eq!(counts, expected());
}
