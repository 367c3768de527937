//! Counters, gauges and histograms through the [`metrics`](https://docs.rs/metrics)
//! facade, so the app chooses the exporter (Prometheus, StatsD, ...).
//!
//! Every name and label is a `&'static str`: recording allocates nothing and takes no
//! lock of ours; with no recorder installed a call is a thread-local and an atomic load.
//! Without the `metrics` feature every function here is empty.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `reactive_cache_hits_total` | counter | lookups served from the cache |
//! | `reactive_cache_misses_total` | counter | lookups that ran the handler |
//! | `reactive_cache_coalesced_waits_total` | counter | lookups that waited for an identical miss in flight |
//! | `reactive_invalidations_total{origin}` | counter | non-empty change sets applied (`local`, `remote`) |
//! | `reactive_cache_invalidated_total{reason}` | counter | entries removed by invalidations, by their first reason (`key`, `relation`, `table`, `unknown`) |
//! | `reactive_cache_entries` | gauge | entries in the memory store |
//! | `reactive_cache_bytes` | gauge | weighed bytes of those entries |
//! | `reactive_cache_store_errors_total` | counter | cache store failures |
//! | `reactive_streams_open` | gauge | open SSE streams |
//! | `reactive_events_sent_total` | counter | events queued to SSE streams |
//! | `reactive_stream_queue_overflows_total` | counter | stream queues dropped for a `reset` (client too slow) |
//! | `reactive_stream_resets_total` | counter | `reset` frames sent because an event could not be recorded |
//! | `reactive_ack_retries_total` | counter | events re-sent for want of an ack |
//! | `reactive_push_results_total` | counter | pushed results computed and sent (one per query key and round, whatever the connections) |
//! | `reactive_push_fallbacks_total` | counter | pushes that fell back to a refetch (failed, too slow, too large, or not fresh enough) |
//! | `reactive_pre_read_failures_total` | counter | pre-reads that failed (the write's keys became unknown) |
//! | `reactive_bus_subscribed` | gauge | Redis bus subscriptions up (1 per connected `RedisBus`; 0 while it reconnects, when messages from other instances are lost) |
//! | `reactive_feed_batches_total` | counter | change-feed batches applied |
//! | `reactive_feed_apply_seconds` | histogram | from a feed batch's arrival to its invalidation applied |
//! | `reactive_feed_lag_seconds` | histogram | from a notified write's statement (PostgreSQL's `clock_timestamp()`) to its notification's arrival: the commit wait, the delivery, and any clock skew between the hosts |

use crate::types::{InvalidatedEntry, Reason};

/// Lookups served from the cache.
pub const CACHE_HITS: &str = "reactive_cache_hits_total";
/// Lookups that ran the handler.
pub const CACHE_MISSES: &str = "reactive_cache_misses_total";
/// Lookups that waited for an identical computation in flight.
pub const CACHE_COALESCED_WAITS: &str = "reactive_cache_coalesced_waits_total";
/// Non-empty change sets applied, label `origin` (`local`, `remote`).
pub const INVALIDATIONS: &str = "reactive_invalidations_total";
/// Cache entries (and routing records) removed by invalidations, label `reason`.
pub const CACHE_INVALIDATED: &str = "reactive_cache_invalidated_total";
/// Entries in the memory store (gauge).
pub const CACHE_ENTRIES: &str = "reactive_cache_entries";
/// Weighed bytes of the memory store's entries (gauge).
pub const CACHE_BYTES: &str = "reactive_cache_bytes";
/// Cache store failures.
pub const CACHE_STORE_ERRORS: &str = "reactive_cache_store_errors_total";
/// Open SSE streams (gauge).
pub const STREAMS_OPEN: &str = "reactive_streams_open";
/// Events queued to SSE streams.
pub const EVENTS_SENT: &str = "reactive_events_sent_total";
/// Stream queues replaced by a `reset` because the client read too slowly.
pub const QUEUE_OVERFLOWS: &str = "reactive_stream_queue_overflows_total";
/// `reset` frames sent to a tenant's streams because an event could not be recorded.
pub const STREAM_RESETS: &str = "reactive_stream_resets_total";
/// Events re-sent because their ack did not come.
pub const ACK_RETRIES: &str = "reactive_ack_retries_total";
/// Pre-reads (old key values of an UPDATE/DELETE) that failed.
pub const PRE_READ_FAILURES: &str = "reactive_pre_read_failures_total";
/// Pushed results computed and sent (one per query key and round).
pub const PUSH_RESULTS: &str = "reactive_push_results_total";
/// Pushes that fell back to asking the clients to refetch.
pub const PUSH_FALLBACKS: &str = "reactive_push_fallbacks_total";
/// Redis bus subscriptions up (gauge): 1 per connected `RedisBus`, 0 while it
/// reconnects (messages other instances publish meanwhile are lost, streams replay).
pub const BUS_SUBSCRIBED: &str = "reactive_bus_subscribed";
/// Change-feed batches applied.
pub const FEED_BATCHES: &str = "reactive_feed_batches_total";
/// Seconds from a change-feed batch's arrival to its invalidation applied (histogram).
pub const FEED_APPLY_SECONDS: &str = "reactive_feed_apply_seconds";
/// From a notified write's statement (on the database's clock) to the notification's
/// arrival at this process, seconds (histogram).
pub const FEED_LAG_SECONDS: &str = "reactive_feed_lag_seconds";

/// Why an invalidated entry went, coarsely: the label of [`CACHE_INVALIDATED`].
pub fn reason_label(reasons: &[Reason]) -> &'static str {
    match reasons.first() {
        Some(r) if r.relation.is_some() => "relation",
        Some(r) if r.column.is_some() => "key",
        Some(r) if r.table != "*" => "table",
        _ => "unknown",
    }
}

#[cfg(feature = "metrics")]
mod imp {
    #[inline]
    pub(crate) fn count(name: &'static str, by: u64) {
        metrics::counter!(name).increment(by);
    }

    /// Labelled keys are spelled out so that the macro makes them statics: a label
    /// given as an expression would cost a `Vec` per call.
    pub(crate) fn invalidation(remote: bool) {
        if remote {
            metrics::counter!("reactive_invalidations_total", "origin" => "remote").increment(1);
        } else {
            metrics::counter!("reactive_invalidations_total", "origin" => "local").increment(1);
        }
    }

    pub(crate) fn invalidated(reason: &'static str) {
        match reason {
            "key" => metrics::counter!("reactive_cache_invalidated_total", "reason" => "key"),
            "relation" => {
                metrics::counter!("reactive_cache_invalidated_total", "reason" => "relation")
            }
            "table" => metrics::counter!("reactive_cache_invalidated_total", "reason" => "table"),
            _ => metrics::counter!("reactive_cache_invalidated_total", "reason" => "unknown"),
        }
        .increment(1);
    }

    #[inline]
    pub(crate) fn gauge_add(name: &'static str, by: f64) {
        metrics::gauge!(name).increment(by);
    }

    #[inline]
    pub(crate) fn observe(name: &'static str, value: f64) {
        metrics::histogram!(name).record(value);
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    #[inline]
    pub(crate) fn count(_: &'static str, _: u64) {}
    #[inline]
    pub(crate) fn invalidation(_: bool) {}
    #[inline]
    pub(crate) fn invalidated(_: &'static str) {}
    #[inline]
    pub(crate) fn gauge_add(_: &'static str, _: f64) {}
    #[inline]
    pub(crate) fn observe(_: &'static str, _: f64) {}
}

pub(crate) use imp::{count, gauge_add, observe};

/// Counts a non-empty invalidation and the entries it removed, by reason.
pub(crate) fn invalidation(remote: bool, entries: &[InvalidatedEntry]) {
    imp::invalidation(remote);
    for entry in entries {
        imp::invalidated(reason_label(&entry.reasons));
    }
}
