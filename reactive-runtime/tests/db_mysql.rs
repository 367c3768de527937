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

scenario_tests!("my", |_scenario| connect_env("TEST_MYSQL_URL").await);

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

/// A deadlock makes MariaDB roll the victim's transaction back and run whatever follows
/// on that connection in autocommit mode. A `ReactiveTx` must not let a later statement
/// commit on its own (its change set would only be applied at a commit that then never
/// comes, leaving the cache stale): every later statement and the commit are refused.
#[tokio::test]
async fn a_deadlocked_transaction_refuses_further_statements() {
    use reactive_runtime::db::TransactionLost;
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    sqlx::query("DROP TABLE IF EXISTS my_deadlock")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("CREATE TABLE my_deadlock (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO my_deadlock (id, v) VALUES (1, 0), (2, 0)")
        .execute(db.pool())
        .await
        .unwrap();
    let update = "UPDATE my_deadlock SET v = $1 WHERE id = $2";
    let mut a = db.begin().await.unwrap();
    let mut b = db.begin().await.unwrap();
    sqlx::query(update)
        .bind(1_i64)
        .bind(1_i64)
        .execute(&mut a)
        .await
        .unwrap();
    sqlx::query(update)
        .bind(2_i64)
        .bind(2_i64)
        .execute(&mut b)
        .await
        .unwrap();
    // a waits for b's row; b then asks for a's row: one of them is the victim.
    let (ra, rb) = tokio::join!(
        sqlx::query(update).bind(1_i64).bind(2_i64).execute(&mut a),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            sqlx::query(update)
                .bind(2_i64)
                .bind(1_i64)
                .execute(&mut b)
                .await
        }
    );
    let (victim, survivor) = match (&ra, &rb) {
        (Err(_), Ok(_)) => (a, b),
        (Ok(_), Err(_)) => (b, a),
        other => panic!("expected exactly one deadlock victim: {other:?}"),
    };
    let mut victim = victim;
    survivor.commit().await.unwrap();
    // The victim's next statement is refused, not autocommitted.
    let err = sqlx::query("INSERT INTO my_deadlock (id, v) VALUES ($1, $2)")
        .bind(3_i64)
        .bind(3_i64)
        .execute(&mut victim)
        .await
        .expect_err("a statement after the deadlock is refused");
    assert!(
        matches!(&err, sqlx::Error::Configuration(e) if e.downcast_ref::<TransactionLost>().is_some()),
        "{err:?}"
    );
    let commit = victim
        .commit()
        .await
        .expect_err("the commit is refused too");
    assert!(
        matches!(commit, sqlx::Error::Configuration(_)),
        "{commit:?}"
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM my_deadlock WHERE id = 3")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0, "nothing was committed outside the transaction");
    sqlx::query("DROP TABLE my_deadlock")
        .execute(db.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn views_read_their_base_tables() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    let f = Fixture::new(db, "my_view").await;
    view_reads_its_base_tables(&f).await;
    f.drop_table().await;
}

#[tokio::test]
async fn writes_through_a_view_change_its_base_tables() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    let f = Fixture::new(db, "my_view_write").await;
    view_writes_change_its_base_tables(&f, None).await;
    f.drop_table().await;
}

#[tokio::test]
async fn trigger_writes_reach_their_tables_cached_queries() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    let f = Fixture::new(db, "my_trigger_write").await;
    trigger_writes_reach_their_tables(
        &f,
        "CREATE TRIGGER {c}_ins AFTER INSERT ON {t} FOR EACH ROW \
         UPDATE {c} SET name = NEW.name WHERE organization_id = NEW.organization_id",
        true,
        &["dee"],
    )
    .await;
    f.drop_table().await;
}

/// Waits until a connection other than ours runs a statement naming `table` (in the
/// tests below, one waiting on a row lock another transaction holds): a pause point.
async fn wait_for_lock_wait(pool: &sqlx::AnyPool, table: &str) {
    let sql = format!(
        "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.PROCESSLIST \
         WHERE COMMAND IN ('Query', 'Execute') AND INFO LIKE '%{table}%' AND ID <> CONNECTION_ID()"
    );
    wait_until_positive(pool, &sql, &format!("no statement on {table} waiting")).await;
}

/// The pre-read under a subquery condition without a limit (the tenant-check shape):
/// concurrent writes that move one row out of the subquery's result and another in must
/// not leave the pre-read describing other rows than the write changed.
///
/// Forced interleaving: another transaction locks agent 1 (organization 1) and swaps the
/// selection from agent 1 to agent 3 (organization 2); the delete's pre-read waits on a
/// lock (pause point); the transaction commits; the delete takes agent 3, and both
/// organizations' cached lists must match the database.
#[tokio::test]
async fn a_subquery_condition_reads_the_rows_the_write_changes() {
    let Some(db) = connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    let f = Fixture::new(db, "my_swap_sub").await;
    let t = f.t.clone();
    let sel = format!("{t}_sel");
    run_raw(
        &f,
        [
            format!("DROP TABLE IF EXISTS {sel}"),
            format!("CREATE TABLE {sel} (id BIGINT PRIMARY KEY)"),
            format!("INSERT INTO {sel} VALUES (1)"),
        ],
    )
    .await;
    f.db.refresh_schema().await;
    warm(&f).await;
    let other = swap_selection(&f, &sel).await;
    let db = f.db.clone();
    let sql = format!("DELETE FROM {t} WHERE id IN (SELECT id FROM {sel})");
    let delete = tokio::spawn(async move {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&db)
            .await
            .unwrap()
            .rows_affected()
    });
    wait_for_lock_wait(f.db.pool(), &t).await;
    other.commit().await.unwrap();
    assert_eq!(delete.await.unwrap(), 1);
    let remaining: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {t} ORDER BY id"
    )))
    .fetch_all(f.db.pool())
    .await
    .unwrap();
    for org in [1, 2] {
        assert_eq!(
            f.agents(org).await.0,
            f.direct(org).await,
            "organization {org} after the delete (rows left: {remaining:?})"
        );
    }
    subquery_delete_keeps_precision(&f, &sel).await;
    f.drop_table().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {sel}")))
        .execute(f.db.pool())
        .await;
}
