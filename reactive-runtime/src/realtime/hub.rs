//! The hub: this instance's live connections, grouped by tenant, and delivery of
//! events and acks to them.
//!
//! Delivery of one event looks only at the connections of the event's tenant. Each
//! connection has a small queue (no allocation while empty) drained by its SSE body;
//! a connection whose queue overflows is closed, and its client reconnects with its
//! last event id and replays from the log — nothing is lost, memory stays bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::bus::AckMessage;
use super::event::{Event, EventId, frame_tail};
use super::subscription::Subscription;

/// Limits and timings of connections.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Frames queued for one connection before it is considered too slow and closed.
    pub queue_capacity: usize,
    /// Delays before each re-send of an unacknowledged event (default 2 s, 5 s, 10 s).
    pub ack_retry_delays: Vec<Duration>,
    /// Events awaiting an ack per connection; the oldest is dropped beyond it.
    pub max_pending_acks: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue_capacity: 256,
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
pub enum CloseReason {
    /// The client did not read fast enough (it reconnects and replays).
    Lagged,
    /// Credentials expired or were revoked.
    Unauthorized,
}

/// One frame (or event) waiting to be written.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// An event and this connection's tail (`"entry",..]}\n\n`).
    Event(Arc<Event>, Bytes),
    /// Raw frame bytes.
    Raw(Bytes),
}

struct Pending {
    event: Arc<Event>,
    tail: Bytes,
    resends: usize,
    due: Instant,
}

#[derive(Default)]
struct ConnState {
    queue: VecDeque<Outgoing>,
    closed: Option<CloseReason>,
    pending: VecDeque<Pending>,
}

/// A live connection.
pub struct Conn {
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
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The connection's subscription.
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an item (replayed events, control frames). Closes the connection when its
    /// queue is full.
    pub fn push(&self, item: Outgoing) {
        let mut st = self.lock();
        if st.closed.is_some() {
            return;
        }
        if st.queue.len() >= self.config.queue_capacity {
            tracing::debug!(conn = %self.token, "SSE client too slow; closing its stream");
            st.closed = Some(CloseReason::Lagged);
            st.queue.clear();
        } else {
            st.queue.push_back(item);
        }
        drop(st);
        self.notify.notify_one();
    }

    /// Ends the stream.
    pub fn close(&self, reason: CloseReason) {
        self.lock().closed.get_or_insert(reason);
        self.notify.notify_one();
    }

    /// Queues `event` if the subscription matches it.
    pub fn offer(&self, event: &Arc<Event>) {
        if let Some(list) = self.subscription.matches(event) {
            self.push(Outgoing::Event(event.clone(), frame_tail(&list)));
        }
    }

    /// Waits for the next item; `Err` when the stream must end.
    pub async fn next(&self) -> Result<Outgoing, CloseReason> {
        loop {
            {
                let mut st = self.lock();
                if let Some(reason) = st.closed {
                    return Err(reason);
                }
                if let Some(item) = st.queue.pop_front() {
                    return Ok(item);
                }
            }
            self.notify.notified().await;
        }
    }

    /// Records that `event` was sent and needs an ack.
    pub fn sent_needing_ack(&self, event: Arc<Event>, tail: Bytes) {
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
    pub fn next_resend(&self) -> Option<Instant> {
        self.lock().pending.iter().map(|p| p.due).min()
    }

    /// Frames to re-send now (each as `[head, tail]`); drops those out of retries.
    pub fn due_resends(&self, now: Instant) -> Vec<Bytes> {
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
    pub fn pending_acks(&self) -> Vec<EventId> {
        self.lock().pending.iter().map(|p| p.event.id()).collect()
    }

    fn ack(&self, event_id: EventId) {
        self.lock().pending.retain(|p| p.event.id() != event_id);
    }
}

type TenantConns = Arc<RwLock<HashMap<u64, Arc<Conn>>>>;

struct HubInner {
    tenants: RwLock<HashMap<Arc<str>, TenantConns>>,
    next: AtomicU64,
    nonce: u64,
    config: Arc<HubConfig>,
}

/// This instance's live connections.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

/// Removes its connection from the hub when dropped (the client went away).
pub struct ConnGuard {
    hub: Hub,
    conn: Arc<Conn>,
}

impl ConnGuard {
    /// The connection.
    pub fn conn(&self) -> &Arc<Conn> {
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
    pub fn new(config: HubConfig) -> Hub {
        let nonce = super::log::now_micros() ^ (u64::from(std::process::id()) << 40);
        Hub {
            inner: Arc::new(HubInner {
                tenants: RwLock::new(HashMap::new()),
                next: AtomicU64::new(1),
                nonce,
                config: Arc::new(config),
            }),
        }
    }

    /// The hub's configuration.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Registers a connection; it receives events until the guard is dropped.
    pub fn register(&self, tenant: &str, subject: &str, subscription: Subscription) -> ConnGuard {
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
            token: format!("{:x}-{:x}", self.inner.nonce, id),
            tenant: tenant_key,
            subject: subject.to_owned(),
            subscription,
            state: Mutex::new(ConnState::default()),
            notify: Notify::new(),
            config: self.inner.config.clone(),
        });
        tenant_conns
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, conn.clone());
        drop(tenants);
        ConnGuard {
            hub: self.clone(),
            conn,
        }
    }

    fn unregister(&self, conn: &Conn) {
        let mut tenants = self
            .inner
            .tenants
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(conns) = tenants.get(&conn.tenant) {
            let mut c = conns.write().unwrap_or_else(|e| e.into_inner());
            c.remove(&conn.id);
            if c.is_empty() {
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

    /// Hands an event to the connections of its tenant that subscribe to it.
    pub fn deliver(&self, event: &Arc<Event>) {
        let Some(conns) = self.tenant(event.tenant()) else {
            return;
        };
        let conns = conns.read().unwrap_or_else(|e| e.into_inner());
        for conn in conns.values() {
            conn.offer(event);
        }
    }

    /// Applies an ack to the matching connections of this instance.
    pub fn ack(&self, ack: &AckMessage) {
        let Some(conns) = self.tenant(&ack.tenant) else {
            return;
        };
        let conns = conns.read().unwrap_or_else(|e| e.into_inner());
        for conn in conns.values() {
            if conn.subject == ack.subject
                && ack.connection.as_deref().is_none_or(|c| c == conn.token)
            {
                conn.ack(ack.event_id);
            }
        }
    }

    /// Sends `reset` (without an id) to every connection of a tenant: used when an event
    /// could not be recorded, so no client keeps data a lost event invalidated.
    pub fn reset_tenant(&self, tenant: &str) {
        let Some(conns) = self.tenant(tenant) else {
            return;
        };
        let frame = Bytes::from_static(b"event: reset\ndata: {\"eventId\":null}\n\n");
        for conn in conns.read().unwrap_or_else(|e| e.into_inner()).values() {
            conn.push(Outgoing::Raw(frame.clone()));
        }
    }

    /// Closes every connection (after the bus lagged: they may have missed events and
    /// will replay on reconnect).
    pub fn close_all(&self, reason: CloseReason) {
        let tenants = self.inner.tenants.read().unwrap_or_else(|e| e.into_inner());
        for conns in tenants.values() {
            for conn in conns.read().unwrap_or_else(|e| e.into_inner()).values() {
                conn.close(reason);
            }
        }
    }

    /// Number of live connections.
    pub fn connections(&self) -> usize {
        let tenants = self.inner.tenants.read().unwrap_or_else(|e| e.into_inner());
        tenants
            .values()
            .map(|c| c.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Pending acks of a connection, by token (for tests).
    pub fn pending_acks(&self, token: &str) -> Option<Vec<EventId>> {
        let tenants = self.inner.tenants.read().unwrap_or_else(|e| e.into_inner());
        for conns in tenants.values() {
            for conn in conns.read().unwrap_or_else(|e| e.into_inner()).values() {
                if conn.token == token {
                    return Some(conn.pending_acks());
                }
            }
        }
        None
    }
}
