//! SSE: delivery, selective delivery, tenant isolation, replay, reset, acks, polling,
//! credential expiry, heartbeats — all through a real HTTP client.

mod realtime_support;

use std::sync::Arc;
use std::time::Duration;

use reactive_runtime::realtime::{HubConfig, MemoryBus, MemoryLog, Realtime};
use reactive_runtime::router::RouterConfig;
use realtime_support::*;
use serde_json::{Value, json};

const A_KEY: &str = r#"rt.items.byOrg:{"org":"A"}"#;

#[tokio::test]
async fn a_mutation_reaches_a_subscribed_stream() {
    let s = start().await;
    let mut sse = s.events("A:u1", &[("subscribe", A_KEY)], None).await;
    let ready = sse.ready().await;
    assert!(ready["connectionId"].is_string());
    let (st, body) = s
        .post("A:u2", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200);
    let f = sse.next_event(LONG).await.expect("an invalidate event");
    assert_eq!(f.event.as_deref(), Some("invalidate"));
    let data = f.json();
    assert_eq!(f.id.as_deref(), data["eventId"].as_str());
    assert_eq!(
        data["eventId"], body["eventId"],
        "mutation watermark = its event"
    );
    assert_eq!(data["tables"], json!(["rt_item"]));
    assert!(data.get("keys").is_none(), "no key values by default");
    assert_eq!(data["requiresAck"], false);
    assert_eq!(
        data["queries"],
        json!([A_KEY]),
        "echoes the canonical entry"
    );
}

#[tokio::test]
async fn only_affected_subscriptions_receive_events() {
    let s = start().await;
    let x = r#"rt.items.byTitle:{"title":"x","org":"A"}"#;
    let y = r#"rt.items.byTitle:{"org":"A","title":"y"}"#;
    let mut sx = s.events("A:u", &[("subscribe", x)], None).await;
    let mut sy = s.events("A:u", &[("subscribe", y)], None).await;
    let mut both = s
        .events(
            "A:u",
            &[("subscribe", x), ("subscribe", "rt.items.byOrg")],
            None,
        )
        .await;
    sx.ready().await;
    sy.ready().await;
    both.ready().await;
    s.post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    // echoed in canonical form (keys sorted)
    let x_canonical = r#"rt.items.byTitle:{"org":"A","title":"x"}"#;
    let f = sx.next_event(LONG).await.expect("x is affected");
    assert_eq!(f.json()["queries"], json!([x_canonical]));
    let f = both.next_event(LONG).await.expect("both: x and procedure");
    assert_eq!(f.json()["queries"], json!([x_canonical, "rt.items.byOrg"]));
    assert!(
        sy.next_event(SHORT).await.is_none(),
        "title y is not affected by title x"
    );
    // and y gets its own
    s.post("A:u", "rt.items.create", json!({"org": "A", "title": "y"}))
        .await;
    assert_eq!(
        sy.next_event(LONG).await.expect("y").json()["queries"],
        json!([y])
    );
    assert!(sx.next_event(SHORT).await.is_none());
}

#[tokio::test]
async fn tenants_are_isolated() {
    let s = start().await;
    let mut b_all = s.events("B:u", &[("subscribe", "*")], None).await;
    let mut b_proc = s
        .events("B:u", &[("subscribe", "rt.items.byOrg")], None)
        .await;
    b_all.ready().await;
    b_proc.ready().await;
    s.post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert!(
        b_all.next_event(SHORT).await.is_none(),
        "B never sees A's event"
    );
    assert!(b_proc.next_event(SHORT).await.is_none());
    // subscribing to A's data with B's credentials is refused
    let res = s
        .http
        .get(s.url("/events"))
        .bearer_auth("B:u")
        .query(&[("subscribe", A_KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // polling as B shows nothing of A either
    let res: Value = s
        .http
        .get(s.url("/poll"))
        .bearer_auth("B:u")
        .query(&[("since", "0")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["events"], json!([]), "{res}");
}

#[tokio::test]
async fn bad_subscriptions_are_refused_with_paths() {
    let s = start().await;
    let get = |q: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let res = s
                .http
                .get(s.url("/events"))
                .bearer_auth("A:u")
                .query(&q)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (st, body) = get(vec![
        ("subscribe", "*".into()),
        ("subscribe", "rt.nope".into()),
    ])
    .await;
    assert_eq!(st, 404);
    assert_eq!(body["error"]["path"], "subscribe[1]");
    let (st, body) = get(vec![("subscribe", r#"rt.items.byOrg:{"org":5}"#.into())]).await;
    assert_eq!(st, 400);
    assert_eq!(body["error"]["path"], "subscribe[0].org");
    let (st, _) = get(vec![("subscribe", "rt.items.create".into())]).await;
    assert_eq!(st, 400, "mutations cannot be subscribed");
    let (st, _) = get(vec![("subscribe", "rt.items.byOrg:{".into())]).await;
    assert_eq!(st, 400);
    // (An unreadable `lastEventId` is not refused: it answers `reset`, tests/failures.rs.)
    let many: Vec<_> = (0..300).map(|_| ("subscribe", "*".to_string())).collect();
    let (st, _) = get(many).await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn reconnecting_with_last_event_id_replays_missed_events() {
    let s = start().await;
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    sse.ready().await;
    s.post("A:u", "rt.items.create", json!({"org": "A", "title": "1"}))
        .await;
    let first = sse.next_event(LONG).await.expect("first");
    let last_id = first.id.clone().unwrap();
    drop(sse);
    // missed while disconnected: one for A_KEY, one for another tenant
    let (_, m2) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "2"}))
        .await;
    s.post("B:u", "rt.items.create", json!({"org": "B", "title": "b"}))
        .await;
    let (_, m3) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "3"}))
        .await;
    // header form
    let mut sse = s
        .events("A:u", &[("subscribe", A_KEY)], Some(&last_id))
        .await;
    sse.ready().await;
    let e2 = sse.next_event(LONG).await.expect("replayed 2");
    let e3 = sse.next_event(LONG).await.expect("replayed 3");
    assert_eq!(e2.json()["eventId"], m2["eventId"]);
    assert_eq!(e3.json()["eventId"], m3["eventId"]);
    assert!(
        sse.next_event(SHORT).await.is_none(),
        "nothing else, no duplicates"
    );
    // query-parameter form, after a page reload; live events continue after replay
    let mut sse = s
        .events(
            "A:u",
            &[("subscribe", A_KEY), ("lastEventId", &last_id)],
            None,
        )
        .await;
    sse.ready().await;
    assert_eq!(
        sse.next_event(LONG).await.unwrap().json()["eventId"],
        m2["eventId"]
    );
    assert_eq!(
        sse.next_event(LONG).await.unwrap().json()["eventId"],
        m3["eventId"]
    );
    let (_, m4) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "4"}))
        .await;
    assert_eq!(
        sse.next_event(LONG).await.unwrap().json()["eventId"],
        m4["eventId"]
    );
}

fn small_log(cap: usize) -> Realtime {
    Realtime::new(
        Arc::new(MemoryLog::new(cap)),
        Arc::new(MemoryBus::default()),
        HubConfig::default(),
    )
}

#[tokio::test]
async fn a_last_event_id_older_than_the_log_gets_a_reset() {
    let s = serve(memory_db().await, |c| c.realtime(small_log(2))).await;
    let (_, m1) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "1"}))
        .await;
    for t in ["2", "3", "4"] {
        s.post("A:u", "rt.items.create", json!({"org": "A", "title": t}))
            .await;
    }
    let last = m1["eventId"].as_str().unwrap();
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], Some(last)).await;
    sse.ready().await;
    let f = sse.next_event(LONG).await.expect("reset");
    assert_eq!(f.event.as_deref(), Some("reset"));
    let head = s.realtime.head("A").await.unwrap().to_string();
    assert_eq!(f.id.as_deref(), Some(head.as_str()));
    assert_eq!(f.json()["eventId"], head);
    assert!(
        sse.next_event(SHORT).await.is_none(),
        "no stale events after the reset"
    );
    // an id from an earlier process (smaller than anything this log issued) too
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], Some("17")).await;
    sse.ready().await;
    assert_eq!(
        sse.next_event(LONG).await.unwrap().event.as_deref(),
        Some("reset")
    );
    // polling gets the same answer
    let res: Value = s
        .http
        .get(s.url("/poll"))
        .bearer_auth("A:u")
        .query(&[("since", last)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["reset"], true);
    assert_eq!(res["eventId"], head);
}

fn fast_acks() -> Realtime {
    Realtime::new(
        Arc::new(MemoryLog::new(64)),
        Arc::new(MemoryBus::default()),
        HubConfig {
            ack_retry_delays: vec![Duration::from_millis(200), Duration::from_millis(300)],
            ..HubConfig::default()
        },
    )
}

#[tokio::test]
async fn unacknowledged_events_are_resent_until_out_of_retries() {
    let s = serve(memory_db().await, |c| c.realtime(fast_acks())).await;
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    sse.ready().await;
    s.post(
        "A:u",
        "rt.items.createAcked",
        json!({"org": "A", "title": "x"}),
    )
    .await;
    let first = sse.next_event(LONG).await.expect("event");
    assert_eq!(first.json()["requiresAck"], true);
    assert!(first.id.is_some());
    let t0 = tokio::time::Instant::now();
    let r1 = sse.next_event(LONG).await.expect("resend 1");
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(r1.id, None, "re-sends carry no id: line");
    assert_eq!(r1.json(), first.json());
    let r2 = sse.next_event(LONG).await.expect("resend 2");
    assert_eq!(r2.json()["eventId"], first.json()["eventId"]);
    assert!(
        sse.next_event(Duration::from_millis(800)).await.is_none(),
        "out of retries"
    );
}

#[tokio::test]
async fn an_ack_stops_the_resends() {
    let s = serve(memory_db().await, |c| c.realtime(fast_acks())).await;
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    let ready = sse.ready().await;
    s.post(
        "A:u",
        "rt.items.createAcked",
        json!({"org": "A", "title": "x"}),
    )
    .await;
    let first = sse.next_event(LONG).await.expect("event");
    let id = first.json()["eventId"].clone();
    // an ack from another subject of the tenant does not count
    let res = s
        .http
        .post(s.url("/events/ack"))
        .bearer_auth("A:mallory")
        .json(&json!({"eventId": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let token = ready["connectionId"].as_str().unwrap();
    assert_eq!(
        reactive_runtime::testing::pending_acks(&s.realtime, token)
            .unwrap()
            .len(),
        1
    );
    let res = s
        .http
        .post(s.url("/events/ack"))
        .bearer_auth("A:u")
        .json(&json!({"eventId": id, "connectionId": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert!(
        reactive_runtime::testing::pending_acks(&s.realtime, token)
            .unwrap()
            .is_empty()
    );
    assert!(
        sse.next_event(Duration::from_millis(700)).await.is_none(),
        "no resend after ack"
    );
    // malformed ack
    let res = s
        .http
        .post(s.url("/ack"))
        .bearer_auth("A:u")
        .json(&json!({"nope": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
}

#[tokio::test]
async fn a_disconnect_stops_retries_and_frees_the_connection() {
    let s = serve(memory_db().await, |c| c.realtime(fast_acks())).await;
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    let ready = sse.ready().await;
    s.post(
        "A:u",
        "rt.items.createAcked",
        json!({"org": "A", "title": "x"}),
    )
    .await;
    sse.next_event(LONG).await.expect("event");
    let token = ready["connectionId"].as_str().unwrap().to_owned();
    assert_eq!(s.realtime.connections(), 1);
    drop(sse);
    let deadline = tokio::time::Instant::now() + LONG;
    while s.realtime.connections() > 0 && tokio::time::Instant::now() < deadline {
        // the server notices the disconnect when it next writes (a resend is due soon)
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.realtime.connections(), 0);
    assert!(reactive_runtime::testing::pending_acks(&s.realtime, &token).is_none());
}

#[tokio::test]
async fn polling_returns_the_same_events_as_json() {
    let s = start().await;
    let poll = |since: Option<String>, sub: Option<&'static str>| {
        let s = &s;
        async move {
            let mut q = vec![];
            if let Some(x) = since {
                q.push(("since", x));
            }
            if let Some(x) = sub {
                q.push(("subscribe", x.to_string()));
            }
            let res = s
                .http
                .get(s.url("/poll"))
                .bearer_auth("A:u")
                .query(&q)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let start = poll(None, None).await;
    assert_eq!(start["events"], json!([]));
    let since = start["eventId"].as_str().unwrap().to_string();
    let (_, m1) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    s.post("B:u", "rt.items.create", json!({"org": "B", "title": "x"}))
        .await;
    let all = poll(Some(since.clone()), None).await;
    assert_eq!(all["reset"], false);
    assert_eq!(all["events"].as_array().unwrap().len(), 1, "{all}");
    let ev = &all["events"][0];
    assert_eq!(ev["eventId"], m1["eventId"]);
    assert_eq!(ev["tables"], json!(["rt_item"]));
    assert_eq!(ev["queries"], json!(["*"]));
    assert_eq!(all["eventId"], m1["eventId"]);
    let keyed = poll(
        Some(since.clone()),
        Some(r#"rt.items.byTitle:{"org":"A","title":"y"}"#),
    )
    .await;
    assert_eq!(keyed["events"], json!([]), "not affected → not listed");
    let after = poll(Some(all["eventId"].as_str().unwrap().to_string()), None).await;
    assert_eq!(after["events"], json!([]));
}

#[tokio::test]
async fn expired_credentials_close_the_stream() {
    let s = start().await;
    let mut sse = s.events("A:u:300", &[("subscribe", "*")], None).await;
    sse.ready().await;
    let f = sse.next_event(LONG).await.expect("close frame");
    assert_eq!(f.event.as_deref(), Some("close"));
    assert_eq!(f.json()["reason"], "unauthorized");
    assert!(sse.next_within(LONG).await.is_none(), "stream ended");
}

#[tokio::test]
async fn revoked_credentials_close_the_stream_at_the_next_check() {
    let s = serve(memory_db().await, |c| {
        c.reauthorize_every(Some(Duration::from_millis(200)))
    })
    .await;
    let mut sse = s.events("A:u", &[("subscribe", "*")], None).await;
    sse.ready().await;
    assert!(
        sse.next_event(Duration::from_millis(500)).await.is_none(),
        "still authorized"
    );
    s.auth
        .revoked
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let f = sse.next_event(LONG).await.expect("close frame");
    assert_eq!(f.event.as_deref(), Some("close"));
}

#[tokio::test]
async fn heartbeats_are_ping_events_on_by_default_and_configurable() {
    assert_eq!(
        RouterConfig::new(TokenAuth::default()).heartbeat,
        Some(Duration::from_secs(15))
    );
    let s = serve(memory_db().await, |c| c.heartbeat(None)).await;
    let mut sse = s.events("A:u", &[("subscribe", "*")], None).await;
    sse.ready().await;
    assert!(sse.next_within(Duration::from_millis(500)).await.is_none());
    let s = serve(memory_db().await, |c| {
        c.heartbeat(Some(Duration::from_millis(100)))
    })
    .await;
    let mut sse = s.events("A:u", &[("subscribe", "*")], None).await;
    sse.ready().await;
    let f = sse.next_within(LONG).await.expect("ping");
    // An event, which the browser's EventSource delivers (it hides comments), and no id.
    assert!(!f.comment);
    assert_eq!(f.event.as_deref(), Some("ping"));
    assert_eq!(f.id, None);
}

/// A log whose appends fail (as when Redis is down).
struct FailingLog(MemoryLog);

impl reactive_runtime::realtime::EventLog for FailingLog {
    fn append(
        &self,
        _draft: reactive_runtime::realtime::EventDraft,
    ) -> futures::future::BoxFuture<
        '_,
        Result<Arc<reactive_runtime::realtime::Event>, reactive_runtime::realtime::RealtimeError>,
    > {
        Box::pin(async {
            Err(reactive_runtime::realtime::RealtimeError::Corrupt(
                "log down".into(),
            ))
        })
    }

    fn head<'a>(
        &'a self,
        tenant: &'a str,
    ) -> futures::future::BoxFuture<
        'a,
        Result<reactive_runtime::realtime::EventId, reactive_runtime::realtime::RealtimeError>,
    > {
        self.0.head(tenant)
    }

    fn since<'a>(
        &'a self,
        tenant: &'a str,
        after: reactive_runtime::realtime::EventId,
    ) -> futures::future::BoxFuture<
        'a,
        Result<reactive_runtime::realtime::Replay, reactive_runtime::realtime::RealtimeError>,
    > {
        self.0.since(tenant, after)
    }
}

#[tokio::test]
async fn an_event_that_cannot_be_recorded_resets_local_clients() {
    let rt = Realtime::new(
        Arc::new(FailingLog(MemoryLog::new(8))),
        Arc::new(MemoryBus::default()),
        HubConfig::default(),
    );
    let s = serve(memory_db().await, |c| c.realtime(rt)).await;
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    sse.ready().await;
    let (st, _) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200, "the write itself succeeded");
    let f = sse.next_event(LONG).await.expect("reset");
    assert_eq!(f.event.as_deref(), Some("reset"));
    assert_eq!(f.id, None);
    assert_eq!(f.json()["eventId"], Value::Null);
}
