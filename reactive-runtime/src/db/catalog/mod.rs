//! The column types of the database, and what they mean for key values.
//!
//! A read set's key values come from the input (their serde form) or SQL literals; a
//! change set's from the same places, from the pre-read and from `RETURNING` (the
//! database's text form). Two forms of one value must compare equal exactly when the
//! database says the values are equal, or a write could miss a cached read. That holds
//! for a few column types only, once values are put in a canonical form per type
//! ([`ColumnClass`]); every other column is *unknown* in read sets and change sets,
//! which widens invalidation and never narrows it. A table or column the catalog does
//! not know is unknown too.
//!
//! The catalog also lists the database's *views*. The SQL analyser sees a view's name
//! only, as if it were a table, and a write usually names the view's base tables, never
//! the view: a read of a view is therefore widened to a read of *everything*
//! ([`Catalog::refine_reads`]), so any write invalidates it. A write *through* a view
//! (an updatable view, or one with an `INSTEAD OF` trigger) changes base tables the
//! statement does not name: it changes everything ([`Catalog::refine_changes`]). The cost: a cached query
//! over a view is recomputed after every write, whatever table it changes (resolving
//! the view's base tables from the catalog would narrow that; not done yet).
//! Writes: a column the database computes (`GENERATED ALWAYS AS`, MySQL's `ON UPDATE
//! CURRENT_TIMESTAMP`) takes a value no statement names, and a table with `BEFORE` row
//! triggers (any trigger on SQLite) may have any column set by them: in change sets,
//! such columns of inserted and updated rows are unknown (a pre-read's old value alone
//! would be a wrong "known"); deleted rows keep their old values.
//!
//! A SQLite table with an `ON CONFLICT REPLACE` constraint lets a plain `INSERT` or
//! `UPDATE` delete the rows its new values conflict with, rows the statement does not
//! name: such a write changes the whole table (as an upsert does).
//!
//! Foreign keys whose action is `SET NULL` or `SET DEFAULT` are read too, with the
//! referencing column's default: a parent's delete (or key update) gives the child rows
//! a new value there, which the relation edges must carry
//! ([`ReferencingValues`](crate::types::ReferencingValues), handed to the engine).
//! A default that is not a plain literal is unknown; when the actions cannot be read,
//! every referencing column reached through an edge is unknown until they can.
//!
//! Foreign keys whose action changes referencing rows (`CASCADE`, `SET NULL`, `SET
//! DEFAULT`) become relation edges of the engine next to the declared ones: a cascade
//! reaches the cached queries of the rows it changes without `#[derive(Relations)]`.
//! When they cannot be read, the edges last read stay (and a warning is logged).
//!
//! A PostgreSQL partition (or inherited table) shares its rows with its partitioned
//! (parent) table: a statement naming one changes rows the other's queries read, so a
//! change to a table counts for its ancestors and descendants too.
//!
//! A trigger may write other tables than its own (a count, an audit log): a write to a
//! table with triggers also changes, whole, every table its triggers' bodies name, and
//! everything when a body runs dynamic SQL, calls a routine of the database's own or is
//! in another language (`trigger_writes` module).
//!
//! Materialized views are tables for this purpose: their rows change only on `REFRESH
//! MATERIALIZED VIEW`, which the analyser treats as DDL (it changes everything).

mod class;
mod foreign_keys;
mod queries;
mod referencing;
mod refine;
mod refresh;
mod rows;
mod trigger_writes;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use reactive_codegen::sql::Dialect;

use super::backend::Backend;
use crate::engine::Engine;
use crate::types::{ReferencingValues, RelationEdge};

pub use class::ColumnClass;

/// How often a table the catalog does not know makes it read the catalog again.
const RECHECK: Duration = Duration::from_secs(1);

type Tables = HashMap<String, HashMap<String, ColumnClass>>;

fn class_in(tables: &Tables, table: &str, column: &str) -> ColumnClass {
    tables
        .get(table)
        .and_then(|t| t.get(column))
        .copied()
        .unwrap_or(ColumnClass::Other)
}

/// The column classes of every table the database showed us (see the module docs).
#[derive(Default)]
pub struct Catalog {
    tables: RwLock<Arc<Tables>>,
    /// Tables looked for and not found, with when: not looked for again before [`RECHECK`].
    missing: Mutex<HashMap<String, Instant>>,
    /// A DDL statement ran through the handle: read again before the next use.
    dirty: AtomicBool,
    /// The names (lower-cased) of the database's views (see the module docs).
    views: RwLock<Arc<HashSet<String>>>,
    /// `table.column` of the columns the database computes (see the module docs).
    computed: RwLock<Arc<HashSet<String>>>,
    /// Tables with triggers that may set their rows' columns (see the module docs).
    triggered: RwLock<Arc<HashSet<String>>>,
    /// What each table's triggers may write besides the rows a statement names (see
    /// the module docs).
    trigger_writes: RwLock<Arc<trigger_writes::TriggerTargets>>,
    /// Table → the tables sharing its rows through inheritance (its ancestors and
    /// descendants: partitions and partitioned tables), see the module docs.
    relatives: RwLock<Arc<HashMap<String, BTreeSet<String>>>>,
    /// SQLite tables with an `ON CONFLICT REPLACE` constraint (see the module docs).
    replacing: RwLock<Arc<HashSet<String>>>,
    /// What `SET NULL`/`SET DEFAULT` foreign keys give referencing columns; `None`
    /// until the catalog was read (unknown meanwhile: wider).
    referencing: RwLock<Option<Arc<ReferencingValues>>>,
    /// The edges of the foreign keys with actions; `None` until the catalog was read.
    foreign_keys: RwLock<Option<Arc<Vec<RelationEdge>>>>,
    /// The engine that expands change sets with `referencing` (set once by the handle).
    engine: std::sync::OnceLock<Engine>,
}

/// A snapshot of a set behind a lock.
fn read_set(lock: &RwLock<Arc<HashSet<String>>>) -> Arc<HashSet<String>> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn write_set(lock: &RwLock<Arc<HashSet<String>>>, set: Arc<HashSet<String>>) {
    *lock
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = set;
}

impl Catalog {
    fn snapshot(&self) -> Arc<Tables> {
        self.tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether `table` (a normalized name) is one of the database's views.
    pub fn is_view(&self, table: &str) -> bool {
        self.views
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(table)
    }

    /// Whether `table` (a normalized name) has triggers or rules that may write (or the
    /// catalog could not tell).
    pub fn has_triggers(&self, table: &str) -> bool {
        let targets = self.trigger_writes();
        targets.contains_key(table) || targets.contains_key("*")
    }

    fn trigger_writes(&self) -> Arc<trigger_writes::TriggerTargets> {
        self.trigger_writes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn relatives(&self) -> Arc<HashMap<String, BTreeSet<String>>> {
        self.relatives
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn views(&self) -> Arc<HashSet<String>> {
        self.views
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Takes over what another handle's catalog knows.
    pub fn copy_from(&self, other: &Catalog) {
        *self
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = other.snapshot();
        *self
            .views
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = other.views();
        write_set(&self.computed, read_set(&other.computed));
        write_set(&self.triggered, read_set(&other.triggered));
        write_set(&self.replacing, read_set(&other.replacing));
        *self
            .trigger_writes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = other.trigger_writes();
        *self
            .relatives
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = other.relatives();
        if let Some(values) = other
            .referencing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            self.set_referencing(values);
        }
        if let Some(edges) = other
            .foreign_keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            self.set_foreign_keys(edges);
        }
    }

    /// The engine whose relation expansion follows this catalog's foreign-key actions.
    pub fn attach(&self, engine: Engine) {
        let known = self
            .referencing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // Not read yet: the actions are unknown, so are the columns they may set.
        engine.set_referencing_values(
            known.map_or_else(ReferencingValues::unknown, |v| ReferencingValues::clone(&v)),
        );
        if let Some(edges) = self
            .foreign_keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            engine.set_foreign_key_edges(edges.iter().cloned());
        }
        let _ = self.engine.set(engine);
    }

    fn set_foreign_keys(&self, edges: Arc<Vec<RelationEdge>>) {
        if let Some(engine) = self.engine.get() {
            engine.set_foreign_key_edges(edges.iter().cloned());
        }
        *self
            .foreign_keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(edges);
    }

    fn set_referencing(&self, values: Arc<ReferencingValues>) {
        if let Some(engine) = self.engine.get() {
            engine.set_referencing_values(ReferencingValues::clone(&values));
        }
        *self
            .referencing
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(values);
    }

    /// Marks the catalog out of date (a DDL statement ran).
    pub fn invalidate(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Reads the catalog again if a DDL ran since, or one of `tables` is not known and
    /// was not looked for in the last second.
    pub async fn ensure<'a, DB: Backend>(
        &self,
        pool: &sqlx::Pool<DB>,
        dialect: Dialect,
        tables: impl IntoIterator<Item = &'a str>,
    ) {
        let mut needed = self.dirty.load(Ordering::Relaxed);
        if !needed {
            let known = self.snapshot();
            let now = Instant::now();
            let mut missing = self
                .missing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for table in tables {
                if known.contains_key(table) {
                    continue;
                }
                let due = missing
                    .get(table)
                    .is_none_or(|at| now.duration_since(*at) >= RECHECK);
                if due {
                    missing.insert(table.to_owned(), now);
                    needed = true;
                }
            }
        }
        if needed {
            self.refresh(pool, dialect).await;
        }
    }
}
