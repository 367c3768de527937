//! Facade-level benchmarks of `ReactiveDb` over the TeamHub schema, measuring it
//! against its performance targets:
//!
//! - `hit`: a cached read through `db.call` (`agents.findMany`), versus
//! - `direct`: the same query as a database round trip on the raw sqlx pool
//!   (PostgreSQL when `TEST_POSTGRES_URL` is set, else an SQLite file) — target: the
//!   hit is at least 50× faster;
//! - `miss`: a cache miss through `db.call` (lookup, interception, handler, store) after
//!   the entry was invalidated as by a write (the invalidation is not timed), and `intercepted`: the query sent
//!   through `&ReactiveDb<sqlx::Any>` outside any call (interception only), each versus `direct` —
//!   target: at most 5 % overhead on a miss. The summary also times a miss on a key never
//!   cached (no clear before it) against the same query on the pool;
//! - `invalidate/N`: one invalidation (`db.invalidate`) of organization 1's agents with
//!   N unrelated cached entries (N = 100 and 10 000) — target: flat in N.
//!
//! ```text
//! TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p reactive --bench reactive -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! After criterion's report, the binary measures every case again with a plain
//! `Instant` loop (median of 15 batches) and prints one `summary:` line with the ratios;
//! the database cases are measured a second time interleaved operation by operation
//! (direct, miss, intercepted, ...), whose per-batch ratios are the ones to trust on a
//! loaded machine.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use reactive::engine::{ChangeSet, KeyValue, RowChange};
use reactive::registry::FunctionDef;
use reactive::{Dialect, ReactiveDb};
use serde_json::{Value, json};
use sqlx::{AnyPool, AssertSqlSafe, Connection};
use teamhub::model::Agent;
use tokio::runtime::Runtime;

use common::{unique, with_database};

const FIND_MANY: &str = "SELECT id, organization_id, name, status, created_at FROM agent \
                         WHERE organization_id = $1 ORDER BY created_at, id";

/// The database under test; a PostgreSQL database is created for the run and dropped after.
struct Setup {
    db: ReactiveDb<sqlx::Any>,
    backend: &'static str,
    admin: Option<(String, String)>,
    sqlite_path: Option<std::path::PathBuf>,
}

async fn setup() -> Setup {
    sqlx::any::install_default_drivers();
    let name = unique("reactive_bench");
    let (url, backend, admin, sqlite_path) = match std::env::var("TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            let mut conn = sqlx::AnyConnection::connect(&admin)
                .await
                .expect("connect to TEST_POSTGRES_URL");
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create the bench database");
            let _ = conn.close().await;
            (
                with_database(&admin, &name),
                "postgres",
                Some((admin, name)),
                None,
            )
        }
        _ => {
            eprintln!("TEST_POSTGRES_URL not set: benchmarking an SQLite file instead");
            let path = std::env::temp_dir().join(format!("{name}.db"));
            (
                format!("sqlite://{}?mode=rwc", path.display()),
                "sqlite",
                None,
                Some(path),
            )
        }
    };
    let db = ReactiveDb::connect(&url).await.expect("connect");
    teamhub::seed::migrate(&db).await.expect("migrate");
    teamhub::seed::seed_if_empty(&db).await.expect("seed");
    // A handler called directly keeps teamhub's registrations linked into this binary.
    let _ = teamhub::handlers::tools_available(
        &db,
        teamhub::model::OrgInput {
            organization_id: "org-1".into(),
        },
    )
    .await;
    Setup {
        db,
        backend,
        admin,
        sqlite_path,
    }
}

impl Setup {
    async fn teardown(self) {
        self.db.pool().close().await;
        if let Some((admin, name)) = &self.admin
            && let Ok(mut conn) = sqlx::AnyConnection::connect(admin).await
        {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
        if let Some(path) = &self.sqlite_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn def(name: &str) -> &'static FunctionDef {
    reactive::registry::functions()
        .into_iter()
        .find(|d| d.model().name == name)
        .unwrap_or_else(|| panic!("reactive function `{name}` is not registered"))
}

fn input() -> Value {
    json!({ "organizationId": "org-1" })
}

/// The query on the raw pool: no interception, no cache.
async fn direct(pool: &AnyPool) -> Vec<Agent> {
    sqlx::query_as::<_, Agent>(FIND_MANY)
        .bind("org-1")
        .fetch_all(pool)
        .await
        .expect("direct query")
}

/// The query through `&ReactiveDb<sqlx::Any>` outside a call: interception, no cache.
async fn intercepted(db: &ReactiveDb<sqlx::Any>) -> Vec<Agent> {
    sqlx::query_as::<_, Agent>(FIND_MANY)
        .bind("org-1")
        .fetch_all(db)
        .await
        .expect("intercepted query")
}

async fn hit(db: &ReactiveDb<sqlx::Any>, def: &FunctionDef) {
    let out = db.call(def, "org-1", input()).await.expect("call");
    debug_assert!(out.hit);
    black_box(out);
}

/// A miss: the entry is invalidated as a write to organization 1's agents would do it
/// (not timed), then the call computes and stores it.
async fn miss(db: &ReactiveDb<sqlx::Any>, def: &FunctionDef) -> Duration {
    db.invalidate(org1_change(db.dialect())).await;
    let start = Instant::now();
    let out = db.call(def, "org-1", input()).await.expect("call");
    let took = start.elapsed();
    assert!(!out.hit, "a miss after the invalidation");
    black_box(out);
    took
}

fn org1_change(dialect: Dialect) -> ChangeSet {
    ChangeSet::empty().with_row(
        "agent",
        RowChange::whole().with("organization_id", KeyValue::from_str("org-1", dialect)),
    )
}

/// Caches `agents.findMany` for organizations `org-u0`..`org-u{n}` (which have no
/// agents): entries an invalidation of organization 1 cannot affect.
async fn fill_unrelated(db: &ReactiveDb<sqlx::Any>, from: usize, to: usize) {
    let def = def("agents.findMany");
    for i in from..to {
        let org = format!("org-u{i}");
        db.call(def, &org, json!({ "organizationId": org }))
            .await
            .expect("fill");
    }
}

fn criterion_benches(c: &mut Criterion, rt: &Runtime, db: &ReactiveDb<sqlx::Any>, backend: &str) {
    let find_many = def("agents.findMany");
    rt.block_on(hit(db, find_many)); // warm the entry
    let mut group = c.benchmark_group(format!("agents.findMany/{backend}"));
    group.bench_function("hit", |b| b.to_async(rt).iter(|| hit(db, find_many)));
    group.bench_function("direct", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(direct(db.pool()).await) })
    });
    group.bench_function("intercepted", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(intercepted(db).await) })
    });
    group.bench_function("miss", |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += miss(db, find_many).await;
            }
            total
        })
    });
    group.finish();

    let mut group = c.benchmark_group(format!("invalidate/{backend}"));
    let mut filled = 0;
    for n in [100, 10_000] {
        rt.block_on(fill_unrelated(db, filled, n));
        filled = n;
        let change = org1_change(db.dialect());
        group.bench_function(format!("{n}"), |b| {
            b.to_async(rt)
                .iter(|| async { black_box(db.invalidate(change.clone()).await) })
        });
    }
    group.finish();
    rt.block_on(db.engine().clear());
}

/// Median per-operation time of `batches` batches of `per_batch` operations.
fn median_of<'a, F>(rt: &Runtime, batches: usize, per_batch: usize, mut op: F) -> Duration
where
    F: FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = Duration> + 'a>>,
{
    let mut samples: Vec<Duration> = (0..batches)
        .map(|_| {
            let mut total = Duration::ZERO;
            for _ in 0..per_batch {
                total += rt.block_on(op());
            }
            total / per_batch as u32
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn timed<'a, Fut: std::future::Future<Output = ()> + 'a>(
    fut: Fut,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Duration> + 'a>> {
    Box::pin(async move {
        let start = Instant::now();
        fut.await;
        start.elapsed()
    })
}

fn summary(rt: &Runtime, db: &ReactiveDb<sqlx::Any>, backend: &str, quick: bool) {
    let (batches, n_db, n_hit) = if quick { (3, 5, 50) } else { (15, 200, 5_000) };
    let find_many = def("agents.findMany");
    rt.block_on(db.engine().clear());
    rt.block_on(hit(db, find_many));
    let hit_t = median_of(rt, batches, n_hit, || timed(hit(db, find_many)));
    let direct_t = median_of(rt, batches, n_db, || {
        timed(async {
            black_box(direct(db.pool()).await);
        })
    });
    let intercepted_t = median_of(rt, batches, n_db, || {
        timed(async {
            black_box(intercepted(db).await);
        })
    });
    let miss_t = median_of(rt, batches, n_db, || Box::pin(miss(db, find_many)));
    // A miss on a key never cached (no clear before it), against the same (empty) query.
    let mut fresh = 0u64;
    let miss_fresh_t = median_of(rt, batches, n_db, || {
        fresh += 1;
        let org = format!("org-fresh{fresh}");
        timed(async move {
            let out = db
                .call(find_many, &org, json!({ "organizationId": org }))
                .await
                .expect("call");
            assert!(!out.hit, "a key never cached");
            black_box(out);
        })
    });
    let direct_empty_t = median_of(rt, batches, n_db, || {
        timed(async {
            black_box(
                sqlx::query_as::<_, Agent>(FIND_MANY)
                    .bind("org-none")
                    .fetch_all(db.pool())
                    .await
                    .expect("direct query"),
            );
        })
    });
    // The same cases interleaved operation by operation, so that a load change on this
    // shared machine hits the baseline and the case alike: median of per-batch ratios.
    let mut ratios: [Vec<f64>; 3] = Default::default();
    let mut fresh = 0u64;
    for _ in 0..batches {
        let mut t = [Duration::ZERO; 5];
        for _ in 0..n_db {
            fresh += 1;
            let org = format!("org-paired{fresh}");
            rt.block_on(async {
                let start = Instant::now();
                black_box(direct(db.pool()).await);
                t[0] += start.elapsed();
                t[1] += miss(db, find_many).await;
                let start = Instant::now();
                black_box(intercepted(db).await);
                t[2] += start.elapsed();
                let start = Instant::now();
                black_box(
                    sqlx::query_as::<_, Agent>(FIND_MANY)
                        .bind("org-none")
                        .fetch_all(db.pool())
                        .await
                        .expect("direct query"),
                );
                t[3] += start.elapsed();
                let start = Instant::now();
                let out = db
                    .call(find_many, &org, json!({ "organizationId": org }))
                    .await
                    .expect("call");
                t[4] += start.elapsed();
                assert!(!out.hit, "a key never cached");
            });
        }
        let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        ratios[0].push(r(t[1], t[0]));
        ratios[1].push(r(t[2], t[0]));
        ratios[2].push(r(t[4], t[3]));
    }
    let median_pct = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        100.0 * (v[v.len() / 2] - 1.0)
    };
    let paired = [
        median_pct(&mut ratios[0]),
        median_pct(&mut ratios[1]),
        median_pct(&mut ratios[2]),
    ];
    rt.block_on(db.engine().clear());
    let change = org1_change(db.dialect());
    let mut inval = Vec::new();
    let mut filled = 0;
    for n in [100, 10_000] {
        let n = if quick { n / 50 } else { n };
        rt.block_on(fill_unrelated(db, filled, n));
        filled = n;
        let t = median_of(rt, batches, n_hit, || {
            timed(async {
                black_box(db.invalidate(change.clone()).await);
            })
        });
        inval.push((n, t));
    }
    rt.block_on(db.engine().clear());
    let pct = |a: Duration, b: Duration| 100.0 * (a.as_secs_f64() / b.as_secs_f64() - 1.0);
    println!(
        "summary ({backend}, agents.findMany, medians): hit {hit_t:?}, direct {direct_t:?} → hit is {:.0}× faster (target ≥ 50×); \
         miss {miss_t:?} → {:+.1}% vs direct, interception only {intercepted_t:?} → {:+.1}% (target ≤ 5%); \
         miss on a never-cached key {miss_fresh_t:?} vs direct {direct_empty_t:?} → {:+.1}%; \
         invalidate with {} unrelated entries {:?}, with {} {:?} → ×{:.2} (target ≈ 1); \
         interleaved (median of per-batch ratios): miss {:+.1}%, interception only {:+.1}%, never-cached key {:+.1}% (target ≤ 5%)",
        direct_t.as_secs_f64() / hit_t.as_secs_f64(),
        pct(miss_t, direct_t),
        pct(intercepted_t, direct_t),
        pct(miss_fresh_t, direct_empty_t),
        inval[0].0,
        inval[0].1,
        inval[1].0,
        inval[1].1,
        inval[1].1.as_secs_f64() / inval[0].1.as_secs_f64(),
        paired[0],
        paired[1],
        paired[2],
    );
}

fn profile_loop(rt: &Runtime, db: &ReactiveDb<sqlx::Any>, case: &str, iters: u64) {
    let find_many = def("agents.findMany");
    rt.block_on(async {
        db.engine().clear().await;
        hit(db, find_many).await;
        for i in 0..iters {
            match case {
                "direct" => {
                    black_box(direct(db.pool()).await);
                }
                "intercepted" => {
                    black_box(intercepted(db).await);
                }
                "miss" => {
                    black_box(miss(db, find_many).await);
                }
                "fresh" => {
                    let org = format!("org-fresh{i}");
                    black_box(
                        db.call(find_many, &org, json!({ "organizationId": org }))
                            .await
                            .expect("call"),
                    );
                }
                "hit" => hit(db, find_many).await,
                other => panic!("unknown REACTIVE_BENCH_LOOP case `{other}`"),
            }
        }
    });
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let setup = rt.block_on(setup());
    // Profiling mode: `REACTIVE_BENCH_LOOP=<case>` runs one case `REACTIVE_BENCH_ITERS`
    // times and exits (no criterion, no summary), e.g. under `valgrind --tool=callgrind`
    // or `perf record`; compare a case's cost with `direct` over the same count.
    if let Ok(case) = std::env::var("REACTIVE_BENCH_LOOP") {
        let iters: u64 = std::env::var("REACTIVE_BENCH_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000);
        profile_loop(&rt, &setup.db, &case, iters);
        rt.block_on(setup.teardown());
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (criterion's test mode).
    let quick = !std::env::args().any(|a| a == "--bench");
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &rt, &setup.db, setup.backend);
    c.final_summary();
    summary(&rt, &setup.db, setup.backend, quick);
    rt.block_on(setup.teardown());
}
