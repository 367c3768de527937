//! The cache store seam: where serialized query results live between calls.

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::types::{CacheKey, ChangeOrigin, ChangeSet, InvalidatedEntry, ReadSet};

/// Which entries [`CacheStore::list`] returns, and at most how many (for the dev tools
/// page: a store may hold millions, a page shows one bounded page of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this tenant's entries (`None`: every tenant's, untenanted ones included).
    pub tenant: Option<String>,
    /// Most entries in the page.
    pub max_entries: usize,
    /// Most bytes of the page: each entry's key and read set, as JSON. A read set that
    /// does not fit is left out of its entry ([`ListedEntry::reads`] is `None`).
    pub max_bytes: usize,
}

/// One cached value, as [`CacheStore::list`] shows it (the value itself is not read).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedEntry {
    /// Tenant, procedure and input.
    pub key: CacheKey,
    /// Size of the stored value in bytes.
    pub value_bytes: u64,
    /// Time since the value was stored, in milliseconds.
    pub age_ms: u64,
    /// Lookups that found it, when the store counts them (`None`: it does not).
    pub hits: Option<u64>,
    /// What it read (`None`: too large for the page's byte bound, see `reads_bytes`).
    pub reads: Option<ReadSet>,
    /// Size of the read set as JSON.
    pub reads_bytes: u64,
}

/// One page of [`CacheStore::list`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryPage {
    /// The entries, by tenant, procedure and input.
    pub entries: Vec<ListedEntry>,
    /// Matching entries not in the page (a lower bound unless `more_exact`).
    pub more: u64,
    /// Whether the store looked at every entry, so that `more` is exact (a store that
    /// bounds its work, such as Redis, may stop counting).
    pub more_exact: bool,
}

/// A cache store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The store can't be reached (connection refused, timeout).
    #[error("cache store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with an error.
    #[error("cache store error: {0}")]
    Backend(String),
    /// Stored data could not be decoded.
    #[error("cache entry could not be decoded: {0}")]
    Corrupt(String),
    /// The store's configuration is invalid (bad URL, ...).
    #[error("invalid cache store configuration: {0}")]
    Config(String),
}

/// What a store captured when a computation started, checked again when its result
/// is stored ([`CacheStore::begin`], [`CacheStore::put`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreTicket(pub u64);

/// The result of [`CacheStore::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The entry is stored.
    Stored,
    /// A change to a table the entry read was applied (possibly by another instance)
    /// after the ticket was taken: the value may be stale and was not stored.
    Conflict,
    /// The entry is larger than the store accepts per entry.
    TooLarge,
}

/// A store of serialized results with their read sets. Object-safe; share as
/// `Arc<dyn CacheStore>`.
///
/// Contract for implementations (what makes invalidation complete):
/// - an entry is never readable while its read set is absent from the index: `put`
///   indexes before (or atomically with) the write, and postings leave the index only
///   after (or atomically with) their entry;
/// - when `invalidate` returns, no entry it found affected is readable, including
///   entries another, concurrent invalidation found first;
/// - `clear` keeps both properties for puts that run concurrently with it;
/// - a value that leaves the store other than by `invalidate`/`remove`/`clear` (expiry,
///   eviction) should leave its routing record behind for a while (a ghost), so that a
///   tenant whose client still shows it hears of later changes (see each store).
pub trait CacheStore: Send + Sync + 'static {
    /// A short name for logs (`memory`, `redis`).
    fn name(&self) -> &'static str;

    /// Captures the store's state before a computation starts (for [`CacheStore::put`]).
    fn begin(&self) -> BoxFuture<'_, Result<StoreTicket, CacheError>>;

    /// The value stored under `key`, if any.
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>>;

    /// Stores `value` with the read set it was computed from, unless a change that
    /// touches one of its tables was applied to this store since `ticket` was taken
    /// (stores shared by several instances must check this atomically with the write).
    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        value: Bytes,
        reads: &'a ReadSet,
        ticket: StoreTicket,
    ) -> BoxFuture<'a, Result<PutOutcome, CacheError>>;

    /// Leaves a routing record (a *ghost*: key and read set, no value) for a value the
    /// engine computed and handed out but did not store (the race guard refused it, or it
    /// was too large), so that later changes to what it read still reach its tenant:
    /// [`CacheStore::invalidate`] reports a ghost like an entry and removes it. `get`
    /// never returns anything for a ghost. Stores without routing records keep the
    /// default, which does nothing.
    fn put_ghost<'a>(
        &'a self,
        key: &'a CacheKey,
        reads: &'a ReadSet,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        let _ = (key, reads);
        Box::pin(futures::future::ready(Ok(())))
    }

    /// Removes every entry the change can affect and returns them with reasons,
    /// ghosts (routing records whose value expired, was evicted or was never stored)
    /// included: their tenants may still show the value.
    /// For [`ChangeOrigin::Remote`] a shared store may return nothing: the instance that
    /// applied the change first has already invalidated the shared entries.
    fn invalidate<'a>(
        &'a self,
        changes: &'a ChangeSet,
        origin: ChangeOrigin,
    ) -> BoxFuture<'a, Result<Vec<InvalidatedEntry>, CacheError>>;

    /// Removes these keys.
    fn remove<'a>(&'a self, keys: &'a [CacheKey]) -> BoxFuture<'a, Result<(), CacheError>>;

    /// Removes every entry.
    fn clear(&self) -> BoxFuture<'_, Result<(), CacheError>>;

    /// One bounded page of the cached values (routing records without a value are not
    /// listed), for the dev tools page: `Ok(None)` when the store cannot list, which is
    /// the default, so stores written before this method keep compiling.
    fn list<'a>(
        &'a self,
        query: &'a ListQuery,
    ) -> BoxFuture<'a, Result<Option<EntryPage>, CacheError>> {
        let _ = query;
        Box::pin(futures::future::ready(Ok(None)))
    }
}
