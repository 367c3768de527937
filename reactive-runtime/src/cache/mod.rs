//! Cache stores: where serialized query results live between calls.
//!
//! [`CacheStore`] is the one trait; [`memory::MemoryStore`] (moka, in process) and
//! `redis::RedisStore` (shared between instances, `redis` feature) implement it and
//! pass the same test suite. A store keeps, next to each value, the entry's
//! [`ReadSet`] and an index over it, so that [`CacheStore::invalidate`] finds the
//! affected entries itself (see each store's docs for where its index lives).
//!
//! Stores report failures as [`CacheError`]; the [`Engine`](crate::engine::Engine)
//! never passes them to users: a failed read is a miss, a failed write is skipped,
//! and the failure is logged once and counted.

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

use std::fmt;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::engine::{ChangeSet, InvalidatedEntry, ReadSet};

/// The key of one cached result: who asked (tenant), which procedure, which input.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CacheKey {
    /// The tenant (organization) the result belongs to; `None` for untenanted apps.
    pub tenant: Option<String>,
    /// The procedure's public name (`agents.findMany`).
    pub procedure: String,
    /// The input as canonical JSON (object keys sorted, no whitespace).
    pub input: String,
}

impl CacheKey {
    /// A key from its parts; `input` must already be canonical JSON.
    pub fn new(tenant: Option<&str>, procedure: &str, input: impl Into<String>) -> Self {
        Self {
            tenant: tenant.map(str::to_owned),
            procedure: procedure.to_owned(),
            input: input.into(),
        }
    }

    /// A key whose input is canonicalized from a JSON value (object keys sorted).
    pub fn from_json(tenant: Option<&str>, procedure: &str, input: &serde_json::Value) -> Self {
        Self::new(tenant, procedure, canonical_json(input))
    }

    /// An unambiguous single-string encoding (a JSON array), e.g. for a Redis key.
    pub fn encode(&self) -> String {
        serde_json::to_string(&(&self.tenant, &self.procedure, &self.input)).unwrap_or_default()
    }

    /// The inverse of [`CacheKey::encode`].
    pub fn decode(s: &str) -> Option<Self> {
        let (tenant, procedure, input): (Option<String>, String, String) =
            serde_json::from_str(s).ok()?;
        Some(Self {
            tenant,
            procedure,
            input,
        })
    }

    /// Approximate heap size in bytes.
    pub fn approx_size(&self) -> usize {
        self.tenant.as_ref().map_or(0, String::len) + self.procedure.len() + self.input.len() + 72
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}({})",
            self.tenant.as_deref().unwrap_or("-"),
            self.procedure,
            self.input
        )
    }
}

/// JSON text with object keys sorted recursively and no whitespace.
pub fn canonical_json(value: &serde_json::Value) -> String {
    // Written straight into one buffer (no sorted copy of the value): object entries are
    // visited in key order, which is the map's own order unless serde_json's
    // `preserve_order` feature is on somewhere in the build.
    fn write(v: &serde_json::Value, out: &mut Vec<u8>) {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                }
                out.push(b'{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    // Writing a string or a scalar into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut *out, k);
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            scalar => {
                let _ = serde_json::to_writer(&mut *out, scalar);
            }
        }
    }
    let mut out = Vec::with_capacity(64);
    write(value, &mut out);
    // serde_json writes valid UTF-8 only.
    String::from_utf8(out).unwrap_or_default()
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

/// Where a change set was applied first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// By this instance.
    Local,
    /// By another instance; received from the event bus.
    Remote,
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
    /// For [`Origin::Remote`] a shared store may return nothing: the instance that
    /// applied the change first has already invalidated the shared entries.
    fn invalidate<'a>(
        &'a self,
        changes: &'a ChangeSet,
        origin: Origin,
    ) -> BoxFuture<'a, Result<Vec<InvalidatedEntry>, CacheError>>;

    /// Removes these keys.
    fn remove<'a>(&'a self, keys: &'a [CacheKey]) -> BoxFuture<'a, Result<(), CacheError>>;

    /// Removes every entry.
    fn clear(&self) -> BoxFuture<'_, Result<(), CacheError>>;
}

#[cfg(test)]
mod tests {
    use super::canonical_json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_drops_whitespace() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": [ {"z": 1, "a": "x\"y"} ], "a": null, "c": 1.5 }"#)
                .unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":null,"b":[{"a":"x\"y","z":1}],"c":1.5}"#
        );
        assert_eq!(canonical_json(&serde_json::json!("s")), r#""s""#);
    }
}
