//! Events reach the bus in id order per tenant, whatever the interleaving of the
//! writers that publish them: a client that got 11 before 10 and was cut off between
//! them would resume from 11 and never see 10. Forced interleaving: the first
//! publisher is paused inside the log's append, after its id was taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::BoxFuture;
use reactive_runtime::engine::ChangeSet;
use reactive_runtime::realtime::{
    BusMessage, Event, EventDraft, EventId, EventLog, HubConfig, MemoryBus, MemoryLog, Realtime,
    RealtimeError, Replay,
};
use tokio::sync::Notify;

/// A memory log whose first append pauses, after taking its id, until released.
#[derive(Default)]
struct PausingLog {
    log: Option<MemoryLog>,
    appends: AtomicUsize,
    paused: Notify,
    release: Notify,
}

impl EventLog for PausingLog {
    fn append(&self, draft: EventDraft) -> BoxFuture<'_, Result<Arc<Event>, RealtimeError>> {
        Box::pin(async move {
            let event = self.log.as_ref().expect("a log").append(draft).await?;
            if self.appends.fetch_add(1, Ordering::SeqCst) == 0 {
                self.paused.notify_one();
                self.release.notified().await;
            }
            Ok(event)
        })
    }

    fn head<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<EventId, RealtimeError>> {
        self.log.as_ref().expect("a log").head(tenant)
    }

    fn since<'a>(
        &'a self,
        tenant: &'a str,
        after: EventId,
    ) -> BoxFuture<'a, Result<Replay, RealtimeError>> {
        self.log.as_ref().expect("a log").since(tenant, after)
    }
}

fn draft() -> EventDraft {
    EventDraft {
        tenant: "t".to_owned(),
        changes: ChangeSet::tables(["agent"]),
        requires_ack: false,
        invalidated: Vec::new(),
        show_keys: false,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_tenants_events_are_published_in_id_order() {
    let log = Arc::new(PausingLog {
        log: Some(MemoryLog::new(64)),
        ..PausingLog::default()
    });
    let realtime = Realtime::new(
        log.clone(),
        Arc::new(MemoryBus::new(64)),
        HubConfig::default(),
    );
    let mut rx = realtime.bus().subscribe();
    let first = tokio::spawn({
        let realtime = realtime.clone();
        async move { realtime.publish(draft()).await.map(|e| e.id()) }
    });
    log.paused.notified().await; // the first event has its id and is not published yet
    let second = tokio::spawn({
        let realtime = realtime.clone();
        async move { realtime.publish(draft()).await.map(|e| e.id()) }
    });
    // The second publisher runs as far as it can (one thread: it has run when we resume).
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    log.release.notify_one();
    let ids = [
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    ];
    assert!(ids[0] < ids[1], "ids follow the appends: {ids:?}");
    let mut published = Vec::new();
    while published.len() < 2 {
        if let BusMessage::Event(e) = rx.recv().await.unwrap() {
            published.push(e.id());
        }
    }
    assert_eq!(published, ids, "published in id order");
}
