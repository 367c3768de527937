//! Answering an event-stream request on the bare socket.

use std::io;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::response::Parts;
use axum::http::{HeaderMap, Request, StatusCode, header};
use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;

use super::stopped;

/// Most bytes gathered from ready frames into one write.
const GATHER: usize = 64 * 1024;
/// Time for writing a refusal (`408`, `431`) whole.
const REFUSE_WRITE: Duration = Duration::from_secs(5);

/// Calls the router; streams a `200 text/event-stream` body to the socket until either
/// side ends it, or writes any other response whole. The connection closes after, and
/// at once when shutdown begins, even in the middle of a write to a client that does
/// not read: a graceful shutdown must not wait on it.
pub(super) async fn respond(
    stream: TcpStream,
    app: Router,
    req: Request<Body>,
    mut stop: watch::Receiver<bool>,
    write_timeout: Duration,
) -> io::Result<()> {
    tokio::select! {
        done = stream_response(&stream, app, req, write_timeout) => done,
        () = stopped(&mut stop) => Ok(()),
    }
}

async fn stream_response(
    stream: &TcpStream,
    app: Router,
    req: Request<Body>,
    write_timeout: Duration,
) -> io::Result<()> {
    // Boxed: the router's future is large and finished before the stream starts.
    let res = match Box::pin(app.oneshot(req)).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let (parts, mut body) = res.into_parts();
    if parts.status != StatusCode::OK || !is_event_stream(&parts.headers) {
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(io::Error::other)?;
        let mut out = response_head(&parts, Some(bytes.len()));
        out.extend_from_slice(&bytes);
        return write_all(stream, &out, write_timeout).await;
    }
    write_all(stream, &response_head(&parts, None), write_timeout).await?;
    drop(parts);
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    let Ok(first) = frame.into_data() else { continue };
                    let (bytes, ended) = gather(first, &mut body);
                    write_all(stream, &bytes, write_timeout).await?;
                    if ended {
                        return Ok(());
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "event stream body failed");
                    return Ok(());
                }
                None => return Ok(()),
            },
            ready = stream.readable() => {
                ready?;
                // A client sends nothing after the head of a stream request: this is its
                // close (0), a reset (error), or bytes to ignore.
                let mut sink = [0u8; 64];
                match stream.try_read(&mut sink) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// `first` plus every frame that is ready now (up to [`GATHER`] bytes), so that the
/// head and tail of an event, or a burst of events, leave in one system call. Returns
/// whether the body ended.
fn gather(first: Bytes, body: &mut Body) -> (Bytes, bool) {
    let mut more: Option<BytesMut> = None;
    let mut ended = false;
    while more.as_ref().map_or(first.len(), BytesMut::len) < GATHER {
        match body.frame().now_or_never() {
            Some(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    more.get_or_insert_with(|| {
                        let mut b = BytesMut::with_capacity(first.len() + data.len());
                        b.extend_from_slice(&first);
                        b
                    })
                    .extend_from_slice(&data);
                }
            }
            Some(Some(Err(_)) | None) => {
                ended = true;
                break;
            }
            None => break,
        }
    }
    (more.map_or(first, BytesMut::freeze), ended)
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// Status line and headers; the body is delimited by `content_length` or, when `None`,
/// by closing the connection.
fn response_head(parts: &Parts, content_length: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(len) = content_length {
        out.extend_from_slice(format!("content-length: {len}\r\n").as_bytes());
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

/// Answers with an empty `code` response and closes, letting the client read it.
pub(super) async fn refuse(stream: &mut TcpStream, code: u16, reason: &str) -> io::Result<()> {
    let head =
        format!("HTTP/1.1 {code} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    write_all(stream, head.as_bytes(), REFUSE_WRITE).await?;
    stream.shutdown().await?;
    // Closing with unread bytes would reset the connection and could destroy the answer
    // before the client reads it: drain what is still arriving, briefly.
    let drain = async {
        let mut sink = [0u8; 4096];
        loop {
            stream.readable().await?;
            match stream.try_read(&mut sink) {
                Ok(0) => return Ok::<(), io::Error>(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Ok(())
}

/// Writes `buf` whole within `timeout`. A client that has not taken it all by then (gone
/// without a FIN, not reading, or reading a trickle) is dropped rather than held until
/// TCP gives up. The deadline is not moved by partial progress: a reader taking a byte
/// now and then would otherwise hold its task, its queue and a shutdown indefinitely.
/// The timer only starts when the socket's buffer is full, so the common write costs
/// none.
async fn write_all(stream: &TcpStream, mut buf: &[u8], timeout: Duration) -> io::Result<()> {
    let mut deadline = None;
    while !buf.is_empty() {
        match stream.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let at = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + timeout);
                tokio::time::timeout_at(at, stream.writable())
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "client stopped reading")
                    })??;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
