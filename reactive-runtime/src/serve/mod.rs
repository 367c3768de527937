//! [`serve`]: an HTTP/1.1 server for an axum [`Router`] that streams Server-Sent Events
//! without hyper's per-connection buffers.
//!
//! `axum::serve` works with [`router`](crate::router::router) too; this server exists for
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
//! Sockets get `TCP_NODELAY` (an event must not wait for the previous one's ACK), each
//! request carries [`ConnectInfo`](axum::extract::ConnectInfo) with the peer address, and
//! a head that is not complete within 30 s or is larger than 64 KiB is refused (`408`,
//! `431`). [`Serve::with_graceful_shutdown`] stops accepting, ends every event stream (its
//! client reconnects, to another instance if there is one) and waits for the requests in
//! flight.
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

mod head;
mod rewind;
mod sse;

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use head::ReadHead;
use rewind::Rewind;

/// Longest request head accepted (`431` above).
const MAX_HEAD: usize = 64 * 1024;
/// Time allowed for a request head to arrive (`408` after).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a graceful shutdown gives a request in flight on a hyper connection.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until the returned future is dropped (or, with
/// [`Serve::with_graceful_shutdown`], until the signal fires). See the module docs.
pub fn serve(listener: TcpListener, app: Router) -> Serve {
    Serve {
        listener,
        app,
        signal: None,
        keep_alive: true,
    }
}

/// The server [`serve`] returns; `.await` it to run.
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listener: TcpListener,
    app: Router,
    signal: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    keep_alive: bool,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
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
        self.keep_alive = keep_alive;
        self
    }

    async fn run(self) -> io::Result<()> {
        let Serve {
            listener,
            app,
            signal,
            keep_alive,
        } = self;
        let mut signal = signal.unwrap_or_else(|| Box::pin(std::future::pending()));
        let (stop_tx, stop_rx) = watch::channel(false);
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
            let app = app.clone();
            let stop = stop_rx.clone();
            tokio::spawn(async move {
                if let Err(e) = connection(stream, peer, app, stop, keep_alive).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
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
    keep_alive: bool,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let head = tokio::select! {
        head = tokio::time::timeout(HEAD_TIMEOUT, head::read(&stream, MAX_HEAD)) => head,
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
                Box::pin(sse::respond(stream, app, req, stop)).await
            }
            ReadHead::Other(bytes) => {
                Box::pin(hyper_connection(
                    Rewind::new(bytes, stream),
                    peer,
                    app,
                    stop,
                    keep_alive,
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

/// Everything but a fresh event stream: hyper's HTTP/1 server, as `axum::serve` runs it.
async fn hyper_connection(
    io: Rewind,
    peer: SocketAddr,
    app: Router,
    mut stop: watch::Receiver<bool>,
    keep_alive: bool,
) -> io::Result<()> {
    let service = app.map_request(move |req: Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(keep_alive);
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
