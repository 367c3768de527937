//! [`Realtime`]: the event log, the bus and the hub together; turns invalidation
//! reports into events and dispatches what arrives on the bus.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use futures::future::BoxFuture;
use tokio::sync::broadcast::error::RecvError;

use super::RealtimeError;
use super::bus::{AckMessage, BusMessage, EventBus, MemoryBus, RemoteChanges};
use super::event::{Event, EventDraft, EventId};
use super::hub::{CloseReason, Hub, HubConfig};
use super::keys::{KeyColumns, TrimLimits};
use super::log::{EventLog, MemoryLog, Replay};
use crate::engine::{ChangeSet, InvalidationReport};

/// Applies change sets that other instances published to this instance's cache.
pub type RemoteApply = Arc<dyn Fn(ChangeSet) -> BoxFuture<'static, ()> + Send + Sync>;

/// How many locks order the publishing of events (tenants share them by hash): a
/// fixed number, so that no tenant name an attacker makes up grows a map.
const PUBLISH_STRIPES: usize = 64;

struct Inner {
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
}

/// The real-time side of one instance. Cheap to clone.
#[derive(Clone)]
pub struct Realtime {
    inner: Arc<Inner>,
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
    /// Combines a log and a bus.
    /// Events keep the key columns of every registered function's queries
    /// (`registry::functions()`); the router adds the functions it serves.
    pub fn new(log: Arc<dyn EventLog>, bus: Arc<dyn EventBus>, hub: HubConfig) -> Realtime {
        let keys = KeyColumns::default();
        for def in crate::registry::functions() {
            keys.watch_model(def.model());
        }
        Realtime {
            inner: Arc::new(Inner {
                log,
                bus,
                hub: Hub::new(hub),
                keys,
                instance: super::log::now_micros() ^ (u64::from(std::process::id()) << 32),
                remote_apply: Mutex::new(None),
                started: std::sync::Once::new(),
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
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The columns events keep: add to them the key columns of functions served that
    /// are not registered (the router does, for the functions it serves).
    pub fn key_columns(&self) -> &KeyColumns {
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

    /// Starts the task that dispatches bus messages to the hub (once; needs a Tokio
    /// runtime; called by the router and by [`Realtime::publish`]).
    pub fn start(&self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        self.inner.started.call_once(|| {
            let rx = self.inner.bus.subscribe();
            tokio::spawn(dispatch(Arc::downgrade(&self.inner), rx));
        });
    }

    /// The newest event id of a tenant (the watermark of data read now).
    pub async fn head(&self, tenant: &str) -> Result<EventId, RealtimeError> {
        self.inner.log.head(tenant).await
    }

    /// Events of a tenant after an id.
    pub async fn since(&self, tenant: &str, after: EventId) -> Result<Replay, RealtimeError> {
        self.inner.log.since(tenant, after).await
    }

    /// Appends an event to the log and publishes it. The draft's change set is first
    /// cut down to what matching needs (see [`KeyColumns`]): key columns some query
    /// filters on, values of bounded length, a bounded total; whether clients see the
    /// keys is [`HubConfig::event_keys`].
    pub async fn publish(&self, mut draft: EventDraft) -> Result<Arc<Event>, RealtimeError> {
        let cfg = self.inner.hub.config();
        let (changes, invalidated) = self.inner.keys.trim(
            &draft.changes,
            std::mem::take(&mut draft.invalidated),
            TrimLimits {
                max_key_len: cfg.max_key_len,
                max_event_bytes: cfg.max_event_bytes,
            },
        );
        draft.changes = changes;
        draft.invalidated = invalidated;
        draft.show_keys = cfg.event_keys;
        self.start();
        let _order = self.inner.publishing[stripe(&draft.tenant)].lock().await;
        let event = self.inner.log.append(draft).await?;
        self.inner
            .bus
            .publish(BusMessage::Event(event.clone()))
            .await?;
        Ok(event)
    }

    /// Forwards an ack to every instance (this one included, immediately).
    pub async fn ack(&self, ack: AckMessage) -> Result<(), RealtimeError> {
        self.inner.hub.ack(&ack);
        self.inner.bus.publish(BusMessage::Ack(ack)).await
    }

    /// Turns an invalidation into events: one per tenant concerned — `tenant` (the
    /// tenant of the write's caller, if any) and every tenant whose cache entries or
    /// routing records (ghosts of expired, evicted or unstored values: see
    /// [`CacheStore`](crate::cache::CacheStore)) it matched — appended to the log and
    /// published; and publishes the change set for other instances' caches. Remote or empty reports produce nothing (the instance
    /// that wrote already did it).
    pub async fn on_report(
        &self,
        report: &InvalidationReport,
        tenant: Option<&str>,
        requires_ack: bool,
    ) -> Result<(), RealtimeError> {
        if report.remote || report.is_empty() {
            return Ok(());
        }
        self.start();
        self.inner
            .bus
            .publish(BusMessage::Changes(RemoteChanges {
                origin: self.inner.instance,
                changes: report.changes.clone(),
            }))
            .await?;
        let mut per_tenant: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        if let Some(t) = tenant {
            per_tenant.entry(t).or_default();
        }
        for entry in &report.entries {
            if let Some(t) = entry.key.tenant.as_deref() {
                per_tenant
                    .entry(t)
                    .or_default()
                    .push(format!("{}:{}", entry.key.procedure, entry.key.input));
            }
        }
        if per_tenant.is_empty() {
            tracing::debug!(
                "a write outside any tenant invalidated no tenant's cache entry: no event"
            );
        }
        // Another tenant hears which tables changed, never the writer's key values
        // (they are the writer's data); its subscriptions on those tables match.
        let foreign_changes = if report.changes.is_everything() {
            report.changes.clone()
        } else {
            ChangeSet::tables(report.changes.table_names())
        };
        for (name, invalidated) in per_tenant {
            let changes = if Some(name) == tenant {
                report.changes.clone()
            } else {
                foreign_changes.clone()
            };
            self.publish(EventDraft {
                tenant: name.to_owned(),
                changes,
                requires_ack,
                invalidated,
                show_keys: false,
            })
            .await?;
        }
        Ok(())
    }
}

/// The publishing lock of a tenant.
fn stripe(tenant: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tenant.hash(&mut h);
    (h.finish() % PUBLISH_STRIPES as u64) as usize
}

async fn dispatch(inner: Weak<Inner>, mut rx: tokio::sync::broadcast::Receiver<BusMessage>) {
    loop {
        let msg = rx.recv().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match msg {
            Ok(BusMessage::Event(event)) => inner.hub.deliver(&event),
            Ok(BusMessage::Ack(ack)) => inner.hub.ack(&ack),
            Ok(BusMessage::Changes(remote)) => {
                if remote.origin != inner.instance {
                    let apply = inner
                        .remote_apply
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    if let Some(apply) = apply {
                        apply(remote.changes).await;
                    }
                }
            }
            Ok(BusMessage::Resync) => {
                tracing::warn!("event bus resynchronised; closing SSE streams so clients replay");
                inner.hub.close_all(CloseReason::Lagged);
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "event bus lagged; closing SSE streams so clients replay"
                );
                inner.hub.close_all(CloseReason::Lagged);
            }
            Err(RecvError::Closed) => return,
        }
    }
}
