//! The event log seam: per tenant, the recent events, so that a client that reconnects
//! (to any instance, with a shared log) replays what it missed.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::types::{Event, EventDraft, EventId};

/// The answer to "what happened after id X".
#[derive(Debug, Clone)]
pub enum Replay {
    /// Every event after X, in id order; `head` is the newest id of the tenant.
    Events {
        /// The events.
        events: Vec<Arc<Event>>,
        /// The tenant's newest id (X when nothing happened since).
        head: EventId,
    },
    /// The log no longer holds everything after X (or X is unknown to it): the client
    /// must revalidate everything; `head` is the id to continue from.
    Reset {
        /// The tenant's newest id.
        head: EventId,
    },
}

/// Stores events per tenant and gives them ids that increase per tenant.
pub trait EventLog: Send + Sync + 'static {
    /// Appends an event, giving it the next id of its tenant.
    fn append(&self, draft: EventDraft) -> BoxFuture<'_, Result<Arc<Event>, RealtimeError>>;
    /// The newest id of a tenant (a tenant without events has an id too).
    fn head<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<EventId, RealtimeError>>;
    /// The events of `tenant` after `after`, or a reset.
    fn since<'a>(
        &'a self,
        tenant: &'a str,
        after: EventId,
    ) -> BoxFuture<'a, Result<Replay, RealtimeError>>;
}

/// A failure of the event log or bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RealtimeError {
    /// Redis failed.
    #[cfg(feature = "redis")]
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// A stored or transported event could not be decoded.
    #[error("corrupt event: {0}")]
    Corrupt(String),
    /// A call to the log or bus did not answer in time (see [`Timeouts`](crate::realtime::Timeouts)).
    #[error("{0}: the event log or bus did not answer in time")]
    Timeout(&'static str),
    /// The log or bus failed moments ago and is not tried again yet (see [`Timeouts`](crate::realtime::Timeouts)).
    #[error("the event log or bus is unavailable (it failed moments ago)")]
    Unavailable,
}
