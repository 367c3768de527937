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

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::broadcast::error::RecvError;

use super::bus::MemoryBus;
use super::hub::{CloseReason, Hub, HubConfig};
use super::keys::{KeyColumns, TrimLimits};
use super::log::MemoryLog;
use super::order::Place;
use crate::seams::RealtimeError;
use crate::seams::{AckMessage, BusMessage, EventBus, RemoteChanges};
use crate::seams::{EventLog, Replay};
use crate::types::{ChangeSet, InvalidationReport};
use crate::types::{Event, EventDraft, EventId};

/// Applies change sets that other instances published to this instance's cache, and
/// reports what it invalidated there (the tenants of the entries and routing records it
/// found hear of the change from this instance: see `Realtime::on_remote_report`).
pub type RemoteApply =
    Arc<dyn Fn(ChangeSet) -> BoxFuture<'static, InvalidationReport> + Send + Sync>;

/// How many locks order the publishing of events (tenants share them by hash): a
/// fixed number, so that no tenant name an attacker makes up grows a map.
const PUBLISH_STRIPES: usize = 64;

/// The watermark of data read while the event log could not be read, and what an
/// unreadable `lastEventId`/`since` stands for. No log gives this id to an event (ids
/// start at a time in µs), so a client that replays from it always gets `reset`, and
/// every event is newer than it: data carrying it is revalidated once the log answers.
pub(crate) const UNKNOWN_EVENT_ID: EventId = EventId(0);

/// Most tenants whose events wait for repair (see the module docs); beyond it a lost
/// event is only logged: the memory of an outage stays bounded.
const MAX_LOST_TENANTS: usize = 100_000;

/// Time limits of the calls to the event log and bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest wait for one call to the log or the bus (default 1 s): a paused Redis
    /// costs a request this much at most.
    pub operation: Duration,
    /// After a failed call, how long calls fail at once without trying (default 1 s);
    /// also the interval of repair attempts.
    pub retry_after: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            operation: Duration::from_secs(1),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// Whether the log and bus answer, and what waits for them to answer again.
struct Health {
    timeouts: Timeouts,
    epoch: Instant,
    /// Milliseconds since `epoch` until which calls are not tried (0: try).
    down_until_ms: AtomicU64,
    /// An outage was logged and its end was not yet.
    warned: AtomicBool,
    lost: Mutex<Lost>,
    repairing: AtomicBool,
}

/// What a failed publication left to repair.
#[derive(Default)]
struct Lost {
    /// Tenants whose event was not recorded or not published.
    tenants: BTreeSet<String>,
    /// A change set did not reach the other instances' caches.
    changes: bool,
}

/// What [`Realtime::on_report`] published for the tenant of the write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Published {
    /// The id of that tenant's event, if one was recorded.
    pub event: Option<EventId>,
    /// Some event or change set could not be recorded or published (it will be
    /// repaired, see the module docs).
    pub failed: bool,
}

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

    /// The newest event id of a tenant (the watermark of data read now). Fails when the
    /// log does not answer within [`Timeouts::operation`], or failed less than
    /// [`Timeouts::retry_after`] ago.
    pub async fn head(&self, tenant: &str) -> Result<EventId, RealtimeError> {
        self.inner
            .guarded("head", self.inner.log.head(tenant))
            .await
    }

    /// Events of a tenant after an id. the unknown id `0` always gives a reset.
    pub async fn since(&self, tenant: &str, after: EventId) -> Result<Replay, RealtimeError> {
        if after == UNKNOWN_EVENT_ID {
            return Ok(Replay::Reset {
                head: self.head(tenant).await?,
            });
        }
        self.inner
            .guarded("since", self.inner.log.since(tenant, after))
            .await
    }

    /// Appends an event to the log and publishes it. The draft's change set is first
    /// cut down to what matching needs (see `KeyColumns`): key columns some query
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
        let inner = &*self.inner;
        let _order = inner.publishing[stripe(&draft.tenant)].lock().await;
        let event = inner.guarded("append", inner.log.append(draft)).await?;
        if let Err(e) = inner
            .guarded(
                "publish",
                inner.bus.publish(BusMessage::Event(event.clone())),
            )
            .await
        {
            // Recorded but not delivered: this instance's clients get it now; other
            // instances' clients get the repair event (or replay it on reconnect).
            inner.hub.deliver(&event);
            return Err(e);
        }
        Ok(event)
    }

    /// Forwards an ack to every instance (this one included, immediately).
    pub async fn ack(&self, ack: AckMessage) -> Result<(), RealtimeError> {
        self.inner.hub.ack(&ack);
        self.inner
            .guarded("publish ack", self.inner.bus.publish(BusMessage::Ack(ack)))
            .await
    }

    /// Turns an invalidation into events: one per tenant concerned — `tenant` (the
    /// tenant of the write's caller, if any) and every tenant whose cache entries or
    /// routing records (ghosts of expired, evicted or unstored values: see
    /// [`CacheStore`](crate::seams::CacheStore)) it matched — appended to the log and
    /// published; and publishes the change set for other instances' caches, with the
    /// tenants published here. Empty and remote reports produce nothing here (for a
    /// remote one, see [`Realtime::on_remote_report`]).
    ///
    /// Never fails: the write has committed, so what could not be recorded or
    /// published is logged, this instance's streams of the tenant get `reset`, and it
    /// is repaired once the log and bus answer again (see the module docs).
    pub(crate) async fn on_report(
        &self,
        report: &InvalidationReport,
        tenant: Option<&str>,
        requires_ack: bool,
    ) -> Published {
        if report.remote || report.is_empty() {
            return Published::default();
        }
        self.start();
        let inner = &*self.inner;
        let per_tenant = tenants_of(report, tenant, &[]);
        let changes = BusMessage::Changes(RemoteChanges {
            origin: inner.instance,
            changes: report.changes.clone(),
            tenants: per_tenant.keys().map(|t| (*t).to_owned()).collect(),
            requires_ack,
        });
        let mut failed = false;
        if let Err(e) = inner
            .guarded("publish changes", inner.bus.publish(changes))
            .await
        {
            tracing::error!(error = %e, "could not publish a change set to the other instances; their caches are cleared once the bus answers");
            failed = true;
            self.lost(None, true);
        }
        if per_tenant.is_empty() {
            tracing::debug!(
                "a write outside any tenant invalidated no tenant's cache entry: no event"
            );
        }
        let mut published = self
            .publish_tenants(report, tenant, per_tenant, requires_ack)
            .await;
        published.failed |= failed;
        published
    }

    /// Publishes, for a change set another instance made, the events of the tenants
    /// whose entries or routing records *this* instance's cache held (`report`, from
    /// applying it here) and the writer's instance did not publish (`covered`: the
    /// writer's tenant and those of its own cache). With a shared store (Redis) the
    /// writer's instance found them all and this publishes nothing; with a cache per
    /// instance (memory stores) this instance may be the only one that routes a tenant.
    /// Never fails, like [`Realtime::on_report`].
    pub(crate) async fn on_remote_report(
        &self,
        report: &InvalidationReport,
        covered: &[String],
        requires_ack: bool,
    ) -> Published {
        let per_tenant = tenants_of(report, None, covered);
        if per_tenant.is_empty() {
            return Published::default();
        }
        tracing::debug!(
            tenants = per_tenant.len(),
            "publishing the events of tenants only this instance routes"
        );
        self.publish_tenants(report, None, per_tenant, requires_ack)
            .await
    }

    /// Appends and publishes one event per tenant of `per_tenant` (with the keys it
    /// invalidated): the writer's `tenant` gets the change set, another tenant the
    /// tables only.
    async fn publish_tenants(
        &self,
        report: &InvalidationReport,
        tenant: Option<&str>,
        per_tenant: BTreeMap<&str, Vec<String>>,
        requires_ack: bool,
    ) -> Published {
        let mut published = Published::default();
        // Another tenant hears which tables changed, never the writer's key values
        // (they are the writer's data); its subscriptions on those tables match.
        let foreign_changes = if report.changes.is_everything() {
            report.changes.clone()
        } else {
            ChangeSet::tables(report.changes.table_names())
        };
        for (name, invalidated) in per_tenant {
            let keys = invalidated.len();
            let changes = if Some(name) == tenant {
                report.changes.clone()
            } else {
                foreign_changes.clone()
            };
            let draft = EventDraft {
                tenant: name.to_owned(),
                changes,
                requires_ack,
                invalidated,
                show_keys: false,
            };
            match self.publish(draft).await {
                Ok(event) => {
                    tracing::debug!(tenant = name, event_id = %event.id(), keys, "event published");
                    if Some(name) == tenant {
                        published.event = Some(event.id());
                    }
                }
                Err(e) => {
                    tracing::error!(tenant = name, error = %e, "could not record or publish an invalidation event; the tenant's streams are reset");
                    published.failed = true;
                    // Clients of this instance revalidate everything rather than miss it.
                    self.inner.hub.reset_tenant(name);
                    self.lost(Some(name), false);
                }
            }
        }
        published
    }

    /// Remembers what to repair and makes sure a repair task runs.
    fn lost(&self, tenant: Option<&str>, changes: bool) {
        let health = &self.inner.health;
        {
            let mut lost = health.lost.lock().unwrap_or_else(|e| e.into_inner());
            lost.changes |= changes;
            if let Some(t) = tenant
                && !lost.tenants.contains(t)
            {
                if lost.tenants.len() < MAX_LOST_TENANTS {
                    lost.tenants.insert(t.to_owned());
                } else {
                    tracing::error!(
                        tenant = t,
                        "too many tenants wait for repair; this one's lost event is not repaired"
                    );
                }
            }
        }
        if tokio::runtime::Handle::try_current().is_ok()
            && !health.repairing.swap(true, Ordering::SeqCst)
        {
            tokio::spawn(repair(Arc::downgrade(&self.inner)));
        }
    }
}

impl RealtimeShared {
    /// `call`, bounded by the operation timeout, and not tried at all while the log and
    /// bus are considered down.
    async fn guarded<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<T, RealtimeError>>,
    ) -> Result<T, RealtimeError> {
        let health = &self.health;
        let now = health.epoch.elapsed().as_millis() as u64;
        if now < health.down_until_ms.load(Ordering::Relaxed) {
            return Err(RealtimeError::Unavailable);
        }
        let result = match tokio::time::timeout(health.timeouts.operation, call).await {
            Ok(r) => r,
            Err(_) => Err(RealtimeError::Timeout(what)),
        };
        match &result {
            Ok(_) => {
                if health.warned.swap(false, Ordering::Relaxed) {
                    tracing::info!("event log and bus answer again");
                }
            }
            // A corrupt entry is about one tenant's data, not about reaching the store.
            Err(RealtimeError::Corrupt(_)) => {}
            Err(e) => {
                // Counted from the failure, not from the call's start: a call that
                // timed out must not let the next one wait again at once.
                let failed_at = health.epoch.elapsed().as_millis() as u64;
                let retry = health.timeouts.retry_after.as_millis() as u64;
                health
                    .down_until_ms
                    .store(failed_at.max(1) + retry, Ordering::Relaxed);
                if !health.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(what, error = %e, "event log or bus failed; serving with degraded watermarks until it answers");
                }
            }
        }
        result
    }
}

/// Records, once the log answers again, an event changing everything for each tenant
/// whose event was lost, and publishes a change of everything for the other instances'
/// caches if a change set was lost. Ends when nothing is left (or the `Realtime` is gone).
async fn repair(inner: Weak<RealtimeShared>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let wait = strong.health.timeouts.retry_after;
        drop(strong);
        tokio::time::sleep(wait).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let realtime = Realtime {
            inner: inner.clone(),
        };
        let (tenants, changes) = {
            let lost = inner.health.lost.lock().unwrap_or_else(|e| e.into_inner());
            (
                lost.tenants.iter().cloned().collect::<Vec<_>>(),
                lost.changes,
            )
        };
        if changes {
            let msg = BusMessage::Changes(RemoteChanges {
                origin: inner.instance,
                changes: ChangeSet::everything(),
                tenants: Vec::new(),
                requires_ack: false,
            });
            if inner
                .guarded("repair changes", inner.bus.publish(msg))
                .await
                .is_ok()
            {
                tracing::info!(
                    "published a change of everything for the change sets other instances missed"
                );
                inner
                    .health
                    .lost
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .changes = false;
            }
        }
        for tenant in tenants {
            let draft = EventDraft {
                tenant: tenant.clone(),
                changes: ChangeSet::everything(),
                requires_ack: false,
                invalidated: Vec::new(),
                show_keys: false,
            };
            match realtime.publish(draft).await {
                Ok(event) => {
                    tracing::info!(tenant, event = %event.id(), "recorded a change of everything for the tenant's lost events");
                    inner
                        .health
                        .lost
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .tenants
                        .remove(&tenant);
                }
                // Still down: try again after `retry_after`.
                Err(_) => break,
            }
        }
        let lost = inner.health.lost.lock().unwrap_or_else(|e| e.into_inner());
        if lost.tenants.is_empty() && !lost.changes {
            // Cleared under the lock `lost()` takes: a loss recorded after this either
            // sees `repairing` false and starts a task, or was already seen here.
            inner.health.repairing.store(false, Ordering::SeqCst);
            return;
        }
    }
}

/// The tenants a report concerns, each with the query keys it invalidated for it: the
/// writer's `tenant` (if any) and the tenants of the entries and routing records found,
/// less those in `except`.
fn tenants_of<'a>(
    report: &'a InvalidationReport,
    tenant: Option<&'a str>,
    except: &[String],
) -> BTreeMap<&'a str, Vec<String>> {
    let mut per_tenant: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    if let Some(t) = tenant {
        per_tenant.entry(t).or_default();
    }
    for entry in &report.entries {
        if let Some(t) = entry.key.tenant.as_deref()
            && !except.iter().any(|e| e == t)
        {
            per_tenant
                .entry(t)
                .or_default()
                .push(format!("{}:{}", entry.key.procedure, entry.key.input));
        }
    }
    per_tenant
}

/// The publishing lock of a tenant.
fn stripe(tenant: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tenant.hash(&mut h);
    (h.finish() % PUBLISH_STRIPES as u64) as usize
}

/// Runs [`dispatch`] and restarts it when it panics: a dead dispatcher would stop every
/// delivery of this instance without a word. Streams are closed with `reset`, since
/// messages were dropped between the panic and the new subscription.
async fn supervise(inner: Weak<RealtimeShared>, rx: tokio::sync::broadcast::Receiver<BusMessage>) {
    let mut rx = Some(rx);
    loop {
        let receiver = match rx.take() {
            Some(r) => r,
            None => match inner.upgrade() {
                Some(i) => i.bus.subscribe(),
                None => return,
            },
        };
        let task = tokio::spawn(dispatch(inner.clone(), receiver));
        match task.await {
            Err(e) if e.is_panic() => {
                let Some(i) = inner.upgrade() else {
                    return;
                };
                let panic = panic_message(e.into_panic());
                tracing::error!(%panic, "the realtime dispatcher panicked; restarting it and resetting every stream");
                i.restarts.fetch_add(1, Ordering::Relaxed);
                // Subscribe before closing, so the streams clients reopen get every
                // message published from now on.
                rx = Some(i.bus.subscribe());
                i.hub.close_all(CloseReason::Reset);
            }
            // The `Realtime` is gone, the bus closed or the runtime is shutting down.
            _ => return,
        }
    }
}

/// The text of a panic payload (a `&str` or `String` message), for logs.
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

/// Hands a bus event to this instance's connections after the events of its tenant that
/// precede it and have not arrived yet, read from the log (see the `order` module). When
/// the log cannot give them (unreachable, or trimmed), the tenant's streams are reset:
/// their clients revalidate everything.
async fn deliver_in_order(inner: &RealtimeShared, event: &Arc<Event>) {
    match inner.hub.place(event) {
        Place::Nobody | Place::Filled => {}
        Place::Next => inner.hub.deliver(event),
        Place::After(after) => {
            match inner
                .guarded("since", inner.log.since(event.tenant(), after))
                .await
            {
                Ok(Replay::Events { events, .. }) => {
                    for missing in events.iter().filter(|e| e.id() < event.id()) {
                        inner.hub.deliver_from_log(missing);
                    }
                }
                Ok(Replay::Reset { .. }) | Err(_) => {
                    tracing::warn!(
                        tenant = event.tenant(),
                        event = %event.id(),
                        "events before this one are missing and the log cannot give them; resetting the tenant's streams"
                    );
                    inner.hub.close_tenant(event.tenant(), CloseReason::Reset);
                }
            }
            inner.hub.deliver(event);
        }
    }
}

async fn dispatch(
    inner: Weak<RealtimeShared>,
    mut rx: tokio::sync::broadcast::Receiver<BusMessage>,
) {
    loop {
        let msg = rx.recv().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match msg {
            Ok(BusMessage::Event(event)) => deliver_in_order(&inner, &event).await,
            Ok(BusMessage::Ack(ack)) => inner.hub.ack(&ack),
            Ok(BusMessage::Changes(remote)) => {
                if remote.origin != inner.instance {
                    let apply = inner
                        .remote_apply
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    if let Some(apply) = apply {
                        let report = apply(remote.changes).await;
                        if !report.entries.is_empty() {
                            // In a task of its own: the log and bus round trips must not
                            // hold up the delivery of the next messages.
                            let realtime = Realtime {
                                inner: inner.clone(),
                            };
                            tokio::spawn(async move {
                                realtime
                                    .on_remote_report(&report, &remote.tenants, remote.requires_ack)
                                    .await;
                            });
                        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::{Outgoing, Subscription};
    use crate::types::ChangeSet;

    fn draft() -> EventDraft {
        EventDraft {
            tenant: "t".to_owned(),
            changes: ChangeSet::tables(["agent"]),
            requires_ack: false,
            invalidated: Vec::new(),
            show_keys: false,
        }
    }

    /// Two instances share the log and the bus (as on Redis); event 2's id was taken by an
    /// instance whose bus message has not arrived yet when event 3 does. A stream on the
    /// reading instance gets 1, 2 (from the log), 3, and not 2 again when its late message
    /// comes: a client cut off after 3 resumes after 3 and has seen 2.
    #[tokio::test(flavor = "current_thread")]
    async fn an_instance_delivers_a_tenants_events_in_id_order_across_writers() {
        let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new(64));
        let bus = Arc::new(MemoryBus::new(64));
        let writer = Realtime::new(log.clone(), bus.clone(), HubConfig::default());
        let reader = Realtime::new(log.clone(), bus.clone(), HubConfig::default());
        reader.start();
        let stream = reader
            .hub()
            .register("t", "u", Subscription::all())
            .expect("a stream");
        let next = || async {
            match tokio::time::timeout(std::time::Duration::from_secs(5), stream.conn().next())
                .await
            {
                Ok(Ok(Outgoing::Event { event, .. })) => event.id().0,
                other => panic!("expected an event, got {:?}", other.map(|o| o.map(|_| ()))),
            }
        };
        let first = writer.publish(draft()).await.expect("publish 1").id().0;
        assert_eq!(next().await, first);
        // Id 2 is taken by a writer whose bus message is still on its way.
        let late = log.append(draft()).await.expect("append 2");
        writer.publish(draft()).await.expect("publish 3");
        assert_eq!(late.id().0, first + 1);
        assert_eq!(
            next().await,
            first + 1,
            "the missing event first, read from the log"
        );
        assert_eq!(next().await, first + 2);
        bus.publish(BusMessage::Event(late)).await.expect("late 2");
        writer.publish(draft()).await.expect("publish 4");
        assert_eq!(next().await, first + 3, "2 is not delivered twice");
    }
}
