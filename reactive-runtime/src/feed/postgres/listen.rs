//! Listening: the feed as a [`ChangeSource`], with resubscription, backoff and the
//! skipping of the app's own writes.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};

use super::{PgChangeFeed, parse_payload};
use crate::feed::{ChangeSource, StatsSink};
use crate::observe::metrics;
use crate::types::ChangeSet;

impl ChangeSource for PgChangeFeed {
    fn changes(self, stats: StatsSink) -> BoxStream<'static, ChangeSet> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(self.listener_options.clone());
        let delay = self.reconnect_delay;
        let state = Listening {
            feed: self,
            pool,
            listener: None,
            stats,
            delay,
        };
        futures::stream::unfold(state, |mut state| async move {
            let changes = state.next().await;
            Some((changes, state))
        })
        .boxed()
    }
}

struct Listening {
    feed: PgChangeFeed,
    pool: PgPool,
    listener: Option<PgListener>,
    stats: StatsSink,
    delay: Duration,
}

impl Listening {
    /// The next change set: from a notification, or a wholesale one after (re)subscribing.
    async fn next(&mut self) -> ChangeSet {
        loop {
            if self.listener.is_none() {
                match self.subscribe().await {
                    Ok(listener) => {
                        self.listener = Some(listener);
                        self.delay = self.feed.reconnect_delay;
                        return self.resync();
                    }
                    Err(e) => {
                        self.failed(&e).await;
                        continue;
                    }
                }
            }
            let Some(listener) = self.listener.as_mut() else {
                continue;
            };
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if let Some(changes) = self.on_payload(notification.payload()) {
                        return changes;
                    }
                }
                // The connection was lost and re-established (sqlx re-subscribes before
                // returning): notifications may have been missed meanwhile.
                Ok(None) => {
                    tracing::warn!("change feed: connection lost and re-established");
                    self.stats.record(|s| s.connection_failures += 1);
                    return self.resync();
                }
                Err(e) => {
                    self.listener = None;
                    self.failed(&e).await;
                }
            }
        }
    }

    async fn subscribe(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&self.feed.channel).await?;
        Ok(listener)
    }

    /// Counts a (re)subscription and returns the wholesale change that covers the gap.
    fn resync(&mut self) -> ChangeSet {
        tracing::info!(channel = %self.feed.channel, "change feed listening; invalidating its tables wholesale");
        self.stats.record(|s| {
            s.connects += 1;
            s.resyncs += 1;
        });
        self.feed.wholesale()
    }

    async fn failed(&mut self, error: &sqlx::Error) {
        tracing::warn!(%error, retry_in = ?self.delay, "change feed: listener connection failed");
        self.stats.record(|s| s.connection_failures += 1);
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(self.feed.max_reconnect_delay);
    }

    /// The change set of one notification; `None` when it is skipped (own write).
    fn on_payload(&mut self, payload: &str) -> Option<ChangeSet> {
        self.stats.record(|s| s.notifications += 1);
        match parse_payload(payload) {
            Ok(n) => {
                if let Some(written_at) = n.written_at {
                    // Clocks of two hosts: a write "in the future" is skew, counted as none.
                    let lag = written_at.elapsed().unwrap_or_default();
                    metrics::observe(metrics::FEED_LAG_SECONDS, lag.as_secs_f64());
                    self.stats.record(|s| s.last_lag = Some(lag));
                }
                // The app's own statements were intercepted; rows the database changed on
                // their behalf (a foreign key's cascade, a trigger) were not.
                let on_behalf = n.depth > 1
                    || self
                        .feed
                        .tables
                        .iter()
                        .any(|t| t.name == n.table && t.changed_on_behalf);
                if n.application_name.is_some()
                    && n.application_name.as_deref() == self.feed.own_application_name.as_deref()
                    && !on_behalf
                {
                    self.stats.record(|s| s.own_writes_skipped += 1);
                    return None;
                }
                if n.whole_table {
                    self.stats.record(|s| s.whole_table += 1);
                }
                tracing::debug!(table = %n.table, operation = %n.operation, "change feed notification");
                Some(n.changes)
            }
            Err(error) => {
                tracing::warn!(%error, payload, "change feed: unreadable notification; invalidating the feed's tables");
                self.stats.record(|s| s.malformed += 1);
                Some(self.feed.wholesale())
            }
        }
    }
}
