//! [`ReadSet`]: what a cached query read, and the matcher deciding whether a
//! [`ChangeSet`] can affect it.
//!
//! Per table, a list of alternatives (one per access: two statements, or a self-join,
//! read the same table twice); each alternative is a conjunction `column ∈ {values}`,
//! the empty conjunction being the whole table. [`ReadSet::everything`] is a query that
//! ran a statement whose reads are unknown.
//!
//! A change affects a read set when, on a table both mention, some alternative and
//! some changed row agree on every column of the alternative: the row's value set
//! for that column is unknown, or it intersects the alternative's. Unknown always
//! matches, so the matcher may over-invalidate but never under-invalidates.

use std::collections::{BTreeMap, BTreeSet};

use reactive_codegen::model::{FunctionModel, KeySource};
use reactive_codegen::sql::{Dialect, KeyPredicate, Param, RowFilter, StatementAnalysis, ValueRef};
use serde::{Deserialize, Serialize};

use super::change::{ChangeSet, RowChange};
use super::key::KeyValue;
use super::report::Reason;

/// One way a query reads a table: rows where every listed column has one of the
/// listed values. No columns = every row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Conjunction {
    /// Column → accepted values (the row matches if its value is any of them).
    pub columns: BTreeMap<String, BTreeSet<KeyValue>>,
}

impl Conjunction {
    /// Every row.
    pub fn whole() -> Self {
        Self::default()
    }

    /// Adds `column ∈ values` (lower-cased name). A second call for the same column
    /// keeps the union of both value sets (a superset of the rows read).
    pub fn with_values(mut self, column: &str, values: impl IntoIterator<Item = KeyValue>) -> Self {
        let column = lowered(column);
        if let Some(set) = self.columns.get_mut(&*column) {
            set.extend(values);
        } else {
            self.columns
                .insert(column.into_owned(), values.into_iter().collect());
        }
        self
    }

    /// Adds `column = value`.
    pub fn with(self, column: &str, value: KeyValue) -> Self {
        self.with_values(column, [value])
    }

    /// `true` when the conjunction selects every row.
    pub fn is_whole(&self) -> bool {
        self.columns.is_empty()
    }

    /// Why `row` can affect the rows this conjunction selects, or `None` if it cannot.
    fn matches(&self, table: &str, row: &RowChange) -> Option<Reason> {
        let mut witness: Option<(&String, &KeyValue)> = None;
        for (column, wanted) in &self.columns {
            let Some(changed) = row.values(column) else {
                continue;
            };
            let common = wanted.intersection(changed).next()?;
            witness.get_or_insert((column, common));
        }
        Some(Reason {
            table: table.to_owned(),
            column: witness.map(|(c, _)| c.clone()),
            value: witness.map(|(_, v)| v.clone()),
            relation: row.via.clone(),
        })
    }

    /// `true` when [`Conjunction::matches`] would return `Some` (allocation-free).
    fn accepts(&self, row: &RowChange) -> bool {
        self.columns.iter().all(|(column, wanted)| {
            row.values(column)
                .is_none_or(|changed| wanted.intersection(changed).next().is_some())
        })
    }

    /// Approximate heap size in bytes (for cache weighing).
    fn approx_size(&self) -> usize {
        self.columns
            .iter()
            .map(|(c, vs)| c.len() + 32 + vs.iter().map(|v| v.as_str().len() + 24).sum::<usize>())
            .sum()
    }
}

/// What a cached query read (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadSet {
    /// The query ran a statement whose reads are unknown: any change affects it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everything: bool,
    /// Table (normalized name) → alternatives. A whole-table alternative absorbs the others.
    #[serde(default)]
    pub tables: BTreeMap<String, Vec<Conjunction>>,
}

impl ReadSet {
    /// Reads nothing (a constant query).
    pub fn empty() -> Self {
        Self::default()
    }

    /// May have read anything.
    pub fn everything() -> Self {
        Self {
            everything: true,
            tables: BTreeMap::new(),
        }
    }

    /// Every row of these tables.
    pub fn tables<S: AsRef<str>>(tables: impl IntoIterator<Item = S>) -> Self {
        let mut out = Self::empty();
        for t in tables {
            out.add(t.as_ref(), Conjunction::whole());
        }
        out
    }

    /// `true` when any change affects it.
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// `true` when no change can affect it.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.tables.is_empty()
    }

    /// Adds an alternative for a table (name lower-cased).
    pub fn add(&mut self, table: &str, conjunction: Conjunction) {
        let table = lowered(table);
        if !self.tables.contains_key(&*table) {
            self.tables.insert(table.clone().into_owned(), Vec::new());
        }
        let Some(alts) = self.tables.get_mut(&*table) else {
            return;
        };
        if alts.iter().any(Conjunction::is_whole) || alts.contains(&conjunction) {
            return;
        }
        if conjunction.is_whole() {
            alts.clear();
        }
        alts.push(conjunction);
    }

    /// Builder form of [`ReadSet::add`].
    pub fn with(mut self, table: &str, conjunction: Conjunction) -> Self {
        self.add(table, conjunction);
        self
    }

    /// Adds everything `other` reads, taking its parts instead of cloning them.
    pub fn union_owned(&mut self, other: ReadSet) {
        if self.is_empty() {
            *self = other;
            return;
        }
        self.everything |= other.everything;
        for (table, alts) in other.tables {
            for alt in alts {
                self.add(&table, alt);
            }
        }
    }

    /// Adds everything `other` reads.
    pub fn union(&mut self, other: &ReadSet) {
        self.everything |= other.everything;
        for (table, alts) in &other.tables {
            for alt in alts {
                self.add(table, alt.clone());
            }
        }
    }

    /// The read set a function's model promises for one call, from the values of its
    /// bindings (`bindings[i]` is the value of `model.bindings[i]`). A key whose value
    /// is missing or not a scalar is dropped from its conjunction (which widens it).
    pub fn from_model(model: &FunctionModel, bindings: &[serde_json::Value]) -> Self {
        let mut out = Self::empty();
        for dep in &model.dependencies {
            let mut conj = Conjunction::whole();
            for key in &dep.keys {
                let values: Option<BTreeSet<KeyValue>> = key
                    .values
                    .iter()
                    .map(|source| match source {
                        KeySource::Binding(i) => bindings
                            .get(*i)
                            .and_then(|v| KeyValue::from_json(v, model.dialect)),
                        KeySource::Literal(l) => Some(KeyValue::from_literal(l, model.dialect)),
                    })
                    .collect();
                if let Some(values) = values {
                    conj = conj.with_values(&key.column, values);
                }
            }
            out.add(&dep.table, conj);
        }
        out
    }

    /// The reads of one executed statement, from its analysis and its parameter values
    /// (`resolve` returns `None` for unknown values). An unknown statement reads everything.
    pub fn from_statement(
        analysis: &StatementAnalysis,
        resolve: &dyn Fn(&Param) -> Option<KeyValue>,
        dialect: Dialect,
    ) -> Self {
        if analysis.unknown.is_some() {
            return Self::everything();
        }
        let mut out = Self::empty();
        for read in &analysis.reads {
            let conj = match &read.filter {
                RowFilter::All => Conjunction::whole(),
                RowFilter::Keys(preds) => conjunction_of(preds, resolve, dialect),
            };
            out.add(&read.table, conj);
        }
        out
    }

    /// `true` if the change can affect what this read set read. Same answer as
    /// `!self.reasons(changes, 1).is_empty()`, without allocating.
    pub fn is_affected_by(&self, changes: &ChangeSet) -> bool {
        if self.is_empty() || changes.is_empty() {
            return false;
        }
        if changes.is_everything() || self.everything {
            return true;
        }
        self.tables.iter().any(|(table, alts)| {
            changes
                .rows(table)
                .is_some_and(|rows| rows.iter().any(|row| alts.iter().any(|a| a.accepts(row))))
        })
    }

    /// Why the change can affect this read set: up to `limit` reasons (one per matching
    /// table and changed row), empty if it cannot.
    pub fn reasons(&self, changes: &ChangeSet, limit: usize) -> Vec<Reason> {
        let mut out = Vec::new();
        if self.is_empty() || changes.is_empty() || limit == 0 {
            return out;
        }
        if changes.is_everything() || self.everything {
            out.push(Reason::everything(changes.table_names().next()));
            return out;
        }
        for (table, alts) in &self.tables {
            let Some(rows) = changes.rows(table) else {
                continue;
            };
            for row in rows {
                if let Some(reason) = alts.iter().find_map(|a| a.matches(table, row)) {
                    if !out.contains(&reason) {
                        out.push(reason);
                    }
                    if out.len() >= limit {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Approximate heap size in bytes (for cache weighing).
    pub fn approx_size(&self) -> usize {
        self.tables
            .iter()
            .map(|(t, alts)| {
                t.len() + 48 + alts.iter().map(Conjunction::approx_size).sum::<usize>()
            })
            .sum()
    }
}

/// `name` lower-cased, borrowed when it already is (the common case: no allocation).
pub(crate) fn lowered(name: &str) -> std::borrow::Cow<'_, str> {
    if name.is_ascii() && !name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(name.to_lowercase())
    }
}

fn conjunction_of(
    preds: &[KeyPredicate],
    resolve: &dyn Fn(&Param) -> Option<KeyValue>,
    dialect: Dialect,
) -> Conjunction {
    let mut conj = Conjunction::whole();
    let mut unknown = BTreeSet::new();
    for p in preds {
        let values: Option<BTreeSet<KeyValue>> = p
            .values
            .iter()
            .map(|v| match v {
                ValueRef::Param(p) => resolve(p),
                ValueRef::Literal(l) => Some(KeyValue::from_literal(l, dialect)),
            })
            .collect();
        match values {
            Some(vs) => conj = conj.with_values(&p.column, vs),
            None => {
                unknown.insert(p.column.to_lowercase());
            }
        }
    }
    for c in unknown {
        conj.columns.remove(&c);
    }
    conj
}
