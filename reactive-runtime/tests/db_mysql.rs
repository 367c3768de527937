//! `ReactiveDb` on MySQL/MariaDB (needs TEST_MYSQL_URL; skipped otherwise unless CI
//! is set). The fixture's SQL is written with `$N` placeholders: every statement also
//! exercises the `$N` → `?` rewrite.
#![cfg(feature = "mysql")]

mod db_support;

use db_support::*;
use reactive_runtime::db::PlaceholderError;

#[tokio::test]
async fn sqlx_apis_are_intercepted() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    executor_apis(&db, "my").await;
}

#[tokio::test]
async fn scenarios() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    all_scenarios(db, "my").await;
}

#[tokio::test]
async fn unlisted_statements() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    let f = Fixture::new(db, "my_unlisted").await;
    unlisted_statement_is_recorded(&f).await;
    f.drop_table().await;
}

#[tokio::test]
async fn dollar_placeholders_are_rewritten_or_refused() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    let v: i64 = sqlx::query_scalar("SELECT $1 + $2")
        .bind(40_i64)
        .bind(2_i64)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(v, 42);
    // A string that looks like a placeholder is left alone.
    let s: String = sqlx::query_scalar("SELECT CONCAT('$1', $1)")
        .bind("x")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(s, "$1x");
    // Reused placeholders can't be mapped to `?`: a clear error, nothing sent.
    let err = sqlx::query_scalar::<_, i64>("SELECT $1 + $1")
        .bind(1_i64)
        .fetch_one(&db)
        .await
        .unwrap_err();
    match err {
        sqlx::Error::Configuration(e) => {
            assert!(e.downcast_ref::<PlaceholderError>().is_some(), "{e}")
        }
        other => panic!("expected a placeholder error, got {other}"),
    }
}

#[tokio::test]
async fn failed_pre_reads_fall_back() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    let f = Fixture::new(db, "my_ghost").await;
    pre_read_failure_falls_back(&f).await;
    f.drop_table().await;
}

#[tokio::test]
async fn collation_of_model_keys() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    let f = Fixture::new(db, "my_collation").await;
    backend_collation_applies_to_model_keys(&f).await;
    f.drop_table().await;
}

/// MariaDB ≥ 10.5 (and MySQL does not) supports `INSERT ... RETURNING`.
#[tokio::test]
async fn generated_ids_from_returning() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(db.pool())
        .await
        .unwrap();
    if !version.contains("MariaDB") {
        eprintln!("MySQL {version} has no INSERT ... RETURNING: skipped");
        return;
    }
    returning_gives_generated_ids(
        &db,
        "my_gen_item",
        "CREATE TABLE my_gen_item (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, organization_id BIGINT NOT NULL)",
    )
    .await;
}
