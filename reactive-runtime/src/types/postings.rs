//! [`Postings`]: the table → column → value lists behind both indexes of read sets (the
//! cache's [`Index`](super::index::Index) and the SSE fan-out index).
//!
//! Each alternative of a read set is posted once per table: whole-table alternatives
//! in a per-table list; keyed ones under one of their columns (the one with fewest
//! values) and each of its values. A changed row then only visits
//! - the table's whole-table list,
//! - for each indexed column the row knows: the postings of the row's values,
//! - for each indexed column the row does not know: every posting of that column
//!   (the change says nothing about it, so all of them may match).
//!
//! The ids found are a superset of the read sets the change affects; callers confirm
//! each with the full matcher. Read sets that read everything are the caller's to keep.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::change::ChangeSet;
use super::key::KeyValue;
use super::read::{Conjunction, ReadSet};

#[derive(Debug, Default)]
struct ColumnPostings {
    all: HashSet<u64>,
    by_value: HashMap<KeyValue, HashSet<u64>>,
}

#[derive(Debug, Default)]
struct TablePostings {
    whole: HashSet<u64>,
    columns: HashMap<String, ColumnPostings>,
}

/// Ids posted under the tables, columns and values of their read sets.
#[derive(Debug, Default)]
pub struct Postings {
    tables: HashMap<String, TablePostings>,
}

/// The column a keyed conjunction is posted under: fewest values, then name.
fn posting_column(conj: &Conjunction) -> Option<(&String, &BTreeSet<KeyValue>)> {
    conj.columns
        .iter()
        .min_by_key(|(c, vs)| (vs.len(), c.as_str()))
}

impl Postings {
    /// Posts `id` under every alternative of `reads`.
    pub fn post(&mut self, id: u64, reads: &ReadSet) {
        for (table, alts) in &reads.tables {
            let postings = self.tables.entry(table.clone()).or_default();
            for alt in alts {
                match posting_column(alt) {
                    None => {
                        postings.whole.insert(id);
                    }
                    Some((column, values)) => {
                        let col = postings.columns.entry(column.clone()).or_default();
                        col.all.insert(id);
                        for v in values {
                            col.by_value.entry(v.clone()).or_default().insert(id);
                        }
                    }
                }
            }
        }
    }

    /// Removes what [`Postings::post`] posted for `id` with the same `reads`.
    pub fn unpost(&mut self, id: u64, reads: &ReadSet) {
        for (table, alts) in &reads.tables {
            let Some(postings) = self.tables.get_mut(table) else {
                continue;
            };
            for alt in alts {
                match posting_column(alt) {
                    None => {
                        postings.whole.remove(&id);
                    }
                    Some((column, values)) => {
                        let Some(col) = postings.columns.get_mut(column) else {
                            continue;
                        };
                        col.all.remove(&id);
                        for v in values {
                            if let Some(set) = col.by_value.get_mut(v) {
                                set.remove(&id);
                                if set.is_empty() {
                                    col.by_value.remove(v);
                                }
                            }
                        }
                        if col.all.is_empty() {
                            postings.columns.remove(column);
                        }
                    }
                }
            }
            if postings.whole.is_empty() && postings.columns.is_empty() {
                self.tables.remove(table);
            }
        }
    }

    /// Adds to `out` the ids whose posted read sets `changes` may affect (with
    /// duplicates). A change of *everything* is the caller's to handle.
    pub fn candidates(&self, changes: &ChangeSet, out: &mut impl Extend<u64>) {
        for (table, rows) in &changes.tables {
            let Some(postings) = self.tables.get(table) else {
                continue;
            };
            out.extend(postings.whole.iter().copied());
            for (column, col) in &postings.columns {
                for row in rows {
                    match row.values(column) {
                        None => {
                            out.extend(col.all.iter().copied());
                            break;
                        }
                        Some(values) => {
                            for v in values {
                                if let Some(ids) = col.by_value.get(v) {
                                    out.extend(ids.iter().copied());
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.tables.clear();
    }
}
