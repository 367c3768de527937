//! Change feeds: invalidation for writes that **bypass the app** (`psql`, a migration,
//! another service).
//!
//! Interception only sees statements sent through [`ReactiveDb`]. A change feed
//! observes the database itself and hands what it sees to the same engine, through
//! [`ReactiveDb::invalidate`]: cache entries are removed exactly as for an intercepted
//! write, and the installed [`InvalidationListener`](crate::seams::InvalidationListener)
//! publishes the events, so SSE clients hear about the external write too.
//!
//! - [`ChangeSource`]: one small trait — a source turns into a stream of
//!   [`ChangeSet`]s, in commit order. [`spawn`] drives any source into a `ReactiveDb`
//!   in a background task and returns a [`FeedHandle`] (stats, readiness, stop).
//! - `PgChangeFeed` (cargo feature `postgres`): triggers + `LISTEN`/`NOTIFY`; see
//!   its documentation for the trigger, the payload, reconnection, and how the app's
//!   own writes are recognised and skipped.
//!
//! Consecutive change sets that are already available are merged and applied as one
//! (a burst of external writes costs one invalidation pass, not one per row).
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use reactive_runtime::ReactiveDb;
//! use reactive_runtime::feed::{FeedConfig, PgChangeFeed};
//! // `application_name` marks the app's own connections: their writes are intercepted
//! // already, so the feed skips their notifications.
//! let db = ReactiveDb::connect("postgres://app@db/app?application_name=my-app").await?;
//! let feed = PgChangeFeed::install(&db, FeedConfig::new().table("agent").table("message")).await?;
//! let handle = feed.spawn(db.clone()); // keep `handle` alive: dropping it stops the feed
//! handle.ready(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

#[cfg(feature = "postgres")]
mod postgres;

#[cfg(feature = "postgres")]
pub use postgres::{
    DEFAULT_CHANNEL, DEFAULT_LISTENER_APPLICATION_NAME, FeedConfig, FeedNotification, FeedTable,
    PgChangeFeed, parse_payload,
};

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ReactiveDb;
use crate::db::Backend;
use crate::observe::metrics;
pub use crate::seams::{ChangeSource, FeedStats, StatsSink};
use crate::types::ChangeSet;

/// At most this many ready change sets are merged into one application.
const MAX_BATCH: usize = 256;

/// Why a change feed could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The feed needs another backend than the database's.
    #[error("this change feed needs a PostgreSQL database, not {0:?}")]
    UnsupportedBackend(crate::Dialect),
    /// No table was given.
    #[error("a change feed needs at least one table")]
    NoTables,
    /// The channel name is not a plain identifier.
    #[error("invalid notification channel `{0}`: use 1 to 63 ASCII letters, digits or underscores")]
    InvalidChannel(String),
    /// A table could not be found or inspected.
    #[error("cannot watch table `{table}`: {source}")]
    Table {
        /// The table as given.
        table: String,
        /// The database's answer.
        #[source]
        source: sqlx::Error,
    },
    /// Installing the triggers failed.
    #[error("installing the change feed failed: {0}")]
    Sql(#[from] sqlx::Error),
}

/// A running change feed. Dropping the handle (or [`FeedHandle::stop`]) stops it.
#[must_use = "dropping the handle stops the feed"]
#[derive(Debug)]
pub struct FeedHandle {
    task: JoinHandle<()>,
    stats: watch::Receiver<FeedStats>,
}

impl FeedHandle {
    /// A snapshot of the counters.
    pub fn stats(&self) -> FeedStats {
        *self.stats.borrow()
    }

    /// Waits until `pred` holds for the counters, at most `timeout`. Returns the
    /// counters that satisfied it, or `None` on timeout (or if the feed stopped).
    pub async fn wait_until(
        &self,
        mut pred: impl FnMut(&FeedStats) -> bool,
        timeout: Duration,
    ) -> Option<FeedStats> {
        let mut rx = self.stats.clone();
        let waited = tokio::time::timeout(timeout, async move {
            rx.wait_for(|s| pred(s)).await.map(|s| *s).ok()
        })
        .await;
        waited.ok().flatten()
    }

    /// Waits (at most `timeout`) until the feed has subscribed and applied its initial
    /// resynchronisation: from then on, every committed external write is seen.
    /// Returns `false` on timeout.
    pub async fn ready(&self, timeout: Duration) -> bool {
        self.wait_until(|s| s.connects > 0 && s.applied > 0, timeout)
            .await
            .is_some()
    }

    /// `true` while the background task runs.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops the feed.
    pub fn stop(self) {
        // Drop aborts the task.
    }
}

impl Drop for FeedHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `source` in a background task, applying its change sets to `db` (engine and
/// listener, as an intercepted write would). Needs a Tokio runtime.
pub fn spawn<DB: Backend>(source: impl ChangeSource, db: ReactiveDb<DB>) -> FeedHandle {
    let (sink, stats) = StatsSink::new();
    let stream = source.changes(sink.clone());
    let task = tokio::spawn(drive(stream, db, sink));
    FeedHandle { task, stats }
}

/// Applies every change set of `source` to `db` until the stream ends. [`spawn`] is
/// this in a task with a handle.
pub async fn run<DB: Backend>(source: impl ChangeSource, db: ReactiveDb<DB>) {
    let (sink, _stats) = StatsSink::new();
    let stream = source.changes(sink.clone());
    drive(stream, db, sink).await;
}

async fn drive<DB: Backend>(
    stream: BoxStream<'static, ChangeSet>,
    db: ReactiveDb<DB>,
    stats: StatsSink,
) {
    let mut batches = stream.ready_chunks(MAX_BATCH);
    while let Some(batch) = batches.next().await {
        let arrived = std::time::Instant::now();
        let mut merged = ChangeSet::empty();
        for changes in &batch {
            merged.merge(changes);
        }
        if merged.is_empty() {
            continue;
        }
        let report = db.invalidate(merged).await;
        tracing::debug!(
            merged = batch.len(),
            invalidated = report.entries.len(),
            "change feed applied"
        );
        stats.record(|s| s.applied += 1);
        metrics::count(metrics::FEED_BATCHES, 1);
        metrics::observe(metrics::FEED_APPLY_SECONDS, arrived.elapsed().as_secs_f64());
    }
    tracing::debug!("change feed stream ended");
}
