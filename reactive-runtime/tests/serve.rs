//! `reactive_runtime::serve`: event streams on the bare socket, everything else through
//! hyper, over real TCP connections.

mod realtime_support;
mod serve_support;

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
    assert_eq!(s.realtime.connections(), 1);
    drop(conn);
    // No event is written after the close: the server must notice by reading.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while s.realtime.connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.realtime.connections(), 0);
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
    let app = reactive_runtime::Reactive::builder()
        .database(db)
        .http(config)
        .build()
        .await
        .expect("wire the router")
        .router();
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
    let app = reactive_runtime::Reactive::builder()
        .database(db)
        .http(config)
        .build()
        .await
        .expect("wire the router")
        .router();
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

// ---- Limits and hostile clients, against small routers of their
// own so that each runs without a database and in bounded time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::routing::get;

/// A running `serve` of `app` as `configure` sets it up; dropping `stop` shuts it down.
struct Front {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn front(
    app: axum::Router,
    configure: impl FnOnce(reactive_runtime::serve::Serve) -> reactive_runtime::serve::Serve,
) -> Front {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = configure(reactive_runtime::serve(listener, app)).with_graceful_shutdown(async {
        let _ = stopped.await;
    });
    let done = tokio::spawn(server.into_future());
    Front { addr, stop, done }
}

fn hello() -> axum::Router {
    axum::Router::new().route("/", get(|| async { "hello" }))
}

/// Counts the event-stream bodies alive, so a test sees when the server dropped one.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `/events` answers an endless stream of 16 KiB frames, as fast as the socket takes
/// them; the counter says how many such streams are alive.
fn flood() -> (axum::Router, Arc<AtomicUsize>) {
    let live = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&live);
    let app = axum::Router::new().route(
        "/events",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let guard = Live(Arc::clone(&counter));
            let frame = Bytes::from(format!("data: {}\n\n", "x".repeat(16 * 1024)));
            let frames = futures::stream::repeat_with(move || {
                let _alive = &guard;
                Ok::<_, std::io::Error>(frame.clone())
            });
            async move {
                axum::response::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(frames))
                    .unwrap()
            }
        }),
    );
    (app, live)
}

const FLOOD_REQUEST: &str = "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";

/// Item 4: connections above the cap are refused at once (`503` or closed), and served
/// again once others close.
#[tokio::test]
async fn connections_above_the_cap_are_refused_at_once() {
    let f = front(hello(), |s| s.max_connections(2)).await;
    // Two idle connections, each in the middle of a head.
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(f.addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        idle.push(c);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(f.addr).await.unwrap();
    let (text, closed) = read_to_close(&mut third, Duration::from_secs(2)).await;
    assert!(closed, "refused at once, not held: {text:?}");
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{text}"
    );
    drop(idle.pop());
    let served = async {
        loop {
            let mut c = TcpStream::connect(f.addr).await.unwrap();
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let (text, _) = read_to_close(&mut c, LONG).await;
            if text.starts_with("HTTP/1.1 200 OK") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(LONG, served)
        .await
        .expect("served again below the cap");
}

/// Item 6: a response of another route to a request that accepts event streams is not
/// buffered by the lean path: hyper streams it.
#[tokio::test]
async fn only_the_events_route_takes_the_lean_path() {
    let app = axum::Router::new().route(
        "/download",
        get(|| async {
            // One chunk, then nothing for as long as the client waits.
            let first = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from("first"))]);
            Body::from_stream(futures::StreamExt::chain(first, futures::stream::pending()))
        }),
    );
    let f = front(app, |s| s).await;
    let mut c = TcpStream::connect(f.addr).await.unwrap();
    c.write_all(b"GET /download HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let text = read_until(&mut c, "first", Duration::from_secs(2)).await;
    assert!(text.contains("first"), "streamed, not buffered: {text:?}");
}

/// Item 3: a large header after many small ones is refused on the first request, as it
/// is on a later request of a kept-alive connection (hyper's path).
#[tokio::test]
async fn an_oversized_head_is_refused_on_both_paths() {
    let f = front(hello(), |s| s).await;
    let small: String = (0..33).map(|i| format!("X-{i}: v\r\n")).collect();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{small}X-Big: {}\r\n\r\n",
        "a".repeat(300 * 1024)
    );

    let mut first = TcpStream::connect(f.addr).await.unwrap();
    let _ = first.write_all(big.as_bytes()).await;
    let (text, _) = read_to_close(&mut first, LONG).await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431 "),
        "first request: {text:?}"
    );

    let mut later = TcpStream::connect(f.addr).await.unwrap();
    later
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let ok = read_until(&mut later, "hello", LONG).await;
    assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
    let _ = later.write_all(big.as_bytes()).await;
    let (text, _) = read_to_close(&mut later, LONG).await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431 "),
        "kept-alive request: {text:?}"
    );

    // Too many header fields: 431 as well.
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let mut c = TcpStream::connect(f.addr).await.unwrap();
    let _ = c
        .write_all(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes())
        .await;
    let (text, _) = read_to_close(&mut c, LONG).await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431 "),
        "{text:?}"
    );
}

/// Sends `head` one line at a time every `every` until the server closes; returns what
/// it answered and how long the connection lived.
async fn trickle(addr: SocketAddr, prefix: &[u8], every: Duration) -> (String, Duration) {
    let started = tokio::time::Instant::now();
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(prefix).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    for i in 0.. {
        match tokio::time::timeout(every, c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {
                if c.write_all(format!("X-T{i}: v\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

/// Item 8 (found in review of the reader): with a limit that is not a power of two the
/// reader's buffer grew past it, and a stream head larger than the limit, arriving in
/// one piece, was taken where hyper answers `431`.
#[tokio::test]
async fn a_stream_head_over_an_odd_limit_is_refused_in_one_read() {
    let (app, live) = flood();
    let f = front(app, |s| s.max_head_bytes(10_000)).await;
    let head = format!(
        "GET /events HTTP/1.1\r\nAccept: text/event-stream\r\nX-Big: {}\r\n\r\n",
        "a".repeat(11_000)
    );
    let mut c = TcpStream::connect(f.addr).await.unwrap();
    let _ = c.write_all(head.as_bytes()).await;
    let text = read_until(&mut c, "\r\n\r\n", LONG).await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431 "),
        "{}",
        &text[..text.len().min(200)]
    );
    assert_eq!(live.load(Ordering::SeqCst), 0, "no stream was started");
}

/// Item 3: a head that trickles in is cut at the budget on both paths, and the budget
/// of a connection's first head does not restart when hyper takes it over.
#[tokio::test]
async fn a_slow_head_is_cut_at_the_budget_on_both_paths() {
    let budget = Duration::from_secs(1);
    let f = front(hello(), |s| s.head_timeout(budget)).await;
    let cut = budget + Duration::from_millis(900);

    // The lean path's reader: an event-stream request.
    let (text, lived) = trickle(
        f.addr,
        b"GET /events HTTP/1.1\r\nAccept: text/event-stream\r\n",
        Duration::from_millis(100),
    )
    .await;
    assert!(lived < cut, "lean path held it {lived:?}: {text:?}");
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408 "),
        "{text:?}"
    );

    // Many header fields, trickled: one budget however many fields arrive (hyper was
    // handed the connection at the 33rd field and started a budget of its own).
    let many: String = (0..20).map(|i| format!("X-{i}: v\r\n")).collect();
    let (text, lived) = trickle(
        f.addr,
        format!("POST / HTTP/1.1\r\nHost: x\r\n{many}").as_bytes(),
        Duration::from_millis(60),
    )
    .await;
    assert!(
        lived < budget + Duration::from_millis(500),
        "first head held {lived:?}: {text:?}"
    );

    // hyper's path: the second head of a kept-alive connection.
    let mut c = TcpStream::connect(f.addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let ok = read_until(&mut c, "hello", LONG).await;
    assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
    let started = tokio::time::Instant::now();
    c.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let mut closed = false;
    for i in 0..100 {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(100), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {}
            Err(_) => {
                if c.write_all(format!("X-T{i}: v\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    closed = true;
                    break;
                }
            }
        }
    }
    assert!(closed, "hyper's path cut the slow head");
    assert!(started.elapsed() < cut, "after {:?}", started.elapsed());
}

/// Item 7: shutdown does not wait on a stream whose client stopped reading.
#[tokio::test]
async fn shutdown_does_not_wait_for_a_client_that_stopped_reading() {
    let (app, live) = flood();
    let f = front(app, |s| s).await;
    let mut c = TcpStream::connect(f.addr).await.unwrap();
    c.write_all(FLOOD_REQUEST.as_bytes()).await.unwrap();
    read_until(&mut c, "data: ", LONG).await;
    // Stop reading; let the socket buffers fill so that the server's write blocks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(live.load(Ordering::SeqCst), 1);
    f.stop.send(()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(3), f.done).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "serve returned at once: {done:?}"
    );
    assert_eq!(live.load(Ordering::SeqCst), 0);
    drop(c);
}
