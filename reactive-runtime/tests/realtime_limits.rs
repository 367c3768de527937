//! Bounds and privacy of the real-time side, through a real
//! HTTP client on loopback: what an event carries, `/poll` pages, canonical and
//! deduplicated subscription entries, subscription bytes and streams per principal.

mod realtime_support;

use std::sync::Arc;

use reactive_runtime::realtime::{HubConfig, MemoryBus, MemoryLog, Realtime, Replay};
use reactive_runtime::registry::FunctionDef;
use realtime_support::*;
use serde_json::{Value, json};

const A_KEY: &str = r#"rt.items.byOrg:{"org":"A"}"#;

fn realtime(hub: HubConfig) -> Realtime {
    Realtime::new(
        Arc::new(MemoryLog::new(1024)),
        Arc::new(MemoryBus::default()),
        hub,
    )
}

/// `title` is no key column here: only `rt.items.byOrg` (on `org`) is served.
fn org_only() -> Vec<&'static FunctionDef> {
    vec![&BY_ORG_DEF, &CREATE_DEF]
}

/// A write of a 200 KB text: its event is small, carries no value of the non-key
/// column, and neither does the log (memory) nor `/poll`.
#[tokio::test]
async fn an_event_after_a_huge_write_is_small_and_carries_no_non_key_value() {
    for event_keys in [false, true] {
        let rt = realtime(HubConfig {
            event_keys,
            ..HubConfig::default()
        });
        let s = serve(memory_db().await, |c| c.realtime(rt).functions(org_only())).await;
        let mut all = s.events("A:u", &[("subscribe", "*")], None).await;
        let ready = all.ready().await;
        let since = ready["eventId"].as_str().unwrap().to_owned();
        let huge = "x".repeat(200_000);
        let (st, _) = s
            .post("A:u", "rt.items.create", json!({"org": "A", "title": huge}))
            .await;
        assert_eq!(st, 200);
        let f = all.next_event(LONG).await.expect("an event");
        let data = f.data.clone().unwrap();
        assert!(data.len() < 512, "{} bytes: {data}", data.len());
        assert!(!data.contains("xxxxxxxx"));
        let v = f.json();
        assert_eq!(v["tables"], json!(["rt_item"]));
        if event_keys {
            assert_eq!(v["keys"], json!({"rt_item": {"org": ["A"]}}));
        } else {
            assert!(v.get("keys").is_none(), "{v}");
        }
        // The log holds the trimmed event only.
        match s.realtime.since("A", since.parse().unwrap()).await.unwrap() {
            Replay::Events { events, .. } => {
                assert_eq!(events.len(), 1);
                assert!(
                    events[0].approx_size() < 2048,
                    "{}",
                    events[0].approx_size()
                );
            }
            Replay::Reset { .. } => panic!("unexpected reset"),
        }
        let polled = s
            .http
            .get(s.url("/poll"))
            .bearer_auth("A:u")
            .query(&[("since", since.as_str())])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(polled.len() < 512, "{polled}");
    }
}

/// A long key value is unknown: the event matches every key of that column (more
/// invalidation, never less), and carries none of it.
#[tokio::test]
async fn a_key_value_over_the_length_bound_is_unknown() {
    let rt = realtime(HubConfig {
        event_keys: true,
        ..HubConfig::default()
    });
    let s = serve(memory_db().await, |c| c.realtime(rt)).await;
    let other = r#"rt.items.byTitle:{"org":"A","title":"short"}"#;
    let mut sse = s.events("A:u", &[("subscribe", other)], None).await;
    sse.ready().await;
    let long = "t".repeat(129);
    s.post("A:u", "rt.items.create", json!({"org": "A", "title": long}))
        .await;
    let v = sse
        .next_event(LONG)
        .await
        .expect("unknown title matches")
        .json();
    assert_eq!(v["keys"], json!({"rt_item": {"org": ["A"]}}));
    assert_eq!(v["queries"], json!([other]));
}

/// `/poll` answers pages of bounded size; following `eventId` until `more` is false
/// yields every event once, in order.
#[tokio::test]
async fn poll_answers_bounded_pages() {
    let s = serve(memory_db().await, |c| {
        let mut c = c;
        c.max_poll_bytes = 300;
        c
    })
    .await;
    let poll = |since: String| {
        let s = &s;
        async move {
            let res = s
                .http
                .get(s.url("/poll"))
                .bearer_auth("A:u")
                .query(&[("since", since)])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 200);
            let text = res.text().await.unwrap();
            (text.len(), serde_json::from_str::<Value>(&text).unwrap())
        }
    };
    let (_, start) = poll(String::new()).await;
    let mut since = start["eventId"].as_str().unwrap().to_owned();
    let mut written = Vec::new();
    for i in 0..12 {
        let (_, m) = s
            .post(
                "A:u",
                "rt.items.create",
                json!({"org": "A", "title": i.to_string()}),
            )
            .await;
        written.push(m["eventId"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (len, page) = poll(since.clone()).await;
        pages += 1;
        assert!(pages < 20, "paging must end");
        assert_eq!(page["reset"], false);
        let events = page["events"].as_array().unwrap();
        assert!(!events.is_empty() || page["more"] == false);
        assert!(len <= 300 + 200, "{len} bytes");
        seen.extend(
            events
                .iter()
                .map(|e| e["eventId"].as_str().unwrap().to_owned()),
        );
        since = page["eventId"].as_str().unwrap().to_owned();
        if page["more"] == false {
            break;
        }
    }
    assert!(pages > 2, "{pages} pages");
    assert_eq!(seen, written);
    assert_eq!(&since, written.last().unwrap());
}

/// Thirty spellings of one query key are one entry, echoed once in canonical form.
#[tokio::test]
async fn whitespace_variants_of_a_key_are_one_entry() {
    let s = start().await;
    let variants: Vec<String> = (0..30)
        .map(|i| {
            let pad = " ".repeat(i);
            format!("rt.items.byOrg:{pad}{{{pad}\"org\"{pad}:{pad}\"A\"{pad}}}{pad}")
        })
        .collect();
    let query: Vec<(&str, &str)> = variants.iter().map(|v| ("subscribe", v.as_str())).collect();
    let mut sse = s.events("A:u", &query, None).await;
    sse.ready().await;
    s.post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    let f = sse.next_event(LONG).await.expect("an event");
    assert_eq!(f.json()["queries"], json!([A_KEY]));
    assert!(f.data.unwrap().len() < 256);
    // a differently spelled identical subscription shares the canonical one
    assert_eq!(
        reactive_runtime::testing::cached_subscriptions(&s.realtime),
        1
    );
}

/// Subscription bytes per connection are capped (400), before anything is built.
#[tokio::test]
async fn subscription_bytes_are_capped() {
    let rt = realtime(HubConfig {
        max_subscription_bytes: 1000,
        ..HubConfig::default()
    });
    let s = serve(memory_db().await, |c| c.realtime(rt)).await;
    let entries: Vec<String> = (0..20)
        .map(|i| format!(r#"rt.items.byTitle:{{"org":"A","title":"{i:060}"}}"#))
        .collect();
    let query: Vec<(&str, &str)> = entries.iter().map(|v| ("subscribe", v.as_str())).collect();
    let res = s
        .http
        .get(s.url("/events"))
        .bearer_auth("A:u")
        .header("accept", "text/event-stream")
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["path"], "subscribe", "{body}");
    assert_eq!(s.realtime.connections(), 0);
}

/// A principal holds at most `max_streams_per_principal` streams: one more is `429`;
/// other users of the tenant are not affected.
#[tokio::test]
async fn streams_per_principal_are_capped() {
    let rt = realtime(HubConfig {
        max_streams_per_principal: 2,
        ..HubConfig::default()
    });
    let s = serve(memory_db().await, |c| c.realtime(rt)).await;
    let mut a = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    let mut b = s.events("A:u", &[("subscribe", "*")], None).await;
    a.ready().await;
    b.ready().await;
    let res = s
        .http
        .get(s.url("/events"))
        .bearer_auth("A:u")
        .header("accept", "text/event-stream")
        .query(&[("subscribe", "*")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    let mut other = s.events("A:v", &[("subscribe", "*")], None).await;
    other.ready().await;
    assert_eq!(s.realtime.connections(), 3);
    // the refused request left the streams working
    s.post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert!(a.next_event(LONG).await.is_some());
    assert!(other.next_event(LONG).await.is_some());
}

/// The authorizer sees procedure-name and `*` entries (and `/poll` without entries).
#[tokio::test]
async fn whole_procedure_and_star_entries_are_authorized() {
    let s = start().await;
    s.auth
        .deny_whole
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for (path, entry) in [
        ("/events", Some("*")),
        ("/events", Some("rt.items.byOrg")),
        ("/poll", None),
    ] {
        let mut req = s
            .http
            .get(s.url(path))
            .bearer_auth("A:u")
            .header("accept", "text/event-stream");
        if let Some(e) = entry {
            req = req.query(&[("subscribe", e)]);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 403, "{path} {entry:?}");
    }
    // query keys are still allowed (check_input decides for them)
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    sse.ready().await;
}

/// Records every invalidation report.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Arc<reactive_runtime::engine::InvalidationReport>>>);

impl reactive_runtime::db::InvalidationListener for Recorder {
    fn on_invalidation(
        &self,
        report: Arc<reactive_runtime::engine::InvalidationReport>,
    ) -> reactive_runtime::registry::BoxFuture<'static, ()> {
        self.0.lock().unwrap().push(report);
        Box::pin(async {})
    }

    fn bind(self: Arc<Self>) -> Arc<dyn reactive_runtime::db::InvalidationListener> {
        self
    }
}

/// Before the engine sees a change set, values over 1 KiB are dropped (unknown): the
/// engine's ring of recent changes, the report and the bus message to other instances
/// never hold a huge written value. Short values stay (the engine's precision).
#[tokio::test]
async fn the_engine_never_holds_a_huge_written_value() {
    let db = memory_db().await;
    let rec = Arc::new(Recorder::default());
    db.set_listener(rec.clone());
    let huge = "x".repeat(200_000);
    db.call(&CREATE_DEF, "A", json!({"org": "A", "title": huge}))
        .await
        .expect("insert");
    let reports = rec.0.lock().unwrap();
    let report = reports.last().expect("a report");
    let rows = report.changes.rows("rt_item").expect("rt_item changed");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].values("title").is_none(), "title is unknown");
    assert_eq!(
        rows[0]
            .values("org")
            .map(|v| v.iter().map(|k| k.as_str().to_owned()).collect::<Vec<_>>()),
        Some(vec!["A".to_owned()])
    );
}
