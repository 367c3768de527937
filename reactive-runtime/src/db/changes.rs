//! Read sets and change sets of intercepted statements, with parameter values from
//! wherever the interceptor knows them (see [`Values`]), and the pre-read that supplies
//! the old key values of rows an `UPDATE`/`DELETE` is about to change.

use std::collections::BTreeSet;

use reactive_codegen::sql::{Dialect, Operation, StatementAnalysis, ValueRef};
use serde_json::Value as Json;

use super::rewrite::WhereTemplate;
use crate::types::KeyValue;
use crate::types::ReadSet;
use crate::types::{ChangeSet, RelationEdge, RowChange};

/// How a pre-read binds the write's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Just the condition's arguments, renumbered from 1 (drivers whose arguments we can
    /// pick apart: `Any`; PostgreSQL would read an untyped unused argument as text).
    Compact,
    /// All of the write's `n` arguments, with the write's numbering (native drivers,
    /// whose arguments are opaque but typed).
    Original(usize),
}

/// The JSON value of a statement's parameter, by 1-based index; `None`: unknown.
pub type Values<'a> = dyn Fn(usize) -> Option<Json> + 'a;

/// Rows read back from the database, each a list of column values (`None`: no key form).
pub type JsonRows = [Vec<Option<Json>>];

fn key_of(value: &ValueRef, values: &Values<'_>, dialect: Dialect) -> Option<KeyValue> {
    match value {
        ValueRef::Param(p) => KeyValue::from_json(&values(p.index)?, dialect),
        ValueRef::Literal(l) => Some(KeyValue::from_literal(l, dialect)),
    }
}

/// The concrete read set of a statement, parameters resolved from `values`. A
/// predicate whose values can't all be resolved is dropped, which widens the read
/// (never narrows it).
pub fn reads_of(analysis: &StatementAnalysis, values: &Values<'_>, dialect: Dialect) -> ReadSet {
    let resolve =
        |p: &reactive_codegen::sql::Param| KeyValue::from_json(&values(p.index)?, dialect);
    ReadSet::from_statement(analysis, &resolve, dialect)
}

/// The change set of a write, before the pre-read (if any) adds old values.
pub fn change_of(analysis: &StatementAnalysis, values: &Values<'_>, dialect: Dialect) -> ChangeSet {
    let resolve =
        |p: &reactive_codegen::sql::Param| KeyValue::from_json(&values(p.index)?, dialect);
    ChangeSet::from_statement(analysis, &resolve, dialect)
}

fn cell(rows: &JsonRows, row: usize, column: usize) -> Option<&Json> {
    rows.get(row)?.get(column)?.as_ref()
}

/// A read of the affected rows' current values of some columns, run in the same
/// transaction right before the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreRead {
    /// The table written.
    pub table: String,
    /// Columns read, in the order of the `SELECT` list.
    pub columns: Vec<String>,
    /// `SELECT <columns> FROM <table> WHERE <condition> [FOR UPDATE]`, bound with all of
    /// the write's own arguments (see [`condition`]).
    pub sql: String,
    /// PostgreSQL, a subquery in the condition: the table reference to check the written
    /// rows against. The subquery reads rows the pre-read does not lock, so under READ
    /// COMMITTED the write's own snapshot may select as many *other* rows; the pre-read
    /// also reads each row's `ctid` (after `columns`), and after the write, inside its
    /// transaction, none of those row versions may still be visible (an updated or
    /// deleted row version is not), or the pre-read is not used.
    pub verify_from: Option<String>,
}

/// Which columns of the written table a pre-read should fetch: the `watched` ones
/// (columns some query filters on) that the change does not already know, except
/// `SET` columns whose new value is unknown (they stay unknown anyway).
#[allow(clippy::too_many_arguments)] // one call site; the inputs are independent
pub fn pre_read_plan(
    analysis: &StatementAnalysis,
    change: &ChangeSet,
    values: &Values<'_>,
    dialect: Dialect,
    watched: &BTreeSet<String>,
    template: Option<&WhereTemplate>,
    force: Option<&str>,
    binding: Binding,
) -> Option<PreRead> {
    if analysis.unknown.is_some() || analysis.writes.len() != 1 || change.is_everything() {
        return None;
    }
    let write = &analysis.writes[0];
    if !matches!(write.operation, Operation::Update | Operation::Delete) {
        return None;
    }
    let rows = change.rows(&write.table)?;
    let [row] = rows else { return None };
    let mut columns: Vec<String> = watched
        .iter()
        .filter(|c| row.values(c).is_none())
        .filter(|c| {
            // A SET column with an unknown new value: its old values would not help.
            !write.set.iter().any(|s| {
                &s.column == *c
                    && s.value
                        .as_ref()
                        .and_then(|v| key_of(v, values, dialect))
                        .is_none()
            })
        })
        .cloned()
        .collect();
    if columns.is_empty() {
        // Nothing unknown to read, but a cascade pre-read needs this one to lock the
        // written rows and to check their count.
        columns.push(force?.to_owned());
    }
    columns.sort();
    let template = template?;
    let lock = lock_clause(dialect);
    let condition = condition(template, dialect, binding)?;
    let mut columns_sql: Vec<String> = columns.iter().map(|c| key_column(c, dialect)).collect();
    let verify_from = (dialect == Dialect::Postgres && template.subquery).then(|| {
        columns_sql.push("ctid::text".to_owned());
        template.table.clone()
    });
    let sql = format!(
        "SELECT {} FROM {}{condition}{lock}",
        columns_sql.join(", "),
        template.table
    );
    Some(PreRead {
        table: write.table.clone(),
        columns,
        sql,
        verify_from,
    })
}

/// A column as a pre-read selects it: in the database's text form where the driver
/// could not decode its native type (uuid on MySQL/MariaDB, say); the catalog's column
/// class decides later whether that form is a key.
fn key_column(column: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => format!("{column}::text"),
        Dialect::MySql => format!("CAST({column} AS CHAR)"),
        Dialect::Sqlite => column.to_owned(),
    }
}

/// Adds the pre-read's old values to a single-table change: each pre-read column gets
/// the values the affected rows had, plus the `SET` value for columns the write sets.
pub fn add_old_values(
    change: &mut ChangeSet,
    analysis: &StatementAnalysis,
    pre: &PreRead,
    rows: &JsonRows,
    params: &Values<'_>,
    dialect: Dialect,
) {
    let Some(write) = analysis.writes.first() else {
        return;
    };
    let Some(table_rows) = change.tables.get_mut(&pre.table) else {
        return;
    };
    let [row] = table_rows.as_mut_slice() else {
        return;
    };
    for (i, column) in pre.columns.iter().enumerate() {
        let mut values = BTreeSet::new();
        let mut complete = true;
        for r in 0..rows.len() {
            match cell(rows, r, i).and_then(|v| KeyValue::from_json(v, dialect)) {
                Some(k) => {
                    values.insert(k);
                }
                None => complete = false,
            }
        }
        if !complete {
            continue;
        }
        if let Some(set) = write.set.iter().find(|s| &s.column == column) {
            match set.value.as_ref().and_then(|v| key_of(v, params, dialect)) {
                Some(new) => {
                    values.insert(new);
                }
                None => continue,
            }
        }
        row.columns.insert(column.clone(), values);
    }
}

/// How many rows one cascade pre-read may return; beyond it the target rows stay
/// known by the referencing column alone.
pub const CASCADE_CAP: usize = 10_000;

/// A read of the rows a relation edge reaches from the rows a `DELETE` (or an `UPDATE`
/// of the source key) is about to change, run right after the write's own pre-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadeRead {
    /// The edge followed.
    pub edge: RelationEdge,
    /// Columns of the target table read (watched ones, without the referencing column).
    pub columns: Vec<String>,
    /// `SELECT <columns> FROM <to> WHERE <to_column> IN (SELECT <from_column> FROM
    /// <table> WHERE <the write's condition>) LIMIT <cap + 1> [FOR UPDATE]`, bound with
    /// the write's own arguments.
    pub sql: String,
}

/// The cascade pre-read of `edge` for a write with this `WHERE` template, reading the
/// `watched` columns of the target table; `None` when the edge has no target column or
/// the only watched column is the referencing one (the plain edge is as precise).
pub fn cascade_plan(
    edge: &RelationEdge,
    watched: &BTreeSet<String>,
    template: &WhereTemplate,
    dialect: Dialect,
    binding: Binding,
) -> Option<CascadeRead> {
    let to_column = edge.to_column.as_ref()?;
    let columns: Vec<String> = watched
        .iter()
        .filter(|c| *c != to_column)
        .cloned()
        .collect();
    if columns.is_empty() {
        return None;
    }
    // A locking read sees the latest committed rows (MySQL: not the transaction's
    // snapshot), as the database's own cascade will.
    let lock = lock_clause(dialect);
    let condition = condition(template, dialect, binding)?;
    let columns_sql: Vec<String> = columns.iter().map(|c| key_column(c, dialect)).collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {to_column} IN (SELECT {} FROM {}{condition}) LIMIT {}{lock}",
        columns_sql.join(", "),
        edge.to_table,
        edge.from_column,
        template.table,
        CASCADE_CAP + 1,
    );
    Some(CascadeRead {
        edge: edge.clone(),
        columns,
        sql,
    })
}

/// Lists the rows each cascade read found as changed through its edge, with their real
/// key values, and marks the edge resolved on the written row (single-table change).
/// The referencing column takes the source row's key values (old and new) when known.
/// A read that returned more than [`CASCADE_CAP`] rows is left to plain expansion.
pub fn add_cascades(
    change: &mut ChangeSet,
    table: &str,
    cascades: Vec<(CascadeRead, Vec<Vec<Option<serde_json::Value>>>)>,
    dialect: Dialect,
) {
    let Some([source]) = change.tables.get(table).map(Vec::as_slice) else {
        return;
    };
    let source = source.clone();
    let mut resolved = BTreeSet::new();
    for (read, rows) in cascades {
        if rows.len() > CASCADE_CAP {
            continue;
        }
        resolved.insert(read.edge.clone());
        if rows.is_empty() {
            continue;
        }
        let mut target = RowChange::whole().via(read.edge.clone());
        target.op = read.edge.target_op(&source.op);
        if let (Some(to_column), Some(keys)) =
            (&read.edge.to_column, source.values(&read.edge.from_column))
        {
            target = target.with_values(to_column, keys.iter().cloned());
        }
        for (i, column) in read.columns.iter().enumerate() {
            let values: Option<BTreeSet<KeyValue>> = (0..rows.len())
                .map(|r| cell(&rows, r, i).and_then(|v| KeyValue::from_json(v, dialect)))
                .collect();
            if let Some(values) = values {
                target = target.with_values(column, values);
            }
        }
        change.push_row(&read.edge.to_table, target);
    }
    if let Some([source]) = change.tables.get_mut(table).map(Vec::as_mut_slice) {
        source.resolved.extend(resolved);
    }
}

/// A whole-table change for each table (a mutation's declared `invalidates(...)`).
pub fn whole_tables(tables: &[String]) -> ChangeSet {
    let mut out = ChangeSet::empty();
    for t in tables {
        out.push_row(t, RowChange::whole());
    }
    out
}

/// Locks the rows a pre-read selects where the database can (SQLite's `BEGIN IMMEDIATE`
/// already holds the write lock).
fn lock_clause(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres | Dialect::MySql => " FOR UPDATE",
        Dialect::Sqlite => "",
    }
}

/// ` WHERE <the statement's own condition>`, or nothing, for a read bound as `binding`
/// says. With all of the write's arguments, PostgreSQL and SQLite placeholders keep the
/// write's numbering (an argument the condition does not use is bound and ignored);
/// MySQL's `?` take the arguments in order, so the condition's must be the last ones,
/// in order, and each earlier argument gets a placeholder of its own in a condition
/// that is always true; `None` otherwise (the caller leaves old values unknown).
fn condition(template: &WhereTemplate, dialect: Dialect, binding: Binding) -> Option<String> {
    let arg_count = match binding {
        Binding::Compact => {
            return Some(match &template.compact {
                Some(condition) => format!(" WHERE {condition}"),
                None => String::new(),
            });
        }
        Binding::Original(n) => n,
    };
    let used = template.params.len();
    if dialect != Dialect::MySql {
        return Some(match &template.condition {
            Some(condition) => format!(" WHERE {condition}"),
            None => String::new(),
        });
    }
    let first = arg_count.checked_sub(used)? + 1;
    if template.params.iter().copied().ne(first..=arg_count) {
        return None;
    }
    let mut parts = vec!["(? IS NULL OR 1 = 1)".to_owned(); first - 1];
    if let Some(condition) = &template.condition {
        parts.push(format!("({condition})"));
    }
    Some(if parts.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", parts.join(" AND "))
    })
}
