//! The invalidation listener seam: the hook the real-time layer installs to publish
//! invalidations.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::CallOrigin;
use crate::types::InvalidationReport;

/// Receives every invalidation [`ReactiveDb`](crate::ReactiveDb) applies, after the engine has
/// removed the affected entries. The write that caused it waits for the returned
/// future, so that the event exists before the mutation's response is sent.
pub trait InvalidationListener: Send + Sync {
    /// Handles one invalidation.
    fn on_invalidation(&self, report: Arc<InvalidationReport>) -> BoxFuture<'static, ()>;

    /// A listener bound to what the writer's task knows now (the request's principal,
    /// say), for an invalidation that finishes in a task of its own: a write that may
    /// have committed is invalidated to the end even when its caller is dropped.
    /// Called in the writer's task; a listener that reads nothing from it returns
    /// itself.
    fn bind(self: Arc<Self>) -> Arc<dyn InvalidationListener>;

    /// A listener bound to the origin of the write (the call it was made in), for an
    /// invalidation that finishes in a task of its own. This is what the runtime
    /// calls, in the writer's task, with the origin the database handle carries (see
    /// [`ReactiveDb::origin`](crate::ReactiveDb::origin)). The default ignores the
    /// origin and calls [`bind`](Self::bind).
    fn bind_to(self: Arc<Self>, origin: Option<CallOrigin>) -> Arc<dyn InvalidationListener> {
        let _ = origin;
        self.bind()
    }
}
