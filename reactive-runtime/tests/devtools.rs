//! The dev tools page over HTTP: the access check (authorizer, then the app's admin
//! check), off unless enabled, and the live trace naming the invalidated key and why.

mod realtime_support;

use reactive_runtime::ReactiveDb;
use reactive_runtime::registry::{FunctionDef, InputError, Prepared};
use reactive_runtime::router::DevToolsConfig;
use realtime_support::*;
use serde_json::{Value, json};

fn tools() -> DevToolsConfig {
    DevToolsConfig::new("/devtools", |p| p.subject == "admin").enabled(true)
}

async fn get(s: &Server, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = s.http.get(s.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("request")
}

#[tokio::test]
async fn only_an_admin_the_authorizer_accepts_gets_in() {
    let s = serve(memory_db().await, |c| c.devtools(tools())).await;
    for path in [
        "/devtools",
        "/devtools/state",
        "/devtools/stream",
        "/devtools/cache",
    ] {
        assert_eq!(get(&s, path, None).await.status(), 401, "{path}");
        assert_eq!(get(&s, path, Some("A:u")).await.status(), 403, "{path}");
    }
    let page = get(&s, "/devtools", Some("A:admin")).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Invalidation trace"));
    assert_eq!(
        get(&s, "/devtools/state", Some("A:admin")).await.status(),
        200
    );
}

#[tokio::test]
async fn off_unless_enabled() {
    let s = serve(memory_db().await, |c| c.devtools(tools().enabled(false))).await;
    assert_eq!(get(&s, "/devtools", Some("A:admin")).await.status(), 404);
    assert_eq!(
        get(&s, "/devtools/state", Some("A:admin")).await.status(),
        404
    );
    assert_eq!(
        get(&s, "/devtools/cache", Some("A:admin")).await.status(),
        404
    );
    let s = start().await;
    assert_eq!(get(&s, "/devtools", Some("A:admin")).await.status(), 404);
}

/// The next frame named `event` of the dev tools' feed (others skipped: `state` comes
/// every second), within 10 s.
async fn next_named(feed: &mut Sse, event: &str) -> Value {
    let wait = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let f = feed.next_within(LONG).await.expect("the feed stays open");
            if f.event.as_deref() == Some(event) {
                return f.json();
            }
        }
    });
    wait.await
        .unwrap_or_else(|_| panic!("no `{event}` frame within 10 s"))
}

async fn get_json(s: &Server, path: &str) -> Value {
    let res = get(s, path, Some("A:admin")).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_cached_entries_of_a_tenant_in_a_bounded_page() {
    let s = serve(memory_db().await, |c| c.devtools(tools())).await;
    for (token, org, title) in [("A:u", "A", "x"), ("A:u", "A", "y"), ("B:u", "B", "x")] {
        for _ in 0..2 {
            let input = json!({"org": org, "title": title});
            let (st, body) = s.post(token, "rt.items.byTitle", input).await;
            assert_eq!(st, 200, "{body}");
        }
    }
    let page = get_json(&s, "/devtools/cache?tenant=A").await;
    assert_eq!(page["store"], "memory");
    assert_eq!(page["listed"], true);
    assert_eq!(
        (page["more"].as_u64(), page["moreExact"].as_bool()),
        (Some(0), Some(true))
    );
    let entries = page["entries"].as_array().unwrap();
    let keys: Vec<&Value> = entries.iter().map(|e| &e["key"]).collect();
    assert_eq!(
        keys,
        [
            &json!({"tenant": "A", "procedure": "rt.items.byTitle", "input": "{\"org\":\"A\",\"title\":\"x\"}"}),
            &json!({"tenant": "A", "procedure": "rt.items.byTitle", "input": "{\"org\":\"A\",\"title\":\"y\"}"}),
        ]
    );
    let first = &entries[0];
    assert_eq!(first["value_bytes"], 2, "an empty list: {first}");
    assert_eq!(first["hits"], 1, "{first}");
    assert!(first["age_ms"].as_u64().unwrap() < 60_000, "{first}");
    assert_eq!(
        first["reads"]["tables"]["rt_item"][0]["columns"]["org"],
        json!(["A"]),
        "{first}"
    );

    let page = get_json(&s, "/devtools/cache?tenant=A&limit=1").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert_eq!(page["more"], 1);
    let page = get_json(&s, "/devtools/cache").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 3, "{page}");
    assert_eq!(
        get(&s, "/devtools/cache?limit=x", Some("A:admin"))
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn a_write_shows_in_the_live_trace_with_the_key_it_invalidated_and_why() {
    let s = serve(memory_db().await, |c| c.devtools(tools())).await;
    let res = get(&s, "/devtools/stream", Some("A:admin")).await;
    assert_eq!(res.status(), 200);
    let mut feed = Sse::from_response(res);

    let input = json!({"org": "A"});
    for _ in 0..2 {
        assert_eq!(s.post("A:u", "rt.items.byOrg", input.clone()).await.0, 200);
    }
    let (st, body) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200, "{body}");
    let event_id: u64 = body["eventId"].as_str().unwrap().parse().unwrap();

    let trace = next_named(&mut feed, "trace").await;
    assert_eq!(trace["tenant"], "A");
    assert_eq!(trace["tables"], json!(["rt_item"]));
    assert_eq!(trace["event_id"], event_id, "{trace}");
    let entries = trace["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{trace}");
    assert_eq!(
        entries[0]["key"],
        json!({"tenant": "A", "procedure": "rt.items.byOrg", "input": "{\"org\":\"A\"}"})
    );
    let reason = &entries[0]["reasons"][0];
    assert_eq!(reason["table"], "rt_item");
    assert_eq!(reason["column"], "org", "{trace}");
    assert_eq!(reason["value"], "A", "{trace}");

    // The state: per-procedure timings, and the trace kept for a page opened later.
    let state: Value = get(&s, "/devtools/state", Some("A:admin"))
        .await
        .json()
        .await
        .unwrap();
    let timings = state["state"]["timings"].as_array().unwrap();
    let by_org = timings
        .iter()
        .find(|t| t["procedure"] == "rt.items.byOrg")
        .expect("timings of rt.items.byOrg");
    assert_eq!(
        (by_org["hits"].as_u64(), by_org["misses"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(by_org["miss_p50_us"].as_u64().unwrap() > 0);
    assert_eq!(
        state["trace"][0]["entries"][0]["key"]["procedure"],
        "rt.items.byOrg"
    );
    let streams = state["state"]["streams"].as_array().unwrap();
    assert!(
        streams.is_empty(),
        "the feed is no event stream: {streams:?}"
    );
}

/// A query whose handler sends two statements (found by parsing: the model lists none).
fn prepare_two_statements(input: Value) -> Result<Prepared, InputError> {
    let org = input["org"].as_str().unwrap_or_default().to_owned();
    Ok(Prepared {
        bindings: vec![],
        run: Box::new(move |db| {
            let db: ReactiveDb<sqlx::Any> = *db.downcast().expect("a ReactiveDb<Any>");
            Box::pin(async move {
                let ids = sqlx::query("SELECT id FROM rt_item WHERE org = $1")
                    .bind(org.clone())
                    .fetch_all(&db)
                    .await?;
                let titles = sqlx::query("SELECT title FROM rt_item WHERE org = $1")
                    .bind(org)
                    .fetch_all(&db)
                    .await?;
                Ok(serde_json::to_vec(&json!([ids.len(), titles.len()]))?)
            })
        }),
    })
}

static TWO_STATEMENTS_DEF: FunctionDef = FunctionDef::by_hand(
    concat!(
        r#"{"name":"rt.devtools.two","rust_name":"two","kind":"query","requires_ack":false,"dialect":"sqlite","#,
        r#""bindings":[],"dependencies":[],"invalidates":[],"statements":[],"calls":[]}"#
    ),
    prepare_two_statements,
);

#[tokio::test]
async fn timings_count_the_statements_each_miss_sent() {
    let mut all = functions();
    all.push(&TWO_STATEMENTS_DEF);
    let s = serve(memory_db().await, |c| c.devtools(tools()).functions(all)).await;
    for _ in 0..2 {
        let (st, body) = s.post("A:u", "rt.devtools.two", json!({"org": "A"})).await;
        assert_eq!(st, 200, "{body}");
    }
    let (st, body) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200, "{body}");
    // The write invalidated the entry: a second miss.
    let (st, _) = s.post("A:u", "rt.devtools.two", json!({"org": "A"})).await;
    assert_eq!(st, 200);

    let state = get_json(&s, "/devtools/state").await;
    let timing = |name: &str| {
        state["state"]["timings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["procedure"] == name)
            .unwrap_or_else(|| panic!("timings of {name}: {state}"))
            .clone()
    };
    let two = timing("rt.devtools.two");
    assert_eq!(
        (two["hits"].as_u64(), two["misses"].as_u64()),
        (Some(1), Some(2)),
        "{two}"
    );
    assert_eq!(two["miss_statements"], 4, "two statements per miss: {two}");
    assert_eq!(two["miss_statements_max"], 2, "{two}");
    let create = timing("rt.items.create");
    assert_eq!(create["miss_statements"], 1, "{create}");
}

#[tokio::test]
async fn a_delivery_names_the_streams_the_event_was_queued_to() {
    let s = serve(memory_db().await, |c| c.devtools(tools())).await;
    let res = get(&s, "/devtools/stream", Some("A:admin")).await;
    let mut feed = Sse::from_response(res);
    let mut matching = s
        .events(
            "A:match",
            &[("subscribe", r#"rt.items.byOrg:{"org":"A"}"#)],
            None,
        )
        .await;
    matching.ready().await;
    let other_key = r#"rt.items.byTitle:{"org":"A","title":"zzz"}"#;
    let mut other = s.events("A:other", &[("subscribe", other_key)], None).await;
    other.ready().await;
    let mut b = s.events("B:u", &[("subscribe", "*")], None).await;
    b.ready().await;

    let (st, body) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200, "{body}");
    let event_id: u64 = body["eventId"].as_str().unwrap().parse().unwrap();
    matching.next_event(LONG).await.expect("the event");

    let delivery = next_named(&mut feed, "delivery").await;
    let state = get_json(&s, "/devtools/state").await;
    let streams = state["state"]["streams"].as_array().unwrap();
    let id_of = |subject: &str| {
        streams
            .iter()
            .find(|c| c["subject"] == subject)
            .unwrap_or_else(|| panic!("stream of {subject}: {streams:?}"))["id"]
            .clone()
    };
    assert_eq!(delivery["tenant"], "A");
    assert_eq!(delivery["event_id"], event_id, "{delivery}");
    assert_eq!(delivery["streams"], 1, "{delivery}");
    assert_eq!(
        delivery["stream_ids"],
        json!([id_of("match")]),
        "{delivery}"
    );
    assert_eq!(state["deliveries"], json!([delivery]));

    // A tenant with no stream here: its event reached none.
    let (st, body) = s
        .post("C:u", "rt.items.create", json!({"org": "C", "title": "x"}))
        .await;
    assert_eq!(st, 200, "{body}");
    let delivery = next_named(&mut feed, "delivery").await;
    assert_eq!(delivery["tenant"], "C", "{delivery}");
    assert_eq!(delivery["streams"], 0, "{delivery}");
    assert_eq!(delivery["stream_ids"], json!([]), "{delivery}");
}

#[tokio::test]
async fn another_instances_write_shows_in_the_trace_as_remote() {
    use reactive_runtime::realtime::{HubConfig, MemoryBus, MemoryLog, Realtime};
    use std::sync::Arc;
    // Two instances sharing a log and a bus, each with its own cache.
    let log = Arc::new(MemoryLog::new(1024));
    let bus = Arc::new(MemoryBus::default());
    let realtime = || Realtime::new(log.clone(), bus.clone(), HubConfig::default());
    let a = serve(memory_db().await, |c| {
        c.realtime(realtime()).devtools(tools())
    })
    .await;
    let b = serve(memory_db().await, |c| c.realtime(realtime())).await;
    let mut feed = Sse::from_response(get(&a, "/devtools/stream", Some("A:admin")).await);

    let input = json!({"org": "A"});
    assert_eq!(a.post("A:u", "rt.items.byOrg", input.clone()).await.0, 200);
    let (st, body) = b
        .post("A:u", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200, "{body}");

    let trace = next_named(&mut feed, "trace").await;
    assert_eq!(trace["remote"], true, "{trace}");
    assert_eq!(trace["tenant"], Value::Null, "{trace}");
    assert_eq!(trace["event_id"], Value::Null, "{trace}");
    assert_eq!(trace["tables"], json!(["rt_item"]));
    let entries = trace["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        1,
        "the entry cached on this instance: {trace}"
    );
    assert_eq!(
        entries[0]["key"],
        json!({"tenant": "A", "procedure": "rt.items.byOrg", "input": "{\"org\":\"A\"}"})
    );
    assert_eq!(entries[0]["reasons"][0]["value"], "A", "{trace}");
}
