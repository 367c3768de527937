//! Cache stores: where serialized query results live between calls.
//!
//! [`CacheStore`] is the one trait; [`memory::MemoryStore`] (moka, in process) and
//! `redis::RedisStore` (shared between instances, `redis` feature) implement it and
//! pass the same test suite. A store keeps, next to each value, the entry's
//! [`ReadSet`](crate::types::ReadSet) and an index over it, so that [`CacheStore::invalidate`] finds the
//! affected entries itself (see each store's docs for where its index lives).
//!
//! Stores report failures as [`CacheError`]; the [`Engine`](crate::engine::Engine)
//! never passes them to users: a failed read is a miss, a failed write is skipped,
//! and the failure is logged once and counted.

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

pub use crate::seams::{
    CacheError, CacheStore, EntryPage, ListQuery, ListedEntry, PutOutcome, StoreTicket,
};
pub use crate::types::{CacheKey, canonical_json};

/// Fills one page of [`CacheStore::list`] within its query's bounds.
pub(crate) struct PageFill<'q> {
    query: &'q ListQuery,
    page: EntryPage,
    bytes: usize,
}

impl<'q> PageFill<'q> {
    pub(crate) fn new(query: &'q ListQuery) -> Self {
        PageFill {
            query,
            page: EntryPage {
                entries: Vec::new(),
                more: 0,
                more_exact: true,
            },
            bytes: 0,
        }
    }

    /// Whether `key` passes the query's tenant filter.
    pub(crate) fn wants(&self, key: &CacheKey) -> bool {
        self.query
            .tenant
            .as_deref()
            .is_none_or(|t| key.tenant.as_deref() == Some(t))
    }

    /// No entry fits any more: the next ones are only counted.
    pub(crate) fn is_full(&self) -> bool {
        self.page.entries.len() >= self.query.max_entries || self.bytes >= self.query.max_bytes
    }

    /// Counts a matching entry left out of the page.
    pub(crate) fn skip(&mut self) {
        self.page.more += 1;
    }

    /// Adds an entry, without its read set if that does not fit, or counts it when not
    /// even its key does.
    pub(crate) fn offer(
        &mut self,
        key: CacheKey,
        value_bytes: u64,
        age_ms: u64,
        hits: Option<u64>,
        reads: crate::types::ReadSet,
    ) {
        let key_bytes = serde_json::to_vec(&key).map_or(0, |v| v.len()) + 64;
        let reads_bytes = serde_json::to_vec(&reads).map_or(0, |v| v.len());
        if self.is_full() || self.bytes + key_bytes > self.query.max_bytes {
            self.skip();
            return;
        }
        self.bytes += key_bytes;
        let reads = if self.bytes + reads_bytes <= self.query.max_bytes {
            self.bytes += reads_bytes;
            Some(reads)
        } else {
            None
        };
        self.page.entries.push(ListedEntry {
            key,
            value_bytes,
            age_ms,
            hits,
            reads,
            reads_bytes: reads_bytes as u64,
        });
    }

    /// The page, sorted by key; `exact`: every entry was looked at.
    pub(crate) fn finish(mut self, exact: bool) -> EntryPage {
        self.page.entries.sort_by(|a, b| a.key.cmp(&b.key));
        self.page.more_exact = exact;
        self.page
    }
}
