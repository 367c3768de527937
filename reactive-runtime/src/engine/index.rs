//! [`Index`]: finds the read sets a change set can affect without looking at the
//! ones it cannot.
//!
//! Each alternative of a read set is posted once per table: whole-table alternatives
//! in a per-table list; keyed ones under one of their columns (the one with fewest
//! values) and each of its values. A changed row then only visits
//! - the table's whole-table list,
//! - for each indexed column the row knows: the postings of the row's values,
//! - for each indexed column the row does not know: every posting of that column
//!   (the change says nothing about it, so all of them may match),
//!
//! and every candidate is confirmed by the full matcher ([`ReadSet::reasons`]). The
//! cost therefore grows with the entries that share a key value with the change (and
//! with the number of distinct indexed columns), not with unrelated entries.

use std::collections::{HashMap, HashSet};

use super::change::ChangeSet;
use super::key::KeyValue;
use super::read::{Conjunction, ReadSet};
use super::report::Reason;

/// Most reasons kept per matched entry.
pub const MAX_REASONS: usize = 8;

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

/// An index of read sets, each stored under a caller-chosen `u64` id with a payload `K`
/// (a cache key, a subscription).
#[derive(Debug)]
pub struct Index<K> {
    entries: HashMap<u64, (K, ReadSet)>,
    everything: HashSet<u64>,
    tables: HashMap<String, TablePostings>,
}

impl<K> Default for Index<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            everything: HashSet::new(),
            tables: HashMap::new(),
        }
    }
}

/// The column a keyed conjunction is posted under: fewest values, then name.
fn posting_column(conj: &Conjunction) -> Option<(&String, &std::collections::BTreeSet<KeyValue>)> {
    conj.columns
        .iter()
        .min_by_key(|(c, vs)| (vs.len(), c.as_str()))
}

impl<K: Clone> Index<K> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of indexed read sets.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Indexes `reads` under `id` (replacing what `id` had).
    pub fn insert(&mut self, id: u64, payload: K, reads: ReadSet) {
        self.remove(id);
        if reads.everything {
            self.everything.insert(id);
        }
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
        self.entries.insert(id, (payload, reads));
    }

    /// Removes `id`; returns its payload.
    pub fn remove(&mut self, id: u64) -> Option<K> {
        let (payload, reads) = self.entries.remove(&id)?;
        self.everything.remove(&id);
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
        Some(payload)
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.everything.clear();
        self.tables.clear();
    }

    /// Ids that *may* be affected (a superset of the affected ones).
    fn candidates(&self, changes: &ChangeSet) -> HashSet<u64> {
        if changes.is_empty() {
            return HashSet::new();
        }
        if changes.is_everything() {
            return self.entries.keys().copied().collect();
        }
        let mut out: HashSet<u64> = self.everything.clone();
        for (table, rows) in &changes.tables {
            let Some(postings) = self.tables.get(table) else {
                continue;
            };
            out.extend(&postings.whole);
            for (column, col) in &postings.columns {
                for row in rows {
                    match row.values(column) {
                        None => {
                            out.extend(&col.all);
                            break;
                        }
                        Some(values) => {
                            for v in values {
                                if let Some(ids) = col.by_value.get(v) {
                                    out.extend(ids);
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// The indexed read sets the change can affect: `(id, payload, reasons)`, sorted by id.
    pub fn affected(&self, changes: &ChangeSet) -> Vec<(u64, K, Vec<Reason>)> {
        let mut out: Vec<(u64, K, Vec<Reason>)> = self
            .candidates(changes)
            .into_iter()
            .filter_map(|id| {
                let (payload, reads) = self.entries.get(&id)?;
                let reasons = reads.reasons(changes, MAX_REASONS);
                (!reasons.is_empty()).then(|| (id, payload.clone(), reasons))
            })
            .collect();
        out.sort_by_key(|(id, _, _)| *id);
        out
    }

    /// How many candidates the index would visit for `changes` (for tests and benches).
    pub fn candidate_count(&self, changes: &ChangeSet) -> usize {
        self.candidates(changes).len()
    }
}
