//! Handlers factored the way sqlx users factor them: plain helper functions taking
//! `impl SqliteExecutor<'_>`, called with the handle or with `&mut *tx` (sqlx's own
//! idiom for a transaction), from reactive functions that declare their kind.
//!
//! The macro cannot see into a plain helper, so the function must say whether it is a
//! `query` or a `mutation`; the helper's SQL is then analysed when it runs. These tests
//! check that what it reads is still invalidated, that `&mut *tx` works as with sqlx,
//! and that a write sent from inside a declared query is refused before it runs (it
//! would otherwise run once and be skipped by every cache hit after).

use reactive::registry::FunctionDef;
use reactive::{ReactiveDb, WriteInQuery, reactive_function};
use serde::Deserialize;
use serde_json::json;
use sqlx::{Sqlite, SqliteExecutor};

fn def(name: &str) -> &'static FunctionDef {
    reactive::registry::functions()
        .into_iter()
        .find(|d| d.model().name == name)
        .unwrap_or_else(|| panic!("{name} is registered"))
}

#[derive(Deserialize, ts_rs::TS)]
pub struct Owner {
    pub owner: i64,
}

#[derive(Deserialize, ts_rs::TS)]
pub struct NewItem {
    pub owner: i64,
    pub title: String,
}

async fn count_owned<'e>(e: impl SqliteExecutor<'e>, owner: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM hp_item WHERE owner = ?1")
        .bind(owner)
        .fetch_one(e)
        .await
}

async fn archive_owned<'e>(e: impl SqliteExecutor<'e>, owner: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE hp_item SET archived = 1 WHERE owner = ?1")
            .bind(owner)
            .execute(e)
            .await?
            .rows_affected(),
    )
}

#[reactive_function(name = "hp.count", dialect = "sqlite", query)]
pub async fn count(db: &ReactiveDb<Sqlite>, input: Owner) -> reactive::Result<i64> {
    Ok(count_owned(db, input.owner).await?)
}

#[reactive_function(name = "hp.add", dialect = "sqlite", mutation)]
pub async fn add(db: &ReactiveDb<Sqlite>, input: NewItem) -> reactive::Result<i64> {
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO hp_item (owner, title) VALUES (?1, ?2)")
        .bind(input.owner)
        .bind(&input.title)
        .execute(&mut *tx)
        .await?;
    let n = count_owned(&mut *tx, input.owner).await?;
    tx.commit().await?;
    Ok(n)
}

#[reactive_function(name = "hp.countAndArchive", dialect = "sqlite", query)]
pub async fn count_and_archive(db: &ReactiveDb<Sqlite>, input: Owner) -> reactive::Result<i64> {
    let n = count_owned(db, input.owner).await?;
    archive_owned(db, input.owner).await?;
    Ok(n)
}

async fn fixture() -> ReactiveDb<Sqlite> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE hp_item (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL, title TEXT NOT NULL,
                               archived INTEGER NOT NULL DEFAULT 0);
         INSERT INTO hp_item (owner, title) VALUES (1, 'a'), (2, 'b');",
    )
    .execute(&pool)
    .await
    .unwrap();
    ReactiveDb::new(pool).await.unwrap()
}

async fn count_of(db: &ReactiveDb<Sqlite>, owner: i64) -> (i64, bool) {
    let out = db
        .call(def("hp.count"), "t", json!({ "owner": owner }))
        .await
        .expect("hp.count");
    (serde_json::from_slice(&out.bytes).unwrap(), out.hit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_s_reads_are_invalidated_and_tx_derefs_to_an_executor() {
    let db = fixture().await;
    assert_eq!(count_of(&db, 1).await, (1, false));
    assert_eq!(count_of(&db, 1).await, (1, true));
    let out = db
        .call(def("hp.add"), "t", json!({ "owner": 1, "title": "c" }))
        .await
        .expect("hp.add");
    assert_eq!(serde_json::from_slice::<i64>(&out.bytes).unwrap(), 2);
    assert_eq!(
        count_of(&db, 1).await,
        (2, false),
        "the helper's read was recorded when it ran, so the insert invalidated it"
    );
    // A plain write through `&mut *tx` outside any reactive function.
    let mut tx = db.begin().await.unwrap();
    sqlx::query("DELETE FROM hp_item WHERE owner = ?1")
        .bind(1_i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(tx.pending_changes().len(), 1);
    tx.commit().await.unwrap();
    assert_eq!(count_of(&db, 1).await, (0, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_sent_from_inside_a_query_is_refused_before_it_runs() {
    let db = fixture().await;
    let err = db
        .call(def("hp.countAndArchive"), "t", json!({ "owner": 1 }))
        .await
        .expect_err("a query that writes is refused");
    let refused = match &err {
        reactive::db::CallError::Handler(reactive::Error::Database(
            sqlx::Error::Configuration(e),
        )) => e.downcast_ref::<WriteInQuery>().cloned(),
        _ => None,
    };
    assert_eq!(
        refused,
        Some(WriteInQuery {
            function: "hp.countAndArchive".into()
        }),
        "{err}"
    );
    let archived: i64 = sqlx::query_scalar("SELECT count(*) FROM hp_item WHERE archived = 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(archived, 0, "the write never reached the database");
}
