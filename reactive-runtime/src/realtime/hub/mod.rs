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

mod config;
mod conn;
mod frames;
mod push;
#[cfg(test)]
mod tests;
mod token;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use tokio::sync::Notify;

use super::subscription::{Subscription, SubscriptionCache};
use crate::seams::AckMessage;
use crate::types::{Event, EventId};

use super::fanout::FanoutIndex;
use super::order::{Order, Place};
use crate::observe::devtools::DevTools;
use crate::observe::metrics;

pub use config::HubConfig;
pub(crate) use conn::{CloseReason, Conn};
use conn::{ConnState, RESET_WITHOUT_ID};
use frames::FrameMemo;
pub(crate) use frames::Outgoing;
use push::Pusher;
pub(crate) use push::{PushCompute, PushRequest, Pushed, Slot, with_results};
use token::random_token;

/// A principal already holds [`HubConfig::max_streams_per_principal`] streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many open streams for this user (at most {limit})")]
pub(crate) struct TooManyStreams {
    /// The limit.
    pub limit: usize,
}

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
    /// Computes pushed results, once set (see [`Hub::set_push`]).
    pusher: OnceLock<Arc<Pusher>>,
    /// The dev tools' recorder, told which streams each event was queued to; unset
    /// (no page), delivery does no work for it.
    devtools: OnceLock<DevTools>,
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
                pusher: OnceLock::new(),
                devtools: OnceLock::new(),
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

    /// Pushes the results of `push` functions' subscribed query keys, computed by
    /// `compute`, after the live events that invalidate them (see the `push` module).
    /// Set once; later calls are ignored, and so is every call when
    /// [`HubConfig::push`] is off.
    pub(crate) fn set_push(&self, compute: PushCompute) {
        if !self.inner.config.push {
            return;
        }
        let _ = self
            .inner
            .pusher
            .set(Arc::new(Pusher::new(compute, &self.inner.config)));
    }

    /// Records in `devtools` which streams each event is queued to (set once, by the
    /// router that serves the page; later calls are ignored).
    pub(crate) fn set_devtools(&self, devtools: DevTools) {
        let _ = self.inner.devtools.set(devtools);
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
            // Not delivered at all: the dev tools show it reached no stream here.
            if let Some(tools) = self.inner.devtools.get() {
                tools.record_delivery(event.tenant(), event.id().0, &[]);
            }
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
        let devtools = self.inner.devtools.get();
        let Some(conns) = self.tenant(event.tenant()) else {
            if let Some(tools) = devtools {
                tools.record_delivery(event.tenant(), event.id().0, &[]);
            }
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
        // The streams it was queued to, only for the dev tools.
        let mut queued_to = devtools.map(|_| Vec::new());
        let mut memo = FrameMemo::default();
        let pusher = self.inner.pusher.get();
        // One slot per pushed key and event, shared by the connections holding the key.
        let mut slots: HashMap<String, Arc<push::Slot>> = HashMap::new();
        let tenant = pusher.and_then(|_| candidates.first().and_then(|id| t.conns.get(id)));
        let tenant = tenant.map(|c| c.tenant.clone());
        for id in &candidates {
            if let Some(conn) = t.conns.get(id) {
                visited += 1;
                let queued = match (pusher, &tenant) {
                    (Some(pusher), Some(tenant)) => {
                        conn.offer_pushing(event, &mut memo, &mut |key| {
                            slots
                                .entry(key.to_owned())
                                .or_insert_with(|| {
                                    pusher.schedule(tenant, key, event.id(), &conn.subject)
                                })
                                .clone()
                        })
                    }
                    _ => conn.offer_with(event, &mut memo),
                };
                if queued && let Some(ids) = &mut queued_to {
                    ids.push(*id);
                }
            }
        }
        drop(t);
        if let (Some(tools), Some(ids)) = (devtools, queued_to) {
            tools.record_delivery(event.tenant(), event.id().0, &ids);
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
