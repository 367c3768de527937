//! [`ChangeSet`]: what a write may have changed.
//!
//! Per table, a list of [`RowChange`]s; each describes some affected rows by the
//! values their columns had *before or after* the write. A column a row change does
//! not mention is unknown and matches anything; a row change with no columns is the
//! whole table. [`ChangeSet::everything`] is a write whose effect is unknown (DDL,
//! unparseable or multi-statement SQL).

use std::collections::{BTreeMap, BTreeSet};

use reactive_codegen::sql::{
    ColumnValue, Dialect, KeyPredicate, Operation, Param, RowFilter, StatementAnalysis, TableWrite,
    ValueRef,
};
use serde::{Deserialize, Serialize};

use super::key::KeyValue;
use super::relations::RelationEdge;

/// Some rows of one table, by the known values of some of their columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RowChange {
    /// Column → every value the affected rows may have had in it, before or after.
    /// A column absent here is unknown.
    pub columns: BTreeMap<String, BTreeSet<KeyValue>>,
    /// Set when this row change was added by relation expansion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<RelationEdge>,
    /// What the write did to these rows, when known; decides whether the change
    /// propagates through relation edges (see [`RowOp`]).
    #[serde(default, skip_serializing_if = "RowOp::is_unknown")]
    pub op: RowOp,
    /// Relation edges whose target rows are already listed in the change set, with
    /// their real key values (read before the write, see `ReactiveDb`'s module docs):
    /// [`Relations::expand`](super::relations::Relations::expand) does not add the
    /// imprecise (referencing-column only) rows for these edges.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub resolved: BTreeSet<RelationEdge>,
}

/// What a write did to some rows, as far as relation expansion cares.
///
/// Relation edges model what a database propagates from a parent row to the rows that
/// reference it (foreign-key `ON DELETE` / `ON UPDATE` actions): that happens when the
/// parent row is deleted or its referenced key changes, never when it is inserted or
/// when other columns change. [`Relations::expand`](super::relations::Relations::expand)
/// therefore skips inserts and updates that set no source key column. `Unknown`
/// always propagates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowOp {
    /// Not known: propagates.
    #[default]
    Unknown,
    /// New rows: nothing references them yet.
    Insert,
    /// Updated rows, with the columns the `SET` assigns (lower-cased).
    Update(BTreeSet<String>),
    /// Deleted rows: propagates.
    Delete,
}

impl RowOp {
    /// `true` for [`RowOp::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, RowOp::Unknown)
    }

    /// Whether a change of this kind reaches rows referencing `key_column` of the source.
    pub fn propagates_through(&self, key_column: &str) -> bool {
        match self {
            RowOp::Unknown | RowOp::Delete => true,
            RowOp::Insert => false,
            RowOp::Update(set) => set.contains(key_column),
        }
    }
}

impl RowChange {
    /// Any row of the table (all columns unknown).
    pub fn whole() -> Self {
        Self::default()
    }

    /// Adds values for a column (names are lower-cased). Several calls for one column
    /// accumulate (before and after values).
    pub fn with_values(mut self, column: &str, values: impl IntoIterator<Item = KeyValue>) -> Self {
        self.columns
            .entry(column.to_lowercase())
            .or_default()
            .extend(values);
        self
    }

    /// Adds one value for a column.
    pub fn with(self, column: &str, value: KeyValue) -> Self {
        self.with_values(column, [value])
    }

    /// Marks the row change as produced by a relation edge.
    pub fn via(mut self, edge: RelationEdge) -> Self {
        self.via = Some(edge);
        self
    }

    /// The known values of `column`, or `None` when unknown.
    pub fn values(&self, column: &str) -> Option<&BTreeSet<KeyValue>> {
        self.columns.get(column)
    }

    /// `true` when no column is known (any row of the table).
    pub fn is_whole(&self) -> bool {
        self.columns.is_empty()
    }
}

/// What a write (or a committed transaction's writes) may have changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    /// The effect is unknown: anything may have changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everything: bool,
    /// Table (normalized name) → changed rows.
    #[serde(default)]
    pub tables: BTreeMap<String, Vec<RowChange>>,
}

impl ChangeSet {
    /// No change.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Anything may have changed.
    pub fn everything() -> Self {
        Self {
            everything: true,
            tables: BTreeMap::new(),
        }
    }

    /// Every row of each of these tables.
    pub fn tables<S: AsRef<str>>(tables: impl IntoIterator<Item = S>) -> Self {
        let mut out = Self::empty();
        for t in tables {
            out.push_row(t.as_ref(), RowChange::whole());
        }
        out
    }

    /// `true` when the effect is unknown.
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// `true` when nothing changed.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.tables.is_empty()
    }

    /// The row changes of a table.
    pub fn rows(&self, table: &str) -> Option<&[RowChange]> {
        self.tables.get(table).map(Vec::as_slice)
    }

    /// The tables touched, sorted (empty for [`ChangeSet::everything`]).
    pub fn table_names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// Adds a row change to a table (name lower-cased); identical row changes are kept once.
    pub fn push_row(&mut self, table: &str, row: RowChange) {
        let rows = self.tables.entry(table.to_lowercase()).or_default();
        if !rows.contains(&row) {
            rows.push(row);
        }
    }

    /// Builder form of [`ChangeSet::push_row`].
    pub fn with_row(mut self, table: &str, row: RowChange) -> Self {
        self.push_row(table, row);
        self
    }

    /// Adds everything another change set changed (a transaction's writes at commit).
    pub fn merge(&mut self, other: &ChangeSet) {
        self.everything |= other.everything;
        for (table, rows) in &other.tables {
            for row in rows {
                self.push_row(table, row.clone());
            }
        }
    }

    /// The change set of one executed statement, from its analysis and the values of
    /// its bind parameters (`resolve` returns `None` for a parameter whose value is
    /// unknown). Conservative: whatever cannot be resolved becomes unknown.
    ///
    /// - unknown statements (DDL, parse errors, several statements): everything;
    /// - `INSERT`: one row change per inserted row with its known column values
    ///   (columns not listed, e.g. generated ids, are unknown); `INSERT ... SELECT`: whole table;
    /// - `UPDATE`: columns of the `WHERE` key predicates with their values, plus the `SET`
    ///   value for columns both filtered and set (a column only `SET` had an unknown old value);
    /// - `DELETE`: the columns of the `WHERE` key predicates;
    /// - upserts: the whole table (the conflicting row's old values are unknown) — callers that
    ///   know the old and new rows (e.g. from `RETURNING`) can describe them with [`ChangeSet::push_row`].
    pub fn from_statement(
        analysis: &StatementAnalysis,
        resolve: &dyn Fn(&Param) -> Option<KeyValue>,
        dialect: Dialect,
    ) -> Self {
        if analysis.unknown.is_some() || analysis.operation == Operation::Ddl {
            return Self::everything();
        }
        let mut out = Self::empty();
        for write in &analysis.writes {
            for row in rows_of_write(write, resolve, dialect) {
                out.push_row(&write.table, row);
            }
        }
        if out.tables.is_empty() && analysis.operation.is_write() {
            // A write the analysis could not attribute to a table.
            return Self::everything();
        }
        out
    }
}

fn resolve_value(
    value: &ValueRef,
    resolve: &dyn Fn(&Param) -> Option<KeyValue>,
    dialect: Dialect,
) -> Option<KeyValue> {
    match value {
        ValueRef::Param(p) => resolve(p),
        ValueRef::Literal(l) => Some(KeyValue::from_literal(l, dialect)),
    }
}

fn resolve_all(
    values: &[ValueRef],
    resolve: &dyn Fn(&Param) -> Option<KeyValue>,
    dialect: Dialect,
) -> Option<BTreeSet<KeyValue>> {
    values
        .iter()
        .map(|v| resolve_value(v, resolve, dialect))
        .collect()
}

/// Column → values known from a conjunction of key predicates. A column is left out
/// when any of its values is unknown; repeated columns take the union (a superset).
fn filter_columns(
    preds: &[KeyPredicate],
    resolve: &dyn Fn(&Param) -> Option<KeyValue>,
    dialect: Dialect,
) -> BTreeMap<String, BTreeSet<KeyValue>> {
    let mut unknown: BTreeSet<&str> = BTreeSet::new();
    let mut out: BTreeMap<String, BTreeSet<KeyValue>> = BTreeMap::new();
    for p in preds {
        match resolve_all(&p.values, resolve, dialect) {
            Some(vals) => out.entry(p.column.to_lowercase()).or_default().extend(vals),
            None => {
                unknown.insert(&p.column);
            }
        }
    }
    for c in unknown {
        out.remove(&c.to_lowercase());
    }
    out
}

fn rows_of_write(
    write: &TableWrite,
    resolve: &dyn Fn(&Param) -> Option<KeyValue>,
    dialect: Dialect,
) -> Vec<RowChange> {
    match write.operation {
        Operation::Insert => match &write.inserted {
            Some(rows) if !rows.is_empty() => rows
                .iter()
                .map(|r| inserted_row(r, resolve, dialect))
                .collect(),
            _ => vec![RowChange {
                op: RowOp::Insert,
                ..RowChange::whole()
            }],
        },
        Operation::Update | Operation::Delete => {
            let RowFilter::Keys(preds) = &write.filter else {
                let mut whole = RowChange::whole();
                if write.operation == Operation::Update {
                    whole.op =
                        RowOp::Update(write.set.iter().map(|c| c.column.to_lowercase()).collect());
                } else {
                    whole.op = RowOp::Delete;
                }
                return vec![whole];
            };
            let mut columns = filter_columns(preds, resolve, dialect);
            if write.operation == Operation::Update {
                for ColumnValue { column, value } in &write.set {
                    let column = column.to_lowercase();
                    let Some(known) = columns.get_mut(&column) else {
                        continue;
                    };
                    match value
                        .as_ref()
                        .and_then(|v| resolve_value(v, resolve, dialect))
                    {
                        Some(v) => {
                            known.insert(v);
                        }
                        None => {
                            columns.remove(&column);
                        }
                    }
                }
            }
            let op = if write.operation == Operation::Update {
                RowOp::Update(write.set.iter().map(|c| c.column.to_lowercase()).collect())
            } else {
                RowOp::Delete
            };
            vec![RowChange {
                columns,
                op,
                ..RowChange::whole()
            }]
        }
        // Upserts, and any operation this version does not model: the whole table.
        _ => vec![RowChange::whole()],
    }
}

fn inserted_row(
    row: &[ColumnValue],
    resolve: &dyn Fn(&Param) -> Option<KeyValue>,
    dialect: Dialect,
) -> RowChange {
    let mut out = RowChange::whole();
    let mut unknown = BTreeSet::new();
    for ColumnValue { column, value } in row {
        match value
            .as_ref()
            .and_then(|v| resolve_value(v, resolve, dialect))
        {
            Some(v) => out = out.with(column, v),
            None => {
                unknown.insert(column.to_lowercase());
            }
        }
    }
    for c in unknown {
        out.columns.remove(&c);
    }
    out.op = RowOp::Insert;
    out
}

/// Where a change set was applied first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOrigin {
    /// By this instance.
    Local,
    /// By another instance; received from the event bus.
    Remote,
}
