//! `ReactiveDb` on SQLite (always runs): interception of every sqlx API, precise
//! invalidation with old and new key values, transactions, unknown statements.
#![cfg(feature = "sqlite")]

mod db_support;

use db_support::*;
use reactive_runtime::db::{CallError, DbOptions};
use serde_json::json;

#[tokio::test]
async fn sqlx_apis_are_intercepted() {
    let db = sqlite("api", DbOptions::default()).await;
    executor_apis(&db, "sqlite").await;
}

scenario_tests!("sqlite", |scenario| Some(
    sqlite(&format!("scenario_{scenario}"), DbOptions::default()).await
));

#[tokio::test]
async fn unlisted_statements() {
    let db = sqlite("unlisted", DbOptions::default()).await;
    let f = Fixture::new(db, "sqlite_unlisted").await;
    unlisted_statement_is_recorded(&f).await;
}

#[tokio::test]
async fn without_pre_read_old_values_are_unknown() {
    let db = sqlite(
        "no_pre_read",
        DbOptions {
            read_old_values: false,
            ..DbOptions::default()
        },
    )
    .await;
    let f = Fixture::new(db, "sqlite_no_pre_read").await;
    warm(&f).await;
    f.write(&[("rename", vec![json!("ada2"), json!(1)])], None)
        .await;
    // The organization of agent 1 is unknown: both organizations are invalidated.
    f.expect(1, false, "rename without pre-read").await;
    f.expect(2, false, "rename without pre-read").await;
    assert_eq!(f.db.stats().pre_reads, 0);
    warm(&f).await;
    f.write(&[("move", vec![json!(2), json!(1)])], None).await;
    f.expect(1, false, "move without pre-read").await;
    f.expect(2, false, "move without pre-read").await;
}

#[tokio::test]
async fn input_errors_never_touch_the_database() {
    let db = sqlite("input", DbOptions::default()).await;
    let f = Fixture::new(db, "sqlite_input").await;
    let before = f.db.stats().statements;
    let err =
        f.db.call(f.by_org, "tenant", json!({ "table": f.t, "org": "x" }))
            .await
            .unwrap_err();
    match err {
        CallError::Input(e) => assert_eq!(e.path, "org"),
        other => panic!("expected an input error, got {other:?}"),
    }
    assert_eq!(f.db.stats().statements, before);
}

#[tokio::test]
async fn model_statements_are_not_parsed() {
    let db = sqlite("model", DbOptions::default()).await;
    let f = Fixture::new(db, "sqlite_model").await;
    let before = f.db.stats();
    f.agents(1).await;
    let after = f.db.stats();
    assert_eq!(after.model_statements, before.model_statements + 1);
    assert_eq!(after.parsed_at_runtime, before.parsed_at_runtime);
}

#[tokio::test]
async fn memory_url_uses_one_connection() {
    let db = reactive_runtime::ReactiveDb::connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::query("CREATE TABLE m (id INTEGER)")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO m (id) VALUES (1)")
        .execute(&db)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM m")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(db.dialect(), reactive_codegen::sql::Dialect::Sqlite);
}

#[tokio::test]
async fn failed_pre_reads_fall_back() {
    let db = sqlite("ghost", DbOptions::default()).await;
    let f = Fixture::new(db, "sqlite_ghost").await;
    pre_read_failure_falls_back(&f).await;
}

#[tokio::test]
async fn collation_of_model_keys() {
    let db = sqlite("collation", DbOptions::default()).await;
    let f = Fixture::new(db, "sqlite_collation").await;
    backend_collation_applies_to_model_keys(&f).await;
}

#[tokio::test]
async fn generated_ids_from_returning() {
    let db = sqlite("returning", DbOptions::default()).await;
    returning_gives_generated_ids(
        &db,
        "gen_item",
        "CREATE TABLE gen_item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, organization_id INTEGER NOT NULL)",
    )
    .await;
}

#[tokio::test]
async fn views_read_their_base_tables() {
    let db = sqlite("view", DbOptions::default()).await;
    let f = Fixture::new(db, "sqlite_view").await;
    view_reads_its_base_tables(&f).await;
}

/// Any trigger makes its table's written rows unknown on SQLite (`precise` off).
#[tokio::test]
async fn trigger_writes_reach_their_tables_cached_queries() {
    let db = sqlite("trigger_write", DbOptions::default()).await;
    let f = Fixture::new(db, "sqlite_trigger_write").await;
    trigger_writes_reach_their_tables(
        &f,
        "CREATE TRIGGER {c}_ins AFTER INSERT ON {t} BEGIN \
         UPDATE {c} SET name = NEW.name WHERE organization_id = NEW.organization_id; END",
        false,
        &["dee"],
    )
    .await;
}

/// SQLite views are read-only unless an `INSTEAD OF` trigger writes the base table.
#[tokio::test]
async fn writes_through_a_view_change_its_base_tables() {
    let db = sqlite("view_write", DbOptions::default()).await;
    let f = Fixture::new(db, "sqlite_view_write").await;
    view_writes_change_its_base_tables(
        &f,
        Some(
            "CREATE TRIGGER {v}_update INSTEAD OF UPDATE ON {v} BEGIN \
             UPDATE {t} SET name = NEW.name WHERE id = OLD.id; END",
        ),
    )
    .await;
}

/// A table constraint `ON CONFLICT REPLACE` makes a plain `INSERT` (or `UPDATE`) delete
/// the rows it conflicts with, which the statement does not name:
/// the write must count as changing the whole table.
#[tokio::test]
async fn on_conflict_replace_constraints_widen_plain_writes() {
    let db = sqlite("replace_constraint", DbOptions::default()).await;
    let f = Fixture::new(db, "lite_replace").await;
    for sql in [
        format!("DROP TABLE {}", f.t),
        format!(
            "CREATE TABLE {} (id BIGINT PRIMARY KEY, \
             name VARCHAR(100) NOT NULL UNIQUE ON CONFLICT REPLACE, organization_id BIGINT NOT NULL)",
            f.t
        ),
        format!(
            "INSERT INTO {} (id, name, organization_id) VALUES (1, 'ada', 1), (2, 'bob', 1), (3, 'cy', 2)",
            f.t
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(f.db.pool())
            .await
            .unwrap();
    }
    f.db.refresh_schema().await;
    warm(&f).await;
    // Agent 4 of organization 2 takes the name `ada`: SQLite deletes agent 1 (organization 1).
    let sql = format!(
        "INSERT INTO {} (id, name, organization_id) VALUES (4, 'ada', 2)",
        f.t
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&f.db)
        .await
        .unwrap();
    f.expect(1, false, "agent 1 was replaced").await;
    f.expect(2, false, "agent 4 was inserted").await;
}
