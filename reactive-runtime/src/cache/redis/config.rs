//! [`RedisConfig`]: where the shared store connects and how long it keeps things.

use std::time::Duration;

/// Settings of a [`RedisStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prefix of every key (default `reactive:cache:`); distinct apps or tests use distinct prefixes.
    pub prefix: String,
    /// Lifetime of an entry (default 5 minutes).
    pub ttl: Duration,
    /// Largest single entry accepted (default 8 MiB).
    pub max_entry_bytes: u64,
    /// Time limit of one command (default 1 s).
    pub response_timeout: Duration,
    /// Time limit of one connection attempt (default 1 s).
    pub connection_timeout: Duration,
    /// How long a routing record outlives its value (default 24 h: at least as long as a
    /// client may keep data and resume its stream from the event log); see the module docs.
    pub ghost_retention: Duration,
    /// Upper bound of the routing records' approximate total size (default 64 MiB); the
    /// oldest go first, with their values.
    pub max_routing_bytes: u64,
}

impl RedisConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "reactive:cache:".to_owned(),
            ttl: Duration::from_secs(300),
            max_entry_bytes: 8 * 1024 * 1024,
            response_timeout: Duration::from_secs(1),
            connection_timeout: Duration::from_secs(1),
            ghost_retention: Duration::from_secs(24 * 3600),
            max_routing_bytes: 64 * 1024 * 1024,
        }
    }

    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets how long a routing record outlives its value.
    pub fn ghost_retention(mut self, retention: Duration) -> Self {
        self.ghost_retention = retention;
        self
    }
}
