//! The seams of the runtime: the traits where an implementation can be swapped (a
//! shared cache, a shared event log and bus, a change feed, the application's
//! authorization), with the values that cross them. Each depends only on
//! [`crate::types`]; the implementations live with the code that uses them.
//!
//! | Seam | What it is for | Implementations |
//! |---|---|---|
//! | [`CacheStore`] | where serialized query results live between calls, with their read sets | [`MemoryStore`](crate::cache::memory::MemoryStore) (in process); `RedisStore` (`redis` feature, shared between instances) |
//! | [`EventLog`] | per tenant, the recent events, replayed to a client that reconnects | [`MemoryLog`](crate::realtime::MemoryLog); `RedisLog` (`redis` feature) |
//! | [`EventBus`] | carries events, acks and change sets to every instance | [`MemoryBus`](crate::realtime::MemoryBus); `RedisBus` (`redis` feature) |
//! | [`ChangeSource`] | committed changes the interceptor did not see (writes that bypass the app) | `PgChangeFeed` (`postgres` feature); tests drive their own |
//! | [`InvalidationListener`] | hears every invalidation a `ReactiveDb` applies, before the write returns, with the write's [`CallOrigin`] | the router's `RealtimeListener` (publishes events); tests install their own |
//! | [`Authorizer`] | turns a request head into a [`Principal`] and checks inputs and subscriptions | [`SingleTenant`](crate::router::SingleTenant) (development only); the application's own |

mod authorizer;
mod cache_store;
mod call_origin;
mod change_source;
mod event_bus;
mod event_log;
mod invalidation_listener;

pub use authorizer::{AuthError, Authorizer, Principal};
pub use cache_store::{
    CacheError, CacheStore, EntryPage, ListQuery, ListedEntry, PutOutcome, StoreTicket,
};
pub use call_origin::CallOrigin;
pub use change_source::{ChangeSource, FeedStats, StatsSink};
pub use event_bus::{AckMessage, BusMessage, EventBus, RemoteChanges};
pub use event_log::{EventLog, RealtimeError, Replay};
pub use invalidation_listener::InvalidationListener;
