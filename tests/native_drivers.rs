//! Reactive functions written as sqlx users write them, on native drivers: a
//! `ReactiveDb<Postgres>` with uuid keys, a Postgres enum, `date`, `timestamptz`,
//! `jsonb` and `text[]` columns; `ReactiveDb<Sqlite>` and `ReactiveDb<MySql>` with
//! integer keys. Each checks that key-level invalidation is as precise as the column
//! types allow (uuid and integer keys: a write to one project leaves another's cached
//! query alone) and that columns whose values cannot be compared safely (the enum,
//! whose serde and database spellings differ; dates) never serve stale results.
//!
//! PostgreSQL and MySQL need `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` (skipped with a
//! message when unset, unless `CI` is set: then they fail).

use chrono::{DateTime, NaiveDate, Utc};
use reactive::registry::FunctionDef;
use reactive::{ReactiveDb, reactive_function};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, MySql, Postgres, Sqlite};
use uuid::Uuid;

/// A URL from the environment, or `None` (skip) when unset outside CI.
fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("{var} must be set in CI"),
        _ => {
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

fn def(name: &str) -> &'static FunctionDef {
    reactive::registry::functions()
        .into_iter()
        .find(|d| d.model().name == name)
        .unwrap_or_else(|| panic!("{name} is registered"))
}

// ---------------------------------------------------------------- PostgreSQL

#[derive(sqlx::Type, Serialize, Deserialize, ts_rs::TS, Debug, Clone, Copy, PartialEq, Eq)]
#[sqlx(type_name = "nt_status", rename_all = "snake_case")]
pub enum Status {
    Todo,
    InProgress,
    Done,
}

#[derive(sqlx::FromRow, Serialize, Deserialize, ts_rs::TS, Debug, Clone, PartialEq)]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub status: Status,
    pub due: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub tags: Vec<String>,
    pub meta: serde_json::Value,
}

#[derive(Deserialize, ts_rs::TS)]
pub struct ProjectInput {
    pub project_id: Uuid,
}

#[derive(Deserialize, ts_rs::TS)]
pub struct StatusInput {
    pub status: Status,
}

#[derive(Deserialize, ts_rs::TS)]
pub struct DueInput {
    pub due: NaiveDate,
}

#[derive(Deserialize, ts_rs::TS)]
pub struct SetStatus {
    pub id: Uuid,
    pub status: Status,
}

#[reactive_function(name = "nt.pg.tasksOfProject")]
pub async fn pg_tasks_of_project(
    db: &ReactiveDb<Postgres>,
    input: ProjectInput,
) -> reactive::Result<Vec<Task>> {
    Ok(sqlx::query_as::<_, Task>(
        "SELECT id, project_id, title, status, due, created_at, tags, meta FROM nt_task WHERE project_id = $1 ORDER BY title",
    )
    .bind(input.project_id)
    .fetch_all(db)
    .await?)
}

#[reactive_function(name = "nt.pg.tasksWithStatus")]
pub async fn pg_tasks_with_status(
    db: &ReactiveDb<Postgres>,
    input: StatusInput,
) -> reactive::Result<Vec<Task>> {
    Ok(sqlx::query_as::<_, Task>(
        "SELECT id, project_id, title, status, due, created_at, tags, meta FROM nt_task WHERE status = $1 ORDER BY title",
    )
    .bind(input.status)
    .fetch_all(db)
    .await?)
}

#[reactive_function(name = "nt.pg.tasksDue")]
pub async fn pg_tasks_due(
    db: &ReactiveDb<Postgres>,
    input: DueInput,
) -> reactive::Result<Vec<Task>> {
    Ok(sqlx::query_as::<_, Task>(
        "SELECT id, project_id, title, status, due, created_at, tags, meta FROM nt_task WHERE due = $1 ORDER BY title",
    )
    .bind(input.due)
    .fetch_all(db)
    .await?)
}

#[reactive_function(name = "nt.pg.setStatus")]
pub async fn pg_set_status(db: &ReactiveDb<Postgres>, input: SetStatus) -> reactive::Result<u64> {
    Ok(sqlx::query("UPDATE nt_task SET status = $1 WHERE id = $2")
        .bind(input.status)
        .bind(input.id)
        .execute(db)
        .await?
        .rows_affected())
}

async fn pg_fixture(url: &str) -> (ReactiveDb<Postgres>, [Uuid; 2], [Uuid; 3]) {
    let database = "reactive_native_drivers";
    let mut admin = sqlx::PgConnection::connect(url).await.expect("connect");
    for sql in [
        format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        format!("CREATE DATABASE {database}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("create database");
    }
    let url = match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{database}"),
        None => panic!("a database URL ends in /name: {url}"),
    };
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    sqlx::raw_sql(
        "CREATE TYPE nt_status AS ENUM ('todo', 'in_progress', 'done');
         CREATE TABLE nt_project (id uuid PRIMARY KEY, name text NOT NULL);
         CREATE TABLE nt_task (
             id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
             project_id uuid NOT NULL REFERENCES nt_project ON DELETE CASCADE,
             title text NOT NULL,
             status nt_status NOT NULL DEFAULT 'todo',
             due date,
             created_at timestamptz NOT NULL DEFAULT now(),
             tags text[] NOT NULL DEFAULT '{}',
             meta jsonb NOT NULL DEFAULT '{}'
         );",
    )
    .execute(&pool)
    .await
    .expect("schema");
    let projects = [Uuid::new_v4(), Uuid::new_v4()];
    for p in projects {
        sqlx::query("INSERT INTO nt_project (id, name) VALUES ($1, $2)")
            .bind(p)
            .bind(p.to_string())
            .execute(&pool)
            .await
            .unwrap();
    }
    let tasks = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
    let due = NaiveDate::from_ymd_opt(2026, 12, 24).unwrap();
    for (i, (t, p)) in tasks
        .iter()
        .zip([projects[0], projects[0], projects[1]])
        .enumerate()
    {
        sqlx::query(
            "INSERT INTO nt_task (id, project_id, title, due, tags, meta) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t)
        .bind(p)
        .bind(format!("task {i}"))
        .bind(due)
        .bind(vec!["a".to_owned(), "b".to_owned()])
        .bind(sqlx::types::Json(json!({"i": i})))
        .execute(&pool)
        .await
        .unwrap();
    }
    // The catalog is read here, after the schema exists.
    let db = ReactiveDb::new(pool).await.expect("wrap the pool");
    (db, projects, tasks)
}

async fn pg_call(
    db: &ReactiveDb<Postgres>,
    name: &str,
    input: serde_json::Value,
) -> (Vec<Task>, bool) {
    let out = db.call(def(name), "t1", input).await.expect("call");
    (serde_json::from_slice(&out.bytes).expect("tasks"), out.hit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_native_types_uuid_keys_are_precise_and_nothing_is_stale() {
    let Some(url) = service_url("TEST_POSTGRES_URL") else {
        return;
    };
    let (db, [p1, p2], [t1, _, t3]) = pg_fixture(&url).await;
    let of = |p: Uuid| json!({ "project_id": p });
    let tasks = "nt.pg.tasksOfProject";

    let (first, hit) = pg_call(&db, tasks, of(p1)).await;
    assert_eq!((first.len(), hit), (2, false));
    assert_eq!(first[0].tags, vec!["a", "b"]);
    assert_eq!(first[0].meta, json!({"i": 0}));
    assert!(pg_call(&db, tasks, of(p1)).await.1, "second call is a hit");
    let (_, hit) = pg_call(&db, tasks, of(p2)).await;
    assert!(!hit);
    let todo = json!({ "status": "Todo" });
    let (with_status, _) = pg_call(&db, "nt.pg.tasksWithStatus", todo.clone()).await;
    assert_eq!(with_status.len(), 3);
    let due = json!({ "due": "2026-12-24" });
    assert_eq!(pg_call(&db, "nt.pg.tasksDue", due.clone()).await.0.len(), 3);

    // A mutation through a reactive function: the enum's serde form ("Done") differs
    // from the database's ('done'), so status keys are unknown and every status query
    // is refetched; the uuid key is exact, so only P1's list goes.
    let out = db
        .call(
            def("nt.pg.setStatus"),
            "t1",
            json!({ "id": t1, "status": "Done" }),
        )
        .await
        .expect("set status");
    assert_eq!(&out.bytes[..], b"1");
    let (after, hit) = pg_call(&db, tasks, of(p1)).await;
    assert!(!hit, "P1's list was invalidated");
    assert_eq!(after[0].status, Status::Done, "and is not stale");
    assert!(
        pg_call(&db, tasks, of(p2)).await.1,
        "P2's list stayed cached"
    );
    let (with_status, hit) = pg_call(&db, "nt.pg.tasksWithStatus", todo.clone()).await;
    assert!(!hit);
    assert_eq!(with_status.len(), 2, "the status query is not stale");

    // A write outside any function: native arguments are opaque, the pre-read gives
    // the row's old project (uuid as text), which keeps P2's entry.
    sqlx::query("UPDATE nt_task SET title = $1 WHERE id = $2")
        .bind("renamed")
        .bind(t1)
        .execute(&db)
        .await
        .unwrap();
    let (after, hit) = pg_call(&db, tasks, of(p1)).await;
    assert!(!hit);
    assert!(after.iter().any(|t| t.title == "renamed"));
    assert!(
        pg_call(&db, tasks, of(p2)).await.1,
        "P2's list stayed cached"
    );

    // Moving a task between projects invalidates both.
    assert!(pg_call(&db, tasks, of(p2)).await.1);
    sqlx::query("UPDATE nt_task SET project_id = $1 WHERE id = $2")
        .bind(p2)
        .bind(t1)
        .execute(&db)
        .await
        .unwrap();
    let (p1_tasks, hit1) = pg_call(&db, tasks, of(p1)).await;
    let (p2_tasks, hit2) = pg_call(&db, tasks, of(p2)).await;
    assert!(!hit1 && !hit2);
    assert_eq!((p1_tasks.len(), p2_tasks.len()), (1, 2));

    // Dates are never keys (every write to the table refetched the date query so far);
    // changing one refetches it too, and it is not stale.
    pg_call(&db, "nt.pg.tasksDue", due.clone()).await;
    assert!(pg_call(&db, "nt.pg.tasksDue", due.clone()).await.1);
    sqlx::query("UPDATE nt_task SET due = $1 WHERE id = $2")
        .bind(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap())
        .bind(t3)
        .execute(&db)
        .await
        .unwrap();
    let (due_tasks, hit) = pg_call(&db, "nt.pg.tasksDue", due).await;
    assert!(!hit);
    assert_eq!(due_tasks.len(), 2);

    // (t3 is P2's: its list was refetched.) An insert whose new key is known only
    // from RETURNING.
    let (_, hit) = pg_call(&db, tasks, of(p2)).await;
    assert!(!hit, "the date change of a P2 task refetched P2's list");
    assert!(
        pg_call(&db, tasks, of(p1)).await.1,
        "P1's list stayed cached"
    );
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO nt_task (project_id, title) VALUES ($1, $2) RETURNING id, project_id",
    )
    .bind(p1)
    .bind("new")
    .fetch_one(&db)
    .await
    .unwrap();
    let (p1_tasks, hit) = pg_call(&db, tasks, of(p1)).await;
    assert!(!hit);
    assert!(p1_tasks.iter().any(|t| t.id == id));
    assert!(
        pg_call(&db, tasks, of(p2)).await.1,
        "P2's list stayed cached"
    );

    // Inside a transaction, applied at commit.
    let mut tx = db.begin().await.unwrap();
    sqlx::query("DELETE FROM nt_task WHERE id = $1")
        .bind(id)
        .execute(&mut tx)
        .await
        .unwrap();
    assert!(pg_call(&db, tasks, of(p1)).await.1, "nothing before commit");
    tx.commit().await.unwrap();
    let (p1_tasks, hit) = pg_call(&db, tasks, of(p1)).await;
    assert!(!hit);
    assert!(!p1_tasks.iter().any(|t| t.id == id));
    assert!(
        pg_call(&db, tasks, of(p2)).await.1,
        "P2's list stayed cached"
    );

    // A malformed uuid never reaches the database.
    let err = db
        .call(def(tasks), "t1", json!({ "project_id": "not-a-uuid" }))
        .await
        .expect_err("input error");
    assert!(
        matches!(&err, reactive::db::CallError::Input(e) if e.path == "project_id"),
        "{err:?}"
    );
}

// ---------------------------------------------------------------- SQLite, MySQL

#[derive(sqlx::FromRow, Serialize, Deserialize, ts_rs::TS, Debug, Clone, PartialEq)]
pub struct Item {
    pub id: i64,
    pub org: i64,
    pub title: String,
}

#[derive(Deserialize, ts_rs::TS)]
pub struct OrgInput {
    pub org: i64,
}

#[reactive_function(name = "nt.sqlite.items", dialect = "sqlite")]
pub async fn sqlite_items(db: &ReactiveDb<Sqlite>, input: OrgInput) -> reactive::Result<Vec<Item>> {
    Ok(
        sqlx::query_as::<_, Item>("SELECT id, org, title FROM nt_item WHERE org = ?1 ORDER BY id")
            .bind(input.org)
            .fetch_all(db)
            .await?,
    )
}

#[reactive_function(name = "nt.mysql.items", dialect = "mysql")]
pub async fn mysql_items(db: &ReactiveDb<MySql>, input: OrgInput) -> reactive::Result<Vec<Item>> {
    Ok(
        sqlx::query_as::<_, Item>("SELECT id, org, title FROM nt_item WHERE org = ? ORDER BY id")
            .bind(input.org)
            .fetch_all(db)
            .await?,
    )
}

/// The shared scenario: cache orgs 1 and 2, write to org 1 in three ways, and check
/// org 1 is refetched (not stale) while org 2 stays cached.
async fn integer_keys<DB: reactive::Backend>(
    db: &ReactiveDb<DB>,
    name: &str,
    placeholder: [&str; 3],
) where
    for<'c> &'c ReactiveDb<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    <DB as sqlx::Database>::Arguments: for<'q> sqlx::IntoArguments<DB>,
{
    let call = |org: i64| async move {
        let out = db
            .call(def(name), "t", json!({ "org": org }))
            .await
            .expect("call");
        let items: Vec<Item> = serde_json::from_slice(&out.bytes).unwrap();
        (items, out.hit)
    };
    let [a, b, c] = placeholder;
    call(1).await;
    call(2).await;
    assert!(call(1).await.1 && call(2).await.1);
    // An update keyed by id: the pre-read finds org 1.
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE nt_item SET title = {a} WHERE id = {b}"
    )))
    .bind("changed")
    .bind(1_i64)
    .execute(db)
    .await
    .unwrap();
    let (items, hit) = call(1).await;
    assert!(!hit);
    assert_eq!(items[0].title, "changed");
    assert!(call(2).await.1, "org 2 stayed cached");
    // A delete keyed by id.
    sqlx::query(AssertSqlSafe(format!("DELETE FROM nt_item WHERE id = {a}")))
        .bind(1_i64)
        .execute(db)
        .await
        .unwrap();
    let (items, hit) = call(1).await;
    assert!(!hit);
    assert!(items.is_empty());
    assert!(call(2).await.1, "org 2 stayed cached");
    // An insert: its values are not visible in native arguments, so the whole table
    // is affected (wider, never stale).
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO nt_item (id, org, title) VALUES ({a}, {b}, {c})"
    )))
    .bind(10_i64)
    .bind(1_i64)
    .bind("new")
    .execute(db)
    .await
    .unwrap();
    let (items, hit) = call(1).await;
    assert!(!hit);
    assert_eq!(items.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_native_integer_keys_are_precise() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE nt_item (id INTEGER PRIMARY KEY, org INTEGER NOT NULL, title TEXT NOT NULL);
         INSERT INTO nt_item VALUES (1, 1, 'a'), (2, 2, 'b');",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = ReactiveDb::new(pool).await.unwrap();
    integer_keys(&db, "nt.sqlite.items", ["?1", "?2", "?3"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_native_integer_keys_are_precise() {
    let Some(url) = service_url("TEST_MYSQL_URL") else {
        return;
    };
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS nt_item;
         CREATE TABLE nt_item (id BIGINT PRIMARY KEY, org BIGINT NOT NULL, title VARCHAR(100) NOT NULL);
         INSERT INTO nt_item VALUES (1, 1, 'a'), (2, 2, 'b');",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = ReactiveDb::new(pool).await.unwrap();
    integer_keys(&db, "nt.mysql.items", ["?", "?", "?"]).await;
    sqlx::raw_sql("DELETE FROM nt_item; INSERT INTO nt_item VALUES (1, 1, 'a'), (2, 2, 'b');")
        .execute(&db)
        .await
        .unwrap();
    cancelled_writes(
        &db,
        "nt.mysql.items",
        [
            "UPDATE nt_item SET title = ? WHERE id = ?",
            "SELECT title FROM nt_item WHERE id = ?",
        ],
    )
    .await;
}

// ---------------------------------------------------------------- cancelled writes

/// Counts invalidations and wakes a waiter on each.
#[derive(Default)]
struct Applied(tokio::sync::Notify);

impl reactive::db::InvalidationListener for Applied {
    fn on_invalidation(
        &self,
        _: std::sync::Arc<reactive::engine::InvalidationReport>,
    ) -> reactive::registry::BoxFuture<'static, ()> {
        self.0.notify_one();
        Box::pin(async {})
    }

    fn bind(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn reactive::db::InvalidationListener> {
        self
    }
}

/// Polls `fut` `polls` times (letting other tasks run in between), then drops it, as
/// hyper drops a handler whose client went away. `true` if it completed.
async fn poll_then_drop<F: std::future::Future>(fut: F, polls: usize) -> bool {
    let mut fut = std::pin::pin!(fut);
    for _ in 0..polls {
        let ready =
            std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx).is_ready()))
                .await;
        if ready {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

/// A write (autocommit, a `COMMIT`, a statement inside a transaction) whose caller is
/// dropped at each of its await points in turn: once the write may have run, org 1's
/// cached list must be invalidated, never left stale.
async fn cancelled_writes<DB: reactive::Backend>(
    db: &ReactiveDb<DB>,
    name: &str,
    [update, select]: [&'static str; 2],
) where
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'r> String: sqlx::Decode<'r, DB>,
    (String,): for<'r> sqlx::FromRow<'r, <DB as sqlx::Database>::Row>,
    for<'c> &'c ReactiveDb<DB>: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c mut reactive::ReactiveTx<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    <DB as sqlx::Database>::Arguments: for<'q> sqlx::IntoArguments<DB>,
{
    let applied = std::sync::Arc::new(Applied::default());
    db.set_listener(applied.clone());
    let list = |org: i64| async move {
        let out = db
            .call(def(name), "t", json!({ "org": org }))
            .await
            .expect("call");
        let items: Vec<Item> = serde_json::from_slice(&out.bytes).unwrap();
        (items, out.hit)
    };
    let wait_applied = || async {
        tokio::time::timeout(std::time::Duration::from_secs(10), applied.0.notified())
            .await
            .expect("the dropped write was invalidated");
    };
    // `settled` returns only once the dropped write's invalidation is over.
    let settled = || async {
        db.settled().await;
        tokio::time::timeout(std::time::Duration::ZERO, applied.0.notified())
            .await
            .expect("settled before the dropped write was invalidated");
    };
    for polls in 1..24 {
        for shape in ["autocommit", "commit", "in transaction"] {
            let title = format!("{shape} {polls}");
            list(1).await;
            assert!(list(1).await.1, "cached before the write");
            let statement = || {
                sqlx::query(AssertSqlSafe(update))
                    .bind(title.clone())
                    .bind(1_i64)
            };
            match shape {
                "autocommit" => {
                    poll_then_drop(statement().execute(db), polls).await;
                    settled().await;
                }
                "commit" => {
                    let mut tx = db.begin().await.unwrap();
                    statement().execute(&mut tx).await.unwrap();
                    poll_then_drop(tx.commit(), polls).await;
                    settled().await;
                }
                _ => {
                    let mut tx = db.begin().await.unwrap();
                    poll_then_drop(statement().execute(&mut tx), polls).await;
                    // Dropped before it was sent, the statement changed nothing.
                    let sent = !tx.pending_changes().is_empty();
                    // MySQL: a statement dropped half-read leaves the connection unusable,
                    // and the commit fails (its outcome unknown to the client).
                    if let Err(e) = tx.commit().await {
                        eprintln!("{shape}, dropped after {polls} polls: commit failed: {e}");
                    }
                    if sent {
                        wait_applied().await;
                    }
                }
            }
            let direct: String = sqlx::query_scalar(AssertSqlSafe(select))
                .bind(1_i64)
                .fetch_one(db.pool())
                .await
                .unwrap();
            let (items, _) = list(1).await;
            assert_eq!(
                items[0].title, direct,
                "{shape}, dropped after {polls} polls: not stale"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cancelled_writes_are_invalidated() {
    let path = std::env::temp_dir().join(format!("reactive_cancel_{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE nt_item (id INTEGER PRIMARY KEY, org INTEGER NOT NULL, title TEXT NOT NULL);
         INSERT INTO nt_item VALUES (1, 1, 'a'), (2, 2, 'b');",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = ReactiveDb::new(pool).await.unwrap();
    cancelled_writes(
        &db,
        "nt.sqlite.items",
        [
            "UPDATE nt_item SET title = ?1 WHERE id = ?2",
            "SELECT title FROM nt_item WHERE id = ?1",
        ],
    )
    .await;
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------- comparisons the database makes

#[derive(Deserialize, ts_rs::TS)]
pub struct TitleInput {
    pub title: String,
}

#[reactive_function(name = "nt.mysql.byTitle", dialect = "mysql")]
pub async fn mysql_by_title(
    db: &ReactiveDb<MySql>,
    input: TitleInput,
) -> reactive::Result<Vec<Item>> {
    Ok(
        sqlx::query_as::<_, Item>(
            "SELECT id, org, title FROM nt_title WHERE title = ? ORDER BY id",
        )
        .bind(&input.title)
        .fetch_all(db)
        .await?,
    )
}

/// MariaDB's default collations are accent-insensitive: `'José' = 'Jose'`. A write
/// naming the row by one spelling must invalidate a query keyed by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_accent_insensitive_text_keys_are_not_narrowed() {
    let Some(url) = service_url("TEST_MYSQL_URL") else {
        return;
    };
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS nt_title;
         CREATE TABLE nt_title (id BIGINT PRIMARY KEY, org BIGINT NOT NULL,
             title VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL);
         INSERT INTO nt_title VALUES (1, 1, 'José');",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = ReactiveDb::new(pool).await.unwrap();
    let by_title = || async {
        let out = db
            .call(def("nt.mysql.byTitle"), "t", json!({ "title": "Jose" }))
            .await
            .expect("call");
        serde_json::from_slice::<Vec<Item>>(&out.bytes).unwrap()
    };
    assert_eq!(
        by_title().await[0].org,
        1,
        "the database says 'José' = 'Jose'"
    );
    sqlx::query("UPDATE nt_title SET org = ? WHERE title = ?")
        .bind(2_i64)
        .bind("José")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(by_title().await[0].org, 2, "not stale");
}

#[derive(sqlx::FromRow, Serialize, Deserialize, ts_rs::TS, Debug, Clone, PartialEq)]
pub struct Coded {
    pub id: i64,
    pub code: String,
    pub n: i64,
}

#[derive(Deserialize, ts_rs::TS)]
pub struct CodeInput {
    pub code: String,
}

#[reactive_function(name = "nt.pg.byCode")]
pub async fn pg_by_code(
    db: &ReactiveDb<Postgres>,
    input: CodeInput,
) -> reactive::Result<Vec<Coded>> {
    Ok(
        sqlx::query_as::<_, Coded>(
            "SELECT id, code::text AS code, n FROM nt_coded WHERE code = $1",
        )
        .bind(&input.code)
        .fetch_all(db)
        .await?,
    )
}

/// PostgreSQL `char(n)` compares without trailing spaces: `'ab' = 'ab   '`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_padded_char_keys_are_not_narrowed() {
    let Some(url) = service_url("TEST_POSTGRES_URL") else {
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS nt_coded;
         CREATE TABLE nt_coded (id bigint PRIMARY KEY, code char(5) NOT NULL, n bigint NOT NULL);
         INSERT INTO nt_coded VALUES (1, 'ab', 1);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = ReactiveDb::new(pool).await.unwrap();
    let by_code = || async {
        let out = db
            .call(def("nt.pg.byCode"), "t", json!({ "code": "ab" }))
            .await
            .expect("call");
        serde_json::from_slice::<Vec<Coded>>(&out.bytes).unwrap()
    };
    assert_eq!(by_code().await[0].n, 1);
    // The literal is a `char(5)` here: it names the row (a text parameter would not,
    // PostgreSQL would compare as text).
    let done = sqlx::query("UPDATE nt_coded SET n = $1 WHERE code = 'ab   '")
        .bind(2_i64)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    assert_eq!(by_code().await[0].n, 2, "not stale");
}

// ---------------------------------------------------------------- columns the database sets

#[derive(sqlx::FromRow, Serialize, Deserialize, ts_rs::TS, Debug, Clone, PartialEq)]
pub struct Named {
    pub id: i64,
    pub name: String,
    pub org: i64,
}

#[derive(Deserialize, ts_rs::TS)]
pub struct LowerInput {
    pub lname: String,
}

#[reactive_function(name = "nt.pg.byLowerName")]
pub async fn pg_by_lower_name(
    db: &ReactiveDb<Postgres>,
    input: LowerInput,
) -> reactive::Result<Vec<Named>> {
    Ok(sqlx::query_as::<_, Named>(
        "SELECT id, name, org FROM nt_named WHERE lname = $1 ORDER BY id",
    )
    .bind(&input.lname)
    .fetch_all(db)
    .await?)
}

#[reactive_function(name = "nt.pg.namedInOrg")]
pub async fn pg_named_in_org(
    db: &ReactiveDb<Postgres>,
    input: OrgInput,
) -> reactive::Result<Vec<Named>> {
    Ok(
        sqlx::query_as::<_, Named>("SELECT id, name, org FROM nt_named WHERE org = $1 ORDER BY id")
            .bind(input.org)
            .fetch_all(db)
            .await?,
    )
}

/// A generated column and a `BEFORE` trigger take values no statement names: the
/// pre-read's old value alone must not pass for the row's new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_generated_columns_and_triggers_are_unknown_in_writes() {
    let Some(url) = service_url("TEST_POSTGRES_URL") else {
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS nt_named;
         CREATE TABLE nt_named (id bigint PRIMARY KEY, name text NOT NULL, org bigint NOT NULL,
             lname text GENERATED ALWAYS AS (lower(name)) STORED);
         INSERT INTO nt_named (id, name, org) VALUES (1, 'Ada', 1), (2, 'Cy', 2);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = ReactiveDb::new(pool).await.unwrap();
    let call = |name: &'static str, input: serde_json::Value| {
        let db = &db;
        async move {
            let out = db.call(def(name), "t", input).await.expect("call");
            serde_json::from_slice::<Vec<Named>>(&out.bytes).unwrap()
        }
    };
    // Generated: renaming Ada to Bob moves the row from lname 'ada' to 'bob'.
    assert_eq!(
        call("nt.pg.byLowerName", json!({ "lname": "bob" }))
            .await
            .len(),
        0
    );
    sqlx::query("UPDATE nt_named SET name = $1 WHERE id = $2")
        .bind("Bob")
        .bind(1_i64)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        call("nt.pg.byLowerName", json!({ "lname": "bob" }))
            .await
            .len(),
        1,
        "the generated column's new value is not stale"
    );

    // A BEFORE trigger that moves every renamed row to organization 2.
    sqlx::raw_sql(
        "CREATE FUNCTION nt_named_move() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN NEW.org := 2; RETURN NEW; END $$;
         CREATE TRIGGER nt_named_move BEFORE UPDATE ON nt_named FOR EACH ROW EXECUTE FUNCTION nt_named_move();",
    )
    .execute(db.pool())
    .await
    .unwrap();
    db.refresh_schema().await;
    assert_eq!(call("nt.pg.namedInOrg", json!({ "org": 2 })).await.len(), 1);
    sqlx::query("UPDATE nt_named SET name = $1 WHERE id = $2")
        .bind("Bo")
        .bind(1_i64)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        call("nt.pg.namedInOrg", json!({ "org": 2 })).await.len(),
        2,
        "the row the trigger moved is not missing"
    );
    sqlx::raw_sql("DROP TABLE nt_named; DROP FUNCTION nt_named_move();")
        .execute(db.pool())
        .await
        .unwrap();
}

// ---------------------------------------------------------------- column aliases

#[derive(sqlx::FromRow, Serialize, Deserialize, ts_rs::TS, Debug, Clone, PartialEq)]
pub struct Aliased {
    pub id: i64,
    pub name: String,
}

/// `n(org, ...)` renames the table's columns by position: `n.org` is the `id` column.
#[reactive_function(name = "nt.pg.aliasedColumns")]
pub async fn pg_aliased_columns(
    db: &ReactiveDb<Postgres>,
    input: OrgInput,
) -> reactive::Result<Vec<Aliased>> {
    Ok(sqlx::query_as::<_, Aliased>(
        "SELECT n.org AS id, n.name FROM nt_aliased AS n(org, real_org, name) WHERE n.org = $1",
    )
    .bind(input.org)
    .fetch_all(db)
    .await?)
}

/// A table alias with a column list renames the columns: a predicate on an alias column
/// is not a key of the table's column of that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_column_aliases_are_not_the_tables_columns() {
    let Some(url) = service_url("TEST_POSTGRES_URL") else {
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS nt_aliased;
         CREATE TABLE nt_aliased (id bigint PRIMARY KEY, org bigint NOT NULL, name text NOT NULL);
         INSERT INTO nt_aliased VALUES (1, 7, 'ada');",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = ReactiveDb::new(pool).await.unwrap();
    let row_one = || async {
        let out = db
            .call(def("nt.pg.aliasedColumns"), "t", json!({ "org": 1 }))
            .await
            .expect("call");
        serde_json::from_slice::<Vec<Aliased>>(&out.bytes).unwrap()
    };
    assert_eq!(row_one().await[0].name, "ada");
    sqlx::query("UPDATE nt_aliased SET name = $1 WHERE id = $2")
        .bind("bob")
        .bind(1_i64)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(row_one().await[0].name, "bob", "not stale");
    sqlx::raw_sql("DROP TABLE nt_aliased")
        .execute(db.pool())
        .await
        .unwrap();
}
