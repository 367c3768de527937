//! The hook the real-time layer installs to publish invalidations.

use std::sync::Arc;

use crate::engine::InvalidationReport;
use crate::registry::BoxFuture;

/// Receives every invalidation [`super::ReactiveDb`] applies, after the engine has
/// removed the affected entries. The write that caused it waits for the returned
/// future, so that the event exists before the mutation's response is sent.
pub trait InvalidationListener: Send + Sync {
    /// Handles one invalidation.
    fn on_invalidation(&self, report: Arc<InvalidationReport>) -> BoxFuture<()>;
}
