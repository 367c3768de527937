//! A live connection ([`Conn`]): its bounded queue, how its stream ends, and the
//! events it sent that await an ack.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::HubConfig;
use super::frames::{FrameMemo, Outgoing};
use super::push::Slot;
use crate::observe::metrics;
use crate::realtime::subscription::Subscription;
use crate::types::{Event, EventId, reset_frame};

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

pub(super) struct Pending {
    event: Arc<Event>,
    tail: Bytes,
    resends: usize,
    due: Instant,
}

#[derive(Default)]
pub(super) struct ConnState {
    pub(super) queue: VecDeque<Outgoing>,
    /// Sum of the queued items' sizes.
    pub(super) queued_bytes: usize,
    closed: Option<CloseReason>,
    pub(super) pending: VecDeque<Pending>,
}

/// A live connection.
pub(crate) struct Conn {
    pub(super) id: u64,
    pub(super) token: String,
    pub(super) tenant: Arc<str>,
    pub(super) subject: String,
    pub(super) subscription: Subscription,
    pub(super) state: Mutex<ConnState>,
    pub(super) notify: Notify,
    pub(super) config: Arc<HubConfig>,
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

    /// Longest its writer waits for the pushed results of one event: beyond the
    /// computation's own limit, so that only a round that never ends is cut short.
    pub(crate) fn push_wait(&self) -> std::time::Duration {
        self.config.push_timeout * 2
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
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
    /// `memo` (one delivery's frames). Whether it was queued.
    pub(crate) fn offer_with(&self, event: &Arc<Event>, memo: &mut FrameMemo) -> bool {
        let Some(tail) = self.subscription.match_tail(event) else {
            return false;
        };
        self.queue_event(event, tail, memo, None);
        true
    }

    /// [`Conn::offer_with`] for a live event when results are pushed: `slot` gives the
    /// result slot of each matched query key of a `push` function.
    pub(crate) fn offer_pushing(
        &self,
        event: &Arc<Event>,
        memo: &mut FrameMemo,
        slot: &mut impl FnMut(&str) -> Arc<Slot>,
    ) -> bool {
        let mut slots = Vec::new();
        let Some(tail) = self
            .subscription
            .match_tail_pushing(event, &mut |key| slots.push(slot(key)))
        else {
            return false;
        };
        let results = (!slots.is_empty()).then(|| slots.into_boxed_slice());
        self.queue_event(event, tail, memo, results);
        true
    }

    fn queue_event(
        &self,
        event: &Arc<Event>,
        tail: Bytes,
        memo: &mut FrameMemo,
        results: Option<Box<[Arc<Slot>]>>,
    ) {
        let frame = memo.frame(event, &tail);
        metrics::count(metrics::EVENTS_SENT, 1);
        self.push(Outgoing::Event {
            event: event.clone(),
            tail,
            frame,
            results,
        });
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

    pub(super) fn ack(&self, event_id: EventId) {
        self.lock().pending.retain(|p| p.event.id() != event_id);
    }
}

/// The frame of a `reset` that does not move the client's last id.
pub(super) const RESET_WITHOUT_ID: &[u8] = b"event: reset\ndata: {\"eventId\":null}\n\n";
