//! Coalescing of identical concurrent misses: the first caller (the leader) runs the
//! computation; the others wait for its result instead of running it too.
//!
//! A waiter never hangs on a leader that fails or is cancelled: the leader's slot is
//! removed when its guard drops, which closes the channel; the waiter then retries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

use crate::types::CacheKey;
use crate::types::ReadSet;

/// What a leader shares with its waiters.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) value: Bytes,
    /// The engine sequence when the leader started.
    pub(crate) start: u64,
    /// The watermark the leader's caller took before it joined (see
    /// [`Engine::get_or_compute_at`](super::Engine::get_or_compute_at)): what the
    /// value reflects, which waiters return instead of their own.
    pub(crate) watermark: u64,
    /// The leader's final read set.
    pub(crate) reads: ReadSet,
    /// The race guard refused to store the value (it may predate a write): waiters
    /// compute their own.
    pub(crate) refused: bool,
}

type Slot = (u64, watch::Receiver<Option<Arc<Shared>>>);

#[derive(Debug, Default)]
pub(crate) struct InFlight {
    slots: Mutex<HashMap<CacheKey, Slot>>,
    next: AtomicU64,
}

/// The role of a caller for one key.
pub(crate) enum Role<'a> {
    Lead(LeaderGuard<'a>),
    Wait(watch::Receiver<Option<Arc<Shared>>>),
}

/// Held by the leader; removes its slot when dropped (success, error or cancellation).
pub(crate) struct LeaderGuard<'a> {
    inflight: &'a InFlight,
    /// The caller's key (it outlives the guard): no copy of its strings.
    key: &'a CacheKey,
    id: u64,
    tx: watch::Sender<Option<Arc<Shared>>>,
    /// The slot is gone already (`publish` removed it).
    removed: bool,
}

impl InFlight {
    pub(crate) fn join<'a>(&'a self, key: &'a CacheKey) -> Role<'a> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, rx)) = slots.get(key) {
            return Role::Wait(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        slots.insert(key.clone(), (id, rx));
        Role::Lead(LeaderGuard {
            inflight: self,
            key,
            id,
            tx,
            removed: false,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

impl LeaderGuard<'_> {
    /// Hands the result to every waiter, built only if there is one.
    ///
    /// The slot leaves first, under the lock `join` hands out receivers under: after
    /// that nobody can start waiting for this leader, so the receivers still alive are
    /// exactly its waiters'. A caller that comes later finds the stored value, or leads.
    pub(crate) fn publish(mut self, shared: impl FnOnce() -> Shared) {
        let waiting = {
            let mut slots = self.inflight.lock();
            self.remove_slot(&mut slots);
            self.tx.receiver_count() > 0
        };
        if waiting {
            self.tx.send_replace(Some(Arc::new(shared())));
        }
    }

    /// Removes the slot if it is this leader's (a later leader's slot is put back).
    fn remove_slot(&mut self, slots: &mut HashMap<CacheKey, Slot>) {
        self.removed = true;
        // One lookup in the common case (the slot is ours).
        if let Some((id, rx)) = slots.remove(self.key)
            && id != self.id
        {
            slots.insert(self.key.clone(), (id, rx));
        }
    }
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.removed {
            let mut slots = self.inflight.lock();
            self.remove_slot(&mut slots);
        }
    }
}

/// Waits for the leader: `Some` with its result, `None` if it failed or was cancelled.
pub(crate) async fn wait(mut rx: watch::Receiver<Option<Arc<Shared>>>) -> Option<Arc<Shared>> {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone(),
        Err(_) => None,
    }
}
