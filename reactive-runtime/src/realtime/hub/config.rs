//! [`HubConfig`]: the limits and timings of connections, and what events carry.

use std::time::Duration;

/// Limits and timings of connections, and what events carry.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Frames queued for one connection (default 256); beyond it the queue is dropped
    /// and a `reset` sent instead.
    pub queue_capacity: usize,
    /// Bytes queued for one connection (default 256 KiB); beyond it, as for
    /// `queue_capacity`. Also bounds a stream's replay: a longer one is a `reset`.
    pub queue_bytes: usize,
    /// Total bytes of the entries of one subscription (default 16 KiB); more is refused
    /// with `400`.
    pub max_subscription_bytes: usize,
    /// Open streams of one principal (tenant + subject) on one instance (default 32);
    /// one more is refused with `429`.
    pub max_streams_per_principal: usize,
    /// Send each event's `keys` (the changed key values) to clients (default `false`).
    /// Every connection an event matches receives all of its keys, whichever of its
    /// entries matched: enable only when every user of a tenant may see every key
    /// value of the tenant's writes to the tables they subscribe to.
    pub event_keys: bool,
    /// Longest key value an event keeps (default 128 bytes); a longer one makes its
    /// column unknown (which matches every query on it).
    pub max_key_len: usize,
    /// Most bytes of key values and invalidated query keys one event keeps (default
    /// 8 KiB); beyond it, tables become "any row" (and, for the query keys, the event
    /// becomes "anything changed").
    pub max_event_bytes: usize,
    /// Delays before each re-send of an unacknowledged event (default 2 s, 5 s, 10 s).
    pub ack_retry_delays: Vec<Duration>,
    /// Events awaiting an ack per connection; the oldest is dropped beyond it.
    pub max_pending_acks: usize,
    /// Largest result of a `push` function sent in a stream (default 64 KiB); a larger
    /// one is not pushed: its clients are told to refetch it.
    pub push_max_bytes: usize,
    /// Longest a pushed result may take to compute (default 5 s); a slower one is
    /// abandoned and its clients told to refetch.
    pub push_timeout: Duration,
    /// Pushed results computed at once on this instance (default 4), so that pushing
    /// leaves the database pool to the requests.
    pub push_concurrency: usize,
    /// Push the results of `push` functions at all (default `true`). `false` serves them
    /// as plain queries: their events carry no `results` and clients refetch, which is
    /// how to measure what push saves without changing the app (the hit-rate bench).
    pub push: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue_capacity: 256,
            queue_bytes: 256 << 10,
            max_subscription_bytes: 16 << 10,
            max_streams_per_principal: 32,
            event_keys: false,
            max_key_len: 128,
            max_event_bytes: 8 << 10,
            ack_retry_delays: vec![
                Duration::from_secs(2),
                Duration::from_secs(5),
                Duration::from_secs(10),
            ],
            max_pending_acks: 64,
            push_max_bytes: 64 << 10,
            push_timeout: Duration::from_secs(5),
            push_concurrency: 4,
            push: true,
        }
    }
}
