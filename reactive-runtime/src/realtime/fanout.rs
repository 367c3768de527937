//! [`FanoutIndex`]: finds the connections of a tenant an event may concern without
//! looking at the others.
//!
//! Each connection is posted once, from its subscription's index terms
//! (`Subscription::index_terms`, computed once per distinct subscription and shared):
//! - `*` entries, and read sets that read everything, in an "always" list;
//! - each subscribed query key in a key → connections map (an event's `invalidated`
//!   keys match those directly);
//! - each alternative of the union of its read sets like `engine/index.rs` posts cache
//!   entries: whole-table alternatives in a per-table list, keyed ones under one of
//!   their columns (the one with fewest values) and each of its values.
//!
//! A changed row then visits the table's whole-table list, the postings of its values
//! for each indexed column it knows, and every posting of an indexed column it does not
//! know. The result is a superset of the connections that match; the hub confirms each
//! candidate with the subscription's full matcher, so behaviour is unchanged.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::subscription::Subscription;
use crate::engine::{Conjunction, KeyValue};
use crate::realtime::EventRecord;

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

/// Connections of one tenant, indexed by what their subscriptions can match.
#[derive(Debug, Default)]
pub(crate) struct FanoutIndex {
    /// Each connection's subscription (shared, not copied), to remove its postings.
    terms: HashMap<u64, Subscription>,
    always: HashSet<u64>,
    keys: HashMap<String, HashSet<u64>>,
    tables: HashMap<String, TablePostings>,
}

/// The column a keyed conjunction is posted under: fewest values, then name.
fn posting_column(conj: &Conjunction) -> Option<(&String, &BTreeSet<KeyValue>)> {
    conj.columns
        .iter()
        .min_by_key(|(c, vs)| (vs.len(), c.as_str()))
}

impl FanoutIndex {
    /// Posts connection `id` (replacing what it had).
    pub(crate) fn insert(&mut self, id: u64, subscription: Subscription) {
        self.remove(id);
        let (all, keys, reads) = subscription.index_terms();
        let always = all || reads.is_everything();
        if always {
            self.always.insert(id);
        }
        for key in keys {
            self.keys.entry(key.clone()).or_default().insert(id);
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
        self.terms.insert(id, subscription);
    }

    /// Removes connection `id`.
    pub(crate) fn remove(&mut self, id: u64) {
        let Some(subscription) = self.terms.remove(&id) else {
            return;
        };
        let (_, keys, reads) = subscription.index_terms();
        self.always.remove(&id);
        for key in keys {
            if let Some(set) = self.keys.get_mut(key) {
                set.remove(&id);
                if set.is_empty() {
                    self.keys.remove(key);
                }
            }
        }
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

    /// Fills `out` with the ids that *may* match `record` (a superset of the matching
    /// ones), sorted and without duplicates.
    pub(crate) fn candidates(&self, record: &EventRecord, out: &mut Vec<u64>) {
        out.clear();
        let changes = &record.changes;
        if changes.is_everything() {
            out.extend(self.terms.keys());
            out.sort_unstable();
            return;
        }
        out.extend(&self.always);
        for key in &record.invalidated {
            if let Some(ids) = self.keys.get(key) {
                out.extend(ids);
            }
        }
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
        out.sort_unstable();
        out.dedup();
    }
}
