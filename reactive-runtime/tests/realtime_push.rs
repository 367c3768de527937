//! Pushed results through a real HTTP client: a `push` query's subscribers get its new
//! value in the stream after a write (no request of their own), within their tenant.

mod realtime_support;

use realtime_support::*;
use serde_json::{Value, json};

const PUSHED_A: &str = r#"rt.items.byOrgPushed:{"org":"A"}"#;

/// The next frame of type `event` within `LONG`.
async fn next_of(sse: &mut Sse, event: &str) -> Option<Frame> {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let f = sse.next_within(left).await?;
        if f.event.as_deref() == Some(event) {
            return Some(f);
        }
    }
}

#[tokio::test]
async fn a_write_pushes_the_new_result_to_every_subscriber_of_the_key() {
    let s = start().await;
    let mut alice = s.events("A:alice", &[("subscribe", PUSHED_A)], None).await;
    let mut bob = s.events("A:bob", &[("subscribe", PUSHED_A)], None).await;
    alice.ready().await;
    bob.ready().await;
    let (st, body) = s
        .post(
            "A:carol",
            "rt.items.create",
            json!({"org": "A", "title": "pushed"}),
        )
        .await;
    assert_eq!(st, 200);
    let event_id: u64 = body["eventId"].as_str().unwrap().parse().unwrap();
    for sse in [&mut alice, &mut bob] {
        let inv = next_of(sse, "invalidate").await.expect("the invalidation");
        assert_eq!(inv.id.as_deref(), Some(event_id.to_string().as_str()));
        let inv = inv.json();
        assert_eq!(
            inv["queries"],
            json!([PUSHED_A]),
            "still named: old clients refetch"
        );
        let r = &inv["results"][PUSHED_A];
        let watermark: u64 = r["eventId"].as_str().unwrap().parse().unwrap();
        assert!(
            watermark >= event_id,
            "{watermark} reflects the write {event_id}"
        );
        let titles: Vec<&str> = r["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, ["pushed"]);
    }
    // What a client gets by asking is the same value: the push went through the cache.
    let (st, fetched) = s
        .post("A:alice", "rt.items.byOrgPushed", json!({"org": "A"}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(fetched["data"][0]["title"], "pushed");
}

#[tokio::test]
async fn pushes_stay_in_the_tenant_and_never_reach_plain_subscriptions() {
    let s = start().await;
    let pushed_b = r#"rt.items.byOrgPushed:{"org":"B"}"#;
    let mut b = s.events("B:bob", &[("subscribe", pushed_b)], None).await;
    let mut plain = s
        .events(
            "A:alice",
            &[("subscribe", r#"rt.items.byOrg:{"org":"A"}"#)],
            None,
        )
        .await;
    b.ready().await;
    plain.ready().await;
    s.post(
        "A:carol",
        "rt.items.create",
        json!({"org": "A", "title": "x"}),
    )
    .await;
    let inv = plain
        .next_event(LONG)
        .await
        .expect("plain invalidation")
        .json();
    assert_eq!(inv["queries"], json!([r#"rt.items.byOrg:{"org":"A"}"#]));
    assert!(inv.get("results").is_none(), "not a push function: {inv}");
    assert!(
        b.next_within(SHORT)
            .await
            .is_none_or(|f| f.event.as_deref() == Some("ping"))
    );
    // Another organization's key is refused at subscribe time, as for any entry.
    let res = s
        .http
        .get(s.url("/events"))
        .header("accept", "text/event-stream")
        .bearer_auth("B:mallory")
        .query(&[("subscribe", PUSHED_A)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let _: Value = res.json().await.unwrap();
}

/// Two writes in a row: whatever rounds they share, the newest value the stream carried
/// reflects the second write (an event whose round's value was already sent goes
/// without it: the client holds it).
#[tokio::test]
async fn the_last_pushed_value_reflects_the_last_write() {
    let s = start().await;
    let mut sse = s.events("A:alice", &[("subscribe", PUSHED_A)], None).await;
    sse.ready().await;
    let (first, second) = tokio::join!(
        s.post(
            "A:carol",
            "rt.items.create",
            json!({"org": "A", "title": "one"})
        ),
        s.post(
            "A:carol",
            "rt.items.create",
            json!({"org": "A", "title": "two"})
        ),
    );
    let newest = [first, second]
        .iter()
        .map(|(_, b)| b["eventId"].as_str().unwrap().parse::<u64>().unwrap())
        .max()
        .unwrap();
    let mut latest: Option<(u64, Value)> = None;
    for _ in 0..2 {
        let inv = next_of(&mut sse, "invalidate")
            .await
            .expect("an invalidation")
            .json();
        if let Some(r) = inv["results"].get(PUSHED_A) {
            let w: u64 = r["eventId"].as_str().unwrap().parse().unwrap();
            assert!(
                latest.as_ref().is_none_or(|(l, _)| *l <= w),
                "values arrive in order"
            );
            latest = Some((w, r["data"].clone()));
        }
    }
    let (w, data) = latest.expect("a pushed value");
    assert!(w >= newest, "{w} < {newest}");
    assert_eq!(data.as_array().unwrap().len(), 2, "{data}");
}
