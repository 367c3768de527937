//! The change source seam: committed changes the interceptor did not see (writes that
//! bypass the app), turned into change sets.

use std::sync::Arc;

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::types::ChangeSet;

/// Something that observes committed changes the interceptor did not see.
///
/// The stream yields change sets in commit order and should never end while the
/// source is healthy (it reconnects by itself). A source that may have missed changes
/// (after a reconnect, at start) must yield a change set covering everything it might
/// have missed (e.g. its tables wholesale): *unknown always matches* is the rule the
/// whole engine relies on.
pub trait ChangeSource: Send + 'static {
    /// Turns the source into its stream of change sets. `stats` is where the source
    /// records what it sees ([`FeedStats`]); the driver records applications.
    fn changes(self, stats: StatsSink) -> BoxStream<'static, ChangeSet>;
}

/// Counters of a change feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FeedStats {
    /// Successful subscriptions (the first one and every reconnect).
    pub connects: u64,
    /// Failed connection or subscription attempts, and lost connections.
    pub connection_failures: u64,
    /// Notifications received.
    pub notifications: u64,
    /// Notifications of the app's own (already intercepted) writes, skipped.
    pub own_writes_skipped: u64,
    /// Notifications that could not be read (their tables were invalidated wholesale).
    pub malformed: u64,
    /// Notifications without key values (`TRUNCATE`, payload too large): whole table.
    pub whole_table: u64,
    /// Wholesale invalidations of the feed's tables after a (re)subscription, for the
    /// changes that may have been missed while not listening.
    pub resyncs: u64,
    /// Change sets handed to [`ReactiveDb::invalidate`](crate::ReactiveDb::invalidate) (after merging).
    pub applied: u64,
    /// The last notification's lag: from its writing statement (on the database's
    /// clock) to its arrival here; `None` before the first one that carried the time.
    pub last_lag: Option<std::time::Duration>,
}

/// Where a [`ChangeSource`] records its [`FeedStats`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StatsSink(Arc<watch::Sender<FeedStats>>);

impl StatsSink {
    pub(crate) fn new() -> (Self, watch::Receiver<FeedStats>) {
        let (tx, rx) = watch::channel(FeedStats::default());
        (Self(Arc::new(tx)), rx)
    }

    /// Updates the counters (waiters on [`FeedHandle::wait_until`](crate::feed::FeedHandle::wait_until) are woken).
    pub fn record(&self, update: impl FnOnce(&mut FeedStats)) {
        self.0.send_modify(update);
    }
}
