//! The oracle of the lean path's conformance: what hyper's HTTP/1 server, configured as
//! `serve` configures it, reads from the same bytes. Shared by the `serve` test and the
//! fuzz target (`fuzz/fuzz_targets/lean_head.rs`), which includes this file by path.

use std::convert::Infallible;
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use hyper::body::{Body as _, Incoming};
use hyper::{Request, Response, Version};
use reactive_runtime::serve::conformance::{self, Decision, Limits};

/// A request head as both sides see it: header names lowercase, in order, repeats kept.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub uri: String,
    pub version: Version,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    pub fn of<B>(req: &Request<B>) -> Head {
        Head {
            method: req.method().to_string(),
            uri: req.uri().to_string(),
            version: req.version(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
        }
    }
}

/// One request hyper handed to its service.
#[derive(Debug)]
pub struct Seen {
    pub head: Head,
    /// Whether hyper knew at once that the request has no body.
    pub bodiless: bool,
}

/// The requests hyper's server reads from `bytes` followed by the end of the stream,
/// each answered at once with an empty `200`.
pub fn hyper_reads(bytes: &[u8], limits: Limits) -> Vec<Seen> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = {
        let seen = Arc::clone(&seen);
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let bodiless = req.body().is_end_stream() && req.body().size_hint().exact() == Some(0);
            seen.lock().unwrap().push(Seen {
                head: Head::of(&req),
                bodiless,
            });
            async { Ok::<_, Infallible>(Response::new(String::new())) }
        })
    };
    // As `serve`'s `hyper_connection` builds it (no timer: nothing here waits).
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_header_size(limits.max_head_bytes)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_head_bytes.max(8 * 1024))
        .keep_alive(true);
    let io = Replay {
        bytes: bytes.to_vec(),
        at: 0,
    };
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut cx = Context::from_waker(Waker::noop());
    // Reads and writes are always ready, so the connection ends within a few polls; the
    // bound only keeps a hyper that waits on something else from hanging the test.
    for _ in 0..1_000 {
        if conn.as_mut().poll(&mut cx).is_ready() {
            break;
        }
    }
    std::mem::take(&mut *seen.lock().unwrap())
}

/// Checks the lean path's decision on `bytes` against hyper's reading, and panics on a
/// disagreement: whenever the lean path takes a request, hyper reads the same method,
/// target, version and headers, knows there is no body, and needs every byte (hyper
/// reads no request from `bytes` minus its last byte, so nothing trails the head).
/// Returns the decision.
pub fn check(bytes: &[u8], limits: Limits) -> Decision {
    let decision = conformance::decide(bytes, limits);
    if let Decision::Take(req) = &decision {
        let lean = Head::of(req);
        let seen = hyper_reads(bytes, limits);
        assert_eq!(
            seen.len(),
            1,
            "lean took {lean:?}; hyper read {seen:?} from {:?}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(
            lean,
            seen[0].head,
            "lean and hyper read different heads from {:?}",
            String::from_utf8_lossy(bytes)
        );
        assert!(
            seen[0].bodiless,
            "hyper expects a body after {:?}",
            String::from_utf8_lossy(bytes)
        );
        let shorter = hyper_reads(&bytes[..bytes.len() - 1], limits);
        assert!(
            shorter.is_empty(),
            "bytes trail the head hyper reads from {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    decision
}

/// Checks that the socket reader, getting `bytes` in reads ending at `cuts`, decides as
/// a parse of everything it read would, and never misses the end of a head: when the
/// whole of `bytes` is one head the lean path takes, the reader takes it too.
pub fn check_reads(bytes: &[u8], cuts: &[usize], limits: Limits) {
    let (incremental, read, parses) = conformance::decide_in_reads(bytes, cuts, limits);
    let whole = conformance::decide(&bytes[..read], limits);
    let show = || String::from_utf8_lossy(bytes).into_owned();
    match (&incremental, &whole) {
        (Decision::Take(a), Decision::Take(b)) => assert_eq!(Head::of(a), Head::of(b)),
        // Parsing is skipped until a head may have ended: a malformed head may be found
        // only later, and a partial one never.
        (Decision::TooLarge, Decision::TooLarge)
        | (Decision::Hyper, Decision::Hyper)
        | (Decision::Partial, Decision::Partial | Decision::Hyper) => {}
        _ => panic!(
            "in reads: {incremental:?}, whole: {whole:?} ({} bytes of {:?})",
            read,
            show()
        ),
    }
    if let Decision::Take(_) = conformance::decide(bytes, limits) {
        assert!(
            matches!(incremental, Decision::Take(_)),
            "the reader missed the end of {:?}: {incremental:?}",
            show()
        );
    }
    // The first read, a line too many, and an end of head or the size limit: never more.
    assert!(parses <= 3, "{parses} parses of {:?}", show());
}

/// Bytes already in memory, then the end of the stream; writes are discarded.
struct Replay {
    bytes: Vec<u8>,
    at: usize,
}

impl hyper::rt::Read for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let n = (self.bytes.len() - self.at).min(buf.remaining());
        buf.put_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Replay {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
