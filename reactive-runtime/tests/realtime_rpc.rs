//! RPC over HTTP: success shape with the watermark, and every error status.

mod realtime_support;

use realtime_support::*;
use serde_json::{Value, json};

#[tokio::test]
async fn post_and_get_return_data_and_watermark() {
    let s = start().await;
    let (st, body) = s.post("A:u1", "rt.items.byOrg", json!({"org": "A"})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"], json!([]));
    let w0: u64 = body["eventId"]
        .as_str()
        .expect("eventId string")
        .parse()
        .unwrap();

    let (st, body) = s
        .post("A:u1", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200, "{body}");
    let w1: u64 = body["eventId"].as_str().unwrap().parse().unwrap();
    assert!(w1 > w0, "a mutation's watermark includes its own event");

    // GET with ?input= sees the new row (the cache entry was invalidated).
    let res = s
        .http
        .get(s.url("/rpc/rt.items.byOrg"))
        .bearer_auth("A:u1")
        .query(&[("input", r#"{"org":"A"}"#)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"][0]["title"], "x");
    assert_eq!(
        body["eventId"].as_str().unwrap().parse::<u64>().unwrap(),
        w1
    );
}

#[tokio::test]
async fn handler_sees_the_principal() {
    let s = start().await;
    let (st, body) = s.post("A:alice", "rt.whoami", Value::Null).await;
    assert_eq!(st, 200);
    assert_eq!(body["data"], "A/alice");
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(
        body["error"].get("path").is_some(),
        "path is always present: {body}"
    );
}

#[tokio::test]
async fn bad_input_is_400_with_path_and_never_reaches_the_db() {
    let s = start().await;
    let (st, body) = s
        .post("A:u", "rt.items.create", json!({"org": "A", "title": 5}))
        .await;
    assert_eq!(st, 400);
    assert_error(&body, "bad_request");
    assert_eq!(body["error"]["path"], "title");
    let (st, body) = s.post("A:u", "rt.items.create", json!({"org": "A"})).await;
    assert_eq!(st, 400);
    assert_eq!(body["error"]["path"], "title");
    // malformed JSON
    let res = s
        .http
        .post(s.url("/rpc/rt.items.create"))
        .bearer_auth("A:u")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["path"], ".");
    assert_eq!(s.db.stats().statements, 0, "no statement ran");
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401() {
    let s = start().await;
    let res = s
        .http
        .post(s.url("/rpc/rt.items.byOrg"))
        .header("content-type", "application/json")
        .body(r#"{"org":"A"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_error(&res.json().await.unwrap(), "unauthorized");
    let (st, body) = s
        .post("nocolon", "rt.items.byOrg", json!({"org": "A"}))
        .await;
    assert_eq!(st, 401);
    assert_error(&body, "unauthorized");
    let res = s.http.get(s.url("/events")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test]
async fn other_tenant_and_forbidden_errors_are_403() {
    let s = start().await;
    let (st, body) = s.post("B:u", "rt.items.byOrg", json!({"org": "A"})).await;
    assert_eq!(st, 403);
    assert_error(&body, "forbidden");
    let (st, body) = s.post("B:u", "rt.forbidden", Value::Null).await;
    assert_eq!(st, 403);
    assert_error(&body, "forbidden");
    assert_eq!(s.db.stats().statements, 0);
}

#[tokio::test]
async fn unknown_procedure_is_404_and_get_on_mutation_405() {
    let s = start().await;
    let (st, body) = s.post("A:u", "rt.nope", Value::Null).await;
    assert_eq!(st, 404);
    assert_error(&body, "not_found");
    let res = s
        .http
        .get(s.url("/rpc/rt.items.create"))
        .bearer_auth("A:u")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "POST");
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let s = serve(memory_db().await, |c| c.body_limit(1024)).await;
    let big = json!({"org": "A", "title": "x".repeat(2000)});
    let (st, body) = s.post("A:u", "rt.items.create", big).await;
    assert_eq!(st, 413);
    assert_error(&body, "payload_too_large");
    // chunked (no Content-Length) too
    let chunks = futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(format!(
        r#"{{"org":"A","title":"{}"}}"#,
        "y".repeat(3000)
    )))]);
    let res = s
        .http
        .post(s.url("/rpc/rt.items.create"))
        .bearer_auth("A:u")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    // the default is 1 MiB: 100 kB passes
    let s = start().await;
    let (st, _) = s
        .post(
            "A:u",
            "rt.items.create",
            json!({"org": "A", "title": "z".repeat(100_000)}),
        )
        .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn handler_error_is_500_without_internals() {
    let s = start().await;
    let (st, body) = s.post("A:u", "rt.fail", Value::Null).await;
    assert_eq!(st, 500);
    assert_error(&body, "internal");
    assert!(
        !body.to_string().contains("secret-internal-detail"),
        "{body}"
    );
}

#[tokio::test]
async fn duplicate_insert_is_409_not_500() {
    let db = memory_db().await;
    sqlx::query("CREATE UNIQUE INDEX rt_item_org_title ON rt_item (org, title)")
        .execute(db.pool())
        .await
        .unwrap();
    let s = serve(db, |c| c).await;
    let input = json!({"org": "A", "title": "same"});
    let (st, body) = s.post("A:u", "rt.items.create", input.clone()).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = s.post("A:u", "rt.items.create", input).await;
    assert_eq!(st, 409, "{body}");
    assert_error(&body, "conflict");
    assert_eq!(body["error"]["path"], Value::Null);
    assert!(
        !body.to_string().contains("UNIQUE constraint failed"),
        "the driver's message stays in the log: {body}"
    );
    // The failed mutation changed nothing: one row.
    let (st, body) = s.post("A:u", "rt.items.byOrg", json!({"org": "A"})).await;
    assert_eq!(st, 200);
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
}

#[tokio::test]
async fn post_without_json_content_type_is_415() {
    let s = start().await;
    let res = s
        .http
        .post(s.url("/rpc/rt.items.create"))
        .bearer_auth("A:u")
        .header("content-type", "text/plain")
        .body(r#"{"org":"A","title":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
}
