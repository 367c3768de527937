//! The watermark (`eventId`) a read answers with never claims more than its value
//! reflects, across instances. Forced interleavings: the leader of a
//! computation is held at a pause point inside its handler, not timed with sleeps.
//! Needs TEST_REDIS_URL.
#![cfg(feature = "redis")]

mod realtime_support;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use reactive_runtime::cache::redis::{RedisConfig, RedisStore};
use reactive_runtime::engine::Engine;
use reactive_runtime::realtime::{HubConfig, Realtime, RedisBus, RedisLog};
use reactive_runtime::registry::{FunctionDef, InputError, Prepared};
use reactive_runtime::{Error, ReactiveDb};
use realtime_support::*;
use serde_json::{Value, json};
use sqlx::Row;
use tokio::sync::oneshot;

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

// ---------------------------------------------------------------- a query that pauses

/// The pause point: the next computation of `rt.items.byOrgPaused` signals `reached`
/// after its read and waits for `release` before returning.
struct Pause {
    reached: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

static PAUSE: Mutex<Option<Pause>> = Mutex::new(None);

/// Arms the pause point; returns (reached, release).
fn arm() -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
    let (reached_tx, reached_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    *PAUSE.lock().unwrap() = Some(Pause {
        reached: reached_tx,
        release: release_rx,
    });
    (reached_rx, release_tx)
}

fn prepare_paused(input: Value) -> Result<Prepared, InputError> {
    let org = input
        .get("org")
        .and_then(Value::as_str)
        .ok_or_else(|| InputError {
            path: "org".into(),
            message: "missing field `org`".into(),
        })?
        .to_owned();
    Ok(Prepared {
        bindings: vec![json!(org)],
        run: Box::new(move |db| {
            let db: ReactiveDb<sqlx::Any> = *db.downcast().expect("ReactiveDb<Any>");
            Box::pin(async move {
                let rows = sqlx::query("SELECT id, org, title FROM rt_item WHERE org = $1")
                    .bind(org)
                    .fetch_all(&db)
                    .await?;
                let titles: Vec<String> = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>("title").unwrap_or_default())
                    .collect();
                let pause = PAUSE.lock().unwrap().take();
                if let Some(p) = pause {
                    let _ = p.reached.send(());
                    let _ = p.release.await;
                }
                serde_json::to_vec(&titles).map_err(Error::from)
            })
        }),
    })
}

static PAUSED_DEF: FunctionDef = FunctionDef::by_hand(
    concat!(
        r#"{"name":"rt.items.byOrgPaused","rust_name":"by_org_paused","kind":"query","requires_ack":false,"dialect":"sqlite","#,
        r#""bindings":[{"source":"input.org","path":["org"]}],"#,
        r#""dependencies":[{"table":"rt_item","keys":[{"column":"org","values":[{"binding":0}]}]}],"#,
        r#""invalidates":[],"statements":[{"sql":"SELECT id, org, title FROM rt_item WHERE org = $1","analysis":"#,
        r#"{"operation":"select","reads":[{"table":"rt_item","filter":{"rows":"keys","keys":[{"column":"org","values":[{"param":{"index":1}}]}]}}],"writes":[],"returning":false,"unknown":null}"#,
        r#","params":[0]}],"calls":[]}"#
    ),
    prepare_paused,
);

fn all_functions() -> Vec<&'static FunctionDef> {
    let mut f = functions();
    f.push(&PAUSED_DEF);
    f
}

async fn get_paused(s: &Server) -> Value {
    s.http
        .get(s.url("/rpc/rt.items.byOrgPaused"))
        .bearer_auth("A:u")
        .query(&[("input", json!({"org": "A"}).to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn event_id(v: &Value) -> u64 {
    v["eventId"].as_str().unwrap().parse().unwrap()
}

/// Waits until `db`'s engine counts `n` coalesced waits (the joiner is parked on the
/// leader): a condition, not a guess at timing.
async fn joined(db: &ReactiveDb<sqlx::Any>, n: u64) {
    let deadline = tokio::time::Instant::now() + LONG;
    while db.engine().stats().coalesced_waits < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second read never joined the first"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// A read on B joins B's computation that started before A's write; B has not yet
/// applied A's change set (its bus lags: here it is a bus of its own, so the change
/// set never arrives), and the leader's value is not stored (larger than the entry
/// limit), so neither B's ring nor the store's version check tells it apart from a
/// fresh value. The joiner's `eventId` must not claim A's write.
#[tokio::test]
async fn a_joined_read_does_not_claim_a_write_its_value_predates() {
    let Some(url) = redis_url() else { return };
    let prefix = unique("wm-join");
    let path = std::env::temp_dir().join(format!("{}.db", unique("wm-join")));
    let sqlite = format!("sqlite://{}?mode=rwc", path.display());
    let db_a = ReactiveDb::connect(&sqlite).await.expect("sqlite a");
    sqlx::query("CREATE TABLE rt_item (id INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, title TEXT NOT NULL)")
        .execute(db_a.pool())
        .await
        .expect("create");
    let db_b = ReactiveDb::connect(&sqlite).await.expect("sqlite b");
    // One Redis cache store for both instances; every value is "too large", so a
    // computation's result is handed out without a version check.
    let store = || {
        let mut config = RedisConfig::new(&url).prefix(format!("{prefix}-cache"));
        config.max_entry_bytes = 1;
        Engine::new(Arc::new(RedisStore::new(config).expect("redis store")))
    };
    let db_a = db_a.with_engine(store());
    let db_b = db_b.with_engine(store());
    // One event log; B's bus is its own, so A's change set does not reach B's engine.
    let realtime = |bus: String| {
        let (url, prefix) = (url.clone(), prefix.clone());
        async move {
            Realtime::new(
                Arc::new(RedisLog::connect(&url, &prefix, 100).await.unwrap()),
                Arc::new(RedisBus::connect(&url, &bus).await.unwrap()),
                HubConfig::default(),
            )
        }
    };
    let rt_a = realtime(format!("{prefix}-bus-a")).await;
    let rt_b = realtime(format!("{prefix}-bus-b")).await;
    let a = serve(db_a, |c| c.realtime(rt_a).functions(all_functions())).await;
    let b = Arc::new(serve(db_b, |c| c.realtime(rt_b).functions(all_functions())).await);

    let (reached, release) = arm();
    let leader = tokio::spawn({
        let b = b.clone();
        async move { get_paused(&b).await }
    });
    reached.await.expect("the leader read and paused");
    // A writes after the leader's read: the leader's value predates it.
    let (status, written) = a
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(status, 200, "{written}");
    let write_id = event_id(&written);
    let joiner = tokio::spawn({
        let b = b.clone();
        async move { get_paused(&b).await }
    });
    joined(&b.db, 1).await;
    release.send(()).unwrap();
    let (leader, joiner) = (leader.await.unwrap(), joiner.await.unwrap());

    assert_eq!(leader["data"], json!([]), "{leader}");
    assert!(event_id(&leader) < write_id, "{leader} vs {write_id}");
    let reflects_write = joiner["data"] == json!(["x"]);
    assert!(
        reflects_write || event_id(&joiner) < write_id,
        "the joined read answers {} with eventId {} although its value predates event {write_id}: \
         its client would skip that event and keep the stale value",
        joiner["data"],
        joiner["eventId"],
    );
}
