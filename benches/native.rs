//! `ReactiveDb<Postgres>` over a native `PgPool`, measured against the same query on
//! that pool, against its performance targets:
//!
//! - `direct`: `sqlx::query_as::<_, Task>` on the raw `PgPool` — the baseline;
//! - `hit`: `db.call` served from the cache — target: at least 50× faster than `direct`;
//! - `miss`: `db.call` after its entry was invalidated as a write to that project's
//!   tasks would do it (`db.invalidate`, not timed): interception, read set, handler,
//!   serialization, store — target: at most 1.05× `direct`;
//! - `direct + JSON`: `direct` and `serde_json::to_vec` of its rows, the work any JSON
//!   API does with them (a miss returns the rows encoded): reported beside `direct`, so
//!   that what the runtime adds is seen apart from the encoding every handler pays;
//! - `intercepted`: the query through `&ReactiveDb<Postgres>` outside any call
//!   (interception only).
//!
//! The table is what an app would have: uuid keys, a `text` title, a `timestamptz`,
//! 10 tasks per project, rows decoded with `sqlx::FromRow` (no `query_as!`, which
//! would need offline data for the bench). PostgreSQL only: without
//! `TEST_POSTGRES_URL` the bench says so and exits.
//!
//! ```text
//! TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p reactive --bench native -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! After criterion's report the binary measures every case again, interleaved operation
//! by operation (direct, miss, intercepted, direct + JSON, hits, in a rotating order), so that a load
//! change on a shared machine hits the baseline and the case alike, and prints one
//! `summary:` line with the median and range of the per-batch ratios.
//! `REACTIVE_BENCH_LOOP=<direct|miss|intercepted|hit>` (and `REACTIVE_BENCH_ITERS`)
//! runs one case in a loop instead, for a profiler.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::Criterion;
use reactive::engine::{ChangeSet, KeyValue, RowChange};
use reactive::registry::FunctionDef;
use reactive::{ReactiveDb, reactive_function};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgPool, Postgres};
use tokio::runtime::Runtime;
use uuid::Uuid;

use common::{unique, with_database};

const NAME: &str = "bench.native.tasksOfProject";
/// The handler's query (the macro reads it from the literal in the handler: keep both the same).
const TASKS_OF_PROJECT: &str = "SELECT id, project_id, title, created_at FROM nb_task WHERE project_id = $1 ORDER BY created_at, id";
const PROJECTS: usize = 100;
const TASKS_PER_PROJECT: usize = 10;
const TENANT: &str = "bench";

#[derive(sqlx::FromRow, Serialize, Deserialize, ts_rs::TS, Debug, Clone, PartialEq)]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize, ts_rs::TS)]
pub struct ProjectInput {
    pub project_id: Uuid,
}

#[reactive_function(name = "bench.native.tasksOfProject")]
pub async fn tasks_of_project(
    db: &ReactiveDb<Postgres>,
    input: ProjectInput,
) -> reactive::Result<Vec<Task>> {
    Ok(sqlx::query_as::<_, Task>(
        "SELECT id, project_id, title, created_at FROM nb_task WHERE project_id = $1 ORDER BY created_at, id",
    )
    .bind(input.project_id)
        .fetch_all(db)
        .await?)
}

/// The database under test, created for the run and dropped after.
struct Setup {
    db: ReactiveDb<Postgres>,
    project: Uuid,
    admin: String,
    name: String,
}

async fn setup(admin: String) -> Setup {
    let name = unique("reactive_bench_native");
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to TEST_POSTGRES_URL");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create the bench database");
    let _ = conn.close().await;
    let pool = PgPool::connect(&with_database(&admin, &name))
        .await
        .expect("connect to the bench database");
    sqlx::raw_sql(
        "CREATE TABLE nb_project (id uuid PRIMARY KEY, name text NOT NULL);
         CREATE TABLE nb_task (
             id uuid PRIMARY KEY,
             project_id uuid NOT NULL REFERENCES nb_project ON DELETE CASCADE,
             title text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now()
         );
         CREATE INDEX nb_task_project ON nb_task (project_id);",
    )
    .execute(&pool)
    .await
    .expect("schema");
    let projects: Vec<Uuid> = (0..PROJECTS).map(|_| Uuid::new_v4()).collect();
    for (p, project) in projects.iter().enumerate() {
        sqlx::query("INSERT INTO nb_project (id, name) VALUES ($1, $2)")
            .bind(project)
            .bind(format!("project {p}"))
            .execute(&pool)
            .await
            .expect("insert a project");
        for t in 0..TASKS_PER_PROJECT {
            sqlx::query(
                "INSERT INTO nb_task (id, project_id, title, created_at) \
                 VALUES ($1, $2, $3, now() - make_interval(mins => $4))",
            )
            .bind(Uuid::new_v4())
            .bind(project)
            .bind(format!(
                "task {t} of project {p}: write the quarterly report"
            ))
            .bind(t as i32)
            .execute(&pool)
            .await
            .expect("insert a task");
        }
    }
    sqlx::raw_sql("ANALYZE")
        .execute(&pool)
        .await
        .expect("analyze");
    // The catalog (column types) is read here, after the schema exists.
    let db = ReactiveDb::new(pool).await.expect("wrap the pool");
    Setup {
        db,
        project: projects[0],
        admin,
        name,
    }
}

impl Setup {
    async fn teardown(self) {
        self.db.pool().close().await;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
    }
}

fn def() -> &'static FunctionDef {
    reactive::registry::functions()
        .into_iter()
        .find(|d| d.model().name == NAME)
        .unwrap_or_else(|| panic!("reactive function `{NAME}` is not registered"))
}

/// What one case needs: the handle, the function and the project it reads.
#[derive(Clone, Copy)]
struct Case<'a> {
    db: &'a ReactiveDb<Postgres>,
    def: &'static FunctionDef,
    project: Uuid,
}

impl Case<'_> {
    fn input(&self) -> Value {
        json!({ "project_id": self.project })
    }

    /// The query on the raw pool: no interception, no cache.
    async fn direct(self) -> Vec<Task> {
        sqlx::query_as::<_, Task>(TASKS_OF_PROJECT)
            .bind(self.project)
            .fetch_all(self.db.pool())
            .await
            .expect("direct query")
    }

    /// The raw query plus the JSON encoding any JSON API does with its rows (a miss
    /// returns the rows encoded): the baseline that does the same work minus ours.
    async fn direct_json(self) -> Vec<u8> {
        serde_json::to_vec(&self.direct().await).expect("encode")
    }

    /// The query through `&ReactiveDb<Postgres>` outside a call: interception, no cache.
    async fn intercepted(self) -> Vec<Task> {
        sqlx::query_as::<_, Task>(TASKS_OF_PROJECT)
            .bind(self.project)
            .fetch_all(self.db)
            .await
            .expect("intercepted query")
    }

    async fn hit(self) {
        let out = self
            .db
            .call(self.def, TENANT, self.input())
            .await
            .expect("call");
        debug_assert!(out.hit);
        black_box(out);
    }

    /// A miss: the entry is invalidated as a write to the project's tasks would do it
    /// (not timed), then the call computes and stores it.
    async fn miss(self) -> Duration {
        self.db.invalidate(self.change()).await;
        let start = Instant::now();
        let out = self
            .db
            .call(self.def, TENANT, self.input())
            .await
            .expect("call");
        let took = start.elapsed();
        assert!(!out.hit, "a miss after the invalidation");
        black_box(out);
        took
    }

    fn change(&self) -> ChangeSet {
        ChangeSet::empty().with_row(
            "nb_task",
            RowChange::whole().with(
                "project_id",
                KeyValue::from_str(&self.project.to_string(), self.db.dialect()),
            ),
        )
    }
}

fn criterion_benches(c: &mut Criterion, rt: &Runtime, case: Case<'_>) {
    rt.block_on(case.hit()); // warm the entry
    let mut group = c.benchmark_group("tasksOfProject/postgres-native");
    group.bench_function("hit", |b| b.to_async(rt).iter(|| case.hit()));
    group.bench_function("direct", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(case.direct().await) })
    });
    group.bench_function("intercepted", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(case.intercepted().await) })
    });
    group.bench_function("miss", |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += case.miss().await;
            }
            total
        })
    });
    group.finish();
}

/// Median, minimum and maximum of `v`.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Every case interleaved operation by operation: per batch, `n_db` rounds of direct,
/// miss and intercepted (in a rotating order) followed by `hits_per_round` hits; the
/// ratios are per batch.
fn summary(rt: &Runtime, case: Case<'_>, quick: bool) {
    let (batches, n_db, hits_per_round) = if quick { (3, 5, 5) } else { (15, 200, 25) };
    rt.block_on(case.db.engine().clear());
    rt.block_on(case.hit());
    let mut per_op = [Duration::ZERO; 5];
    let mut ratios: [Vec<f64>; 4] = Default::default();
    for _ in 0..batches {
        // direct, miss, intercepted, direct + JSON, hit
        let mut t = [Duration::ZERO; 5];
        for round in 0..n_db {
            rt.block_on(async {
                for step in 0..4 {
                    let case_no = (round + step) % 4;
                    let start = Instant::now();
                    match case_no {
                        0 => {
                            black_box(case.direct().await);
                        }
                        1 => {
                            t[1] += case.miss().await;
                            continue;
                        }
                        2 => {
                            black_box(case.intercepted().await);
                        }
                        _ => {
                            black_box(case.direct_json().await);
                        }
                    }
                    t[case_no] += start.elapsed();
                }
                let start = Instant::now();
                for _ in 0..hits_per_round {
                    case.hit().await;
                }
                t[4] += start.elapsed();
            });
        }
        let n = n_db as u32;
        let hit = t[4] / (n * hits_per_round as u32);
        let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        ratios[0].push(r(t[1], t[0]));
        ratios[1].push(r(t[2], t[0]));
        ratios[2].push(r(t[0] / n, hit));
        ratios[3].push(r(t[1], t[3]));
        for (total, batch) in per_op
            .iter_mut()
            .zip([t[0] / n, t[1] / n, t[2] / n, t[3] / n, hit])
        {
            *total += batch;
        }
    }
    rt.block_on(case.db.engine().clear());
    let [direct, miss, intercepted, direct_json, hit] = per_op.map(|t| t / batches as u32);
    let [miss_r, intercepted_r, hit_r, miss_json_r] = ratios.map(spread);
    println!(
        "summary (postgres native PgPool, {NAME}, {TASKS_PER_PROJECT} rows; {batches} batches of {n_db} interleaved rounds, median [min–max] of per-batch ratios): \
         miss {:.3}× direct [{:.3}–{:.3}] (target ≤ 1.05×); miss {:.3}× direct + JSON encoding [{:.3}–{:.3}]; intercepted {:.3}× direct [{:.3}–{:.3}]; \
         hit {:.0}× faster than direct [{:.0}–{:.0}] (target ≥ 50×); \
         mean per operation: direct {direct:?}, direct + JSON {direct_json:?}, miss {miss:?}, intercepted {intercepted:?}, hit {hit:?}",
        miss_r.0,
        miss_r.1,
        miss_r.2,
        miss_json_r.0,
        miss_json_r.1,
        miss_json_r.2,
        intercepted_r.0,
        intercepted_r.1,
        intercepted_r.2,
        hit_r.0,
        hit_r.1,
        hit_r.2,
    );
}

fn profile_loop(rt: &Runtime, case: Case<'_>, which: &str, iters: u64) {
    rt.block_on(async {
        case.db.engine().clear().await;
        case.hit().await;
        for _ in 0..iters {
            match which {
                "direct" => {
                    black_box(case.direct().await);
                }
                "intercepted" => {
                    black_box(case.intercepted().await);
                }
                "miss" => {
                    black_box(case.miss().await);
                }
                "hit" => case.hit().await,
                other => panic!("unknown REACTIVE_BENCH_LOOP case `{other}`"),
            }
        }
    });
}

fn main() {
    let Some(admin) = std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("TEST_POSTGRES_URL not set: the native PostgreSQL bench is skipped");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let setup = rt.block_on(setup(admin));
    let case = Case {
        db: &setup.db,
        def: def(),
        project: setup.project,
    };
    let rows = rt.block_on(case.direct());
    assert_eq!(rows.len(), TASKS_PER_PROJECT);
    assert_eq!(rt.block_on(case.intercepted()), rows);
    if let Ok(which) = std::env::var("REACTIVE_BENCH_LOOP") {
        let iters: u64 = std::env::var("REACTIVE_BENCH_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000);
        profile_loop(&rt, case, &which, iters);
    } else {
        // `cargo bench` passes `--bench`; `cargo test --benches` does not (criterion's
        // test mode).
        let quick = !std::env::args().any(|a| a == "--bench");
        let mut c = Criterion::default().configure_from_args();
        criterion_benches(&mut c, &rt, case);
        c.final_summary();
        summary(&rt, case, quick);
    }
    rt.block_on(setup.teardown());
}
