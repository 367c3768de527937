//! Idle SSE connections stay small: 2000 raw TCP clients hold a stream open each; the
//! process's resident memory grows by at most 8 kB per connection (server side and the
//! tiny raw client side together).

mod realtime_support;

use std::time::Duration;

use realtime_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn rss_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

async fn open(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /events?subscribe=rt.items.byOrg%3A%7B%22org%22%3A%22A%22%7D HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer A:u\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    // read until the ready frame arrived (the connection is registered by then)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_streams_fit_in_8kb_each() {
    let Some(_) = rss_bytes() else {
        eprintln!("skipped: no /proc/self/status");
        return;
    };
    let s = start().await;
    let addr = s.base.trim_start_matches("http://").to_string();
    // warm up allocator pools and lazily initialised state
    let mut warm = Vec::new();
    for _ in 0..200 {
        warm.push(open(&addr).await);
    }
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_bytes().unwrap();
    const N: usize = 2000;
    let mut conns = Vec::with_capacity(N);
    for _ in 0..N {
        conns.push(open(&addr).await);
    }
    let after = rss_bytes().unwrap();
    let per = after.saturating_sub(before) / N;
    eprintln!("resident memory per idle SSE connection: {per} bytes");
    assert!(s.realtime.hub().connections() >= N);
    assert!(per <= 8 * 1024, "{per} bytes per connection");
    drop(conns);
}
