//! The shapes model: a schema of its own (created per run) with the shapes the
//! analyser and the runtime find hardest, under the checks of [`crate::check`].
//!
//! - `sh_org` → `sh_project` → `sh_task` → `sh_log`, each `ON DELETE CASCADE`
//!   (declared as relations): deleting an organization reaches logs three levels down;
//!   `sh_user` ← `sh_task.owner_id` `ON DELETE SET NULL`;
//! - `sh_task.title_key`, a STORED generated column (`lower(title)`) that a query
//!   filters on: a rename changes it without the statement naming it;
//! - `sh_task_view`, a view over `sh_task` and `sh_project` read by a cached query;
//! - on PostgreSQL, writable CTEs (`WITH moved AS (UPDATE ... RETURNING ...) INSERT`,
//!   `WITH d AS (DELETE ... RETURNING id) DELETE ...`, whose command tag is the outer
//!   statement's);
//! - cancelled requests: a write's future dropped after a random short time (it may or
//!   may not have committed; its invalidation must run to the end all the same);
//! - entries with a short TTL (500 ms) while SSE clients hold queries: at the end,
//!   after the writers stop and the events drain, every client's value — what it holds
//!   after applying its events and refetching — must equal the database;
//! - with the Redis store, a second `ReactiveDb` instance (its own engine and pool) on
//!   the same store, with a reader of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reactive::cache::CacheStore;
use reactive::cache::memory::{MemoryConfig, MemoryStore};
use reactive::engine::{Engine, EngineConfig};
use reactive::router::{Principal, RealtimeListener, with_principal};
use reactive::{Dialect, ReactiveDb, Relations, reactive_function};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{AnyPool, AssertSqlSafe};

use crate::check::{Checker, Drive, Listener, Model, ModelQuery, Recorder, drive};
use crate::common::*;
use crate::realtime_support::{self, Server, Sse};

/// The cascades and the `SET NULL`, as the runtime must follow them.
#[derive(Relations)]
#[relations(
    sh_org(sh_project.org_id),
    sh_project(sh_task.project_id),
    sh_task(sh_log.task_id),
    sh_user(sh_task.owner_id),
)]
#[allow(dead_code)] // only its derive's registration is used
pub struct ShapesSchema;

const TTL: Duration = Duration::from_millis(500);
const ORGS: [&str; 3] = ["o1", "o2", "o3"];
/// Projects and users of each organization (fixed ids; a deleted one may come back).
const PROJECTS: [[&str; 2]; 3] = [["p1", "p2"], ["p3", "p4"], ["p5", "p6"]];
const USERS: [[&str; 2]; 3] = [["u1", "u2"], ["u3", "u4"], ["u5", "u6"]];
/// Titles differ in case only, so that the generated key groups them.
const TITLES: [&str; 6] = ["Alpha", "ALPHA", "beta", "Beta", "Gamma", "gamma"];
const KEYS: [&str; 3] = ["alpha", "beta", "gamma"];

fn schema(d: Dialect) -> String {
    let generated = match d {
        Dialect::MySql => "title_key VARCHAR(100) AS (lower(title)) STORED",
        _ => "title_key VARCHAR(100) GENERATED ALWAYS AS (lower(title)) STORED",
    };
    let engine = if d == Dialect::MySql {
        " ENGINE=InnoDB"
    } else {
        ""
    };
    format!(
        "CREATE TABLE sh_org (id VARCHAR(40) PRIMARY KEY, name VARCHAR(100) NOT NULL){engine};
         CREATE TABLE sh_user (id VARCHAR(40) PRIMARY KEY, org_id VARCHAR(40) NOT NULL, name VARCHAR(100) NOT NULL){engine};
         CREATE TABLE sh_project (id VARCHAR(40) PRIMARY KEY,
             org_id VARCHAR(40) NOT NULL REFERENCES sh_org (id) ON DELETE CASCADE,
             name VARCHAR(100) NOT NULL){engine};
         CREATE TABLE sh_task (id VARCHAR(40) PRIMARY KEY,
             project_id VARCHAR(40) NOT NULL REFERENCES sh_project (id) ON DELETE CASCADE,
             owner_id VARCHAR(40) NULL REFERENCES sh_user (id) ON DELETE SET NULL,
             title VARCHAR(100) NOT NULL,
             {generated}){engine};
         CREATE TABLE sh_log (id VARCHAR(40) PRIMARY KEY,
             task_id VARCHAR(40) NOT NULL REFERENCES sh_task (id) ON DELETE CASCADE,
             note VARCHAR(100) NOT NULL){engine};
         CREATE VIEW sh_task_view AS
             SELECT t.id, t.title, p.org_id, p.name AS project
             FROM sh_task t JOIN sh_project p ON p.id = t.project_id;"
    )
}

// ---------------------------------------------------------------------------------
// The functions.

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShOrg {
    pub org: String,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShProject {
    pub org: String,
    pub project: String,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShKey {
    pub org: String,
    pub key: String,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShUser {
    /// The tenant: checked by the authorizer, not by the SQL.
    #[allow(dead_code)]
    pub org: String,
    pub user: String,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShTask {
    /// The tenant: checked by the authorizer, not by the SQL.
    #[allow(dead_code)]
    pub org: String,
    pub task: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ts_rs::TS)]
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub owner_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ts_rs::TS)]
pub struct ViewRow {
    pub id: String,
    pub title: String,
    pub project: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ts_rs::TS)]
pub struct CountRow {
    pub id: String,
    pub name: String,
    pub tasks: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ts_rs::TS)]
pub struct LogRow {
    pub id: String,
    pub task_id: String,
    pub note: String,
}

/// Tasks of a project, behind the tenant check (a subquery without a limit).
#[reactive_function(name = "sh.projectTasks")]
pub async fn project_tasks(
    db: &ReactiveDb<sqlx::Any>,
    input: ShProject,
) -> reactive::Result<Vec<TaskRow>> {
    Ok(sqlx::query_as::<_, TaskRow>(
        "SELECT id, title, owner_id FROM sh_task WHERE project_id = $1 \
         AND project_id IN (SELECT id FROM sh_project WHERE org_id = $2) ORDER BY id",
    )
    .bind(&input.project)
    .bind(&input.org)
    .fetch_all(db)
    .await?)
}

/// Tasks by the generated column.
#[reactive_function(name = "sh.tasksByKey")]
pub async fn tasks_by_key(
    db: &ReactiveDb<sqlx::Any>,
    input: ShKey,
) -> reactive::Result<Vec<TaskRow>> {
    Ok(sqlx::query_as::<_, TaskRow>(
        "SELECT id, title, owner_id FROM sh_task WHERE title_key = $1 \
         AND project_id IN (SELECT id FROM sh_project WHERE org_id = $2) ORDER BY id",
    )
    .bind(&input.key)
    .bind(&input.org)
    .fetch_all(db)
    .await?)
}

/// An organization's tasks through the view.
#[reactive_function(name = "sh.viewTasks")]
pub async fn view_tasks(
    db: &ReactiveDb<sqlx::Any>,
    input: ShOrg,
) -> reactive::Result<Vec<ViewRow>> {
    Ok(sqlx::query_as::<_, ViewRow>(
        "SELECT id, title, project FROM sh_task_view WHERE org_id = $1 ORDER BY id",
    )
    .bind(&input.org)
    .fetch_all(db)
    .await?)
}

/// A user's tasks (`owner_id` becomes NULL when the user is deleted).
#[reactive_function(name = "sh.ownerTasks")]
pub async fn owner_tasks(
    db: &ReactiveDb<sqlx::Any>,
    input: ShUser,
) -> reactive::Result<Vec<TaskRow>> {
    Ok(sqlx::query_as::<_, TaskRow>(
        "SELECT id, title, owner_id FROM sh_task WHERE owner_id = $1 ORDER BY id",
    )
    .bind(&input.user)
    .fetch_all(db)
    .await?)
}

/// Projects of an organization with their task counts.
#[reactive_function(name = "sh.projectCounts")]
pub async fn project_counts(
    db: &ReactiveDb<sqlx::Any>,
    input: ShOrg,
) -> reactive::Result<Vec<CountRow>> {
    Ok(sqlx::query_as::<_, CountRow>(
        "SELECT p.id, p.name, COUNT(t.id) AS tasks FROM sh_project p \
         LEFT JOIN sh_task t ON t.project_id = p.id WHERE p.org_id = $1 \
         GROUP BY p.id, p.name ORDER BY p.id",
    )
    .bind(&input.org)
    .fetch_all(db)
    .await?)
}

/// The log of a task.
#[reactive_function(name = "sh.taskLog")]
pub async fn task_log(db: &ReactiveDb<sqlx::Any>, input: ShTask) -> reactive::Result<Vec<LogRow>> {
    Ok(sqlx::query_as::<_, LogRow>(
        "SELECT id, task_id, note FROM sh_log WHERE task_id = $1 ORDER BY id",
    )
    .bind(&input.task)
    .fetch_all(db)
    .await?)
}

/// The writes of [`write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub enum Op {
    CreateOrg,
    DeleteOrg,
    CreateProject,
    DeleteProject,
    CreateUser,
    DeleteUser,
    CreateTask,
    RenameTask,
    MoveTask,
    AssignTask,
    DeleteTask,
    AddLog,
    /// A writable CTE (PostgreSQL): the command tag is the `INSERT`'s.
    CteMove,
    /// A writable CTE (PostgreSQL): the command tag is the outer `DELETE`'s, often 0
    /// while `d` deleted a task.
    CteDelete,
}

/// Input of [`write`] (fields an operation does not use stay empty).
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShWrite {
    pub op: Op,
    pub org: String,
    pub id: String,
    pub other: String,
    pub text: String,
    pub owner: String,
}

/// Every write of the model; the statement is picked at run time (the runtime reads
/// what each one changes when it runs).
#[reactive_function(name = "sh.write", mutation)]
pub async fn write(db: &ReactiveDb<sqlx::Any>, input: ShWrite) -> reactive::Result<i64> {
    let (id, other, text) = (&input.id, &input.other, &input.text);
    let q = match input.op {
        Op::CreateOrg => sqlx::query("INSERT INTO sh_org (id, name) VALUES ($1, $2)")
            .bind(id)
            .bind(text),
        Op::DeleteOrg => sqlx::query("DELETE FROM sh_org WHERE id = $1").bind(id),
        Op::CreateProject => {
            sqlx::query("INSERT INTO sh_project (id, org_id, name) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(&input.org)
                .bind(text)
        }
        Op::DeleteProject => sqlx::query("DELETE FROM sh_project WHERE id = $1").bind(id),
        Op::CreateUser => sqlx::query("INSERT INTO sh_user (id, org_id, name) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(&input.org)
            .bind(text),
        Op::DeleteUser => sqlx::query("DELETE FROM sh_user WHERE id = $1").bind(id),
        Op::CreateTask => sqlx::query(
            "INSERT INTO sh_task (id, project_id, owner_id, title) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(other)
        .bind(&input.owner)
        .bind(text),
        Op::RenameTask => sqlx::query("UPDATE sh_task SET title = $1 WHERE id = $2")
            .bind(text)
            .bind(id),
        Op::MoveTask => sqlx::query("UPDATE sh_task SET project_id = $1 WHERE id = $2")
            .bind(other)
            .bind(id),
        Op::AssignTask => sqlx::query("UPDATE sh_task SET owner_id = $1 WHERE id = $2")
            .bind(other)
            .bind(id),
        Op::DeleteTask => sqlx::query("DELETE FROM sh_task WHERE id = $1").bind(id),
        Op::AddLog => sqlx::query("INSERT INTO sh_log (id, task_id, note) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(other)
            .bind(text),
        Op::CteMove => sqlx::query(
            "WITH moved AS (UPDATE sh_task SET project_id = $1 WHERE id = $2 RETURNING id, title) \
             INSERT INTO sh_log (id, task_id, note) SELECT CAST($3 AS TEXT), id, title FROM moved",
        )
        .bind(other)
        .bind(id)
        .bind(text),
        Op::CteDelete => sqlx::query(
            "WITH d AS (DELETE FROM sh_task WHERE id = $1 RETURNING id) \
             DELETE FROM sh_log WHERE task_id IN (SELECT id FROM d)",
        )
        .bind(id),
    };
    Ok(q.execute(db).await?.rows_affected() as i64)
}

// ---------------------------------------------------------------------------------
// Queries.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Query {
    ProjectTasks { org: String, project: String },
    ByKey { org: String, key: String },
    View { org: String },
    Owner { org: String, user: String },
    Counts { org: String },
    Log { org: String, task: String },
}

impl Query {
    fn random(rng: &mut Rng, tasks: &[String]) -> Self {
        let i = rng.below(ORGS.len());
        Self::random_in(rng, i, tasks)
    }

    fn random_in(rng: &mut Rng, i: usize, tasks: &[String]) -> Self {
        let org = ORGS[i].to_owned();
        match rng.below(6) {
            0 => Query::ProjectTasks {
                org,
                project: rng.pick(&PROJECTS[i]).to_string(),
            },
            1 => Query::ByKey {
                org,
                key: rng.pick(&KEYS).to_string(),
            },
            2 => Query::View { org },
            3 => Query::Owner {
                org,
                user: rng.pick(&USERS[i]).to_string(),
            },
            4 => Query::Counts { org },
            _ => Query::Log {
                org,
                task: rng.pick(tasks).clone(),
            },
        }
    }

    /// Every query over these tasks.
    fn all(tasks: &[String]) -> Vec<Self> {
        let mut out = Vec::new();
        for (i, org) in ORGS.iter().enumerate() {
            let org = org.to_string();
            out.push(Query::View { org: org.clone() });
            out.push(Query::Counts { org: org.clone() });
            for project in PROJECTS[i] {
                out.push(Query::ProjectTasks {
                    org: org.clone(),
                    project: project.into(),
                });
            }
            for key in KEYS {
                out.push(Query::ByKey {
                    org: org.clone(),
                    key: key.into(),
                });
            }
            for user in USERS[i] {
                out.push(Query::Owner {
                    org: org.clone(),
                    user: user.into(),
                });
            }
            for task in tasks {
                out.push(Query::Log {
                    org: org.clone(),
                    task: task.clone(),
                });
            }
        }
        out
    }

    /// The subscription entry of this query key (`name:` + canonical input).
    fn entry(&self) -> String {
        format!("{}:{}", self.procedure(), self.input())
    }
}

impl ModelQuery for Query {
    fn procedure(&self) -> &'static str {
        match self {
            Query::ProjectTasks { .. } => "sh.projectTasks",
            Query::ByKey { .. } => "sh.tasksByKey",
            Query::View { .. } => "sh.viewTasks",
            Query::Owner { .. } => "sh.ownerTasks",
            Query::Counts { .. } => "sh.projectCounts",
            Query::Log { .. } => "sh.taskLog",
        }
    }

    fn org(&self) -> &str {
        match self {
            Query::ProjectTasks { org, .. }
            | Query::ByKey { org, .. }
            | Query::View { org }
            | Query::Owner { org, .. }
            | Query::Counts { org }
            | Query::Log { org, .. } => org,
        }
    }

    fn input(&self) -> Value {
        match self {
            Query::ProjectTasks { org, project } => json!({ "org": org, "project": project }),
            Query::ByKey { org, key } => json!({ "org": org, "key": key }),
            Query::View { org } | Query::Counts { org } => json!({ "org": org }),
            Query::Owner { org, user } => json!({ "org": org, "user": user }),
            Query::Log { org, task } => json!({ "org": org, "task": task }),
        }
    }

    /// The same SQL as the handler, on the raw pool.
    async fn direct(&self, pool: &AnyPool, d: Dialect) -> Result<Value, sqlx::Error> {
        let q = |text: &str| AssertSqlSafe(sql(d, text));
        Ok(match self {
            Query::ProjectTasks { org, project } => to_json(
                &sqlx::query_as::<_, TaskRow>(q(
                    "SELECT id, title, owner_id FROM sh_task WHERE project_id = $1 \
                     AND project_id IN (SELECT id FROM sh_project WHERE org_id = $2) ORDER BY id",
                ))
                .bind(project)
                .bind(org)
                .fetch_all(pool)
                .await?,
            ),
            Query::ByKey { org, key } => to_json(
                &sqlx::query_as::<_, TaskRow>(q(
                    "SELECT id, title, owner_id FROM sh_task WHERE title_key = $1 \
                     AND project_id IN (SELECT id FROM sh_project WHERE org_id = $2) ORDER BY id",
                ))
                .bind(key)
                .bind(org)
                .fetch_all(pool)
                .await?,
            ),
            Query::View { org } => to_json(
                &sqlx::query_as::<_, ViewRow>(q(
                    "SELECT id, title, project FROM sh_task_view WHERE org_id = $1 ORDER BY id",
                ))
                .bind(org)
                .fetch_all(pool)
                .await?,
            ),
            Query::Owner { user, .. } => to_json(
                &sqlx::query_as::<_, TaskRow>(q(
                    "SELECT id, title, owner_id FROM sh_task WHERE owner_id = $1 ORDER BY id",
                ))
                .bind(user)
                .fetch_all(pool)
                .await?,
            ),
            Query::Counts { org } => to_json(
                &sqlx::query_as::<_, CountRow>(q(
                    "SELECT p.id, p.name, COUNT(t.id) AS tasks FROM sh_project p \
                     LEFT JOIN sh_task t ON t.project_id = p.id WHERE p.org_id = $1 \
                     GROUP BY p.id, p.name ORDER BY p.id",
                ))
                .bind(org)
                .fetch_all(pool)
                .await?,
            ),
            Query::Log { task, .. } => to_json(
                &sqlx::query_as::<_, LogRow>(q(
                    "SELECT id, task_id, note FROM sh_log WHERE task_id = $1 ORDER BY id",
                ))
                .bind(task)
                .fetch_all(pool)
                .await?,
            ),
        })
    }
}

// ---------------------------------------------------------------------------------
// The run.

const MAX_TASKS: usize = 16;

struct Shared {
    db: Db,
    /// A second instance on the same Redis store (Redis runs only).
    other: Option<Db>,
    check: Checker,
    backend: Backend,
    /// Task ids reads and writes pick from (bounded; deleted ones stay until replaced).
    tasks: Mutex<Vec<String>>,
    cancelled: AtomicU64,
    ctes: AtomicU64,
    cascades: AtomicU64,
}

impl Shared {
    fn tasks(&self) -> Vec<String> {
        self.tasks.lock().unwrap().clone()
    }

    async fn sweep(&self) {
        let _quiet = self.check.gate.write().await;
        let queries = Query::all(&self.tasks());
        self.check.sweep_quiet(&self.db, &queries, true).await;
        if let Some(other) = &self.other {
            self.check.sweep_quiet(other, &queries, false).await;
        }
    }

    /// One random write (possibly cancelled); whether it succeeded.
    async fn random_write(&self, rng: &mut Rng, task: usize, n: u64) -> bool {
        let i = rng.below(ORGS.len());
        let org = ORGS[i];
        let tasks = self.tasks();
        let some_task = rng.pick(&tasks).clone();
        // Mostly within the organization, sometimes across (moves between tenants).
        let j = if rng.chance(85) {
            i
        } else {
            rng.below(ORGS.len())
        };
        let project = rng.pick(&PROJECTS[j]).to_string();
        let user = rng.pick(&USERS[j]).to_string();
        let title = rng.pick(&TITLES).to_string();
        let w = |op: Op, id: &str, other: &str, text: &str| ShWrite {
            op,
            org: org.to_owned(),
            id: id.to_owned(),
            other: other.to_owned(),
            text: text.to_owned(),
            owner: user.clone(),
        };
        let fresh = format!("t{task}-{n}");
        let pg = self.backend == Backend::Postgres;
        let input = match rng.below(100) {
            0..18 => w(Op::CreateTask, &fresh, &project, &title),
            18..33 => w(Op::RenameTask, &some_task, "", &title),
            33..43 => {
                self.check.counts.moves.fetch_add(1, SeqCst);
                w(Op::MoveTask, &some_task, &project, "")
            }
            43..51 => w(Op::AssignTask, &some_task, &user, ""),
            51..56 => w(Op::DeleteTask, &some_task, "", ""),
            56..64 => w(Op::AddLog, &format!("l{task}-{n}"), &some_task, "note"),
            64..67 => w(Op::DeleteProject, &project, "", ""),
            // A project or user belongs to the organization it is created for.
            67..72 => ShWrite {
                org: ORGS[j].to_owned(),
                ..w(Op::CreateProject, &project, "", "restored")
            },
            72..74 => w(Op::DeleteOrg, org, "", ""),
            74..79 => w(Op::CreateOrg, org, "", "restored"),
            79..82 => w(Op::DeleteUser, &user, "", ""),
            82..86 => ShWrite {
                org: ORGS[j].to_owned(),
                ..w(Op::CreateUser, &user, "", "restored")
            },
            86..92 if pg => w(Op::CteMove, &some_task, &project, &format!("c{task}-{n}")),
            92..96 if pg => w(Op::CteDelete, &some_task, "", ""),
            86..96 => w(Op::RenameTask, &some_task, "", &title),
            _ => return self.transaction(rng, &some_task, &project, &title).await,
        };
        match input.op {
            Op::DeleteOrg | Op::DeleteProject | Op::DeleteUser => {
                self.cascades.fetch_add(1, SeqCst);
            }
            Op::CteMove | Op::CteDelete => {
                self.ctes.fetch_add(1, SeqCst);
            }
            _ => {}
        }
        let value = serde_json::to_value(&input).expect("input");
        let call = self.db.call(def("sh.write"), org, value);
        // Half the writes run as a request of the organization's principal (its tenant
        // hears the event), the others without one (a background job).
        let as_principal = rng.chance(50);
        let cancel_after = rng
            .chance(15)
            .then(|| Duration::from_micros(rng.below(3000) as u64));
        let call = async {
            if as_principal {
                with_principal(Principal::new(org, "writer"), call).await
            } else {
                call.await
            }
        };
        let result = match cancel_after {
            Some(after) => match tokio::time::timeout(after, call).await {
                Ok(result) => result,
                Err(_) => {
                    self.cancelled.fetch_add(1, SeqCst);
                    // The write may have committed: its invalidation runs on without the
                    // caller. It counts as in flight until that is over.
                    self.db.settled().await;
                    return true;
                }
            },
            None => call.await,
        };
        match result {
            Ok(_) => {
                if input.op == Op::CreateTask {
                    let mut pool = self.tasks.lock().unwrap();
                    if pool.len() >= MAX_TASKS {
                        let k = rng.below(pool.len());
                        pool.swap_remove(k);
                    }
                    pool.push(fresh);
                }
                true
            }
            Err(e) => {
                tracing_note(&e.to_string());
                false
            }
        }
    }

    /// Rename a task and move another's project in one transaction; commit, roll back
    /// or drop it.
    async fn transaction(&self, rng: &mut Rng, task: &str, project: &str, title: &str) -> bool {
        let e = |e: sqlx::Error| tracing_note(&e.to_string());
        let Ok(mut tx) = self.db.begin().await.map_err(e) else {
            return false;
        };
        let other = rng.pick(&self.tasks()).clone();
        let ok = sqlx::query("UPDATE sh_task SET title = $1 WHERE id = $2")
            .bind(title)
            .bind(task)
            .execute(&mut tx)
            .await
            .map_err(e)
            .is_ok()
            && sqlx::query("UPDATE sh_task SET project_id = $1 WHERE id = $2")
                .bind(project)
                .bind(other)
                .execute(&mut tx)
                .await
                .map_err(e)
                .is_ok();
        if !ok {
            return false;
        }
        let c = &self.check.counts;
        match rng.below(3) {
            0 => {
                c.tx_commits.fetch_add(1, SeqCst);
                tx.commit().await.map_err(e).is_ok()
            }
            1 => {
                c.tx_rollbacks.fetch_add(1, SeqCst);
                tx.rollback().await.map_err(e).is_ok()
            }
            _ => {
                c.tx_rollbacks.fetch_add(1, SeqCst);
                drop(tx);
                true
            }
        }
    }
}

impl Model for Shared {
    fn checker(&self) -> &Checker {
        &self.check
    }

    async fn read(&self, t: usize, rng: &mut Rng) {
        let q = Query::random(rng, &self.tasks());
        // Reader 3 reads through the other instance, when there is one.
        match &self.other {
            Some(other) if t == 3 => self.check.checked_read(other, &q, false).await,
            _ => self.check.checked_read(&self.db, &q, true).await,
        }
    }

    async fn random_write(&self, rng: &mut Rng, t: usize, n: u64) -> bool {
        Shared::random_write(self, rng, t, n).await
    }

    async fn sweep(&self) {
        Shared::sweep(self).await;
    }
}

// ---------------------------------------------------------------------------------
// SSE clients.

/// One browser-like client: holds query values with their watermarks, applies the
/// events of its stream by refetching, and revalidates everything on `reset`.
struct Client {
    tenant: String,
    queries: Vec<Query>,
    /// Query entry → (value, watermark).
    held: HashMap<String, (Value, u64)>,
    refetches: u64,
}

impl Client {
    fn token(&self) -> String {
        format!("{}:client", self.tenant)
    }

    async fn fetch(&mut self, server: &Server, q: &Query) {
        let (status, body) = server.post(&self.token(), q.procedure(), q.input()).await;
        assert_eq!(status, 200, "{q:?}: {body}");
        let watermark: u64 = body["eventId"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("eventId");
        self.refetches += 1;
        self.held
            .insert(q.entry(), (body["data"].clone(), watermark));
    }

    /// Fetches everything, then follows the stream until `stop`; `idle_since` is when it
    /// last did anything.
    async fn run(
        mut self,
        server: Arc<Server>,
        stop: Arc<AtomicBool>,
        idle: Arc<Mutex<Instant>>,
    ) -> Self {
        for q in self.queries.clone() {
            self.fetch(&server, &q).await;
        }
        let since = self.held.values().map(|(_, w)| *w).min().unwrap_or(0);
        let entries: Vec<String> = self.queries.iter().map(Query::entry).collect();
        let mut params: Vec<(&str, &str)> =
            entries.iter().map(|e| ("subscribe", e.as_str())).collect();
        let since = since.to_string();
        params.push(("lastEventId", &since));
        let mut sse: Sse = server.events(&self.token(), &params, None).await;
        while !stop.load(SeqCst) {
            let Some(frame) = sse.next_event(Duration::from_millis(100)).await else {
                continue;
            };
            *idle.lock().unwrap() = Instant::now();
            let data = frame.json();
            let id: u64 = data["eventId"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let stale: Vec<Query> = match frame.event.as_deref() {
                Some("reset") => self.queries.clone(),
                Some("invalidate") => {
                    let named: Vec<&str> = data["queries"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    self.queries
                        .iter()
                        .filter(|q| {
                            named.contains(&q.entry().as_str())
                                && self.held.get(&q.entry()).is_none_or(|(_, w)| *w < id)
                        })
                        .cloned()
                        .collect()
                }
                other => panic!("unexpected event {other:?}"),
            };
            for q in stale {
                self.fetch(&server, &q).await;
            }
            *idle.lock().unwrap() = Instant::now();
        }
        self
    }
}

/// The router over `db` serving the model's queries, on a port of its own.
async fn start_server(db: &Db) -> Server {
    let reads = [
        "sh.projectTasks",
        "sh.tasksByKey",
        "sh.viewTasks",
        "sh.ownerTasks",
        "sh.projectCounts",
        "sh.taskLog",
    ];
    realtime_support::serve(db.clone(), |config| {
        config.functions(reads.iter().map(|n| def(n)).collect())
    })
    .await
}

async fn engine_db(url: &str, store: Arc<dyn CacheStore>) -> Db {
    let db = ReactiveDb::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    db.with_engine(Engine::with_config(store, EngineConfig::default()))
}

async fn seed(db: &Db) {
    let d = db.dialect();
    let pool = db.pool();
    sqlx::raw_sql(AssertSqlSafe(schema(d)))
        .execute(pool)
        .await
        .expect("create the shapes schema");
    let run = |text: &'static str, args: Vec<String>| async move {
        let mut q = sqlx::query(AssertSqlSafe(sql(d, text)));
        for a in args {
            q = q.bind(a);
        }
        q.execute(pool).await.expect("seed");
    };
    for (i, org) in ORGS.iter().enumerate() {
        run(
            "INSERT INTO sh_org (id, name) VALUES ($1, $2)",
            vec![org.to_string(), format!("Org {org}")],
        )
        .await;
        for p in PROJECTS[i] {
            run(
                "INSERT INTO sh_project (id, org_id, name) VALUES ($1, $2, $3)",
                vec![p.into(), org.to_string(), format!("Project {p}")],
            )
            .await;
        }
        for u in USERS[i] {
            run(
                "INSERT INTO sh_user (id, org_id, name) VALUES ($1, $2, $3)",
                vec![u.into(), org.to_string(), format!("User {u}")],
            )
            .await;
        }
    }
    for k in 0..12 {
        let i = k % 3;
        run(
            "INSERT INTO sh_task (id, project_id, owner_id, title) VALUES ($1, $2, $3, $4)",
            vec![
                format!("s{k}"),
                PROJECTS[i][k % 2].into(),
                USERS[i][(k / 3) % 2].into(),
                TITLES[k % 6].into(),
            ],
        )
        .await;
    }
    // The runtime learns of the view (and the generated column) from the catalog.
    db.refresh_schema().await;
}

async fn shapes_run(backend: Backend, store: Store) {
    let Some(redis_url) = redis_url_for(store) else {
        return;
    };
    let Some(scratch) = Scratch::create(backend).await else {
        return;
    };
    let seed_value = master_seed();
    let secs = env_u64("MODEL_SECS", 5);
    println!(
        "shapes model {backend:?}/{store:?}: seed {seed_value} (replay with MODEL_SEED={seed_value}), {secs} s"
    );
    let prefix = format!("{}:", unique("reactive:shapes"));
    let make_store = || -> Arc<dyn CacheStore> {
        match &redis_url {
            None => Arc::new(MemoryStore::new(MemoryConfig {
                ttl: TTL,
                ..MemoryConfig::default()
            })),
            Some(url) => redis_store_at(url, &prefix, Some(TTL)),
        }
    };
    let db = engine_db(&scratch.url, make_store()).await;
    seed(&db).await;
    let other = match store {
        Store::Redis => {
            let other = engine_db(&scratch.url, make_store()).await;
            other.refresh_schema().await;
            Some(other)
        }
        Store::Memory => None,
    };
    let server = Arc::new(start_server(&db).await);
    let rec = Arc::new(Recorder::default());
    // After the router's own listener: record, then publish.
    db.set_listener(Arc::new(Listener::then(
        rec.clone(),
        Arc::new(RealtimeListener::new(server.realtime.clone())),
    )));
    let shared = Arc::new(Shared {
        db: db.clone(),
        other,
        check: Checker::new(rec.clone()),
        backend,
        tasks: Mutex::new((0..12).map(|k| format!("s{k}")).collect()),
        cancelled: AtomicU64::new(0),
        ctes: AtomicU64::new(0),
        cascades: AtomicU64::new(0),
    });

    // SSE clients, one per organization, each holding a few of its query keys.
    let stop = Arc::new(AtomicBool::new(false));
    let idle = Arc::new(Mutex::new(Instant::now()));
    let mut clients = Vec::new();
    let mut rng = Rng(seed_value ^ 0x5EED_C11E);
    for (i, org) in ORGS.iter().enumerate() {
        let tasks = shared.tasks();
        let mut queries: Vec<Query> = (0..5)
            .map(|_| Query::random_in(&mut rng, i, &tasks))
            .collect();
        queries.dedup();
        let client = Client {
            tenant: org.to_string(),
            queries,
            held: HashMap::new(),
            refetches: 0,
        };
        clients.push(tokio::spawn(client.run(
            server.clone(),
            stop.clone(),
            idle.clone(),
        )));
    }

    // Sweeps read every key of both instances: every 2 s leaves the writers more time.
    let how = Drive {
        seed: seed_value,
        salt: 11,
        secs,
        readers: 4,
        writers: 2,
        sweep_every: Duration::from_secs(2),
    };
    drive(shared.clone(), how).await;

    // The writers are done: let the events drain (no client busy for a while), then
    // compare what each client holds with the database.
    let quiet_for = Duration::from_millis(800);
    let give_up = Instant::now() + Duration::from_secs(20);
    while idle.lock().unwrap().elapsed() < quiet_for && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, SeqCst);
    let mut client_checks = 0;
    let mut refetches = 0;
    for client in clients {
        let client = client.await.expect("client task");
        refetches += client.refetches;
        for q in &client.queries {
            let direct = q
                .direct(db.pool(), db.dialect())
                .await
                .expect("direct read");
            let (held, watermark) = &client.held[&q.entry()];
            client_checks += 1;
            if *held != direct {
                shared.check.stale(format!(
                    "SSE client of {} holds {q:?} = {held} (watermark {watermark}) but the database says {direct}",
                    client.tenant
                ));
            }
        }
    }

    println!(
        "shapes model {backend:?}/{store:?} seed {seed_value}: {}; cancelled writes {}, writable CTEs {}, cascading deletes {}; \
         SSE clients: {client_checks} query values checked at the end, {refetches} fetches",
        shared.check.summary(&db),
        shared.cancelled.load(SeqCst),
        shared.ctes.load(SeqCst),
        shared.cascades.load(SeqCst),
    );
    db.engine().clear().await;
    db.pool().close().await;
    if let Some(other) = &shared.other {
        other.pool().close().await;
    }
    scratch.drop_all().await;
    shared
        .check
        .assert_clean(&db, &format!("shapes {backend:?}/{store:?}"), seed_value);
}

#[test]
fn shapes_sqlite_memory() {
    runtime().block_on(shapes_run(Backend::Sqlite, Store::Memory));
}

#[test]
fn shapes_sqlite_redis() {
    runtime().block_on(shapes_run(Backend::Sqlite, Store::Redis));
}

#[test]
fn shapes_postgres_memory() {
    runtime().block_on(shapes_run(Backend::Postgres, Store::Memory));
}

#[test]
fn shapes_postgres_redis() {
    runtime().block_on(shapes_run(Backend::Postgres, Store::Redis));
}

#[test]
fn shapes_mysql_memory() {
    runtime().block_on(shapes_run(Backend::MySql, Store::Memory));
}

#[test]
fn shapes_mysql_redis() {
    runtime().block_on(shapes_run(Backend::MySql, Store::Redis));
}
