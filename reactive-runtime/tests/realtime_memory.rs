//! Idle SSE connections stay small.
//!
//! - The framework's own state per idle stream (hub registration, subscription, the
//!   stream's state machine, the response body) is measured without sockets, by calling
//!   the router as a service 2000 times and keeping the bodies: at most 8 kB each.
//! - The whole cost over real TCP through `reactive_runtime::serve` (socket, task, the
//!   client's own socket in this same process too) is measured with 1000 raw clients and
//!   reported; it is bounded at 8 kB as a regression guard (under `axum::serve`, hyper's
//!   HTTP/1 read and write buffers alone would be 16 kB). The figures of record come from
//!   `scripts/sse-bench.sh` (docs/benchmarks.md).

mod realtime_support;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use realtime_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Both tests measure the resident memory of this one process: never at the same time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SUBSCRIBE: &str = "subscribe=rt.items.byOrg%3A%7B%22org%22%3A%22A%22%7D";

fn rss_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::test]
async fn framework_state_per_idle_stream_is_under_8kb() {
    let _serial = SERIAL.lock().await;
    let Some(_) = rss_bytes() else {
        eprintln!("skipped: no /proc/self/status");
        return;
    };
    let db = memory_db().await;
    let config = reactive_runtime::RouterConfig::new(TokenAuth::default()).functions(functions());
    let realtime = config.realtime.clone();
    let app = reactive_runtime::Reactive::builder()
        .database(db)
        .http(config)
        .build()
        .await
        .expect("wire the router")
        .router();
    // One user per stream: a principal holds at most 32 streams.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let open = || {
        let app = app.clone();
        let user = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            let req = Request::get(format!("/events?{SUBSCRIBE}"))
                .header("authorization", format!("Bearer A:u{user}"))
                .header("cookie", "session=0123456789abcdef0123456789abcdef")
                .header(
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
                )
                .body(Body::empty())
                .unwrap();
            let res = app.oneshot(req).await.unwrap();
            assert_eq!(res.status().as_u16(), 200);
            res.into_body()
        }
    };
    let mut warm = Vec::new();
    for _ in 0..200 {
        warm.push(open().await);
    }
    drop(warm);
    let before = rss_bytes().unwrap();
    const N: usize = 2000;
    let mut bodies = Vec::with_capacity(N);
    for _ in 0..N {
        bodies.push(open().await);
    }
    let after = rss_bytes().unwrap();
    assert_eq!(realtime.connections(), N);
    let per = after.saturating_sub(before) / N;
    eprintln!("framework state per idle SSE stream: {per} bytes");
    assert!(per <= 8 * 1024, "{per} bytes per stream");
    drop(bodies);
    assert_eq!(realtime.connections(), 0, "dropping a body unregisters it");
}

/// Opens a stream as user `u<user>` (a principal holds at most 32 streams).
async fn open_tcp(addr: &str, user: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /events?{SUBSCRIBE} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer A:u{user}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = [0u8; 1024];
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("event: ready") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("ready in time")
            .expect("read");
        assert!(n > 0, "closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    s
}

#[tokio::test]
async fn whole_cost_per_idle_tcp_stream_is_bounded() {
    let _serial = SERIAL.lock().await;
    let Some(_) = rss_bytes() else {
        eprintln!("skipped: no /proc/self/status");
        return;
    };
    let s = start().await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut warm = Vec::new();
    for i in 0..200 {
        warm.push(open_tcp(&addr, i).await);
    }
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_bytes().unwrap();
    const N: usize = 1000;
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        conns.push(open_tcp(&addr, 1000 + i).await);
    }
    let after = rss_bytes().unwrap();
    let per = after.saturating_sub(before) / N;
    eprintln!("resident memory per idle SSE connection over TCP (both ends): {per} bytes");
    assert!(s.realtime.connections() >= N);
    assert!(per <= 8 * 1024, "{per} bytes per connection");
}
