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
//! only, as if it were a table, and a write names the view's base tables, never the
//! view: a read of a view is therefore widened to a read of *everything*
//! ([`Catalog::refine_reads`]), so any write invalidates it. The cost: a cached query
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
//! Materialized views are tables for this purpose: their rows change only on `REFRESH
//! MATERIALIZED VIEW`, which the analyser treats as DDL (it changes everything).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reactive_codegen::sql::Dialect;
use sqlx::{AssertSqlSafe, Either, SqlSafeStr};

use super::backend::{Backend, Exec};
use crate::engine::Engine;
use crate::types::{
    ChangeSet, Conjunction, KeyValue, ReadSet, ReferencingValues, RowChange, RowOp,
};

/// How often a table the catalog does not know makes it read the catalog again.
const RECHECK: Duration = Duration::from_secs(1);

/// How a column's values are compared, for key purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnClass {
    /// Integers: canonical decimal text; anything else is unknown.
    Int,
    /// Booleans: `1` / `0`.
    Bool,
    /// Uuids: lower-case hyphenated (every input spelling PostgreSQL accepts maps to it).
    Uuid,
    /// Text compared byte for byte (MySQL: case- and trailing-space-insensitively, for
    /// printable ASCII values only).
    Text,
    /// Anything else: never a key.
    Other,
}

impl ColumnClass {
    /// The canonical form of `value` in a column of this class; `None`: unknown.
    pub fn canonical(self, value: &KeyValue, dialect: Dialect) -> Option<KeyValue> {
        match self.canonicalize(value, dialect) {
            Canonical::Already => Some(value.clone()),
            Canonical::Is(v) => Some(v),
            Canonical::Unknown => None,
        }
    }

    /// [`ColumnClass::canonical`], telling apart a value that already is in canonical
    /// form (the common case: nothing to copy or rebuild).
    fn canonicalize(self, value: &KeyValue, dialect: Dialect) -> Canonical {
        if value.is_null() {
            return Canonical::Already;
        }
        let text = value.as_str();
        let known = match self {
            ColumnClass::Int => text.parse::<i128>().is_ok(),
            ColumnClass::Bool => matches!(text, "0" | "1"),
            ColumnClass::Uuid if is_canonical_uuid(text) => true,
            ColumnClass::Uuid => {
                return canonical_uuid(text).map_or(Canonical::Unknown, |u| {
                    Canonical::Is(KeyValue::from_str(&u, dialect))
                });
            }
            ColumnClass::Text => match dialect {
                // Collations beyond case and trailing spaces (accents, ignorable
                // characters) fold non-ASCII text in ways we do not model.
                Dialect::MySql => text.bytes().all(|b| (0x20..0x7f).contains(&b)),
                Dialect::Postgres | Dialect::Sqlite => true,
            },
            ColumnClass::Other => false,
        };
        if known {
            Canonical::Already
        } else {
            Canonical::Unknown
        }
    }

    fn merge(self, other: Self) -> Self {
        if self == other {
            self
        } else {
            ColumnClass::Other
        }
    }
}

/// What [`ColumnClass::canonicalize`] found.
enum Canonical {
    /// The value is in canonical form.
    Already,
    /// Its canonical form.
    Is(KeyValue),
    /// It has none: unknown.
    Unknown,
}

/// `true` for `8-4-4-4-12` lower-case hex: what [`canonical_uuid`] returns, which maps
/// it to itself (and which [`KeyValue::from_str`] keeps as it is: not a number, not a
/// boolean, lower case without spaces).
fn is_canonical_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
        })
}

/// `8-4-4-4-12` lower-case hex, from any spelling with hyphens, braces or a `urn:uuid:`
/// prefix; `None` if it is not 32 hex digits.
fn canonical_uuid(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text
        .strip_prefix("urn:uuid:")
        .or_else(|| text.strip_prefix("URN:UUID:"))
        .unwrap_or(text);
    let text = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

type Tables = HashMap<String, HashMap<String, ColumnClass>>;

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
    /// SQLite tables with an `ON CONFLICT REPLACE` constraint (see the module docs).
    replacing: RwLock<Arc<HashSet<String>>>,
    /// What `SET NULL`/`SET DEFAULT` foreign keys give referencing columns; `None`
    /// until the catalog was read (unknown meanwhile: wider).
    referencing: RwLock<Option<Arc<ReferencingValues>>>,
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
        if let Some(values) = other
            .referencing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            self.set_referencing(values);
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
        let _ = self.engine.set(engine);
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

    /// Reads the column types of every table of the database. On failure the catalog
    /// keeps what it knew (unknown columns stay unknown: wider, never stale).
    pub async fn refresh<DB: Backend>(&self, pool: &sqlx::Pool<DB>, dialect: Dialect) {
        self.dirty.store(false, Ordering::Relaxed);
        let exec = Exec::<DB> {
            sql: AssertSqlSafe(query(dialect)).into_sql_str(),
            args: None,
            persistent: false,
        };
        let results: Vec<_> = DB::pool_run(pool, exec).collect().await;
        let mut tables = Tables::new();
        let mut computed = HashSet::new();
        let mut replacing = HashSet::new();
        for result in results {
            match result {
                Ok(Either::Right(row)) => {
                    let text = |i| match DB::row_value(&row, i) {
                        Some(serde_json::Value::String(s)) => Some(s),
                        _ => None,
                    };
                    let (Some(table), Some(column), Some(ty)) = (text(0), text(1), text(2)) else {
                        continue;
                    };
                    let flags = text(3).unwrap_or_default();
                    if dialect == Dialect::Sqlite && replaces_on_conflict(&flags) {
                        replacing.insert(table.to_lowercase());
                    }
                    let class = classify(dialect, &ty, &flags);
                    let column = column.to_lowercase();
                    if text(4).as_deref() == Some("y") {
                        computed.insert(format!("{}.{column}", table.to_lowercase()));
                    }
                    let columns = tables.entry(table.to_lowercase()).or_default();
                    let merged = columns.get(&column).map_or(class, |c| c.merge(class));
                    columns.insert(column, merged);
                }
                Ok(Either::Left(_)) => {}
                Err(e) => {
                    tracing::warn!(target: "reactive::db", error = %e, "could not read the column types; keys on unknown columns are dropped (wider invalidation)");
                    return;
                }
            }
        }
        tracing::debug!(target: "reactive::db", tables = tables.len(), "column types read");
        *self
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(tables);
        write_set(&self.computed, Arc::new(computed));
        write_set(&self.replacing, Arc::new(replacing));
        let referencing = match read_referencing(pool, dialect, &self.snapshot()).await {
            Ok(values) => values,
            Err(e) => {
                // Widest: the rows edges reach have an unknown referencing column.
                tracing::warn!(target: "reactive::db", error = %e, "could not read the foreign keys' SET NULL/SET DEFAULT actions; the referencing columns of rows reached through relations are unknown");
                ReferencingValues::unknown()
            }
        };
        self.set_referencing(Arc::new(referencing));
        self.refresh_views(pool, dialect).await;
        match read_names(pool, triggers_query(dialect)).await {
            Ok(triggered) => write_set(&self.triggered, Arc::new(triggered)),
            Err(e) => {
                // Widest: every table's written rows are unknown until a read succeeds.
                tracing::warn!(target: "reactive::db", error = %e, "could not read the triggers; written rows are unknown");
                write_set(&self.triggered, Arc::new(HashSet::from(["*".to_owned()])));
            }
        }
    }

    /// Reads the names of the database's views. On failure the catalog keeps the views
    /// it knew (a view created since would be read as a table: logged as a warning).
    async fn refresh_views<DB: Backend>(&self, pool: &sqlx::Pool<DB>, dialect: Dialect) {
        let exec = Exec::<DB> {
            sql: AssertSqlSafe(views_query(dialect)).into_sql_str(),
            args: None,
            persistent: false,
        };
        let results: Vec<_> = DB::pool_run(pool, exec).collect().await;
        let mut views = HashSet::new();
        for result in results {
            match result {
                Ok(Either::Right(row)) => {
                    if let Some(serde_json::Value::String(name)) = DB::row_value(&row, 0) {
                        views.insert(name.to_lowercase());
                    }
                }
                Ok(Either::Left(_)) => {}
                Err(e) => {
                    tracing::warn!(target: "reactive::db", error = %e, "could not read the views; a view created since is read as a table");
                    return;
                }
            }
        }
        *self
            .views
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(views);
    }

    /// Puts every key value of `reads` in its column's canonical form, dropping those
    /// that have none (the conjunction then covers more rows). A read of a view reads
    /// everything (see the module docs).
    ///
    /// Runs on every cache miss: when every value already is canonical and every name
    /// lower-case (the common case), the read set is left as it is, without a copy.
    pub fn refine_reads(&self, reads: &mut ReadSet, dialect: Dialect) {
        if reads.everything || reads.tables.is_empty() {
            return;
        }
        let views = self.views();
        if reads.tables.keys().any(|table| views.contains(table)) {
            *reads = ReadSet::everything();
            return;
        }
        let known = self.snapshot();
        let mut rebuild = false;
        for (table, conjunctions) in &mut reads.tables {
            rebuild |= !is_lower(table);
            for conj in conjunctions {
                conj.columns.retain(|column, values| {
                    rebuild |= !is_lower(column);
                    match refine_in_place(&known, table, column, values, dialect) {
                        Refined::Same => true,
                        Refined::Changed => {
                            rebuild = true;
                            true
                        }
                        Refined::Unknown => {
                            rebuild = true;
                            false
                        }
                    }
                });
            }
        }
        if rebuild {
            // Values changed or were dropped: alternatives may now coincide, or one may
            // have become the whole table; `add` puts the set back in normal form.
            let old = std::mem::take(&mut reads.tables);
            for (table, conjunctions) in old {
                for conj in conjunctions {
                    let mut refined = Conjunction::whole();
                    for (column, values) in conj.columns {
                        refined = refined.with_values(&column, values);
                    }
                    reads.add(&table, refined);
                }
            }
        }
    }

    /// Puts every key value of `changes` in its column's canonical form; a column with
    /// a value that has none becomes unknown.
    pub fn refine_changes(&self, changes: &mut ChangeSet, dialect: Dialect) {
        if changes.everything {
            return;
        }
        let known = self.snapshot();
        let computed = read_set(&self.computed);
        let triggered = read_set(&self.triggered);
        let replacing = read_set(&self.replacing);
        let mut replaced = Vec::new();
        for (table, rows) in &mut changes.tables {
            if replacing.contains(table) && rows.iter().any(|r| !matches!(r.op, RowOp::Delete)) {
                replaced.push(table.clone());
            }
            let rewritten = triggered.contains(table) || triggered.contains("*");
            for row in rows {
                let written = !matches!(row.op, RowOp::Delete);
                row.columns.retain(|column, values| {
                    if written && (rewritten || computed.contains(&format!("{table}.{column}"))) {
                        return false;
                    }
                    !matches!(
                        refine_in_place(&known, table, column, values, dialect),
                        Refined::Unknown
                    )
                });
            }
        }
        // A write that may delete rows it does not name (the ones its new values conflict
        // with): the whole table, as for an upsert, deletes included (their relations).
        for table in replaced {
            changes.push_row(&table, RowChange::whole());
        }
    }
}

fn class_in(tables: &Tables, table: &str, column: &str) -> ColumnClass {
    tables
        .get(table)
        .and_then(|t| t.get(column))
        .copied()
        .unwrap_or(ColumnClass::Other)
}

fn refine_values(
    tables: &Tables,
    table: &str,
    column: &str,
    values: &std::collections::BTreeSet<KeyValue>,
    dialect: Dialect,
) -> Option<std::collections::BTreeSet<KeyValue>> {
    let class = class_in(tables, table, column);
    values.iter().map(|v| class.canonical(v, dialect)).collect()
}

/// What [`refine_in_place`] did to a value set.
enum Refined {
    /// Every value was canonical already: unchanged.
    Same,
    /// Replaced by the canonical forms.
    Changed,
    /// A value has no canonical form: the column is unknown (the set is left as it was).
    Unknown,
}

/// [`refine_values`] in place, without a copy when every value is canonical already.
fn refine_in_place(
    tables: &Tables,
    table: &str,
    column: &str,
    values: &mut std::collections::BTreeSet<KeyValue>,
    dialect: Dialect,
) -> Refined {
    let class = class_in(tables, table, column);
    let mut changed = false;
    for value in values.iter() {
        match class.canonicalize(value, dialect) {
            Canonical::Already => {}
            Canonical::Is(_) => changed = true,
            Canonical::Unknown => return Refined::Unknown,
        }
    }
    if !changed {
        return Refined::Same;
    }
    match refine_values(tables, table, column, values, dialect) {
        Some(refined) => {
            *values = refined;
            Refined::Changed
        }
        None => Refined::Unknown,
    }
}

/// `true` when `name` is already lower-case (as [`ReadSet::add`] keeps names).
fn is_lower(name: &str) -> bool {
    name.is_ascii() && !name.bytes().any(|b| b.is_ascii_uppercase())
}

/// The catalog query of a dialect: rows of (table, column, type, flags), all text.
fn query(dialect: Dialect) -> String {
    match dialect {
        // flags: `d`/`n` deterministic collation or not, then the type's `typtype`.
        Dialect::Postgres => "SELECT c.relname::text, a.attname::text, t.typname::text, \
             (CASE WHEN co.oid IS NULL OR co.collisdeterministic THEN 'd' ELSE 'n' END) || t.typtype::text, \
             CASE WHEN a.attgenerated <> '' THEN 'y' ELSE 'n' END \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation \
             WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
             AND n.nspname = ANY (current_schemas(false))"
            .to_owned(),
        Dialect::MySql => "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), \
             CAST(DATA_TYPE AS CHAR), CAST(COALESCE(COLLATION_NAME, '') AS CHAR), \
             CAST(CASE WHEN UPPER(EXTRA) LIKE '%GENERATED%' OR UPPER(EXTRA) LIKE '%ON UPDATE%' \
               THEN 'y' ELSE 'n' END AS CHAR) \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
            .to_owned(),
        // flags: the table's `CREATE` text (a `COLLATE NOCASE` anywhere in it makes its
        // text columns unknown).
        // `hidden` 2 and 3: virtual and stored generated columns.
        Dialect::Sqlite => "SELECT m.name, p.name, p.type, COALESCE(m.sql, ''), \
             CASE WHEN p.hidden IN (2, 3) THEN 'y' ELSE 'n' END \
             FROM sqlite_master m JOIN pragma_table_xinfo(m.name) p \
             WHERE m.type IN ('table', 'view')"
            .to_owned(),
    }
}

/// `true` when a SQLite table's `CREATE` text has a constraint whose conflict
/// resolution is `REPLACE` (`UNIQUE ... ON CONFLICT REPLACE`, also on the primary key):
/// a plain `INSERT` or `UPDATE` then deletes the rows it conflicts with. A false
/// positive (the words in a comment or a default) only widens.
fn replaces_on_conflict(create: &str) -> bool {
    let words: Vec<String> = create
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    words
        .windows(3)
        .any(|w| w[0] == "on" && w[1] == "conflict" && w[2] == "replace")
}

/// The query listing, for every column of a foreign key whose `ON DELETE` or `ON
/// UPDATE` action is `SET NULL` or `SET DEFAULT`: table, column, delete action, update
/// action (PostgreSQL's one-letter codes or the SQL words), the column's default as SQL
/// text (`''`: none). MySQL's defaults are not read: InnoDB refuses `SET DEFAULT`, and a
/// string default is not quoted there (unknown, if one ever shows up).
fn referencing_query(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => "SELECT cl.relname::text, a.attname::text, c.confdeltype::text, \
             c.confupdtype::text, COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') \
             FROM pg_catalog.pg_constraint c \
             JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
             LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE c.contype = 'f' AND (c.confdeltype IN ('n', 'd') OR c.confupdtype IN ('n', 'd')) \
             AND n.nspname = ANY (current_schemas(false))"
            .to_owned(),
        Dialect::MySql => "SELECT CAST(k.TABLE_NAME AS CHAR), CAST(k.COLUMN_NAME AS CHAR), \
             CAST(r.DELETE_RULE AS CHAR), CAST(r.UPDATE_RULE AS CHAR), CAST('' AS CHAR) \
             FROM information_schema.KEY_COLUMN_USAGE k \
             JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
             ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
             AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
             WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL \
             AND (r.DELETE_RULE IN ('SET NULL', 'SET DEFAULT') \
             OR r.UPDATE_RULE IN ('SET NULL', 'SET DEFAULT'))"
            .to_owned(),
        Dialect::Sqlite => "SELECT m.name, p.\"from\", p.on_delete, p.on_update, \
             COALESCE(t.dflt_value, '') \
             FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p \
             LEFT JOIN pragma_table_info(m.name) t ON t.name = p.\"from\" \
             WHERE m.type = 'table' AND (p.on_delete IN ('SET NULL', 'SET DEFAULT') \
             OR p.on_update IN ('SET NULL', 'SET DEFAULT'))"
            .to_owned(),
    }
}

/// Reads [`referencing_query`] into the new values each referencing column may take,
/// in canonical form for the column's class (`tables`).
async fn read_referencing<DB: Backend>(
    pool: &sqlx::Pool<DB>,
    dialect: Dialect,
    tables: &Tables,
) -> Result<ReferencingValues, sqlx::Error> {
    let exec = Exec::<DB> {
        sql: AssertSqlSafe(referencing_query(dialect)).into_sql_str(),
        args: None,
        persistent: false,
    };
    let results: Vec<_> = DB::pool_run(pool, exec).collect().await;
    let mut out = ReferencingValues::none();
    for result in results {
        let Either::Right(row) = result? else {
            continue;
        };
        let text = |i| match DB::row_value(&row, i) {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        };
        let (Some(table), Some(column)) = (text(0), text(1)) else {
            continue;
        };
        let (table, column) = (table.to_lowercase(), column.to_lowercase());
        let actions = [text(2).unwrap_or_default(), text(3).unwrap_or_default()];
        let class = class_in(tables, &table, &column);
        for action in actions {
            let value = match action.to_ascii_uppercase().as_str() {
                "N" | "SET NULL" => Some(KeyValue::null()),
                "D" | "SET DEFAULT" => match dialect {
                    Dialect::MySql => None,
                    Dialect::Postgres | Dialect::Sqlite => {
                        default_value(&text(4).unwrap_or_default(), dialect)
                    }
                },
                _ => continue,
            };
            out.add(
                &table,
                &column,
                value.and_then(|v| class.canonical(&v, dialect)),
            );
        }
    }
    Ok(out)
}

/// The value of a column default given as SQL text (`''`: no default, which is NULL);
/// `None` (unknown) unless it is a plain literal: a number, a quoted string or a
/// boolean, possibly in parentheses and with a PostgreSQL cast (`'x'::text`, `(-1)`).
fn default_value(sql: &str, dialect: Dialect) -> Option<KeyValue> {
    let mut text = sql.trim();
    while let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        text = inner.trim();
    }
    if text.is_empty() || text.eq_ignore_ascii_case("null") {
        return Some(KeyValue::null());
    }
    if let Some(rest) = text.strip_prefix('\'') {
        // A quoted string ('' escapes a quote), then nothing or a cast.
        let mut value = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                value.push(c);
                continue;
            }
            if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                value.push('\'');
                chars.next();
                continue;
            }
            let tail = rest[i + 1..].trim();
            return (tail.is_empty() || is_cast(tail)).then(|| KeyValue::from_str(&value, dialect));
        }
        return None;
    }
    let (literal, tail) = text.split_once("::").unwrap_or((text, ""));
    if !tail.is_empty() && !is_cast(&format!("::{tail}")) {
        return None;
    }
    let literal = literal.trim();
    let literal = literal
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(literal)
        .trim();
    if literal.eq_ignore_ascii_case("null") {
        return Some(KeyValue::null());
    }
    let numeric = literal.strip_prefix('-').unwrap_or(literal);
    if !numeric.is_empty()
        && numeric.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && numeric.bytes().any(|b| b.is_ascii_digit())
    {
        return Some(KeyValue::from_str(literal, dialect));
    }
    if literal.eq_ignore_ascii_case("true") || literal.eq_ignore_ascii_case("false") {
        return Some(KeyValue::from_bool(literal.eq_ignore_ascii_case("true")));
    }
    None
}

/// `true` for a PostgreSQL cast to a plain type name (`::text`, `::character varying`,
/// `::numeric(10,2)`), as `pg_get_expr` writes after a literal.
fn is_cast(tail: &str) -> bool {
    let Some(ty) = tail.strip_prefix("::") else {
        return false;
    };
    !ty.is_empty()
        && ty.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b' ' | b'_' | b'(' | b')' | b',' | b'"' | b'[' | b']')
        })
        && !ty.contains("::")
}

/// The query listing the names of the views of a dialect (not materialized views:
/// see the module docs).
fn views_query(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => "SELECT c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'v' AND n.nspname = ANY (current_schemas(false))"
            .to_owned(),
        Dialect::MySql => "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'VIEW'"
            .to_owned(),
        Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'view'".to_owned(),
    }
}

/// The query listing the tables whose rows triggers may set (see the module docs):
/// `BEFORE` row triggers; on SQLite any trigger (its triggers write through statements,
/// which may update the row itself).
fn triggers_query(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => "SELECT DISTINCT c.relname::text FROM pg_catalog.pg_trigger t \
             JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT t.tgisinternal AND (t.tgtype & 3) = 3 \
             AND n.nspname = ANY (current_schemas(false))"
            .to_owned(),
        Dialect::MySql => "SELECT DISTINCT CAST(EVENT_OBJECT_TABLE AS CHAR) \
             FROM information_schema.TRIGGERS \
             WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND ACTION_TIMING = 'BEFORE'"
            .to_owned(),
        Dialect::Sqlite => {
            "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger'".to_owned()
        }
    }
}

/// The lower-cased names in the first column of a query's rows.
async fn read_names<DB: Backend>(
    pool: &sqlx::Pool<DB>,
    sql: String,
) -> Result<HashSet<String>, sqlx::Error> {
    let exec = Exec::<DB> {
        sql: AssertSqlSafe(sql).into_sql_str(),
        args: None,
        persistent: false,
    };
    let results: Vec<_> = DB::pool_run(pool, exec).collect().await;
    let mut names = HashSet::new();
    for result in results {
        if let Either::Right(row) = result?
            && let Some(serde_json::Value::String(name)) = DB::row_value(&row, 0)
        {
            names.insert(name.to_lowercase());
        }
    }
    Ok(names)
}

/// The class of a column from the catalog's type name and flags.
fn classify(dialect: Dialect, ty: &str, flags: &str) -> ColumnClass {
    let ty = ty.to_ascii_lowercase();
    match dialect {
        Dialect::Postgres => {
            let deterministic = flags.starts_with('d');
            let base = flags.get(1..2) == Some("b");
            if !base {
                return ColumnClass::Other; // enums, domains, composites, ranges
            }
            match ty.as_str() {
                "int2" | "int4" | "int8" => ColumnClass::Int,
                "bool" => ColumnClass::Bool,
                "uuid" => ColumnClass::Uuid,
                "text" | "varchar" | "name" if deterministic => ColumnClass::Text,
                _ => ColumnClass::Other,
            }
        }
        Dialect::MySql => match ty.as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => ColumnClass::Int,
            "uuid" => ColumnClass::Uuid,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                ColumnClass::Text
            }
            _ => ColumnClass::Other,
        },
        Dialect::Sqlite => {
            // Affinity rules (https://sqlite.org/datatype3.html#determination_of_column_affinity),
            // with date/time types apart: their text forms differ between serde and the database.
            if ["date", "time", "blob", "json"]
                .iter()
                .any(|t| ty.contains(t))
            {
                ColumnClass::Other
            } else if ty.contains("bool") {
                ColumnClass::Bool
            } else if flags.to_ascii_lowercase().contains("nocase") {
                ColumnClass::Other
            } else {
                // INTEGER, TEXT, NUMERIC, REAL and untyped columns: SQLite converts
                // between numbers and numeric text by affinity, which the canonical
                // form (numbers and numeric strings meet) only widens.
                ColumnClass::Text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RowChange;

    /// `refine_reads` as it was before the in-place fast path: rebuild everything.
    fn refine_reads_by_rebuilding(catalog: &Catalog, reads: &mut ReadSet, dialect: Dialect) {
        if reads.everything || reads.tables.is_empty() {
            return;
        }
        let known = catalog.snapshot();
        let old = std::mem::take(&mut reads.tables);
        for (table, conjunctions) in old {
            for conj in conjunctions {
                let mut refined = Conjunction::whole();
                for (column, values) in conj.columns {
                    if let Some(values) = refine_values(&known, &table, &column, &values, dialect) {
                        refined = refined.with_values(&column, values);
                    }
                }
                reads.add(&table, refined);
            }
        }
    }

    /// `refine_changes` as it was before: take every column out and put back the refined.
    fn refine_changes_by_rebuilding(catalog: &Catalog, changes: &mut ChangeSet, dialect: Dialect) {
        let known = catalog.snapshot();
        for (table, rows) in &mut changes.tables {
            for row in rows {
                let columns = std::mem::take(&mut row.columns);
                for (column, values) in columns {
                    if let Some(values) = refine_values(&known, table, &column, &values, dialect) {
                        row.columns.insert(column, values);
                    }
                }
            }
        }
    }

    fn catalog() -> Catalog {
        let catalog = Catalog::default();
        let columns = [
            ("id", ColumnClass::Uuid),
            ("n", ColumnClass::Int),
            ("name", ColumnClass::Text),
            ("flag", ColumnClass::Bool),
            ("at", ColumnClass::Other),
        ];
        let table = columns
            .iter()
            .map(|(c, class)| ((*c).to_owned(), *class))
            .collect();
        *catalog.tables.write().unwrap() = Arc::new(Tables::from([("t".to_owned(), table)]));
        catalog
    }

    #[test]
    fn refining_in_place_gives_what_rebuilding_gave() {
        let catalog = catalog();
        let lower = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        let upper = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11";
        for dialect in [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite] {
            let k = |s: &str| KeyValue::from_str(s, dialect);
            let conj = |pairs: &[(&str, &str)]| {
                pairs
                    .iter()
                    .fold(Conjunction::whole(), |c, (col, v)| c.with(col, k(v)))
            };
            // Names not lower-case, set through the public fields (`add` would lower them).
            let mut shouting = ReadSet::empty();
            shouting.tables.insert(
                "T".to_owned(),
                vec![Conjunction {
                    columns: [("ID".to_owned(), [KeyValue::null()].into())].into(),
                }],
            );
            let cases = [
                // Canonical already: left as it is.
                ReadSet::empty().with("t", conj(&[("id", lower), ("n", "7")])),
                // Two spellings of one uuid: one alternative after refining.
                ReadSet::empty()
                    .with("t", conj(&[("id", upper)]))
                    .with("t", conj(&[("id", lower)])),
                // A column without comparable values: dropped; that alternative becomes
                // the whole table and absorbs the others.
                ReadSet::empty()
                    .with("t", conj(&[("id", lower)]))
                    .with("t", conj(&[("at", "2024-01-01"), ("n", "1")]))
                    .with("t", conj(&[("at", "2024-01-02")])),
                // Mixed values in one set, NULL, booleans, text, a uuid that is not one.
                ReadSet::empty()
                    .with(
                        "t",
                        Conjunction::whole().with_values("id", [k(lower), k(upper)]),
                    )
                    .with("t", conj(&[("flag", "true"), ("name", "José")]))
                    .with(
                        "t",
                        Conjunction::whole()
                            .with_values("n", [KeyValue::null(), k("12")])
                            .with("id", k("not-a-uuid")),
                    ),
                // A table the catalog does not know: every key unknown.
                ReadSet::empty()
                    .with("u", conj(&[("id", lower)]))
                    .with("t", conj(&[("name", "x")])),
                shouting,
                ReadSet::everything(),
                ReadSet::empty(),
            ];
            for case in cases {
                let mut fast = case.clone();
                catalog.refine_reads(&mut fast, dialect);
                let mut reference = case.clone();
                refine_reads_by_rebuilding(&catalog, &mut reference, dialect);
                assert_eq!(fast, reference, "{dialect:?}: {case:?}");

                let mut changes = ChangeSet::empty();
                for (table, alts) in &case.tables {
                    for alt in alts {
                        let mut row = RowChange::whole();
                        row.columns = alt.columns.clone();
                        changes = changes.with_row(table, row);
                    }
                }
                let mut fast = changes.clone();
                catalog.refine_changes(&mut fast, dialect);
                let mut reference = changes.clone();
                refine_changes_by_rebuilding(&catalog, &mut reference, dialect);
                assert_eq!(fast, reference, "{dialect:?}: {changes:?}");
            }
        }
    }

    #[test]
    fn replace_constraints_are_found_in_the_create_text() {
        assert!(replaces_on_conflict(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE ON CONFLICT REPLACE)"
        ));
        assert!(replaces_on_conflict(
            "create table t (a, b, unique (a, b) on\n conflict\treplace)"
        ));
        assert!(replaces_on_conflict(
            "CREATE TABLE t (id INTEGER PRIMARY KEY ON CONFLICT REPLACE)"
        ));
        assert!(!replaces_on_conflict(
            "CREATE TABLE t (id INTEGER PRIMARY KEY ON CONFLICT ABORT, replace TEXT)"
        ));
    }

    #[test]
    fn column_defaults_are_read_when_they_are_literals() {
        let pg = Dialect::Postgres;
        let v = |s: &str| default_value(s, pg);
        assert_eq!(v(""), Some(KeyValue::null()));
        assert_eq!(v("NULL::bigint"), Some(KeyValue::null()));
        assert_eq!(v("0"), Some(KeyValue::from_i64(0)));
        assert_eq!(v("(-1)"), Some(KeyValue::from_i64(-1)));
        assert_eq!(v("'-1'::integer"), Some(KeyValue::from_i64(-1)));
        assert_eq!(v("'none'::text"), Some(KeyValue::from_str("none", pg)));
        assert_eq!(
            v("'it''s'::character varying"),
            Some(KeyValue::from_str("it's", pg))
        );
        assert_eq!(v("true"), Some(KeyValue::from_bool(true)));
        assert_eq!(v("nextval('t_id_seq'::regclass)"), None);
        assert_eq!(v("gen_random_uuid()"), None);
        assert_eq!(v("'a'::text || 'b'::text"), None);
        assert_eq!(v("CURRENT_TIMESTAMP"), None);
    }

    #[test]
    fn canonical_uuids_are_recognized() {
        assert!(is_canonical_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
        for not in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
            "a0eebc99-9c0b-4ef8-bb6d6-bb9bd380a11",
        ] {
            assert!(!is_canonical_uuid(not), "{not}");
            // Whatever `canonical_uuid` makes of it is canonical.
            if let Some(u) = canonical_uuid(not) {
                assert!(is_canonical_uuid(&u), "{u}");
            }
        }
        // A canonical uuid is its own canonical form, also as a key value.
        let u = "12345678-1234-1234-1234-123456789012";
        assert_eq!(canonical_uuid(u).as_deref(), Some(u));
        assert_eq!(KeyValue::from_str(u, Dialect::Postgres).as_str(), u);
        assert_eq!(KeyValue::from_str(u, Dialect::MySql).as_str(), u);
    }

    #[test]
    fn uuid_spellings_meet() {
        let want = Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_owned());
        assert_eq!(canonical_uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), want);
        assert_eq!(
            canonical_uuid("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"),
            want
        );
        assert_eq!(canonical_uuid("a0eebc999c0b4ef8bb6d6bb9bd380a11"), want);
        assert_eq!(canonical_uuid("a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11"), want);
        assert_eq!(canonical_uuid("not-a-uuid"), None);
        assert_eq!(canonical_uuid("123"), None);
    }

    #[test]
    fn classes_keep_only_comparable_values() {
        let pg = Dialect::Postgres;
        let k = |s: &str| KeyValue::from_str(s, pg);
        assert_eq!(ColumnClass::Int.canonical(&k("42"), pg), Some(k("42")));
        assert_eq!(ColumnClass::Int.canonical(&k("1abc"), pg), None);
        assert_eq!(ColumnClass::Bool.canonical(&k("true"), pg), Some(k("1")));
        assert_eq!(ColumnClass::Other.canonical(&k("2024-01-01"), pg), None);
        assert_eq!(
            ColumnClass::Other.canonical(&KeyValue::null(), pg),
            Some(KeyValue::null())
        );
        let my = Dialect::MySql;
        assert!(
            ColumnClass::Text
                .canonical(&KeyValue::from_str("José", my), my)
                .is_none()
        );
        assert!(
            ColumnClass::Text
                .canonical(&KeyValue::from_str("Jose", my), my)
                .is_some()
        );
    }

    #[test]
    fn classify_by_dialect() {
        assert_eq!(classify(Dialect::Postgres, "uuid", "db"), ColumnClass::Uuid);
        assert_eq!(
            classify(Dialect::Postgres, "text", "nb"),
            ColumnClass::Other
        );
        assert_eq!(
            classify(Dialect::Postgres, "status", "de"),
            ColumnClass::Other
        );
        assert_eq!(
            classify(Dialect::Postgres, "timestamptz", "db"),
            ColumnClass::Other
        );
        assert_eq!(classify(Dialect::MySql, "enum", ""), ColumnClass::Other);
        assert_eq!(classify(Dialect::MySql, "bigint", ""), ColumnClass::Int);
        assert_eq!(
            classify(Dialect::Sqlite, "DATETIME", ""),
            ColumnClass::Other
        );
        assert_eq!(classify(Dialect::Sqlite, "INTEGER", ""), ColumnClass::Text);
        assert_eq!(
            classify(
                Dialect::Sqlite,
                "TEXT",
                "CREATE TABLE t (a TEXT COLLATE NOCASE)"
            ),
            ColumnClass::Other
        );
    }
}
