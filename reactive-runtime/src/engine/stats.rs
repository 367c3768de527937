//! Counters of the engine's activity.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A snapshot of the engine's counters (since it was created).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that ran the handler.
    pub misses: u64,
    /// Lookups that waited for an identical in-flight miss instead of running the handler.
    pub coalesced_waits: u64,
    /// Non-empty change sets applied (local and remote).
    pub invalidations: u64,
    /// Cache entries removed by invalidations.
    pub entries_invalidated: u64,
    /// Results not stored because a conflicting change was applied while they were computed.
    pub stores_dropped: u64,
    /// Cache store failures (logged once per outage, never returned to callers).
    pub store_errors: u64,
    /// Routing records (ghosts) left for computed values that were handed out but not
    /// stored (refused by the race guard, or too large).
    pub ghosts_left: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) coalesced_waits: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    pub(crate) entries_invalidated: AtomicU64,
    pub(crate) stores_dropped: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) ghosts_left: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> EngineStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EngineStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            coalesced_waits: get(&self.coalesced_waits),
            invalidations: get(&self.invalidations),
            entries_invalidated: get(&self.entries_invalidated),
            stores_dropped: get(&self.stores_dropped),
            store_errors: get(&self.store_errors),
            ghosts_left: get(&self.ghosts_left),
        }
    }
}
