//! [`FeedConfig`]: what [`PgChangeFeed::install`](super::PgChangeFeed::install) sets up.

use std::time::Duration;

use super::{DEFAULT_CHANNEL, DEFAULT_LISTENER_APPLICATION_NAME};

/// What to install: tables (with explicit or derived key columns) and options.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub(super) tables: Vec<(String, Option<Vec<String>>)>,
    pub(super) channel: String,
    pub(super) own_application_name: Option<Option<String>>,
    pub(super) listener_application_name: String,
    pub(super) reconnect_delay: Duration,
    pub(super) max_reconnect_delay: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            tables: Vec::new(),
            channel: DEFAULT_CHANNEL.to_owned(),
            own_application_name: None,
            listener_application_name: DEFAULT_LISTENER_APPLICATION_NAME.to_owned(),
            reconnect_delay: Duration::from_millis(100),
            max_reconnect_delay: Duration::from_secs(10),
        }
    }
}

impl FeedConfig {
    /// No tables, default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Watches a table (as SQL names it: `agent`, `app.agent`), with derived key
    /// columns (see the `postgres` module docs).
    pub fn table(mut self, table: &str) -> Self {
        self.tables.push((table.to_owned(), None));
        self
    }

    /// Watches a table, sending exactly these key columns (those it has, of a key type).
    pub fn table_with_keys(mut self, table: &str, keys: &[&str]) -> Self {
        self.tables.push((
            table.to_owned(),
            Some(keys.iter().map(|k| k.to_lowercase()).collect()),
        ));
        self
    }

    /// The notification channel (default [`DEFAULT_CHANNEL`]).
    pub fn channel(mut self, channel: &str) -> Self {
        channel.clone_into(&mut self.channel);
        self
    }

    /// The `application_name` of the app's own connections, whose notifications are
    /// skipped; `None` skips nothing. Default: the `application_name` parameter of the
    /// database's URL, if any.
    pub fn own_application_name(mut self, name: Option<&str>) -> Self {
        self.own_application_name = Some(name.map(str::to_owned));
        self
    }

    /// The `application_name` of the listener's own connection.
    pub fn listener_application_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.listener_application_name);
        self
    }

    /// Backoff between reconnection attempts: first `initial`, doubling up to `max`.
    pub fn reconnect_delay(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_delay = initial;
        self.max_reconnect_delay = max.max(initial);
        self
    }
}
