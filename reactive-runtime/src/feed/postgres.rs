//! [`PgChangeFeed`]: PostgreSQL triggers + `LISTEN`/`NOTIFY` as a [`ChangeSource`].
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
//! The listener turns it into one [`RowChange`] for the old row and one for the new
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

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use reactive_codegen::model::FunctionModel;
use reactive_codegen::sql::{Dialect, RowFilter};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::{ChangeSource, FeedError, StatsSink};
use crate::ReactiveDb;
use crate::db::Backend;
use crate::types::{ChangeSet, KeyValue, RelationEdge, RowChange};

/// The channel notifications are sent on unless configured.
pub const DEFAULT_CHANNEL: &str = "reactive_changes";

/// The `application_name` of the listener's connection unless configured.
pub const DEFAULT_LISTENER_APPLICATION_NAME: &str = "reactive-feed";

const FUNCTION: &str = "reactive_feed_notify";
const ROW_TRIGGER: &str = "reactive_feed_row";
const TRUNCATE_TRIGGER: &str = "reactive_feed_truncate";
/// Payloads larger than this are sent without key values (PostgreSQL's limit is 8000).
const MAX_PAYLOAD: usize = 7900;
/// Column types whose JSON text is the text the app binds and compares.
const KEY_TYPES: &[&str] = &["int2", "int4", "int8", "text", "varchar", "bool"];

/// What to install: tables (with explicit or derived key columns) and options.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    tables: Vec<(String, Option<Vec<String>>)>,
    channel: String,
    own_application_name: Option<Option<String>>,
    listener_application_name: String,
    reconnect_delay: Duration,
    max_reconnect_delay: Duration,
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
    /// columns (see the module docs).
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
    /// Creates or replaces the trigger function and the triggers of the configured
    /// tables (idempotent), and returns the feed, not yet listening.
    pub async fn install<DB: Backend>(
        db: &ReactiveDb<DB>,
        config: FeedConfig,
    ) -> Result<Self, FeedError> {
        let Some(options) = DB::pg_connect_options(db.pool()) else {
            return Err(FeedError::UnsupportedBackend(db.dialect()));
        };
        if config.tables.is_empty() {
            return Err(FeedError::NoTables);
        }
        if !valid_channel(&config.channel) {
            return Err(FeedError::InvalidChannel(config.channel));
        }
        let own_application_name = match config.own_application_name {
            Some(name) => name,
            None => options.get_application_name().map(str::to_owned),
        }
        .filter(|n| !n.is_empty());
        if own_application_name.is_none() {
            tracing::warn!(
                "change feed: the app's connections have no application_name; its own writes \
                 will be invalidated twice (add ?application_name=... to the database URL)"
            );
        }
        let listener_options = options
            .clone()
            .application_name(&config.listener_application_name);

        let models: Vec<&FunctionModel> = crate::registry::functions()
            .into_iter()
            .map(|d| d.model())
            .collect();
        let edges = db.engine().relations().edges();

        let mut conn = PgConnection::connect_with(&options).await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(hashtext('reactive_feed_install'))) s",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(function_sql()))
            .execute(&mut *tx)
            .await?;
        let mut tables = Vec::new();
        for (given, keys) in &config.tables {
            let table_error = |source| FeedError::Table {
                table: given.clone(),
                source,
            };
            let ident = sqlx::query(
                "SELECT $1::regclass::text AS relation, lower(c.relname::text) AS name \
                 FROM pg_catalog.pg_class c WHERE c.oid = $1::regclass",
            )
            .bind(given.clone())
            .fetch_one(&mut *tx)
            .await
            .map_err(table_error)?;
            let relation: String = ident.try_get("relation")?;
            let name: String = ident.try_get("name")?;
            let columns = sqlx::query(
                "SELECT a.attname::text AS name, t.typname::text AS ty \
                 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                 WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
            )
            .bind(given.clone())
            .fetch_all(&mut *tx)
            .await
            .map_err(table_error)?;
            let wanted = match keys {
                Some(keys) => keys.iter().cloned().collect(),
                None => derived_key_columns(&name, models.iter().copied(), edges),
            };
            let mut key_columns = Vec::new();
            let mut found = BTreeSet::new();
            for row in &columns {
                let column: String = row.try_get("name")?;
                let ty: String = row.try_get("ty")?;
                if wanted.contains(&column.to_lowercase()) {
                    found.insert(column.to_lowercase());
                    if KEY_TYPES.contains(&ty.as_str()) {
                        key_columns.push(column);
                    }
                }
            }
            let skipped_columns: Vec<String> = wanted
                .iter()
                .filter(|w| {
                    !found.contains(*w) || !key_columns.iter().any(|k| k.to_lowercase() == **w)
                })
                .cloned()
                .collect();
            if !skipped_columns.is_empty() {
                tracing::info!(table = %name, skipped = ?skipped_columns, "change feed: key columns not sent (missing or no reliable key form)");
            }
            for sql in trigger_sql(&relation, &name, &config.channel, &key_columns) {
                sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
            }
            // PostgreSQL fires a cascade's row triggers at the depth of the statement
            // that caused it, so a notification cannot tell them from the app's own rows.
            let changed_on_behalf: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint \
                   WHERE conrelid = $1::regclass AND contype = 'f' \
                   AND (confdeltype IN ('c', 'n', 'd') OR confupdtype IN ('c', 'n', 'd'))) \
                 OR EXISTS (SELECT 1 FROM pg_catalog.pg_trigger \
                   WHERE NOT tgisinternal AND tgname NOT IN ($2, $3))",
            )
            .bind(given.clone())
            .bind(ROW_TRIGGER)
            .bind(TRUNCATE_TRIGGER)
            .fetch_one(&mut *tx)
            .await
            .map_err(table_error)?;
            tables.push(FeedTable {
                name,
                relation,
                key_columns,
                skipped_columns,
                changed_on_behalf,
            });
        }
        tx.commit().await?;
        tracing::info!(tables = ?tables.iter().map(|t| &t.name).collect::<Vec<_>>(), channel = %config.channel, "change feed installed");
        Ok(Self {
            tables,
            channel: config.channel,
            own_application_name,
            listener_options,
            reconnect_delay: config.reconnect_delay,
            max_reconnect_delay: config.max_reconnect_delay,
        })
    }

    /// Drops the feed's triggers from its tables (the function stays: other feeds may use it).
    pub async fn uninstall<DB: Backend>(&self, db: &ReactiveDb<DB>) -> Result<(), FeedError> {
        let Some(options) = DB::pg_connect_options(db.pool()) else {
            return Err(FeedError::UnsupportedBackend(db.dialect()));
        };
        let mut conn = PgConnection::connect_with(&options).await?;
        let mut tx = conn.begin().await?;
        for table in &self.tables {
            for trigger in [ROW_TRIGGER, TRUNCATE_TRIGGER] {
                sqlx::query(AssertSqlSafe(format!(
                    "DROP TRIGGER IF EXISTS {trigger} ON {}",
                    table.relation
                )))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

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

/// One notification of the trigger, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedNotification {
    /// The table (lower-cased, unqualified).
    pub table: String,
    /// `INSERT`, `UPDATE`, `DELETE` or `TRUNCATE`.
    pub operation: String,
    /// The writing session's `application_name` (`None` when empty).
    pub application_name: Option<String>,
    /// `true` when the payload carried no key values (truncate, or too large).
    pub whole_table: bool,
    /// `pg_trigger_depth()` in the trigger: 1 for a row the writing statement changed
    /// itself, more for a row changed by a cascade or another trigger on its behalf.
    pub depth: u32,
    /// The old row and the new row as row changes of the table.
    pub changes: ChangeSet,
}

#[derive(Deserialize)]
struct Payload {
    t: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    app: Option<String>,
    /// Absent in payloads of a trigger function installed by an older version: 1.
    #[serde(default = "direct")]
    d: u32,
    #[serde(default)]
    old: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    new: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Reads a payload sent by the trigger (see the module docs for its shape). Key values
/// without a key form (arrays, objects) are left unknown.
pub fn parse_payload(payload: &str) -> Result<FeedNotification, serde_json::Error> {
    let p: Payload = serde_json::from_str(payload)?;
    let table = p.t.to_lowercase();
    let mut changes = ChangeSet::empty();
    let whole_table = p.old.is_none() && p.new.is_none();
    if whole_table {
        changes.push_row(&table, RowChange::whole());
    }
    for row in [p.old, p.new].into_iter().flatten() {
        let mut change = RowChange::whole();
        for (column, value) in &row {
            if let Some(key) = KeyValue::from_json(value, Dialect::Postgres) {
                change = change.with(column, key);
            }
        }
        changes.push_row(&table, change);
    }
    Ok(FeedNotification {
        table,
        operation: p.op,
        application_name: p.app.filter(|a| !a.is_empty()),
        whole_table,
        depth: p.d,
        changes,
    })
}

fn direct() -> u32 {
    1
}

/// `id`, the columns registered functions filter `table` on, and the source columns of
/// relation edges from `table`.
fn derived_key_columns<'a>(
    table: &str,
    models: impl Iterator<Item = &'a FunctionModel>,
    edges: &[RelationEdge],
) -> BTreeSet<String> {
    let mut out = BTreeSet::from(["id".to_owned()]);
    for model in models {
        for dep in model.dependencies.iter().filter(|d| d.table == table) {
            out.extend(dep.keys.iter().map(|k| k.column.to_lowercase()));
        }
        for st in &model.statements {
            let reads = st.analysis.reads.iter().map(|r| (&r.table, &r.filter));
            let writes = st.analysis.writes.iter().map(|w| (&w.table, &w.filter));
            for (t, filter) in reads.chain(writes) {
                if let (true, RowFilter::Keys(preds)) = (t == table, filter) {
                    out.extend(preds.iter().map(|p| p.column.to_lowercase()));
                }
            }
        }
    }
    for edge in edges.iter().filter(|e| e.from_table == table) {
        out.insert(edge.from_column.to_lowercase());
    }
    out
}

fn valid_channel(channel: &str) -> bool {
    (1..=63).contains(&channel.len())
        && channel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The trigger function. Arguments: the channel, the table's name for change sets
/// (not `TG_TABLE_NAME`, which names the partition when the trigger is on a partitioned
/// table), then the key column names.
fn function_sql() -> String {
    format!(
        r#"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $reactive$
DECLARE
  keys text[];
  head jsonb;
  body jsonb;
  msg text;
BEGIN
  keys := coalesce(TG_ARGV[2:], ARRAY[]::text[]);
  head := jsonb_build_object('t', TG_ARGV[1], 'op', TG_OP,
                             'app', coalesce(current_setting('application_name', true), ''),
                             'd', pg_trigger_depth());
  body := head;
  IF TG_LEVEL = 'ROW' THEN
    IF TG_OP <> 'INSERT' THEN
      body := body || jsonb_build_object('old', (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{{}}'::jsonb)
                                                 FROM jsonb_each(to_jsonb(OLD)) e WHERE e.key = ANY(keys)));
    END IF;
    IF TG_OP <> 'DELETE' THEN
      body := body || jsonb_build_object('new', (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{{}}'::jsonb)
                                                 FROM jsonb_each(to_jsonb(NEW)) e WHERE e.key = ANY(keys)));
    END IF;
  END IF;
  msg := body::text;
  IF octet_length(msg) > {MAX_PAYLOAD} THEN
    msg := head::text;
  END IF;
  PERFORM pg_notify(TG_ARGV[0], msg);
  RETURN NULL;
END
$reactive$"#
    )
}

/// `DROP TRIGGER IF EXISTS` + `CREATE TRIGGER` for the row and truncate triggers.
fn trigger_sql(relation: &str, name: &str, channel: &str, key_columns: &[String]) -> Vec<String> {
    let head = format!("{}, {}", quote_literal(channel), quote_literal(name));
    let mut args = vec![head.clone()];
    args.extend(key_columns.iter().map(|c| quote_literal(c)));
    let args = args.join(", ");
    vec![
        format!("DROP TRIGGER IF EXISTS {ROW_TRIGGER} ON {relation}"),
        format!(
            "CREATE TRIGGER {ROW_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {relation} \
             FOR EACH ROW EXECUTE FUNCTION {FUNCTION}({args})"
        ),
        format!("DROP TRIGGER IF EXISTS {TRUNCATE_TRIGGER} ON {relation}"),
        format!(
            "CREATE TRIGGER {TRUNCATE_TRIGGER} AFTER TRUNCATE ON {relation} \
             FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}({head})"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Conjunction, ReadSet};

    fn kv(s: &str) -> KeyValue {
        KeyValue::from_str(s, Dialect::Postgres)
    }

    #[test]
    fn update_payload_gives_old_and_new_rows() {
        let n = parse_payload(
            r#"{"t":"Agent","op":"UPDATE","app":"psql","old":{"id":1,"organization_id":1},"new":{"id":1,"organization_id":2}}"#,
        )
        .unwrap();
        assert_eq!(n.table, "agent");
        assert_eq!(n.application_name.as_deref(), Some("psql"));
        assert!(!n.whole_table);
        let rows = n.changes.rows("agent").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].values("organization_id").unwrap(),
            &BTreeSet::from([kv("1")])
        );
        assert_eq!(
            rows[1].values("organization_id").unwrap(),
            &BTreeSet::from([kv("2")])
        );
        assert_eq!(rows[1].values("id").unwrap(), &BTreeSet::from([kv("1")]));
    }

    #[test]
    fn payload_without_values_is_the_whole_table() {
        let n = parse_payload(r#"{"t":"agent","op":"TRUNCATE","app":""}"#).unwrap();
        assert!(n.whole_table);
        assert_eq!(n.application_name, None);
        assert_eq!(n.changes.rows("agent").unwrap(), &[RowChange::whole()]);
    }

    #[test]
    fn values_without_key_form_are_unknown() {
        let n =
            parse_payload(r#"{"t":"agent","op":"INSERT","new":{"id":5,"tags":[1,2]}}"#).unwrap();
        let rows = n.changes.rows("agent").unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].values("tags").is_none());
        assert_eq!(rows[0].values("id").unwrap(), &BTreeSet::from([kv("5")]));
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(parse_payload("not json").is_err());
        assert!(parse_payload(r#"{"op":"INSERT"}"#).is_err());
    }

    #[test]
    fn separate_old_and_new_rows_do_not_cross_match() {
        // A query for (org 1, name "b") is not affected by a row moving from
        // (org 1, "a") to (org 2, "b").
        let n = parse_payload(
            r#"{"t":"agent","op":"UPDATE","old":{"organization_id":1,"name":"a"},"new":{"organization_id":2,"name":"b"}}"#,
        )
        .unwrap();
        let read = ReadSet::empty().with(
            "agent",
            Conjunction::whole()
                .with("organization_id", kv("1"))
                .with("name", kv("b")),
        );
        assert!(!read.is_affected_by(&n.changes));
        let org2 = ReadSet::empty().with(
            "agent",
            Conjunction::whole().with("organization_id", kv("2")),
        );
        assert!(org2.is_affected_by(&n.changes));
    }

    #[test]
    fn derived_keys_include_id_filters_and_relation_sources() {
        use reactive_codegen::model::{FunctionKind, KeyDependency, TableDependency};
        let model = FunctionModel {
            name: "q".into(),
            rust_name: "q".into(),
            kind: FunctionKind::Query,
            requires_ack: false,
            dialect: Dialect::Postgres,
            bindings: vec![],
            dependencies: vec![TableDependency {
                table: "agent".into(),
                keys: vec![KeyDependency {
                    column: "Organization_Id".into(),
                    values: vec![],
                }],
            }],
            invalidates: vec![],
            statements: vec![],
            calls: vec![],
        };
        let edges = [
            RelationEdge::new("agent", "message", Some("from_agent_id")),
            RelationEdge::new("message", "agent", None),
        ];
        let keys = derived_key_columns("agent", [&model].into_iter(), &edges);
        assert_eq!(
            keys,
            BTreeSet::from(["id".to_owned(), "organization_id".to_owned()])
        );
        let keys = derived_key_columns("message", [&model].into_iter(), &edges);
        assert_eq!(keys, BTreeSet::from(["id".to_owned()]));
    }

    #[test]
    fn channel_names_are_plain_identifiers() {
        assert!(valid_channel("reactive_changes"));
        assert!(!valid_channel(""));
        assert!(!valid_channel("a\"b"));
        assert!(!valid_channel(&"x".repeat(64)));
    }

    #[test]
    fn trigger_arguments_are_quoted() {
        let sql = trigger_sql("app.\"Agent\"", "agent", "ch", &["it's".to_owned()]);
        assert!(sql[1].contains("ON app.\"Agent\" FOR EACH ROW"));
        assert!(sql[1].contains("reactive_feed_notify('ch', 'agent', 'it''s')"));
        assert!(sql[3].contains("reactive_feed_notify('ch', 'agent')"));
        assert!(sql[3].contains("AFTER TRUNCATE"));
    }
}
