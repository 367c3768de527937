//! [`Realtime`]: the event log, the bus and the hub together; turns invalidation
//! reports into events and dispatches what arrives on the bus.
//!
//! # Failures
//!
//! The log and the bus may live in Redis, which can be down or paused. Every call to
//! them is bounded by [`Timeouts::operation`]; after a failure they are not tried again
//! for [`Timeouts::retry_after`] (calls fail at once meanwhile), so an outage costs a
//! request one timeout at most, not one per call. Callers degrade instead of failing:
//! reads answer with [`UNKNOWN_EVENT_ID`] as their watermark, and a write whose event
//! could not be recorded or published is *repaired*: this instance's streams of the
//! tenant get `reset` at once, and once the log answers again an event that changed
//! everything (`tables: ["*"]`) is recorded for the tenant, so every client of every
//! instance (and every client that replays later) revalidates what it holds. Change
//! sets other instances did not hear about are repaired the same way (one change of
//! everything for their caches).
//!
//! The dispatcher task (bus → hub) is supervised: if it panics it is restarted, and
//! every stream of this instance is closed with `reset`, since events may have been
//! dropped while it was down.

mod dispatch;
mod health;
mod publish;
mod repair;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::BoxFuture;

use super::bus::MemoryBus;
use super::hub::{Hub, HubConfig};
use super::keys::KeyColumns;
use super::log::MemoryLog;
#[cfg(feature = "redis")]
use crate::seams::RealtimeError;
use crate::seams::{EventBus, EventLog};
use crate::types::{ChangeSet, EventId, InvalidationReport};
use dispatch::supervise;
use health::Health;
use publish::PUBLISH_STRIPES;
use repair::Lost;

pub(crate) use dispatch::panic_message;
pub use health::Timeouts;

/// Applies change sets that other instances published to this instance's cache, and
/// reports what it invalidated there (the tenants of the entries and routing records it
/// found hear of the change from this instance: see `Realtime::on_remote_report`).
pub type RemoteApply =
    Arc<dyn Fn(ChangeSet) -> BoxFuture<'static, InvalidationReport> + Send + Sync>;

/// The watermark of data read while the event log could not be read, and what an
/// unreadable `lastEventId`/`since` stands for. No log gives this id to an event (ids
/// start at a time in µs), so a client that replays from it always gets `reset`, and
/// every event is newer than it: data carrying it is revalidated once the log answers.
pub(crate) const UNKNOWN_EVENT_ID: EventId = EventId(0);

struct RealtimeShared {
    log: Arc<dyn EventLog>,
    bus: Arc<dyn EventBus>,
    hub: Hub,
    /// The columns events keep (see [`KeyColumns`]).
    keys: KeyColumns,
    /// Held from taking an event's id to publishing it, per tenant stripe: a tenant's
    /// events reach the bus (and so its clients) in id order. Otherwise a client could
    /// receive 11 before 10, be cut off between them, resume from 11 and never see 10.
    publishing: Box<[tokio::sync::Mutex<()>]>,
    instance: u64,
    remote_apply: Mutex<Option<RemoteApply>>,
    started: std::sync::Once,
    health: Health,
    /// Times the dispatcher was restarted after a panic.
    restarts: AtomicU64,
}

/// The real-time side of one instance. Cheap to clone.
#[derive(Clone)]
pub struct Realtime {
    inner: Arc<RealtimeShared>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime")
            .field("instance", &self.inner.instance)
            .field("connections", &self.inner.hub.connections())
            .finish()
    }
}

impl Realtime {
    /// Combines a log and a bus, with the default [`Timeouts`].
    /// Events keep the key columns of every registered function's queries
    /// (`registry::functions()`); the router adds the functions it serves.
    pub fn new(log: Arc<dyn EventLog>, bus: Arc<dyn EventBus>, hub: HubConfig) -> Realtime {
        Realtime::with_timeouts(log, bus, hub, Timeouts::default())
    }

    /// Combines a log and a bus, with these time limits for calls to them.
    pub fn with_timeouts(
        log: Arc<dyn EventLog>,
        bus: Arc<dyn EventBus>,
        hub: HubConfig,
        timeouts: Timeouts,
    ) -> Realtime {
        let keys = KeyColumns::default();
        for def in crate::registry::functions() {
            keys.watch_model(def.model());
        }
        Realtime {
            inner: Arc::new(RealtimeShared {
                log,
                bus,
                hub: Hub::new(hub),
                keys,
                instance: super::log::now_micros() ^ (u64::from(std::process::id()) << 32),
                remote_apply: Mutex::new(None),
                started: std::sync::Once::new(),
                health: Health {
                    timeouts,
                    epoch: Instant::now(),
                    down_until_ms: AtomicU64::new(0),
                    warned: AtomicBool::new(false),
                    lost: Mutex::new(Lost::default()),
                    repairing: AtomicBool::new(false),
                },
                restarts: AtomicU64::new(0),
                publishing: (0..PUBLISH_STRIPES)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
            }),
        }
    }

    /// One process: in-memory log (1024 events per tenant) and broadcast bus.
    pub fn memory() -> Realtime {
        Realtime::new(
            Arc::new(MemoryLog::new(1024)),
            Arc::new(MemoryBus::default()),
            HubConfig::default(),
        )
    }

    /// Several instances: a [`RedisLog`](super::RedisLog) (1024 events per tenant) and a
    /// [`RedisBus`](super::RedisBus) under keys starting with `prefix`.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str, prefix: &str) -> Result<Realtime, RealtimeError> {
        Ok(Realtime::new(
            Arc::new(super::RedisLog::connect(url, prefix, 1024).await?),
            Arc::new(super::RedisBus::connect(url, prefix).await?),
            HubConfig::default(),
        ))
    }

    /// The event log.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.inner.log
    }

    /// The bus.
    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.inner.bus
    }

    /// The hub of live connections.
    pub(crate) fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Event streams open on this instance now.
    pub fn connections(&self) -> usize {
        self.inner.hub.connections()
    }

    /// The columns events keep: add to them the key columns of functions served that
    /// are not registered (the router does, for the functions it serves).
    pub(crate) fn key_columns(&self) -> &KeyColumns {
        &self.inner.keys
    }

    /// Sets what to do with change sets other instances publish (invalidate the local cache).
    pub fn set_remote_apply(&self, apply: RemoteApply) {
        *self
            .inner
            .remote_apply
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(apply);
    }

    /// Records in `devtools` which of this instance's streams each event is queued to
    /// (set once, by the router that serves the dev tools page).
    pub(crate) fn set_devtools(&self, devtools: crate::observe::devtools::DevTools) {
        self.inner.hub.set_devtools(devtools);
    }

    /// Pushes the new results of subscribed `push` queries, computed by `compute`,
    /// to the connections of this instance (set once, by the router that serves them).
    pub(crate) fn set_push(&self, compute: super::PushCompute) {
        self.inner.hub.set_push(compute);
    }

    /// Starts the task that dispatches bus messages to the hub (once; needs a Tokio
    /// runtime; called by the router and by [`Realtime::publish`]). The task is
    /// supervised: restarted if it panics (see the module docs).
    pub fn start(&self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        self.inner.started.call_once(|| {
            // Subscribed here, not in the task: nothing published after `start` returns
            // is missed.
            let rx = self.inner.bus.subscribe();
            tokio::spawn(supervise(Arc::downgrade(&self.inner), rx));
        });
    }

    /// How many times the dispatcher was restarted after a panic.
    pub fn dispatcher_restarts(&self) -> u64 {
        self.inner.restarts.load(Ordering::Relaxed)
    }
}
