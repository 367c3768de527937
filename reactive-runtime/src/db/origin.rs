//! The origin of writes made outside a handle that carries one: a task-local set by
//! [`with_principal`](crate::router::with_principal) (background jobs) and around a
//! reactive function's handler (so that
//! [`current_principal`](crate::router::current_principal) answers inside it).
//!
//! Precedence: the origin a handle carries (the handle handed to a handler, its clones
//! and its transactions) comes first; this task-local is the fallback for a handle
//! that carries none.

use std::future::Future;

use crate::seams::CallOrigin;

tokio::task_local! {
    static ORIGIN: CallOrigin;
}

/// The origin set for this task, if any.
pub(crate) fn current() -> Option<CallOrigin> {
    ORIGIN.try_with(Clone::clone).ok()
}

/// Runs `fut` with `origin` as this task's origin.
pub(crate) async fn scope<F: Future>(origin: CallOrigin, fut: F) -> F::Output {
    ORIGIN.scope(origin, fut).await
}

/// Runs `fut` with `origin` as this task's origin, if there is one.
pub(crate) async fn within<F: Future>(origin: Option<CallOrigin>, fut: F) -> F::Output {
    match origin {
        Some(origin) => scope(origin, fut).await,
        None => fut.await,
    }
}
