//! The event log: per tenant, the recent events, so a client that reconnects (to any
//! instance, with the Redis log) replays what it missed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use crate::seams::{EventLog, RealtimeError, Replay};
use crate::types::{Event, EventDraft, EventId};

/// Microseconds since the Unix epoch: the first id of a process-local log, so that ids
/// keep increasing across restarts and an id from an earlier process is recognized as
/// older than this log (→ reset).
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
}

struct TenantLog {
    events: VecDeque<Arc<Event>>,
    /// Sum of the events' [`Event::approx_size`].
    bytes: usize,
    /// Every event of this tenant with an id `<=` floor is gone (or never existed here).
    floor: EventId,
    /// The newest id given to this tenant. One counter per tenant: with a global one, a
    /// tenant would see in its ids the gaps left by other tenants' writes (how much the
    /// others write).
    last: EventId,
}

/// Default bound of a tenant's events in bytes ([`MemoryLog::max_bytes`]).
pub const DEFAULT_LOG_BYTES: usize = 4 << 20;

/// In-process event log: a ring buffer per tenant, capped in events and in bytes, with a
/// counter per tenant starting at the process start time in microseconds.
pub struct MemoryLog {
    start: EventId,
    cap: usize,
    max_bytes: usize,
    tenants: RwLock<HashMap<String, Arc<Mutex<TenantLog>>>>,
}

impl MemoryLog {
    /// A log keeping the newest `cap_per_tenant` events of each tenant, within
    /// 4 MiB per tenant (see [`MemoryLog::max_bytes`]).
    pub fn new(cap_per_tenant: usize) -> Self {
        let start = now_micros();
        MemoryLog {
            start: EventId(start),
            cap: cap_per_tenant.max(1),
            max_bytes: DEFAULT_LOG_BYTES,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    /// Bounds each tenant's events to about `bytes` (their [`Event::approx_size`]); the
    /// oldest are dropped first, the newest is always kept.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Bytes a tenant's events hold now (for tests and stats).
    pub fn tenant_bytes(&self, tenant: &str) -> usize {
        self.tenant(tenant)
            .map_or(0, |t| t.lock().unwrap_or_else(|e| e.into_inner()).bytes)
    }

    fn tenant(&self, tenant: &str) -> Option<Arc<Mutex<TenantLog>>> {
        self.tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .cloned()
    }

    fn tenant_or_create(&self, tenant: &str) -> Arc<Mutex<TenantLog>> {
        if let Some(t) = self.tenant(tenant) {
            return t;
        }
        let mut map = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        map.entry(tenant.to_owned())
            .or_insert_with(|| {
                Arc::new(Mutex::new(TenantLog {
                    events: VecDeque::new(),
                    bytes: 0,
                    floor: self.start,
                    last: self.start,
                }))
            })
            .clone()
    }

    fn append_sync(&self, draft: EventDraft) -> Arc<Event> {
        let log = self.tenant_or_create(&draft.tenant);
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        // Taken under the tenant's lock: the log's order is the ids' order.
        log.last = EventId(log.last.0 + 1);
        let id = log.last;
        let event = Arc::new(Event::new(draft.with_id(id)));
        log.bytes += event.approx_size();
        log.events.push_back(event.clone());
        // Over either bound, the oldest go (replay before the floor answers `reset`).
        while log.events.len() > 1
            && (log.events.len() > self.cap || log.bytes > self.max_bytes)
            && let Some(old) = log.events.pop_front()
        {
            log.bytes -= old.approx_size();
            log.floor = old.id();
        }
        event
    }

    fn head_sync(&self, tenant: &str) -> EventId {
        match self.tenant(tenant) {
            None => self.start,
            Some(log) => {
                let log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.events.back().map(|e| e.id()).unwrap_or(log.floor)
            }
        }
    }

    fn since_sync(&self, tenant: &str, after: EventId) -> Replay {
        let Some(log) = self.tenant(tenant) else {
            let head = self.start;
            return if after == head {
                Replay::Events {
                    events: Vec::new(),
                    head,
                }
            } else {
                Replay::Reset { head }
            };
        };
        let log = log.lock().unwrap_or_else(|e| e.into_inner());
        let head = log.events.back().map(|e| e.id()).unwrap_or(log.floor);
        if after < log.floor || after > head {
            return Replay::Reset { head };
        }
        let first = log.events.partition_point(|e| e.id() <= after);
        Replay::Events {
            events: log.events.range(first..).cloned().collect(),
            head,
        }
    }
}

impl EventLog for MemoryLog {
    fn append(&self, draft: EventDraft) -> BoxFuture<'_, Result<Arc<Event>, RealtimeError>> {
        let ev = self.append_sync(draft);
        Box::pin(async move { Ok(ev) })
    }

    fn head<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<EventId, RealtimeError>> {
        let h = self.head_sync(tenant);
        Box::pin(async move { Ok(h) })
    }

    fn since<'a>(
        &'a self,
        tenant: &'a str,
        after: EventId,
    ) -> BoxFuture<'a, Result<Replay, RealtimeError>> {
        let r = self.since_sync(tenant, after);
        Box::pin(async move { Ok(r) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(t: &str) -> EventDraft {
        EventDraft {
            tenant: t.into(),
            ..Default::default()
        }
    }

    #[test]
    fn ids_increase_and_replay_and_reset() {
        let log = MemoryLog::new(3);
        let h0 = log.head_sync("a");
        let a1 = log.append_sync(draft("a"));
        let b1 = log.append_sync(draft("b"));
        let a2 = log.append_sync(draft("a"));
        assert!(h0 < a1.id() && a1.id() < a2.id() && h0 < b1.id());
        match log.since_sync("a", h0) {
            Replay::Events { events, head } => {
                assert_eq!(events.len(), 2);
                assert_eq!(head, a2.id());
            }
            Replay::Reset { .. } => panic!("unexpected reset"),
        }
        match log.since_sync("a", a1.id()) {
            Replay::Events { events, .. } => assert_eq!(events[0].id(), a2.id()),
            Replay::Reset { .. } => panic!("unexpected reset"),
        }
        // roll over: 3 more events evict a1 and a2
        for _ in 0..3 {
            log.append_sync(draft("a"));
        }
        assert!(matches!(log.since_sync("a", a1.id()), Replay::Reset { .. }));
        assert!(matches!(
            log.since_sync("a", a2.id()),
            Replay::Events { .. }
        ));
        // an id from an earlier process, or from the future
        assert!(matches!(
            log.since_sync("a", EventId(5)),
            Replay::Reset { .. }
        ));
        assert!(matches!(
            log.since_sync("a", EventId(u64::MAX >> 11)),
            Replay::Reset { .. }
        ));
        // a tenant without events: its head replays as empty
        let hc = log.head_sync("c");
        assert!(matches!(log.since_sync("c", hc), Replay::Events { .. }));
    }

    /// Large events: the log stays under its byte bound, drops the oldest, and a
    /// replay from before what it keeps is a reset.
    #[test]
    fn the_byte_bound_drops_the_oldest_events() {
        use crate::types::{ChangeSet, KeyValue, RowChange};
        let log = MemoryLog::new(1024).max_bytes(64 << 10);
        let big = |i: usize| EventDraft {
            tenant: "a".into(),
            changes: ChangeSet::empty().with_row(
                "t",
                RowChange::whole().with(
                    "k",
                    KeyValue::from_str(
                        &format!("{i}{}", "x".repeat(10_000)),
                        reactive_codegen::sql::Dialect::Postgres,
                    ),
                ),
            ),
            show_keys: true,
            ..Default::default()
        };
        let first = log.append_sync(big(0));
        for i in 1..100 {
            log.append_sync(big(i));
            assert!(
                log.tenant_bytes("a") <= 64 << 10,
                "{}",
                log.tenant_bytes("a")
            );
        }
        assert!(log.tenant_bytes("a") > 32 << 10, "keeps what fits");
        assert!(matches!(
            log.since_sync("a", first.id()),
            Replay::Reset { .. }
        ));
        let head = log.head_sync("a");
        match log.since_sync("a", EventId(head.0 - 2)) {
            Replay::Events { events, .. } => assert_eq!(events.len(), 2),
            Replay::Reset { .. } => panic!("recent events are kept"),
        }
        // One event larger than the bound is still kept (alone).
        let tiny = MemoryLog::new(8).max_bytes(10);
        tiny.append_sync(big(0));
        let last = tiny.append_sync(big(1));
        assert_eq!(tiny.head_sync("a"), last.id());
        assert!(tiny.tenant_bytes("a") >= last.approx_size());
    }

    /// A tenant's ids count its own events only: another tenant's writes leave no gap
    /// (the gap would tell how much the other tenants write). Ids still start at the
    /// process start time in µs, so a restarted process's ids are above the old ones,
    /// and stay below 2^53 (exact in JavaScript).
    #[test]
    fn ids_are_counted_per_tenant() {
        let before = now_micros();
        let log = MemoryLog::new(16);
        let a1 = log.append_sync(draft("a"));
        for _ in 0..5 {
            log.append_sync(draft("b"));
        }
        let a2 = log.append_sync(draft("a"));
        let b_head = log.head_sync("b");
        assert_eq!(a2.id().0, a1.id().0 + 1, "no gap from b's writes");
        assert_eq!(b_head.0, log.head_sync("c").0 + 5);
        assert!(a1.id().0 > before, "starts at the time in µs");
        assert!(a2.id().0 < 1 << 53);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let restarted = MemoryLog::new(16);
        assert!(restarted.append_sync(draft("a")).id() > a2.id());
    }
}
