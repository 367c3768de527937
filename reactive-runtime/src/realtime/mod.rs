//! Real time: events, the event log, the event bus, subscriptions and the hub that
//! delivers events to SSE connections. The HTTP side lives in [`mod@crate::router`]; the
//! wire protocol is `docs/protocol.md`.
//!
//! Flow: a write's [`InvalidationReport`](crate::types::InvalidationReport) reaches the
//! [`Realtime`] listener → one [`EventDraft`] per affected tenant, cut down to the key
//! columns queries filter on (`KeyColumns`), is appended to the
//! [`EventLog`] (which gives it a per-tenant id) → published on the [`EventBus`] → every
//! instance's hub hands it to the connections of that tenant whose subscription it
//! affects.

mod bus;
mod fanout;
mod hub;
mod keys;
mod log;
mod order;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod subscription;

pub use bus::MemoryBus;
pub use hub::HubConfig;
pub(crate) use hub::{
    CloseReason, ConnGuard, Outgoing, PushCompute, PushRequest, Pushed, Slot, with_results,
};
pub use log::MemoryLog;
#[cfg(feature = "redis")]
pub use redis::{RedisBus, RedisLog};
pub(crate) use service::UNKNOWN_EVENT_ID;
pub use service::{Realtime, RemoteApply, Timeouts};
pub(crate) use subscription::{ParsedEntry, SubscribeError, Subscription, parse_entry};

pub(crate) use service::panic_message;

// The seams and data of real time, at the paths applications have used.
pub use crate::seams::{
    AckMessage, BusMessage, EventBus, EventLog, RealtimeError, RemoteChanges, Replay,
};
pub use crate::types::{Event, EventDraft, EventId, EventRecord};
