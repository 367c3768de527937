//! Repair after an outage: what a failed publication left to redo, and the task that
//! redoes it once the log and bus answer again (see the parent module's docs).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{Realtime, RealtimeShared};
use crate::seams::{BusMessage, RemoteChanges};
use crate::types::{ChangeSet, EventDraft};

/// Most tenants whose events wait for repair (see the module docs); beyond it a lost
/// event is only logged: the memory of an outage stays bounded.
const MAX_LOST_TENANTS: usize = 100_000;

/// What a failed publication left to repair.
#[derive(Default)]
pub(super) struct Lost {
    /// Tenants whose event was not recorded or not published.
    tenants: BTreeSet<String>,
    /// A change set did not reach the other instances' caches.
    changes: bool,
}

impl Realtime {
    /// Remembers what to repair and makes sure a repair task runs.
    pub(super) fn lost(&self, tenant: Option<&str>, changes: bool) {
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
