//! The harness against a real server: isolated databases, the store's PostgreSQL migrations,
//! bytewise ordering of ids, and the PostgreSQL schema against the one the SQLite migrations
//! end with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection, SqliteConnection};
use test_postgres::PgServer;

fn migrations(engine: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../trunkline-store/migrations")
        .join(engine)
}

async fn migrated_postgres() -> PgConnection {
    let url = PgServer::shared().database();
    let mut pg = PgConnection::connect(&url).await.unwrap();
    Migrator::new(migrations("postgres"))
        .await
        .unwrap()
        .run(&mut pg)
        .await
        .unwrap();
    pg
}

async fn tables(pg: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(pg)
    .await
    .unwrap()
}

#[tokio::test]
async fn databases_are_separate_and_take_the_migrations() {
    let server = PgServer::shared();
    let (one, two) = (server.database(), server.database());
    assert_ne!(one, two);

    let mut pg = PgConnection::connect(&one).await.unwrap();
    Migrator::new(migrations("postgres"))
        .await
        .unwrap()
        .run(&mut pg)
        .await
        .unwrap();
    assert!(tables(&mut pg).await.contains(&"trunks".to_owned()));

    let mut other = PgConnection::connect(&two).await.unwrap();
    assert_eq!(
        tables(&mut other).await,
        Vec::<String>::new(),
        "{two} shares tables with {one}"
    );
}

#[tokio::test]
async fn ids_order_bytewise() {
    let mut pg = migrated_postgres().await;
    for id in ["a", "B", "_", "b", "A"] {
        sqlx::query("INSERT INTO tenants (account_id, name, created_at) VALUES ($1, 'n', 0)")
            .bind(id)
            .execute(&mut pg)
            .await
            .unwrap();
    }
    let ordered: Vec<String> =
        sqlx::query_scalar("SELECT account_id FROM tenants ORDER BY account_id")
            .fetch_all(&mut pg)
            .await
            .unwrap();
    assert_eq!(ordered, ["A", "B", "_", "a", "b"]);
    let below: Vec<String> =
        sqlx::query_scalar("SELECT account_id FROM tenants WHERE account_id < 'a' ORDER BY 1")
            .fetch_all(&mut pg)
            .await
            .unwrap();
    assert_eq!(below, ["A", "B", "_"]);

    // Bytewise by the columns' own collation, not the database's default (C here, not in
    // production): every id and key column says COLLATE "C".
    let keys = [
        ("tenants", "account_id"),
        ("api_keys", "prefix"),
        ("api_keys", "tenant_id"),
        ("registrations", "id"),
        ("registrations", "tenant_id"),
        ("registrations", "username"),
        ("trunks", "id"),
        ("trunks", "tenant_id"),
        ("trunks", "cps_key"),
        ("phone_numbers", "id"),
        ("phone_numbers", "tenant_id"),
        ("phone_numbers", "phone_number"),
        ("phone_numbers", "trunk_id"),
        ("inbound_credentials", "id"),
        ("inbound_credentials", "tenant_id"),
        ("inbound_credentials", "username"),
        ("registration_status", "registration_id"),
        ("registration_status", "tenant_id"),
        ("registration_history", "registration_id"),
        ("registration_history", "tenant_id"),
        ("inbound_bindings", "tenant_id"),
        ("inbound_bindings", "credential_id"),
        ("inbound_bindings", "contact"),
    ];
    for (table, column) in keys {
        let collation: Option<String> = sqlx::query_scalar(
            "SELECT collation_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2",
        )
        .bind(table)
        .bind(column)
        .fetch_one(&mut pg)
        .await
        .unwrap_or_else(|e| panic!("{table}.{column}: {e}"));
        assert_eq!(collation.as_deref(), Some("C"), "{table}.{column}");
    }
}

/// Per table: column → (type, NOT NULL, default), the SQLite types named as PostgreSQL's.
type Columns = BTreeMap<String, BTreeMap<String, (String, bool, Option<String>)>>;

#[tokio::test]
async fn same_schema_as_sqlite() {
    let mut lite = SqliteConnection::connect("sqlite::memory:").await.unwrap();
    Migrator::new(migrations("sqlite"))
        .await
        .unwrap()
        .run(&mut lite)
        .await
        .unwrap();
    let rows: Vec<(String, String, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT m.name, c.name, c.type, c.\"notnull\" OR c.pk > 0, c.dflt_value \
         FROM sqlite_master m, pragma_table_info(m.name) c \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap();
    let mut sqlite = Columns::new();
    for (table, column, ty, not_null, default) in rows {
        let ty = match ty.as_str() {
            "INTEGER" => "bigint",
            "TEXT" => "text",
            "BLOB" => "bytea",
            "BOOLEAN" => "boolean",
            other => panic!("{table}.{column}: SQLite type {other} has no mapping here"),
        };
        sqlite
            .entry(table)
            .or_default()
            .insert(column, (ty.to_owned(), not_null, default));
    }

    // `outbound_counts` is PostgreSQL's alone: several nodes share registrations by it, one
    // SQLite node counts them.
    let mut pg = migrated_postgres().await;
    let rows: Vec<(String, String, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO', \
                column_default::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' \
           AND table_name NOT IN ('_sqlx_migrations', 'outbound_counts')",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    let mut postgres = Columns::new();
    for (table, column, ty, not_null, default) in rows {
        postgres
            .entry(table)
            .or_default()
            // `''::text` is PostgreSQL's spelling of SQLite's `''`.
            .insert(
                column,
                (
                    ty,
                    not_null,
                    default.map(|d| d.trim_end_matches("::text").to_owned()),
                ),
            );
    }
    assert_eq!(postgres, sqlite);

    // The same indexes (those behind primary keys and UNIQUE constraints included) and foreign
    // keys; the named ones under the same name.
    let mut lite_indexes: Vec<(String, bool, String, bool)> = sqlx::query_as(
        "SELECT m.name, il.\"unique\" = 1, \
                (SELECT group_concat(name, ',') FROM \
                   (SELECT ii.name FROM pragma_index_info(il.name) ii ORDER BY ii.seqno)), \
                il.partial = 1 \
         FROM sqlite_master m, pragma_index_list(m.name) il \
         WHERE m.type = 'table' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap();
    let mut pg_indexes: Vec<(String, bool, String, bool)> = sqlx::query_as(
        "SELECT t.relname::text, ix.indisunique, \
                array_to_string(array(SELECT a.attname FROM unnest(ix.indkey::int2[]) \
                    WITH ORDINALITY k (attnum, o) \
                    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
                    ORDER BY k.o), ','), \
                ix.indpred IS NOT NULL \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'public' \
           AND t.relname NOT IN ('_sqlx_migrations', 'outbound_counts')",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    lite_indexes.sort();
    pg_indexes.sort();
    assert_eq!(pg_indexes, lite_indexes);

    let named: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap();
    assert!(named.contains(&"trunks_cps_key".to_owned()), "{named:?}");
    let pg_named: Vec<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'")
            .fetch_all(&mut pg)
            .await
            .unwrap();
    for index in &named {
        assert!(
            pg_named.contains(index),
            "index {index} missing from {pg_named:?}"
        );
    }
    let partial: String =
        sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'trunks_cps_key'")
            .fetch_one(&mut pg)
            .await
            .unwrap();
    assert!(
        partial.ends_with("WHERE (cps_key IS NOT NULL)"),
        "{partial}"
    );

    let mut lite_keys: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT m.name, f.\"from\", f.\"table\", f.\"to\", f.on_delete \
         FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap();
    let mut pg_keys: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, a.attname::text, c.confrelid::regclass::text, \
                r.attname::text, \
                CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'a' THEN 'NO ACTION' \
                     ELSE c.confdeltype::text END \
         FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = c.confkey[1] \
         WHERE c.contype = 'f' AND cardinality(c.conkey) = 1",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    lite_keys.sort();
    pg_keys.sort();
    assert!(lite_keys.iter().any(|k| k.4 == "CASCADE"), "{lite_keys:?}");
    assert_eq!(pg_keys, lite_keys);
}
