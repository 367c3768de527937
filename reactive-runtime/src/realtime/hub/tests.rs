//! Unit tests of the hub: delivery, queue bounds, stream caps, tokens, fan-out.

use super::*;
use crate::realtime::EventRecord;
use crate::types::{ChangeSet, Conjunction, KeyValue, ReadSet, RowChange};
use reactive_codegen::sql::Dialect;

/// A hub without the per-principal cap (these tests open hundreds of streams).
fn test_hub() -> Hub {
    Hub::new(HubConfig {
        max_streams_per_principal: usize::MAX,
        ..HubConfig::default()
    })
}

trait Reg {
    fn reg(&self, tenant: &str, subject: &str, sub: Subscription) -> ConnGuard;
}

impl Reg for Hub {
    fn reg(&self, tenant: &str, subject: &str, sub: Subscription) -> ConnGuard {
        self.register(tenant, subject, sub).expect("under the cap")
    }
}

fn k(s: &str) -> KeyValue {
    KeyValue::from_str(s, Dialect::Postgres)
}

/// A stream whose queue overflows is counted once (and replaced by a reset); the
/// open-streams gauge follows registration and drop. Recorded with a recorder local
/// to this thread, so other tests' metrics don't mix in.
#[cfg(feature = "metrics")]
#[test]
fn a_queue_overflow_and_the_open_streams_are_recorded() {
    use crate::observe::metrics as m;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let mut totals = std::collections::HashMap::<String, f64>::new();
    // The snapshot holds what changed since the last one: summed into totals.
    let mut total = |name: &str| {
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let delta = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(_) => continue,
            };
            *totals.entry(key.key().name().to_owned()).or_default() += delta;
        }
        totals.get(name).copied().unwrap_or(0.0)
    };
    ::metrics::with_local_recorder(&recorder, || {
        let hub = Hub::new(HubConfig {
            queue_capacity: 2,
            ..HubConfig::default()
        });
        let guard = hub.register("T", "u", Subscription::all()).unwrap();
        assert_eq!(total(m::STREAMS_OPEN), 1.0);
        for _ in 0..3 {
            guard
                .conn()
                .push(Outgoing::Raw(Bytes::from_static(b": ping\n\n")));
        }
        assert_eq!(total(m::QUEUE_OVERFLOWS), 1.0);
        drop(guard);
        assert_eq!(total(m::STREAMS_OPEN), 0.0);
    });
}

fn channel_reads(ch: &str) -> ReadSet {
    ReadSet::empty().with("message", Conjunction::whole().with("channel_id", k(ch)))
}

fn channel_sub(ch: &str) -> Subscription {
    let text = format!(r#"messages.list:{{"channelId":"{ch}"}}"#);
    Subscription::from_parts(vec![(&text, Some(&text), channel_reads(ch))])
}

fn event(id: u64, changes: ChangeSet, invalidated: Vec<String>) -> Arc<Event> {
    Arc::new(Event::new(EventRecord {
        tenant: "t".into(),
        id: EventId(id),
        changes,
        requires_ack: false,
        invalidated,
        show_keys: false,
    }))
}

fn queued(conn: &Conn) -> Vec<Bytes> {
    conn.lock()
        .queue
        .iter()
        .map(|o| match o {
            Outgoing::Event { tail, .. } => tail.clone(),
            Outgoing::Raw(b) => b.clone(),
        })
        .collect()
}

/// A connection that never reads holds at most `queue_bytes`: the overflowing
/// queue is replaced by a `reset` with the newest dropped id.
#[test]
fn a_stream_that_never_reads_stays_under_its_byte_bound_and_gets_a_reset() {
    let hub = Hub::new(HubConfig {
        queue_bytes: 16 << 10,
        ..HubConfig::default()
    });
    let idle = hub.reg("t", "s", Subscription::all());
    // Frames of ~1 KiB each: a connection whose one entry is long has a long tail.
    let long = format!("q:{{\"k\":\"{}\"}}", "x".repeat(1000));
    let sub = Subscription::from_parts(vec![(&long, Some(&long), ReadSet::tables(["message"]))]);
    let big = hub.reg("t", "s2", sub);
    for id in 1..=200 {
        hub.deliver(&event(id, ChangeSet::tables(["message"]), vec![]));
        assert!(big.conn().queued_bytes() <= 16 << 10);
    }
    // 200 frames of ~1 KiB: the queue overflowed, and restarted from a reset.
    let q = queued(big.conn());
    let first = String::from_utf8(q[0].to_vec()).unwrap();
    assert!(first.starts_with("id: "), "{first}");
    assert!(first.contains("event: reset"), "{first}");
    assert!(q.len() < 20, "{} frames", q.len());
    // The reset names the newest dropped event; what follows is newer.
    let reset_id: u64 = first[4..first.find('\n').unwrap()].parse().unwrap();
    assert_eq!(reset_id + q.len() as u64 - 1, 200);
    // Small frames: the frame bound (256) applies the same way.
    assert!(queued(idle.conn()).len() <= 256);
    assert!(idle.conn().queued_bytes() <= 16 << 10);
}

/// A principal holds at most `max_streams_per_principal` streams; others are not
/// affected, and closing one frees its place.
#[test]
fn streams_per_principal_are_capped() {
    let hub = Hub::new(HubConfig {
        max_streams_per_principal: 2,
        ..HubConfig::default()
    });
    let a = hub.reg("t", "u1", Subscription::all());
    let _b = hub.reg("t", "u1", Subscription::all());
    assert_eq!(
        hub.register("t", "u1", Subscription::all()).err(),
        Some(TooManyStreams { limit: 2 })
    );
    let _other_subject = hub.reg("t", "u2", Subscription::all());
    let _other_tenant = hub.reg("t2", "u1", Subscription::all());
    drop(a);
    let _c = hub.reg("t", "u1", Subscription::all());
    assert_eq!(hub.connections(), 4);
    // a refused registration in a new tenant leaves no empty tenant behind
    let none = Hub::new(HubConfig {
        max_streams_per_principal: 0,
        ..HubConfig::default()
    });
    assert!(none.register("x", "u", Subscription::all()).is_err());
    assert!(none.tenant("x").is_none());
}

/// 100 channels × 3 connections; an event on channel 7 visits only channel 7's.
#[test]
fn connections_with_the_same_tail_share_one_joined_frame() {
    let hub = test_hub();
    let same: Vec<_> = (0..3)
        .map(|_| hub.reg("t", "s", channel_sub("c1")))
        .collect();
    let other = hub.reg("t", "s", channel_sub("c2"));
    let changes = ChangeSet::empty().with_row("message", RowChange::whole());
    let ev = event(1, changes, vec![]);
    hub.deliver(&ev);
    let frame = |g: &ConnGuard| match g.conn().lock().queue.front() {
        Some(Outgoing::Event { tail, frame, .. }) => (tail.clone(), frame.clone()),
        other => panic!("no event queued: {other:?}"),
    };
    let (tail, first) = frame(&same[0]);
    assert_eq!(&first[..], [&ev.frame_head()[..], &tail[..]].concat());
    for g in &same[1..] {
        assert_eq!(frame(g).1.as_ptr(), first.as_ptr(), "one frame, shared");
    }
    let (other_tail, other_frame) = frame(&other);
    assert_ne!(other_tail, tail);
    assert_eq!(
        &other_frame[..],
        [&ev.frame_head()[..], &other_tail[..]].concat()
    );
}

#[test]
fn event_for_one_channel_visits_only_its_connections() {
    let hub = test_hub();
    let mut guards = Vec::new();
    for c in 0..100 {
        for _ in 0..3 {
            guards.push((c, hub.reg("t", "s", channel_sub(&format!("c{c}")))));
        }
    }
    let changes =
        ChangeSet::empty().with_row("message", RowChange::whole().with("channel_id", k("c7")));
    let visited = hub.deliver_counting(&event(1, changes, vec![]), false);
    assert_eq!(visited, 3, "only channel 7's connections are visited");
    for (c, g) in &guards {
        let q = queued(g.conn());
        if *c == 7 {
            assert_eq!(q.len(), 1);
            assert_eq!(
                &q[0][..],
                &br#""messages.list:{\"channelId\":\"c7\"}"]}

"#[..]
            );
        } else {
            assert!(q.is_empty(), "channel {c} got an event for channel 7");
        }
    }
    // Another tenant's event reaches nobody here.
    let other = Arc::new(Event::new(EventRecord {
        tenant: "u".into(),
        id: EventId(2),
        changes: ChangeSet::tables(["message"]),
        requires_ack: false,
        invalidated: vec![],
        show_keys: false,
    }));
    assert_eq!(hub.deliver_counting(&other, false), 0);
}

/// A change that does not say which channel (whole table, or a row without
/// `channel_id`) reaches every connection on the table; `*` and whole-procedure
/// subscriptions get every matching event; other tables' subscribers get nothing.
#[test]
fn whole_table_change_reaches_everyone_on_the_table() {
    let hub = test_hub();
    let chans: Vec<_> = (0..50)
        .map(|c| hub.reg("t", "s", channel_sub(&format!("c{c}"))))
        .collect();
    let all = hub.reg("t", "s", Subscription::all());
    let proc_ = hub.reg(
        "t",
        "s",
        Subscription::from_parts(vec![("messages.list", None, ReadSet::tables(["message"]))]),
    );
    let other_table = hub.reg(
        "t",
        "s",
        Subscription::from_parts(vec![("agents.list", None, ReadSet::tables(["agent"]))]),
    );
    assert_eq!(
        hub.deliver_counting(&event(1, ChangeSet::tables(["message"]), vec![]), false),
        52
    );
    let row_without_channel =
        ChangeSet::empty().with_row("message", RowChange::whole().with("id", k("m1")));
    assert_eq!(
        hub.deliver_counting(&event(2, row_without_channel, vec![]), false),
        52
    );
    for g in chans.iter().chain([&all, &proc_]) {
        assert_eq!(queued(g.conn()).len(), 2);
    }
    assert_eq!(queued(&proc_.conn)[0][..], b"\"messages.list\"]}\n\n"[..]);
    assert!(queued(other_table.conn()).is_empty());
    // An unknown change reaches everyone.
    hub.deliver(&event(3, ChangeSet::everything(), vec![]));
    assert_eq!(queued(other_table.conn()).len(), 1);
    assert_eq!(queued(chans[0].conn()).len(), 3);
}

/// A query key named in `invalidated` is delivered even when the changes alone would
/// not match; a connection with several matching entries gets them all in one tail.
#[test]
fn invalidated_keys_and_multi_entry_tails() {
    let hub = test_hub();
    let a = hub.reg("t", "s", channel_sub("c1"));
    let multi = hub.reg(
        "t",
        "s",
        Subscription::from_parts(vec![
            ("q1", Some("q1:{}"), channel_reads("c2")),
            ("q2", Some("q2:{}"), ReadSet::empty()),
            ("q3", Some("q3:{}"), channel_reads("c9")),
        ]),
    );
    let changes =
        ChangeSet::empty().with_row("message", RowChange::whole().with("channel_id", k("c2")));
    assert_eq!(
        hub.deliver_counting(&event(1, changes, vec!["q2:{}".into()]), false),
        1
    );
    assert!(queued(a.conn()).is_empty());
    assert_eq!(queued(multi.conn())[0][..], b"\"q1\",\"q2\"]}\n\n"[..]);
    // Unregistering empties the tenant and its index.
    drop(a);
    drop(multi);
    assert_eq!(hub.connections(), 0);
    assert!(hub.tenant("t").is_none());
}

/// Tokens are 128 random bits: distinct, and nothing in one tells the next (the old
/// ones were a per-process nonce and a counter).
#[test]
fn connection_tokens_are_random() {
    let hub = Hub::new(HubConfig::default());
    let guards: Vec<_> = (0..64)
        .map(|i| {
            hub.register("t", &format!("s{i}"), Subscription::all())
                .expect("one stream per user")
        })
        .collect();
    let tokens: Vec<&str> = guards.iter().map(|g| g.conn().token()).collect();
    for t in &tokens {
        assert_eq!(t.len(), 32, "{t}");
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()), "{t}");
    }
    let prefixes: std::collections::HashSet<&str> = tokens.iter().map(|t| &t[..8]).collect();
    assert_eq!(prefixes.len(), tokens.len(), "no shared prefix: {tokens:?}");
}

/// The allocation-free `ReadSet::is_affected_by` agrees with `ReadSet::reasons`.
#[test]
fn is_affected_by_agrees_with_reasons() {
    let reads = [
        ReadSet::empty(),
        ReadSet::everything(),
        ReadSet::tables(["message"]),
        channel_reads("c1"),
        ReadSet::empty().with(
            "message",
            Conjunction::whole()
                .with_values("channel_id", [k("c1"), k("c2")])
                .with("author", k("u1")),
        ),
    ];
    let changes = [
        ChangeSet::empty(),
        ChangeSet::everything(),
        ChangeSet::tables(["message"]),
        ChangeSet::tables(["agent"]),
        ChangeSet::empty().with_row("message", RowChange::whole().with("channel_id", k("c1"))),
        ChangeSet::empty().with_row("message", RowChange::whole().with("channel_id", k("c3"))),
        ChangeSet::empty().with_row(
            "message",
            RowChange::whole()
                .with("channel_id", k("c2"))
                .with("author", k("u2")),
        ),
        ChangeSet::empty().with_row("message", RowChange::whole().with("author", k("u1"))),
    ];
    let mut hits = 0;
    for r in &reads {
        for c in &changes {
            let fast = r.is_affected_by(c);
            assert_eq!(fast, !r.reasons(c, 1).is_empty(), "{r:?} / {c:?}");
            hits += usize::from(fast);
        }
    }
    assert!(hits > 5 && hits < reads.len() * changes.len());
}

/// Candidates are always a superset of what the full matcher accepts.
#[test]
fn index_never_misses_a_match() {
    let hub = test_hub();
    let subs = vec![
        channel_sub("c1"),
        Subscription::from_parts(vec![(
            "x",
            Some("x:1"),
            ReadSet::empty().with(
                "message",
                Conjunction::whole()
                    .with_values("channel_id", [k("c1"), k("c2")])
                    .with("author", k("u1")),
            ),
        )]),
        Subscription::from_parts(vec![("y", Some("y:1"), ReadSet::everything())]),
        Subscription::from_parts(vec![(
            "z",
            Some("z:1"),
            ReadSet::empty()
                .with("agent", Conjunction::whole().with("id", k("a1")))
                .with("message", Conjunction::whole().with("author", k("u2"))),
        )]),
    ];
    let guards: Vec<_> = subs.into_iter().map(|s| hub.reg("t", "s", s)).collect();
    let rows = [
        RowChange::whole(),
        RowChange::whole().with("channel_id", k("c1")),
        RowChange::whole().with("channel_id", k("c2")),
        RowChange::whole().with("author", k("u1")),
        RowChange::whole().with("author", k("u2")),
        RowChange::whole()
            .with("channel_id", k("c2"))
            .with("author", k("u2")),
        RowChange::whole().with("id", k("a1")),
    ];
    let mut id = 0;
    for table in ["message", "agent", "other"] {
        for row in &rows {
            id += 1;
            let ev = event(id, ChangeSet::empty().with_row(table, row.clone()), vec![]);
            let t = hub.tenant("t").unwrap();
            let t = t.read().unwrap();
            let mut cands = Vec::new();
            t.index.candidates(ev.record(), &mut cands);
            for g in &guards {
                let c = g.conn();
                if c.subscription.match_tail(&ev).is_some() {
                    assert!(
                        cands.contains(&c.id),
                        "missed conn {} for {table} {row:?}",
                        c.id
                    );
                }
                assert_eq!(
                    c.subscription.match_tail(&ev).map(|b| b.to_vec()),
                    c.subscription
                        .matches(&ev)
                        .map(|l| crate::types::frame_tail(&l).to_vec())
                );
            }
        }
    }
}

/// What a test's push computation does, and what it saw.
#[derive(Default)]
struct PushProbe {
    /// Computations started.
    runs: std::sync::atomic::AtomicUsize,
    /// Held closed until the test opens it (when set).
    gate: Option<Arc<tokio::sync::Semaphore>>,
    /// The watermark results claim (default: the newest event id delivered so far).
    watermark: Mutex<Option<EventId>>,
    /// The value's JSON.
    value: Mutex<String>,
    panics: bool,
    /// The newest event id delivered (what a log head would say).
    head: AtomicU64,
}

fn probe_compute(probe: &Arc<PushProbe>) -> PushCompute {
    let probe = probe.clone();
    Arc::new(move |_req: PushRequest| {
        let probe = probe.clone();
        Box::pin(async move {
            probe.runs.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &probe.gate {
                gate.acquire().await.unwrap().forget();
            }
            if probe.panics {
                panic!("handler bug");
            }
            let watermark = probe
                .watermark
                .lock()
                .unwrap()
                .unwrap_or(EventId(probe.head.load(Ordering::SeqCst)));
            Some(Pushed {
                bytes: Bytes::from(probe.value.lock().unwrap().clone()),
                watermark,
            })
        })
    })
}

fn push_hub(probe: &Arc<PushProbe>, config: HubConfig) -> Hub {
    let hub = Hub::new(config);
    hub.set_push(probe_compute(probe));
    hub
}

fn pushed_sub(ch: &str) -> Subscription {
    let text = format!(r#"messages.list:{{"channelId":"{ch}"}}"#);
    Subscription::from_parts_pushed(vec![(&text, Some(&text), channel_reads(ch))])
}

fn channel_write(ch: &str) -> ChangeSet {
    ChangeSet::empty().with_row("message", RowChange::whole().with("channel_id", k(ch)))
}

fn deliver_at(hub: &Hub, probe: &PushProbe, id: u64, changes: ChangeSet) {
    probe.head.store(id, Ordering::SeqCst);
    hub.deliver(&event(id, changes, vec![]));
}

/// The frames queued for `conn`, each as written: an event's `results` waited for
/// and joined (as the SSE writer does, without its per-stream deduplication).
async fn written(conn: &Conn) -> Vec<String> {
    let items: Vec<Outgoing> = conn.lock().queue.iter().cloned().collect();
    let mut out = Vec::new();
    for item in items {
        let bytes = match item {
            Outgoing::Event { frame, results, .. } => {
                let mut values = Vec::new();
                for slot in results.iter().flatten() {
                    let value =
                        tokio::time::timeout(std::time::Duration::from_secs(5), slot.wait())
                            .await
                            .expect("a round ends");
                    if let Some(v) = value {
                        values.push((slot.key.clone(), v.clone()));
                    }
                }
                match values.is_empty() {
                    true => frame.to_vec(),
                    false => with_results(&frame, &values).concat(),
                }
            }
            Outgoing::Raw(b) => b.to_vec(),
        };
        out.push(String::from_utf8(bytes).unwrap());
    }
    out
}

/// The `results` of a written event frame.
fn results_of(frame: &str) -> Option<serde_json::Value> {
    let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
    let v: serde_json::Value = serde_json::from_str(data).unwrap();
    v.get("results").cloned()
}

const C1: &str = r#"messages.list:{"channelId":"c1"}"#;

/// A live event carries the new value of a pushed key in `results`, computed once for
/// every connection holding the key (one shared slot); a connection of another key
/// gets neither the event nor a computation.
#[tokio::test]
async fn a_pushed_key_gets_its_result_computed_once_for_all_its_connections() {
    let probe = Arc::new(PushProbe::default());
    *probe.value.lock().unwrap() = r#"[{"id":1,"text":"hi"}]"#.into();
    let hub = push_hub(&probe, HubConfig::default());
    let a = hub.reg("t", "alice", pushed_sub("c1"));
    let b = hub.reg("t", "bob", pushed_sub("c1"));
    let other = hub.reg("t", "carol", pushed_sub("c2"));
    deliver_at(&hub, &probe, 10, channel_write("c1"));
    for conn in [a.conn(), b.conn()] {
        let frames = written(conn).await;
        assert_eq!(frames.len(), 1);
        assert!(
            frames[0].starts_with("id: 10\nevent: invalidate\n"),
            "{frames:?}"
        );
        assert_eq!(
            results_of(&frames[0]),
            Some(serde_json::json!({C1: {"eventId": "10", "data": [{"id": 1, "text": "hi"}]}}))
        );
    }
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
    assert!(queued(other.conn()).is_empty());
    let slot = |conn: &Conn| match &conn.lock().queue[0] {
        Outgoing::Event { results, .. } => results.as_ref().unwrap()[0].clone(),
        _ => unreachable!(),
    };
    assert!(Arc::ptr_eq(&slot(a.conn()), &slot(b.conn())));
}

/// A burst of writes while a computation runs costs one more computation, not one per
/// write: the events after the first share one round, whose value reflects the last.
#[tokio::test]
async fn a_burst_of_writes_runs_one_computation_in_flight_and_one_pending() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let probe = Arc::new(PushProbe {
        gate: Some(gate.clone()),
        ..PushProbe::default()
    });
    *probe.value.lock().unwrap() = "1".into();
    let hub = push_hub(&probe, HubConfig::default());
    let a = hub.reg("t", "alice", pushed_sub("c1"));
    deliver_at(&hub, &probe, 1, channel_write("c1"));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for id in 2..=20 {
        deliver_at(&hub, &probe, id, channel_write("c1"));
    }
    gate.add_permits(100);
    let frames = written(a.conn()).await;
    assert_eq!(frames.len(), 20);
    assert_eq!(probe.runs.load(Ordering::SeqCst), 2);
    let watermark = |f: &str| results_of(f).unwrap()[C1]["eventId"].clone();
    // (The first round's value is computed once the gate opens: it reflects them all too.)
    assert!(results_of(&frames[0]).is_some());
    for f in &frames[1..] {
        assert_eq!(watermark(f), "20", "{f}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(hub.inner.pusher.get().unwrap().running(), 0);
}

/// A result over the size limit, one whose watermark stays older than the event, and
/// a computation that panics are each left out (the client refetches); none leaves
/// its key stuck.
#[tokio::test]
async fn results_that_cannot_be_pushed_are_left_out() {
    // Too large.
    let probe = Arc::new(PushProbe::default());
    *probe.value.lock().unwrap() = format!("\"{}\"", "x".repeat(200));
    let hub = push_hub(
        &probe,
        HubConfig {
            push_max_bytes: 100,
            ..HubConfig::default()
        },
    );
    let a = hub.reg("t", "alice", pushed_sub("c1"));
    deliver_at(&hub, &probe, 5, channel_write("c1"));
    let frames = written(a.conn()).await;
    assert_eq!(results_of(&frames[0]), None, "{frames:?}");
    assert!(
        frames[0].contains(C1.replace('"', "\\\"").as_str()),
        "still invalidated"
    );
    // Stale: computed twice (a joined computation may predate the event), then left out.
    let probe = Arc::new(PushProbe::default());
    *probe.value.lock().unwrap() = "1".into();
    *probe.watermark.lock().unwrap() = Some(EventId(4));
    let hub = push_hub(&probe, HubConfig::default());
    let a = hub.reg("t", "alice", pushed_sub("c1"));
    deliver_at(&hub, &probe, 5, channel_write("c1"));
    assert_eq!(results_of(&written(a.conn()).await[0]), None);
    assert_eq!(probe.runs.load(Ordering::SeqCst), 2);
    // Panics.
    let probe = Arc::new(PushProbe {
        panics: true,
        ..PushProbe::default()
    });
    let hub = push_hub(&probe, HubConfig::default());
    let a = hub.reg("t", "alice", pushed_sub("c1"));
    deliver_at(&hub, &probe, 5, channel_write("c1"));
    assert_eq!(results_of(&written(a.conn()).await[0]), None);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(hub.inner.pusher.get().unwrap().running(), 0);
}

/// Without a pusher, and for procedure-name entries, events carry no results and
/// nothing is computed.
#[tokio::test]
async fn only_live_events_to_pushed_query_keys_carry_results() {
    let probe = Arc::new(PushProbe::default());
    let plain = test_hub();
    let a = plain.reg("t", "alice", pushed_sub("c1"));
    plain.deliver(&event(1, channel_write("c1"), vec![]));
    assert_eq!(results_of(&written(a.conn()).await[0]), None);
    let hub = push_hub(&probe, HubConfig::default());
    let whole = Subscription::from_parts_pushed(vec![(
        "messages.list",
        None,
        ReadSet::tables(["message"]),
    )]);
    let b = hub.reg("t", "bob", whole);
    deliver_at(&hub, &probe, 2, channel_write("c1"));
    let frames = written(b.conn()).await;
    assert_eq!(frames.len(), 1);
    assert_eq!(results_of(&frames[0]), None);
    assert_eq!(probe.runs.load(Ordering::SeqCst), 0);
}

/// With `push` off, a pushed query key's events carry no results and nothing is
/// computed: its clients refetch, as for a plain query.
#[tokio::test]
async fn push_off_leaves_pushed_keys_to_refetch() {
    let probe = Arc::new(PushProbe {
        value: Mutex::new("[1]".into()),
        ..PushProbe::default()
    });
    let hub = push_hub(
        &probe,
        HubConfig {
            push: false,
            ..HubConfig::default()
        },
    );
    let a = hub.reg("t", "alice", pushed_sub("c1"));
    deliver_at(&hub, &probe, 1, channel_write("c1"));
    let frames = written(a.conn()).await;
    assert_eq!(frames.len(), 1);
    assert!(frames[0].contains("messages.list"), "{}", frames[0]);
    assert_eq!(results_of(&frames[0]), None);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(probe.runs.load(Ordering::SeqCst), 0);
    assert!(hub.inner.pusher.get().is_none());
}
