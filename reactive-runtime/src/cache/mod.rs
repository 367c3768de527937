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

pub use crate::seams::{CacheError, CacheStore, PutOutcome, StoreTicket};
pub use crate::types::{CacheKey, canonical_json};
