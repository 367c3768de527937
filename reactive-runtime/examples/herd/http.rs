//! A minimal HTTP/1.1 client over a Tokio TCP stream: keep-alive requests and one event
//! stream per connection, with small buffers so that 10,000 connections stay light.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Read buffer per connection (responses and frames here are small).
const READ_BUFFER: usize = 2048;

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// One TCP connection to the server.
pub struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    host: String,
    /// Header lines sent with every request (each ending `\r\n`).
    headers: String,
    line: Vec<u8>,
}

/// A response: status and whole body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What the head of a response says about its body.
struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
}

impl Conn {
    /// Connects (no delay: requests are written whole, and latency is what we measure).
    pub async fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        Ok(Conn {
            reader: BufReader::with_capacity(READ_BUFFER, read),
            writer,
            host: addr.to_string(),
            headers: String::new(),
            line: Vec::with_capacity(256),
        })
    }

    /// Sends `name: value` with every request of this connection (credentials).
    // The herd's bench server needs none; the hitrate tool signs its users in.
    #[allow(dead_code)]
    pub fn with_header(mut self, name: &str, value: &str) -> Conn {
        self.headers.push_str(&format!("{name}: {value}\r\n"));
        self
    }

    /// Sends one request and reads its whole response; the connection stays open.
    pub async fn request(
        &mut self,
        method: &str,
        target: &str,
        body: Option<&str>,
    ) -> io::Result<Response> {
        self.send(method, target, body, "application/json").await?;
        let head = self.read_head().await?;
        let body = if head.chunked {
            self.read_chunked().await?
        } else {
            let mut body = vec![0; head.content_length.unwrap_or(0)];
            self.reader.read_exact(&mut body).await?;
            body
        };
        Ok(Response {
            status: head.status,
            body,
        })
    }

    /// Sends `GET target` for an event stream and reads the `200` head; the connection
    /// then carries the stream's frames (see [`Conn::next_frame`]).
    pub async fn open_events(mut self, target: &str) -> io::Result<Conn> {
        self.send("GET", target, None, "text/event-stream").await?;
        let head = self.read_head().await?;
        if head.status != 200 {
            return Err(invalid(format!("event stream answered {}", head.status)));
        }
        if head.chunked {
            // The server's lean path delimits the stream by closing the connection.
            return Err(invalid("a chunked event stream (not read by this tool)"));
        }
        Ok(self)
    }

    /// The next frame of an event stream (`event` and `data` lines, comments skipped);
    /// `None` at the end of the stream.
    pub async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        let mut frame = Frame::default();
        loop {
            self.line.clear();
            if self.reader.read_until(b'\n', &mut self.line).await? == 0 {
                return Ok(None);
            }
            let line = std::str::from_utf8(&self.line).map_err(|e| invalid(e.to_string()))?;
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !frame.event.is_empty() || !frame.data.is_empty() {
                    return Ok(Some(frame));
                }
            } else if let Some(v) = line.strip_prefix("event:") {
                frame.event = v.trim_start().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !frame.data.is_empty() {
                    frame.data.push('\n');
                }
                frame.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
    }

    async fn send(
        &mut self,
        method: &str,
        target: &str,
        body: Option<&str>,
        accept: &str,
    ) -> io::Result<()> {
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nhost: {}\r\naccept: {accept}\r\n{}",
            self.host, self.headers
        );
        if let Some(body) = body {
            request.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        self.writer.write_all(request.as_bytes()).await
    }

    async fn read_line(&mut self) -> io::Result<&str> {
        self.line.clear();
        if self.reader.read_until(b'\n', &mut self.line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = std::str::from_utf8(&self.line).map_err(|e| invalid(e.to_string()))?;
        Ok(line.trim_end_matches(['\r', '\n']))
    }

    async fn read_head(&mut self) -> io::Result<Head> {
        let status_line = self.read_line().await?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("not an HTTP status line: {status_line:?}")))?;
        let mut head = Head {
            status,
            content_length: None,
            chunked: false,
        };
        loop {
            let line = self.read_line().await?;
            if line.is_empty() {
                return Ok(head);
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.content_length = Some(value.parse().map_err(|_| invalid("content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }

    async fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let size = self.read_line().await?;
            let size = size.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| invalid("chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..]).await?;
            self.read_line().await?;
        }
    }
}

/// One Server-Sent Events frame.
#[derive(Debug, Default)]
pub struct Frame {
    pub event: String,
    pub data: String,
}

/// `text` percent-encoded for a query string (everything but unreserved characters).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
