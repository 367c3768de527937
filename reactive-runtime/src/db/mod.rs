//! [`ReactiveDb`]: the database handle reactive functions receive. It wraps a native
//! sqlx pool (`PgPool`, `MySqlPool`, `SqlitePool`, or an `AnyPool` whose backend the URL
//! chooses) and intercepts every statement sent through it. Handlers use every type
//! and macro sqlx supports for that database, `query_as!` included.
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")]
//! # async fn demo() -> Result<(), sqlx::Error> {
//! use reactive_runtime::ReactiveDb;
//! let pool = sqlx::SqlitePool::connect("sqlite://app.db?mode=rwc").await?;
//! let db = ReactiveDb::new(pool).await?;
//! let rows = sqlx::query("SELECT id FROM agent WHERE organization_id = $1").bind(7_i64).fetch_all(&db).await?;
//! # let _ = rows; Ok(()) }
//! ```
//!
//! # Native drivers and `Any`
//!
//! `ReactiveDb<Postgres>` (or `MySql`, `Sqlite`) is what an application normally uses:
//! its handlers are ordinary sqlx code for that database. `ReactiveDb<Any>`
//! ([`ReactiveDb::connect`]) picks the backend from a URL at run time, for an
//! application that runs one binary on several databases (the TeamHub example); it is
//! limited to the types sqlx's `Any` driver supports (integers, floats, text, blobs,
//! booleans). Native argument buffers are opaque, so for native drivers the key values
//! of a statement come from the function model's bindings (the input fields the macro
//! traced), from the pre-read and from `RETURNING`; a parameter known from none of them
//! is unknown (wider invalidation). `Any` reads the values actually bound.
//!
//! # Key values and column types
//!
//! A key value is compared in a canonical form that depends on the column's type, which
//! the handle reads from the database's catalog ([`catalog`](self) module): integers,
//! booleans, uuids (lower-case, hyphenated) and plain text columns are keys; columns of
//! every other type (timestamps, dates, numerics, floats, JSON, arrays, enums, `bpchar`,
//! `citext`, nondeterministic collations; on MySQL, text values that are not printable
//! ASCII) are treated as unknown in read sets and change sets, because the text form a
//! value has in the input (serde) and in the database need not compare equal where the
//! database says they are equal. The catalog is read when the handle is created and again
//! when a statement names a table it does not know (at most once a second per table) or
//! after a DDL statement sent through the handle.
//!
//! # What happens to a statement
//!
//! 1. Its SQL text is looked up in the active call's function model (a hash lookup, no
//!    parsing); otherwise it is parsed once with `reactive_codegen::sql::analyze` and
//!    memoized by text (bounded, [`DbOptions::memo_capacity`]).
//! 2. Parameter values are those actually bound where the driver shows them
//!    (`AnyArguments` exposes its buffer), else the call's bindings (see above).
//! 3. A read through the handle a call handed to its handler (or a clone of it, or a
//!    transaction begun from it) is recorded in the call's read set.
//! 4. A write (or a statement of unknown effect) runs, then its change set is applied
//!    to the [`Engine`] — right away for autocommit statements, at commit for
//!    [`ReactiveTx`] — and the [`InvalidationListener`] is awaited before the write
//!    returns. A statement of unknown effect (unparseable, DDL, several statements)
//!    changes *everything*. From sending a statement that may commit to the end of
//!    its invalidation, the work runs in a task of its own: a caller dropped midway
//!    (a client that went away) cannot leave a committed write uninvalidated.
//!
//! # Where the code is
//!
//! A statement enters through the one `Executor` adapter (`executor`), which knows two
//! connection sources: the pool (autocommit) and a transaction's connection. It is
//! intercepted (`intercept`: analysis, refusal of a write inside a query, recording of
//! its reads in the call's scope), then runs as a read (`read`) or through the write
//! protocol (`write`): plan → pre-read → execute → finish, over the same two sources
//! (`write::target`). Everything from sending a write that may commit to the end of its
//! invalidation runs in a task of its own (`detach`).
//!
//! # Old and new key values
//!
//! A change set lists, per column, the values the affected rows had before *or* after
//! the write; an absent column is unknown and matches every query. From the statement
//! alone: `INSERT` gives the inserted values; `UPDATE`/`DELETE` give their `WHERE`
//! key values, and an `UPDATE` whose `WHERE` and `SET` name the same column gives both.
//! For the other columns some query filters on (the "watched" columns: from registered
//! function models, relation sources' `id`, and reads seen at run time), a single-table
//! `UPDATE`/`DELETE` is preceded by a **pre-read** in the same transaction:
//! `SELECT <watched columns> FROM <table> WHERE <the statement's own condition>` with the
//! statement's own argument values, which gives the affected rows' old values (an agent
//! moving from organization 1 to 2 invalidates the queries of both). Per backend:
//!
//! | backend | autocommit write | inside `ReactiveTx` |
//! |---|---|---|
//! | SQLite | `BEGIN IMMEDIATE` (write lock first), pre-read, write, `COMMIT` | pre-read on the transaction's connection |
//! | PostgreSQL | `BEGIN`, pre-read `FOR UPDATE`, write, `COMMIT` | pre-read `FOR UPDATE` inside `SAVEPOINT` (a failed pre-read can't abort the user's transaction) |
//! | MySQL/MariaDB | `BEGIN`, pre-read `FOR UPDATE`, write, `COMMIT` | pre-read `FOR UPDATE` |
//!
//! # Rows reached through relation edges
//!
//! A `DELETE` (or an `UPDATE` setting a relation source's key column) of a table some
//! relation edge starts from (`agent(message.from_agent_id)`) also changes, through the
//! database's `ON DELETE/UPDATE` actions, the rows referencing the written ones. Right
//! after the pre-read above (which then always runs, to lock and count the written
//! rows), one **cascade pre-read** per such edge reads the watched columns of those
//! rows in the same transaction: `SELECT <watched columns of message> FROM message
//! WHERE from_agent_id IN (SELECT id FROM agent WHERE <the statement's condition>)`
//! (`FOR UPDATE` on PostgreSQL and MySQL, inside a savepoint on PostgreSQL). The
//! relation-derived change then lists those rows with their real values (deleting an
//! agent of organization 1 leaves organization 2's `message` queries cached) and marks
//! the edge [`RowChange::resolved`](crate::types::RowChange::resolved). When a cascade
//! pre-read fails, returns more than 10 000 rows, or the write's own pre-read is not
//! used (see below), the edge expands as before: target rows known by the referencing
//! column alone (wider, never stale). Under `REPEATABLE READ`/`SERIALIZABLE`
//! transactions chosen by the user on PostgreSQL, rows committed by others after the
//! transaction's snapshot are not seen by the cascade pre-read.
//!
//! The pre-read's rows are used only if their count equals the rows the write
//! affected (rows inserted concurrently between the two would otherwise be missed);
//! on a mismatch, a failed pre-read, a value that has no key form (blobs), or a
//! statement shape where the condition alone does not select the affected rows
//! (`UPDATE ... FROM`, `DELETE ... USING`, joins, `ORDER BY`/`LIMIT`, `WITH`, named
//! parameters; on PostgreSQL and MySQL also a subquery with a limit in the condition,
//! whose rows the pre-read does not lock: under READ COMMITTED the write could select as
//! many *other* rows, and the count check would pass) those columns stay unknown. A `SET` column whose new value is an
//! expression is unknown. Upserts change their whole table. The rows of an
//! `INSERT ... RETURNING` (PostgreSQL, SQLite ≥ 3.35, MariaDB ≥ 10.5) give the watched
//! columns the statement leaves unknown, such as generated ids (each inserted row
//! change takes the values of all returned rows). Disable pre-reads with
//! [`DbOptions::read_old_values`] (columns then stay unknown: more invalidation, one
//! statement fewer per write).
//!
//! # A transaction the database rolled back by itself
//!
//! After a deadlock (SQLSTATE `40001`) MySQL/MariaDB roll the whole transaction back
//! and run whatever follows on that connection in autocommit mode: a later statement
//! would commit on its own while its change set waits for a commit that never comes,
//! and the cache would stay stale. So once a statement of a [`ReactiveTx`] (or one of
//! its pre-reads) fails that way, every later statement and the commit fail with
//! [`TransactionLost`]: roll back and retry. An autocommit write whose own pre-read
//! transaction deadlocks runs again on its own, with old values unknown.
//!
//! # Limitations
//!
//! - `ReactiveDb<Any>`: column types are those the sqlx `Any` driver supports
//!   (integers, floats, text, blobs, booleans).
//! - MySQL: SQL written with `$N` placeholders is rewritten to `?` when each `$N`
//!   appears once in ascending order (memoized); other uses are a clear
//!   [`PlaceholderError`] (as `sqlx::Error::Configuration`).
//! - [`ReactiveDb::pool`] and `&mut *transaction` of a plain sqlx transaction bypass
//!   interception, as do writes by other programs.
//! - Rows changed by triggers or `ON DELETE/UPDATE CASCADE` are not seen by the
//!   interceptor: declare them as relations (`#[derive(Relations)]`) so the change set
//!   expands to them.
//! - `INSERT` without an explicit key (generated ids) and without `RETURNING` that
//!   key: that column is unknown in the change set (the whole table for queries keyed
//!   on it). The runtime does not add `RETURNING` to a statement (it would change what
//!   the caller fetches), and `last_insert_id` is not used because the generated
//!   column's name is not known.
//! - A handler's call (read recording, function model, origin of its writes) travels
//!   with the handle it received, its clones and its transactions, also into tasks it
//!   spawns. Statements sent through another handle (one not derived from it) are not
//!   part of its read set, and their writes are made for the task's
//!   [`with_principal`](crate::router::with_principal) origin, if any.

mod backend;
mod call;
pub(crate) mod catalog;
mod changes;
mod detach;
mod executor;
mod intercept;
pub use intercept::WriteInQuery;
pub(crate) mod origin;
mod read;
mod rewrite;
mod scope;
mod shared;
mod statement;
mod tx;
mod values;
mod write;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use reactive_codegen::sql::Dialect;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Pool};

pub use backend::Backend;
use shared::DbCounters;
pub(crate) use shared::DbShared;

pub use crate::error::TransactionLost;
pub use crate::seams::InvalidationListener;
pub use call::{CallError, CallOutput, REFUSED_RETRIES};
pub use rewrite::PlaceholderError;
pub use tx::{ReactiveTx, ReactiveTxConn};

use crate::cache::memory::MemoryStore;
use crate::engine::{Engine, EngineStats};
use crate::seams::{CallOrigin, Principal};
use crate::types::{ChangeSet, InvalidationReport, ReadSet};
use scope::CallScope;
use statement::Memo;

/// Longest key value a change set keeps on its way into the engine (bytes); a longer
/// value makes its column unknown for that row, which matches every query (wider, never
/// stale). A write of a 500 KB text would otherwise be held whole by the engine's ring
/// of recent changes, the invalidation report and the message to other instances.
pub const MAX_CHANGE_VALUE_LEN: usize = 1024;

/// The SQLite database [`ReactiveDb::connect_default`] opens (created if missing).
pub const DEFAULT_URL: &str = "sqlite://reactive.db?mode=rwc";

/// Settings of a [`ReactiveDb`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbOptions {
    /// How many run-time-parsed statements are memoized (default 10 000).
    pub memo_capacity: u64,
    /// Read the old values of watched key columns before an `UPDATE`/`DELETE` (default
    /// `true`; see the module docs).
    pub read_old_values: bool,
    /// Pool size (default: sqlx's; 1 for in-memory SQLite, where each connection would
    /// be a separate database).
    pub max_connections: Option<u32>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            memo_capacity: 10_000,
            read_old_values: true,
            max_connections: None,
        }
    }
}

/// Counters of the interception layer, with the engine's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbStats {
    /// Cache and invalidation counters of the engine.
    pub engine: EngineStats,
    /// Statements intercepted.
    pub statements: u64,
    /// Statements found in the active call's function model (no parsing).
    pub model_statements: u64,
    /// Statements found in the run-time memo.
    pub memo_hits: u64,
    /// Statements parsed at run time (memo misses).
    pub parsed_at_runtime: u64,
    /// Change sets applied (autocommit writes and committed transactions).
    pub changes_applied: u64,
    /// Pre-reads of old key values run.
    pub pre_reads: u64,
    /// Pre-reads that failed or could not be used (values left unknown).
    pub pre_read_fallbacks: u64,
}

/// The database handle: a sqlx executor (`fetch_all(&db)`, `query_as!(..).fetch_all(db)`)
/// that intercepts every statement, plus the cache engine. Cheap to clone.
///
/// The handle a reactive function's handler receives also carries its call: the
/// function model its statements are looked up in, the read set they are recorded in,
/// and the origin (principal) its writes are made for. Clones and transactions begun
/// from it carry the same call, so a task the handler spawns with its handle keeps
/// them (a task-local would not cross `tokio::spawn`).
pub struct ReactiveDb<DB: Backend> {
    inner: Arc<DbShared>,
    pool: Pool<DB>,
    /// The call this handle was handed to, if any.
    scope: Option<Arc<CallScope>>,
}

impl<DB: Backend> Clone for ReactiveDb<DB> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            pool: self.pool.clone(),
            scope: self.scope.clone(),
        }
    }
}

impl<DB: Backend> std::fmt::Debug for ReactiveDb<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactiveDb")
            .field("dialect", &self.inner.dialect)
            .finish_non_exhaustive()
    }
}

/// The dialect of a database URL (`sqlite:`, `postgres://`/`postgresql://`, `mysql://`/`mariadb://`).
pub fn dialect_of_url(url: &str) -> Option<Dialect> {
    let scheme = url.split(':').next()?.to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Some(Dialect::Sqlite),
        "postgres" | "postgresql" => Some(Dialect::Postgres),
        "mysql" | "mariadb" => Some(Dialect::MySql),
        _ => None,
    }
}

fn unsupported(url: &str) -> sqlx::Error {
    let scheme = url.split(':').next().unwrap_or_default();
    sqlx::Error::Configuration(
        format!(
            "unsupported database URL scheme `{scheme}` (use sqlite:, postgres:// or mysql://)"
        )
        .into(),
    )
}

impl ReactiveDb<Any> {
    /// Connects to `url` through sqlx's `Any` driver: the backend follows the scheme
    /// (its cargo feature must be on). For an application on one database, prefer its
    /// native pool and [`ReactiveDb::new`].
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        Self::connect_with(url, DbOptions::default()).await
    }

    /// Connects to the default SQLite file, [`DEFAULT_URL`].
    pub async fn connect_default() -> Result<Self, sqlx::Error> {
        Self::connect(DEFAULT_URL).await
    }

    /// Connects with explicit settings.
    pub async fn connect_with(url: &str, options: DbOptions) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let dialect = dialect_of_url(url).ok_or_else(|| unsupported(url))?;
        let mut pool = AnyPoolOptions::new();
        let in_memory =
            dialect == Dialect::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        match options.max_connections {
            Some(n) => pool = pool.max_connections(n),
            None if in_memory => pool = pool.max_connections(1),
            None => {}
        }
        let pool: AnyPool = pool.connect(url).await?;
        let db = Self::build(pool, dialect, options, None);
        db.inner.catalog.refresh(&db.pool, dialect).await;
        Ok(db)
    }
}

impl<DB: Backend> ReactiveDb<DB> {
    /// Wraps a pool and reads the column types of its database (see the module docs).
    pub async fn new(pool: Pool<DB>) -> Result<Self, sqlx::Error> {
        let db = Self::from_pool(pool)?;
        db.inner.catalog.refresh(&db.pool, db.inner.dialect).await;
        Ok(db)
    }

    /// Wraps a pool without reading the catalog now (it is read on the first statement
    /// that needs it).
    pub fn from_pool(pool: Pool<DB>) -> Result<Self, sqlx::Error> {
        let dialect = DB::dialect_of(&pool).ok_or_else(|| {
            sqlx::Error::Configuration(
                "unsupported database (use sqlite:, postgres:// or mysql://)".into(),
            )
        })?;
        Ok(Self::build(pool, dialect, DbOptions::default(), None))
    }

    /// Uses this engine (e.g. over a Redis store) instead of a fresh in-memory one.
    /// Returns a handle sharing the pool; other clones keep the old engine.
    pub fn with_engine(&self, engine: Engine) -> Self {
        let inner = &self.inner;
        let db = Self::build(
            self.pool.clone(),
            inner.dialect,
            inner.options.clone(),
            Some(engine),
        );
        db.inner.catalog.copy_from(&inner.catalog);
        db
    }

    fn build(pool: Pool<DB>, dialect: Dialect, options: DbOptions, engine: Option<Engine>) -> Self {
        let engine = engine.unwrap_or_else(|| Engine::new(Arc::new(MemoryStore::default())));
        let watched: HashMap<String, BTreeSet<String>> = HashMap::new();
        let catalog = catalog::Catalog::default();
        catalog.attach(engine.clone());
        let inner = DbShared {
            memo: Memo::new(dialect, options.memo_capacity),
            dialect,
            models: Mutex::new(HashMap::new()),
            watched: RwLock::new(watched),
            options,
            counters: DbCounters::default(),
            engine,
            listener: RwLock::new(None),
            catalog,
            detached: detach::InFlight::default(),
        };
        for def in crate::registry::functions() {
            inner.watch_model(def.model());
        }
        Self {
            inner: Arc::new(inner),
            pool,
            scope: None,
        }
    }

    /// This handle for one run of a reactive function's handler: its statements run
    /// in `scope`.
    fn in_call(&self, scope: Arc<CallScope>) -> Self {
        Self {
            inner: self.inner.clone(),
            pool: self.pool.clone(),
            scope: Some(scope),
        }
    }

    /// Who the writes made through this handle are made for: the origin of the call
    /// this handle was handed to (also in its clones, its transactions and the tasks
    /// they are moved to), else the task's (see
    /// [`with_principal`](crate::router::with_principal)), else `None`.
    pub fn origin(&self) -> Option<CallOrigin> {
        self.scope
            .as_ref()
            .and_then(|s| s.origin.clone())
            .or_else(origin::current)
    }

    /// The principal of [`ReactiveDb::origin`]: inside a handler and the tasks it
    /// spawns with its handle, the caller. Unlike
    /// [`current_principal`](crate::router::current_principal), it does not depend on
    /// the task it is asked in.
    pub fn principal(&self) -> Option<Principal> {
        self.origin().map(|o| o.principal().clone())
    }

    /// Waits until every write that may have committed through this handle has finished
    /// its invalidation, also those whose callers were dropped (their invalidation runs
    /// on in a task of its own). For a graceful shutdown (stop taking requests, then
    /// wait for this) and for tests that must know no invalidation is still in flight.
    pub async fn settled(&self) {
        self.inner.detached.settled().await;
    }

    /// The underlying native pool. Statements sent through it **bypass interception**:
    /// no read is recorded and no write invalidates anything.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Reads the column types of the database again (after migrations run through
    /// [`ReactiveDb::pool`], say); see the module docs.
    pub async fn refresh_schema(&self) {
        self.inner
            .catalog
            .refresh(&self.pool, self.inner.dialect)
            .await;
    }

    /// The backend's SQL dialect.
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// The cache engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Installs the listener every invalidation is handed to (replacing any previous one).
    pub fn set_listener(&self, listener: Arc<dyn InvalidationListener>) {
        *self
            .inner
            .listener
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(listener);
    }

    /// Starts a transaction whose statements are intercepted and whose changes are
    /// applied at commit.
    pub async fn begin(&self) -> Result<ReactiveTx<DB>, sqlx::Error> {
        let tx = self.pool.begin().await?;
        Ok(ReactiveTx::new(ReactiveTxConn {
            inner: self.inner.clone(),
            pool: self.pool.clone(),
            scope: self.scope.clone(),
            tx: Some(tx),
            pending: Vec::new(),
            lost: false,
        }))
    }

    /// Applies a change set made outside this handle (e.g. by another service) and
    /// awaits the listener, as a write through the handle would.
    pub async fn invalidate(&self, changes: ChangeSet) -> Arc<InvalidationReport> {
        let tables: Vec<&str> = changes.tables.keys().map(String::as_str).collect();
        self.inner
            .catalog
            .ensure(&self.pool, self.inner.dialect, tables)
            .await;
        self.inner.apply(changes, self.origin()).await
    }

    /// The read set a call of `def` with these binding values is known to have before
    /// it runs (from the function model), with key values canonical for this backend and
    /// the columns' types. This is what selective delivery evaluates for a subscribed
    /// query key.
    pub async fn read_set(
        &self,
        def: &crate::registry::FunctionDef,
        bindings: &[serde_json::Value],
    ) -> ReadSet {
        self.ensure_schema(def.model()).await;
        self.read_set_now(def, bindings)
    }

    /// [`ReactiveDb::read_set`] with the column types known now.
    pub(crate) fn read_set_now(
        &self,
        def: &crate::registry::FunctionDef,
        bindings: &[serde_json::Value],
    ) -> ReadSet {
        let mut reads = ReadSet::from_model(&self.inner.model_index(def.model()).model, bindings);
        self.inner
            .catalog
            .refine_reads(&mut reads, self.inner.dialect);
        reads
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> DbStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DbStats {
            engine: self.inner.engine.stats(),
            statements: get(&c.statements),
            model_statements: get(&c.model_hits),
            memo_hits: get(&self.inner.memo.hits),
            parsed_at_runtime: get(&self.inner.memo.parsed),
            changes_applied: get(&c.changes_applied),
            pre_reads: get(&c.pre_reads),
            pre_read_fallbacks: get(&c.pre_read_fallbacks),
        }
    }
}
