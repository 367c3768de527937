//! The engine over both cache stores: the shared store suite, the stale-set race,
//! coalescing, precision, memory cap, Redis down.
//!
//! Redis tests use TEST_REDIS_URL (skipped when unset, failing under CI) and a unique
//! key prefix per test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reactive_runtime::cache::memory::{MemoryConfig, MemoryStore};
use reactive_runtime::cache::{CacheKey, CacheStore, ListQuery, PutOutcome};
use reactive_runtime::engine::{
    ChangeSet, Conjunction, Engine, EngineConfig, KeyValue, ReadSet, Relations, RowChange, Source,
};
use reactive_runtime::types::ChangeOrigin;
use tokio::sync::{Barrier, oneshot};

type Res<T> = Result<T, std::convert::Infallible>;

fn v(n: i64) -> KeyValue {
    KeyValue::from_i64(n)
}
fn org_reads(org: i64) -> ReadSet {
    ReadSet::empty().with(
        "agent",
        Conjunction::whole().with("organization_id", v(org)),
    )
}
fn org_change(org: i64) -> ChangeSet {
    ChangeSet::empty().with_row("agent", RowChange::whole().with("organization_id", v(org)))
}
fn key(tenant: &str, input: &str) -> CacheKey {
    CacheKey::new(Some(tenant), "agents.findMany", input)
}
fn engine(store: Arc<dyn CacheStore>) -> Engine {
    Engine::with_config(
        store,
        EngineConfig {
            relations: Relations::none(),
            ..EngineConfig::default()
        },
    )
}
fn memory() -> Arc<dyn CacheStore> {
    Arc::new(MemoryStore::new(MemoryConfig {
        max_entry_bytes: 1024 * 1024,
        ..MemoryConfig::default()
    }))
}

#[cfg(feature = "redis")]
fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!("TEST_REDIS_URL must be set under CI"),
        Err(_) => {
            eprintln!("skipped: TEST_REDIS_URL not set");
            None
        }
    }
}

#[cfg(feature = "redis")]
fn redis_store(test: &str) -> Option<(Arc<dyn CacheStore>, Cleanup)> {
    let url = redis_url()?;
    let prefix = unique_prefix(test);
    let store = Arc::new(redis_with_prefix(&url, &prefix));
    Some((store, Cleanup { url, prefix }))
}

/// Deletes a test's keys (the store keeps `seq` and `t:*` forever by design).
#[cfg(feature = "redis")]
struct Cleanup {
    url: String,
    prefix: String,
}

#[cfg(feature = "redis")]
impl Cleanup {
    async fn run(self) {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut cursor: u64 = 0;
        loop {
            let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
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
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

#[cfg(feature = "redis")]
fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("reactive-test:{test}:{nanos}:{}:", std::process::id())
}

#[cfg(feature = "redis")]
fn redis_with_prefix(url: &str, prefix: &str) -> reactive_runtime::cache::redis::RedisStore {
    use reactive_runtime::cache::redis::{RedisConfig, RedisStore};
    let mut config = RedisConfig::new(url).prefix(prefix);
    config.max_entry_bytes = 1024 * 1024;
    RedisStore::new(config).expect("valid url")
}

// ---------------------------------------------------------------- the shared store suite

async fn store_suite(store: Arc<dyn CacheStore>) {
    let k = |i: &str| key("t1", i);
    assert_eq!(store.get(&k("1")).await.unwrap(), None);
    let put = |key: CacheKey, reads: ReadSet, val: &'static str| {
        let store = Arc::clone(&store);
        async move {
            let ticket = store.begin().await.unwrap();
            store
                .put(&key, Bytes::from_static(val.as_bytes()), &reads, ticket)
                .await
                .unwrap()
        }
    };
    assert_eq!(put(k("1"), org_reads(1), "one").await, PutOutcome::Stored);
    assert_eq!(
        store.get(&k("1")).await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    put(k("2"), org_reads(2), "two").await;
    put(k("whole"), ReadSet::tables(["agent"]), "whole").await;
    put(
        k("tool"),
        ReadSet::empty().with("tool", Conjunction::whole().with("id", v(1))),
        "tool",
    )
    .await;
    put(k("all"), ReadSet::everything(), "all").await;
    put(k("const"), ReadSet::empty(), "const").await;
    // Same key, new value.
    put(k("2"), org_reads(2), "two'").await;
    assert_eq!(
        store.get(&k("2")).await.unwrap().as_deref(),
        Some(&b"two'"[..])
    );

    let mut removed = store
        .invalidate(&org_change(1), ChangeOrigin::Local)
        .await
        .unwrap();
    removed.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<&str> = removed.iter().map(|e| e.key.input.as_str()).collect();
    assert_eq!(keys, ["1", "all", "whole"]);
    let one = &removed[0];
    assert_eq!(one.key.tenant.as_deref(), Some("t1"));
    assert_eq!(one.reasons[0].table, "agent");
    assert_eq!(one.reasons[0].column.as_deref(), Some("organization_id"));
    assert_eq!(one.reasons[0].value, Some(v(1)));
    for gone in ["1", "all", "whole"] {
        assert_eq!(
            store.get(&k(gone)).await.unwrap(),
            None,
            "{gone} must be invalidated"
        );
    }
    for kept in ["2", "tool", "const"] {
        assert!(
            store.get(&k(kept)).await.unwrap().is_some(),
            "{kept} must survive"
        );
    }

    // An unknown column in the change matches every keyed entry of the table.
    let removed = store
        .invalidate(
            &ChangeSet::empty().with_row("agent", RowChange::whole().with("id", v(3))),
            ChangeOrigin::Local,
        )
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(store.get(&k("2")).await.unwrap(), None);

    // Everything: every entry that reads something.
    put(k("1"), org_reads(1), "one").await;
    let removed = store
        .invalidate(&ChangeSet::everything(), ChangeOrigin::Local)
        .await
        .unwrap();
    let mut keys: Vec<&str> = removed.iter().map(|e| e.key.input.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["1", "tool"]);
    assert!(
        store.get(&k("const")).await.unwrap().is_some(),
        "reads nothing: unaffected"
    );

    // remove, clear.
    put(k("1"), org_reads(1), "one").await;
    put(k("2"), org_reads(2), "two").await;
    store.remove(&[k("1")]).await.unwrap();
    assert_eq!(store.get(&k("1")).await.unwrap(), None);
    assert!(store.get(&k("2")).await.unwrap().is_some());
    store.clear().await.unwrap();
    assert_eq!(store.get(&k("2")).await.unwrap(), None);
    assert_eq!(store.get(&k("const")).await.unwrap(), None);
    // After a clear the store works as before.
    put(k("1"), org_reads(1), "one").await;
    assert!(store.get(&k("1")).await.unwrap().is_some());
    assert_eq!(
        store
            .invalidate(&org_change(1), ChangeOrigin::Local)
            .await
            .unwrap()
            .len(),
        1
    );

    // Entries over the per-entry limit are not stored.
    let ticket = store.begin().await.unwrap();
    let big = Bytes::from(vec![b'x'; 2 * 1024 * 1024]);
    assert_eq!(
        store
            .put(&k("big"), big, &org_reads(1), ticket)
            .await
            .unwrap(),
        PutOutcome::TooLarge
    );
    assert_eq!(store.get(&k("big")).await.unwrap(), None);

    // Keys with different tenants are different entries.
    put(key("a", "x"), org_reads(1), "a").await;
    put(key("b", "x"), org_reads(1), "b").await;
    assert_eq!(
        store.get(&key("a", "x")).await.unwrap().as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(
        store.get(&key("b", "x")).await.unwrap().as_deref(),
        Some(&b"b"[..])
    );
}

#[tokio::test]
async fn memory_store_passes_the_suite() {
    store_suite(memory()).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_passes_the_suite() {
    let Some((store, cleanup)) = redis_store("suite") else {
        return;
    };
    store_suite(store).await;
    cleanup.run().await;
}

// ---------------------------------------------------------------- listing (dev tools page)

/// `list`: one tenant's values (a tenant name with glob characters matches itself only),
/// bounded in entries and bytes with the rest counted, never a routing record alone
/// (ghost) or an invalidated value; hits where the store counts them.
async fn list_suite(store: Arc<dyn CacheStore>, counts_hits: bool) {
    let put = |key: CacheKey, reads: ReadSet, val: &'static str| {
        let store = Arc::clone(&store);
        async move {
            let ticket = store.begin().await.unwrap();
            store
                .put(&key, Bytes::from_static(val.as_bytes()), &reads, ticket)
                .await
                .unwrap()
        }
    };
    for i in 1..=3 {
        put(key("t1", &i.to_string()), org_reads(i), "value").await;
    }
    put(key("t10", "1"), org_reads(1), "x").await;
    put(key("t*", "1"), org_reads(1), "x").await;
    store
        .put_ghost(&key("t1", "ghost"), &org_reads(9))
        .await
        .unwrap();
    for _ in 0..2 {
        assert!(store.get(&key("t1", "2")).await.unwrap().is_some());
    }
    let query = |tenant: &str, max_entries: usize, max_bytes: usize| ListQuery {
        tenant: Some(tenant.to_owned()),
        max_entries,
        max_bytes,
    };
    let page = store
        .list(&query("t1", 100, 1 << 20))
        .await
        .unwrap()
        .expect("the store lists");
    let inputs: Vec<&str> = page.entries.iter().map(|e| e.key.input.as_str()).collect();
    assert_eq!(inputs, ["1", "2", "3"], "{page:?}");
    assert_eq!((page.more, page.more_exact), (0, true));
    let two = &page.entries[1];
    assert_eq!(two.key, key("t1", "2"));
    assert_eq!(two.value_bytes, 5);
    assert!(two.age_ms < 60_000, "{two:?}");
    assert_eq!(two.reads.as_ref(), Some(&org_reads(2)));
    assert_eq!(two.hits, counts_hits.then_some(2));

    let star = store
        .list(&query("t*", 100, 1 << 20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(star.entries.len(), 1, "{star:?}");
    assert_eq!(star.entries[0].key, key("t*", "1"));

    // Bounded in entries: the rest is counted.
    let page = store.list(&query("t1", 2, 1 << 20)).await.unwrap().unwrap();
    assert_eq!(page.entries.len(), 2);
    assert_eq!(page.more, 1);
    // Bounded in bytes: the first key fits, its read set does not, the rest is counted.
    let page = store.list(&query("t1", 100, 150)).await.unwrap().unwrap();
    assert_eq!(page.entries.len(), 1, "{page:?}");
    assert_eq!(page.entries[0].reads, None);
    assert!(page.entries[0].reads_bytes > 0);
    assert_eq!(page.more, 2);

    // Every tenant's.
    let all = ListQuery {
        tenant: None,
        max_entries: 100,
        max_bytes: 1 << 20,
    };
    assert_eq!(store.list(&all).await.unwrap().unwrap().entries.len(), 5);

    // An invalidated value leaves the listing.
    store
        .invalidate(&org_change(2), ChangeOrigin::Local)
        .await
        .unwrap();
    let page = store
        .list(&query("t1", 100, 1 << 20))
        .await
        .unwrap()
        .unwrap();
    let inputs: Vec<&str> = page.entries.iter().map(|e| e.key.input.as_str()).collect();
    assert_eq!(inputs, ["1", "3"]);
}

#[tokio::test]
async fn memory_store_lists_a_bounded_page_per_tenant() {
    list_suite(memory(), true).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_lists_a_bounded_page_per_tenant() {
    let Some((store, cleanup)) = redis_store("list") else {
        return;
    };
    list_suite(store, false).await;
    cleanup.run().await;
}

// ---------------------------------------------------------------- engine behaviour over any store

/// The stale-set race, forced: a read runs its query (old data) → a write commits and
/// its invalidation runs → the read stores its old result → the next get must miss.
async fn stale_set_race(store: Arc<dyn CacheStore>) {
    let engine = engine(store);
    let k = key("t", "race");
    let (read_done_tx, read_done_rx) = oneshot::channel::<()>();
    let (write_done_tx, write_done_rx) = oneshot::channel::<()>();
    let reader = {
        let engine = engine.clone();
        let k = k.clone();
        tokio::spawn(async move {
            engine
                .get_or_compute(k, org_reads(1), || async move {
                    let old = Bytes::from_static(b"old"); // the database answered with the old rows
                    read_done_tx.send(()).unwrap();
                    write_done_rx.await.unwrap(); // the write and its invalidation happen now
                    Res::Ok((old, ReadSet::empty()))
                })
                .await
                .unwrap()
        })
    };
    read_done_rx.await.unwrap();
    let report = engine.apply(org_change(1)).await; // after the write committed
    assert!(report.entries.is_empty(), "nothing was cached yet");
    write_done_tx.send(()).unwrap();
    let first = reader.await.unwrap();
    assert_eq!(
        (first.value.as_ref(), first.source),
        (&b"old"[..], Source::Computed),
        "the caller still gets its result"
    );
    assert_eq!(engine.stats().stores_dropped, 1, "but it is not stored");
    let next = engine
        .get_or_compute(k, org_reads(1), || async {
            Res::Ok((Bytes::from_static(b"new"), ReadSet::empty()))
        })
        .await
        .unwrap();
    assert_eq!(
        (next.value.as_ref(), next.source),
        (&b"new"[..], Source::Computed),
        "the next get must miss"
    );

    // A concurrent change that cannot affect the read does not prevent the store.
    let k2 = key("t", "race-unrelated");
    let (read_done_tx, read_done_rx) = oneshot::channel::<()>();
    let (write_done_tx, write_done_rx) = oneshot::channel::<()>();
    let reader = {
        let engine = engine.clone();
        let k2 = k2.clone();
        tokio::spawn(async move {
            engine
                .get_or_compute(k2, org_reads(1), || async move {
                    read_done_tx.send(()).unwrap();
                    write_done_rx.await.unwrap();
                    Res::Ok((Bytes::from_static(b"v"), ReadSet::empty()))
                })
                .await
                .unwrap()
        })
    };
    read_done_rx.await.unwrap();
    engine
        .apply(ChangeSet::empty().with_row("tool", RowChange::whole()))
        .await;
    write_done_tx.send(()).unwrap();
    reader.await.unwrap();
    let again = engine
        .get_or_compute(k2, org_reads(1), || async {
            Res::Ok((Bytes::from_static(b"x"), ReadSet::empty()))
        })
        .await
        .unwrap();
    assert_eq!(again.source, Source::Hit);
}

/// Reads discovered while computing (extra) count for the race guard too.
async fn stale_set_race_on_discovered_reads(store: Arc<dyn CacheStore>) {
    let engine = engine(store);
    let k = key("t", "race-extra");
    let (read_done_tx, read_done_rx) = oneshot::channel::<()>();
    let (write_done_tx, write_done_rx) = oneshot::channel::<()>();
    let reader = {
        let engine = engine.clone();
        let k = k.clone();
        tokio::spawn(async move {
            engine
                .get_or_compute(k, ReadSet::empty(), || async move {
                    read_done_tx.send(()).unwrap();
                    write_done_rx.await.unwrap();
                    Res::Ok((Bytes::from_static(b"old"), ReadSet::tables(["memory"])))
                })
                .await
                .unwrap()
        })
    };
    read_done_rx.await.unwrap();
    engine.apply(ChangeSet::tables(["memory"])).await;
    write_done_tx.send(()).unwrap();
    reader.await.unwrap();
    let next = engine
        .get_or_compute(k, ReadSet::empty(), || async {
            Res::Ok((Bytes::from_static(b"new"), ReadSet::empty()))
        })
        .await
        .unwrap();
    assert_eq!(next.source, Source::Computed);
}

/// N identical concurrent misses run the computation once.
async fn coalescing(store: Arc<dyn CacheStore>) {
    const N: usize = 16;
    let engine = engine(store);
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(N));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (engine, runs, barrier, mut release_rx) = (
            engine.clone(),
            Arc::clone(&runs),
            Arc::clone(&barrier),
            release_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            engine
                .get_or_compute(key("t", "popular"), org_reads(1), || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    release_rx.wait_for(|r| *r).await.unwrap();
                    Res::Ok((Bytes::from_static(b"v"), ReadSet::empty()))
                })
                .await
                .unwrap()
        }));
    }
    // Wait until every caller is either the leader or waiting on it.
    while engine.stats().coalesced_waits < (N - 1) as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    release_tx.send(true).unwrap();
    let mut sources = Vec::new();
    for t in tasks {
        let f = t.await.unwrap();
        assert_eq!(f.value.as_ref(), b"v");
        sources.push(f.source);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the computation ran once");
    assert_eq!(
        sources.iter().filter(|s| **s == Source::Computed).count(),
        1
    );
    assert_eq!(
        sources.iter().filter(|s| **s == Source::Coalesced).count(),
        N - 1
    );
    assert_eq!(engine.stats().misses, 1);
    assert_eq!(reactive_runtime::testing::in_flight(&engine), 0);
}

/// A caller that arrives after a change must not receive the result of a computation
/// that started before it; a failed leader does not leave its waiters hanging.
async fn coalescing_respects_changes_and_failures(store: Arc<dyn CacheStore>) {
    let engine = engine(store);
    let k = key("t", "late");
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let leader = {
        let (engine, k) = (engine.clone(), k.clone());
        tokio::spawn(async move {
            engine
                .get_or_compute(k, org_reads(1), || async move {
                    started_tx.send(()).unwrap();
                    release_rx.await.unwrap();
                    Res::Ok((Bytes::from_static(b"old"), ReadSet::empty()))
                })
                .await
                .unwrap()
        })
    };
    started_rx.await.unwrap();
    engine.apply(org_change(1)).await; // a write completed
    let late = {
        let (engine, k) = (engine.clone(), k.clone());
        tokio::spawn(async move {
            engine
                .get_or_compute(k, org_reads(1), || async {
                    Res::Ok((Bytes::from_static(b"new"), ReadSet::empty()))
                })
                .await
                .unwrap()
        })
    };
    while engine.stats().coalesced_waits < 1 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    release_tx.send(()).unwrap();
    assert_eq!(leader.await.unwrap().value.as_ref(), b"old");
    let late = late.await.unwrap();
    assert_eq!(
        (late.value.as_ref(), late.source),
        (&b"new"[..], Source::Computed),
        "the late caller recomputed"
    );

    // Leader fails: waiters retry (one of them leads) and succeed.
    let k = key("t", "failing");
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let failing = {
        let (engine, k) = (engine.clone(), k.clone());
        tokio::spawn(async move {
            engine
                .get_or_compute(k, org_reads(1), || async move {
                    started_tx.send(()).unwrap();
                    release_rx.await.unwrap();
                    Err::<(Bytes, ReadSet), &str>("boom")
                })
                .await
        })
    };
    started_rx.await.unwrap();
    let waits_before = engine.stats().coalesced_waits;
    let waiter = {
        let (engine, k) = (engine.clone(), k.clone());
        tokio::spawn(async move {
            engine
                .get_or_compute(k, org_reads(1), || async {
                    Res::Ok((Bytes::from_static(b"ok"), ReadSet::empty()))
                })
                .await
                .unwrap()
        })
    };
    while engine.stats().coalesced_waits == waits_before {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    release_tx.send(()).unwrap();
    assert_eq!(failing.await.unwrap().unwrap_err(), "boom");
    assert_eq!(waiter.await.unwrap().value.as_ref(), b"ok");
    assert_eq!(reactive_runtime::testing::in_flight(&engine), 0);
}

/// A change for organization A invalidates no entry whose key names organization B,
/// and reports why it invalidated what it did.
async fn precision(store: Arc<dyn CacheStore>) {
    let engine = engine(store);
    for org in 1..=20 {
        for page in 0..3 {
            let k = key(
                &format!("org{org}"),
                &format!("{{\"organizationId\":{org},\"page\":{page}}}"),
            );
            let f = engine
                .get_or_compute(k, org_reads(org), || async {
                    Res::Ok((Bytes::from_static(b"v"), ReadSet::empty()))
                })
                .await
                .unwrap();
            assert_eq!(f.source, Source::Computed);
        }
    }
    let report = engine.apply(org_change(7)).await;
    assert_eq!(report.entries.len(), 3);
    assert!(
        report
            .entries
            .iter()
            .all(|e| e.key.tenant.as_deref() == Some("org7"))
    );
    assert_eq!(report.tables, ["agent"]);
    assert!(report.sequence > 0);
    assert_eq!(report.entries[0].reasons[0].value, Some(v(7)));
    assert_eq!(engine.stats().entries_invalidated, 3);
    // Everything else is still cached.
    for org in [1, 6, 8, 20] {
        let k = key(
            &format!("org{org}"),
            &format!("{{\"organizationId\":{org},\"page\":0}}"),
        );
        let f = engine
            .get_or_compute(k, org_reads(org), || async {
                Res::Ok((Bytes::from_static(b"x"), ReadSet::empty()))
            })
            .await
            .unwrap();
        assert_eq!(f.source, Source::Hit, "org {org} untouched");
    }
    // A move from 7 to 8 (old and new known) invalidates 8's entries too.
    let moved = ChangeSet::empty().with_row(
        "agent",
        RowChange::whole().with_values("organization_id", [v(7), v(8)]),
    );
    let report = engine.apply(moved).await;
    assert_eq!(
        report.entries.len(),
        3,
        "org 8's three pages (org 7's are already gone)"
    );
    assert!(
        report
            .entries
            .iter()
            .all(|e| e.key.tenant.as_deref() == Some("org8"))
    );
}

async fn relations_in_apply(store: Arc<dyn CacheStore>) {
    use reactive_runtime::engine::RelationEdge;
    let relations =
        Relations::from_edges([RelationEdge::new("agent", "message", Some("from_agent_id"))]);
    let engine = Engine::with_config(
        store,
        EngineConfig {
            relations,
            ..EngineConfig::default()
        },
    );
    let msgs = |agent: i64| {
        ReadSet::empty().with(
            "message",
            Conjunction::whole().with("from_agent_id", v(agent)),
        )
    };
    for agent in [1, 2] {
        engine
            .get_or_compute(key("t", &format!("m{agent}")), msgs(agent), || async {
                Res::Ok((Bytes::from_static(b"v"), ReadSet::empty()))
            })
            .await
            .unwrap();
    }
    let report = engine
        .apply(ChangeSet::empty().with_row("agent", RowChange::whole().with("id", v(2))))
        .await;
    assert_eq!(report.entries.len(), 1);
    assert_eq!(report.entries[0].key.input, "m2");
    let reason = &report.entries[0].reasons[0];
    assert_eq!(reason.table, "message");
    assert_eq!(
        reason.relation.as_ref().map(|e| e.to_string()).as_deref(),
        Some("agent.id -> message.from_agent_id")
    );
    assert_eq!(report.tables, ["agent", "message"]);
}

/// The race guard refuses a value computed while a conflicting write was applied: no
/// entry is stored, so that write's event was not routed to the key. A ghost must be
/// left, or the next write to those rows reaches nobody holding the value either.
async fn refused_value_leaves_a_ghost(store: Arc<dyn CacheStore>) {
    let engine = engine(store);
    let k = key("b", "refused");
    let (read_done_tx, read_done_rx) = oneshot::channel::<()>();
    let (write_done_tx, write_done_rx) = oneshot::channel::<()>();
    let reader = {
        let (engine, k) = (engine.clone(), k.clone());
        tokio::spawn(async move {
            engine
                .get_or_compute(k, org_reads(1), || async move {
                    read_done_tx.send(()).unwrap();
                    write_done_rx.await.unwrap();
                    Res::Ok((Bytes::from_static(b"old"), ReadSet::empty()))
                })
                .await
                .unwrap()
        })
    };
    read_done_rx.await.unwrap(); // paused after its query
    let report = engine.apply(org_change(1)).await; // a write without a tenant
    assert!(report.entries.is_empty(), "nothing was cached yet");
    write_done_tx.send(()).unwrap();
    let first = reader.await.unwrap();
    assert!(first.refused, "the caller is told the value may be stale");
    assert_eq!(engine.stats().ghosts_left, 1);
    // The next write to those rows finds the key.
    let report = engine.apply(org_change(1)).await;
    let keys: Vec<_> = report.entries.iter().map(|e| e.key.clone()).collect();
    assert_eq!(
        keys,
        [k],
        "the refused value's tenant hears of later writes"
    );
}

/// A waiter that joined a computation the race guard then refuses must not take its
/// value: it may predate the write (which the waiter itself did not have to observe,
/// having started before it), and no event was routed to the key for that write.
async fn waiters_of_a_refused_computation_compute_their_own(store: Arc<dyn CacheStore>) {
    let engine = engine(store);
    let k = key("b", "refused-waiter");
    let (read_done_tx, read_done_rx) = oneshot::channel::<()>();
    let (write_done_tx, write_done_rx) = oneshot::channel::<()>();
    let leader = tokio::spawn({
        let (engine, k) = (engine.clone(), k.clone());
        async move {
            engine
                .get_or_compute(k, org_reads(1), || async move {
                    read_done_tx.send(()).unwrap();
                    write_done_rx.await.unwrap();
                    Res::Ok((Bytes::from_static(b"old"), ReadSet::empty()))
                })
                .await
                .unwrap()
        }
    });
    read_done_rx.await.unwrap();
    let waiter = tokio::spawn({
        let (engine, k) = (engine.clone(), k.clone());
        async move {
            engine
                .get_or_compute(k, org_reads(1), || async {
                    Res::Ok((Bytes::from_static(b"new"), ReadSet::empty()))
                })
                .await
                .unwrap()
        }
    });
    // Pause point: the waiter has joined the leader's computation.
    while engine.stats().coalesced_waits == 0 {
        tokio::task::yield_now().await;
    }
    engine.apply(org_change(1)).await;
    write_done_tx.send(()).unwrap();
    assert!(leader.await.unwrap().refused);
    let w = waiter.await.unwrap();
    assert_eq!(
        (w.value.as_ref(), w.source),
        (&b"new"[..], Source::Computed),
        "the waiter computed its own value"
    );
}

/// A waiter answers with the watermark of the computation it joined, not its own: a
/// change another instance made after the leader ran may be newer than the leader's
/// watermark while this engine's ring has not received it yet.
async fn waiters_carry_the_leaders_watermark(store: Arc<dyn CacheStore>) {
    let engine = engine(store);
    let k = key("b", "watermark");
    let (read_done_tx, read_done_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let leader = tokio::spawn({
        let (engine, k) = (engine.clone(), k.clone());
        async move {
            engine
                .get_or_compute_at(k, 10, org_reads(1), || async move {
                    read_done_tx.send(()).unwrap();
                    release_rx.await.unwrap();
                    Res::Ok((Bytes::from_static(b"v"), ReadSet::empty()))
                })
                .await
                .unwrap()
        }
    });
    read_done_rx.await.unwrap();
    let waiter = tokio::spawn({
        let (engine, k) = (engine.clone(), k.clone());
        async move {
            engine
                .get_or_compute_at(k, 11, org_reads(1), || async {
                    Res::Ok((Bytes::from_static(b"w"), ReadSet::empty()))
                })
                .await
                .unwrap()
        }
    });
    // Pause point: the waiter has joined the leader's computation.
    while engine.stats().coalesced_waits == 0 {
        tokio::task::yield_now().await;
    }
    release_tx.send(()).unwrap();
    let (l, w) = (leader.await.unwrap(), waiter.await.unwrap());
    assert_eq!((l.source, l.watermark), (Source::Computed, 10));
    assert_eq!((w.source, w.watermark), (Source::Coalesced, 10));
    let hit = engine
        .get_or_compute_at(&k, 12, org_reads(1), || async {
            Res::Ok((Bytes::from_static(b"x"), ReadSet::empty()))
        })
        .await
        .unwrap();
    assert_eq!((hit.source, hit.watermark), (Source::Hit, 12));
}

/// A value too large to store is still handed out: its routing record must stay.
async fn too_large_value_leaves_a_ghost(store: Arc<dyn CacheStore>) {
    let engine = engine(store);
    let k = key("b", "large");
    let f = engine
        .get_or_compute(&k, org_reads(1), || async {
            Res::Ok((Bytes::from(vec![b'x'; 2 * 1024 * 1024]), ReadSet::empty()))
        })
        .await
        .unwrap();
    assert!(!f.refused, "too large is not stale");
    let report = engine.apply(org_change(1)).await;
    assert_eq!(report.entries.len(), 1);
    assert_eq!(report.entries[0].key, k);
}

macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        mod memory_engine {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(memory()).await; })*
        }
        #[cfg(feature = "redis")]
        mod redis_engine {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, cleanup)) = redis_store(stringify!($name)) else { return };
                super::$name(store).await;
                cleanup.run().await;
            })*
        }
    };
}

engine_tests!(
    refused_value_leaves_a_ghost,
    waiters_carry_the_leaders_watermark,
    waiters_of_a_refused_computation_compute_their_own,
    too_large_value_leaves_a_ghost,
    stale_set_race,
    stale_set_race_on_discovered_reads,
    coalescing,
    coalescing_respects_changes_and_failures,
    precision,
    relations_in_apply,
);

// ---------------------------------------------------------------- memory store specifics

#[tokio::test]
async fn memory_store_stays_under_its_byte_cap_and_its_index_follows() {
    let store = MemoryStore::new(MemoryConfig {
        max_bytes: 100 * 1024,
        max_entry_bytes: 50 * 1024,
        ttl: Duration::from_secs(60),
        ..MemoryConfig::default()
    });
    for i in 0..100 {
        let ticket = store.begin().await.unwrap();
        let value = Bytes::from(vec![b'x'; 10 * 1024]);
        store
            .put(&key("t", &i.to_string()), value, &org_reads(i), ticket)
            .await
            .unwrap();
    }
    store.run_pending_tasks().await;
    assert!(
        store.weighted_size() <= 100 * 1024,
        "weighted size {}",
        store.weighted_size()
    );
    assert!(
        store.entry_count() < 100 && store.entry_count() > 0,
        "entries {}",
        store.entry_count()
    );
    assert_eq!(
        store.indexed_count() as u64,
        store.entry_count(),
        "evicted entries leave the index of cached entries"
    );
    assert_eq!(
        store.ghost_count() as u64 + store.entry_count(),
        100,
        "and stay as ghosts"
    );
    store.clear().await.unwrap();
    store.run_pending_tasks().await;
    assert_eq!(store.indexed_count(), 0, "cleared entries leave the index");
}

#[tokio::test]
async fn memory_store_expires_entries() {
    let store = MemoryStore::new(MemoryConfig {
        ttl: Duration::from_millis(50),
        ..MemoryConfig::default()
    });
    let ticket = store.begin().await.unwrap();
    store
        .put(
            &key("t", "1"),
            Bytes::from_static(b"v"),
            &org_reads(1),
            ticket,
        )
        .await
        .unwrap();
    assert!(store.get(&key("t", "1")).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(store.get(&key("t", "1")).await.unwrap(), None);
    store.run_pending_tasks().await;
    assert_eq!(store.indexed_count(), 0);
    assert_eq!(store.ghost_count(), 1, "its routing record stays");
}

/// Ghosts over any store: a value that left the store on its own (expiry) keeps its
/// routing record, which an invalidation reports like an entry, once.
async fn ghost_suite(store: Arc<dyn CacheStore>, expire: impl AsyncFnOnce()) {
    let ticket = store.begin().await.unwrap();
    let put = store
        .put(
            &key("b", "1"),
            Bytes::from_static(b"v"),
            &org_reads(1),
            ticket,
        )
        .await
        .unwrap();
    assert_eq!(put, PutOutcome::Stored);
    let ticket = store.begin().await.unwrap();
    store
        .put(
            &key("b", "2"),
            Bytes::from_static(b"v"),
            &org_reads(2),
            ticket,
        )
        .await
        .unwrap();
    expire().await;
    assert_eq!(store.get(&key("b", "1")).await.unwrap(), None, "expired");
    let found = store
        .invalidate(&org_change(1), ChangeOrigin::Local)
        .await
        .unwrap();
    let keys: Vec<_> = found.iter().map(|e| e.key.clone()).collect();
    assert_eq!(keys, [key("b", "1")], "the ghost is reported, and only it");
    assert_eq!(found[0].reasons[0].value, Some(v(1)));
    assert!(
        store
            .invalidate(&org_change(1), ChangeOrigin::Local)
            .await
            .unwrap()
            .is_empty(),
        "reported once: the invalidation removed it"
    );
    // A ghost never serves a value; a new value of its key is stored as usual.
    let ticket = store.begin().await.unwrap();
    store
        .put(
            &key("b", "2"),
            Bytes::from_static(b"w"),
            &org_reads(2),
            ticket,
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&key("b", "2")).await.unwrap().as_deref(),
        Some(&b"w"[..])
    );
    let found = store
        .invalidate(&org_change(2), ChangeOrigin::Local)
        .await
        .unwrap();
    assert!(
        found.iter().all(|e| e.key == key("b", "2")) && !found.is_empty(),
        "{found:?}"
    );
    assert_eq!(store.get(&key("b", "2")).await.unwrap(), None);

    // `remove` forgets a key, ghost included.
    store
        .put_ghost(&key("b", "4"), &org_reads(4))
        .await
        .unwrap();
    store.remove(&[key("b", "4")]).await.unwrap();
    assert!(
        store
            .invalidate(&org_change(4), ChangeOrigin::Local)
            .await
            .unwrap()
            .is_empty()
    );

    // A ghost left for a value that was never stored routes too.
    store
        .put_ghost(&key("b", "3"), &org_reads(3))
        .await
        .unwrap();
    assert_eq!(store.get(&key("b", "3")).await.unwrap(), None);
    let found = store
        .invalidate(&org_change(3), ChangeOrigin::Local)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, key("b", "3"));
}

#[tokio::test]
async fn memory_store_keeps_ghosts_of_expired_entries() {
    let store = Arc::new(MemoryStore::new(MemoryConfig {
        ttl: Duration::from_millis(50),
        ..MemoryConfig::default()
    }));
    let s = Arc::clone(&store);
    ghost_suite(store, async move || {
        tokio::time::sleep(Duration::from_millis(120)).await;
        s.run_pending_tasks().await;
        assert_eq!(s.ghost_count(), 2);
    })
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_keeps_ghosts_of_expired_entries() {
    use reactive_runtime::cache::redis::{RedisConfig, RedisStore};
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("ghosts");
    let store = Arc::new(
        RedisStore::new(
            RedisConfig::new(&url)
                .prefix(&prefix)
                .ttl(Duration::from_millis(50)),
        )
        .unwrap(),
    );
    ghost_suite(store, async || {
        tokio::time::sleep(Duration::from_millis(120)).await;
    })
    .await;
    Cleanup { url, prefix }.run().await;
}

/// A ghost routes for its retention period, not longer.
async fn ghost_retention_suite(store: Arc<dyn CacheStore>, expire: impl AsyncFn()) {
    for (i, org) in [(1, "1"), (2, "2")] {
        let ticket = store.begin().await.unwrap();
        store
            .put(
                &key("b", org),
                Bytes::from_static(b"v"),
                &org_reads(i),
                ticket,
            )
            .await
            .unwrap();
    }
    expire().await; // value gone, ghost kept
    assert_eq!(
        store
            .invalidate(&org_change(1), ChangeOrigin::Local)
            .await
            .unwrap()
            .len(),
        1,
        "within the retention"
    );
    expire().await;
    expire().await; // past the retention too
    assert!(
        store
            .invalidate(&org_change(2), ChangeOrigin::Local)
            .await
            .unwrap()
            .is_empty(),
        "past the retention"
    );
}

#[tokio::test]
async fn memory_store_ghosts_last_their_retention() {
    let store = Arc::new(MemoryStore::new(MemoryConfig {
        ttl: Duration::from_millis(50),
        ghost_retention: Duration::from_millis(150),
        ..MemoryConfig::default()
    }));
    let s = Arc::clone(&store);
    ghost_retention_suite(store, async || {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.run_pending_tasks().await;
    })
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_ghosts_last_their_retention() {
    use reactive_runtime::cache::redis::{RedisConfig, RedisStore};
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("retention");
    let store = Arc::new(
        RedisStore::new(
            RedisConfig::new(&url)
                .prefix(&prefix)
                .ttl(Duration::from_millis(50))
                .ghost_retention(Duration::from_millis(150)),
        )
        .unwrap(),
    );
    ghost_retention_suite(store, async || {
        tokio::time::sleep(Duration::from_millis(100)).await;
    })
    .await;
    Cleanup { url, prefix }.run().await;
}

/// Values evicted for room leave ghosts; ghosts are bounded in bytes, oldest dropped first.
#[tokio::test]
async fn memory_store_ghosts_of_evicted_entries_are_bounded() {
    let store = MemoryStore::new(MemoryConfig {
        max_bytes: 20 * 1024,
        max_entry_bytes: 10 * 1024,
        max_ghost_bytes: 4 * 1024,
        ..MemoryConfig::default()
    });
    for i in 0..200 {
        let ticket = store.begin().await.unwrap();
        store
            .put(
                &key("t", &i.to_string()),
                Bytes::from(vec![b'x'; 4 * 1024]),
                &org_reads(i),
                ticket,
            )
            .await
            .unwrap();
        store.run_pending_tasks().await;
    }
    assert!(store.ghost_count() > 0, "evicted entries leave ghosts");
    assert!(
        store.ghost_bytes() <= 4 * 1024,
        "ghost bytes {}",
        store.ghost_bytes()
    );
    assert!(store.ghost_count() < 190, "old ghosts were dropped");
    // A dropped ghost takes its postings along: only cached entries and kept ghosts
    // are found (moka's admission may keep old entries and evict new ones: no order
    // is assumed).
    let (live, ghosts) = (store.entry_count() as usize, store.ghost_count());
    let mut found = 0;
    for i in 0..200 {
        found += store
            .invalidate(&org_change(i), ChangeOrigin::Local)
            .await
            .unwrap()
            .len();
    }
    assert_eq!(found, live + ghosts);
    assert!(found < 200);
    assert_eq!(store.ghost_count(), 0);
}

/// Routing records in Redis are bounded in bytes: the oldest go first, with their values.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_routing_records_are_bounded() {
    use reactive_runtime::cache::redis::{RedisConfig, RedisStore};
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("bound");
    let mut config = RedisConfig::new(&url).prefix(&prefix);
    config.max_routing_bytes = 4 * 1024;
    let store = RedisStore::new(config).unwrap();
    for i in 0..100 {
        let ticket = store.begin().await.unwrap();
        store
            .put(
                &key("t", &i.to_string()),
                Bytes::from_static(b"v"),
                &org_reads(i),
                ticket,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store.get(&key("t", "0")).await.unwrap(),
        None,
        "the oldest went, value and all"
    );
    assert!(
        store
            .invalidate(&org_change(0), ChangeOrigin::Local)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.get(&key("t", "99")).await.unwrap().is_some());
    assert_eq!(
        store
            .invalidate(&org_change(99), ChangeOrigin::Local)
            .await
            .unwrap()
            .len(),
        1
    );
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let total: u64 = redis::cmd("GET")
        .arg(format!("{prefix}rbytes"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(total <= 4 * 1024, "{total}");
    // The accounting follows deletions: nothing left, nothing counted.
    store
        .invalidate(&ChangeSet::everything(), ChangeOrigin::Local)
        .await
        .unwrap();
    let total: u64 = redis::cmd("GET")
        .arg(format!("{prefix}rbytes"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let sizes: u64 = redis::cmd("HLEN")
        .arg(format!("{prefix}rsize"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((total, sizes), (0, 0));
    Cleanup { url, prefix }.run().await;
}

// ---------------------------------------------------------------- Redis specifics

/// Instance B's cache must not serve what instance A invalidated, and B's computation
/// that overlapped A's write must not store, before B hears of the change on the bus.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cross_instance_invalidation_and_race_guard() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("cross");
    let a = engine(Arc::new(redis_with_prefix(&url, &prefix)));
    let b = engine(Arc::new(redis_with_prefix(&url, &prefix)));
    let k = key("t", "shared");
    let compute = |val: &'static [u8]| {
        move || async move { Res::Ok((Bytes::from_static(val), ReadSet::empty())) }
    };
    assert_eq!(
        b.get_or_compute(k.clone(), org_reads(1), compute(b"v1"))
            .await
            .unwrap()
            .source,
        Source::Computed
    );
    assert_eq!(
        a.get_or_compute(k.clone(), org_reads(1), compute(b"x"))
            .await
            .unwrap()
            .source,
        Source::Hit,
        "shared"
    );
    let report = a.apply(org_change(1)).await;
    assert_eq!(report.entries.len(), 1, "A removes the entry B stored");
    let f = b
        .get_or_compute(k.clone(), org_reads(1), compute(b"v2"))
        .await
        .unwrap();
    assert_eq!((f.value.as_ref(), f.source), (&b"v2"[..], Source::Computed));

    // Race across instances: B reads, A writes + invalidates, B stores → dropped by Redis.
    let k2 = key("t", "shared-race");
    let (read_done_tx, read_done_rx) = oneshot::channel::<()>();
    let (write_done_tx, write_done_rx) = oneshot::channel::<()>();
    let reader = {
        let (b, k2) = (b.clone(), k2.clone());
        tokio::spawn(async move {
            b.get_or_compute(k2, org_reads(1), || async move {
                read_done_tx.send(()).unwrap();
                write_done_rx.await.unwrap();
                Res::Ok((Bytes::from_static(b"old"), ReadSet::empty()))
            })
            .await
            .unwrap()
        })
    };
    read_done_rx.await.unwrap();
    a.apply(org_change(1)).await; // B's engine does not see this change
    write_done_tx.send(()).unwrap();
    reader.await.unwrap();
    assert_eq!(b.stats().stores_dropped, 1);
    let f = a
        .get_or_compute(k2, org_reads(1), compute(b"new"))
        .await
        .unwrap();
    assert_eq!(
        (f.value.as_ref(), f.source),
        (&b"new"[..], Source::Computed)
    );

    // A remote change set does not touch the shared store (its origin already did).
    let report = b.apply_remote(org_change(1)).await;
    assert!(report.remote && report.entries.is_empty());
    Cleanup { url, prefix }.run().await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_serves_without_cache() {
    use reactive_runtime::cache::CacheError;
    // Port 1: nothing listens there.
    let store = Arc::new(redis_with_prefix("redis://127.0.0.1:1/", "down:"));
    assert!(matches!(
        store.get(&key("t", "1")).await,
        Err(CacheError::Unavailable(_))
    ));
    let engine = engine(store);
    let runs = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let runs = Arc::clone(&runs);
        let f = engine
            .get_or_compute(key("t", "1"), org_reads(1), || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Res::Ok((Bytes::from_static(b"v"), ReadSet::empty()))
            })
            .await
            .unwrap();
        assert_eq!((f.value.as_ref(), f.source), (&b"v"[..], Source::Computed));
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "every read falls through to the database"
    );
    let report = engine.apply(org_change(1)).await;
    assert!(
        report.store_failed,
        "writes still succeed; the failure is reported"
    );
    // The first lookup fails and the invalidation fails; lookups and stores in between
    // are not tried while the store rests after its failure (one timeout, not one per read).
    assert!(engine.stats().store_errors >= 2);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "fails fast: {:?}",
        started.elapsed()
    );
}
