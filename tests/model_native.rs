//! The randomized model test of `tests/model_test.rs`, on sqlx's **native drivers**:
//! `ReactiveDb<Postgres>`, `ReactiveDb<MySql>` (MariaDB) and `ReactiveDb<Sqlite>`
//! instead of `ReactiveDb<Any>`.
//!
//! With a native driver the bound argument values are opaque to the runtime: a
//! statement's key values come from the input fields the macro traced, from the
//! pre-read of the affected rows and from `RETURNING`; the column-type catalog keeps
//! keys only for integer, boolean, uuid and text columns. This test checks that this
//! still never serves a stale read, under the same kind of load as the `Any` model test.
//!
//! # Schema
//!
//! `nm_org` → `nm_project` → `nm_task` (`ON DELETE CASCADE`, declared as a relation),
//! with a status enum and a timestamp:
//!
//! - PostgreSQL: `uuid` primary and foreign keys (the catalog's uuid class), a
//!   `CREATE TYPE ... AS ENUM` status (never a key), `timestamptz`;
//! - MariaDB: its native `UUID` column type (10.7+: the uuid class on MySQL's catalog
//!   path; ids bound and decoded as hyphenated text, because sqlx binds a
//!   `uuid::Uuid` as 16 raw bytes on MySQL), an `ENUM` status, `DATETIME(6)`;
//! - SQLite: the same uuids as `TEXT` (text keys; a `Uuid` would be stored as a blob,
//!   which has no key form), status `TEXT` with a `CHECK`, timestamps as text.
//!
//! The ids are the same kind of value (random v4 uuids from the seed) on every backend,
//! so one driver (queries, writes, tenant bookkeeping) serves all three.
//!
//! # Handlers
//!
//! Reactive functions cannot be generic over the driver, so [`native_backend!`] stamps
//! out one module of handlers per backend. They share their procedure names
//! (`nm.tasksOfProject`, ...) and are looked up by name *and* handle type
//! ([`FunctionDef::backend`]). The status enum serializes as `"Todo"` (serde) but is
//! stored as `'todo'`: a key by status would never match, so the status must never be
//! a key (the macro gives enum fields no key value; the catalog says the PostgreSQL and
//! MariaDB columns are not keys) — and the queries by status must still never be stale.
//!
//! # The run
//!
//! As in `model_test`: 4 reader tasks call the queries through `db.call`, each read
//! bracketed by the same SQL on `db.pool()`; 2 writer tasks run the mutations (create,
//! rename, status, move a task between projects, delete; create, move between
//! organizations and delete — cascading — a project), direct writes through `&db`
//! outside any function (whose values only the pre-read and `RETURNING` reveal), and
//! transactions that commit, roll back or are dropped; every second, and twice at the
//! end, a sweep stops the writers and checks every query key. Any stale read fails.
//! Unnecessary invalidations are measured as in `model_test`.
//!
//! `MODEL_SEED` replays a run's operation sequences, `MODEL_SECS` (default 4) bounds
//! each run, `MODEL_MAX_OPS` (default 50 000) the operations per task. PostgreSQL needs
//! `TEST_POSTGRES_URL`, MariaDB `TEST_MYSQL_URL` (a fresh database each run), the Redis
//! store `TEST_REDIS_URL`; a missing URL skips with a message, or panics when `CI` is set.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reactive::cache::memory::MemoryStore;
use reactive::cache::{CacheKey, CacheStore};
use reactive::db::InvalidationListener;
use reactive::engine::{Engine, EngineConfig, InvalidationReport, Relations, Source};
use reactive::registry::{BoxFuture, FunctionDef};
use reactive::{Dialect, ReactiveDb};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, MySql, Postgres, Sqlite};
use uuid::Uuid;

/// A serialized result as kept by the test.
type Bytes = Vec<u8>;

/// A boxed future borrowing its arguments.
type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// ---------------------------------------------------------------------------------
// The schema's shared types.

/// A task's status: `"Todo"` in JSON, `'todo'` in the database.
#[derive(
    sqlx::Type, Serialize, Deserialize, ts_rs::TS, Debug, Clone, Copy, PartialEq, Eq, Hash,
)]
#[sqlx(type_name = "nm_status", rename_all = "snake_case")]
pub enum Status {
    Todo,
    Doing,
    Done,
}

/// [`Status`] as read from MariaDB: it describes `ENUM` result columns in a way sqlx's
/// derived enum type rejects ("`ENUM` is not compatible with SQL type `ENUM`"), so the
/// rows decode the text. Bound values stay [`Status`].
#[derive(Serialize, ts_rs::TS, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MyStatus(Status);

impl sqlx::Type<MySql> for MyStatus {
    fn type_info() -> sqlx::mysql::MySqlTypeInfo {
        <str as sqlx::Type<MySql>>::type_info()
    }

    fn compatible(ty: &sqlx::mysql::MySqlTypeInfo) -> bool {
        <str as sqlx::Type<MySql>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, MySql> for MyStatus {
    fn decode(value: sqlx::mysql::MySqlValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        match <&str as sqlx::Decode<'r, MySql>>::decode(value)? {
            "todo" => Ok(Self(Status::Todo)),
            "doing" => Ok(Self(Status::Doing)),
            "done" => Ok(Self(Status::Done)),
            other => Err(format!("not a status: {other:?}").into()),
        }
    }
}

const STATUSES: [Status; 3] = [Status::Todo, Status::Doing, Status::Done];

fn status_json(s: Status) -> Value {
    serde_json::to_value(s).expect("status")
}

/// Deleting a project deletes its tasks (`ON DELETE CASCADE`); a project's id is what
/// its tasks reference.
#[derive(reactive::Relations)]
#[relations(nm_project(nm_task.project_id), nm_org(nm_project.organization_id))]
pub struct Schema;

/// Ids are uuids on PostgreSQL, their hyphenated text elsewhere.
fn pg_id(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("a uuid")
}

fn text_id(s: &str) -> String {
    s.to_owned()
}

/// What a backend module provides beyond its reactive functions: SQL the test runs
/// itself (direct reads on the pool, writes through the handle outside any function,
/// transactions), written once per driver.
trait Native: Send + Sync + 'static {
    type DB: reactive::Backend;
    const NAME: &'static str;
    const DIALECT: Dialect;
    /// The schema, for a fresh database.
    const SCHEMA: &'static str;
    /// The query's result from the pool (no interception, no cache).
    fn direct<'a>(pool: &'a sqlx::Pool<Self::DB>, q: &'a Query) -> Fut<'a, sqlx::Result<Value>>;
    /// A write through `&db`, outside any reactive function.
    fn direct_write<'a>(db: &'a ReactiveDb<Self::DB>, w: &'a Direct) -> Fut<'a, sqlx::Result<()>>;
    /// A transaction through `db.begin()`.
    fn transaction<'a>(db: &'a ReactiveDb<Self::DB>, plan: &'a TxPlan)
    -> Fut<'a, sqlx::Result<()>>;
    /// A pool on `url` with the schema and the seed rows, written straight into it.
    fn open<'a>(url: &'a str, data: &'a SeedData) -> Fut<'a, sqlx::Result<sqlx::Pool<Self::DB>>>;
}

/// SQL for the raw pool: `$N` → `?` on MySQL (the runtime does this for `ReactiveDb`).
fn sql(dialect: Dialect, text: &str) -> String {
    if dialect != Dialect::MySql {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializable")
}

/// One module of handlers and SQL per backend. `$id` is the Rust type of an id
/// (`Uuid` or `String`), `$to_id` turns the test's text id into it, `$status` is how
/// rows decode the status.
macro_rules! native_backend {
    ($module:ident, $marker:ident, $db:ident, $dialect:tt, $dialect_const:expr, $name:tt, $id:ident, $to_id:ident, $status:ident, $schema:expr) => {
        pub mod $module {
            use super::*;
            use reactive::reactive_function;

            #[derive(sqlx::FromRow, Serialize, ts_rs::TS, Debug, Clone)]
            pub struct Task {
                pub id: $id,
                pub project_id: $id,
                pub title: String,
                pub status: $status,
                pub created_at: DateTime<Utc>,
            }

            #[derive(sqlx::FromRow, Serialize, ts_rs::TS, Debug, Clone)]
            pub struct Project {
                pub id: $id,
                pub organization_id: $id,
                pub name: String,
            }

            #[derive(sqlx::FromRow, Serialize, ts_rs::TS, Debug, Clone)]
            pub struct ProjectCount {
                pub id: $id,
                pub name: String,
                pub tasks: i64,
                pub done: i64,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct OrgInput {
                pub organization_id: $id,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct ProjectInput {
                pub project_id: $id,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct StatusInput {
                pub organization_id: $id,
                pub status: Status,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct TaskInput {
                pub organization_id: $id,
                pub id: $id,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct CreateTask {
                pub id: $id,
                pub project_id: $id,
                pub title: String,
                pub status: Status,
                pub created_at: DateTime<Utc>,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct SetStatus {
                pub id: $id,
                pub status: Status,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct Rename {
                pub id: $id,
                pub title: String,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct MoveTask {
                pub id: $id,
                pub to_project_id: $id,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct ById {
                pub id: $id,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct CreateProject {
                pub id: $id,
                pub organization_id: $id,
                pub name: String,
            }

            #[derive(Deserialize, ts_rs::TS)]
            pub struct MoveProject {
                pub id: $id,
                pub to_organization_id: $id,
            }

            // ---- queries

            #[reactive_function(name = "nm.projects", dialect = $dialect)]
            pub async fn projects(db: &ReactiveDb<$db>, input: OrgInput) -> reactive::Result<Vec<Project>> {
                Ok(sqlx::query_as::<_, Project>(
                    "SELECT id, organization_id, name FROM nm_project WHERE organization_id = $1 ORDER BY name, id",
                )
                .bind(input.organization_id)
                .fetch_all(db)
                .await?)
            }

            /// A join with counts.
            #[reactive_function(name = "nm.projectCounts", dialect = $dialect)]
            pub async fn project_counts(db: &ReactiveDb<$db>, input: OrgInput) -> reactive::Result<Vec<ProjectCount>> {
                Ok(sqlx::query_as::<_, ProjectCount>(
                    "SELECT p.id, p.name, COUNT(t.id) AS tasks, COUNT(CASE WHEN t.status = 'done' THEN 1 END) AS done \
                     FROM nm_project p LEFT JOIN nm_task t ON t.project_id = p.id \
                     WHERE p.organization_id = $1 GROUP BY p.id, p.name ORDER BY p.name, p.id",
                )
                .bind(input.organization_id)
                .fetch_all(db)
                .await?)
            }

            /// Keyed by a uuid.
            #[reactive_function(name = "nm.tasksOfProject", dialect = $dialect)]
            pub async fn tasks_of_project(db: &ReactiveDb<$db>, input: ProjectInput) -> reactive::Result<Vec<Task>> {
                Ok(sqlx::query_as::<_, Task>(
                    "SELECT id, project_id, title, status, created_at FROM nm_task WHERE project_id = $1 ORDER BY created_at, id",
                )
                .bind(input.project_id)
                .fetch_all(db)
                .await?)
            }

            /// By the enum status, which is never a key (the organization is).
            #[reactive_function(name = "nm.tasksWithStatus", dialect = $dialect)]
            pub async fn tasks_with_status(db: &ReactiveDb<$db>, input: StatusInput) -> reactive::Result<Vec<Task>> {
                Ok(sqlx::query_as::<_, Task>(
                    "SELECT t.id, t.project_id, t.title, t.status, t.created_at \
                     FROM nm_task t JOIN nm_project p ON p.id = t.project_id \
                     WHERE p.organization_id = $1 AND t.status = $2 ORDER BY t.created_at, t.id",
                )
                .bind(input.organization_id)
                .bind(input.status)
                .fetch_all(db)
                .await?)
            }

            /// One task, if it is in the organization.
            #[reactive_function(name = "nm.task", dialect = $dialect)]
            pub async fn task(db: &ReactiveDb<$db>, input: TaskInput) -> reactive::Result<Option<Task>> {
                Ok(sqlx::query_as::<_, Task>(
                    "SELECT t.id, t.project_id, t.title, t.status, t.created_at \
                     FROM nm_task t JOIN nm_project p ON p.id = t.project_id \
                     WHERE t.id = $1 AND p.organization_id = $2",
                )
                .bind(input.id)
                .bind(input.organization_id)
                .fetch_optional(db)
                .await?)
            }

            // ---- mutations

            #[reactive_function(name = "nm.createTask", dialect = $dialect)]
            pub async fn create_task(db: &ReactiveDb<$db>, input: CreateTask) -> reactive::Result<u64> {
                Ok(sqlx::query(
                    "INSERT INTO nm_task (id, project_id, title, status, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(input.id)
                .bind(input.project_id)
                .bind(input.title)
                .bind(input.status)
                .bind(input.created_at)
                .execute(db)
                .await?
                .rows_affected())
            }

            #[reactive_function(name = "nm.setStatus", dialect = $dialect)]
            pub async fn set_status(db: &ReactiveDb<$db>, input: SetStatus) -> reactive::Result<u64> {
                Ok(sqlx::query("UPDATE nm_task SET status = $1 WHERE id = $2")
                    .bind(input.status)
                    .bind(input.id)
                    .execute(db)
                    .await?
                    .rows_affected())
            }

            #[reactive_function(name = "nm.renameTask", dialect = $dialect)]
            pub async fn rename_task(db: &ReactiveDb<$db>, input: Rename) -> reactive::Result<u64> {
                Ok(sqlx::query("UPDATE nm_task SET title = $1 WHERE id = $2")
                    .bind(input.title)
                    .bind(input.id)
                    .execute(db)
                    .await?
                    .rows_affected())
            }

            /// Moves a task to another project: the old project only the pre-read knows.
            #[reactive_function(name = "nm.moveTask", dialect = $dialect)]
            pub async fn move_task(db: &ReactiveDb<$db>, input: MoveTask) -> reactive::Result<u64> {
                Ok(sqlx::query("UPDATE nm_task SET project_id = $1 WHERE id = $2")
                    .bind(input.to_project_id)
                    .bind(input.id)
                    .execute(db)
                    .await?
                    .rows_affected())
            }

            #[reactive_function(name = "nm.deleteTask", dialect = $dialect)]
            pub async fn delete_task(db: &ReactiveDb<$db>, input: ById) -> reactive::Result<u64> {
                Ok(sqlx::query("DELETE FROM nm_task WHERE id = $1")
                    .bind(input.id)
                    .execute(db)
                    .await?
                    .rows_affected())
            }

            #[reactive_function(name = "nm.createProject", dialect = $dialect)]
            pub async fn create_project(db: &ReactiveDb<$db>, input: CreateProject) -> reactive::Result<u64> {
                Ok(sqlx::query("INSERT INTO nm_project (id, organization_id, name) VALUES ($1, $2, $3)")
                    .bind(input.id)
                    .bind(input.organization_id)
                    .bind(input.name)
                    .execute(db)
                    .await?
                    .rows_affected())
            }

            /// Moves a project (and so its tasks) to another organization.
            #[reactive_function(name = "nm.moveProject", dialect = $dialect)]
            pub async fn move_project(db: &ReactiveDb<$db>, input: MoveProject) -> reactive::Result<u64> {
                Ok(sqlx::query("UPDATE nm_project SET organization_id = $1 WHERE id = $2")
                    .bind(input.to_organization_id)
                    .bind(input.id)
                    .execute(db)
                    .await?
                    .rows_affected())
            }

            /// Its tasks go by `ON DELETE CASCADE` (the relation edge, cascade pre-read).
            #[reactive_function(name = "nm.deleteProject", dialect = $dialect)]
            pub async fn delete_project(db: &ReactiveDb<$db>, input: ById) -> reactive::Result<u64> {
                Ok(sqlx::query("DELETE FROM nm_project WHERE id = $1")
                    .bind(input.id)
                    .execute(db)
                    .await?
                    .rows_affected())
            }

            pub struct $marker;

            impl Native for $marker {
                type DB = $db;
                const NAME: &'static str = $name;
                const DIALECT: Dialect = $dialect_const;
                const SCHEMA: &'static str = $schema;

                fn direct<'a>(pool: &'a sqlx::Pool<$db>, q: &'a Query) -> Fut<'a, sqlx::Result<Value>> {
                    Box::pin(async move {
                        let s = |text: &str| AssertSqlSafe(sql(Self::DIALECT, text));
                        Ok(match q {
                            Query::Projects { org } => to_json(
                                &sqlx::query_as::<_, Project>(s(
                                    "SELECT id, organization_id, name FROM nm_project WHERE organization_id = $1 ORDER BY name, id",
                                ))
                                .bind($to_id(org))
                                .fetch_all(pool)
                                .await?,
                            ),
                            Query::ProjectCounts { org } => to_json(
                                &sqlx::query_as::<_, ProjectCount>(s(
                                    "SELECT p.id, p.name, COUNT(t.id) AS tasks, COUNT(CASE WHEN t.status = 'done' THEN 1 END) AS done \
                                     FROM nm_project p LEFT JOIN nm_task t ON t.project_id = p.id \
                                     WHERE p.organization_id = $1 GROUP BY p.id, p.name ORDER BY p.name, p.id",
                                ))
                                .bind($to_id(org))
                                .fetch_all(pool)
                                .await?,
                            ),
                            Query::TasksOfProject { project, .. } => to_json(
                                &sqlx::query_as::<_, Task>(s(
                                    "SELECT id, project_id, title, status, created_at FROM nm_task WHERE project_id = $1 ORDER BY created_at, id",
                                ))
                                .bind($to_id(project))
                                .fetch_all(pool)
                                .await?,
                            ),
                            Query::TasksWithStatus { org, status } => to_json(
                                &sqlx::query_as::<_, Task>(s(
                                    "SELECT t.id, t.project_id, t.title, t.status, t.created_at \
                                     FROM nm_task t JOIN nm_project p ON p.id = t.project_id \
                                     WHERE p.organization_id = $1 AND t.status = $2 ORDER BY t.created_at, t.id",
                                ))
                                .bind($to_id(org))
                                .bind(*status)
                                .fetch_all(pool)
                                .await?,
                            ),
                            Query::Task { org, id } => to_json(
                                &sqlx::query_as::<_, Task>(s(
                                    "SELECT t.id, t.project_id, t.title, t.status, t.created_at \
                                     FROM nm_task t JOIN nm_project p ON p.id = t.project_id \
                                     WHERE t.id = $1 AND p.organization_id = $2",
                                ))
                                .bind($to_id(id))
                                .bind($to_id(org))
                                .fetch_optional(pool)
                                .await?,
                            ),
                        })
                    })
                }

                fn direct_write<'a>(db: &'a ReactiveDb<$db>, w: &'a Direct) -> Fut<'a, sqlx::Result<()>> {
                    Box::pin(async move {
                        match w {
                            Direct::MoveTask { task, to } => {
                                sqlx::query("UPDATE nm_task SET project_id = $1 WHERE id = $2")
                                    .bind($to_id(to))
                                    .bind($to_id(task))
                                    .execute(db)
                                    .await?;
                            }
                            Direct::Status { task, status } => {
                                sqlx::query("UPDATE nm_task SET status = $1 WHERE id = $2")
                                    .bind(*status)
                                    .bind($to_id(task))
                                    .execute(db)
                                    .await?;
                            }
                            Direct::RenameInProject { project, title } => {
                                sqlx::query("UPDATE nm_task SET title = $1 WHERE project_id = $2")
                                    .bind(title.clone())
                                    .bind($to_id(project))
                                    .execute(db)
                                    .await?;
                            }
                            Direct::Insert { id, project, title, at, returning } => {
                                let insert = sqlx::query(if *returning {
                                    "INSERT INTO nm_task (id, project_id, title, status, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id, project_id"
                                } else {
                                    "INSERT INTO nm_task (id, project_id, title, status, created_at) VALUES ($1, $2, $3, $4, $5)"
                                })
                                .bind($to_id(id))
                                .bind($to_id(project))
                                .bind(title.clone())
                                .bind(Status::Todo)
                                .bind(*at);
                                if *returning {
                                    insert.fetch_all(db).await?;
                                } else {
                                    insert.execute(db).await?;
                                }
                            }
                            Direct::DeleteTask { task } => {
                                sqlx::query("DELETE FROM nm_task WHERE id = $1")
                                    .bind($to_id(task))
                                    .execute(db)
                                    .await?;
                            }
                            Direct::MoveProject { project, to } => {
                                sqlx::query("UPDATE nm_project SET organization_id = $1 WHERE id = $2")
                                    .bind($to_id(to))
                                    .bind($to_id(project))
                                    .execute(db)
                                    .await?;
                            }
                        }
                        Ok(())
                    })
                }

                fn transaction<'a>(db: &'a ReactiveDb<$db>, plan: &'a TxPlan) -> Fut<'a, sqlx::Result<()>> {
                    Box::pin(async move {
                        let mut tx = db.begin().await?;
                        sqlx::query("UPDATE nm_task SET title = $1 WHERE id = $2")
                            .bind(plan.title.clone())
                            .bind($to_id(&plan.rename))
                            .execute(&mut tx)
                            .await?;
                        sqlx::query("UPDATE nm_task SET project_id = $1 WHERE id = $2")
                            .bind($to_id(&plan.to_project))
                            .bind($to_id(&plan.moved))
                            .execute(&mut tx)
                            .await?;
                        sqlx::query(
                            "INSERT INTO nm_task (id, project_id, title, status, created_at) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind($to_id(&plan.new_id))
                        .bind($to_id(&plan.new_project))
                        .bind(plan.title.clone())
                        .bind(Status::Doing)
                        .bind(plan.at)
                        .execute(&mut tx)
                        .await?;
                        match plan.outcome {
                            TxOutcome::Commit => tx.commit().await?,
                            TxOutcome::Rollback => tx.rollback().await?,
                            TxOutcome::Drop => drop(tx),
                        }
                        Ok(())
                    })
                }

                fn open<'a>(url: &'a str, data: &'a SeedData) -> Fut<'a, sqlx::Result<sqlx::Pool<$db>>> {
                    Box::pin(async move {
                        let pool = sqlx::Pool::<$db>::connect(url).await?;
                        let pool = &pool;
                        sqlx::raw_sql(Self::SCHEMA).execute(pool).await?;
                        let s = |text: &str| AssertSqlSafe(sql(Self::DIALECT, text));
                        for (i, org) in data.orgs.iter().enumerate() {
                            sqlx::query(s("INSERT INTO nm_org (id, name) VALUES ($1, $2)"))
                                .bind($to_id(org))
                                .bind(format!("org {i}"))
                                .execute(pool)
                                .await?;
                        }
                        for (i, (project, org)) in data.projects.iter().enumerate() {
                            sqlx::query(s("INSERT INTO nm_project (id, organization_id, name) VALUES ($1, $2, $3)"))
                                .bind($to_id(project))
                                .bind($to_id(org))
                                .bind(format!("project {i}"))
                                .execute(pool)
                                .await?;
                        }
                        for (i, (task, project, at)) in data.tasks.iter().enumerate() {
                            sqlx::query(s(
                                "INSERT INTO nm_task (id, project_id, title, status, created_at) VALUES ($1, $2, $3, $4, $5)",
                            ))
                            .bind($to_id(task))
                            .bind($to_id(project))
                            .bind(format!("task {i}"))
                            .bind(STATUSES[i % 3])
                            .bind(*at)
                            .execute(pool)
                            .await?;
                        }
                        Ok(pool.clone())
                    })
                }
            }
        }
    };
}

native_backend!(
    pg,
    Pg,
    Postgres,
    "postgres",
    Dialect::Postgres,
    "PostgreSQL",
    Uuid,
    pg_id,
    Status,
    "CREATE TYPE nm_status AS ENUM ('todo', 'doing', 'done');
     CREATE TABLE nm_org (id uuid PRIMARY KEY, name text NOT NULL);
     CREATE TABLE nm_project (
         id uuid PRIMARY KEY,
         organization_id uuid NOT NULL REFERENCES nm_org (id),
         name text NOT NULL
     );
     CREATE TABLE nm_task (
         id uuid PRIMARY KEY,
         project_id uuid NOT NULL REFERENCES nm_project (id) ON DELETE CASCADE,
         title text NOT NULL,
         status nm_status NOT NULL DEFAULT 'todo',
         created_at timestamptz NOT NULL
     );"
);

native_backend!(
    my,
    My,
    MySql,
    "mysql",
    Dialect::MySql,
    "MariaDB",
    String,
    text_id,
    MyStatus,
    "CREATE TABLE nm_org (id UUID PRIMARY KEY, name VARCHAR(100) NOT NULL) ENGINE = InnoDB;
     CREATE TABLE nm_project (
         id UUID PRIMARY KEY,
         organization_id UUID NOT NULL,
         name VARCHAR(100) NOT NULL,
         FOREIGN KEY (organization_id) REFERENCES nm_org (id)
     ) ENGINE = InnoDB;
     CREATE TABLE nm_task (
         id UUID PRIMARY KEY,
         project_id UUID NOT NULL,
         title VARCHAR(100) NOT NULL,
         status ENUM('todo', 'doing', 'done') NOT NULL DEFAULT 'todo',
         created_at DATETIME(6) NOT NULL,
         FOREIGN KEY (project_id) REFERENCES nm_project (id) ON DELETE CASCADE
     ) ENGINE = InnoDB;"
);

native_backend!(
    lite,
    Lite,
    Sqlite,
    "sqlite",
    Dialect::Sqlite,
    "SQLite",
    String,
    text_id,
    Status,
    "CREATE TABLE nm_org (id TEXT PRIMARY KEY, name TEXT NOT NULL);
     CREATE TABLE nm_project (
         id TEXT PRIMARY KEY,
         organization_id TEXT NOT NULL REFERENCES nm_org (id),
         name TEXT NOT NULL
     );
     CREATE TABLE nm_task (
         id TEXT PRIMARY KEY,
         project_id TEXT NOT NULL REFERENCES nm_project (id) ON DELETE CASCADE,
         title TEXT NOT NULL,
         status TEXT NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'doing', 'done')),
         created_at TEXT NOT NULL
     );"
);

// ---------------------------------------------------------------------------------
// What the test asks of a backend: queries, direct writes, transactions, seed rows.

/// A query, with text ids; `org` is the tenant (and, but for `TasksOfProject`, an input).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Query {
    Projects { org: String },
    ProjectCounts { org: String },
    TasksOfProject { org: String, project: String },
    TasksWithStatus { org: String, status: Status },
    Task { org: String, id: String },
}

impl Query {
    fn procedure(&self) -> &'static str {
        match self {
            Query::Projects { .. } => "nm.projects",
            Query::ProjectCounts { .. } => "nm.projectCounts",
            Query::TasksOfProject { .. } => "nm.tasksOfProject",
            Query::TasksWithStatus { .. } => "nm.tasksWithStatus",
            Query::Task { .. } => "nm.task",
        }
    }

    fn org(&self) -> &str {
        match self {
            Query::Projects { org }
            | Query::ProjectCounts { org }
            | Query::TasksOfProject { org, .. }
            | Query::TasksWithStatus { org, .. }
            | Query::Task { org, .. } => org,
        }
    }

    fn input(&self) -> Value {
        match self {
            Query::Projects { org } | Query::ProjectCounts { org } => {
                json!({ "organization_id": org })
            }
            Query::TasksOfProject { project, .. } => json!({ "project_id": project }),
            Query::TasksWithStatus { org, status } => {
                json!({ "organization_id": org, "status": status_json(*status) })
            }
            Query::Task { org, id } => json!({ "organization_id": org, "id": id }),
        }
    }

    fn cache_key(&self) -> CacheKey {
        CacheKey::from_json(Some(self.org()), self.procedure(), &self.input())
    }
}

/// A write through `&db` outside any reactive function.
#[derive(Debug, Clone)]
enum Direct {
    MoveTask {
        task: String,
        to: String,
    },
    Status {
        task: String,
        status: Status,
    },
    /// Every task of a project (the pre-read gives their ids).
    RenameInProject {
        project: String,
        title: String,
    },
    Insert {
        id: String,
        project: String,
        title: String,
        at: DateTime<Utc>,
        returning: bool,
    },
    DeleteTask {
        task: String,
    },
    MoveProject {
        project: String,
        to: String,
    },
}

#[derive(Debug, Clone, Copy)]
enum TxOutcome {
    Commit,
    Rollback,
    Drop,
}

/// A transaction: rename a task, move another to a project, insert a third; then
/// commit, roll back or drop.
#[derive(Debug, Clone)]
struct TxPlan {
    rename: String,
    title: String,
    moved: String,
    to_project: String,
    new_id: String,
    new_project: String,
    at: DateTime<Utc>,
    outcome: TxOutcome,
}

/// The initial rows: organizations, (project, org), (task, project, created_at).
struct SeedData {
    orgs: Vec<String>,
    projects: Vec<(String, String)>,
    tasks: Vec<(String, String, DateTime<Utc>)>,
}

// ---------------------------------------------------------------------------------
// Seeded randomness (SplitMix64), environment, services.

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A v4 uuid from the sequence, hyphenated lower case.
    fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string()
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn master_seed() -> u64 {
    match std::env::var("MODEL_SEED") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("MODEL_SEED must be a u64, got {v:?}")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default();
            nanos ^ u64::from(std::process::id()).rotate_left(32)
        }
    }
}

fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{tag}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, SeqCst)
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Memory,
    Redis,
}

/// The URL in `var`, or `None` after printing why the test skips (panics under `CI`).
fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{var} must be set when CI is set");
            }
            eprintln!("skipped: {var} not set");
            None
        }
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(feature = "redis")]
fn redis_store(url: &str) -> Arc<dyn CacheStore> {
    use reactive::cache::redis::{RedisConfig, RedisStore};
    let prefix = format!("{}:", unique("reactive:nativemodel"));
    Arc::new(RedisStore::new(RedisConfig::new(url).prefix(prefix)).expect("redis store"))
}

#[cfg(not(feature = "redis"))]
fn redis_store(_url: &str) -> Arc<dyn CacheStore> {
    panic!("the Redis store needs the `redis` feature (run with --all-features)")
}

// ---------------------------------------------------------------------------------
// Fixtures: a fresh database per run, with the schema, the seed rows and the handle.

/// Where the run's database lives, to drop it at the end.
enum Place {
    Server { admin: String, database: String },
    File(std::path::PathBuf),
}

/// Creates a fresh database for `backend` (`None`: skipped), returning the pool's URL.
async fn create_database(name: &str) -> Option<(String, Place)> {
    let database = unique("reactive_native_model");
    match name {
        "SQLite" => {
            let path = std::env::temp_dir().join(format!("{database}.db"));
            let _ = std::fs::remove_file(&path);
            Some((
                format!("sqlite://{}?mode=rwc", path.display()),
                Place::File(path),
            ))
        }
        "PostgreSQL" => {
            let admin = service_url("TEST_POSTGRES_URL")?;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to TEST_POSTGRES_URL");
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
                .execute(&mut conn)
                .await
                .expect("create database");
            let _ = conn.close().await;
            Some((
                with_database(&admin, &database),
                Place::Server { admin, database },
            ))
        }
        _ => {
            let admin = service_url("TEST_MYSQL_URL")?;
            let mut conn = sqlx::MySqlConnection::connect(&admin)
                .await
                .expect("connect to TEST_MYSQL_URL");
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
                .execute(&mut conn)
                .await
                .expect("create database");
            let _ = conn.close().await;
            Some((
                with_database(&admin, &database),
                Place::Server { admin, database },
            ))
        }
    }
}

async fn drop_database(place: Place) {
    match place {
        Place::File(path) => {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(path.with_extension("db-wal"));
            let _ = std::fs::remove_file(path.with_extension("db-shm"));
        }
        Place::Server { admin, database } if admin.starts_with("postgres") => {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
                let _ = conn.close().await;
            }
        }
        Place::Server { admin, database } => {
            if let Ok(mut conn) = sqlx::MySqlConnection::connect(&admin).await {
                let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database}")))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        }
    }
}

const ORGS: usize = 3;
const MAX_PROJECTS: usize = 9;
const MAX_TASKS: usize = 16;

fn timestamp(n: i64) -> DateTime<Utc> {
    // Whole milliseconds: every backend keeps them exactly.
    DateTime::from_timestamp_millis(1_767_225_600_000 + n * 1_001).expect("timestamp")
}

fn seed_data(rng: &mut Rng) -> SeedData {
    let orgs: Vec<String> = (0..ORGS).map(|_| rng.uuid()).collect();
    let projects: Vec<(String, String)> = (0..6)
        .map(|i| (rng.uuid(), orgs[i % ORGS].clone()))
        .collect();
    let tasks = (0..12)
        .map(|i| {
            (
                rng.uuid(),
                projects[i % projects.len()].0.clone(),
                timestamp(i as i64),
            )
        })
        .collect();
    SeedData {
        orgs,
        projects,
        tasks,
    }
}

// ---------------------------------------------------------------------------------
// Recording invalidations (for the unnecessary-invalidation measure), as model_test.

#[derive(Default)]
struct Recorder {
    /// Last value seen for each cache key (computed or hit).
    known: Mutex<HashMap<CacheKey, Bytes>>,
    /// Entries invalidated and not yet recomputed: value dropped, invalidation sequence,
    /// and whether every reason was a relation edge.
    dropped: Mutex<HashMap<CacheKey, (Bytes, u64, bool)>>,
    entries: AtomicU64,
    unnecessary: AtomicU64,
    necessary: AtomicU64,
    unnecessary_via_relation: AtomicU64,
    /// Procedure → (unnecessary, necessary).
    by_procedure: Mutex<std::collections::BTreeMap<String, (u64, u64)>>,
}

struct Listener(Arc<Recorder>);

impl InvalidationListener for Listener {
    fn on_invalidation(&self, report: Arc<InvalidationReport>) -> BoxFuture<'static, ()> {
        let rec = self.0.clone();
        Box::pin(async move {
            rec.entries.fetch_add(report.entries.len() as u64, SeqCst);
            let mut known = rec.known.lock().unwrap();
            let mut dropped = rec.dropped.lock().unwrap();
            for entry in &report.entries {
                if let Some(value) = known.remove(&entry.key) {
                    let via_relation = entry.reasons.iter().all(|r| r.relation.is_some());
                    dropped.entry(entry.key.clone()).or_insert((
                        value,
                        report.sequence,
                        via_relation,
                    ));
                }
            }
        })
    }

    fn bind(self: Arc<Self>) -> Arc<dyn InvalidationListener> {
        self
    }
}

impl Recorder {
    /// Records a call's result; `started` is the engine sequence before the call.
    fn observe(&self, key: &CacheKey, bytes: &[u8], source: Source, started: u64) {
        if source == Source::Computed {
            let mut dropped = self.dropped.lock().unwrap();
            if let Some((old, seq, via_relation)) = dropped.get(key)
                && started >= *seq
            {
                let mut by_procedure = self.by_procedure.lock().unwrap();
                let counts = by_procedure.entry(key.procedure.clone()).or_default();
                if old.as_slice() == bytes {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
                if old.as_slice() == bytes {
                    self.unnecessary.fetch_add(1, SeqCst);
                    if *via_relation {
                        self.unnecessary_via_relation.fetch_add(1, SeqCst);
                    }
                } else {
                    self.necessary.fetch_add(1, SeqCst);
                }
                dropped.remove(key);
            }
        }
        self.known
            .lock()
            .unwrap()
            .insert(key.clone(), bytes.to_vec());
    }
}

// ---------------------------------------------------------------------------------
// The model run.

#[derive(Default)]
struct Counts {
    reads: AtomicU64,
    hits: AtomicU64,
    strict_reads: AtomicU64,
    unverified_reads: AtomicU64,
    read_errors: AtomicU64,
    stale: AtomicU64,
    writes: AtomicU64,
    write_errors: AtomicU64,
    mutations: AtomicU64,
    direct_writes: AtomicU64,
    moves: AtomicU64,
    tx_commits: AtomicU64,
    tx_rollbacks: AtomicU64,
    sweeps: AtomicU64,
    sweep_reads: AtomicU64,
    writes_started: AtomicU64,
    writes_finished: AtomicU64,
}

/// What reads and writes pick from: ids, and where each row was last seen (reads mostly
/// ask a row's own organization, as an app does). Bookkeeping only: the checks compare
/// with the database, never with this.
#[derive(Default)]
struct Ids {
    orgs: Vec<String>,
    projects: Vec<String>,
    tasks: Vec<String>,
    project_org: HashMap<String, String>,
    task_project: HashMap<String, String>,
}

impl Ids {
    fn add(list: &mut Vec<String>, id: String, max: usize, rng: &mut Rng) {
        if list.len() >= max {
            let i = rng.below(list.len());
            list.swap_remove(i);
        }
        list.push(id);
    }

    fn task_org(&self, task: &str) -> Option<&String> {
        self.project_org.get(self.task_project.get(task)?)
    }
}

struct Shared<N: Native> {
    db: ReactiveDb<N::DB>,
    rec: Arc<Recorder>,
    counts: Counts,
    ids: Mutex<Ids>,
    /// Writers hold it shared for each write; a sweep holds it exclusively.
    gate: tokio::sync::RwLock<()>,
    clock: AtomicI64,
    stale_examples: Mutex<Vec<String>>,
}

/// The registered definition of a procedure for this handle type (every backend
/// registers the same names).
fn def<DB: reactive::Backend>(name: &str) -> &'static FunctionDef {
    ReactiveDb::<DB>::function(name)
        .unwrap_or_else(|| panic!("reactive function `{name}` is not registered for this backend"))
}

impl<N: Native> Shared<N> {
    fn now(&self) -> DateTime<Utc> {
        timestamp(self.clock.fetch_add(1, SeqCst))
    }

    fn random_query(&self, rng: &mut Rng) -> Query {
        let ids = self.ids.lock().unwrap();
        let mut org = rng.pick(&ids.orgs).clone();
        let home = rng.chance(80);
        match rng.below(6) {
            0 => Query::Projects { org },
            1 => Query::ProjectCounts { org },
            2 | 3 => {
                let project = rng.pick(&ids.projects).clone();
                if home && let Some(o) = ids.project_org.get(&project) {
                    org = o.clone();
                }
                Query::TasksOfProject { org, project }
            }
            4 => Query::TasksWithStatus {
                org,
                status: *rng.pick(&STATUSES),
            },
            _ => {
                let id = rng.pick(&ids.tasks).clone();
                if home && let Some(o) = ids.task_org(&id) {
                    org = o.clone();
                }
                Query::Task { org, id }
            }
        }
    }

    /// Every query over the ids known now.
    fn all_queries(&self) -> Vec<Query> {
        let ids = self.ids.lock().unwrap();
        let mut out = Vec::new();
        for org in &ids.orgs {
            out.push(Query::Projects { org: org.clone() });
            out.push(Query::ProjectCounts { org: org.clone() });
            for status in STATUSES {
                out.push(Query::TasksWithStatus {
                    org: org.clone(),
                    status,
                });
            }
            for project in &ids.projects {
                out.push(Query::TasksOfProject {
                    org: org.clone(),
                    project: project.clone(),
                });
            }
            for id in &ids.tasks {
                out.push(Query::Task {
                    org: org.clone(),
                    id: id.clone(),
                });
            }
        }
        out
    }

    fn stale(&self, what: String) {
        self.counts.stale.fetch_add(1, SeqCst);
        let mut examples = self.stale_examples.lock().unwrap();
        if examples.len() < 10 {
            examples.push(what);
        }
    }

    /// A reactive read, checked against direct queries before and after it.
    async fn checked_read(&self, q: &Query) {
        let c = &self.counts;
        let pool = self.db.pool();
        let started_before = c.writes_started.load(SeqCst);
        let finished_before = c.writes_finished.load(SeqCst);
        let Ok(before) = N::direct(pool, q).await else {
            c.read_errors.fetch_add(1, SeqCst);
            return;
        };
        let seq = self.db.engine().sequence().await;
        let out = self
            .db
            .call(def::<N::DB>(q.procedure()), q.org(), q.input())
            .await;
        let after = N::direct(pool, q).await;
        let started_after = c.writes_started.load(SeqCst);
        let (out, after) = match (out, after) {
            (Ok(out), Ok(after)) => (out, after),
            (out, after) => {
                if std::env::var_os("MODEL_VERBOSE").is_some() {
                    eprintln!("read {q:?} failed: {:?} / {:?}", out.err(), after.err());
                }
                c.read_errors.fetch_add(1, SeqCst);
                return;
            }
        };
        c.reads.fetch_add(1, SeqCst);
        if out.hit {
            c.hits.fetch_add(1, SeqCst);
        }
        self.rec
            .observe(&q.cache_key(), &out.bytes, out.source, seq);
        let value: Value = serde_json::from_slice(&out.bytes).expect("JSON output");
        let quiet = started_before == finished_before && started_after == started_before;
        if quiet {
            c.strict_reads.fetch_add(1, SeqCst);
        }
        if value == before || value == after {
            return;
        }
        if quiet {
            self.stale(format!(
                "{q:?} ({:?}): reactive {value} but the database says {after}",
                out.source
            ));
        } else {
            c.unverified_reads.fetch_add(1, SeqCst);
        }
    }

    /// With writers stopped: every query key through the cache equals the database.
    async fn sweep(&self) {
        let _quiet = self.gate.write().await;
        let c = &self.counts;
        c.sweeps.fetch_add(1, SeqCst);
        let pool = self.db.pool();
        for q in self.all_queries() {
            let seq = self.db.engine().sequence().await;
            let out = match self
                .db
                .call(def::<N::DB>(q.procedure()), q.org(), q.input())
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    c.read_errors.fetch_add(1, SeqCst);
                    eprintln!("sweep read {q:?} failed: {e}");
                    continue;
                }
            };
            let direct = match N::direct(pool, &q).await {
                Ok(direct) => direct,
                Err(e) => {
                    c.read_errors.fetch_add(1, SeqCst);
                    eprintln!("sweep direct read {q:?} failed: {e}");
                    continue;
                }
            };
            c.reads.fetch_add(1, SeqCst);
            c.sweep_reads.fetch_add(1, SeqCst);
            c.strict_reads.fetch_add(1, SeqCst);
            if out.hit {
                c.hits.fetch_add(1, SeqCst);
            }
            self.rec
                .observe(&q.cache_key(), &out.bytes, out.source, seq);
            let value: Value = serde_json::from_slice(&out.bytes).expect("JSON output");
            if value != direct {
                self.stale(format!(
                    "sweep {q:?} ({:?}): reactive {value} but the database says {direct}",
                    out.source
                ));
            }
        }
    }

    async fn mutation(&self, name: &str, tenant: &str, input: Value) -> Result<(), String> {
        self.counts.mutations.fetch_add(1, SeqCst);
        self.db
            .call(def::<N::DB>(name), tenant, input)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    async fn direct(&self, w: Direct) -> Result<(), String> {
        self.counts.direct_writes.fetch_add(1, SeqCst);
        N::direct_write(&self.db, &w)
            .await
            .map_err(|e| e.to_string())
    }

    /// One random write; returns whether it succeeded.
    async fn random_write(&self, rng: &mut Rng, task_no: usize, n: u64) -> bool {
        let (org, org2, project, project2, task, task2) = {
            let ids = self.ids.lock().unwrap();
            (
                rng.pick(&ids.orgs).clone(),
                rng.pick(&ids.orgs).clone(),
                rng.pick(&ids.projects).clone(),
                rng.pick(&ids.projects).clone(),
                rng.pick(&ids.tasks).clone(),
                rng.pick(&ids.tasks).clone(),
            )
        };
        let title = format!("t{task_no}-{n}");
        let status = *rng.pick(&STATUSES);
        let c = &self.counts;
        let result: Result<(), String> = match rng.below(100) {
            // Mutations (reactive functions).
            0..10 => {
                let id = rng.uuid();
                let r = self
                    .mutation(
                        "nm.createTask",
                        &org,
                        json!({ "id": id, "project_id": project, "title": title,
                                "status": status_json(status), "created_at": self.now() }),
                    )
                    .await;
                if r.is_ok() {
                    let mut ids = self.ids.lock().unwrap();
                    Ids::add(&mut ids.tasks, id.clone(), MAX_TASKS, rng);
                    ids.task_project.insert(id, project);
                }
                r
            }
            10..20 => {
                self.mutation(
                    "nm.setStatus",
                    &org,
                    json!({ "id": task, "status": status_json(status) }),
                )
                .await
            }
            20..26 => {
                self.mutation("nm.renameTask", &org, json!({ "id": task, "title": title }))
                    .await
            }
            26..36 => {
                c.moves.fetch_add(1, SeqCst);
                let r = self
                    .mutation(
                        "nm.moveTask",
                        &org,
                        json!({ "id": task, "to_project_id": project }),
                    )
                    .await;
                if r.is_ok() {
                    self.ids.lock().unwrap().task_project.insert(task, project);
                }
                r
            }
            36..40 => {
                self.mutation("nm.deleteTask", &org, json!({ "id": task }))
                    .await
            }
            40..43 => {
                let id = rng.uuid();
                let r = self
                    .mutation(
                        "nm.createProject",
                        &org,
                        json!({ "id": id, "organization_id": org, "name": title }),
                    )
                    .await;
                if r.is_ok() {
                    let mut ids = self.ids.lock().unwrap();
                    Ids::add(&mut ids.projects, id.clone(), MAX_PROJECTS, rng);
                    ids.project_org.insert(id, org);
                }
                r
            }
            43..49 => {
                c.moves.fetch_add(1, SeqCst);
                let r = self
                    .mutation(
                        "nm.moveProject",
                        &org,
                        json!({ "id": project, "to_organization_id": org }),
                    )
                    .await;
                if r.is_ok() {
                    self.ids.lock().unwrap().project_org.insert(project, org);
                }
                r
            }
            49..51 => {
                self.mutation("nm.deleteProject", &org, json!({ "id": project }))
                    .await
            }
            // Direct writes through `&db`: values opaque, the pre-read carries them.
            51..59 => {
                c.moves.fetch_add(1, SeqCst);
                let r = self
                    .direct(Direct::MoveTask {
                        task: task.clone(),
                        to: project2.clone(),
                    })
                    .await;
                if r.is_ok() {
                    self.ids.lock().unwrap().task_project.insert(task, project2);
                }
                r
            }
            59..65 => self.direct(Direct::Status { task, status }).await,
            65..69 => {
                self.direct(Direct::RenameInProject {
                    project: project2,
                    title,
                })
                .await
            }
            69..75 => {
                let id = rng.uuid();
                let r = self
                    .direct(Direct::Insert {
                        id: id.clone(),
                        project: project.clone(),
                        title,
                        at: self.now(),
                        returning: rng.chance(50),
                    })
                    .await;
                if r.is_ok() {
                    let mut ids = self.ids.lock().unwrap();
                    Ids::add(&mut ids.tasks, id.clone(), MAX_TASKS, rng);
                    ids.task_project.insert(id, project);
                }
                r
            }
            75..78 => self.direct(Direct::DeleteTask { task }).await,
            78..84 => {
                c.moves.fetch_add(1, SeqCst);
                let r = self
                    .direct(Direct::MoveProject {
                        project: project2.clone(),
                        to: org2.clone(),
                    })
                    .await;
                if r.is_ok() {
                    self.ids.lock().unwrap().project_org.insert(project2, org2);
                }
                r
            }
            // Transactions: commit (84..92), roll back (92..96), drop (96..100).
            k => {
                let outcome = match k {
                    84..92 => TxOutcome::Commit,
                    92..96 => TxOutcome::Rollback,
                    _ => TxOutcome::Drop,
                };
                let plan = TxPlan {
                    rename: task,
                    title,
                    moved: task2,
                    to_project: project,
                    new_id: rng.uuid(),
                    new_project: project2,
                    at: self.now(),
                    outcome,
                };
                let r = N::transaction(&self.db, &plan)
                    .await
                    .map_err(|e| e.to_string());
                if r.is_ok() {
                    match outcome {
                        TxOutcome::Commit => {
                            c.tx_commits.fetch_add(1, SeqCst);
                            let mut ids = self.ids.lock().unwrap();
                            ids.task_project.insert(plan.moved, plan.to_project);
                            Ids::add(&mut ids.tasks, plan.new_id.clone(), MAX_TASKS, rng);
                            ids.task_project.insert(plan.new_id, plan.new_project);
                        }
                        _ => {
                            c.tx_rollbacks.fetch_add(1, SeqCst);
                        }
                    }
                }
                r
            }
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                if std::env::var_os("MODEL_VERBOSE").is_some() {
                    eprintln!("write failed (expected under random writes): {e}");
                }
                false
            }
        }
    }
}

async fn model_run<N: Native>(store: Store) {
    let redis_url = match store {
        Store::Memory => None,
        Store::Redis => match service_url("TEST_REDIS_URL") {
            Some(u) => Some(u),
            None => return,
        },
    };
    let Some((url, place)) = create_database(N::NAME).await else {
        return;
    };
    let seed = master_seed();
    let secs = env_u64("MODEL_SECS", 4);
    let max_ops = env_u64("MODEL_MAX_OPS", 50_000);
    let mut seed_rng = Rng(seed);
    let data = seed_data(&mut seed_rng);

    let pool = N::open(&url, &data)
        .await
        .unwrap_or_else(|e| panic!("{}: schema and seed on {url}: {e}", N::NAME));
    // The catalog is read here, after the schema exists.
    let db = ReactiveDb::new(pool).await.expect("wrap the pool");
    let store_impl: Arc<dyn CacheStore> = match &redis_url {
        None => Arc::new(MemoryStore::default()),
        Some(url) => redis_store(url),
    };
    let config = EngineConfig {
        relations: Relations::registered(),
        ..EngineConfig::default()
    };
    let db = db.with_engine(Engine::with_config(store_impl, config));
    println!(
        "native model test {}/{store:?}: seed {seed} (replay with MODEL_SEED={seed}), {secs} s, at most {max_ops} ops per task",
        N::NAME
    );
    let rec = Arc::new(Recorder::default());
    db.set_listener(Arc::new(Listener(rec.clone())));
    let ids = Ids {
        orgs: data.orgs.clone(),
        projects: data.projects.iter().map(|(p, _)| p.clone()).collect(),
        tasks: data.tasks.iter().map(|(t, _, _)| t.clone()).collect(),
        project_org: data.projects.iter().cloned().collect(),
        task_project: data
            .tasks
            .iter()
            .map(|(t, p, _)| (t.clone(), p.clone()))
            .collect(),
    };
    let shared = Arc::new(Shared::<N> {
        db: db.clone(),
        rec: rec.clone(),
        counts: Counts::default(),
        ids: Mutex::new(ids),
        gate: tokio::sync::RwLock::new(()),
        clock: AtomicI64::new(1_000),
        stale_examples: Mutex::new(Vec::new()),
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let readers = 4;
    let writers = 2;
    let mut tasks = Vec::new();
    for t in 0..readers + writers {
        let shared = shared.clone();
        let mut rng = Rng(seed ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline && n < max_ops {
                n += 1;
                if t < readers {
                    let q = shared.random_query(&mut rng);
                    shared.checked_read(&q).await;
                } else {
                    {
                        let _write = shared.gate.read().await;
                        let c = &shared.counts;
                        c.writes_started.fetch_add(1, SeqCst);
                        if shared.random_write(&mut rng, t, n).await {
                            c.writes.fetch_add(1, SeqCst);
                        } else {
                            c.write_errors.fetch_add(1, SeqCst);
                        }
                        c.writes_finished.fetch_add(1, SeqCst);
                    }
                    // Leave quiet moments in which reads are strictly checkable.
                    let pause = rng.below(3) as u64;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }));
    }
    {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() + Duration::from_millis(1000) < deadline {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                shared.sweep().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("model task panicked");
    }
    shared.sweep().await;
    // A second sweep reads what the first one stored: hits must still be fresh.
    shared.sweep().await;

    let c = &shared.counts;
    let stats = db.stats();
    let unnecessary = rec.unnecessary.load(SeqCst);
    let via_relation = rec.unnecessary_via_relation.load(SeqCst);
    let necessary = rec.necessary.load(SeqCst);
    let resolved = unnecessary + necessary;
    let share = if resolved == 0 {
        0.0
    } else {
        100.0 * unnecessary as f64 / resolved as f64
    };
    let reads = c.reads.load(SeqCst);
    let hits = c.hits.load(SeqCst);
    println!(
        "native model test {}/{store:?} seed {seed}: reads {reads} (hits {hits}, {:.1}%; strictly checked {}, unverified {}, errors {}; sweeps {} with {} reads), \
         writes {} ok + {} failed ({} mutations, {} direct writes, moves {}, tx commits {}, rollbacks/drops {}), \
         invalidations {} applied, {} entries invalidated ({} via listener reports), \
         unnecessary {unnecessary} of {resolved} resolved ({share:.1}%; {via_relation} of them only via relation edges), \
         engine: hits {} misses {} coalesced {} store errors {}; pre-reads {} (fallbacks {}), \
         stale reads {}",
        N::NAME,
        100.0 * hits as f64 / reads.max(1) as f64,
        c.strict_reads.load(SeqCst),
        c.unverified_reads.load(SeqCst),
        c.read_errors.load(SeqCst),
        c.sweeps.load(SeqCst),
        c.sweep_reads.load(SeqCst),
        c.writes.load(SeqCst),
        c.write_errors.load(SeqCst),
        c.mutations.load(SeqCst),
        c.direct_writes.load(SeqCst),
        c.moves.load(SeqCst),
        c.tx_commits.load(SeqCst),
        c.tx_rollbacks.load(SeqCst),
        stats.engine.invalidations,
        stats.engine.entries_invalidated,
        rec.entries.load(SeqCst),
        stats.engine.hits,
        stats.engine.misses,
        stats.engine.coalesced_waits,
        stats.engine.store_errors,
        stats.pre_reads,
        stats.pre_read_fallbacks,
        c.stale.load(SeqCst),
    );
    let by_procedure: Vec<String> = rec
        .by_procedure
        .lock()
        .unwrap()
        .iter()
        .map(|(name, (unnecessary, necessary))| {
            format!("{name} {unnecessary}/{}", unnecessary + necessary)
        })
        .collect();
    println!(
        "native model test {}/{store:?}: unnecessary/resolved invalidations per procedure: {}",
        N::NAME,
        by_procedure.join(", ")
    );
    let examples = shared.stale_examples.lock().unwrap().clone();
    let read_errors = c.read_errors.load(SeqCst);
    db.engine().clear().await;
    db.pool().close().await;
    drop_database(place).await;
    assert!(
        examples.is_empty(),
        "{} stale read(s) ({}/{store:?}, replay with MODEL_SEED={seed}):\n{}",
        c.stale.load(SeqCst),
        N::NAME,
        examples.join("\n")
    );
    assert!(
        c.writes.load(SeqCst) > 0 && hits > 0,
        "the run did nothing useful"
    );
    assert!(
        read_errors * 20 <= reads.max(1),
        "{read_errors} read errors for {reads} reads (MODEL_VERBOSE=1 prints them)"
    );
    assert_eq!(stats.engine.store_errors, 0, "cache store errors");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn native_model_sqlite_memory() {
    runtime().block_on(model_run::<lite::Lite>(Store::Memory));
}

#[test]
fn native_model_sqlite_redis() {
    runtime().block_on(model_run::<lite::Lite>(Store::Redis));
}

#[test]
fn native_model_postgres_memory() {
    runtime().block_on(model_run::<pg::Pg>(Store::Memory));
}

#[test]
fn native_model_postgres_redis() {
    runtime().block_on(model_run::<pg::Pg>(Store::Redis));
}

#[test]
fn native_model_mysql_memory() {
    runtime().block_on(model_run::<my::My>(Store::Memory));
}

#[test]
fn native_model_mysql_redis() {
    runtime().block_on(model_run::<my::My>(Store::Redis));
}
