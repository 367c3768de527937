//! Invalidation that runs to the end once a write may have committed.
//!
//! A handler's future is dropped when its client disconnects or a timeout fires. If
//! that happened after a write was sent and before its change set was applied, the
//! database could commit it (a statement already sent runs to its end on the server)
//! while the cache kept the old value and no event was sent. So everything from
//! sending a statement that may commit to the end of its invalidation runs in a task of
//! its own ([`detached`]): an autocommit write with its pre-read and invalidation, a
//! `COMMIT` with the transaction's invalidation, a mutation's declared invalidation.
//! The caller waits for that task; dropping the caller does not stop it. (A statement
//! inside a transaction does not commit by itself: its change set is held before it
//! is sent, see `ReactiveTx`.)

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;
use tracing::Instrument;

use super::{DbShared, InvalidationListener};
use crate::seams::CallOrigin;
use crate::types::{ChangeSet, InvalidationReport};

/// Runs `work` in a task of its own and waits for it (see the module docs). `work`
/// gets the listener bound, in the caller's task, to `origin` (who the write is made
/// for).
pub(crate) async fn detached<T, F>(
    inner: &Arc<DbShared>,
    origin: Option<CallOrigin>,
    work: impl FnOnce(Option<Arc<dyn InvalidationListener>>) -> F,
) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let listener = inner.listener().map(|l| l.bind_to(origin));
    let running = inner.detached.enter();
    // The caller's span goes along, so the invalidation and its events trace under the
    // call and the write that caused them.
    let task = work(listener).instrument(tracing::Span::current());
    match tokio::spawn(async move {
        let _running = running;
        task.await
    })
    .await
    {
        Ok(out) => out,
        // A panic in the task: resume it in the caller, as if it had run there.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl DbShared {
    /// Applies `changes`, made for `origin`, in a task of its own and waits for it:
    /// dropping the returned future does not stop the invalidation.
    pub(crate) async fn apply_detached(
        self: &Arc<Self>,
        changes: ChangeSet,
        origin: Option<CallOrigin>,
    ) -> Arc<InvalidationReport> {
        let inner = self.clone();
        detached(self, origin, move |listener| async move {
            inner.apply_with(changes, listener).await
        })
        .await
    }
}

/// How many detached tasks are running, and a wake-up when none is.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    running: Arc<(AtomicUsize, Notify)>,
}

/// One running detached task; dropping it (at the task's end, or if it panics) counts
/// it out.
pub(crate) struct Running(Arc<(AtomicUsize, Notify)>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.0.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.1.notify_waiters();
        }
    }
}

impl InFlight {
    pub(crate) fn enter(&self) -> Running {
        self.running.0.fetch_add(1, Ordering::SeqCst);
        Running(self.running.clone())
    }

    pub(crate) async fn settled(&self) {
        let (count, idle) = &*self.running;
        loop {
            let woken = idle.notified();
            tokio::pin!(woken);
            // Registered before the count is read, so a task ending in between wakes it.
            woken.as_mut().enable();
            if count.load(Ordering::SeqCst) == 0 {
                return;
            }
            woken.await;
        }
    }
}
