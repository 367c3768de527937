//! The invalidation engine: the race guard, coalescing of identical misses, and
//! [`Engine`], which ties the data of [`crate::types`] (read sets, change sets,
//! relations, the matcher) to a [`CacheStore`].
//!
//! - [`Engine::get_or_compute`]: cache lookup, coalesced computation, guarded store.
//! - [`Engine::apply`]: expands a change set, records it for the race guard, invalidates,
//!   and returns an [`InvalidationReport`].
//!
//! # Correctness argument
//!
//! A write's change set is applied after the write commits and before the write
//! returns. A read records the engine sequence (and the store's ticket) before it runs
//! any statement. Its result is stored only if no change applied since then can affect
//! its final read set (checked against the ring under a lock that `apply` takes to
//! append), and, for a shared store, only if no instance changed one of its tables since
//! the ticket (checked atomically by the store). Otherwise the entry is in the store
//! before the change's invalidation runs, and that invalidation removes it. A waiter
//! that joined a computation started before a change it must observe recomputes.
//!
//! A waiter's check sees only this engine's ring, and another instance's change
//! reaches the ring when the bus delivers it, which can be after that instance's
//! event is in the shared log. So a waiter answers with the *leader's* watermark
//! (taken before the leader ran; see [`Engine::get_or_compute_at`]), never its own: a
//! value never claims an event it may predate, and its client applies that event.
//!
//! # Store failures
//!
//! A failing store (Redis down) is never an error for callers: a failed `get` is a
//! miss, a failed `begin`/`put` skips the store, and the first failure of an outage is
//! logged (`tracing::warn`) and every one counted ([`EngineStats::store_errors`]).
//! After any failure, lookups and stores skip the store for
//! [`EngineConfig::clear_retry`], so a store that hangs until its timeout (Redis paused)
//! costs one timeout per interval, not one per read. A
//! failed *invalidation* is worse: the store may still hold entries the change affects.
//! The engine then bypasses the store (no reads, no writes) until a `clear` succeeds,
//! retried in the background at most every [`EngineConfig::clear_retry`].
//! Known limit: another instance that did not see the failure may serve such entries
//! from a shared store until this instance's clear runs.
//!
//! # Where the index lives
//!
//! Each store keeps its own index of which entry read what ([`Index`](crate::types::Index) in process for the
//! memory store, sets in Redis for the Redis store), so that invalidation finds the
//! affected entries that *any* instance stored, and eviction keeps index and entries in step.
//!
//! # Routing records outlive values
//!
//! The index is also how the realtime layer learns which tenants a change concerns
//! (the tenants of the reported keys). A value that expired or was evicted may still be
//! on a client's screen, so its index postings stay as a *ghost* for a retention period
//! and are reported like an entry (see the stores). A computed value that is handed out
//! without being stored leaves a ghost too ([`CacheStore::put_ghost`]): when the race
//! guard refused it ([`Fetched::refused`]), and when it was too large.

mod coalesce;
mod guard;
mod stats;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::RwLock;
use tracing::Instrument;

pub use stats::EngineStats;
// The data types the engine works on, at the paths applications have used.
pub use crate::types::{
    ChangeSet, Conjunction, InvalidatedEntry, InvalidationReport, KeyValue, ReadSet, Reason,
    ReferencingValues, RelationEdge, Relations, RelationsDef, RowChange, RowOp, Source,
};

use crate::observe::metrics;
use crate::seams::{CacheError, CacheStore, PutOutcome, StoreTicket};
use crate::types::{CacheKey, ChangeOrigin, MAX_REASONS};
use coalesce::{InFlight, Role, Shared};
use guard::Ring;
use stats::Counters;

/// Settings of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Relation edges that expand change sets (default: [`Relations::registered`]).
    pub relations: Relations,
    /// How many recent change sets the race guard keeps (default 4096). A computation
    /// that overlaps more changes than this does not store its result.
    pub ring_capacity: usize,
    /// After a store failure during invalidation, how often to try clearing the store
    /// (default 1 s); the cache is bypassed until a clear succeeds. Also how long
    /// lookups and stores skip the store after any failure of it.
    pub clear_retry: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            relations: Relations::registered(),
            ring_capacity: 4096,
            clear_retry: Duration::from_secs(1),
        }
    }
}

/// The result of [`Engine::get_or_compute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The serialized result.
    pub value: Bytes,
    /// Where it came from.
    pub source: Source,
    /// The race guard refused to store this computed value: a change that may affect
    /// it was applied while it ran, so it may predate that change, whose event was not
    /// routed to this key (nothing was stored under it yet). A routing record (ghost)
    /// was left, so later changes to what it read reach its tenant. A caller that hands
    /// the value to a client should compute again ([`ReactiveDb::call`](crate::ReactiveDb)
    /// does): the new computation sees the change.
    pub refused: bool,
    /// The watermark the value reflects (see [`Engine::get_or_compute_at`]): the
    /// caller's own for a hit or a computation of its own, the leader's for a
    /// coalesced value.
    pub watermark: u64,
}

impl Fetched {
    /// `true` when served from the cache.
    pub fn is_hit(&self) -> bool {
        self.source == Source::Hit
    }
}

struct EngineShared {
    store: Arc<dyn CacheStore>,
    /// The edges the app declared (`EngineConfig::relations`).
    declared: Relations,
    /// `declared` plus the edges of the database's foreign keys with actions (read from
    /// its catalog by `ReactiveDb`): what change sets are expanded along.
    relations: std::sync::RwLock<Arc<Relations>>,
    /// What `SET NULL`/`SET DEFAULT` foreign keys give the rows they reach (the
    /// database's catalog, installed by `ReactiveDb`).
    referencing: std::sync::RwLock<Arc<ReferencingValues>>,
    ring: RwLock<Ring>,
    inflight: InFlight,
    counters: Counters,
    /// A store failure is being reported (cleared when the store answers again).
    warned: AtomicBool,
    /// An invalidation failed: the store may hold stale entries until it is cleared.
    poisoned: AtomicBool,
    /// When the last clear attempt ran (ms since `epoch`).
    last_clear_ms: AtomicU64,
    clear_retry: Duration,
    epoch: Instant,
    /// Until when (ms since `epoch`) lookups and stores skip a store that just failed:
    /// an unreachable store (Redis paused) then costs one timeout per `clear_retry`,
    /// not one or two per read. Skipping them is always safe (a miss, no store).
    resting_until_ms: AtomicU64,
}

/// The invalidation engine over a cache store. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineShared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.store.name())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store` with the registered relations.
    pub fn new(store: Arc<dyn CacheStore>) -> Self {
        Self::with_config(store, EngineConfig::default())
    }

    /// An engine with explicit settings.
    pub fn with_config(store: Arc<dyn CacheStore>, config: EngineConfig) -> Self {
        Self {
            inner: Arc::new(EngineShared {
                store,
                relations: std::sync::RwLock::new(Arc::new(config.relations.clone())),
                declared: config.relations,
                referencing: std::sync::RwLock::new(Arc::new(ReferencingValues::none())),
                ring: RwLock::new(Ring::new(config.ring_capacity)),
                inflight: InFlight::default(),
                counters: Counters::default(),
                warned: AtomicBool::new(false),
                poisoned: AtomicBool::new(false),
                last_clear_ms: AtomicU64::new(0),
                clear_retry: config.clear_retry,
                epoch: Instant::now(),
                resting_until_ms: AtomicU64::new(0),
            }),
        }
    }

    /// The cache store.
    pub fn store(&self) -> &Arc<dyn CacheStore> {
        &self.inner.store
    }

    /// The relation edges used to expand change sets: the declared ones and those of
    /// the database's foreign keys ([`Engine::set_foreign_key_edges`]).
    pub fn relations(&self) -> Arc<Relations> {
        self.inner
            .relations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Adds the edges of the database's foreign keys whose actions change other rows
    /// (`CASCADE`, `SET NULL`, `SET DEFAULT`) to the declared ones, replacing those set
    /// before (`ReactiveDb` does, from the catalog, each time it reads it): a cascade
    /// then reaches the cached queries of the rows it changes without a declaration.
    pub fn set_foreign_key_edges(&self, edges: impl IntoIterator<Item = RelationEdge>) {
        let all = Relations::from_edges(self.inner.declared.edges().iter().cloned().chain(edges));
        *self
            .inner
            .relations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(all);
    }

    /// A change set expanded along the relation edges (what [`Engine::apply`] matches).
    pub fn expand(&self, changes: &ChangeSet) -> ChangeSet {
        self.relations()
            .expand_with(changes, &self.referencing_values())
    }

    /// The new values foreign-key actions give referencing columns (see [`ReferencingValues`]).
    pub fn referencing_values(&self) -> Arc<ReferencingValues> {
        self.inner
            .referencing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sets what `SET NULL`/`SET DEFAULT` foreign keys give the rows relation edges
    /// reach (`ReactiveDb` does, from the database's catalog).
    pub fn set_referencing_values(&self, values: ReferencingValues) {
        *self
            .inner
            .referencing
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(values);
    }

    /// The sequence number of the last applied change.
    pub async fn sequence(&self) -> u64 {
        self.inner.ring.read().await.sequence()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> EngineStats {
        self.inner.counters.snapshot()
    }

    /// Number of computations in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.inner.inflight.len()
    }

    /// [`Engine::get_or_compute_at`] without a watermark (`0`: the value claims to
    /// reflect nothing in particular).
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: impl std::borrow::Borrow<CacheKey>,
        static_reads: ReadSet,
        compute: F,
    ) -> Result<Fetched, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Bytes, ReadSet), E>>,
    {
        self.get_or_compute_at(key, 0, static_reads, compute).await
    }

    /// The cached value for `key`, or the result of `compute`, which is stored unless a
    /// conflicting change was applied while it ran.
    ///
    /// `static_reads` is what the call is known to read before it runs (from the
    /// function model); `compute` returns the serialized value and the reads it
    /// discovered while running (statements the model did not list). The stored read
    /// set is their union. Identical concurrent calls (same key) run `compute` once.
    /// Errors of `compute` are returned as is and nothing is stored; cache store
    /// failures are never returned (see [`EngineStats::store_errors`]).
    ///
    /// A computed value the race guard refuses to store is returned with
    /// [`Fetched::refused`] set (it may predate a write no event routed to `key`), after
    /// a routing record for `key` was left; waiters of that computation compute their own.
    ///
    /// `watermark` is opaque to the engine: the newest event the caller knows to be
    /// reflected by any read that starts now (the router passes the tenant's event-log
    /// head, taken before this call). It is returned in [`Fetched::watermark`]: as is
    /// for a hit or this call's own computation, but a coalesced value returns the
    /// *leader's* watermark. The waiter's own may be newer than what the leader's value
    /// reflects: a write on another instance whose change set has not reached this
    /// engine's ring yet (the bus lags the event log) is invisible to the waiter's
    /// check, and a watermark naming it would make the client skip its event.
    pub async fn get_or_compute_at<F, Fut, E>(
        &self,
        key: impl std::borrow::Borrow<CacheKey>,
        watermark: u64,
        static_reads: ReadSet,
        compute: F,
    ) -> Result<Fetched, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Bytes, ReadSet), E>>,
    {
        let key: &CacheKey = key.borrow();
        let inner = &*self.inner;
        // Changes applied before this call began must be visible in what it returns.
        let called_at = self.sequence().await;
        loop {
            if let Some(value) = self.cached(key).await {
                Counters::bump(&inner.counters.hits, 1);
                metrics::count(metrics::CACHE_HITS, 1);
                return Ok(Fetched {
                    value,
                    source: Source::Hit,
                    refused: false,
                    watermark,
                });
            }
            match inner.inflight.join(key) {
                Role::Wait(rx) => {
                    Counters::bump(&inner.counters.coalesced_waits, 1);
                    metrics::count(metrics::CACHE_COALESCED_WAITS, 1);
                    let Some(shared) = coalesce::wait(rx).await else {
                        continue;
                    };
                    if shared.refused
                        || inner
                            .ring
                            .read()
                            .await
                            .conflicts(shared.start, called_at, &shared.reads)
                    {
                        // The leader started before a change this call must observe, or
                        // its value may predate a change no event routes to this key.
                        continue;
                    }
                    return Ok(Fetched {
                        value: shared.value.clone(),
                        source: Source::Coalesced,
                        refused: false,
                        // What the leader's value reflects, not what this call knew of.
                        watermark: shared.watermark,
                    });
                }
                Role::Lead(leader) => {
                    Counters::bump(&inner.counters.misses, 1);
                    metrics::count(metrics::CACHE_MISSES, 1);
                    let start = self.sequence().await;
                    let ticket = if self.bypassing() || self.resting() {
                        None
                    } else {
                        match inner.store.begin().await {
                            Ok(t) => Some(t),
                            Err(e) => {
                                self.store_failed("begin", &e);
                                None
                            }
                        }
                    };
                    let (value, extra) = compute().await?;
                    let mut reads = static_reads;
                    reads.union_owned(extra);
                    let refused = match ticket {
                        Some(ticket) => self.store_result(key, &value, &reads, start, ticket).await,
                        None => false,
                    };
                    leader.publish(|| Shared {
                        value: value.clone(),
                        start,
                        watermark,
                        reads,
                        refused,
                    });
                    return Ok(Fetched {
                        value,
                        source: Source::Computed,
                        refused,
                        watermark,
                    });
                }
            }
        }
    }

    /// Applies a change set made by this instance (after its commit): expands it,
    /// records it for the race guard, removes the affected cache entries and reports
    /// what it did. Never fails: a store failure is logged, counted and flagged in the report.
    pub async fn apply(&self, changes: ChangeSet) -> InvalidationReport {
        self.apply_from(changes, ChangeOrigin::Local).await
    }

    /// Applies a change set made by another instance (received from the event bus).
    pub async fn apply_remote(&self, changes: ChangeSet) -> InvalidationReport {
        self.apply_from(changes, ChangeOrigin::Remote).await
    }

    async fn apply_from(&self, changes: ChangeSet, origin: ChangeOrigin) -> InvalidationReport {
        let expanded = self.expand(&changes);
        if expanded.is_empty() {
            return InvalidationReport {
                remote: origin == ChangeOrigin::Remote,
                ..InvalidationReport::default()
            };
        }
        let span = tracing::debug_span!(
            "invalidate",
            tables = ?expanded.tables.keys().collect::<Vec<_>>(),
            everything = expanded.everything,
            remote = origin == ChangeOrigin::Remote,
        );
        self.invalidate(expanded, origin).instrument(span).await
    }

    async fn invalidate(&self, expanded: ChangeSet, origin: ChangeOrigin) -> InvalidationReport {
        let inner = &*self.inner;
        let expanded = Arc::new(expanded);
        let sequence = inner.ring.write().await.push(Arc::clone(&expanded));
        let (mut entries, store_failed) = match inner.store.invalidate(&expanded, origin).await {
            Ok(entries) => {
                self.store_ok();
                (entries, false)
            }
            Err(e) => {
                self.store_failed("invalidate", &e);
                inner.poisoned.store(true, Ordering::SeqCst);
                (Vec::new(), true)
            }
        };
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        // A key can be found twice (a live entry and the ghost of an older value of it).
        entries.dedup_by(|later, kept| {
            if later.key != kept.key {
                return false;
            }
            for reason in later.reasons.drain(..) {
                if kept.reasons.len() < MAX_REASONS && !kept.reasons.contains(&reason) {
                    kept.reasons.push(reason);
                }
            }
            true
        });
        Counters::bump(&inner.counters.invalidations, 1);
        Counters::bump(&inner.counters.entries_invalidated, entries.len() as u64);
        metrics::invalidation(origin == ChangeOrigin::Remote, &entries);
        tracing::debug!(sequence, entries = entries.len(), "invalidation applied");
        let changes = Arc::unwrap_or_clone(expanded);
        InvalidationReport {
            sequence,
            tables: changes.table_names().map(str::to_owned).collect(),
            changes,
            entries,
            remote: origin == ChangeOrigin::Remote,
            store_failed,
        }
    }

    /// Removes every cache entry.
    pub async fn clear(&self) {
        match self.inner.store.clear().await {
            Ok(()) => {
                self.inner.poisoned.store(false, Ordering::SeqCst);
                self.store_ok();
            }
            Err(e) => self.store_failed("clear", &e),
        }
    }

    /// A cached value, or `None` on a miss, a store failure or while bypassing.
    async fn cached(&self, key: &CacheKey) -> Option<Bytes> {
        if self.bypassing() || self.resting() {
            return None;
        }
        match self.inner.store.get(key).await {
            Ok(v) => {
                self.store_ok();
                v
            }
            Err(e) => {
                self.store_failed("get", &e);
                None
            }
        }
    }

    /// Stores a computed value unless the race guard refuses it; returns `true` when it
    /// was refused. A value that is handed out but not stored (refused, or too large)
    /// leaves a routing record, so later changes to what it read reach its tenant.
    async fn store_result(
        &self,
        key: &CacheKey,
        value: &Bytes,
        reads: &ReadSet,
        start: u64,
        ticket: StoreTicket,
    ) -> bool {
        let inner = &*self.inner;
        // Held until the routing record is in the store: a change not in the ring yet is
        // appended after it, and its invalidation finds it.
        let ring = inner.ring.read().await;
        if ring.conflicts(start, ring.sequence(), reads) {
            Counters::bump(&inner.counters.stores_dropped, 1);
            tracing::debug!(
                ?key,
                "result not cached: a conflicting change was applied while it was computed"
            );
            if !self.bypassing() {
                self.put_ghost(key, reads).await;
            }
            return true;
        }
        if self.bypassing() || self.resting() {
            return false;
        }
        let refused = match inner.store.put(key, value.clone(), reads, ticket).await {
            Ok(PutOutcome::Stored) => {
                self.store_ok();
                false
            }
            Ok(PutOutcome::Conflict) => {
                self.store_ok();
                Counters::bump(&inner.counters.stores_dropped, 1);
                tracing::debug!(
                    ?key,
                    "result not cached: another instance changed a table it read"
                );
                self.put_ghost(key, reads).await;
                true
            }
            Ok(PutOutcome::TooLarge) => {
                self.store_ok();
                tracing::debug!(
                    ?key,
                    size = value.len(),
                    "result not cached: larger than the per-entry limit"
                );
                self.put_ghost(key, reads).await;
                false
            }
            Err(e) => {
                self.store_failed("put", &e);
                false
            }
        };
        drop(ring);
        refused
    }

    async fn put_ghost(&self, key: &CacheKey, reads: &ReadSet) {
        if self.resting() {
            return;
        }
        match self.inner.store.put_ghost(key, reads).await {
            Ok(()) => Counters::bump(&self.inner.counters.ghosts_left, 1),
            Err(e) => self.store_failed("put_ghost", &e),
        }
    }

    /// `true` while the store may hold entries an invalidation failed to remove; tries
    /// (at most every `clear_retry`) to clear it, which ends the bypass.
    fn bypassing(&self) -> bool {
        let inner = &*self.inner;
        if !inner.poisoned.load(Ordering::SeqCst) {
            return false;
        }
        let now = inner.epoch.elapsed().as_millis() as u64;
        let last = inner.last_clear_ms.load(Ordering::SeqCst);
        let retry = inner.clear_retry.as_millis() as u64;
        if (last == 0 || now.saturating_sub(last) >= retry)
            && inner
                .last_clear_ms
                .compare_exchange(last, now.max(1), Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            let engine = self.clone();
            // Clearing in the background keeps lookups fast while the store is down.
            tokio::spawn(async move { engine.clear().await });
        }
        true
    }

    /// `true` while lookups and stores skip a store that failed moments ago.
    fn resting(&self) -> bool {
        let inner = &*self.inner;
        (inner.epoch.elapsed().as_millis() as u64) < inner.resting_until_ms.load(Ordering::Relaxed)
    }

    fn store_ok(&self) {
        if self.inner.warned.swap(false, Ordering::Relaxed) {
            tracing::info!(
                store = self.inner.store.name(),
                "cache store reachable again"
            );
        }
    }

    fn store_failed(&self, op: &'static str, error: &CacheError) {
        Counters::bump(&self.inner.counters.store_errors, 1);
        metrics::count(metrics::CACHE_STORE_ERRORS, 1);
        let inner = &*self.inner;
        let until = inner.epoch.elapsed().as_millis() as u64 + inner.clear_retry.as_millis() as u64;
        inner.resting_until_ms.store(until, Ordering::Relaxed);
        if !self.inner.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(store = self.inner.store.name(), op, %error, "cache store failed; serving without the cache until it recovers");
        }
    }
}
