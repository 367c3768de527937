//! Publishing: events appended to the log and published on the bus, per tenant of an
//! invalidation report, in id order per tenant; acks; the watermark reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Realtime, UNKNOWN_EVENT_ID};
use crate::realtime::keys::TrimLimits;
use crate::seams::{AckMessage, BusMessage, RealtimeError, RemoteChanges, Replay};
use crate::types::{ChangeSet, Event, EventDraft, EventId, InvalidationReport};

/// How many locks order the publishing of events (tenants share them by hash): a
/// fixed number, so that no tenant name an attacker makes up grows a map.
pub(super) const PUBLISH_STRIPES: usize = 64;
/// What [`Realtime::on_report`] published for the tenant of the write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Published {
    /// The id of that tenant's event, if one was recorded.
    pub event: Option<EventId>,
    /// Some event or change set could not be recorded or published (it will be
    /// repaired, see the module docs).
    pub failed: bool,
}

impl Realtime {
    /// The newest event id of a tenant (the watermark of data read now). Fails when the
    /// log does not answer within [`Timeouts::operation`], or failed less than
    /// [`Timeouts::retry_after`] ago.
    ///
    /// [`Timeouts::operation`]: super::Timeouts::operation
    /// [`Timeouts::retry_after`]: super::Timeouts::retry_after
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
    ///
    /// [`HubConfig::event_keys`]: crate::realtime::HubConfig::event_keys
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
