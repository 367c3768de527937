//! [`Index`]: finds the read sets a change set can affect without looking at the
//! ones it cannot.
//!
//! Read sets are posted in [`Postings`] (by table, column and value); every candidate
//! a change visits is confirmed by the full matcher ([`ReadSet::reasons`]). The cost
//! therefore grows with the entries that share a key value with the change (and with
//! the number of distinct indexed columns), not with unrelated entries.

use std::collections::{HashMap, HashSet};

use super::change::ChangeSet;
use super::postings::Postings;
use super::read::ReadSet;
use super::report::Reason;

/// Most reasons kept per matched entry.
pub const MAX_REASONS: usize = 8;

/// An index of read sets, each stored under a caller-chosen `u64` id with a payload `K`
/// (a cache key, a subscription).
#[derive(Debug)]
pub struct Index<K> {
    entries: HashMap<u64, (K, ReadSet)>,
    everything: HashSet<u64>,
    postings: Postings,
}

impl<K> Default for Index<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            everything: HashSet::new(),
            postings: Postings::default(),
        }
    }
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
        self.postings.post(id, &reads);
        self.entries.insert(id, (payload, reads));
    }

    /// The payload and read set indexed under `id`.
    pub fn get(&self, id: u64) -> Option<(&K, &ReadSet)> {
        self.entries.get(&id).map(|(k, r)| (k, r))
    }

    /// Removes `id`; returns its payload.
    pub fn remove(&mut self, id: u64) -> Option<K> {
        let (payload, reads) = self.entries.remove(&id)?;
        self.everything.remove(&id);
        self.postings.unpost(id, &reads);
        Some(payload)
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.everything.clear();
        self.postings.clear();
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
        self.postings.candidates(changes, &mut out);
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
