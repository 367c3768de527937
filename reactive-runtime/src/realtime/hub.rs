//! The hub: this instance's live connections, grouped by tenant, and delivery of
//! events and acks to them.
//!
//! Delivery of one event looks only at the connections of the event's tenant. Each
//! connection has a small queue (no allocation while empty) drained by its SSE body,
//! bounded in frames and in bytes. When a queue would overflow, it is dropped and
//! replaced by one `reset` frame carrying the newest dropped event's id: the client
//! revalidates everything and continues from there — nothing is lost, and a client
//! that never reads costs at most one queue's bytes.
//!
//! A principal (tenant + subject) holds at most
//! [`HubConfig::max_streams_per_principal`] streams on one instance; one more is
//! refused ([`TooManyStreams`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::subscription::{Subscription, SubscriptionCache};
use crate::seams::AckMessage;
use crate::types::{Event, EventId, reset_frame};

use super::fanout::FanoutIndex;
use super::order::{Order, Place};
use crate::observe::metrics;

/// Limits and timings of connections, and what events carry.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Frames queued for one connection (default 256); beyond it the queue is dropped
    /// and a `reset` sent instead.
    pub queue_capacity: usize,
    /// Bytes queued for one connection (default 256 KiB); beyond it, as for
    /// `queue_capacity`. Also bounds a stream's replay: a longer one is a `reset`.
    pub queue_bytes: usize,
    /// Total bytes of the entries of one subscription (default 16 KiB); more is refused
    /// with `400`.
    pub max_subscription_bytes: usize,
    /// Open streams of one principal (tenant + subject) on one instance (default 32);
    /// one more is refused with `429`.
    pub max_streams_per_principal: usize,
    /// Send each event's `keys` (the changed key values) to clients (default `false`).
    /// Every connection an event matches receives all of its keys, whichever of its
    /// entries matched: enable only when every user of a tenant may see every key
    /// value of the tenant's writes to the tables they subscribe to.
    pub event_keys: bool,
    /// Longest key value an event keeps (default 128 bytes); a longer one makes its
    /// column unknown (which matches every query on it).
    pub max_key_len: usize,
    /// Most bytes of key values and invalidated query keys one event keeps (default
    /// 8 KiB); beyond it, tables become "any row" (and, for the query keys, the event
    /// becomes "anything changed").
    pub max_event_bytes: usize,
    /// Delays before each re-send of an unacknowledged event (default 2 s, 5 s, 10 s).
    pub ack_retry_delays: Vec<Duration>,
    /// Events awaiting an ack per connection; the oldest is dropped beyond it.
    pub max_pending_acks: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue_capacity: 256,
            queue_bytes: 256 << 10,
            max_subscription_bytes: 16 << 10,
            max_streams_per_principal: 32,
            event_keys: false,
            max_key_len: 128,
            max_event_bytes: 8 << 10,
            ack_retry_delays: vec![
                Duration::from_secs(2),
                Duration::from_secs(5),
                Duration::from_secs(10),
            ],
            max_pending_acks: 64,
        }
    }
}

/// Why the server ends a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The instance may have missed events (the bus lagged or resynchronised): the
    /// client reconnects and replays. (A client that reads too slowly gets a `reset`
    /// instead, see [`Conn::push`].)
    Lagged,
    /// Events may have been dropped on this instance (its dispatcher died): the stream
    /// ends with a `reset` frame without id (revalidate everything, keep your last id).
    Reset,
}

/// A principal already holds [`HubConfig::max_streams_per_principal`] streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many open streams for this user (at most {limit})")]
pub(crate) struct TooManyStreams {
    /// The limit.
    pub limit: usize,
}

/// One frame (or event) waiting to be written.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// An event for this connection.
    Event {
        /// The event.
        event: Arc<Event>,
        /// This connection's tail (`"entry",..]}\n\n`), kept for re-sends.
        tail: Bytes,
        /// The whole frame (the event's head, then `tail`), shared by every connection
        /// whose tail is the same (see [`FrameMemo`]).
        frame: Bytes,
    },
    /// Raw frame bytes.
    Raw(Bytes),
}

/// Whole frames already joined during one delivery, by tail. Connections whose matched
/// entries are the same get one frame built once (a reference-counted `Bytes` each),
/// not one copy each: 10,000 clients of one query cost one join per event.
#[derive(Debug, Default)]
pub(crate) struct FrameMemo {
    joined: Vec<(Bytes, Bytes)>,
}

/// Distinct tails remembered per delivery; more (unusual) are joined without memo.
const MEMO_TAILS: usize = 16;

impl FrameMemo {
    fn frame(&mut self, event: &Event, tail: &Bytes) -> Bytes {
        if let Some((_, frame)) = self.joined.iter().find(|(t, _)| t == tail) {
            return frame.clone();
        }
        let head = event.frame_head();
        let mut joined = BytesMut::with_capacity(head.len() + tail.len());
        joined.extend_from_slice(&head);
        joined.extend_from_slice(tail);
        let frame = joined.freeze();
        if self.joined.len() < MEMO_TAILS {
            self.joined.push((tail.clone(), frame.clone()));
        }
        frame
    }
}

struct Pending {
    event: Arc<Event>,
    tail: Bytes,
    resends: usize,
    due: Instant,
}

impl Outgoing {
    /// Bytes this item adds to its connection's queue (frames shared with other
    /// connections are counted whole: the bound holds whatever the sharing).
    fn size(&self) -> usize {
        match self {
            Outgoing::Event { frame, .. } => frame.len(),
            Outgoing::Raw(b) => b.len(),
        }
    }
}

#[derive(Default)]
struct ConnState {
    queue: VecDeque<Outgoing>,
    /// Sum of the queued items' sizes.
    queued_bytes: usize,
    closed: Option<CloseReason>,
    pending: VecDeque<Pending>,
}

/// A live connection.
pub(crate) struct Conn {
    id: u64,
    token: String,
    tenant: Arc<str>,
    subject: String,
    subscription: Subscription,
    state: Mutex<ConnState>,
    notify: Notify,
    config: Arc<HubConfig>,
}

impl Conn {
    /// The id clients use in acks (`connectionId`).
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The connection's subscription.
    pub(crate) fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an item (events, control frames). When the queue would exceed its frame
    /// or byte bound, it is dropped, `item` too, and replaced by a `reset` with the
    /// newest dropped event's id (the client revalidates everything it holds).
    pub(crate) fn push(&self, item: Outgoing) {
        let mut st = self.lock();
        if st.closed.is_some() {
            return;
        }
        let size = item.size();
        if st.queue.len() >= self.config.queue_capacity
            || st.queued_bytes + size > self.config.queue_bytes
        {
            tracing::debug!(conn = %self.token, "SSE client too slow; its queue is replaced by a reset");
            metrics::count(metrics::QUEUE_OVERFLOWS, 1);
            let newest = st
                .queue
                .iter()
                .chain(std::iter::once(&item))
                .filter_map(|o| match o {
                    Outgoing::Event { event, .. } => Some(event.id()),
                    Outgoing::Raw(_) => None,
                })
                .max();
            let reset = match newest {
                Some(id) => reset_frame(id),
                // Only control frames were dropped (such as an id-less reset).
                None => Bytes::from_static(RESET_WITHOUT_ID),
            };
            st.queue.clear();
            st.queued_bytes = reset.len();
            st.queue.push_back(Outgoing::Raw(reset));
        } else {
            st.queued_bytes += size;
            st.queue.push_back(item);
        }
        drop(st);
        self.notify.notify_one();
    }

    #[cfg(test)]
    /// Bytes queued now (for tests and stats).
    pub(crate) fn queued_bytes(&self) -> usize {
        self.lock().queued_bytes
    }

    /// Ends the stream.
    pub(crate) fn close(&self, reason: CloseReason) {
        self.lock().closed.get_or_insert(reason);
        self.notify.notify_one();
    }

    /// Offers `event` (queued when the subscription matches), joining the frame through
    /// `memo` (one delivery's frames).
    pub(crate) fn offer_with(&self, event: &Arc<Event>, memo: &mut FrameMemo) {
        if let Some(tail) = self.subscription.match_tail(event) {
            let frame = memo.frame(event, &tail);
            metrics::count(metrics::EVENTS_SENT, 1);
            self.push(Outgoing::Event {
                event: event.clone(),
                tail,
                frame,
            });
        }
    }

    /// Waits for the next item; `Err` when the stream must end.
    pub(crate) async fn next(&self) -> Result<Outgoing, CloseReason> {
        loop {
            {
                let mut st = self.lock();
                if let Some(reason) = st.closed {
                    return Err(reason);
                }
                if let Some(item) = st.queue.pop_front() {
                    st.queued_bytes -= item.size();
                    return Ok(item);
                }
            }
            self.notify.notified().await;
        }
    }

    /// Records that `event` was sent and needs an ack.
    pub(crate) fn sent_needing_ack(&self, event: Arc<Event>, tail: Bytes) {
        let Some(first) = self.config.ack_retry_delays.first() else {
            return;
        };
        let due = Instant::now() + *first;
        let mut st = self.lock();
        if st.pending.iter().any(|p| p.event.id() == event.id()) {
            return;
        }
        if st.pending.len() >= self.config.max_pending_acks.max(1) {
            st.pending.pop_front();
        }
        st.pending.push_back(Pending {
            event,
            tail,
            resends: 0,
            due,
        });
    }

    /// The earliest re-send deadline.
    pub(crate) fn next_resend(&self) -> Option<Instant> {
        self.lock().pending.iter().map(|p| p.due).min()
    }

    /// Frames to re-send now (each as `[head, tail]`); drops those out of retries.
    pub(crate) fn due_resends(&self, now: Instant) -> Vec<Bytes> {
        let delays = &self.config.ack_retry_delays;
        let mut out = Vec::new();
        let mut st = self.lock();
        st.pending.retain_mut(|p| {
            if p.due > now {
                return true;
            }
            out.push(p.event.resend_head());
            out.push(p.tail.clone());
            p.resends += 1;
            metrics::count(metrics::ACK_RETRIES, 1);
            match delays.get(p.resends) {
                Some(d) => {
                    p.due = now + *d;
                    true
                }
                None => false,
            }
        });
        out
    }

    /// Ids of events awaiting an ack (for tests and stats).
    pub(crate) fn pending_acks(&self) -> Vec<EventId> {
        self.lock().pending.iter().map(|p| p.event.id()).collect()
    }

    fn ack(&self, event_id: EventId) {
        self.lock().pending.retain(|p| p.event.id() != event_id);
    }
}

/// The frame of a `reset` that does not move the client's last id.
const RESET_WITHOUT_ID: &[u8] = b"event: reset\ndata: {\"eventId\":null}\n\n";

/// A tenant's connections and the index that finds the ones an event may concern.
#[derive(Default)]
struct Tenant {
    conns: HashMap<u64, Arc<Conn>>,
    index: FanoutIndex,
    /// Open streams per subject (for [`HubConfig::max_streams_per_principal`]).
    streams: HashMap<String, usize>,
    /// The order its events are handed out in (see the `order` module).
    order: Mutex<Order>,
}

type TenantConns = Arc<RwLock<Tenant>>;

fn close_conns(conns: &TenantConns, reason: CloseReason) {
    for conn in conns
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .conns
        .values()
    {
        conn.close(reason);
    }
}

struct HubInner {
    tenants: RwLock<HashMap<Arc<str>, TenantConns>>,
    subscriptions: SubscriptionCache,
    next: AtomicU64,
    config: Arc<HubConfig>,
}

/// A connection token: 128 random bits from the operating system, in hex. Tokens name
/// connections in acks; a sequential one would let a client of the same principal guess
/// its other connections' tokens (and tell how many streams the server has opened).
fn random_token() -> String {
    use std::fmt::Write;
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut bytes) {
        // Not expected on any supported platform; a token only names a connection of an
        // already authenticated principal, so a weaker one is logged, not fatal.
        tracing::error!(error = %e, "no OS randomness for a connection token");
        let fallback = std::collections::hash_map::RandomState::new();
        let n = std::hash::BuildHasher::hash_one(&fallback, super::log::now_micros());
        bytes[..8].copy_from_slice(&n.to_le_bytes());
    }
    let mut token = String::with_capacity(32);
    for b in bytes {
        let _ = write!(token, "{b:02x}");
    }
    token
}

/// One live connection as the dev tools page lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct StreamInfo {
    /// The connection's number on this instance.
    pub id: u64,
    /// Its tenant.
    pub tenant: String,
    /// Its principal's subject.
    pub subject: String,
    /// Entries of its subscription.
    pub entries: usize,
    /// Frames queued, not yet written.
    pub queued: usize,
    /// Bytes of those frames.
    pub queued_bytes: usize,
    /// Events sent that await an ack.
    pub pending_acks: usize,
}

/// This instance's live connections.
#[derive(Clone)]
pub(crate) struct Hub {
    inner: Arc<HubInner>,
}

/// Removes its connection from the hub when dropped (the client went away).
pub(crate) struct ConnGuard {
    hub: Hub,
    conn: Arc<Conn>,
}

impl ConnGuard {
    /// The connection.
    pub(crate) fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.hub.unregister(&self.conn);
    }
}

impl Hub {
    /// An empty hub.
    pub(crate) fn new(config: HubConfig) -> Hub {
        Hub {
            inner: Arc::new(HubInner {
                tenants: RwLock::new(HashMap::new()),
                subscriptions: SubscriptionCache::default(),
                next: AtomicU64::new(1),
                config: Arc::new(config),
            }),
        }
    }

    /// The subscriptions shared by this hub's connections.
    pub(crate) fn subscriptions(&self) -> &SubscriptionCache {
        &self.inner.subscriptions
    }

    /// The hub's configuration.
    pub(crate) fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Registers a connection; it receives events until the guard is dropped. Refused
    /// when the principal already holds [`HubConfig::max_streams_per_principal`] streams.
    pub(crate) fn register(
        &self,
        tenant: &str,
        subject: &str,
        subscription: Subscription,
    ) -> Result<ConnGuard, TooManyStreams> {
        let limit = self.inner.config.max_streams_per_principal;
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        // Under the tenants' write lock, so that `unregister` cannot remove the tenant's
        // map between our lookup and our insert.
        let mut tenants = self
            .inner
            .tenants
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let tenant_key = match tenants.get_key_value(tenant) {
            Some((k, _)) => k.clone(),
            None => Arc::from(tenant),
        };
        let tenant_conns = tenants.entry(tenant_key.clone()).or_default().clone();
        let conn = Arc::new(Conn {
            id,
            token: random_token(),
            tenant: tenant_key,
            subject: subject.to_owned(),
            subscription,
            state: Mutex::new(ConnState::default()),
            notify: Notify::new(),
            config: self.inner.config.clone(),
        });
        {
            let mut t = tenant_conns.write().unwrap_or_else(|e| e.into_inner());
            let open = t.streams.get(subject).copied().unwrap_or(0);
            if open >= limit {
                // The tenant's map may have been created for this call: leave no empty one.
                if t.conns.is_empty() {
                    drop(t);
                    tenants.remove(tenant);
                }
                return Err(TooManyStreams { limit });
            }
            *t.streams.entry(subject.to_owned()).or_default() += 1;
            t.index.insert(id, conn.subscription.clone());
            t.conns.insert(id, conn.clone());
        }
        drop(tenants);
        metrics::gauge_add(metrics::STREAMS_OPEN, 1.0);
        Ok(ConnGuard {
            hub: self.clone(),
            conn,
        })
    }

    fn unregister(&self, conn: &Conn) {
        let mut tenants = self
            .inner
            .tenants
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(conns) = tenants.get(&conn.tenant) {
            let mut c = conns.write().unwrap_or_else(|e| e.into_inner());
            let removed = c.conns.remove(&conn.id).is_some();
            if removed {
                metrics::gauge_add(metrics::STREAMS_OPEN, -1.0);
            }
            if removed && let Some(n) = c.streams.get_mut(&conn.subject) {
                *n -= 1;
                if *n == 0 {
                    c.streams.remove(&conn.subject);
                }
            }
            c.index.remove(conn.id);
            if c.conns.is_empty() {
                drop(c);
                tenants.remove(&conn.tenant);
            }
        }
    }

    fn tenant(&self, tenant: &str) -> Option<TenantConns> {
        self.inner
            .tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .cloned()
    }

    /// Hands an event to the connections of its tenant that subscribe to it. Only the
    /// connections the tenant's index names as candidates are visited (each is then
    /// confirmed by its subscription's matcher).
    pub(crate) fn deliver(&self, event: &Arc<Event>) {
        self.deliver_counting(event, false);
    }

    /// Where a bus event stands in its tenant's delivery order here (see the `order`
    /// module); a [`Place::Filled`] event is then forgotten.
    pub(crate) fn place(&self, event: &Event) -> Place {
        let Some(conns) = self.tenant(event.tenant()) else {
            return Place::Nobody;
        };
        let t = conns.read().unwrap_or_else(|e| e.into_inner());
        let mut order = t.order.lock().unwrap_or_else(|e| e.into_inner());
        order.place(event.id())
    }

    /// [`Hub::deliver`] for an event read from the log ahead of its bus message, which
    /// [`Hub::place`] then reports as [`Place::Filled`].
    pub(crate) fn deliver_from_log(&self, event: &Arc<Event>) {
        self.deliver_counting(event, true);
    }

    /// [`Hub::deliver`], returning how many connections were visited.
    fn deliver_counting(&self, event: &Arc<Event>, from_log: bool) -> usize {
        let Some(conns) = self.tenant(event.tenant()) else {
            return 0;
        };
        let t = conns.read().unwrap_or_else(|e| e.into_inner());
        t.order
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .delivered(event.id(), from_log);
        let mut candidates = Vec::new();
        t.index.candidates(event.record(), &mut candidates);
        let mut visited = 0;
        let mut memo = FrameMemo::default();
        for id in &candidates {
            if let Some(conn) = t.conns.get(id) {
                visited += 1;
                conn.offer_with(event, &mut memo);
            }
        }
        visited
    }

    /// Applies an ack to the matching connections of this instance.
    pub(crate) fn ack(&self, ack: &AckMessage) {
        let Some(conns) = self.tenant(&ack.tenant) else {
            return;
        };
        let conns = conns.read().unwrap_or_else(|e| e.into_inner());
        for conn in conns.conns.values() {
            if conn.subject == ack.subject
                && ack.connection.as_deref().is_none_or(|c| c == conn.token)
            {
                conn.ack(ack.event_id);
            }
        }
    }

    /// Sends `reset` (without an id) to every connection of a tenant: used when an event
    /// could not be recorded, so no client keeps data a lost event invalidated.
    pub(crate) fn reset_tenant(&self, tenant: &str) {
        let Some(conns) = self.tenant(tenant) else {
            return;
        };
        let frame = Bytes::from_static(RESET_WITHOUT_ID);
        metrics::count(metrics::STREAM_RESETS, 1);
        for conn in conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .conns
            .values()
        {
            conn.push(Outgoing::Raw(frame.clone()));
        }
    }

    /// Closes the connections of `tenant` with `reason`.
    pub(crate) fn close_tenant(&self, tenant: &str, reason: CloseReason) {
        if let Some(conns) = self.tenant(tenant) {
            close_conns(&conns, reason);
        }
    }

    /// Closes every connection (after the bus lagged: they may have missed events and
    /// will replay on reconnect).
    pub(crate) fn close_all(&self, reason: CloseReason) {
        self.each_conn(|conn| {
            conn.close(reason);
            None::<()>
        });
    }

    /// Calls `f` on every live connection until it returns `Some`.
    fn each_conn<T>(&self, mut f: impl FnMut(&Arc<Conn>) -> Option<T>) -> Option<T> {
        let tenants = self.inner.tenants.read().unwrap_or_else(|e| e.into_inner());
        for conns in tenants.values() {
            for conn in conns
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .conns
                .values()
            {
                if let Some(found) = f(conn) {
                    return Some(found);
                }
            }
        }
        None
    }

    /// Number of live connections.
    pub(crate) fn connections(&self) -> usize {
        let tenants = self.inner.tenants.read().unwrap_or_else(|e| e.into_inner());
        tenants
            .values()
            .map(|c| c.read().unwrap_or_else(|e| e.into_inner()).conns.len())
            .sum()
    }

    /// Every live connection, by tenant then id (for the dev tools page).
    pub(crate) fn streams(&self) -> Vec<StreamInfo> {
        let mut out = Vec::new();
        self.each_conn(|conn| {
            let st = conn.lock();
            out.push(StreamInfo {
                id: conn.id,
                tenant: conn.tenant.to_string(),
                subject: conn.subject.clone(),
                entries: conn.subscription.len(),
                queued: st.queue.len(),
                queued_bytes: st.queued_bytes,
                pending_acks: st.pending.len(),
            });
            None::<()>
        });
        out.sort_by(|a, b| (&a.tenant, a.id).cmp(&(&b.tenant, b.id)));
        out
    }

    /// Pending acks of a connection, by token (for tests).
    pub(crate) fn pending_acks(&self, token: &str) -> Option<Vec<EventId>> {
        self.each_conn(|conn| (conn.token == token).then(|| conn.pending_acks()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::EventRecord;
    use crate::types::{ChangeSet, Conjunction, KeyValue, ReadSet, RowChange};
    use reactive_codegen::sql::Dialect;

    /// A hub without the per-principal cap (these tests open hundreds of streams).
    fn test_hub() -> Hub {
        Hub::new(HubConfig {
            max_streams_per_principal: usize::MAX,
            ..HubConfig::default()
        })
    }

    trait Reg {
        fn reg(&self, tenant: &str, subject: &str, sub: Subscription) -> ConnGuard;
    }

    impl Reg for Hub {
        fn reg(&self, tenant: &str, subject: &str, sub: Subscription) -> ConnGuard {
            self.register(tenant, subject, sub).expect("under the cap")
        }
    }

    fn k(s: &str) -> KeyValue {
        KeyValue::from_str(s, Dialect::Postgres)
    }

    /// A stream whose queue overflows is counted once (and replaced by a reset); the
    /// open-streams gauge follows registration and drop. Recorded with a recorder local
    /// to this thread, so other tests' metrics don't mix in.
    #[cfg(feature = "metrics")]
    #[test]
    fn a_queue_overflow_and_the_open_streams_are_recorded() {
        use crate::observe::metrics as m;
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};

        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let mut totals = std::collections::HashMap::<String, f64>::new();
        // The snapshot holds what changed since the last one: summed into totals.
        let mut total = |name: &str| {
            for (key, _, _, value) in snapshotter.snapshot().into_vec() {
                let delta = match value {
                    DebugValue::Counter(n) => n as f64,
                    DebugValue::Gauge(g) => g.into_inner(),
                    DebugValue::Histogram(_) => continue,
                };
                *totals.entry(key.key().name().to_owned()).or_default() += delta;
            }
            totals.get(name).copied().unwrap_or(0.0)
        };
        ::metrics::with_local_recorder(&recorder, || {
            let hub = Hub::new(HubConfig {
                queue_capacity: 2,
                ..HubConfig::default()
            });
            let guard = hub.register("T", "u", Subscription::all()).unwrap();
            assert_eq!(total(m::STREAMS_OPEN), 1.0);
            for _ in 0..3 {
                guard
                    .conn()
                    .push(Outgoing::Raw(Bytes::from_static(b": ping\n\n")));
            }
            assert_eq!(total(m::QUEUE_OVERFLOWS), 1.0);
            drop(guard);
            assert_eq!(total(m::STREAMS_OPEN), 0.0);
        });
    }

    fn channel_reads(ch: &str) -> ReadSet {
        ReadSet::empty().with("message", Conjunction::whole().with("channel_id", k(ch)))
    }

    fn channel_sub(ch: &str) -> Subscription {
        let text = format!(r#"messages.list:{{"channelId":"{ch}"}}"#);
        Subscription::from_parts(vec![(&text, Some(&text), channel_reads(ch))])
    }

    fn event(id: u64, changes: ChangeSet, invalidated: Vec<String>) -> Arc<Event> {
        Arc::new(Event::new(EventRecord {
            tenant: "t".into(),
            id: EventId(id),
            changes,
            requires_ack: false,
            invalidated,
            show_keys: false,
        }))
    }

    fn queued(conn: &Conn) -> Vec<Bytes> {
        conn.lock()
            .queue
            .iter()
            .map(|o| match o {
                Outgoing::Event { tail, .. } => tail.clone(),
                Outgoing::Raw(b) => b.clone(),
            })
            .collect()
    }

    /// A connection that never reads holds at most `queue_bytes`: the overflowing
    /// queue is replaced by a `reset` with the newest dropped id.
    #[test]
    fn a_stream_that_never_reads_stays_under_its_byte_bound_and_gets_a_reset() {
        let hub = Hub::new(HubConfig {
            queue_bytes: 16 << 10,
            ..HubConfig::default()
        });
        let idle = hub.reg("t", "s", Subscription::all());
        // Frames of ~1 KiB each: a connection whose one entry is long has a long tail.
        let long = format!("q:{{\"k\":\"{}\"}}", "x".repeat(1000));
        let sub =
            Subscription::from_parts(vec![(&long, Some(&long), ReadSet::tables(["message"]))]);
        let big = hub.reg("t", "s2", sub);
        for id in 1..=200 {
            hub.deliver(&event(id, ChangeSet::tables(["message"]), vec![]));
            assert!(big.conn().queued_bytes() <= 16 << 10);
        }
        // 200 frames of ~1 KiB: the queue overflowed, and restarted from a reset.
        let q = queued(big.conn());
        let first = String::from_utf8(q[0].to_vec()).unwrap();
        assert!(first.starts_with("id: "), "{first}");
        assert!(first.contains("event: reset"), "{first}");
        assert!(q.len() < 20, "{} frames", q.len());
        // The reset names the newest dropped event; what follows is newer.
        let reset_id: u64 = first[4..first.find('\n').unwrap()].parse().unwrap();
        assert_eq!(reset_id + q.len() as u64 - 1, 200);
        // Small frames: the frame bound (256) applies the same way.
        assert!(queued(idle.conn()).len() <= 256);
        assert!(idle.conn().queued_bytes() <= 16 << 10);
    }

    /// A principal holds at most `max_streams_per_principal` streams; others are not
    /// affected, and closing one frees its place.
    #[test]
    fn streams_per_principal_are_capped() {
        let hub = Hub::new(HubConfig {
            max_streams_per_principal: 2,
            ..HubConfig::default()
        });
        let a = hub.reg("t", "u1", Subscription::all());
        let _b = hub.reg("t", "u1", Subscription::all());
        assert_eq!(
            hub.register("t", "u1", Subscription::all()).err(),
            Some(TooManyStreams { limit: 2 })
        );
        let _other_subject = hub.reg("t", "u2", Subscription::all());
        let _other_tenant = hub.reg("t2", "u1", Subscription::all());
        drop(a);
        let _c = hub.reg("t", "u1", Subscription::all());
        assert_eq!(hub.connections(), 4);
        // a refused registration in a new tenant leaves no empty tenant behind
        let none = Hub::new(HubConfig {
            max_streams_per_principal: 0,
            ..HubConfig::default()
        });
        assert!(none.register("x", "u", Subscription::all()).is_err());
        assert!(none.tenant("x").is_none());
    }

    /// 100 channels × 3 connections; an event on channel 7 visits only channel 7's.
    #[test]
    fn connections_with_the_same_tail_share_one_joined_frame() {
        let hub = test_hub();
        let same: Vec<_> = (0..3)
            .map(|_| hub.reg("t", "s", channel_sub("c1")))
            .collect();
        let other = hub.reg("t", "s", channel_sub("c2"));
        let changes = ChangeSet::empty().with_row("message", RowChange::whole());
        let ev = event(1, changes, vec![]);
        hub.deliver(&ev);
        let frame = |g: &ConnGuard| match g.conn().lock().queue.front() {
            Some(Outgoing::Event { tail, frame, .. }) => (tail.clone(), frame.clone()),
            other => panic!("no event queued: {other:?}"),
        };
        let (tail, first) = frame(&same[0]);
        assert_eq!(&first[..], [&ev.frame_head()[..], &tail[..]].concat());
        for g in &same[1..] {
            assert_eq!(frame(g).1.as_ptr(), first.as_ptr(), "one frame, shared");
        }
        let (other_tail, other_frame) = frame(&other);
        assert_ne!(other_tail, tail);
        assert_eq!(
            &other_frame[..],
            [&ev.frame_head()[..], &other_tail[..]].concat()
        );
    }

    #[test]
    fn event_for_one_channel_visits_only_its_connections() {
        let hub = test_hub();
        let mut guards = Vec::new();
        for c in 0..100 {
            for _ in 0..3 {
                guards.push((c, hub.reg("t", "s", channel_sub(&format!("c{c}")))));
            }
        }
        let changes =
            ChangeSet::empty().with_row("message", RowChange::whole().with("channel_id", k("c7")));
        let visited = hub.deliver_counting(&event(1, changes, vec![]), false);
        assert_eq!(visited, 3, "only channel 7's connections are visited");
        for (c, g) in &guards {
            let q = queued(g.conn());
            if *c == 7 {
                assert_eq!(q.len(), 1);
                assert_eq!(
                    &q[0][..],
                    &br#""messages.list:{\"channelId\":\"c7\"}"]}

"#[..]
                );
            } else {
                assert!(q.is_empty(), "channel {c} got an event for channel 7");
            }
        }
        // Another tenant's event reaches nobody here.
        let other = Arc::new(Event::new(EventRecord {
            tenant: "u".into(),
            id: EventId(2),
            changes: ChangeSet::tables(["message"]),
            requires_ack: false,
            invalidated: vec![],
            show_keys: false,
        }));
        assert_eq!(hub.deliver_counting(&other, false), 0);
    }

    /// A change that does not say which channel (whole table, or a row without
    /// `channel_id`) reaches every connection on the table; `*` and whole-procedure
    /// subscriptions get every matching event; other tables' subscribers get nothing.
    #[test]
    fn whole_table_change_reaches_everyone_on_the_table() {
        let hub = test_hub();
        let chans: Vec<_> = (0..50)
            .map(|c| hub.reg("t", "s", channel_sub(&format!("c{c}"))))
            .collect();
        let all = hub.reg("t", "s", Subscription::all());
        let proc_ = hub.reg(
            "t",
            "s",
            Subscription::from_parts(vec![("messages.list", None, ReadSet::tables(["message"]))]),
        );
        let other_table = hub.reg(
            "t",
            "s",
            Subscription::from_parts(vec![("agents.list", None, ReadSet::tables(["agent"]))]),
        );
        assert_eq!(
            hub.deliver_counting(&event(1, ChangeSet::tables(["message"]), vec![]), false),
            52
        );
        let row_without_channel =
            ChangeSet::empty().with_row("message", RowChange::whole().with("id", k("m1")));
        assert_eq!(
            hub.deliver_counting(&event(2, row_without_channel, vec![]), false),
            52
        );
        for g in chans.iter().chain([&all, &proc_]) {
            assert_eq!(queued(g.conn()).len(), 2);
        }
        assert_eq!(queued(&proc_.conn)[0][..], b"\"messages.list\"]}\n\n"[..]);
        assert!(queued(other_table.conn()).is_empty());
        // An unknown change reaches everyone.
        hub.deliver(&event(3, ChangeSet::everything(), vec![]));
        assert_eq!(queued(other_table.conn()).len(), 1);
        assert_eq!(queued(chans[0].conn()).len(), 3);
    }

    /// A query key named in `invalidated` is delivered even when the changes alone would
    /// not match; a connection with several matching entries gets them all in one tail.
    #[test]
    fn invalidated_keys_and_multi_entry_tails() {
        let hub = test_hub();
        let a = hub.reg("t", "s", channel_sub("c1"));
        let multi = hub.reg(
            "t",
            "s",
            Subscription::from_parts(vec![
                ("q1", Some("q1:{}"), channel_reads("c2")),
                ("q2", Some("q2:{}"), ReadSet::empty()),
                ("q3", Some("q3:{}"), channel_reads("c9")),
            ]),
        );
        let changes =
            ChangeSet::empty().with_row("message", RowChange::whole().with("channel_id", k("c2")));
        assert_eq!(
            hub.deliver_counting(&event(1, changes, vec!["q2:{}".into()]), false),
            1
        );
        assert!(queued(a.conn()).is_empty());
        assert_eq!(queued(multi.conn())[0][..], b"\"q1\",\"q2\"]}\n\n"[..]);
        // Unregistering empties the tenant and its index.
        drop(a);
        drop(multi);
        assert_eq!(hub.connections(), 0);
        assert!(hub.tenant("t").is_none());
    }

    /// Tokens are 128 random bits: distinct, and nothing in one tells the next (the old
    /// ones were a per-process nonce and a counter).
    #[test]
    fn connection_tokens_are_random() {
        let hub = Hub::new(HubConfig::default());
        let guards: Vec<_> = (0..64)
            .map(|i| {
                hub.register("t", &format!("s{i}"), Subscription::all())
                    .expect("one stream per user")
            })
            .collect();
        let tokens: Vec<&str> = guards.iter().map(|g| g.conn().token()).collect();
        for t in &tokens {
            assert_eq!(t.len(), 32, "{t}");
            assert!(t.bytes().all(|b| b.is_ascii_hexdigit()), "{t}");
        }
        let prefixes: std::collections::HashSet<&str> = tokens.iter().map(|t| &t[..8]).collect();
        assert_eq!(prefixes.len(), tokens.len(), "no shared prefix: {tokens:?}");
    }

    /// The allocation-free `ReadSet::is_affected_by` agrees with `ReadSet::reasons`.
    #[test]
    fn is_affected_by_agrees_with_reasons() {
        let reads = [
            ReadSet::empty(),
            ReadSet::everything(),
            ReadSet::tables(["message"]),
            channel_reads("c1"),
            ReadSet::empty().with(
                "message",
                Conjunction::whole()
                    .with_values("channel_id", [k("c1"), k("c2")])
                    .with("author", k("u1")),
            ),
        ];
        let changes = [
            ChangeSet::empty(),
            ChangeSet::everything(),
            ChangeSet::tables(["message"]),
            ChangeSet::tables(["agent"]),
            ChangeSet::empty().with_row("message", RowChange::whole().with("channel_id", k("c1"))),
            ChangeSet::empty().with_row("message", RowChange::whole().with("channel_id", k("c3"))),
            ChangeSet::empty().with_row(
                "message",
                RowChange::whole()
                    .with("channel_id", k("c2"))
                    .with("author", k("u2")),
            ),
            ChangeSet::empty().with_row("message", RowChange::whole().with("author", k("u1"))),
        ];
        let mut hits = 0;
        for r in &reads {
            for c in &changes {
                let fast = r.is_affected_by(c);
                assert_eq!(fast, !r.reasons(c, 1).is_empty(), "{r:?} / {c:?}");
                hits += usize::from(fast);
            }
        }
        assert!(hits > 5 && hits < reads.len() * changes.len());
    }

    /// Candidates are always a superset of what the full matcher accepts.
    #[test]
    fn index_never_misses_a_match() {
        let hub = test_hub();
        let subs = vec![
            channel_sub("c1"),
            Subscription::from_parts(vec![(
                "x",
                Some("x:1"),
                ReadSet::empty().with(
                    "message",
                    Conjunction::whole()
                        .with_values("channel_id", [k("c1"), k("c2")])
                        .with("author", k("u1")),
                ),
            )]),
            Subscription::from_parts(vec![("y", Some("y:1"), ReadSet::everything())]),
            Subscription::from_parts(vec![(
                "z",
                Some("z:1"),
                ReadSet::empty()
                    .with("agent", Conjunction::whole().with("id", k("a1")))
                    .with("message", Conjunction::whole().with("author", k("u2"))),
            )]),
        ];
        let guards: Vec<_> = subs.into_iter().map(|s| hub.reg("t", "s", s)).collect();
        let rows = [
            RowChange::whole(),
            RowChange::whole().with("channel_id", k("c1")),
            RowChange::whole().with("channel_id", k("c2")),
            RowChange::whole().with("author", k("u1")),
            RowChange::whole().with("author", k("u2")),
            RowChange::whole()
                .with("channel_id", k("c2"))
                .with("author", k("u2")),
            RowChange::whole().with("id", k("a1")),
        ];
        let mut id = 0;
        for table in ["message", "agent", "other"] {
            for row in &rows {
                id += 1;
                let ev = event(id, ChangeSet::empty().with_row(table, row.clone()), vec![]);
                let t = hub.tenant("t").unwrap();
                let t = t.read().unwrap();
                let mut cands = Vec::new();
                t.index.candidates(ev.record(), &mut cands);
                for g in &guards {
                    let c = g.conn();
                    if c.subscription.match_tail(&ev).is_some() {
                        assert!(
                            cands.contains(&c.id),
                            "missed conn {} for {table} {row:?}",
                            c.id
                        );
                    }
                    assert_eq!(
                        c.subscription.match_tail(&ev).map(|b| b.to_vec()),
                        c.subscription
                            .matches(&ev)
                            .map(|l| crate::types::frame_tail(&l).to_vec())
                    );
                }
            }
        }
    }
}
