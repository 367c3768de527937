//! The in-process [`EventBus`]: a tokio broadcast channel.

use futures::future::BoxFuture;
use tokio::sync::broadcast;

use crate::seams::{BusMessage, EventBus, RealtimeError};

/// In-process bus: a tokio broadcast channel.
pub struct MemoryBus {
    tx: broadcast::Sender<BusMessage>,
}

impl MemoryBus {
    /// A bus buffering up to `capacity` messages per slow receiver.
    pub fn new(capacity: usize) -> Self {
        MemoryBus {
            tx: broadcast::channel(capacity.max(16)).0,
        }
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl EventBus for MemoryBus {
    fn publish(&self, msg: BusMessage) -> BoxFuture<'_, Result<(), RealtimeError>> {
        // No receiver is not an error: nobody listens yet.
        let _ = self.tx.send(msg);
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.tx.subscribe()
    }
}
