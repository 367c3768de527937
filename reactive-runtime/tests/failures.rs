//! Failing parts and hostile input, over HTTP:
//!
//! - an unreadable `Last-Event-ID` / `lastEventId` / `since` is an unknown id: `200` and
//!   `reset`, never `400` (a browser's `EventSource` does not reconnect after a non-200);
//! - a panicking handler answers `500` (logged with the procedure name) and the server
//!   goes on; a panicking dispatcher is restarted and the streams are closed with `reset`;
//! - with the Redis behind the cache, the event log and the bus stopped (a `redis-server`
//!   this test starts on a port of its own and pauses with `SIGSTOP`), queries, polls and
//!   new streams keep working from the database with the unknown watermark `"0"`, a
//!   committed write answers `200`, and once Redis answers again every client is told to
//!   revalidate by an event that changed everything.

mod realtime_support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use reactive_runtime::engine::ChangeSet;
use reactive_runtime::realtime::{
    BusMessage, Event, EventDraft, EventId, EventLog, HubConfig, MemoryBus, MemoryLog, Realtime,
    RealtimeError, RemoteChanges, Replay,
};
use reactive_runtime::registry::{FunctionDef, InputError, Prepared};
use realtime_support::*;
use serde_json::{Value, json};

const A_KEY: &str = r#"rt.items.byOrg:{"org":"A"}"#;

// ------------------------------------------------------------ item 11: unreadable ids

async fn poll(s: &Server, query: &[(&str, &str)]) -> (u16, Value) {
    let res = s
        .http
        .get(s.url("/poll"))
        .bearer_auth("A:u")
        .query(query)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn unreadable_event_ids_answer_reset_not_400() {
    let s = start().await;
    let (_, m) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    let head = m["eventId"].as_str().unwrap().to_owned();
    for garbage in [
        "garbage",
        "-1",
        "1e9",
        "99999999999999999999999",
        "0x10",
        "0",
    ] {
        // `Last-Event-ID`, as a browser sends it on reconnect
        let mut sse = s
            .events("A:u", &[("subscribe", A_KEY)], Some(garbage))
            .await;
        assert_eq!(sse.ready().await["eventId"], head.as_str());
        let f = sse.next_event(LONG).await.expect("reset");
        assert_eq!(f.event.as_deref(), Some("reset"), "{garbage}");
        assert_eq!(
            f.id.as_deref(),
            Some(head.as_str()),
            "continue from the head"
        );
        assert_eq!(f.json()["eventId"], head.as_str());
        // `lastEventId` in the query
        let mut sse = s
            .events(
                "A:u",
                &[("subscribe", A_KEY), ("lastEventId", garbage)],
                None,
            )
            .await;
        sse.ready().await;
        let f = sse.next_event(LONG).await.expect("reset");
        assert_eq!(f.event.as_deref(), Some("reset"), "{garbage}");
        // `since` of a poll
        let (st, body) = poll(&s, &[("since", garbage)]).await;
        assert_eq!(st, 200, "{garbage}: {body}");
        assert_eq!(body["reset"], true, "{garbage}: {body}");
        assert_eq!(body["eventId"], head.as_str());
        assert_eq!(body["events"], json!([]));
    }
    // a readable id still replays
    let (st, body) = poll(&s, &[("since", &head)]).await;
    assert_eq!((st, &body["reset"]), (200, &json!(false)), "{body}");
}

/// A log that answers, but whose stored events after an id cannot be decoded.
struct CorruptLog(MemoryLog);

impl EventLog for CorruptLog {
    fn append(&self, draft: EventDraft) -> BoxFuture<'_, Result<Arc<Event>, RealtimeError>> {
        self.0.append(draft)
    }

    fn head<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<EventId, RealtimeError>> {
        self.0.head(tenant)
    }

    fn since<'a>(
        &'a self,
        _tenant: &'a str,
        _after: EventId,
    ) -> BoxFuture<'a, Result<Replay, RealtimeError>> {
        Box::pin(async { Err(RealtimeError::Corrupt("undecodable entry".into())) })
    }
}

/// A stored event that cannot be read resets the client to the head (it moves past
/// it), instead of a `500` or a reset that keeps it asking for the same event.
#[tokio::test]
async fn an_unreadable_stored_event_resets_to_the_head() {
    let realtime = Realtime::new(
        Arc::new(CorruptLog(MemoryLog::new(8))),
        Arc::new(MemoryBus::default()),
        HubConfig::default(),
    );
    let s = serve(memory_db().await, |c| c.realtime(realtime)).await;
    let (_, m1) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "1"}))
        .await;
    let (_, m2) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "2"}))
        .await;
    let (e1, e2) = (
        m1["eventId"].as_str().unwrap(),
        m2["eventId"].as_str().unwrap(),
    );
    let (st, body) = poll(&s, &[("since", e1)]).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body,
        json!({"eventId": e2, "reset": true, "more": false, "events": []})
    );
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], Some(e1)).await;
    sse.ready().await;
    let f = sse.next_event(LONG).await.expect("reset");
    assert_eq!(
        (f.event.as_deref(), f.id.as_deref()),
        (Some("reset"), Some(e2))
    );
}

// ------------------------------------------------------------ item 10: panics

fn prepare_panic(_input: Value) -> Result<Prepared, InputError> {
    Ok(Prepared {
        bindings: vec![],
        run: Box::new(|_db| {
            Box::pin(async {
                // A handler bug: indexing an empty list.
                let rows: Vec<u8> = std::hint::black_box(Vec::new());
                Ok(vec![rows[3]])
            })
        }),
    })
}

static PANIC_DEF: FunctionDef = FunctionDef::by_hand(
    r#"{"name":"rt.panics","rust_name":"f","kind":"query","requires_ack":false,"dialect":"sqlite","bindings":[],"dependencies":[{"table":"rt_other","keys":[]}],"invalidates":[],"statements":[],"calls":[]}"#,
    prepare_panic,
);

/// Log lines, captured for this test's thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_is_logged() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runtime has one thread: the server's tasks log through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let db = memory_db().await;
    let s = serve(db, |c| {
        let mut fns = functions();
        fns.push(&PANIC_DEF);
        c.functions(fns)
    })
    .await;
    let (st, body) = s.post("A:u", "rt.panics", json!(null)).await;
    assert_eq!(st, 500, "{body}");
    assert_eq!(body["error"]["code"], "internal");
    assert!(
        !body.to_string().contains("index out of bounds"),
        "no detail leaks: {body}"
    );
    let res = s
        .http
        .get(s.url("/rpc/rt.panics"))
        .bearer_auth("A:u")
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(res.status().as_u16(), 500);
    // the server goes on
    let (st, _) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200);
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("rt.panics") && logged.contains("index out of bounds"),
        "logged with the procedure and the panic: {logged}"
    );
}

#[tokio::test]
async fn a_panicking_dispatcher_is_restarted_and_streams_reset() {
    let s = start().await;
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    sse.ready().await;
    // A bug reached from the dispatcher: here the hook applying other instances' changes.
    s.realtime.set_remote_apply(Arc::new(|_changes| {
        panic!("bug while applying remote changes")
    }));
    s.realtime
        .bus()
        .publish(BusMessage::Changes(RemoteChanges {
            origin: 42,
            changes: ChangeSet::tables(["rt_item"]),
            tenants: Vec::new(),
            requires_ack: false,
        }))
        .await
        .unwrap();
    let f = sse.next_event(LONG).await.expect("the stream is reset");
    assert_eq!(f.event.as_deref(), Some("reset"));
    assert_eq!(f.id, None, "no id: the client keeps its last one");
    assert_eq!(f.json()["eventId"], Value::Null);
    assert!(sse.next_within(SHORT).await.is_none(), "and then ends");
    assert_eq!(s.realtime.dispatcher_restarts(), 1);
    // delivery goes on through the restarted dispatcher
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    sse.ready().await;
    let (_, m) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    let f = sse.next_event(LONG).await.expect("event after the restart");
    assert_eq!(f.event.as_deref(), Some("invalidate"));
    assert_eq!(f.json()["eventId"], m["eventId"]);
}

// ------------------------------------------------------------ item 9: Redis down

#[cfg(feature = "redis")]
mod redis_down {
    use super::*;
    use reactive_runtime::cache::redis::{RedisConfig, RedisStore};
    use reactive_runtime::engine::Engine;
    use reactive_runtime::realtime::{RedisBus, RedisLog, Timeouts};

    /// A `redis-server` of this test's own, on a free port, without persistence.
    struct OwnRedis {
        child: std::process::Child,
        port: u16,
    }

    impl OwnRedis {
        fn start() -> Option<OwnRedis> {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let child = match std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
            {
                Ok(c) => c,
                Err(e) if std::env::var_os("CI").is_some() => panic!("redis-server: {e}"),
                Err(e) => {
                    eprintln!("skipped: cannot start redis-server: {e}");
                    return None;
                }
            };
            let redis = OwnRedis { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !redis.answers() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(redis)
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        fn answers(&self) -> bool {
            use std::io::Read;
            let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 7];
            s.write_all(b"PING\r\n").is_ok()
                && s.read_exact(&mut buf).is_ok()
                && &buf == b"+PONG\r\n"
        }

        fn signal(&self, sig: &str) {
            let ok = std::process::Command::new("kill")
                .args([sig, &self.child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {sig}");
        }

        /// Stops the server without closing its sockets: every command hangs, as with
        /// a paused or overloaded Redis (the worst case for timeouts).
        fn pause(&self) {
            self.signal("-STOP");
        }

        fn resume(&self) {
            self.signal("-CONT");
        }
    }

    impl Drop for OwnRedis {
        fn drop(&mut self) {
            self.signal("-CONT");
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn get_by_org(s: &Server) -> (u16, Value, Duration) {
        let t = Instant::now();
        let res = s
            .http
            .get(s.url("/rpc/rt.items.byOrg"))
            .bearer_auth("A:u")
            .query(&[("input", json!({"org": "A"}).to_string())])
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null), t.elapsed())
    }

    fn titles(body: &Value) -> Vec<String> {
        body["data"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r["title"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What any one request may take while Redis hangs: a few operation timeouts
    /// (500 ms here), never the length of the outage.
    const BOUND: Duration = Duration::from_secs(3);

    #[tokio::test]
    async fn reads_and_writes_keep_working_while_redis_is_down() {
        let Some(redis) = OwnRedis::start() else {
            return;
        };
        let url = redis.url();
        let fast = Duration::from_millis(500);
        let mut cache = RedisConfig::new(&url).prefix("failures:");
        cache.response_timeout = fast;
        cache.connection_timeout = fast;
        let store = RedisStore::new(cache).expect("store");
        let db = memory_db().await.with_engine(Engine::new(Arc::new(store)));
        let realtime = Realtime::with_timeouts(
            Arc::new(RedisLog::connect(&url, "failures", 100).await.expect("log")),
            Arc::new(RedisBus::connect(&url, "failures").await.expect("bus")),
            HubConfig::default(),
            Timeouts {
                operation: fast,
                retry_after: Duration::from_secs(2),
            },
        );
        let s = serve(db, |c| c.realtime(realtime)).await;

        // Healthy: real ids.
        let (st, m1) = s
            .post("A:u", "rt.items.create", json!({"org": "A", "title": "1"}))
            .await;
        assert_eq!(st, 200);
        let e1 = m1["eventId"].as_str().unwrap().to_owned();
        assert!(e1.parse::<u64>().unwrap() > 1_000_000_000_000_000, "{e1}");
        let (st, q, _) = get_by_org(&s).await;
        assert_eq!((st, titles(&q)), (200, vec!["1".to_owned()]));
        let mut live = s.events("A:u", &[("subscribe", A_KEY)], None).await;
        live.ready().await;

        redis.pause();

        // A query is computed from the database, with the unknown watermark.
        let (st, q, took) = get_by_org(&s).await;
        assert_eq!(st, 200, "{q}");
        assert_eq!(q["eventId"], "0");
        assert_eq!(titles(&q), vec!["1".to_owned()]);
        assert!(took < BOUND, "query took {took:?}");
        // The next read does not wait for Redis again: the log and the cache store that
        // just failed are not tried for a while.
        let errors = s.db.stats().engine.store_errors;
        let (st, q, took) = get_by_org(&s).await;
        assert_eq!((st, &q["eventId"]), (200, &json!("0")), "{q}");
        assert_eq!(s.db.stats().engine.store_errors, errors, "store not tried");
        assert!(took < fast, "the second query waited for Redis: {took:?}");
        // A write commits and says so; the live stream of this instance is reset.
        let t = Instant::now();
        let (st, m2) = s
            .post("A:u", "rt.items.create", json!({"org": "A", "title": "2"}))
            .await;
        assert_eq!(st, 200, "a committed write reports success: {m2}");
        assert_eq!(m2["eventId"], "0");
        assert!(t.elapsed() < BOUND, "write took {:?}", t.elapsed());
        let f = live.next_event(LONG).await.expect("reset");
        assert_eq!(f.event.as_deref(), Some("reset"));
        assert_eq!(f.json()["eventId"], Value::Null);
        // The write is seen (the cache is bypassed, not served stale).
        let (st, q, took) = get_by_org(&s).await;
        assert_eq!(
            (st, titles(&q)),
            (200, vec!["1".to_owned(), "2".to_owned()])
        );
        assert!(took < BOUND, "query took {took:?}");
        // Polls: nothing known yet, from the same id; or the unknown id.
        let (st, p) = poll(&s, &[("since", &e1)]).await;
        assert_eq!(st, 200, "{p}");
        assert_eq!(
            p,
            json!({"eventId": e1, "reset": false, "more": false, "events": []})
        );
        let (st, p) = poll(&s, &[]).await;
        assert_eq!((st, &p["eventId"]), (200, &json!("0")), "{p}");
        // A new stream opens; what it missed cannot be replayed: reset without id.
        let t = Instant::now();
        let mut fresh = s.events("A:u", &[("subscribe", A_KEY)], Some(&e1)).await;
        assert_eq!(fresh.ready().await["eventId"], "0");
        let f = fresh.next_event(LONG).await.expect("reset");
        assert_eq!((f.event.as_deref(), f.id.as_deref()), (Some("reset"), None));
        assert!(t.elapsed() < BOUND, "stream took {:?}", t.elapsed());

        redis.resume();

        // Once Redis answers, the lost event is repaired: every client of the tenant
        // hears that everything changed.
        let f = live.next_event(LONG).await.expect("repair event");
        assert_eq!(f.event.as_deref(), Some("invalidate"), "{f:?}");
        assert_eq!(f.json()["tables"], json!(["*"]));
        assert_eq!(f.json()["queries"], json!([A_KEY]));
        let repaired = f.id.clone().unwrap();
        assert_eq!(
            fresh.next_event(LONG).await.expect("repair event").id,
            Some(repaired.clone())
        );
        // Data read with the unknown watermark is revalidated: replaying from it resets.
        let (_, p) = poll(&s, &[("since", "0")]).await;
        assert_eq!(p["reset"], true, "{p}");
        assert_eq!(p["eventId"], repaired.as_str());
        // A poller that was behind replays the repair event.
        let (_, p) = poll(&s, &[("since", &e1)]).await;
        assert_eq!(p["events"][0]["eventId"], repaired.as_str(), "{p}");
        // And the API is back to real ids.
        let deadline = Instant::now() + LONG;
        loop {
            let (st, q, _) = get_by_org(&s).await;
            assert_eq!(st, 200);
            if q["eventId"] == repaired.as_str() {
                break;
            }
            assert!(Instant::now() < deadline, "watermark still degraded: {q}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
