//! The event bus seam: carries events, acks and change sets to every instance
//! (including the one that published them).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::RealtimeError;
use crate::types::{ChangeSet, Event, EventId};

/// An acknowledgement, forwarded to whichever instance holds the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckMessage {
    /// Tenant of the acknowledging principal.
    pub tenant: String,
    /// Subject of the acknowledging principal.
    pub subject: String,
    /// The connection (`None`: every connection of the principal).
    pub connection: Option<String>,
    /// The acknowledged event.
    pub event_id: EventId,
}

/// A write's change set, for the caches of other instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteChanges {
    /// The instance that applied it already.
    pub origin: u64,
    /// The change set (after relation expansion).
    pub changes: ChangeSet,
    /// The tenants the origin instance published an event for (the writer's and those
    /// of the entries its own cache held): an instance that finds other tenants' entries
    /// or routing records in its cache publishes theirs, not these again. Empty from an
    /// older instance: then every tenant found is published (an extra event at worst).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// Whether the write's events require an acknowledgement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_ack: bool,
}

/// What travels on the bus.
#[derive(Debug, Clone)]
pub enum BusMessage {
    /// A new event (already in the log).
    Event(Arc<Event>),
    /// An acknowledgement.
    Ack(AckMessage),
    /// A change set other instances apply to their local caches.
    Changes(RemoteChanges),
    /// The bus may have lost messages (a reconnect): streams must replay from the log.
    Resync,
}

/// Publish/subscribe between instances.
pub trait EventBus: Send + Sync + 'static {
    /// Publishes a message to every subscriber of every instance (this one included).
    fn publish(&self, msg: BusMessage) -> BoxFuture<'_, Result<(), RealtimeError>>;
    /// A receiver of every message published after this call. A receiver that lags
    /// behind gets `RecvError::Lagged`: its holder must assume it missed events.
    fn subscribe(&self) -> broadcast::Receiver<BusMessage>;
}
