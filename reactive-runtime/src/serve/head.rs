//! Reading the first request head of a connection.

use std::io;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Version};
use bytes::{BufMut, Bytes, BytesMut};
use tokio::net::TcpStream;

use super::config::Config;

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
    let mut head = HeadBuf::new(config);
    loop {
        head.make_room();
        stream.readable().await?;
        // Never past the limit: a head that completes beyond it is refused here as hyper
        // refuses it (`431`), not taken because the buffer happened to grow larger.
        let room = config.max_head_bytes - head.buf.len();
        if room == 0 {
            // Only with a limit of 0 (a full buffer is always decided): a read into no
            // room would look like the peer closing.
            return Ok(ReadHead::TooLarge);
        }
        match stream.try_read_buf(&mut (&mut head.buf).limit(room)) {
            Ok(0) => return Ok(ReadHead::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
        if let Some(done) = head.decide() {
            return Ok(done);
        }
    }
}

/// The bytes of a connection's first head so far, and where parsing them is worth it.
///
/// Parsing from the start after every read is quadratic in the number of reads (a head
/// sent a byte at a time costs 64 Ki parses of up to 64 KiB): as hyper does, the head
/// is parsed only when its end may have arrived. The exceptions are the first read (a
/// peer that does not speak HTTP is handed to hyper at once), the read that brings
/// more lines than [`Config::max_headers`] allows (refused before the head ends) and
/// the read that reaches [`Config::max_head_bytes`].
pub(super) struct HeadBuf<'c> {
    config: &'c Config,
    pub(super) buf: BytesMut,
    /// Length of `buf` when it was last looked at.
    scanned: usize,
    /// Line feeds in `buf[start..scanned]`.
    lines: usize,
    /// Where the request line starts (the first byte that is not CR or LF), once seen.
    start: Option<usize>,
    /// Full parses so far: bounded per head, so that a head sent a byte at a time costs
    /// no more than a few parses (a slow client must not buy quadratic work).
    pub(super) parses: usize,
}

impl<'c> HeadBuf<'c> {
    pub(super) fn new(config: &'c Config) -> Self {
        HeadBuf {
            config,
            buf: BytesMut::with_capacity(1024.min(config.max_head_bytes.max(1))),
            scanned: 0,
            lines: 0,
            start: None,
            parses: 0,
        }
    }

    /// Grows a full buffer towards the head limit (doubling, so growth is linear).
    fn make_room(&mut self) {
        let (len, max) = (self.buf.len(), self.config.max_head_bytes);
        if len == self.buf.capacity() && len < max {
            self.buf.reserve(len.max(1).min(max - len));
        }
    }

    /// What the bytes read so far amount to, or `None` to read more.
    pub(super) fn decide(&mut self) -> Option<ReadHead> {
        // At the limit too: a malformed head is hyper's to answer (`400`), as when it
        // arrives whole, rather than a `431` (found by the fuzz target).
        let parse = if self.worth_parsing() || self.buf.len() >= self.config.max_head_bytes {
            self.parses += 1;
            parse(&self.buf, self.config)
        } else {
            Parse::Partial
        };
        match parse {
            Parse::Partial => None,
            Parse::TooLarge => Some(ReadHead::TooLarge),
            Parse::EventStream(req) => Some(ReadHead::EventStream(req)),
            Parse::Other => Some(ReadHead::Other(std::mem::take(&mut self.buf).freeze())),
        }
    }

    fn worth_parsing(&mut self) -> bool {
        let prev = self.scanned;
        if self.start.is_none() {
            self.start = self.buf[prev..]
                .iter()
                .position(|b| !matches!(b, b'\r' | b'\n'))
                .map(|i| prev + i);
        }
        let lines_before = self.lines;
        // Counted from the request line: the empty lines before it, which httparse
        // skips, would make the early refusal fire before the headers are there (found
        // by the fuzz target).
        if let Some(start) = self.start {
            let new = &self.buf[start.max(prev)..];
            self.lines += new.iter().filter(|&&b| b == b'\n').count();
        }
        self.scanned = self.buf.len();
        let too_many_lines =
            lines_before <= self.config.max_headers + 1 && self.lines > self.config.max_headers + 1;
        let may_end = self
            .start
            .is_some_and(|start| may_end_head(&self.buf, start.max(prev.saturating_sub(3))));
        prev == 0 || too_many_lines || may_end
    }
}

/// Whether a head end (`\n\n` or `\n\r\n`: httparse accepts bare line feeds) starts in
/// `buf` at or after `from`. Callers pass the previous length minus 3, the first place
/// an end that was not there before can start, and never a place before the request
/// line: httparse skips empty lines there, and a peer sending only those must not
/// cause a parse per read.
fn may_end_head(buf: &[u8], from: usize) -> bool {
    let tail = &buf[from..];
    tail.iter().enumerate().any(|(i, &b)| {
        b == b'\n'
            && match tail.get(i + 1) {
                Some(b'\n') => true,
                Some(b'\r') => tail.get(i + 2) == Some(&b'\n'),
                _ => false,
            }
    })
}

/// The lean path's decision on the bytes a connection sent so far.
pub(super) enum Parse {
    /// No complete head yet (and within the limits): read more.
    Partial,
    /// Over [`Config::max_head_bytes`] or [`Config::max_headers`]: `431`.
    TooLarge,
    /// Exactly one bodiless `GET` head for the events route: the lean path serves it.
    EventStream(Box<Request<Body>>),
    /// Anything else, malformed included: hyper serves (or refuses) it.
    Other,
}

/// The lean path's decision on `buf`, a pure function of the bytes and the limits (the
/// conformance tests and the fuzz target compare it with hyper's reading).
pub(super) fn parse(buf: &[u8], config: &Config) -> Parse {
    // On the heap: the count is configurable, and a parse is cheap next to a read.
    let mut headers = vec![httparse::EMPTY_HEADER; config.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        // The limit hyper applies to the same head (`431`).
        Ok(httparse::Status::Complete(len)) if len > config.max_head_bytes => {
            return Parse::TooLarge;
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= config.max_head_bytes => {
            return Parse::TooLarge;
        }
        Ok(httparse::Status::Partial) => return Parse::Partial,
        // Refused here, with the same answer hyper gives later requests.
        Err(httparse::Error::TooManyHeaders) => return Parse::TooLarge,
        // Malformed: hyper answers it (400).
        Err(_) => return Parse::Other,
    };
    if len != buf.len() || req.method != Some("GET") || !is_event_stream_request(req.headers) {
        return Parse::Other;
    }
    match build(&req) {
        // The route is matched on the path the router will see (a fragment or an
        // absolute-form target read raw would name another route).
        Some(req) if config.events_paths.matches(req.uri().path()) => {
            Parse::EventStream(Box::new(req))
        }
        _ => Parse::Other,
    }
}

/// Accepts `text/event-stream`, and has no body and no upgrade.
fn is_event_stream_request(headers: &[httparse::Header<'_>]) -> bool {
    let mut accepts = false;
    let mut content_length = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("accept") {
            accepts |= contains_ignore_case(h.value, b"text/event-stream");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // A repeated one goes to hyper, even when equal: hyper keeps only the first,
            // and the router must see the headers hyper would give it (found by the
            // differential test).
            if content_length || h.value.trim_ascii() != b"0" {
                return false;
            }
            content_length = true;
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
    // `try_`: a `max_headers` above what a `HeaderMap` holds must not panic.
    map.try_reserve(parsed.headers.len()).ok()?;
    for h in parsed.headers.iter() {
        map.try_append(
            HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(h.value).ok()?,
        )
        .ok()?;
    }
    Some(req)
}

#[cfg(test)]
mod tests {
    use super::super::config::EventsPaths;
    use super::*;

    fn config() -> Config {
        Config {
            max_headers: 100,
            max_head_bytes: 64 * 1024,
            events_paths: EventsPaths::LastSegment,
            ..Config::default()
        }
    }

    fn parse(raw: &[u8]) -> Parse {
        super::parse(raw, &config())
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

    /// Reads that cannot end the head cost no parse, so a head sent
    /// a byte at a time is parsed on the first read and at its end, not once per byte.
    #[test]
    fn the_head_is_parsed_only_when_it_may_have_ended() {
        let config = config();
        let filler: String = (0..40)
            .map(|i| format!("X-{i}: {}\r\n", "v".repeat(100)))
            .collect();
        let raw = format!("GET /events HTTP/1.1\r\nAccept: text/event-stream\r\n{filler}\r\n");
        let mut head = HeadBuf::new(&config);
        for (i, b) in raw.bytes().enumerate() {
            head.buf.extend_from_slice(&[b]);
            match head.decide() {
                None => assert!(i + 1 < raw.len(), "the end was missed"),
                Some(ReadHead::EventStream(_)) => assert_eq!(i + 1, raw.len()),
                Some(_) => panic!("not taken"),
            }
        }
        assert_eq!(head.parses, 2, "the first read and the end");
    }

    #[test]
    fn a_head_end_is_seen_across_reads_and_with_bare_line_feeds() {
        assert!(may_end_head(b"GET / HTTP/1.1\r\n\r\n", 14));
        assert!(may_end_head(b"GET / HTTP/1.1\n\n", 14));
        assert!(may_end_head(b"GET / HTTP/1.1\r\nA: b\n\r\n", 20));
        assert!(!may_end_head(b"GET / HTTP/1.1\r\nA: b\r\n", 10));
        assert!(!may_end_head(b"GET / HTTP/1.1\r\n\r", 10));
    }
}
