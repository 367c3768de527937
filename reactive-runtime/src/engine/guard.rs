//! The stale-set race guard: a sequence number and a bounded ring of recent changes.
//!
//! A computation records the sequence when it starts. When it wants to store its
//! result, the guard checks its final read set against every change applied since;
//! any match, or a gap (the ring overflowed), means the result may predate a write
//! whose invalidation already ran, so it must not be stored.
//!
//! The check and the store happen under a shared lock that applying a change takes
//! exclusively (only to append to the ring, not while invalidating). So a change is
//! either in the ring before a store's check (and the check sees it), or appended
//! after the store finished (and its invalidation, which runs after, removes the entry).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::types::ChangeSet;
use crate::types::ReadSet;

/// Recent changes with their sequence numbers.
#[derive(Debug)]
pub(crate) struct Ring {
    seq: u64,
    capacity: usize,
    recent: VecDeque<(u64, Arc<ChangeSet>)>,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            seq: 0,
            capacity: capacity.max(1),
            recent: VecDeque::new(),
        }
    }

    /// The sequence number of the last applied change.
    pub(crate) fn sequence(&self) -> u64 {
        self.seq
    }

    /// Appends a change; returns its sequence number.
    pub(crate) fn push(&mut self, changes: Arc<ChangeSet>) -> u64 {
        self.seq += 1;
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back((self.seq, changes));
        self.seq
    }

    /// `true` if a change applied after `start` up to `until` (inclusive) can affect
    /// `reads`, or if some of those changes are no longer in the ring.
    pub(crate) fn conflicts(&self, start: u64, until: u64, reads: &ReadSet) -> bool {
        if until <= start {
            return false;
        }
        match self.recent.front() {
            Some((oldest, _)) if *oldest <= start + 1 => {}
            _ => return true, // overflow: changes after `start` were dropped from the ring
        }
        self.recent
            .iter()
            .filter(|(seq, _)| *seq > start && *seq <= until)
            .any(|(_, changes)| reads.is_affected_by(changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Conjunction, KeyValue, RowChange};

    fn org(n: i64) -> ReadSet {
        ReadSet::empty().with(
            "agent",
            Conjunction::whole().with("organization_id", KeyValue::from_i64(n)),
        )
    }
    fn change_org(n: i64) -> Arc<ChangeSet> {
        Arc::new(ChangeSet::empty().with_row(
            "agent",
            RowChange::whole().with("organization_id", KeyValue::from_i64(n)),
        ))
    }

    #[test]
    fn only_later_matching_changes_conflict() {
        let mut ring = Ring::new(8);
        let s0 = ring.sequence();
        ring.push(change_org(1));
        let s1 = ring.sequence();
        ring.push(change_org(2));
        assert!(ring.conflicts(s0, ring.sequence(), &org(1)));
        assert!(
            !ring.conflicts(s1, ring.sequence(), &org(1)),
            "change 1 happened before start"
        );
        assert!(ring.conflicts(s1, ring.sequence(), &org(2)));
        assert!(!ring.conflicts(s0, ring.sequence(), &org(3)));
        assert!(!ring.conflicts(ring.sequence(), ring.sequence(), &org(2)));
    }

    #[test]
    fn overflow_is_a_conflict() {
        let mut ring = Ring::new(2);
        let s0 = ring.sequence();
        for n in 10..13 {
            ring.push(change_org(n));
        }
        assert!(
            ring.conflicts(s0, ring.sequence(), &org(1)),
            "the change right after s0 fell out of the ring"
        );
        assert!(!ring.conflicts(s0 + 1, ring.sequence(), &org(1)));
    }
}
