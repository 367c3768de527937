//! [`FanoutIndex`]: finds the connections of a tenant an event may concern without
//! looking at the others.
//!
//! Each connection is posted once, from its subscription's index terms
//! (`Subscription::index_terms`, computed once per distinct subscription and shared):
//! - `*` entries, and read sets that read everything, in an "always" list;
//! - each subscribed query key in a key → connections map (an event's `invalidated`
//!   keys match those directly);
//! - the union of its read sets in the same [`Postings`] the cache's index uses (by
//!   table, column and value).
//!
//! The result is a superset of the connections that match; the hub confirms each
//! candidate with the subscription's full matcher, so behaviour is unchanged.

use std::collections::{HashMap, HashSet};

use super::subscription::Subscription;
use crate::realtime::EventRecord;
use crate::types::Postings;

/// Connections of one tenant, indexed by what their subscriptions can match.
#[derive(Debug, Default)]
pub(crate) struct FanoutIndex {
    /// Each connection's subscription (shared, not copied), to remove its postings.
    terms: HashMap<u64, Subscription>,
    always: HashSet<u64>,
    keys: HashMap<String, HashSet<u64>>,
    postings: Postings,
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
        self.postings.post(id, reads);
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
        self.postings.unpost(id, reads);
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
        self.postings.candidates(changes, out);
        out.sort_unstable();
        out.dedup();
    }
}
