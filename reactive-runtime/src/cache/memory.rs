//! [`MemoryStore`]: an in-process cache (moka) capped by bytes, with a TTL.
//!
//! Entries are weighed by their serialized value, key and read set; the cache evicts
//! (TinyLFU) to stay under [`MemoryConfig::max_bytes`]. The invalidation [`Index`]
//! lives next to the cache in the same process; moka's eviction listener removes an
//! entry's postings when it is evicted, expires, is replaced or invalidated (and only
//! then), so the index never outgrows the cache and never lacks a cached entry.
//!
//! The in-process store needs no version check of its own in [`CacheStore::put`]:
//! every change it sees goes through the engine, whose race guard already covers it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use moka::sync::Cache;

use super::{CacheError, CacheKey, CacheStore, Origin, PutOutcome, StoreTicket};
use crate::engine::{ChangeSet, Index, InvalidatedEntry, ReadSet};

/// Settings of a [`MemoryStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Upper bound of the weighed size of all entries (default 64 MiB).
    pub max_bytes: u64,
    /// Largest single entry accepted (default 8 MiB, at most `max_bytes`).
    pub max_entry_bytes: u64,
    /// Lifetime of an entry after it is stored (default 5 minutes).
    pub ttl: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 8 * 1024 * 1024,
            ttl: Duration::from_secs(300),
        }
    }
}

#[derive(Debug)]
struct Entry {
    id: u64,
    value: Bytes,
    weight: u32,
}

/// The in-process cache store (see the module docs).
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<CacheKey, Arc<Entry>>,
    index: Arc<Mutex<Index<CacheKey>>>,
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

fn lock<K: Clone>(index: &Mutex<Index<K>>) -> MutexGuard<'_, Index<K>> {
    // The index holds no invariant a panic elsewhere could break half-way.
    index
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryStore {
    /// A store with these settings.
    pub fn new(config: MemoryConfig) -> Self {
        let index: Arc<Mutex<Index<CacheKey>>> = Arc::default();
        let listener_index = Arc::clone(&index);
        let cache = Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|_key: &CacheKey, entry: &Arc<Entry>| entry.weight)
            .time_to_live(config.ttl)
            .eviction_listener(move |_key, entry: Arc<Entry>, _cause| {
                lock(&listener_index).remove(entry.id);
            })
            .build();
        Self {
            cache,
            index,
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

    /// Number of entries in the invalidation index.
    pub fn indexed_count(&self) -> usize {
        lock(&self.index).len()
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
        lock(&self.index).insert(id, key.clone(), reads.clone());
        let weight = u32::try_from(weight).unwrap_or(u32::MAX);
        Some(Arc::new(Entry { id, value, weight }))
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
        futures::future::ready(Ok(self.cache.get(key).map(|e| e.value.clone()))).boxed()
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

    fn invalidate<'a>(
        &'a self,
        changes: &'a ChangeSet,
        _origin: Origin,
    ) -> BoxFuture<'a, Result<Vec<InvalidatedEntry>, CacheError>> {
        async move {
            // Postings leave the index only once their entry has left the cache: a
            // concurrent invalidation must still find (and remove) an entry whose removal
            // this one has not finished, or it could return while the entry is served.
            // So they leave through the eviction listener (called by `invalidate` for the
            // entry it removed), never here by id: a concurrent put indexes its entry
            // before inserting it, and an invalidation that runs in between finds the
            // id, removes nothing (or an older entry) from the cache, and must not
            // unindex the entry the put inserts next.
            let found = lock(&self.index).affected(changes);
            let mut out = Vec::with_capacity(found.len());
            for (_id, key, reasons) in found {
                self.cache.invalidate(&key);
                out.push(InvalidatedEntry { key, reasons });
            }
            Ok(out)
        }
        .boxed()
    }

    fn remove<'a>(&'a self, keys: &'a [CacheKey]) -> BoxFuture<'a, Result<(), CacheError>> {
        async move {
            for key in keys {
                // The eviction listener removes the postings.
                self.cache.invalidate(key);
            }
            Ok(())
        }
        .boxed()
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), CacheError>> {
        async move {
            // The postings leave with the entries (eviction listener), never before: a
            // concurrent put's entry is either invalidated here or stays indexed.
            self.cache.invalidate_all();
            Ok(())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Conjunction, KeyValue, RowChange};

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
            .invalidate(changes, Origin::Local)
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
