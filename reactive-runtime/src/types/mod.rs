//! The data the runtime passes around: what a read read, what a write changed, the
//! keys of cached results, what an invalidation did, and the events clients receive.
//!
//! A leaf: nothing here imports another module of this crate, so the cache stores, the
//! engine, the database layer and the real-time layer all build on it without
//! importing each other.
//!
//! - [`KeyValue`]: canonical key values (`1`, `"1"`, `true` meet; MySQL folds case).
//! - [`ReadSet`] / [`ChangeSet`]: what a query read, what a write changed; built from
//!   a function model and binding values, or from a statement analysis and parameter
//!   values. [`ReadSet::is_affected_by`] is the matcher.
//! - [`Relations`]: edges from `#[derive(Relations)]` expanding change sets
//!   (transitively); [`ReferencingValues`]: the new values `SET NULL`/`SET DEFAULT`
//!   foreign keys give.
//! - [`Index`]: finds the read sets a change set affects without visiting unrelated ones.
//! - [`CacheKey`]: tenant, procedure and canonical input of one cached result.
//! - [`InvalidationReport`]: what one invalidation removed, and why ([`Reason`]).
//! - [`Event`] / [`EventDraft`] / [`EventId`]: what the real-time layer delivers.

mod cache_key;
mod change;
mod event;
mod index;
mod key;
mod postings;
mod read;
mod relations;
mod report;

pub use cache_key::{CacheKey, canonical_json};
pub use change::{ChangeOrigin, ChangeSet, RowChange, RowOp};
pub use event::{Event, EventDraft, EventId, EventRecord};
pub use index::{Index, MAX_REASONS};
pub use key::KeyValue;
pub use read::{Conjunction, ReadSet};
pub use relations::{ReferencingValues, RelationEdge, Relations, RelationsDef};
pub use report::{InvalidatedEntry, InvalidationReport, Reason, Source};

pub(crate) use event::{frame_tail, reset_frame};
pub(crate) use postings::Postings;
