//! [`serve`]: an HTTP/1.1 server for an axum [`Router`] that streams Server-Sent Events
//! without hyper's per-connection buffers.
//!
//! `axum::serve` works with [`Reactive::router`](crate::Reactive::router) too; this server exists for
//! the cost of an idle SSE connection. Under hyper every connection keeps an 8 KiB read
//! buffer and an 8 KiB write buffer for as long as it is open (hyper does not let a
//! server go below 8 KiB), which is most of the memory of an idle event stream. Here:
//!
//! 1. The request head is read into a small buffer and parsed with `httparse`.
//! 2. A `GET` that accepts `text/event-stream`, has no body and nothing pipelined behind
//!    it is answered by calling the router like any other request. If the response is a
//!    `200 text/event-stream`, its head is written and its body frames go straight to the
//!    socket (frames that are ready together are written with one system call); the
//!    connection then holds only the socket, the router's body stream and a small task.
//!    The body is delimited by closing the connection (`Connection: close`, no chunked
//!    encoding), which HTTP/1.1 allows and every `EventSource` reads. Any other response
//!    (a 401, a 400 …) is written whole and the connection is closed.
//! 3. Every other request goes to hyper's HTTP/1 server with the bytes already read
//!    replayed first, so keep-alive, request bodies, pipelining and upgrades behave as
//!    under `axum::serve`. (A stream requested later on such a keep-alive connection is
//!    served by hyper: correct, only heavier.)
//!
//! Only requests for the events route (a path ending in `/events` by default,
//! [`Serve::events_paths`] otherwise, matched on the path the router will see) take the
//! lean path: any other response would have to be buffered whole there.
//!
//! The lean path takes a head only where hyper would read the same request (same
//! method, target, version and headers, no body, nothing behind it); every doubtful head
//! (smuggling shapes, obs-fold, NUL bytes, upgrades, pipelining, a repeated
//! `Content-Length`) goes to hyper. [`conformance`] exposes the decision as a pure
//! function for the differential test against hyper (`tests/serve_support/`) and the
//! fuzz target (`fuzz/`). The head is parsed only when its end may have arrived, so a
//! head arriving a byte at a time is not parsed once per byte.
//!
//! Each request carries [`ConnectInfo`] with the peer address.
//!
//! # Limits (one contract for both paths)
//!
//! | limit | default | beyond it |
//! |---|---|---|
//! | connections open at once ([`Serve::max_connections`]) | 10,000, or fewer below the file descriptor limit | the new connection gets `503` (`retry-after: 1`) written without waiting and is closed |
//! | request head size ([`Serve::max_head_bytes`]) | 64 KiB | `431`, connection closed |
//! | request header count ([`Serve::max_headers`]) | 100 | `431`, connection closed |
//! | time for a request head ([`Serve::head_timeout`]) | 30 s from the connection's accept (from the end of the previous response on a kept-alive connection) | `408` (lean path) or closed (hyper) |
//! | time for one write of stream frames ([`Serve::write_timeout`]) | 30 s, not reset by partial progress | the stream's connection is closed (its client reconnects) |
//! | TCP keepalive ([`Serve::tcp_keepalive`]) | probes after 30 s idle, every 10 s, 3 unanswered → closed | the kernel closes the connection |
//! | `TCP_USER_TIMEOUT`, Linux ([`Serve::tcp_user_timeout`]) | 60 s | data unacknowledged that long closes the connection |
//!
//! A failing `accept` (out of file descriptors) is retried after 1 s rather than at once.
//!
//! [`Serve::with_graceful_shutdown`] stops accepting, ends every event stream at once,
//! even one whose client stopped reading (its client reconnects, to another instance if
//! there is one), and gives other requests in flight up to 5 s.
//!
//! It speaks plain HTTP/1.1 over TCP: terminate TLS (and HTTP/2) in a proxy in front of
//! it, or use `axum::serve` with a listener of your own where you need them in-process.
//!
//! ```no_run
//! # async fn demo(app: axum::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! // e.g. `tokio::signal::ctrl_c().await` then `stop.send(())` in another task
//! # drop(stop);
//! reactive_runtime::serve(listener, app)
//!     .with_graceful_shutdown(async { let _ = stopped.await; })
//!     .await
//! # }
//! ```

mod config;
#[doc(hidden)]
pub mod conformance;
mod head;
mod rewind;
mod sse;

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use config::{Config, EventsPaths};
use head::ReadHead;
use rewind::Rewind;

/// Time a graceful shutdown gives a request in flight on a hyper connection.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Written, without waiting, to a connection above [`Serve::max_connections`].
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\
retry-after: 1\r\nconnection: close\r\n\r\n";

/// Serves `app` on `listener` until the returned future is dropped (or, with
/// [`Serve::with_graceful_shutdown`], until the signal fires). See the module docs.
pub fn serve(listener: TcpListener, app: Router) -> Serve {
    Serve {
        listener,
        app,
        signal: None,
        config: Config::default(),
    }
}

/// The server [`serve`] returns; `.await` it to run.
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listener: TcpListener,
    app: Router,
    signal: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    config: Config,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Serve {
    /// Stops when `signal` completes: no new connections, event streams ended at once,
    /// other requests finished first.
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.signal = Some(Box::pin(signal));
        self
    }

    /// Whether ordinary requests keep their connection open for the next one (default
    /// `true`). A browser may send its `EventSource` request on such a connection, which
    /// hyper then serves (heavier); with `false` every response closes its connection,
    /// so every event stream arrives on a fresh one and takes the lean path, at the cost
    /// of a new TCP connection per request. Behind a proxy that opens a connection per
    /// upstream request (nginx's default) it makes no difference.
    pub fn http1_keep_alive(mut self, keep_alive: bool) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// Most connections open at once (default 10,000, lowered to stay 256 below the
    /// process's soft file descriptor limit). A connection above it is answered `503`
    /// and closed at once, so that one client holding thousands of idle sockets cannot
    /// exhaust the descriptors every other client needs.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.config.max_connections = max;
        self
    }

    /// Largest request head, request line included (default 64 KiB); larger → `431`.
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.config.max_head_bytes = bytes;
        self
    }

    /// Most header fields in a request (default 100); more → `431`.
    pub fn max_headers(mut self, count: usize) -> Self {
        self.config.max_headers = count;
        self
    }

    /// Time for a request head to arrive whole (default 30 s). For a connection's first
    /// request it counts from the accept and is not restarted when the request is
    /// handed to hyper. After it: `408` and closed.
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.config.head_timeout = timeout;
        self
    }

    /// Time one write of event-stream frames (at most 64 KiB gathered) may take in all
    /// (default 30 s). It is a deadline per write, not an idle timer: a client that
    /// reads a byte now and then is dropped as surely as one that reads nothing.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// Idle time before TCP keepalive probes start (default 30 s; then every 10 s, and
    /// the connection is closed after 3 unanswered); `None` turns keepalive off. Reaps
    /// peers that vanished without closing (a dead host, a dropped NAT entry) even when
    /// the server has nothing to write.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.config.tcp_keepalive = idle;
        self
    }

    /// `TCP_USER_TIMEOUT` on Linux (default 60 s; ignored elsewhere): data left
    /// unacknowledged that long closes the connection, instead of the kernel's ~15
    /// minutes of retransmissions. `None` keeps the kernel's behaviour.
    pub fn tcp_user_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.tcp_user_timeout = timeout;
        self
    }

    /// The paths of the events route, which the lean path serves (default: any path
    /// whose last segment is `events`, as `/events` or `/api/events`). Set them when
    /// the router is mounted elsewhere or another route ends in `/events`.
    pub fn events_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.events_paths = EventsPaths::Exact(paths.into_iter().map(Into::into).collect());
        self
    }

    async fn run(self) -> io::Result<()> {
        let Serve {
            listener,
            app,
            signal,
            config,
        } = self;
        let config = Arc::new(config);
        let mut signal = signal.unwrap_or_else(|| Box::pin(std::future::pending()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let permits = Arc::new(Semaphore::new(config.max_connections));
        let mut at_capacity = false;
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        accept_error(e).await;
                        continue;
                    }
                },
                () = &mut signal => break,
            };
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                // Logged once per episode: a flood must not flood the log too.
                if !at_capacity {
                    tracing::warn!(
                        max = config.max_connections,
                        "connection limit reached; refusing new connections"
                    );
                    at_capacity = true;
                }
                refuse_over_capacity(stream);
                continue;
            };
            at_capacity = false;
            let app = app.clone();
            let stop = stop_rx.clone();
            let config = Arc::clone(&config);
            tokio::spawn(async move {
                if let Err(e) = connection(stream, peer, app, stop, &config).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                drop(permit);
            });
        }
        drop(listener);
        drop(stop_rx);
        let _ = stop_tx.send(true);
        // Every connection task holds a receiver; `closed` resolves when all are gone.
        stop_tx.closed().await;
        Ok(())
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Answers `503` if the socket takes it now, and closes: waiting for the client would
/// let the refused connections pile up again.
fn refuse_over_capacity(stream: TcpStream) {
    let _ = stream.try_write(OVER_CAPACITY);
    drop(stream);
}

/// Connection errors (the peer gave up before `accept`) are normal; running out of file
/// descriptors is not, and retrying at once would spin: wait a little, as axum does.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted | WouldBlock
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    mut stop: watch::Receiver<bool>,
    config: &Config,
) -> io::Result<()> {
    config.configure(&stream)?;
    // The first head is read whole here under one deadline, whichever path serves it:
    // hyper then never sees a partial first head, nor restarts the timer.
    let head = tokio::select! {
        head = tokio::time::timeout(config.head_timeout, head::read(&stream, config)) => head,
        () = stopped(&mut stop) => return Ok(()),
    };
    match head {
        // Each branch is boxed: a task's future is as large as its largest state, and an
        // idle event stream must not carry the size of a hyper connection (or of a drain
        // buffer).
        Err(_) => Box::pin(sse::refuse(&mut stream, 408, "Request Timeout")).await,
        Ok(head) => match head? {
            ReadHead::Closed => Ok(()),
            ReadHead::TooLarge => {
                Box::pin(sse::refuse(
                    &mut stream,
                    431,
                    "Request Header Fields Too Large",
                ))
                .await
            }
            ReadHead::EventStream(req) => {
                let mut req = unbox(req);
                req.extensions_mut().insert(ConnectInfo(peer));
                Box::pin(sse::respond(stream, app, req, stop, config.write_timeout)).await
            }
            ReadHead::Other(bytes) => {
                Box::pin(hyper_connection(
                    Rewind::new(bytes, stream),
                    peer,
                    app,
                    stop,
                    config,
                ))
                .await
            }
        },
    }
}

/// Moves a value out of its box and frees the box now (a box moved out of inside a
/// `match` arm is freed only at the arm's end, after the awaits in it).
#[allow(clippy::boxed_local)] // taking the box is the point: it is freed on return
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}

/// Resolves once shutdown began (its `Ref` guard must not live across an await: it is
/// not `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Everything but a fresh event stream: hyper's HTTP/1 server, as `axum::serve` runs it,
/// under the same head limits as the lean path.
async fn hyper_connection(
    io: Rewind,
    peer: SocketAddr,
    app: Router,
    mut stop: watch::Receiver<bool>,
    config: &Config,
) -> io::Result<()> {
    let service = app.map_request(move |req: Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.head_timeout)
        .max_header_size(config.max_head_bytes)
        .max_headers(config.max_headers)
        // hyper's read buffer otherwise grows to ~400 KiB for a large head; it needs at
        // least 8 KiB.
        .max_buf_size(config.max_head_bytes.max(8 * 1024))
        .keep_alive(config.keep_alive);
    let conn = builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        done = conn.as_mut() => return done.map_err(io::Error::other),
        () = stopped(&mut stop) => conn.as_mut().graceful_shutdown(),
    }
    // A response that never ends (an event stream on a kept-alive connection) would hold
    // the shutdown forever: give requests in flight a bounded time.
    match tokio::time::timeout(SHUTDOWN_GRACE, conn).await {
        Ok(done) => done.map_err(io::Error::other),
        Err(_) => Ok(()),
    }
}
