//! [`PgChangeFeed`]: PostgreSQL triggers + `LISTEN`/`NOTIFY` as a [`ChangeSource`](super::ChangeSource).
//!
//! # The trigger
//!
//! [`PgChangeFeed::install`] creates (idempotently, under an advisory lock so that
//! instances starting together don't race) one PL/pgSQL function,
//! `reactive_feed_notify()`, and on each watched table two triggers:
//!
//! - `reactive_feed_row`: `AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW`, which
//!   sends `pg_notify(channel, payload)` with the table, the operation, the session's
//!   `application_name`, and the `OLD` and `NEW` values of the table's **key columns
//!   only** (never whole rows: a payload must stay under PostgreSQL's 8000-byte limit).
//!   A payload that would still be larger than 7900 bytes is sent without values: a
//!   whole-table change.
//! - `reactive_feed_truncate`: `AFTER TRUNCATE ... FOR EACH STATEMENT`: a whole-table change.
//!
//! The payload names the table as change sets do (its own name, lower-cased, passed as
//! a trigger argument), so rows written to a partition of a partitioned table are
//! reported as changes of the partitioned table the queries read.
//!
//! Payload: `{"t":"agent","op":"UPDATE","app":"psql","d":1,"old":{"id":1,"organization_id":1},"new":{"id":1,"organization_id":2}}`
//! (`d`: `pg_trigger_depth()`, above 1 for rows a cascade or trigger changed).
//! The listener turns it into one [`RowChange`](crate::types::RowChange) for the old row and one for the new
//! row (an agent moving from organization 1 to 2 invalidates the queries of both, and
//! not a query for organization 1 *and* the new name). The key values are read
//! from `to_jsonb(OLD/NEW)` filtered by the column names given to the trigger, so a
//! later `ALTER TABLE ... DROP COLUMN` never makes writes fail (the column is simply
//! absent: unknown, which matches everything). The cost is one `to_jsonb` of the row
//! per written row (wide rows with large values pay for it).
//!
//! Any session that may `LISTEN` can read the channel: key values of every write to
//! the watched tables are visible to every role that can connect to the database.
//!
//! # Which key columns
//!
//! Per table, either given explicitly ([`FeedConfig::table_with_keys`]) or derived
//! ([`FeedConfig::table`]): `id`, the columns registered reactive functions filter
//! the table on (their model's dependencies and statements), and the source columns of
//! relation edges from the table — the same notion as the interceptor's *watched
//! columns*. A column left out is unknown in the change set, which over-invalidates
//! but is never wrong. Only columns whose values compare the same as JSON text and as
//! SQL values are sent: `smallint`, `integer`, `bigint`, `text`, `varchar`, `boolean`.
//! Others (`uuid`, whose text case may differ from what the app binds; `timestamp`,
//! whose JSON text differs from its SQL text; `char(n)`, padded; floats) are left out
//! (listed in [`FeedTable::skipped_columns`]). Re-run `install` after a schema change.
//!
//! # Transactions
//!
//! `NOTIFY` is transactional: the notification is delivered only when the writing
//! transaction commits, and never if it rolls back. So an external write is seen
//! strictly after its commit, like an intercepted one, and the engine's race guard
//! covers reads that overlap it. (PostgreSQL serialises the commits of transactions
//! that sent notifications — a known cost of `NOTIFY` on write-heavy databases.)
//! Identical payloads within one transaction are delivered once.
//!
//! # The app's own writes
//!
//! Writes sent through [`ReactiveDb`] were already intercepted and invalidated; their
//! notifications are skipped when the session's `application_name` is the app's,
//! unless the database may have changed the row on behalf of the app's statement (the
//! interceptor did not see such rows): a trigger at depth > 1, or a table that is the
//! child of a cascading foreign key or in a database with triggers of its own
//! ([`FeedTable::changed_on_behalf`]; PostgreSQL fires a cascade's triggers at the
//! depth of the statement that caused it).
//! Give the app's pool one in its URL, `postgres://.../app?application_name=my-app`:
//! [`PgChangeFeed::install`] reads it from the database's URL (or set it with
//! [`FeedConfig::own_application_name`]). Without one, the app's own writes are
//! applied twice (harmless: a second invalidation, nothing is missed). Consequences:
//!
//! - statements sent through [`ReactiveDb::pool`] (which bypass interception) carry the
//!   same name and are skipped too: use a pool with another `application_name` for
//!   such writes, or write through `ReactiveDb`;
//! - several app instances: with a shared cache (Redis store) they may share one name
//!   (the writing instance invalidated the shared store); with per-instance memory
//!   caches, give each instance its own name so that each one's feed applies the
//!   others' writes.
//!
//! # Reconnection
//!
//! The listener has its own connection (`application_name` =
//! [`DEFAULT_LISTENER_APPLICATION_NAME`] unless configured). Notifications sent while it
//! is not listening are lost, so after every (re)subscription — including the first —
//! the feed's tables are invalidated wholesale, *after* `LISTEN` is active again (no
//! gap). Failed connections are retried with exponential backoff.

mod config;
mod install;
mod listen;
mod payload;
mod triggers;

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::ReactiveDb;
use crate::db::Backend;
use crate::types::ChangeSet;

pub use config::FeedConfig;
pub use payload::{FeedNotification, parse_payload};

/// The channel notifications are sent on unless configured.
pub const DEFAULT_CHANNEL: &str = "reactive_changes";

/// The `application_name` of the listener's connection unless configured.
pub const DEFAULT_LISTENER_APPLICATION_NAME: &str = "reactive-feed";

/// One watched table, as installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedTable {
    /// The name change sets use (the last part, lower-cased, as the SQL analysis names tables).
    pub name: String,
    /// The table as PostgreSQL names it from the install's search path (`agent`, `app."Agent"`).
    pub relation: String,
    /// Key columns the trigger sends.
    pub key_columns: Vec<String>,
    /// Requested key columns not sent (missing, or of a type without a reliable key form).
    pub skipped_columns: Vec<String>,
    /// The database may change this table's rows on behalf of another statement (it is
    /// the child of a foreign key with a cascading or `SET NULL/DEFAULT` action, or the
    /// database has triggers of its own): notifications of the app's own writes to it
    /// are applied too (the interceptor did not see those rows; a row the app wrote
    /// itself is then invalidated twice), and not skipped.
    pub changed_on_behalf: bool,
}

/// A PostgreSQL change feed: installed triggers plus the settings of the listener.
/// Start it with [`PgChangeFeed::spawn`] (or [`super::spawn`] / [`super::run`]).
#[derive(Debug, Clone)]
pub struct PgChangeFeed {
    tables: Vec<FeedTable>,
    channel: String,
    own_application_name: Option<String>,
    listener_options: PgConnectOptions,
    reconnect_delay: Duration,
    max_reconnect_delay: Duration,
}

impl PgChangeFeed {
    /// The watched tables, as installed.
    pub fn tables(&self) -> &[FeedTable] {
        &self.tables
    }

    /// The notification channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The `application_name` whose notifications are skipped (the app's own writes).
    pub fn own_application_name(&self) -> Option<&str> {
        self.own_application_name.as_deref()
    }

    /// Starts listening in a background task that applies every change to `db`.
    pub fn spawn<DB: Backend>(self, db: ReactiveDb<DB>) -> super::FeedHandle {
        super::spawn(self, db)
    }

    /// Every row of every watched table.
    fn wholesale(&self) -> ChangeSet {
        ChangeSet::tables(self.tables.iter().map(|t| t.name.as_str()))
    }
}
