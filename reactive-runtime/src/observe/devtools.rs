//! What the dev tools page shows, kept in memory: per-procedure timings, the
//! invalidation trace (each write, the entries it invalidated and why, the event it
//! produced), in a ring buffer bounded in bytes, and the deliveries (which streams of
//! this instance each event was queued to), with a live feed of new records.
//!
//! Only a router configured with dev tools enabled creates one (see
//! [`DevToolsConfig`](crate::router::DevToolsConfig)); without it nothing here runs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::types::{InvalidatedEntry, InvalidationReport, Source};

/// Miss latencies kept per procedure for the percentiles.
const LATENCY_SAMPLES: usize = 256;

/// Entries named in one trace record; the rest are counted.
const MAX_TRACED_ENTRIES: usize = 64;

/// Deliveries kept (newest), for a page opened later.
const DELIVERIES: usize = 512;

/// Streams named in one delivery record; the rest are counted.
const MAX_DELIVERY_STREAMS: usize = 32;

/// One procedure's counts and recent miss latencies.
#[derive(Debug, Default)]
struct Timing {
    hits: u64,
    misses: u64,
    coalesced: u64,
    /// Recent miss latencies in µs, oldest first.
    miss_us: VecDeque<u64>,
    /// Statements the misses sent, in all and at most in one.
    miss_statements: u64,
    miss_statements_max: u32,
}

/// A procedure's timings as the page shows them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TimingView {
    /// The procedure's name.
    pub procedure: String,
    /// Calls served from the cache.
    pub hits: u64,
    /// Calls that ran the handler.
    pub misses: u64,
    /// Calls that waited for an identical one in flight.
    pub coalesced: u64,
    /// Median of the recent misses, µs.
    pub miss_p50_us: u64,
    /// 95th percentile of the recent misses, µs.
    pub miss_p95_us: u64,
    /// 99th percentile of the recent misses, µs.
    pub miss_p99_us: u64,
    /// Statements sent by all the misses (the mean per miss is this over `misses`).
    pub miss_statements: u64,
    /// Most statements one miss sent.
    pub miss_statements_max: u32,
}

#[derive(Serialize)]
struct TraceRecord<'a> {
    seq: u64,
    at_ms: u64,
    /// The writer's tenant (`None`: a write outside any request, or another instance's).
    tenant: Option<&'a str>,
    tables: &'a [String],
    everything: bool,
    remote: bool,
    /// The event recorded for the writer's tenant.
    event_id: Option<u64>,
    entries: &'a [InvalidatedEntry],
    more_entries: usize,
}

/// Which streams of this instance one event was queued to.
#[derive(Serialize)]
struct DeliveryRecord<'a> {
    at_ms: u64,
    tenant: &'a str,
    event_id: u64,
    /// How many streams.
    streams: usize,
    /// Their ids (as in the state's `streams`), at most [`MAX_DELIVERY_STREAMS`].
    stream_ids: &'a [u64],
}

struct Ring {
    records: VecDeque<Bytes>,
    bytes: usize,
    max_bytes: usize,
    seq: u64,
}

struct DevToolsShared {
    timings: Mutex<HashMap<String, Timing>>,
    ring: Mutex<Ring>,
    live: broadcast::Sender<Bytes>,
    deliveries: Mutex<VecDeque<Bytes>>,
    live_deliveries: broadcast::Sender<Bytes>,
}

/// The dev tools' recorder. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct DevTools {
    inner: Arc<DevToolsShared>,
}

impl std::fmt::Debug for DevTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevTools").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) * p).div_ceil(100)]
}

impl DevTools {
    /// A recorder whose trace keeps at most `trace_bytes` of serialized records.
    pub fn new(trace_bytes: usize) -> Self {
        let (live, _) = broadcast::channel(256);
        let (live_deliveries, _) = broadcast::channel(256);
        DevTools {
            inner: Arc::new(DevToolsShared {
                timings: Mutex::new(HashMap::new()),
                ring: Mutex::new(Ring {
                    records: VecDeque::new(),
                    bytes: 0,
                    max_bytes: trace_bytes,
                    seq: 0,
                }),
                live,
                deliveries: Mutex::new(VecDeque::new()),
                live_deliveries,
            }),
        }
    }

    /// Counts one call of `procedure`, and its latency and the `statements` its handler
    /// sent when it ran the handler.
    pub fn record_call(&self, procedure: &str, source: Source, elapsed: Duration, statements: u32) {
        let mut timings = lock(&self.inner.timings);
        let t = match timings.get_mut(procedure) {
            Some(t) => t,
            None => timings.entry(procedure.to_owned()).or_default(),
        };
        match source {
            Source::Hit => t.hits += 1,
            Source::Coalesced => t.coalesced += 1,
            Source::Computed => {
                t.misses += 1;
                if t.miss_us.len() == LATENCY_SAMPLES {
                    t.miss_us.pop_front();
                }
                t.miss_us.push_back(elapsed.as_micros() as u64);
                t.miss_statements += u64::from(statements);
                t.miss_statements_max = t.miss_statements_max.max(statements);
            }
        }
    }

    /// Appends one invalidation to the trace (oldest records leave to stay under the
    /// byte bound) and sends it to the live feed.
    pub fn record_invalidation(
        &self,
        report: &InvalidationReport,
        tenant: Option<&str>,
        event_id: Option<u64>,
    ) {
        if report.is_empty() {
            return;
        }
        let mut ring = lock(&self.inner.ring);
        ring.seq += 1;
        let shown = report.entries.len().min(MAX_TRACED_ENTRIES);
        let record = TraceRecord {
            seq: ring.seq,
            at_ms: now_ms(),
            tenant,
            tables: &report.tables,
            everything: report.changes.everything,
            remote: report.remote,
            event_id,
            entries: &report.entries[..shown],
            more_entries: report.entries.len() - shown,
        };
        let Ok(json) = serde_json::to_vec(&record) else {
            return;
        };
        let json = Bytes::from(json);
        if json.len() > ring.max_bytes {
            return;
        }
        ring.bytes += json.len();
        ring.records.push_back(json.clone());
        while ring.bytes > ring.max_bytes {
            let Some(old) = ring.records.pop_front() else {
                break;
            };
            ring.bytes -= old.len();
        }
        drop(ring);
        // No receiver (no page open) is not an error.
        let _ = self.inner.live.send(json);
    }

    /// Records that `event_id` of `tenant` was queued to the streams `stream_ids` of this
    /// instance (none: it concerned no stream here), and sends it to the live feed.
    pub fn record_delivery(&self, tenant: &str, event_id: u64, stream_ids: &[u64]) {
        let record = DeliveryRecord {
            at_ms: now_ms(),
            tenant,
            event_id,
            streams: stream_ids.len(),
            stream_ids: &stream_ids[..stream_ids.len().min(MAX_DELIVERY_STREAMS)],
        };
        let Ok(json) = serde_json::to_vec(&record) else {
            return;
        };
        let json = Bytes::from(json);
        {
            let mut deliveries = lock(&self.inner.deliveries);
            if deliveries.len() == DELIVERIES {
                deliveries.pop_front();
            }
            deliveries.push_back(json.clone());
        }
        let _ = self.inner.live_deliveries.send(json);
    }

    /// The recent deliveries, oldest first (each a JSON object).
    pub fn deliveries(&self) -> Vec<Bytes> {
        lock(&self.inner.deliveries).iter().cloned().collect()
    }

    /// New delivery records as they are made.
    pub fn subscribe_deliveries(&self) -> broadcast::Receiver<Bytes> {
        self.inner.live_deliveries.subscribe()
    }

    /// The trace, oldest first (each record a JSON object).
    pub fn trace(&self) -> Vec<Bytes> {
        lock(&self.inner.ring).records.iter().cloned().collect()
    }

    /// Bytes the trace holds now.
    pub fn trace_bytes(&self) -> usize {
        lock(&self.inner.ring).bytes
    }

    /// New trace records as they are appended.
    pub fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.inner.live.subscribe()
    }

    /// Every procedure's timings, by name.
    pub fn timings(&self) -> Vec<TimingView> {
        let timings = lock(&self.inner.timings);
        let mut out: Vec<TimingView> = timings
            .iter()
            .map(|(name, t)| {
                let mut sorted: Vec<u64> = t.miss_us.iter().copied().collect();
                sorted.sort_unstable();
                TimingView {
                    procedure: name.clone(),
                    hits: t.hits,
                    misses: t.misses,
                    coalesced: t.coalesced,
                    miss_p50_us: percentile(&sorted, 50),
                    miss_p95_us: percentile(&sorted, 95),
                    miss_p99_us: percentile(&sorted, 99),
                    miss_statements: t.miss_statements,
                    miss_statements_max: t.miss_statements_max,
                }
            })
            .collect();
        out.sort_by(|a, b| a.procedure.cmp(&b.procedure));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::CacheKey;
    use crate::types::{ChangeSet, Reason};

    fn report(n: usize) -> InvalidationReport {
        InvalidationReport {
            sequence: 1,
            changes: ChangeSet::tables(["agent"]),
            tables: vec!["agent".into()],
            entries: (0..n)
                .map(|i| InvalidatedEntry {
                    key: CacheKey::new(Some("t"), "agents.get", format!("{{\"id\":{i}}}")),
                    reasons: vec![Reason::everything(Some("agent"))],
                })
                .collect(),
            remote: false,
            store_failed: false,
        }
    }

    #[test]
    fn the_trace_stays_under_its_byte_bound_dropping_the_oldest() {
        let tools = DevTools::new(2_000);
        for _ in 0..100 {
            tools.record_invalidation(&report(3), Some("t"), Some(7));
        }
        let trace = tools.trace();
        assert!(tools.trace_bytes() <= 2_000, "{}", tools.trace_bytes());
        assert!(trace.len() > 1 && trace.len() < 100, "{}", trace.len());
        let last: serde_json::Value = serde_json::from_slice(trace.last().unwrap()).unwrap();
        assert_eq!(last["seq"], 100);
        assert_eq!(last["event_id"], 7);
        assert_eq!(last["entries"][2]["key"]["input"], "{\"id\":2}");
    }

    #[test]
    fn a_huge_invalidation_names_a_bounded_number_of_entries() {
        let tools = DevTools::new(1 << 20);
        tools.record_invalidation(&report(1000), None, None);
        let v: serde_json::Value = serde_json::from_slice(&tools.trace()[0]).unwrap();
        assert_eq!(v["entries"].as_array().unwrap().len(), MAX_TRACED_ENTRIES);
        assert_eq!(v["more_entries"], 1000 - MAX_TRACED_ENTRIES);
    }

    #[test]
    fn a_delivery_names_a_bounded_number_of_streams_and_few_are_kept() {
        let tools = DevTools::new(1024);
        let ids: Vec<u64> = (1..=100).collect();
        for event in 0..(DELIVERIES as u64 + 10) {
            tools.record_delivery("t", event, &ids);
        }
        let kept = tools.deliveries();
        assert_eq!(kept.len(), DELIVERIES);
        let last: serde_json::Value = serde_json::from_slice(kept.last().unwrap()).unwrap();
        assert_eq!(last["event_id"], DELIVERIES as u64 + 9);
        assert_eq!(last["streams"], 100);
        assert_eq!(
            last["stream_ids"].as_array().unwrap().len(),
            MAX_DELIVERY_STREAMS
        );
    }

    #[test]
    fn timings_count_each_outcome_and_take_percentiles_of_misses() {
        let tools = DevTools::new(1024);
        for ms in 1..=100 {
            let statements = if ms == 7 { 9 } else { 2 };
            tools.record_call("a", Source::Computed, Duration::from_millis(ms), statements);
        }
        tools.record_call("a", Source::Hit, Duration::ZERO, 0);
        tools.record_call("a", Source::Coalesced, Duration::ZERO, 0);
        let t = &tools.timings()[0];
        assert_eq!((t.hits, t.misses, t.coalesced), (1, 100, 1));
        assert_eq!((t.miss_statements, t.miss_statements_max), (99 * 2 + 9, 9));
        assert_eq!(t.miss_p50_us, 51_000);
        assert_eq!(t.miss_p99_us, 100_000);
    }
}
