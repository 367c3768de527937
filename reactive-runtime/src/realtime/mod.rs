//! Real time: events, the event log, the event bus, subscriptions and the hub that
//! delivers events to SSE connections. The HTTP side lives in [`crate::router`]; the
//! wire protocol is `docs/protocol.md`.
//!
//! Flow: a write's [`InvalidationReport`](crate::engine) reaches the
//! [`Realtime`] listener → one [`EventDraft`] per affected tenant, cut down to the key
//! columns queries filter on ([`KeyColumns`]), is appended to the
//! [`EventLog`] (which gives it a per-tenant id) → published on the [`EventBus`] → every
//! instance's hub hands it to the connections of that tenant whose subscription it
//! affects.

mod bus;
mod event;
mod fanout;
mod hub;
mod keys;
mod log;
mod order;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod subscription;

pub use bus::{AckMessage, BusMessage, EventBus, MemoryBus, RemoteChanges};
pub use event::{Event, EventDraft, EventId, EventRecord};
pub use hub::{CloseReason, Conn, ConnGuard, FrameMemo, Hub, HubConfig, Outgoing, StreamInfo};
pub use keys::KeyColumns;
pub use log::{EventLog, MemoryLog, Replay};
#[cfg(feature = "redis")]
pub use redis::{RedisBus, RedisLog};
pub use service::{Published, Realtime, RemoteApply, Timeouts, UNKNOWN_EVENT_ID};
pub use subscription::{
    Entry, ParsedEntry, SubscribeError, Subscription, SubscriptionCache, parse_entry, query_key,
};

pub(crate) use event::reset_frame;
pub(crate) use service::panic_message;

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
    /// A call to the log or bus did not answer in time (see [`Timeouts`]).
    #[error("{0}: the event log or bus did not answer in time")]
    Timeout(&'static str),
    /// The log or bus failed moments ago and is not tried again yet (see [`Timeouts`]).
    #[error("the event log or bus is unavailable (it failed moments ago)")]
    Unavailable,
}
