//! Which tenants hear an event must not depend on what happens to be cached.
//!
//! Tenant B holds a query's value and its stream is subscribed to it; the server's
//! cache entry for it then expires (or the instance restarts, with the Redis store),
//! or was never stored because the race guard refused it. A write without a tenant
//! (as the PostgreSQL feed or a background job makes) or by tenant A moving B's row
//! must still reach B's stream; a refused value must not be handed out stale.
//!
//! PostgreSQL (`TEST_POSTGRES_URL`) with the memory store and with the Redis store
//! (`TEST_REDIS_URL`); skipped when unset, failing under CI.
#![cfg(feature = "postgres")]

mod realtime_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reactive_runtime::cache::CacheStore;
use reactive_runtime::cache::memory::{MemoryConfig, MemoryStore};
use reactive_runtime::engine::{ChangeSet, Engine, KeyValue, RowChange};
use reactive_runtime::registry::{FunctionDef, InputError, Prepared};
use reactive_runtime::router::{Principal, with_principal};
use reactive_runtime::{Dialect, ReactiveDb};
use realtime_support::*;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// How long cached values live in these tests.
const TTL: Duration = Duration::from_millis(300);

fn env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(u) => Some(u),
        Err(_) if std::env::var_os("CI").is_some() => panic!("{name} must be set under CI"),
        Err(_) => {
            eprintln!("skipped: {name} not set");
            None
        }
    }
}

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ghost_{name}_{}_{nanos}", std::process::id())
}

/// A `ReactiveDb<Any>` on PostgreSQL with the harness's `rt_item` table; each test uses
/// organizations of its own, so runs on the shared database stay apart.
async fn pg(store: Arc<dyn CacheStore>) -> Option<ReactiveDb<sqlx::Any>> {
    let url = env("TEST_POSTGRES_URL")?;
    let db = ReactiveDb::connect(&url).await.expect("postgres");
    // Concurrent `CREATE TABLE IF NOT EXISTS` on PostgreSQL may fail with a unique
    // violation (the tests of this file run in parallel): the retry then sees the table.
    let create = "CREATE TABLE IF NOT EXISTS rt_item (id BIGSERIAL PRIMARY KEY, org TEXT NOT NULL, title TEXT NOT NULL)";
    if sqlx::query(create).execute(db.pool()).await.is_err() {
        sqlx::query(create)
            .execute(db.pool())
            .await
            .expect("create");
    }
    Some(db.with_engine(Engine::new(store)))
}

fn memory_store() -> Arc<dyn CacheStore> {
    Arc::new(MemoryStore::new(MemoryConfig {
        ttl: TTL,
        ..MemoryConfig::default()
    }))
}

#[cfg(feature = "redis")]
fn redis_store(url: &str, prefix: &str) -> Arc<dyn CacheStore> {
    use reactive_runtime::cache::redis::{RedisConfig, RedisStore};
    Arc::new(RedisStore::new(RedisConfig::new(url).prefix(prefix).ttl(TTL)).expect("redis url"))
}

#[cfg(feature = "redis")]
async fn redis_realtime(url: &str, prefix: &str) -> reactive_runtime::Realtime {
    use reactive_runtime::realtime::{HubConfig, Realtime, RedisBus, RedisLog};
    Realtime::new(
        Arc::new(RedisLog::connect(url, prefix, 100).await.expect("log")),
        Arc::new(RedisBus::connect(url, prefix).await.expect("bus")),
        HubConfig::default(),
    )
}

fn by_org_key(org: &str) -> String {
    format!(r#"rt.items.byOrg:{{"org":"{org}"}}"#)
}

async fn get_by_org(s: &Server, org: &str) -> Value {
    let body: Value = s
        .http
        .get(s.url("/rpc/rt.items.byOrg"))
        .bearer_auth(format!("{org}:u"))
        .query(&[("input", json!({"org": org}).to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"].clone()
}

async fn insert(db: &ReactiveDb<sqlx::Any>, org: &str, title: &str) -> i64 {
    use sqlx::Row;
    sqlx::query("INSERT INTO rt_item (org, title) VALUES ($1, $2) RETURNING id")
        .bind(org)
        .bind(title)
        .fetch_one(db.pool())
        .await
        .expect("insert")
        .get::<i64, _>(0)
}

/// A change to the rows of `org`, made without any tenant (what the feed applies).
fn org_change(org: &str) -> ChangeSet {
    ChangeSet::empty().with_row(
        "rt_item",
        RowChange::whole().with("org", KeyValue::from_str(org, Dialect::Postgres)),
    )
}

/// The next `invalidate` frame on `sse` names B's query.
async fn expect_event_for(sse: &mut Sse, key: &str, what: &str) {
    let f = sse
        .next_event(LONG)
        .await
        .unwrap_or_else(|| panic!("B's stream got no event: {what}"));
    assert_eq!(f.event.as_deref(), Some("invalidate"), "{what}");
    let queries = f.json()["queries"].clone();
    assert!(
        queries
            .as_array()
            .is_some_and(|q| q.iter().any(|e| e == key)),
        "{what}: {queries}"
    );
}

/// Who writes B's rows after B's cached value expired.
#[derive(Clone, Copy, Debug)]
enum Writer {
    /// A write without a tenant (the feed, a background job).
    Nobody,
    /// Tenant A moves B's row to A.
    TenantA,
}

/// B's cached value expires; a write to B's rows must reach B's open stream.
async fn expired_entries_still_route(s: Server, writer: Writer, expire: impl AsyncFn()) {
    let (org_a, org_b) = (unique("a"), unique("b"));
    let key_b = by_org_key(&org_b);
    let id = insert(&s.db, &org_b, "x").await;
    assert_eq!(get_by_org(&s, &org_b).await[0]["title"], "x");
    let mut sse = s
        .events(&format!("{org_b}:u"), &[("subscribe", &key_b)], None)
        .await;
    sse.ready().await;
    expire().await;
    match writer {
        Writer::Nobody => {
            s.db.invalidate(org_change(&org_b)).await;
        }
        Writer::TenantA => {
            let moved = with_principal(Principal::new(&org_a, "u"), async {
                sqlx::query("UPDATE rt_item SET org = $1 WHERE id = $2")
                    .bind(&org_a)
                    .bind(id)
                    .execute(&s.db)
                    .await
            })
            .await
            .expect("update");
            assert_eq!(moved.rows_affected(), 1);
        }
    }
    expect_event_for(&mut sse, &key_b, &format!("{writer:?} wrote after expiry")).await;
    // Reported once: the routing record is gone with the event; B's refetch makes a new one.
    if let Writer::TenantA = writer {
        assert_eq!(get_by_org(&s, &org_b).await, json!([]));
    }
}

async fn memory_server() -> Option<(Server, Arc<MemoryStore>)> {
    let store = Arc::new(MemoryStore::new(MemoryConfig {
        ttl: TTL,
        ..MemoryConfig::default()
    }));
    let db = pg(store.clone()).await?;
    Some((serve(db, |c| c).await, store))
}

async fn memory_expiry(store: &MemoryStore) {
    tokio::time::sleep(TTL * 2).await;
    // moka removes expired entries during its maintenance, which any later cache
    // operation may run: run it now.
    store.run_pending_tasks().await;
    assert_eq!(store.entry_count(), 0, "expired");
}

#[tokio::test]
async fn memory_store_expired_entry_hears_a_write_without_tenant() {
    let Some((s, store)) = memory_server().await else {
        return;
    };
    expired_entries_still_route(s, Writer::Nobody, async || memory_expiry(&store).await).await;
}

#[tokio::test]
async fn memory_store_expired_entry_hears_another_tenant_move_its_row() {
    let Some((s, store)) = memory_server().await else {
        return;
    };
    expired_entries_still_route(s, Writer::TenantA, async || memory_expiry(&store).await).await;
}

/// A value evicted for room (a cache that holds one of these entries) routes too.
#[tokio::test]
async fn memory_store_evicted_entry_hears_a_write_without_tenant() {
    use reactive_runtime::cache::CacheKey;
    let store = Arc::new(MemoryStore::new(MemoryConfig {
        max_bytes: 700,
        ..MemoryConfig::default()
    }));
    let Some(db) = pg(store.clone()).await else {
        return;
    };
    let s = serve(db, |c| c).await;
    let orgs = [unique("b"), unique("c")];
    let mut streams = Vec::new();
    for org in &orgs {
        insert(&s.db, org, "x").await;
        let mut sse = s
            .events(
                &format!("{org}:u"),
                &[("subscribe", &by_org_key(org))],
                None,
            )
            .await;
        sse.ready().await;
        streams.push(sse);
    }
    // C's value is read often; B's once: one of them does not stay (moka's admission
    // decides which), and no invalidation removed it.
    for _ in 0..5 {
        assert_eq!(get_by_org(&s, &orgs[1]).await[0]["title"], "x");
    }
    assert_eq!(get_by_org(&s, &orgs[0]).await[0]["title"], "x");
    store.run_pending_tasks().await;
    let mut evicted = Vec::new();
    for (i, org) in orgs.iter().enumerate() {
        let key = CacheKey::from_json(Some(org), "rt.items.byOrg", &json!({"org": org}));
        if store.get(&key).await.unwrap().is_none() {
            evicted.push(i);
        }
    }
    let Some(&victim) = evicted.first() else {
        panic!("the cache holds one of the two entries");
    };
    s.db.invalidate(org_change(&orgs[victim])).await;
    let key = by_org_key(&orgs[victim]);
    expect_event_for(
        &mut streams[victim],
        &key,
        "a write without a tenant, after eviction",
    )
    .await;
}

#[cfg(feature = "redis")]
async fn redis_server(name: &str) -> Option<Server> {
    let url = env("TEST_REDIS_URL")?;
    let prefix = unique(name);
    let db = pg(redis_store(&url, &format!("{prefix}:cache:"))).await?;
    let rt = redis_realtime(&url, &format!("{prefix}:rt:")).await;
    Some(serve(db, |c| c.realtime(rt)).await)
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_expired_entry_hears_a_write_without_tenant() {
    let Some(s) = redis_server("nobody").await else {
        return;
    };
    expired_entries_still_route(s, Writer::Nobody, async || {
        tokio::time::sleep(TTL * 2).await
    })
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_expired_entry_hears_another_tenant_move_its_row() {
    let Some(s) = redis_server("move").await else {
        return;
    };
    expired_entries_still_route(s, Writer::TenantA, async || {
        tokio::time::sleep(TTL * 2).await
    })
    .await;
}

/// With the Redis store, an instance restarts (a new `ReactiveDb` and `Realtime` on the
/// same Redis prefixes) and B's value has expired meanwhile: a write on the new
/// instance must still reach B, who reconnects there.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_routes_after_a_restart() {
    let Some(url) = env("TEST_REDIS_URL") else {
        return;
    };
    let prefix = unique("restart");
    let (cache, events) = (format!("{prefix}:cache:"), format!("{prefix}:rt:"));
    let org_b = unique("b");
    let key_b = by_org_key(&org_b);
    {
        let Some(db) = pg(redis_store(&url, &cache)).await else {
            return;
        };
        let rt = redis_realtime(&url, &events).await;
        let before = serve(db, |c| c.realtime(rt)).await;
        insert(&before.db, &org_b, "x").await;
        assert_eq!(get_by_org(&before, &org_b).await[0]["title"], "x");
    }
    tokio::time::sleep(TTL * 2).await;
    let db = pg(redis_store(&url, &cache)).await.unwrap();
    let rt = redis_realtime(&url, &events).await;
    let after = serve(db, |c| c.realtime(rt)).await;
    let mut sse = after
        .events(&format!("{org_b}:u"), &[("subscribe", &key_b)], None)
        .await;
    sse.ready().await;
    after.db.invalidate(org_change(&org_b)).await;
    expect_event_for(&mut sse, &key_b, "a write after a restart and expiry").await;
}

// ---------------------------------------------------------------- the race guard

/// Pause points: each run of `rt.items.byOrgPaused` takes the next one, if any, and
/// pauses after its query (signals the first channel, waits on the second).
type Pause = (oneshot::Sender<()>, oneshot::Receiver<()>);
static PAUSE: Mutex<std::collections::VecDeque<Pause>> =
    Mutex::new(std::collections::VecDeque::new());

/// Queues a pause point; returns (its query ran, let it continue).
fn pause_next_run() -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
    let (read_done_tx, read_done_rx) = oneshot::channel();
    let (write_done_tx, write_done_rx) = oneshot::channel();
    PAUSE
        .lock()
        .unwrap()
        .push_back((read_done_tx, write_done_rx));
    (read_done_rx, write_done_tx)
}

fn prepare_paused(input: Value) -> Result<Prepared, InputError> {
    let org = input["org"].as_str().unwrap_or_default().to_owned();
    let pause = PAUSE.lock().unwrap().pop_front();
    Ok(Prepared {
        bindings: vec![json!(org)],
        run: Box::new(move |db| {
            let db: ReactiveDb<sqlx::Any> = *db.downcast().expect("ReactiveDb<Any>");
            Box::pin(async move {
                use sqlx::Row;
                let rows = sqlx::query("SELECT title FROM rt_item WHERE org = $1")
                    .bind(org)
                    .fetch_all(&db)
                    .await?;
                if let Some((read_done, write_done)) = pause {
                    read_done.send(()).unwrap();
                    write_done.await.unwrap(); // the write and its invalidation happen now
                }
                let titles: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
                Ok(serde_json::to_vec(&titles)?)
            })
        }),
    })
}

static PAUSED_DEF: FunctionDef = FunctionDef::by_hand(
    concat!(
        r#"{"name":"rt.items.byOrgPaused","rust_name":"by_org_paused","kind":"query","requires_ack":false,"dialect":"postgres","#,
        r#""bindings":[{"source":"input.org","path":["org"]}],"#,
        r#""dependencies":[{"table":"rt_item","keys":[{"column":"org","values":[{"binding":0}]}]}],"#,
        r#""invalidates":[],"statements":[{"sql":"SELECT title FROM rt_item WHERE org = $1","analysis":"#,
        r#"{"operation":"select","reads":[{"table":"rt_item","filter":{"rows":"keys","keys":[{"column":"org","values":[{"param":{"index":1}}]}]}}],"writes":[],"returning":false,"unknown":null}"#,
        r#","params":[0]}],"calls":[]}"#
    ),
    prepare_paused,
);

/// Tests of this file that use `PAUSE` never run at the same time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// B's read runs its query (old rows); a write without a tenant commits and its
/// invalidation runs (nothing is cached, so no event names B's key); B's read
/// resumes. The race guard refuses to store its value — which must then not be
/// handed to B either: B would keep it, and no event would ever tell it otherwise.
async fn refused_value_is_not_handed_out(db: ReactiveDb<sqlx::Any>) {
    let _serial = SERIAL.lock().await;
    let org_b = unique("b");
    insert(&db, &org_b, "old").await;
    PAUSE.lock().unwrap().clear();
    let (read_done_rx, write_done_tx) = pause_next_run();
    let reader = tokio::spawn({
        let (db, org_b) = (db.clone(), org_b.clone());
        async move {
            db.call(&PAUSED_DEF, &org_b, json!({"org": org_b}))
                .await
                .expect("call")
        }
    });
    read_done_rx.await.unwrap(); // B's query has read "old"
    sqlx::query("UPDATE rt_item SET title = 'new' WHERE org = $1")
        .bind(&org_b)
        .execute(db.pool())
        .await
        .unwrap();
    let report = db.invalidate(org_change(&org_b)).await; // as the feed applies it
    assert!(
        report.entries.is_empty(),
        "nothing was cached: no key to route"
    );
    write_done_tx.send(()).unwrap();
    let out = reader.await.unwrap();
    let titles: Vec<String> = serde_json::from_slice(&out.bytes).unwrap();
    assert_eq!(
        titles,
        ["new"],
        "B was handed a value that predates the write"
    );
    // What B holds now is routed: the next write reaches it.
    let report = db.invalidate(org_change(&org_b)).await;
    assert_eq!(report.entries.len(), 1, "{report:?}");
    assert_eq!(
        report.entries[0].key.tenant.as_deref(),
        Some(org_b.as_str())
    );
}

#[tokio::test]
async fn memory_store_refused_value_is_not_handed_out() {
    let Some(db) = pg(memory_store()).await else {
        return;
    };
    refused_value_is_not_handed_out(db).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_refused_value_is_not_handed_out() {
    let Some(url) = env("TEST_REDIS_URL") else {
        return;
    };
    let prefix = unique("refused");
    let Some(db) = pg(redis_store(&url, &format!("{prefix}:cache:"))).await else {
        return;
    };
    refused_value_is_not_handed_out(db).await;
}

/// Every run is refused once more: the write that refuses the second run must find
/// the routing record the first refusal left (so B's tenant hears of it), and the
/// value finally handed out reflects both writes.
async fn a_write_refusing_the_second_run_reaches_the_tenant(db: ReactiveDb<sqlx::Any>) {
    let _serial = SERIAL.lock().await;
    PAUSE.lock().unwrap().clear();
    let org_b = unique("b");
    insert(&db, &org_b, "old").await;
    let first = pause_next_run();
    let second = pause_next_run();
    let reader = tokio::spawn({
        let (db, org_b) = (db.clone(), org_b.clone());
        async move {
            db.call(&PAUSED_DEF, &org_b, json!({"org": org_b}))
                .await
                .expect("call")
        }
    });
    let write = |title: &'static str| {
        let (db, org_b) = (db.clone(), org_b.clone());
        async move {
            sqlx::query("UPDATE rt_item SET title = $1 WHERE org = $2")
                .bind(title)
                .bind(&org_b)
                .execute(db.pool())
                .await
                .unwrap();
            db.invalidate(org_change(&org_b)).await
        }
    };
    first.0.await.unwrap();
    let report = write("mid").await;
    assert!(report.entries.is_empty(), "nothing cached, no ghost yet");
    first.1.send(()).unwrap();
    tokio::time::timeout(LONG, second.0)
        .await
        .expect("the refused run is computed again")
        .unwrap();
    let report = write("new").await;
    let keys: Vec<_> = report
        .entries
        .iter()
        .map(|e| e.key.tenant.clone())
        .collect();
    assert_eq!(
        keys,
        [Some(org_b.clone())],
        "the write that refuses the second run finds the first run's routing record"
    );
    second.1.send(()).unwrap();
    let out = reader.await.unwrap();
    let titles: Vec<String> = serde_json::from_slice(&out.bytes).unwrap();
    assert_eq!(titles, ["new"]);
}

#[tokio::test]
async fn memory_store_a_write_refusing_the_second_run_reaches_the_tenant() {
    let Some(db) = pg(memory_store()).await else {
        return;
    };
    a_write_refusing_the_second_run_reaches_the_tenant(db).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_a_write_refusing_the_second_run_reaches_the_tenant() {
    let Some(url) = env("TEST_REDIS_URL") else {
        return;
    };
    let prefix = unique("refused2");
    let Some(db) = pg(redis_store(&url, &format!("{prefix}:cache:"))).await else {
        return;
    };
    a_write_refusing_the_second_run_reaches_the_tenant(db).await;
}
