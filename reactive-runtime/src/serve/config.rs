//! The limits and socket options of [`serve`](super::serve), with their defaults.
//!
//! One contract for both paths: the lean reader reads every connection's first head
//! under these limits (so hyper only ever receives a complete first head, and its timer
//! does not restart), and hyper gets the same limits for the later requests of a
//! kept-alive connection.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Connections served at once when the file descriptor limit allows it: well above the
/// 10,000 event streams one instance is designed for, so that their users' ordinary
/// requests (and the writes that feed them) are not refused when streams reach that.
pub(super) const DEFAULT_MAX_CONNECTIONS: usize = 65_536;
/// File descriptors kept free for everything else a process opens (database and Redis
/// pools, files, logs) when the connection cap is derived from the descriptor limit.
const FD_RESERVE: u64 = 256;

/// Which request paths are event streams, so the lean path takes only those.
#[derive(Clone, Debug)]
pub(super) enum EventsPaths {
    /// A path whose last segment is `events` (`/events`, `/api/events`): the router's
    /// events route wherever it is nested.
    LastSegment,
    /// Exactly these paths.
    Exact(Vec<String>),
}

impl EventsPaths {
    /// Whether `target` (path and query of a request line) names an events route.
    pub(super) fn matches(&self, target: &str) -> bool {
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        match self {
            EventsPaths::LastSegment => path == "/events" || path.ends_with("/events"),
            EventsPaths::Exact(paths) => paths.iter().any(|p| p == path),
        }
    }
}

/// Everything [`Serve`](super::Serve)'s builder methods set.
#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) keep_alive: bool,
    pub(super) max_connections: usize,
    pub(super) max_head_bytes: usize,
    pub(super) max_headers: usize,
    pub(super) head_timeout: Duration,
    pub(super) write_timeout: Duration,
    pub(super) tcp_keepalive: Option<Duration>,
    pub(super) tcp_user_timeout: Option<Duration>,
    pub(super) events_paths: EventsPaths,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            keep_alive: true,
            max_connections: default_max_connections(),
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            head_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            // With 10 s between probes and 3 probes, an idle peer that vanished (no FIN,
            // no RST: a dead host, a dropped NAT entry) is reaped within about a minute.
            tcp_keepalive: Some(Duration::from_secs(30)),
            tcp_user_timeout: Some(Duration::from_secs(60)),
            events_paths: EventsPaths::LastSegment,
        }
    }
}

/// Interval between keepalive probes, and how many go unanswered before the kernel
/// drops the connection.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

impl Config {
    /// Sets the options of an accepted socket: `TCP_NODELAY` (an event must not wait
    /// for the previous one's ACK), keepalive and, on Linux, `TCP_USER_TIMEOUT` (data
    /// left unacknowledged that long ends the connection, where the kernel's default
    /// retransmits for about 15 minutes).
    pub(super) fn configure(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let sock = SockRef::from(stream);
        if let Some(idle) = self.tcp_keepalive {
            let keepalive = TcpKeepalive::new()
                .with_time(idle)
                .with_interval(KEEPALIVE_INTERVAL)
                .with_retries(KEEPALIVE_RETRIES);
            sock.set_tcp_keepalive(&keepalive)?;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(timeout) = self.tcp_user_timeout {
            sock.set_tcp_user_timeout(Some(timeout))?;
        }
        Ok(())
    }
}

/// [`DEFAULT_MAX_CONNECTIONS`], or fewer where the soft file descriptor limit would be
/// reached first: running out of descriptors refuses every client (and the database
/// pool), while a cap refuses only the connections above it.
fn default_max_connections() -> usize {
    match fd_limit() {
        Some(limit) => {
            let usable = limit.saturating_sub(FD_RESERVE).max(limit / 2);
            DEFAULT_MAX_CONNECTIONS.min(usize::try_from(usable).unwrap_or(usize::MAX))
        }
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

#[cfg(unix)]
fn fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn fd_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_paths_match_the_events_route_only() {
        let d = EventsPaths::LastSegment;
        assert!(d.matches("/events?subscribe=a"));
        assert!(d.matches("/api/events"));
        assert!(!d.matches("/events/ack"));
        assert!(!d.matches("/poll"));
        assert!(!d.matches("/download?file=events"));
        let exact = EventsPaths::Exact(vec!["/v2/stream".into()]);
        assert!(exact.matches("/v2/stream?x=1"));
        assert!(!exact.matches("/events"));
    }

    #[test]
    fn the_default_cap_stays_below_the_descriptor_limit() {
        let cap = default_max_connections();
        assert!(cap <= DEFAULT_MAX_CONNECTIONS);
        if let Some(limit) = fd_limit() {
            assert!((cap as u64) < limit, "{cap} vs {limit}");
        }
    }

    /// Accepted sockets get keepalive (and a user timeout on Linux) so that a peer gone
    /// without a FIN is reaped.
    #[tokio::test]
    async fn accepted_sockets_get_keepalive_and_a_user_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let _client = client.unwrap();
        let (server, _) = accepted.unwrap();
        Config::default().configure(&server).unwrap();
        let sock = SockRef::from(&server);
        assert!(server.nodelay().unwrap());
        assert!(sock.keepalive().unwrap(), "SO_KEEPALIVE");
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(30));
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), KEEPALIVE_RETRIES);
        #[cfg(target_os = "linux")]
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(60))
        );
    }
}
