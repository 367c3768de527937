//! `reactive_runtime::serve`: event streams on the bare socket, everything else through
//! hyper, over real TCP connections.

mod realtime_support;

use std::future::IntoFuture;
use std::time::Duration;

use realtime_support::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const A_KEY: &str = r#"rt.items.byOrg:{"org":"A"}"#;

fn host(s: &Server) -> &str {
    s.base.strip_prefix("http://").unwrap()
}

fn stream_request(auth: Option<&str>) -> String {
    let query = format!("subscribe={}", urlencode(A_KEY));
    let auth = auth.map_or(String::new(), |a| format!("Authorization: Bearer {a}\r\n"));
    format!("GET /events?{query} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{auth}\r\n")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads from `conn` until `text` has arrived (or `wait` passed); returns all read.
async fn read_until(conn: &mut TcpStream, text: &str, wait: Duration) -> String {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(text) {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the peer closes (or `wait` passed).
async fn read_to_close(conn: &mut TcpStream, wait: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let closed = tokio::time::timeout(wait, conn.read_to_end(&mut got))
        .await
        .is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[tokio::test]
async fn an_event_stream_is_close_delimited_and_carries_events() {
    let s = start().await;
    let mut conn = TcpStream::connect(host(&s)).await.unwrap();
    conn.write_all(stream_request(Some("A:u")).as_bytes())
        .await
        .unwrap();
    let head = read_until(&mut conn, "event: ready", LONG).await;
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        lower.contains("content-type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(lower.contains("connection: close\r\n"), "{head}");
    assert!(
        !lower.contains("transfer-encoding"),
        "no chunked encoding: {head}"
    );
    assert!(!lower.contains("content-length"), "{head}");

    let (st, _) = s
        .post("A:u2", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200);
    let frames = read_until(&mut conn, "event: invalidate", LONG).await;
    assert!(frames.contains("event: invalidate"), "{frames}");
    assert!(frames.contains(r#""tables":["rt_item"]"#), "{frames}");
}

#[tokio::test]
async fn a_client_that_closes_its_stream_is_dropped_at_once() {
    let s = start().await;
    let mut conn = TcpStream::connect(host(&s)).await.unwrap();
    conn.write_all(stream_request(Some("A:u")).as_bytes())
        .await
        .unwrap();
    read_until(&mut conn, "event: ready", LONG).await;
    assert_eq!(s.realtime.hub().connections(), 1);
    drop(conn);
    // No event is written after the close: the server must notice by reading.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while s.realtime.hub().connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.realtime.hub().connections(), 0);
}

#[tokio::test]
async fn a_refused_stream_is_answered_whole_and_closed() {
    let s = start().await;
    let mut conn = TcpStream::connect(host(&s)).await.unwrap();
    conn.write_all(stream_request(None).as_bytes())
        .await
        .unwrap();
    let (text, closed) = read_to_close(&mut conn, LONG).await;
    assert!(closed, "the connection is closed after the answer");
    assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    let err: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(err["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn ordinary_requests_go_through_hyper_with_keep_alive_and_pipelining() {
    let s = start().await;
    let mut conn = TcpStream::connect(host(&s)).await.unwrap();
    let body = json!({"org": "A"}).to_string();
    let rpc = format!(
        "POST /rpc/rt.items.byOrg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer A:u\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // Two requests in one write: the first read holds both.
    conn.write_all(format!("{rpc}{rpc}").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + LONG;
    while text.matches("HTTP/1.1 200 OK").count() < 2 && tokio::time::Instant::now() < deadline {
        text.push_str(&read_until(&mut conn, "\"data\"", Duration::from_millis(200)).await);
    }
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    // Still open: a third request on the same connection.
    conn.write_all(rpc.as_bytes()).await.unwrap();
    let third = read_until(&mut conn, "\"data\"", LONG).await;
    assert!(third.starts_with("HTTP/1.1 200 OK"), "{third}");

    // Body limit and unknown procedures answer as under axum::serve.
    let big = "x".repeat(2 * 1024 * 1024);
    let res = s
        .http
        .post(s.url("/rpc/rt.items.create"))
        .bearer_auth("A:u")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    let (st, _) = s.post("A:u", "no.such.procedure", json!({})).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn an_oversized_head_is_refused_with_431() {
    let s = start().await;
    let mut conn = TcpStream::connect(host(&s)).await.unwrap();
    let huge = format!(
        "GET /events HTTP/1.1\r\nAccept: text/event-stream\r\nX-Big: {}\r\n\r\n",
        "a".repeat(80 * 1024)
    );
    let _ = conn.write_all(huge.as_bytes()).await;
    let (text, _) = read_to_close(&mut conn, LONG).await;
    assert!(
        text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn graceful_shutdown_ends_streams_and_stops_accepting() {
    let db = memory_db().await;
    let config = reactive_runtime::RouterConfig::new(TokenAuth::default()).functions(functions());
    let app = reactive_runtime::router(db, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        reactive_runtime::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .into_future(),
    );
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(stream_request(Some("A:u")).as_bytes())
        .await
        .unwrap();
    read_until(&mut conn, "event: ready", LONG).await;
    tx.send(()).unwrap();
    let (_, closed) = read_to_close(&mut conn, LONG).await;
    assert!(closed, "the stream ends at shutdown");
    let done = tokio::time::timeout(LONG, server).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "serve returns: {done:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn the_router_still_works_under_axum_serve() {
    let s = serve_on(Transport::Axum, memory_db().await, |c| c).await;
    let mut sse = s.events("A:u", &[("subscribe", A_KEY)], None).await;
    sse.ready().await;
    s.post("A:u", "rt.items.create", json!({"org": "A", "title": "y"}))
        .await;
    let f = sse.next_event(LONG).await.expect("event under axum::serve");
    assert_eq!(f.event.as_deref(), Some("invalidate"));
}

#[tokio::test]
async fn without_keep_alive_every_response_closes_its_connection() {
    let db = memory_db().await;
    let config = reactive_runtime::RouterConfig::new(TokenAuth::default()).functions(functions());
    let app = reactive_runtime::router(db, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        reactive_runtime::serve(listener, app)
            .http1_keep_alive(false)
            .into_future(),
    );
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let body = json!({"org": "A"}).to_string();
    let rpc = format!(
        "POST /rpc/rt.items.byOrg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer A:u\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(rpc.as_bytes()).await.unwrap();
    let (text, closed) = read_to_close(&mut conn, LONG).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(
        closed,
        "the server closed the connection after the response"
    );
}
