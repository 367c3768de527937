//! What the observability costs on a call's hit and miss paths, through the router in
//! process (no sockets): the dev tools page absent, configured but off, and on; then
//! "absent" again with a metrics recorder installed (process-wide, so measured last).
//!
//! `cargo bench -p reactive-runtime --bench observe`; besides criterion's numbers it
//! prints each variant's time as a ratio of "absent" measured in the same run.

#[path = "../tests/realtime_support/mod.rs"]
mod realtime_support;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use reactive_runtime::router::{DevToolsConfig, RouterConfig};
use realtime_support::{TokenAuth, functions, memory_db};
use tokio::runtime::Runtime;
use tower::ServiceExt;

fn app(rt: &Runtime, devtools: Option<bool>) -> Router {
    rt.block_on(async {
        let mut config = RouterConfig::new(TokenAuth::default()).functions(functions());
        if let Some(on) = devtools {
            config = config.devtools(DevToolsConfig::new("/devtools", |_| true).enabled(on));
        }
        reactive_runtime::Reactive::builder()
            .database(memory_db().await)
            .http(config)
            .build()
            .await
            .expect("wire the router")
            .router()
    })
}

fn call(org: &str) -> Request<Body> {
    Request::post("/rpc/rt.items.byOrg")
        .header("authorization", format!("Bearer {org}:u"))
        .header("content-type", "application/json")
        .body(Body::from(format!("{{\"org\":\"{org}\"}}")))
        .unwrap()
}

async fn send(app: &Router, org: &str) {
    let res = app.clone().oneshot(call(org)).await.unwrap();
    assert_eq!(res.status(), 200);
    black_box(
        axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap(),
    );
}

/// Mean time of one hit (`miss = false`: the same key each time) or one miss (a new
/// key each time), over `n` calls.
fn mean(rt: &Runtime, app: &Router, miss: bool, n: u64, next: &AtomicU64) -> Duration {
    rt.block_on(async {
        send(app, "A").await;
        let start = Instant::now();
        for _ in 0..n {
            if miss {
                let org = format!("O{}", next.fetch_add(1, Ordering::Relaxed));
                send(app, &org).await;
            } else {
                send(app, "A").await;
            }
        }
        start.elapsed() / n as u32
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let variants = [("absent", None), ("off", Some(false)), ("on", Some(true))];
    let apps: Vec<(&str, Router)> = variants
        .iter()
        .map(|(name, devtools)| (*name, app(&rt, *devtools)))
        .collect();
    let next = AtomicU64::new(0);
    for (path, miss) in [("hit", false), ("miss", true)] {
        let mut group = c.benchmark_group(format!("rpc_{path}"));
        group
            .sample_size(30)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (name, app) in &apps {
            group.bench_function(*name, |b| {
                b.iter_custom(|n| mean(&rt, app, miss, n, &next) * n as u32)
            });
        }
        group.finish();
    }
    // Ratios in one run: rounds of every variant in turn, so drift hits each alike.
    let rounds = 10;
    let calls = |miss: bool| if miss { 300 } else { 3000 };
    let mut totals = [[Duration::ZERO; 3]; 2];
    for _ in 0..rounds {
        for (p, miss) in [false, true].into_iter().enumerate() {
            for (v, (_, app)) in apps.iter().enumerate() {
                totals[p][v] += mean(&rt, app, miss, calls(miss), &next);
            }
        }
    }
    // Then "absent" again with a metrics recorder installed (process-wide, so last).
    let _ = metrics::set_global_recorder(metrics_util::debugging::DebuggingRecorder::new());
    let mut recorded = [Duration::ZERO; 2];
    for _ in 0..rounds {
        for (p, miss) in [false, true].into_iter().enumerate() {
            recorded[p] += mean(&rt, &apps[0].1, miss, calls(miss), &next);
        }
    }
    for (p, path) in ["hit", "miss"].into_iter().enumerate() {
        let base = totals[p][0].as_secs_f64();
        println!(
            "{path}: absent {:.1} µs; off {:.3}x, on {:.3}x absent; absent with a metrics recorder {:.3}x",
            base / f64::from(rounds) * 1e6,
            totals[p][1].as_secs_f64() / base,
            totals[p][2].as_secs_f64() / base,
            recorded[p].as_secs_f64() / base,
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
