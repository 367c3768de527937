//! The metrics of `reactive::observe::metrics`, read back from a recorder after a known
//! sequence of calls. One test in its own binary: the recorder is process-wide, and
//! exact values need nothing else recording meanwhile.
#![cfg(feature = "metrics")]

mod realtime_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use reactive_runtime::cache::CacheKey;
use reactive_runtime::cache::memory::MemoryStore;
use reactive_runtime::engine::{Engine, ReadSet};
use reactive_runtime::observe::metrics as m;
use reactive_runtime::realtime::{HubConfig, MemoryBus, MemoryLog, Realtime};
use realtime_support::*;
use serde_json::json;

const A_KEY: &str = r#"rt.items.byOrg:{"org":"A"}"#;

/// Totals since the recorder was installed. The debugging recorder hands out what
/// changed since its last snapshot (gauges included), so they are summed here.
struct Totals {
    snapshotter: Snapshotter,
    seen: HashMap<String, f64>,
}

impl Totals {
    fn install() -> Self {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        Self {
            snapshotter,
            seen: HashMap::new(),
        }
    }

    /// `name` or `name{label=value}`; 0 when never recorded.
    fn get(&mut self, metric: &str) -> f64 {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut name = key.name().to_owned();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            if !labels.is_empty() {
                name = format!("{name}{{{}}}", labels.join(","));
            }
            let delta = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(h) => h.len() as f64,
            };
            *self.seen.entry(name).or_default() += delta;
        }
        self.seen.get(metric).copied().unwrap_or(0.0)
    }
}

#[tokio::test]
async fn counters_match_a_known_sequence_of_calls() {
    let mut t = Totals::install();

    // --- cache and invalidation, through the router and an SSE stream.
    let realtime = Realtime::new(
        Arc::new(MemoryLog::new(64)),
        Arc::new(MemoryBus::default()),
        HubConfig {
            ack_retry_delays: vec![Duration::from_millis(100), Duration::from_millis(100)],
            ..HubConfig::default()
        },
    );
    let s = serve(memory_db().await, |c| c.realtime(realtime)).await;
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    sse.ready().await;
    assert_eq!(t.get(m::STREAMS_OPEN), 1.0);

    let by_org = json!({"org": "A"});
    assert_eq!(s.post("A:u", "rt.items.byOrg", by_org.clone()).await.0, 200);
    assert_eq!(s.post("A:u", "rt.items.byOrg", by_org.clone()).await.0, 200);
    assert_eq!(s.post("A:u", "rt.items.byOrg", by_org.clone()).await.0, 200);
    assert_eq!(t.get(m::CACHE_MISSES), 1.0);
    assert_eq!(t.get(m::CACHE_HITS), 2.0);
    assert_eq!(t.get(m::CACHE_ENTRIES), 1.0);
    assert!(t.get(m::CACHE_BYTES) > 0.0);

    // A write to org A's rows: the cached `byOrg` read of org A goes, by its key.
    let (st, _) = s
        .post(
            "A:u",
            "rt.items.createAcked",
            json!({"org": "A", "title": "x"}),
        )
        .await;
    assert_eq!(st, 200);
    let event = sse.next_event(LONG).await.expect("the write's event");
    assert_eq!(event.json()["requiresAck"], true);
    assert_eq!(t.get("reactive_invalidations_total{origin=local}"), 1.0);
    assert_eq!(t.get("reactive_cache_invalidated_total{reason=key}"), 1.0);
    assert_eq!(
        t.get("reactive_cache_invalidated_total{reason=unknown}"),
        0.0
    );
    assert_eq!(t.get(m::CACHE_ENTRIES), 0.0);
    assert_eq!(t.get(m::CACHE_BYTES), 0.0);
    assert_eq!(t.get(m::EVENTS_SENT), 1.0);

    // Never acknowledged: re-sent once per retry delay, then given up.
    sse.next_event(LONG).await.expect("re-send 1");
    sse.next_event(LONG).await.expect("re-send 2");
    assert_eq!(t.get(m::ACK_RETRIES), 2.0);
    assert_eq!(t.get(m::EVENTS_SENT), 1.0, "re-sends are not new events");

    drop(sse);
    let deadline = tokio::time::Instant::now() + LONG;
    while s.realtime.connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(t.get(m::STREAMS_OPEN), 0.0);

    // --- a computation two identical calls share: one miss, one coalesced wait.
    let engine = Engine::new(Arc::new(MemoryStore::default()));
    let key = CacheKey::new(Some("A"), "slow", "{}");
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let (engine, key) = (engine.clone(), key.clone());
        tokio::spawn(async move {
            engine
                .get_or_compute(&key, ReadSet::empty(), || async move {
                    released.await.ok();
                    Ok::<_, ()>((Bytes::from_static(b"1"), ReadSet::empty()))
                })
                .await
        })
    };
    while reactive_runtime::testing::in_flight(&engine) == 0 {
        tokio::task::yield_now().await;
    }
    let waiter = {
        let (engine, key) = (engine.clone(), key.clone());
        tokio::spawn(async move {
            engine
                .get_or_compute(&key, ReadSet::empty(), || async {
                    Ok::<_, ()>((Bytes::from_static(b"2"), ReadSet::empty()))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).unwrap();
    assert_eq!(leader.await.unwrap().unwrap().value, "1");
    assert_eq!(waiter.await.unwrap().unwrap().value, "1");
    assert_eq!(t.get(m::CACHE_MISSES), 2.0);
    assert_eq!(t.get(m::CACHE_COALESCED_WAITS), 1.0);
    assert_eq!(t.get(m::CACHE_HITS), 2.0);

    // A stream whose queue overflows is a unit test of the hub (`realtime::hub`).

    // --- the Redis bus's subscription (when Redis is there to test with).
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("TEST_REDIS_URL") {
        let prefix = format!("reactive-test:metrics-bus:{}", std::process::id());
        let bus = reactive_runtime::realtime::RedisBus::connect(&url, &prefix)
            .await
            .expect("a Redis bus");
        assert_eq!(t.get(m::BUS_SUBSCRIBED), 1.0);
        drop(bus);
        assert_eq!(t.get(m::BUS_SUBSCRIBED), 0.0);
    }
}
