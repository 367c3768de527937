//! Pushing fresh results ([`Pusher`]): when a live event reaches connections through a
//! query key of a `push` function, the query is computed again once (through the cache,
//! coalesced like any call) and its new value travels in that event's frame
//! (`"results"`), serialized once and shared by every connection.
//!
//! Per query key of a tenant, at most one computation runs and one more waits: the
//! events arriving meanwhile join the waiting round (raising the id it must reflect)
//! and share its result. A result that is too large, too slow, failed, or does not
//! reflect the event that asked for it is left out: the client then refetches, as
//! without push. Nothing here waits on the writer: rounds run in tasks of their own,
//! at most [`HubConfig::push_concurrency`](super::HubConfig::push_concurrency) at once.
//! A connection's writer waits for the result (see [`Slot::wait`]) before it writes the
//! event, so frames keep their order and `Last-Event-ID` its meaning.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Notify, Semaphore};

use super::config::HubConfig;
use crate::observe::metrics;
use crate::types::EventId;

/// What a push computes: a query key (`name:canonical-json`) of a tenant, run as a
/// principal of that tenant (`subject`: one of the connections it is for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    /// The tenant.
    pub tenant: Arc<str>,
    /// The subject of one connection the result is for.
    pub subject: String,
    /// The query key, `name:canonical-json`.
    pub key: String,
}

/// A computed result: the output's JSON and the newest event it reflects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The function's output, as JSON (one line).
    pub bytes: Bytes,
    /// Its watermark.
    pub watermark: EventId,
}

/// Computes a pushed result; `None` when it cannot (the call failed: its clients
/// refetch, and see the error themselves).
pub type PushCompute = Arc<dyn Fn(PushRequest) -> BoxFuture<'static, Option<Pushed>> + Send + Sync>;

/// The result of one round of a key, shared by the events (and connections) that wait
/// for it.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The key as a JSON string (`"name:{..}"`).
    pub(crate) key: Bytes,
    /// `{"eventId":"<watermark>","data":<value>}`, or `None` when not pushed.
    value: OnceLock<Option<Bytes>>,
    ready: Notify,
}

impl Slot {
    fn new(key: &str) -> Arc<Slot> {
        Arc::new(Slot {
            key: Bytes::from(serde_json::to_vec(key).expect("a string serializes")),
            value: OnceLock::new(),
            ready: Notify::new(),
        })
    }

    fn resolve(&self, value: Option<Bytes>) {
        let _ = self.value.set(value);
        self.ready.notify_waiters();
    }

    /// Waits for the round's result: the value's JSON, or `None` (not pushed).
    pub(crate) async fn wait(&self) -> Option<&Bytes> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(value) = self.value.get() {
                return value.as_ref();
            }
            notified.await;
        }
    }
}

/// A pushed query key of a tenant.
type KeyOf = (Arc<str>, String);

/// One computation of a key: the event it must reflect, who runs it, its result.
struct Round {
    target: EventId,
    subject: String,
    slot: Arc<Slot>,
}

/// The pushes of one hub.
pub(crate) struct Pusher {
    compute: PushCompute,
    max_bytes: usize,
    timeout: std::time::Duration,
    permits: Semaphore,
    /// Keys being computed, with the round waiting behind the running one, if any.
    /// Bounded by the query keys that live connections subscribe to.
    running: Mutex<HashMap<KeyOf, Option<Round>>>,
}

impl Pusher {
    pub(crate) fn new(compute: PushCompute, config: &HubConfig) -> Pusher {
        Pusher {
            compute,
            max_bytes: config.push_max_bytes,
            timeout: config.push_timeout,
            permits: Semaphore::new(config.push_concurrency.max(1)),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The slot that will hold `key`'s result reflecting `event` (`subject`: one
    /// connection it is for, whose principal runs the query if a round starts).
    pub(crate) fn schedule(
        self: &Arc<Self>,
        tenant: &Arc<str>,
        key: &str,
        event: EventId,
        subject: &str,
    ) -> Arc<Slot> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.entry((tenant.clone(), key.to_owned())) {
            Entry::Occupied(mut next) => {
                let next = next.get_mut().get_or_insert_with(|| Round {
                    target: event,
                    subject: subject.to_owned(),
                    slot: Slot::new(key),
                });
                next.target = next.target.max(event);
                next.slot.clone()
            }
            Entry::Vacant(place) => {
                let (tenant, key) = place.key().clone();
                place.insert(None);
                let round = Round {
                    target: event,
                    subject: subject.to_owned(),
                    slot: Slot::new(&key),
                };
                let slot = round.slot.clone();
                tokio::spawn(self.clone().run(tenant, key, round));
                slot
            }
        }
    }

    /// Runs rounds of `key` until none waits.
    async fn run(self: Arc<Self>, tenant: Arc<str>, key: String, mut round: Round) {
        loop {
            round.slot.resolve(self.round(&tenant, &key, &round).await);
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            let place = (tenant.clone(), key.clone());
            match running.get_mut(&place).and_then(Option::take) {
                Some(next) => round = next,
                None => {
                    running.remove(&place);
                    return;
                }
            }
        }
    }

    /// Computes one round's result (`{"eventId":..,"data":..}`), or `None`.
    async fn round(&self, tenant: &Arc<str>, key: &str, round: &Round) -> Option<Bytes> {
        // A value that joined a computation started before the event may not reflect
        // it; one more try starts after it.
        for _ in 0..2 {
            let Some(pushed) = self.compute_once(tenant, &round.subject, key).await else {
                break;
            };
            if pushed.watermark < round.target {
                continue;
            }
            if pushed.bytes.len() > self.max_bytes {
                tracing::debug!(
                    key,
                    bytes = pushed.bytes.len(),
                    "result too large to push; its clients refetch it"
                );
                break;
            }
            metrics::count(metrics::PUSH_RESULTS, 1);
            return Some(value_json(&pushed));
        }
        metrics::count(metrics::PUSH_FALLBACKS, 1);
        None
    }

    async fn compute_once(&self, tenant: &Arc<str>, subject: &str, key: &str) -> Option<Pushed> {
        let _permit = self.permits.acquire().await.ok()?;
        let request = PushRequest {
            tenant: tenant.clone(),
            subject: subject.to_owned(),
            key: key.to_owned(),
        };
        // A panicking handler must not leave the key marked running forever.
        let computed = std::panic::AssertUnwindSafe((self.compute)(request)).catch_unwind();
        match tokio::time::timeout(self.timeout, computed).await {
            Ok(Ok(pushed)) => pushed,
            Ok(Err(_)) => {
                tracing::warn!(
                    key,
                    "computing a pushed result panicked; its clients refetch it"
                );
                None
            }
            Err(_) => {
                tracing::debug!(key, "a pushed result took too long; its clients refetch it");
                None
            }
        }
    }

    /// Keys being computed now (for tests).
    #[cfg(test)]
    pub(crate) fn running(&self) -> usize {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// `{"eventId":"<watermark>","data":<value>}`.
fn value_json(pushed: &Pushed) -> Bytes {
    let id = pushed.watermark.to_string();
    let mut b = BytesMut::with_capacity(pushed.bytes.len() + id.len() + 24);
    b.put_slice(b"{\"eventId\":\"");
    b.put_slice(id.as_bytes());
    b.put_slice(b"\",\"data\":");
    b.put_slice(&pushed.bytes);
    b.put_slice(b"}");
    b.freeze()
}

/// The chunks of `frame` (an `invalidate` frame, ending `]}\n\n`) with the values of
/// `results` (`(key JSON, value JSON)`) added as `"results":{key:value,..}`; the
/// shared bytes are sliced, not copied.
pub(crate) fn with_results(frame: &Bytes, results: &[(Bytes, Bytes)]) -> Vec<Bytes> {
    debug_assert!(frame.ends_with(b"}\n\n"));
    let mut out = Vec::with_capacity(3 + 4 * results.len());
    out.push(frame.slice(..frame.len() - 3));
    for (i, (key, value)) in results.iter().enumerate() {
        out.push(Bytes::from_static(if i == 0 {
            b",\"results\":{"
        } else {
            b","
        }));
        out.push(key.clone());
        out.push(Bytes::from_static(b":"));
        out.push(value.clone());
    }
    out.push(Bytes::from_static(b"}}\n\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_join_the_frame_as_one_line_of_json() {
        let frame = Bytes::from_static(
            b"id: 7\nevent: invalidate\ndata: {\"eventId\":\"7\",\"queries\":[\"q:{}\"]}\n\n",
        );
        let value = value_json(&Pushed {
            bytes: Bytes::from_static(b"[1,2]"),
            watermark: EventId(9),
        });
        let key = Bytes::from_static(b"\"q:{}\"");
        let joined: Vec<u8> =
            with_results(&frame, &[(key.clone(), value.clone()), (key, value)]).concat();
        assert_eq!(
            std::str::from_utf8(&joined).unwrap(),
            "id: 7\nevent: invalidate\ndata: {\"eventId\":\"7\",\"queries\":[\"q:{}\"],\"results\":{\"q:{}\":{\"eventId\":\"9\",\"data\":[1,2]},\"q:{}\":{\"eventId\":\"9\",\"data\":[1,2]}}}\n\n"
        );
    }
}
