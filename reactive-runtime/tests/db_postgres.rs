//! `ReactiveDb` on PostgreSQL (needs TEST_POSTGRES_URL; skipped otherwise unless CI is set).
#![cfg(feature = "postgres")]

mod db_support;

use db_support::*;

#[tokio::test]
async fn sqlx_apis_are_intercepted() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    executor_apis(&db, "pg").await;
}

scenario_tests!("pg", |_scenario| connect_env("TEST_POSTGRES_URL").await);

#[tokio::test]
async fn unlisted_statements() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_unlisted").await;
    unlisted_statement_is_recorded(&f).await;
    f.drop_table().await;
}

#[tokio::test]
async fn failed_pre_reads_fall_back() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_ghost").await;
    pre_read_failure_falls_back(&f).await;
    f.drop_table().await;
}

#[tokio::test]
async fn collation_of_model_keys() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_collation").await;
    backend_collation_applies_to_model_keys(&f).await;
    f.drop_table().await;
}

#[tokio::test]
async fn generated_ids_from_returning() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    returning_gives_generated_ids(
        &db,
        "pg_gen_item",
        "CREATE TABLE pg_gen_item (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, organization_id BIGINT NOT NULL)",
    )
    .await;
}

#[tokio::test]
async fn views_read_their_base_tables() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_view").await;
    view_reads_its_base_tables(&f).await;
    f.drop_table().await;
}

#[tokio::test]
async fn writes_through_a_view_change_its_base_tables() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_view_write").await;
    view_writes_change_its_base_tables(&f, None).await;
    f.drop_table().await;
}

#[tokio::test]
async fn partitions_and_their_table_share_writes() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_partition").await;
    partitions_share_their_rows(&f).await;
    f.drop_table().await;
}

/// A `BEFORE` trigger that sends the row elsewhere and returns `NULL`: the statement
/// reports 0 rows, and wrote one all the same.
#[tokio::test]
async fn a_redirecting_trigger_is_not_a_no_op() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_redirect").await;
    trigger_writes_reach_their_tables(
        &f,
        "CREATE OR REPLACE FUNCTION {c}_fn() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           INSERT INTO {c} (id, name, organization_id) VALUES (NEW.id + 100, NEW.name, NEW.organization_id);
           RETURN NULL;
         END $$;
         CREATE TRIGGER {c}_ins BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {c}_fn();",
        // A `BEFORE` trigger may set any column of its table's rows: wider there.
        false,
        &["none", "dee"],
    )
    .await;
    f.drop_table().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP FUNCTION IF EXISTS {}_trg_fn()",
        f.t
    )))
    .execute(f.db.pool())
    .await
    .unwrap();
}

/// A rule adds writes as a trigger does.
#[tokio::test]
async fn rule_writes_reach_their_tables_cached_queries() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_rule_write").await;
    trigger_writes_reach_their_tables(
        &f,
        "CREATE RULE {c}_rule AS ON INSERT TO {t} DO ALSO \
         UPDATE {c} SET name = NEW.name WHERE organization_id = NEW.organization_id",
        true,
        &["dee"],
    )
    .await;
    f.drop_table().await;
    // The rule kept `<t>_trg` from being dropped with it.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {}_trg",
        f.t
    )))
    .execute(f.db.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn trigger_writes_reach_their_tables_cached_queries() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_trigger_write").await;
    trigger_writes_reach_their_tables(
        &f,
        "CREATE OR REPLACE FUNCTION {c}_fn() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           UPDATE {c} SET name = NEW.name WHERE organization_id = NEW.organization_id;
           RETURN NULL;
         END $$;
         CREATE TRIGGER {c}_ins AFTER INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {c}_fn();",
        true,
        &["dee"],
    )
    .await;
    f.drop_table().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP FUNCTION IF EXISTS {}_trg_fn()",
        f.t
    )))
    .execute(f.db.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn writable_ctes_are_not_no_ops() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_wcte").await;
    writable_cte_is_not_a_no_op(&f).await;
    f.drop_table().await;
}

/// `EXPLAIN (ANALYZE) DELETE` runs the delete: its invalidation must run too (a plain
/// `EXPLAIN` is a no-op, this one is not).
#[tokio::test]
async fn explain_analyze_with_options_invalidates() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_explain").await;
    warm(&f).await;
    let sql = format!(
        "EXPLAIN (ANALYZE, COSTS false) DELETE FROM {} WHERE id = $1",
        f.t
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(1_i64)
        .fetch_all(&f.db)
        .await
        .unwrap();
    f.expect(1, false, "after EXPLAIN (ANALYZE) DELETE").await;
    // Organization 2 is invalidated too (wider): EXPLAIN reports no affected row, so
    // the pre-read's count check fails and the old values are not used.
    f.drop_table().await;
}

/// Waits until a backend other than ours waits on a lock of `kind` (`Lock` or
/// `advisory`) while running a statement naming `table`: a pause point, not a sleep.
async fn wait_for_lock_wait(pool: &sqlx::AnyPool, table: &str, advisory: bool) {
    let sql = format!(
        "SELECT CAST(count(*) AS BIGINT) FROM pg_stat_activity WHERE pid <> pg_backend_pid() \
         AND wait_event_type = 'Lock' AND {} AND query LIKE '%{table}%'",
        if advisory {
            "wait_event = 'advisory'"
        } else {
            "wait_event <> 'advisory'"
        }
    );
    wait_until_positive(pool, &sql, &format!("no lock wait on {table}")).await;
}

/// Runs `sql` through `db` in a task of its own; its rows affected.
fn spawn_write(
    db: &reactive_runtime::ReactiveDb<sqlx::Any>,
    sql: String,
) -> tokio::task::JoinHandle<u64> {
    let db = db.clone();
    tokio::spawn(async move {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&db)
            .await
            .unwrap()
            .rows_affected()
    })
}

/// The pre-read's row-count check under READ COMMITTED is not enough: with a
/// subquery in the condition (here `ORDER BY ... LIMIT`), the write's own statement
/// snapshot can select *other* rows than the pre-read locked, in the same number, so
/// the pre-read's old values describe rows that were not the ones deleted.
///
/// Forced interleaving: another transaction locks agent 1 and inserts agent 0
/// (organization 2); the delete's pre-read waits on the lock, so it does not see agent
/// 0; that transaction commits; the delete's statement then sees agent 0, picks it
/// (lowest id), and a `BEFORE DELETE` trigger holds it on an advisory lock while
/// organization 2 is read and cached with agent 0; then it deletes agent 0.
#[tokio::test]
async fn a_subquery_condition_does_not_trust_the_pre_read() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_limit_sub").await;
    let t = f.t.clone();
    let key: i64 = 0x5eed_0011;
    for sql in [
        format!(
            "CREATE OR REPLACE FUNCTION {t}_hold() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_advisory_xact_lock({key}); RETURN OLD; END $$"
        ),
        format!(
            "CREATE TRIGGER {t}_hold BEFORE DELETE ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_hold()"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(f.db.pool())
            .await
            .unwrap();
    }
    f.db.refresh_schema().await;
    warm(&f).await;

    let mut holder = f.db.pool().acquire().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT pg_advisory_lock({key})"
    )))
    .execute(&mut *holder)
    .await
    .unwrap();
    let mut other = f.db.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {t} WHERE id = 1 FOR UPDATE"
    )))
    .fetch_all(&mut other)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {t} (id, name, organization_id) VALUES (0, 'zed', 2)"
    )))
    .execute(&mut other)
    .await
    .unwrap();

    let delete = spawn_write(
        &f.db,
        format!("DELETE FROM {t} WHERE id IN (SELECT id FROM {t} ORDER BY id LIMIT 1)"),
    );
    // Pause point 1: the delete waits on agent 1's lock (its pre-read, or itself).
    wait_for_lock_wait(f.db.pool(), &t, false).await;
    other.commit().await.unwrap();
    // Pause point 2: the delete holds its victim in the trigger; organization 2 is read
    // now, with agent 0 still there, and cached.
    wait_for_lock_wait(f.db.pool(), &t, true).await;
    let (org2, _) = f.agents(2).await;
    assert_eq!(org2, f.direct(2).await);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT pg_advisory_unlock({key})"
    )))
    .execute(&mut *holder)
    .await
    .unwrap();
    assert_eq!(delete.await.unwrap(), 1);

    for org in [1, 2] {
        assert_eq!(
            f.agents(org).await.0,
            f.direct(org).await,
            "organization {org} after the delete"
        );
    }
    drop(holder);
    f.drop_table().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP FUNCTION IF EXISTS {t}_hold()"
    )))
    .execute(f.db.pool())
    .await;
}

/// The pre-read's row-count check with a subquery *without* a limit (the tenant-check
/// shape): concurrent writes that move one row out of the subquery's result and another
/// in leave the count equal while the write deletes another row than the pre-read
/// locked. The written rows' identity is compared with the pre-read's.
///
/// Forced interleaving: another transaction locks agent 1 (organization 1) and swaps
/// the selection from agent 1 to agent 3 (organization 2); the delete's pre-read,
/// whose snapshot selects agent 1, waits on that lock (pause point); the transaction
/// commits; the pre-read returns agent 1 and the delete's own snapshot deletes agent 3.
#[tokio::test]
async fn a_subquery_condition_checks_the_rows_written() {
    let Some(db) = connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    let f = Fixture::new(db, "pg_swap_sub").await;
    let t = f.t.clone();
    let sel = format!("{t}_sel");
    for sql in [
        format!("DROP TABLE IF EXISTS {sel}"),
        format!("CREATE TABLE {sel} (id BIGINT PRIMARY KEY)"),
        format!("INSERT INTO {sel} VALUES (1)"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(f.db.pool())
            .await
            .unwrap();
    }
    f.db.refresh_schema().await;
    // The write on its own, then inside a transaction (the pre-read runs in the user's
    // transaction, between savepoints).
    for in_tx in [false, true] {
        warm(&f).await;
        let other = swap_selection(&f, &sel).await;
        let sql = format!("DELETE FROM {t} WHERE id IN (SELECT id FROM {sel})");
        let delete = if in_tx {
            let db = f.db.clone();
            tokio::spawn(async move {
                let mut tx = db.begin().await.unwrap();
                let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                done.rows_affected()
            })
        } else {
            spawn_write(&f.db, sql)
        };
        // Pause point: the delete's pre-read waits on agent 1's lock.
        wait_for_lock_wait(f.db.pool(), &t, false).await;
        other.commit().await.unwrap();
        assert_eq!(delete.await.unwrap(), 1);
        let remaining: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM {t} ORDER BY id"
        )))
        .fetch_all(f.db.pool())
        .await
        .unwrap();
        assert_eq!(remaining, [1, 2], "the delete took agent 3, not agent 1");

        for org in [1, 2] {
            assert_eq!(
                f.agents(org).await.0,
                f.direct(org).await,
                "organization {org} after the delete (in a transaction: {in_tx})"
            );
        }
        // Back to the start (through the handle: it invalidates): agent 3 in organization
        // 2, agent 1 selected.
        for sql in [
            format!("INSERT INTO {t} (id, name, organization_id) VALUES (3, 'cy', 2)"),
            format!("DELETE FROM {sel}"),
            format!("INSERT INTO {sel} VALUES (1)"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&f.db)
                .await
                .unwrap();
        }
    }

    subquery_delete_keeps_precision(&f, &sel).await;
    f.drop_table().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {sel}")))
        .execute(f.db.pool())
        .await;
}
