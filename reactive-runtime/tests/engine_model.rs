//! A seeded, randomized model test of the engine alone: concurrent readers and writers
//! over a simulated database; after a write's invalidation returned, no read that starts
//! later may return an older value. Exercises the race guard and coalescing under real
//! thread interleavings (the database-level model test lives with the db layer).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reactive_runtime::cache::memory::MemoryStore;
use reactive_runtime::cache::{CacheKey, CacheStore};
use reactive_runtime::engine::{
    ChangeSet, Conjunction, Engine, EngineConfig, KeyValue, ReadSet, Relations, RowChange,
};

const ORGS: i64 = 4;
const TASKS: u64 = 8;
const OPS: u64 = 400;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn org_reads(org: i64) -> ReadSet {
    ReadSet::empty().with(
        "agent",
        Conjunction::whole().with("organization_id", KeyValue::from_i64(org)),
    )
}

async fn jitter(rng: &mut Rng) {
    match rng.below(4) {
        0 => {}
        1 => tokio::task::yield_now().await,
        _ => tokio::time::sleep(Duration::from_micros(rng.below(300))).await,
    }
}

async fn run_model(store: Arc<dyn CacheStore>, seed: u64) {
    let engine = Engine::with_config(
        store,
        EngineConfig {
            relations: Relations::none(),
            ..EngineConfig::default()
        },
    );
    // The "database": org -> version (monotonic).
    let db: Arc<Mutex<HashMap<i64, u64>>> = Arc::default();
    // org -> highest version whose write (commit + invalidation) has returned.
    let completed: Arc<Mutex<HashMap<i64, u64>>> = Arc::default();
    let stale = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (engine, db, stale) = (engine.clone(), Arc::clone(&db), Arc::clone(&stale));
        let completed = Arc::clone(&completed);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for _ in 0..OPS {
                let org = rng.below(ORGS as u64) as i64;
                if rng.below(4) == 0 {
                    // A write: commit, then invalidate (as the db layer does).
                    let version = {
                        let mut db = db.lock().unwrap();
                        let v = db.entry(org).or_insert(0);
                        *v += 1;
                        *v
                    };
                    jitter(&mut rng).await;
                    engine
                        .apply(ChangeSet::empty().with_row(
                            "agent",
                            RowChange::whole().with("organization_id", KeyValue::from_i64(org)),
                        ))
                        .await;
                    // The write is complete: later reads must see at least `version`.
                    let mut done = completed.lock().unwrap();
                    let floor = done.entry(org).or_insert(0);
                    *floor = (*floor).max(version);
                } else {
                    // Every write completed before this read starts must be seen.
                    let floor = completed.lock().unwrap().get(&org).copied().unwrap_or(0);
                    let mut inner = Rng(rng.next());
                    let db2 = Arc::clone(&db);
                    let key =
                        CacheKey::new(Some("t"), "agents.findMany", format!("{{\"org\":{org}}}"));
                    let fetched = engine
                        .get_or_compute(key, org_reads(org), || async move {
                            jitter(&mut inner).await;
                            let version = db2.lock().unwrap().get(&org).copied().unwrap_or(0);
                            jitter(&mut inner).await;
                            Ok::<_, ()>((Bytes::from(version.to_string()), ReadSet::empty()))
                        })
                        .await
                        .unwrap();
                    let seen: u64 = std::str::from_utf8(&fetched.value)
                        .unwrap()
                        .parse()
                        .unwrap();
                    if seen < floor {
                        stale.fetch_add(1, Ordering::SeqCst);
                        eprintln!(
                            "stale read: org {org} saw {seen} < {floor} ({:?})",
                            fetched.source
                        );
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = engine.stats();
    eprintln!(
        "seed {seed}: {stats:?}, stale reads {}",
        stale.load(Ordering::SeqCst)
    );
    assert_eq!(
        stale.load(Ordering::SeqCst),
        0,
        "stale reads with seed {seed}"
    );
    assert!(stats.hits > 0, "the cache was used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_never_serves_stale_data() {
    for seed in [1, 2, 3] {
        run_model(Arc::new(MemoryStore::default()), seed).await;
    }
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_never_serves_stale_data() {
    use reactive_runtime::cache::redis::{RedisConfig, RedisStore};
    let url = match std::env::var("TEST_REDIS_URL") {
        Ok(url) => url,
        Err(_) if std::env::var_os("CI").is_some() => panic!("TEST_REDIS_URL must be set under CI"),
        Err(_) => return eprintln!("skipped: TEST_REDIS_URL not set"),
    };
    for seed in [1, 2] {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let prefix = format!("reactive-test:model:{nanos}:{}:", std::process::id());
        let store = RedisStore::new(RedisConfig::new(&url).prefix(prefix.clone())).unwrap();
        run_model(Arc::new(store), seed).await;
        // The store keeps `seq` and `t:*` forever by design: remove this test's keys.
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let names: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !names.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&names)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
}
