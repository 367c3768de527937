//! Two instances sharing Redis (event log + bus) and one database: a write on A
//! reaches an SSE client of B, B's cache drops what A invalidated, and a client that
//! moves from A to B with its last event id misses nothing. Needs TEST_REDIS_URL.
#![cfg(feature = "redis")]

mod realtime_support;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use reactive_runtime::ReactiveDb;
use reactive_runtime::realtime::{
    EventDraft, EventLog, HubConfig, Realtime, RedisBus, RedisLog, Replay,
};
use realtime_support::*;
use serde_json::{Value, json};

const A_KEY: &str = r#"rt.items.byOrg:{"org":"A"}"#;

fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(u) => Some(u),
        Err(_) if std::env::var("CI").is_ok() => panic!("TEST_REDIS_URL must be set in CI"),
        Err(_) => {
            eprintln!("skipped: TEST_REDIS_URL not set");
            None
        }
    }
}

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("rt-test-{name}-{}-{nanos}", std::process::id())
}

async fn redis_realtime(url: &str, prefix: &str, cap: usize) -> Realtime {
    Realtime::new(
        Arc::new(
            RedisLog::connect(url, prefix, cap)
                .await
                .expect("redis log"),
        ),
        Arc::new(RedisBus::connect(url, prefix).await.expect("redis bus")),
        HubConfig::default(),
    )
}

/// Two `ReactiveDb`s (two engines, two memory caches) on one SQLite file.
async fn shared_dbs(name: &str) -> (ReactiveDb<sqlx::Any>, ReactiveDb<sqlx::Any>) {
    let path = std::env::temp_dir().join(format!("{}.db", unique(name)));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let a = ReactiveDb::connect(&url).await.expect("sqlite a");
    sqlx::query("CREATE TABLE rt_item (id INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, title TEXT NOT NULL)")
        .execute(a.pool())
        .await
        .expect("create");
    let b = ReactiveDb::connect(&url).await.expect("sqlite b");
    (a, b)
}

async fn get_by_org(s: &Server, org: &str) -> Value {
    s.http
        .get(s.url("/rpc/rt.items.byOrg"))
        .bearer_auth(format!("{org}:u"))
        .query(&[("input", json!({"org": org}).to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_write_on_a_reaches_b_and_b_drops_its_cache() {
    let Some(url) = redis_url() else { return };
    let prefix = unique("ab");
    let (db_a, db_b) = shared_dbs("ab").await;
    let rt_a = redis_realtime(&url, &prefix, 100).await;
    let rt_b = redis_realtime(&url, &prefix, 100).await;
    let a = serve(db_a, |c| c.realtime(rt_a)).await;
    let b = serve(db_b, |c| c.realtime(rt_b)).await;

    // B caches the (empty) result
    assert_eq!(get_by_org(&b, "A").await["data"], json!([]));
    assert_eq!(get_by_org(&b, "A").await["data"], json!([]));
    assert!(b.db.stats().engine.hits >= 1, "second read was a cache hit");

    let mut sse_b = b.events("A:u", &[("subscribe", A_KEY)], None).await;
    sse_b.ready().await;
    let (st, m) = a
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200);
    let f = sse_b
        .next_event(LONG)
        .await
        .expect("B's client gets A's event");
    assert_eq!(f.json()["eventId"], m["eventId"]);
    assert_eq!(f.json()["queries"], json!([A_KEY]));
    // the change set arrived before the event on the same channel: B's cache is clean
    let fresh = get_by_org(&b, "A").await;
    assert_eq!(fresh["data"][0]["title"], "x", "{fresh}");
}

const B_KEY: &str = r#"rt.items.byOrg:{"org":"B"}"#;

async fn get_as(s: &Server, org: &str) -> Value {
    s.http
        .get(s.url("/rpc/rt.items.byOrg"))
        .bearer_auth(format!("{org}:u"))
        .query(&[("input", json!({"org": org}).to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Memory stores, one per instance: only instance B routes tenant B's value (it cached
/// it). A write on A without a tenant (a background job) that changes B's rows finds
/// nothing in A's cache; B finds its entry when it applies the change set, and must
/// publish tenant B's event itself.
#[tokio::test]
async fn the_instance_that_routes_a_foreign_tenant_publishes_its_event() {
    let Some(url) = redis_url() else { return };
    let prefix = unique("foreign");
    let (db_a, db_b) = shared_dbs("foreign").await;
    let rt_a = redis_realtime(&url, &prefix, 100).await;
    let rt_b = redis_realtime(&url, &prefix, 100).await;
    let a = serve(db_a, |c| c.realtime(rt_a)).await;
    let b = serve(db_b, |c| c.realtime(rt_b)).await;
    let (st, _) = b
        .post("B:u", "rt.items.create", json!({"org": "B", "title": "x"}))
        .await;
    assert_eq!(st, 200);
    let read = get_as(&b, "B").await;
    assert_eq!(read["data"][0]["title"], "x");
    let mut sse = b
        .events(
            "B:u",
            &[("subscribe", B_KEY)],
            Some(read["eventId"].as_str().unwrap()),
        )
        .await;
    sse.ready().await;

    sqlx::query("UPDATE rt_item SET title = $1 WHERE org = $2")
        .bind("y")
        .bind("B")
        .execute(&a.db)
        .await
        .unwrap();
    let f = sse
        .next_event(LONG)
        .await
        .expect("tenant B hears of the write to its rows");
    assert_eq!(f.event.as_deref(), Some("invalidate"));
    assert_eq!(f.json()["queries"], json!([B_KEY]));
    assert_eq!(get_as(&b, "B").await["data"][0]["title"], "y");
    assert!(sse.next_event(SHORT).await.is_none(), "one event");
}

/// The writer's instance already published for the tenants it knows (the writer's and
/// those of its own entries): the other instance does not publish them again.
#[tokio::test]
async fn a_remote_instance_does_not_repeat_the_writers_events() {
    let Some(url) = redis_url() else { return };
    let prefix = unique("norepeat");
    let (db_a, db_b) = shared_dbs("norepeat").await;
    let rt_a = redis_realtime(&url, &prefix, 100).await;
    let rt_b = redis_realtime(&url, &prefix, 100).await;
    let a = serve(db_a, |c| c.realtime(rt_a)).await;
    let b = serve(db_b, |c| c.realtime(rt_b)).await;
    // Tenant A's value is cached on both instances.
    get_as(&a, "A").await;
    let read = get_as(&b, "A").await;
    let mut sse = b
        .events(
            "A:u",
            &[("subscribe", A_KEY)],
            Some(read["eventId"].as_str().unwrap()),
        )
        .await;
    sse.ready().await;
    let (_, m) = a
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    let f = sse.next_event(LONG).await.expect("the writer's event");
    assert_eq!(f.json()["eventId"], m["eventId"]);
    assert!(
        sse.next_event(SHORT).await.is_none(),
        "B found tenant A's entry too, but A already published for tenant A"
    );
}

#[tokio::test]
async fn a_client_moving_from_a_to_b_misses_nothing() {
    let Some(url) = redis_url() else { return };
    let prefix = unique("move");
    let (db_a, db_b) = shared_dbs("move").await;
    let rt_a = redis_realtime(&url, &prefix, 100).await;
    let rt_b = redis_realtime(&url, &prefix, 100).await;
    let a = serve(db_a, |c| c.realtime(rt_a)).await;
    let b = serve(db_b, |c| c.realtime(rt_b)).await;

    let mut sse_a = a.events("A:u", &[("subscribe", A_KEY)], None).await;
    sse_a.ready().await;
    a.post("A:u", "rt.items.create", json!({"org": "A", "title": "1"}))
        .await;
    let last = sse_a.next_event(LONG).await.unwrap().id.unwrap();
    drop(sse_a);
    let (_, m2) = a
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "2"}))
        .await;
    let (_, m3) = b
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "3"}))
        .await;
    let mut sse_b = b.events("A:u", &[("subscribe", A_KEY)], Some(&last)).await;
    sse_b.ready().await;
    assert_eq!(
        sse_b.next_event(LONG).await.unwrap().json()["eventId"],
        m2["eventId"]
    );
    assert_eq!(
        sse_b.next_event(LONG).await.unwrap().json()["eventId"],
        m3["eventId"]
    );
    assert!(sse_b.next_event(SHORT).await.is_none());
    // ids are contiguous per tenant across instances
    let i2: u64 = m2["eventId"].as_str().unwrap().parse().unwrap();
    let i3: u64 = m3["eventId"].as_str().unwrap().parse().unwrap();
    assert_eq!(i3, i2 + 1);
}

#[tokio::test]
async fn an_ack_sent_to_a_stops_resends_on_b() {
    let Some(url) = redis_url() else { return };
    let prefix = unique("ack");
    let (db_a, db_b) = shared_dbs("ack").await;
    let hub = HubConfig {
        ack_retry_delays: vec![
            std::time::Duration::from_millis(300),
            std::time::Duration::from_millis(300),
        ],
        ..HubConfig::default()
    };
    let rt_a = Realtime::new(
        Arc::new(RedisLog::connect(&url, &prefix, 100).await.unwrap()),
        Arc::new(RedisBus::connect(&url, &prefix).await.unwrap()),
        hub.clone(),
    );
    let rt_b = Realtime::new(
        Arc::new(RedisLog::connect(&url, &prefix, 100).await.unwrap()),
        Arc::new(RedisBus::connect(&url, &prefix).await.unwrap()),
        hub,
    );
    let a = serve(db_a, |c| c.realtime(rt_a)).await;
    let b = serve(db_b, |c| c.realtime(rt_b)).await;
    let mut sse_b = b.events("A:u", &[("subscribe", A_KEY)], None).await;
    let ready = sse_b.ready().await;
    a.post(
        "A:u",
        "rt.items.createAcked",
        json!({"org": "A", "title": "x"}),
    )
    .await;
    let f = sse_b.next_event(LONG).await.expect("event on B");
    let token = ready["connectionId"].as_str().unwrap();
    assert_eq!(
        reactive_runtime::testing::pending_acks(&b.realtime, token)
            .unwrap()
            .len(),
        1
    );
    let res = a
        .http
        .post(a.url("/events/ack"))
        .bearer_auth("A:u")
        .json(&json!({"eventId": f.json()["eventId"], "connectionId": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let deadline = tokio::time::Instant::now() + LONG;
    while !reactive_runtime::testing::pending_acks(&b.realtime, token)
        .unwrap()
        .is_empty()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        reactive_runtime::testing::pending_acks(&b.realtime, token)
            .unwrap()
            .is_empty(),
        "ack forwarded to B"
    );
}

#[tokio::test]
async fn redis_log_replays_and_resets_after_trimming() {
    let Some(url) = redis_url() else { return };
    let prefix = unique("log");
    let log = RedisLog::connect(&url, &prefix, 3).await.expect("log");
    let h0 = log.head("t").await.unwrap();
    assert!(
        h0.0 > 1_000_000_000_000_000,
        "starts at server time in µs: {h0}"
    );
    let draft = || EventDraft {
        tenant: "t".into(),
        ..Default::default()
    };
    let e1 = log.append(draft()).await.unwrap();
    let e2 = log.append(draft()).await.unwrap();
    assert_eq!(e1.id().0, h0.0 + 1);
    assert_eq!(e2.id().0, h0.0 + 2);
    match log.since("t", h0).await.unwrap() {
        Replay::Events { events, head } => {
            assert_eq!(
                events.iter().map(|e| e.id()).collect::<Vec<_>>(),
                vec![e1.id(), e2.id()]
            );
            assert_eq!(head, e2.id());
        }
        Replay::Reset { .. } => panic!("unexpected reset"),
    }
    for _ in 0..3 {
        log.append(draft()).await.unwrap();
    }
    assert!(matches!(
        log.since("t", e1.id()).await.unwrap(),
        Replay::Reset { .. }
    ));
    assert!(matches!(
        log.since("t", h0).await.unwrap(),
        Replay::Reset { .. }
    ));
    assert!(matches!(
        log.since("t", e2.id()).await.unwrap(),
        Replay::Events { .. }
    ));
    let future = reactive_runtime::realtime::EventId(u64::MAX >> 12);
    assert!(matches!(
        log.since("t", future).await.unwrap(),
        Replay::Reset { .. }
    ));
    // other tenants are independent
    let other = log.head("u").await.unwrap();
    assert!(matches!(
        log.since("u", other).await.unwrap(),
        Replay::Events { .. }
    ));
}

/// Large events: the stream stays under its byte bound (oldest dropped first), a replay
/// from before what it keeps is a reset, and recent events replay.
#[tokio::test]
async fn redis_log_is_bounded_in_bytes() {
    let Some(url) = redis_url() else { return };
    let prefix = unique("bytes");
    let log = RedisLog::connect(&url, &prefix, 1000)
        .await
        .expect("log")
        .max_bytes(64 << 10);
    let big = |i: usize| EventDraft {
        tenant: "t".into(),
        changes: reactive_runtime::engine::ChangeSet::empty().with_row(
            "t",
            reactive_runtime::engine::RowChange::whole().with(
                "k",
                reactive_runtime::engine::KeyValue::from_str(
                    &format!("{i}{}", "x".repeat(10_000)),
                    reactive_runtime::Dialect::Postgres,
                ),
            ),
        ),
        ..Default::default()
    };
    let first = log.append(big(0)).await.unwrap();
    let mut last = first.clone();
    for i in 1..40 {
        last = log.append(big(i)).await.unwrap();
        let bytes = log.tenant_bytes("t").await.unwrap();
        assert!(bytes <= 64 << 10, "{bytes} bytes after {i} events");
    }
    assert!(log.tenant_bytes("t").await.unwrap() > 32 << 10);
    assert!(matches!(
        log.since("t", first.id()).await.unwrap(),
        Replay::Reset { .. }
    ));
    match log
        .since("t", reactive_runtime::realtime::EventId(last.id().0 - 3))
        .await
        .unwrap()
    {
        Replay::Events { events, .. } => assert_eq!(events.len(), 3),
        Replay::Reset { .. } => panic!("recent events are kept"),
    }
}

// ------------------------------------------------------------ two processes

/// The database both processes share: PostgreSQL when `TEST_POSTGRES_URL` is set (and
/// the `postgres` feature is on), else a SQLite file.
fn shared_database_url(name: &str) -> String {
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("TEST_POSTGRES_URL") {
        return url;
    }
    let path = std::env::temp_dir().join(format!("{}.db", unique(name)));
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Run by the child process only (`REALTIME_CHILD_DB` set): serves one instance and
/// prints its address, until killed.
#[tokio::test]
#[ignore = "helper: run as a child process by two_processes_share_events_and_replay"]
async fn child_server() {
    let (Ok(db_url), Ok(redis), Ok(prefix)) = (
        std::env::var("REALTIME_CHILD_DB"),
        std::env::var("REALTIME_CHILD_REDIS"),
        std::env::var("REALTIME_CHILD_PREFIX"),
    ) else {
        return;
    };
    let db = ReactiveDb::connect(&db_url).await.expect("db");
    let rt = redis_realtime(&redis, &prefix, 100).await;
    let s = serve(db, |c| c.realtime(rt)).await;
    println!("LISTENING {}", s.base);
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn two_processes_share_events_and_replay() {
    use std::io::BufRead;
    let Some(url) = redis_url() else { return };
    let prefix = unique("proc");
    let db_url = shared_database_url("proc");
    let db_a = ReactiveDb::connect(&db_url).await.expect("db");
    let table = if db_url.starts_with("postgres") {
        "CREATE TABLE IF NOT EXISTS rt_item (id BIGSERIAL PRIMARY KEY, org TEXT NOT NULL, title TEXT NOT NULL)"
    } else {
        "CREATE TABLE IF NOT EXISTS rt_item (id INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, title TEXT NOT NULL)"
    };
    sqlx::query(table)
        .execute(db_a.pool())
        .await
        .expect("create");
    // a per-run organization keeps runs on a shared PostgreSQL apart
    let org = unique("org").replace('-', "_");
    let key = format!(r#"rt.items.byOrg:{{"org":"{org}"}}"#);
    let token = format!("{org}:u");

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_server",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("REALTIME_CHILD_DB", &db_url)
        .env("REALTIME_CHILD_REDIS", &url)
        .env("REALTIME_CHILD_PREFIX", &prefix)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let child = Child(child);
    let base_b = tokio::task::spawn_blocking(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("child stdout");
            // libtest prints `test child_server ... ` before it on the same line
            if let Some((_, addr)) = line.split_once("LISTENING ") {
                return addr.trim().to_string();
            }
        }
        panic!("child exited without listening");
    })
    .await
    .unwrap();

    let rt_a = redis_realtime(&url, &prefix, 100).await;
    let a = serve(db_a, |c| c.realtime(rt_a)).await;
    let b = Server {
        base: base_b,
        db: a.db.clone(),
        auth: TokenAuth::default(),
        realtime: a.realtime.clone(),
        http: reqwest::Client::new(),
    };
    // B (the other process) caches the empty result
    assert_eq!(get_by_org(&b, &org).await["data"], json!([]));
    let mut sse_b = b.events(&token, &[("subscribe", &key)], None).await;
    sse_b.ready().await;
    let (st, m1) = a
        .post(&token, "rt.items.create", json!({"org": org, "title": "1"}))
        .await;
    assert_eq!(st, 200);
    let f = sse_b
        .next_event(LONG)
        .await
        .expect("B's client gets A's event");
    assert_eq!(f.json()["eventId"], m1["eventId"]);
    assert_eq!(
        get_by_org(&b, &org).await["data"][0]["title"],
        "1",
        "B's cache dropped it"
    );
    // a client of A drops, B writes, the client comes back on A... and on B: nothing missed
    let last = f.id.unwrap();
    drop(sse_b);
    let (_, m2) = b
        .post(&token, "rt.items.create", json!({"org": org, "title": "2"}))
        .await;
    let (_, m3) = a
        .post(&token, "rt.items.create", json!({"org": org, "title": "3"}))
        .await;
    let mut again = b.events(&token, &[("subscribe", &key)], Some(&last)).await;
    again.ready().await;
    assert_eq!(
        again.next_event(LONG).await.unwrap().json()["eventId"],
        m2["eventId"]
    );
    assert_eq!(
        again.next_event(LONG).await.unwrap().json()["eventId"],
        m3["eventId"]
    );
    drop(child);
}
