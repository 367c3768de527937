//! Reading the first request head of a connection.

use std::io;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Version};
use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;

use super::config::{Config, EventsPaths};

/// What the first bytes of a connection turned out to be.
pub(super) enum ReadHead {
    /// The peer closed before sending a complete head.
    Closed,
    /// The head is larger, or has more header fields, than allowed.
    TooLarge,
    /// A fresh `GET` for an event stream, with no body and nothing behind it.
    EventStream(Box<Request<Body>>),
    /// Anything else: the bytes read so far (a complete head, or one that does not
    /// parse, which hyper answers with `400`), for hyper to parse again.
    Other(Bytes),
}

/// Reads until one request head is complete or malformed, within `config`'s size and
/// header count.
pub(super) async fn read(stream: &TcpStream, config: &Config) -> io::Result<ReadHead> {
    let max = config.max_head_bytes;
    let mut buf = BytesMut::with_capacity(1024.min(max.max(1)));
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= max {
                return Ok(ReadHead::TooLarge);
            }
            buf.reserve(buf.len().min(max - buf.len()));
        }
        stream.readable().await?;
        match stream.try_read_buf(&mut buf) {
            Ok(0) => return Ok(ReadHead::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
        match parse(&buf, config.max_headers, &config.events_paths) {
            Parse::Partial => {}
            Parse::TooLarge => return Ok(ReadHead::TooLarge),
            Parse::EventStream(req) => return Ok(ReadHead::EventStream(req)),
            Parse::Other => return Ok(ReadHead::Other(buf.freeze())),
        }
    }
}

enum Parse {
    Partial,
    TooLarge,
    EventStream(Box<Request<Body>>),
    Other,
}

fn parse(buf: &[u8], max_headers: usize, events: &EventsPaths) -> Parse {
    // On the heap: the count is configurable, and a parse is cheap next to a read.
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parse::Partial,
        // Refused here, with the same answer hyper gives later requests.
        Err(httparse::Error::TooManyHeaders) => return Parse::TooLarge,
        // Malformed: hyper answers it (400).
        Err(_) => return Parse::Other,
    };
    if len != buf.len()
        || req.method != Some("GET")
        || !req.path.is_some_and(|p| events.matches(p))
        || !is_event_stream_request(req.headers)
    {
        return Parse::Other;
    }
    match build(&req) {
        Some(req) => Parse::EventStream(Box::new(req)),
        None => Parse::Other,
    }
}

/// Accepts `text/event-stream`, and has no body and no upgrade.
fn is_event_stream_request(headers: &[httparse::Header<'_>]) -> bool {
    let mut accepts = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("accept") {
            accepts |= contains_ignore_case(h.value, b"text/event-stream");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            if h.value.trim_ascii() != b"0" {
                return false;
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            || h.name.eq_ignore_ascii_case("upgrade")
        {
            return false;
        }
    }
    accepts
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn build(parsed: &httparse::Request<'_, '_>) -> Option<Request<Body>> {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(parsed.path?)
        .version(match parsed.version? {
            0 => Version::HTTP_10,
            _ => Version::HTTP_11,
        })
        .body(Body::empty())
        .ok()?;
    let map = req.headers_mut();
    map.reserve(parsed.headers.len());
    for h in parsed.headers.iter() {
        map.append(
            HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(h.value).ok()?,
        );
    }
    Some(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Parse {
        super::parse(raw, 100, &EventsPaths::LastSegment)
    }

    fn kind(raw: &str) -> &'static str {
        match parse(raw.as_bytes()) {
            Parse::Partial => "partial",
            Parse::TooLarge => "too large",
            Parse::EventStream(_) => "stream",
            Parse::Other => "other",
        }
    }

    #[test]
    fn only_a_bodiless_get_accepting_event_streams_is_taken() {
        let sse =
            "GET /events?subscribe=a HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";
        assert_eq!(kind(sse), "stream");
        assert_eq!(
            kind(
                "GET /events HTTP/1.1\r\naccept: Text/Event-Stream, */*\r\ncontent-length: 0\r\n\r\n"
            ),
            "stream"
        );
        assert_eq!(kind(&sse[..20]), "partial");
        assert_eq!(
            kind("GET /e HTTP/1.1\r\nAccept: application/json\r\n\r\n"),
            "other"
        );
        assert_eq!(
            kind("POST /e HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n"),
            "other"
        );
        assert_eq!(
            kind("GET /e HTTP/1.1\r\nAccept: text/event-stream\r\nContent-Length: 3\r\n\r\nabc"),
            "other"
        );
        assert_eq!(
            kind("GET /e HTTP/1.1\r\nAccept: text/event-stream\r\nUpgrade: websocket\r\n\r\n"),
            "other"
        );
        // A second request pipelined behind the first: hyper serves both.
        assert_eq!(kind(&format!("{sse}GET / HTTP/1.1\r\n\r\n")), "other");
        assert_eq!(kind("NOT HTTP\r\n\r\n"), "other");
    }

    /// Any other route answering a stream request would be buffered whole on the lean
    /// path: only the events route takes it.
    #[test]
    fn only_the_events_route_is_taken() {
        let req = |path: &str| format!("GET {path} HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n");
        assert_eq!(kind(&req("/events?subscribe=a")), "stream");
        assert_eq!(kind(&req("/api/events")), "stream");
        assert_eq!(kind(&req("/download")), "other");
        assert_eq!(kind(&req("/events/ack")), "other");
    }

    #[test]
    fn more_header_fields_than_allowed_are_refused() {
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("GET /events HTTP/1.1\r\n{many}\r\n");
        assert_eq!(kind(&raw), "too large");
        // Even before the head is complete (a large field may follow).
        assert_eq!(kind(&raw[..raw.len() - 2]), "too large");
    }

    #[test]
    fn the_request_keeps_uri_version_and_every_header() {
        let raw = "GET /api/events?lastEventId=7 HTTP/1.0\r\nAccept: text/event-stream\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n";
        let Parse::EventStream(req) = parse(raw.as_bytes()) else {
            panic!("not taken")
        };
        assert_eq!(req.uri().path(), "/api/events");
        assert_eq!(req.uri().query(), Some("lastEventId=7"));
        assert_eq!(req.version(), Version::HTTP_10);
        let cookies: Vec<_> = req.headers().get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }
}
