//! [`MemoryStore`]: an in-process cache (moka) capped by bytes, with a TTL.
//!
//! Entries are weighed by their serialized value, key and read set; the cache evicts
//! (TinyLFU) to stay under [`MemoryConfig::max_bytes`]. The invalidation [`Index`]
//! lives next to the cache in the same process; moka's eviction listener removes an
//! entry's postings when it is invalidated, removed or replaced (and only then), so the
//! index never lacks a cached entry.
//!
//! # Ghosts
//!
//! A value that leaves the cache because it expired or was evicted for room may still
//! be on a client's screen: the postings of its read set stay in the index as a
//! *ghost* (tenant, key, read set; no value) for [`MemoryConfig::ghost_retention`], so
//! that a later change still finds the key and its tenant still hears of it
//! ([`CacheStore::invalidate`] reports a ghost like a live entry and removes it).
//! Ghosts are bounded by [`MemoryConfig::max_ghost_bytes`], oldest dropped first; a
//! dropped ghost takes its postings with it. Values the engine computed but could not
//! store leave a ghost too ([`CacheStore::put_ghost`]). An invalidated entry leaves
//! none: its tenant has just been told.
//!
//! The in-process store needs no version check of its own in [`CacheStore::put`]:
//! every change it sees goes through the engine, whose race guard already covers it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use moka::notification::RemovalCause;
use moka::sync::Cache;

use super::PageFill;
use crate::observe::metrics;
use crate::seams::{CacheError, CacheStore, EntryPage, ListQuery, PutOutcome, StoreTicket};
use crate::types::{CacheKey, ChangeOrigin};
use crate::types::{ChangeSet, Index, InvalidatedEntry, ReadSet};

/// Settings of a [`MemoryStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Upper bound of the weighed size of all entries (default 64 MiB).
    pub max_bytes: u64,
    /// Largest single entry accepted (default 8 MiB, at most `max_bytes`).
    pub max_entry_bytes: u64,
    /// Lifetime of an entry after it is stored (default 5 minutes).
    pub ttl: Duration,
    /// How long the routing record of an expired or evicted entry (a ghost) keeps
    /// routing changes to its tenant (default 24 h: at least as long as a client may keep
    /// data and resume its stream from the event log).
    pub ghost_retention: Duration,
    /// Upper bound of the approximate size of all ghosts (default 16 MiB); the oldest go first.
    pub max_ghost_bytes: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 8 * 1024 * 1024,
            ttl: Duration::from_secs(300),
            ghost_retention: Duration::from_secs(24 * 3600),
            max_ghost_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct Entry {
    id: u64,
    value: Bytes,
    weight: u32,
    stored: Instant,
    /// Lookups that found it (for the dev tools page; one relaxed add per hit).
    hits: AtomicU64,
}

/// One ghost: an id whose postings stay in the index without a cached value.
#[derive(Debug)]
struct Ghost {
    key: CacheKey,
    bytes: u64,
    since: Instant,
}

/// The ghosts, oldest first, bounded by age and bytes.
#[derive(Debug)]
struct Ghosts {
    by_id: HashMap<u64, Ghost>,
    /// At most one ghost per key: a newer one replaces it.
    by_key: HashMap<CacheKey, u64>,
    /// Ids in the order they became ghosts; ids already gone are skipped lazily.
    order: VecDeque<u64>,
    bytes: u64,
    retention: Duration,
    max_bytes: u64,
}

/// The index and the ghosts, under one lock (a ghost is postings in the index).
#[derive(Debug)]
struct State {
    index: Index<CacheKey>,
    ghosts: Ghosts,
}

impl State {
    /// Turns the indexed `id` into a ghost (its value left the cache).
    fn haunt(&mut self, id: u64) {
        if self.ghosts.by_id.contains_key(&id) {
            return;
        }
        let Some((key, reads)) = self.index.get(id) else {
            return;
        };
        let key = key.clone();
        let bytes = ghost_bytes(&key, reads);
        if let Some(older) = self.ghosts.by_key.insert(key.clone(), id) {
            self.drop_ghost(older);
        }
        self.ghosts.by_id.insert(
            id,
            Ghost {
                key,
                bytes,
                since: Instant::now(),
            },
        );
        self.ghosts.order.push_back(id);
        self.ghosts.bytes += bytes;
        self.trim(Instant::now());
    }

    /// Removes a ghost and its postings.
    fn drop_ghost(&mut self, id: u64) {
        let Some(ghost) = self.ghosts.by_id.remove(&id) else {
            return;
        };
        self.ghosts.bytes -= ghost.bytes;
        if self.ghosts.by_key.get(&ghost.key) == Some(&id) {
            self.ghosts.by_key.remove(&ghost.key);
        }
        self.index.remove(id);
    }

    /// Drops the oldest ghosts while over the byte bound or past the retention.
    fn trim(&mut self, now: Instant) {
        while let Some(&id) = self.ghosts.order.front() {
            let Some(ghost) = self.ghosts.by_id.get(&id) else {
                self.ghosts.order.pop_front();
                continue;
            };
            let expired = now.duration_since(ghost.since) >= self.ghosts.retention;
            if !expired && self.ghosts.bytes <= self.ghosts.max_bytes {
                break;
            }
            self.ghosts.order.pop_front();
            self.drop_ghost(id);
        }
        // Ids that left by invalidation stay in `order` until they reach the front.
        if self.ghosts.order.len() > 2 * self.ghosts.by_id.len() + 64 {
            let by_id = &self.ghosts.by_id;
            self.ghosts.order.retain(|id| by_id.contains_key(id));
        }
    }
}

fn ghost_bytes(key: &CacheKey, reads: &ReadSet) -> u64 {
    (key.approx_size() + reads.approx_size() + 96) as u64
}

/// The in-process cache store (see the module docs).
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<CacheKey, Arc<Entry>>,
    state: Arc<Mutex<State>>,
    next_id: Arc<AtomicU64>,
    max_entry_bytes: u64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(MemoryConfig::default())
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state holds no invariant a panic elsewhere could break half-way.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryStore {
    /// A store with these settings.
    pub fn new(config: MemoryConfig) -> Self {
        let state = Arc::new(Mutex::new(State {
            index: Index::new(),
            ghosts: Ghosts {
                by_id: HashMap::new(),
                by_key: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
                retention: config.ghost_retention,
                max_bytes: config.max_ghost_bytes,
            },
        }));
        let listener_state = Arc::clone(&state);
        let cache = Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|_key: &CacheKey, entry: &Arc<Entry>| entry.weight)
            .time_to_live(config.ttl)
            .eviction_listener(move |_key, entry: Arc<Entry>, cause| {
                metrics::gauge_add(metrics::CACHE_ENTRIES, -1.0);
                metrics::gauge_add(metrics::CACHE_BYTES, -f64::from(entry.weight));
                let mut state = lock(&listener_state);
                match cause {
                    // The value left on its own: its client may still show it.
                    RemovalCause::Expired | RemovalCause::Size => state.haunt(entry.id),
                    // Invalidated or removed (its tenant is told, or the app asked), or
                    // replaced by a newer entry with postings of its own.
                    RemovalCause::Explicit | RemovalCause::Replaced => {
                        state.index.remove(entry.id);
                    }
                }
            })
            .build();
        Self {
            cache,
            state,
            next_id: Arc::new(AtomicU64::new(1)),
            max_entry_bytes: config.max_entry_bytes.min(config.max_bytes),
        }
    }

    /// Number of entries (approximate until pending maintenance ran).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Weighed size of all entries in bytes (approximate until pending maintenance ran).
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Number of cached entries in the invalidation index (ghosts not counted).
    pub fn indexed_count(&self) -> usize {
        let state = lock(&self.state);
        state.index.len() - state.ghosts.by_id.len()
    }

    /// Number of ghosts: routing records of values that expired or were evicted.
    pub fn ghost_count(&self) -> usize {
        lock(&self.state).ghosts.by_id.len()
    }

    /// Approximate size of all ghosts in bytes.
    pub fn ghost_bytes(&self) -> u64 {
        lock(&self.state).ghosts.bytes
    }

    /// Runs moka's pending maintenance (evictions, expirations, listener calls) now.
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }
}

impl MemoryStore {
    fn put_now(&self, key: &CacheKey, value: Bytes, reads: &ReadSet) -> PutOutcome {
        let Some(entry) = self.index_entry(key, value, reads) else {
            return PutOutcome::TooLarge;
        };
        // Every insert leaves through the listener (`Replaced` included), which subtracts.
        metrics::gauge_add(metrics::CACHE_ENTRIES, 1.0);
        metrics::gauge_add(metrics::CACHE_BYTES, f64::from(entry.weight));
        self.cache.insert(key.clone(), entry);
        PutOutcome::Stored
    }

    /// The first half of a put: weighs the entry and indexes its read set under a new id
    /// (`None` when it is too large). The entry is not readable until it is inserted.
    fn index_entry(&self, key: &CacheKey, value: Bytes, reads: &ReadSet) -> Option<Arc<Entry>> {
        let weight =
            value.len() as u64 + key.approx_size() as u64 + reads.approx_size() as u64 + 64;
        if weight > self.max_entry_bytes {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Index first: if moka evicts the entry at once, its listener finds the postings.
        // An invalidation may find the postings before the entry is in the cache: it
        // must leave them (see `invalidate`).
        lock(&self.state)
            .index
            .insert(id, key.clone(), reads.clone());
        let weight = u32::try_from(weight).unwrap_or(u32::MAX);
        Some(Arc::new(Entry {
            id,
            value,
            weight,
            stored: Instant::now(),
            hits: AtomicU64::new(0),
        }))
    }

    fn put_ghost_now(&self, key: &CacheKey, reads: &ReadSet) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        state.index.insert(id, key.clone(), reads.clone());
        state.haunt(id);
    }

    /// One page of the cached values; every entry is looked at (to count the rest),
    /// the index's lock taken once per listed entry, not across the walk.
    fn list_now(&self, query: &ListQuery) -> EntryPage {
        let mut fill = PageFill::new(query);
        let now = Instant::now();
        for (key, entry) in self.cache.iter() {
            if !fill.wants(&key) {
                continue;
            }
            if fill.is_full() {
                fill.skip();
                continue;
            }
            let reads = lock(&self.state)
                .index
                .get(entry.id)
                .map(|(_, reads)| reads.clone());
            // Not indexed: it is leaving (invalidated or replaced) right now.
            let Some(reads) = reads else { continue };
            fill.offer(
                (*key).clone(),
                entry.value.len() as u64,
                now.duration_since(entry.stored).as_millis() as u64,
                Some(entry.hits.load(Ordering::Relaxed)),
                reads,
            );
        }
        fill.finish(true)
    }

    fn invalidate_now(&self, changes: &ChangeSet) -> Vec<InvalidatedEntry> {
        // Postings of a cached entry leave the index only once the entry has left the
        // cache: a concurrent invalidation must still find (and remove) an entry whose
        // removal this one has not finished, or it could return while the entry is served.
        // So they leave through the eviction listener (called by `invalidate` for the
        // entry it removed), never here by id: a concurrent put indexes its entry before
        // inserting it, and an invalidation that runs in between finds the id, removes
        // nothing (or an older entry) from the cache, and must not unindex the entry the
        // put inserts next. A ghost has no entry: it goes here, under the lock.
        let mut live = Vec::new();
        let mut out = Vec::new();
        {
            let mut state = lock(&self.state);
            let now = Instant::now();
            state.trim(now);
            for (id, key, reasons) in state.index.affected(changes) {
                if state.ghosts.by_id.contains_key(&id) {
                    state.drop_ghost(id);
                    out.push(InvalidatedEntry { key, reasons });
                } else {
                    live.push(InvalidatedEntry { key, reasons });
                }
            }
        }
        for entry in &live {
            self.cache.invalidate(&entry.key);
        }
        out.extend(live);
        out
    }
}

impl CacheStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn begin(&self) -> BoxFuture<'_, Result<StoreTicket, CacheError>> {
        futures::future::ready(Ok(StoreTicket(0))).boxed()
    }

    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>> {
        // Every operation of the store is synchronous (moka's sync cache: no lock held
        // across an await, cheaper than its async twin): the futures are ready ones.
        let value = self.cache.get(key).map(|e| {
            e.hits.fetch_add(1, Ordering::Relaxed);
            e.value.clone()
        });
        futures::future::ready(Ok(value)).boxed()
    }

    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        value: Bytes,
        reads: &'a ReadSet,
        _ticket: StoreTicket,
    ) -> BoxFuture<'a, Result<PutOutcome, CacheError>> {
        futures::future::ready(Ok(self.put_now(key, value, reads))).boxed()
    }

    fn put_ghost<'a>(
        &'a self,
        key: &'a CacheKey,
        reads: &'a ReadSet,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        self.put_ghost_now(key, reads);
        futures::future::ready(Ok(())).boxed()
    }

    fn invalidate<'a>(
        &'a self,
        changes: &'a ChangeSet,
        _origin: ChangeOrigin,
    ) -> BoxFuture<'a, Result<Vec<InvalidatedEntry>, CacheError>> {
        futures::future::ready(Ok(self.invalidate_now(changes))).boxed()
    }

    fn remove<'a>(&'a self, keys: &'a [CacheKey]) -> BoxFuture<'a, Result<(), CacheError>> {
        async move {
            for key in keys {
                // The eviction listener removes the postings of the cached entry; a ghost
                // of the key goes too (the app asked to forget it, as on the Redis store).
                self.cache.invalidate(key);
                let mut state = lock(&self.state);
                if let Some(id) = state.ghosts.by_key.get(key).copied() {
                    state.drop_ghost(id);
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), CacheError>> {
        async move {
            // The postings leave with the entries (eviction listener), never before: a
            // concurrent put's entry is either invalidated here or stays indexed. Ghosts
            // stay: they hold no value, only where to send later changes.
            self.cache.invalidate_all();
            Ok(())
        }
        .boxed()
    }

    fn list<'a>(
        &'a self,
        query: &'a ListQuery,
    ) -> BoxFuture<'a, Result<Option<EntryPage>, CacheError>> {
        futures::future::ready(Ok(Some(self.list_now(query)))).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Conjunction, KeyValue, RowChange};

    fn org_reads(org: i64) -> ReadSet {
        ReadSet::empty().with(
            "agent",
            Conjunction::whole().with("organization_id", KeyValue::from_i64(org)),
        )
    }
    fn org_change(org: i64) -> ChangeSet {
        ChangeSet::empty().with_row(
            "agent",
            RowChange::whole().with("organization_id", KeyValue::from_i64(org)),
        )
    }
    fn invalidate(store: &MemoryStore, changes: &ChangeSet) -> Vec<InvalidatedEntry> {
        store
            .invalidate(changes, ChangeOrigin::Local)
            .now_or_never()
            .expect("the memory store is synchronous")
            .unwrap()
    }

    /// A put whose guard check passed (the change was applied before its computation
    /// started) races that change's invalidation: the invalidation runs after the put
    /// indexed its entry and before it inserted it. The entry is fresh, but it must stay
    /// indexed, or no later change finds it and it is served stale until evicted.
    #[test]
    fn invalidation_between_indexing_and_insert_keeps_the_entry_indexed() {
        let store = MemoryStore::default();
        let key = CacheKey::new(Some("t"), "agents.findMany", "{\"org\":1}");
        // An older entry is cached.
        let old = store.index_entry(&key, Bytes::from_static(b"0"), &org_reads(1));
        store.cache.insert(key.clone(), old.unwrap());

        // `put_now`, with the invalidation between its two steps.
        let entry = store
            .index_entry(&key, Bytes::from_static(b"1"), &org_reads(1))
            .unwrap();
        assert!(!invalidate(&store, &org_change(1)).is_empty());
        store.cache.insert(key.clone(), entry);

        // A later change to the rows the entry read.
        invalidate(&store, &org_change(1));
        assert_eq!(
            store.get(&key).now_or_never().unwrap().unwrap(),
            None,
            "served stale: the later change did not find the entry"
        );
        assert_eq!(store.indexed_count(), 0);
    }
}
