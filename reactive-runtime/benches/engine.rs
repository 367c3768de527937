//! Engine benchmarks: the latency of a cached hit, and the cost of an invalidation
//! with 1k vs 100k cached entries that cannot match (the index should make it flat).
//!
//! `cargo bench -p reactive-runtime --bench engine`; besides criterion's numbers it
//! prints the 100k/1k invalidation cost ratio (≈ 1 means independent of unrelated entries).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use reactive_runtime::cache::memory::{MemoryConfig, MemoryStore};
use reactive_runtime::cache::{CacheKey, CacheStore};
use reactive_runtime::engine::{
    ChangeSet, Conjunction, Engine, EngineConfig, KeyValue, ReadSet, Relations, RowChange,
};
use tokio::runtime::Runtime;

fn org_reads(org: i64) -> ReadSet {
    ReadSet::empty().with(
        "agent",
        Conjunction::whole().with("organization_id", KeyValue::from_i64(org)),
    )
}

fn org_change(org: i64) -> ChangeSet {
    ChangeSet::empty().with_row(
        "agent",
        RowChange::whole().with("organization_id", KeyValue::from_i64(org)),
    )
}

fn key(org: i64) -> CacheKey {
    CacheKey::new(
        Some(&format!("org{org}")),
        "agents.findMany",
        format!("{{\"organizationId\":{org}}}"),
    )
}

/// An engine whose store holds `unrelated` entries for organizations 1..=unrelated.
fn filled(rt: &Runtime, unrelated: i64) -> (Engine, Arc<dyn CacheStore>) {
    let store: Arc<dyn CacheStore> = Arc::new(MemoryStore::new(MemoryConfig {
        max_bytes: 1 << 30,
        ..MemoryConfig::default()
    }));
    let engine = Engine::with_config(
        Arc::clone(&store),
        EngineConfig {
            relations: Relations::none(),
            ..EngineConfig::default()
        },
    );
    rt.block_on(async {
        let value = Bytes::from(vec![b'x'; 256]);
        for org in 1..=unrelated {
            let ticket = store.begin().await.unwrap();
            store
                .put(&key(org), value.clone(), &org_reads(org), ticket)
                .await
                .unwrap();
        }
    });
    (engine, store)
}

/// Stores the one entry the change matches (org 0), so each invalidation removes one entry.
fn put_target(rt: &Runtime, store: &Arc<dyn CacheStore>) {
    rt.block_on(async {
        let ticket = store.begin().await.unwrap();
        store
            .put(
                &key(0),
                Bytes::from_static(b"target"),
                &org_reads(0),
                ticket,
            )
            .await
            .unwrap();
    });
}

fn hit(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (engine, _) = filled(&rt, 1_000);
    let value = Bytes::from(vec![b'x'; 1024]);
    rt.block_on(async {
        engine
            .get_or_compute(key(0), org_reads(0), || async {
                Ok::<_, ()>((value.clone(), ReadSet::empty()))
            })
            .await
            .unwrap();
    });
    c.bench_function("cached hit (1 KiB value)", |b| {
        b.to_async(&rt).iter(|| async {
            let f = engine
                .get_or_compute(key(0), org_reads(0), || async {
                    Ok::<_, ()>((Bytes::new(), ReadSet::empty()))
                })
                .await
                .unwrap();
            assert!(f.is_hit());
            black_box(f)
        })
    });
}

fn invalidation(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("invalidation (1 matching entry)");
    let mut manual = Vec::new();
    for unrelated in [1_000_i64, 100_000] {
        let (engine, store) = filled(&rt, unrelated);
        group.bench_function(format!("{unrelated} unrelated entries"), |b| {
            b.iter_batched(
                || put_target(&rt, &store),
                |()| {
                    let report = rt.block_on(engine.apply(org_change(0)));
                    assert_eq!(report.entries.len(), 1);
                    black_box(report)
                },
                BatchSize::PerIteration,
            )
        });
        // A direct measurement for the ratio (criterion does not compare two functions):
        // the median of many single invalidations, after a warm-up.
        let mut samples = Vec::new();
        for round in 0..3_000 {
            put_target(&rt, &store);
            let start = Instant::now();
            let report = rt.block_on(engine.apply(org_change(0)));
            let took = start.elapsed();
            assert_eq!(report.entries.len(), 1);
            if round >= 500 {
                samples.push(took);
            }
        }
        samples.sort();
        manual.push((unrelated, samples[samples.len() / 2]));
    }
    group.finish();
    let (small, large) = (manual[0].1.as_secs_f64(), manual[1].1.as_secs_f64());
    println!(
        "invalidation (median): {:?} with {} unrelated entries, {:?} with {}; ratio {:.2} (≈1: cost independent of unrelated entries)",
        manual[0].1,
        manual[0].0,
        manual[1].1,
        manual[1].0,
        large / small
    );
}

criterion_group!(benches, hit, invalidation);
criterion_main!(benches);
