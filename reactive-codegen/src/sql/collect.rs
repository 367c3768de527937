//! The analyser's state while it walks one statement, and how it becomes a
//! [`StatementAnalysis`].
//!
//! Every base-table occurrence gets an *access* record; key predicates are added to
//! it as conditions are read. At the end:
//! - a call of a function that is not a known built-in makes the statement unknown
//!   (`functions` module): it may read or write anything;
//! - a backstop visits every relation name in the statement (with sqlparser's
//!   visitor, which knows every place a table can appear) and adds an all-rows read
//!   for any name the structural walk did not account for, so a construct the walk
//!   does not model can cost precision but never a missed table;
//! - reads are deduplicated, collapsed to one all-rows read per table when any access
//!   to it is all-rows, and sorted by table name; writes are sorted, one per write
//!   occurrence (not deduplicated: `writes.len()` counts the writes).

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Ident, ObjectName, Query, Statement, Visit, Visitor};

use super::functions::opaque_function;
use super::model::{
    ColumnValue, KeyPredicate, Operation, RowFilter, StatementAnalysis, TableRead, TableWrite,
    Unknown,
};
use super::names::{normalize, table_name};
use super::params::Params;
use super::predicates::{Key, conjuncts, key_of};
use super::scope::{Env, Scope};

/// One occurrence of a base table.
#[derive(Debug)]
pub(crate) struct Access {
    pub(crate) table: String,
    pub(crate) keys: Vec<KeyPredicate>,
    /// Listed in `reads` (a `DELETE`'s target is not).
    pub(crate) read: bool,
}

/// A write whose filter is taken from an access once all conditions are read.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    pub(crate) table: String,
    pub(crate) operation: Operation,
    /// The access whose keys are the written rows' filter; `None`: all rows.
    pub(crate) access: Option<usize>,
    pub(crate) set: Vec<ColumnValue>,
    pub(crate) inserted: Option<Vec<Vec<ColumnValue>>>,
}

/// Walk state for one statement.
pub(crate) struct Analyzer<'p> {
    pub(crate) params: &'p Params,
    /// The dialect folds the case of unquoted identifiers.
    pub(crate) fold: bool,
    pub(crate) accesses: Vec<Access>,
    pub(crate) writes: Vec<PendingWrite>,
    /// The first write operation met (the operation of a `WITH ... DELETE ...` query).
    pub(crate) first_write: Option<Operation>,
    /// Operation and `RETURNING` of the last data-modifying statement analysed.
    pub(crate) last_write: Option<(Operation, bool)>,
    /// Queries already analysed structurally, so the subquery finder skips them.
    /// Compared by address only.
    handled: HashSet<*const Query>,
    /// Relation occurrences the walk handled without an access record (CTE
    /// references, table functions, `INSERT` targets), by normalized name.
    pub(crate) accounted: Vec<String>,
    pub(crate) unknown: Option<Unknown>,
}

impl<'p> Analyzer<'p> {
    pub(crate) fn new(params: &'p Params, fold: bool) -> Self {
        Self {
            params,
            fold,
            accesses: Vec::new(),
            writes: Vec::new(),
            first_write: None,
            last_write: None,
            handled: HashSet::new(),
            accounted: Vec::new(),
            unknown: None,
        }
    }

    /// Record a base-table access; returns its index.
    pub(crate) fn access(&mut self, table: String, read: bool) -> usize {
        self.accesses.push(Access {
            table,
            keys: Vec::new(),
            read,
        });
        self.accesses.len() - 1
    }

    /// Record a write.
    pub(crate) fn write(&mut self, write: PendingWrite) {
        self.first_write.get_or_insert(write.operation);
        self.writes.push(write);
    }

    /// Note something the analyser cannot model (the first reason is kept).
    pub(crate) fn unsupported(&mut self, why: impl Into<String>) {
        self.unknown
            .get_or_insert_with(|| Unknown::Unsupported(why.into()));
    }

    /// Mark a query as analysed (the finder will not analyse it again).
    pub(crate) fn mark_handled(&mut self, query: &Query) {
        self.handled.insert(query as *const Query);
    }

    /// Add `key` to the access it resolves to, if that access is in `allowed`
    /// (`None`: any entry of the scope may be narrowed).
    pub(crate) fn apply_key(&mut self, key: Key<'_>, scope: &Scope, allowed: Option<&[usize]>) {
        let Some(entry) = scope.resolve(&key.column, self.fold) else {
            return;
        };
        if allowed.is_some_and(|a| !a.contains(&entry)) {
            return;
        }
        let Some(access) = scope.entries[entry].access else {
            return;
        };
        let predicate = KeyPredicate {
            column: normalize(key.column.column),
            values: key.values,
        };
        let keys = &mut self.accesses[access].keys;
        if !keys.contains(&predicate) {
            keys.push(predicate);
        }
    }

    /// Apply every key conjunct of `condition` (see [`Analyzer::apply_key`]).
    pub(crate) fn apply_condition(
        &mut self,
        condition: &Expr,
        scope: &Scope,
        allowed: Option<&[usize]>,
    ) {
        for conjunct in conjuncts(condition) {
            if let Some(key) = key_of(conjunct, self.params) {
                self.apply_key(key, scope, allowed);
            }
        }
    }

    /// Analyse every subquery inside `node` that the structural walk has not
    /// (subqueries in expressions: `WHERE x IN (SELECT ...)`, `EXISTS`, scalar
    /// subqueries in the select list, `SET x = (SELECT ...)`, ...).
    pub(crate) fn find_subqueries<N: Visit>(&mut self, node: &N, env: &Env<'_>) {
        let mut finder = Finder {
            an: self,
            env,
            depth: 0,
        };
        let _ = node.visit(&mut finder);
    }

    /// Build the result.
    pub(crate) fn finish(
        mut self,
        statement: &Statement,
        operation: Operation,
        returning: bool,
    ) -> StatementAnalysis {
        self.backstop(statement);
        if self.unknown.is_none()
            && let Some(name) = opaque_function(statement, self.params.dialect)
        {
            self.unknown = Some(Unknown::Function(name));
        }
        let Self {
            accesses,
            writes,
            unknown,
            ..
        } = self;

        let mut reads: Vec<TableRead> = Vec::new();
        let mut all_tables: HashSet<&str> = HashSet::new();
        for a in accesses.iter().filter(|a| a.read && a.keys.is_empty()) {
            all_tables.insert(&a.table);
        }
        for a in accesses.iter().filter(|a| a.read) {
            let read = if all_tables.contains(a.table.as_str()) {
                TableRead {
                    table: a.table.clone(),
                    filter: RowFilter::All,
                }
            } else {
                TableRead {
                    table: a.table.clone(),
                    filter: RowFilter::Keys(a.keys.clone()),
                }
            };
            if !reads.contains(&read) {
                reads.push(read);
            }
        }
        reads.sort_by(|a, b| a.table.cmp(&b.table));

        let mut out_writes: Vec<TableWrite> = Vec::new();
        for w in writes {
            let filter = match w.access.map(|i| &accesses[i].keys) {
                Some(keys) if !keys.is_empty() => RowFilter::Keys(keys.clone()),
                _ => RowFilter::All,
            };
            let write = TableWrite {
                table: w.table,
                operation: w.operation,
                filter,
                set: w.set,
                inserted: w.inserted,
            };
            // Not deduplicated: one entry per write occurrence, so that `writes.len()
            // == 1` means a single write (the runtime trusts a single write's row
            // count; a writable CTE writing the same rows again must not look single).
            out_writes.push(write);
        }
        out_writes.sort_by(|a, b| a.table.cmp(&b.table));

        StatementAnalysis {
            operation,
            reads,
            writes: out_writes,
            returning,
            unknown,
        }
    }

    /// Add an all-rows read for every relation occurrence the walk did not account
    /// for: a name the visitor sees more often than the walk handled it.
    fn backstop(&mut self, statement: &Statement) {
        let mut names = Relations(Vec::new());
        let _ = statement.visit(&mut names);
        let mut seen: HashMap<String, usize> = HashMap::new();
        for name in names.0 {
            *seen.entry(name).or_default() += 1;
        }
        let mut missing: Vec<String> = Vec::new();
        for (name, count) in seen {
            let handled = self.accesses.iter().filter(|a| a.table == name).count()
                + self.accounted.iter().filter(|a| **a == name).count();
            if count > handled {
                missing.push(name);
            }
        }
        missing.sort();
        for name in missing {
            self.access(name, true);
        }
    }
}

/// Collects every relation name (normalized).
struct Relations(Vec<String>);

impl Visitor for Relations {
    type Break = ();
    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.0.push(table_name(relation));
        ControlFlow::Continue(())
    }
}

/// Finds the outermost queries under a node and analyses the ones not yet handled.
struct Finder<'a, 'p, 'e> {
    an: &'a mut Analyzer<'p>,
    env: &'a Env<'e>,
    depth: usize,
}

impl Visitor for Finder<'_, '_, '_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if self.depth == 0 && !self.an.handled.contains(&(query as *const Query)) {
            self.an.analyze_query(query, self.env);
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }
    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// Column → value pairs of assignments or an `INSERT` row.
pub(crate) fn column_value(column: &Ident, value: &Expr, params: &Params) -> ColumnValue {
    ColumnValue {
        column: normalize(column),
        value: params.value_of(value),
    }
}
