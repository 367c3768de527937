//! The dispatcher: bus messages to the hub, in id order per tenant, under a supervisor
//! that restarts it after a panic (see the parent module's docs).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::broadcast::error::RecvError;

use super::{Realtime, RealtimeShared};
use crate::realtime::hub::CloseReason;
use crate::realtime::order::Place;
use crate::seams::{BusMessage, Replay};
use crate::types::Event;

/// Runs [`dispatch`] and restarts it when it panics: a dead dispatcher would stop every
/// delivery of this instance without a word. Streams are closed with `reset`, since
/// messages were dropped between the panic and the new subscription.
pub(super) async fn supervise(
    inner: Weak<RealtimeShared>,
    rx: tokio::sync::broadcast::Receiver<BusMessage>,
) {
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
    use crate::realtime::{HubConfig, MemoryBus, MemoryLog, Outgoing, Subscription};
    use crate::seams::{EventBus, EventLog};
    use crate::types::ChangeSet;
    use crate::types::EventDraft;

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
