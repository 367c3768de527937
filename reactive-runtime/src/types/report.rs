//! [`InvalidationReport`]: what one invalidation did, and why.

use serde::{Deserialize, Serialize};

use super::cache_key::CacheKey;
use super::change::ChangeSet;
use super::key::KeyValue;
use super::relations::RelationEdge;

/// Why a change affects a read set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reason {
    /// The table both touch (`*` when one side is "everything").
    pub table: String,
    /// A key column whose values intersect, when one does (`None`: matched because the
    /// change's value for every read column is unknown, or the read is whole-table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// A value both share in `column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<KeyValue>,
    /// The relation edge that produced the changed rows, when relation expansion did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<RelationEdge>,
}

impl Reason {
    /// A match because the read or the change is "everything".
    pub fn everything(table: Option<&str>) -> Self {
        Self {
            table: table.unwrap_or("*").to_owned(),
            column: None,
            value: None,
            relation: None,
        }
    }
}

/// One cache entry removed by an invalidation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidatedEntry {
    /// The entry's key: tenant, procedure, canonical input.
    pub key: CacheKey,
    /// Why it was affected (at least one).
    pub reasons: Vec<Reason>,
}

/// What one [`Engine::apply`](crate::engine::Engine::apply) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidationReport {
    /// The engine's invalidation sequence number assigned to this change (0 when empty).
    pub sequence: u64,
    /// The change set after relation expansion; the realtime layer matches subscribed
    /// queries against it (selective delivery must not depend on cache contents).
    pub changes: ChangeSet,
    /// Tables changed (after expansion), sorted; empty with `changes.everything`.
    pub tables: Vec<String>,
    /// Cache entries removed, with reasons, sorted by key.
    pub entries: Vec<InvalidatedEntry>,
    /// `true` when the change set came from another instance (via the bus).
    pub remote: bool,
    /// `true` when the cache store failed while invalidating; the engine then bypasses the
    /// cache until it has cleared it.
    pub store_failed: bool,
}

impl InvalidationReport {
    /// `true` when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Where a value the engine handed out came from ([`Fetched`](crate::engine::Fetched)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The cache.
    Hit,
    /// This call ran the computation.
    Computed,
    /// An identical concurrent call ran it; this one waited.
    Coalesced,
}
