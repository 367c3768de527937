//! The order in which one instance hands a tenant's events to its connections.
//!
//! Ids are taken in the log's order, but each instance publishes its own events on the
//! bus: with two writing instances, 11 can reach a third one before 10 does. A client
//! that got 11 and was cut off before 10 would resume after 11 and never see 10. So an
//! instance that receives an event beyond the next one it expects first reads the
//! missing ones from the log (where they are, since their ids were taken before), hands
//! them out, and skips their bus messages when they arrive.

use std::collections::VecDeque;

use crate::types::EventId;

/// At most this many ids delivered ahead of their bus message are remembered per
/// tenant (a message the bus lost would otherwise stay forever); an id forgotten is
/// delivered twice at worst, which clients deduplicate.
const MAX_FILLED: usize = 1024;

/// Where an event stands in its tenant's delivery order on this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// No connection of its tenant here: nothing to deliver.
    Nobody,
    /// Deliver it: the next one expected, the first one seen, or a late one that was
    /// not delivered yet.
    Next,
    /// Delivered already, read from the log ahead of its bus message: skip it.
    Filled,
    /// The events after this id and before the event have not arrived: read them from
    /// the log and deliver them first.
    After(EventId),
}

/// A tenant's delivery order on this instance (lives as long as its connections).
#[derive(Debug, Default)]
pub(crate) struct Order {
    /// The newest id handed to the tenant's connections.
    delivered: Option<EventId>,
    /// Ids handed out from the log whose bus message has not arrived yet.
    filled: VecDeque<EventId>,
}

impl Order {
    /// Where `id` stands; a [`Place::Filled`] id is forgotten (its message arrived).
    pub(crate) fn place(&mut self, id: EventId) -> Place {
        match self.delivered {
            Some(last) if id.0 > last.0.saturating_add(1) => Place::After(last),
            Some(last) if id.0 <= last.0 => match self.filled.iter().position(|f| *f == id) {
                Some(i) => {
                    self.filled.remove(i);
                    Place::Filled
                }
                None => Place::Next,
            },
            _ => Place::Next,
        }
    }

    /// Records that `id` was handed to the connections; `from_log`: ahead of its bus
    /// message, which is then skipped.
    pub(crate) fn delivered(&mut self, id: EventId, from_log: bool) {
        if self.delivered.is_none_or(|d| d.0 < id.0) {
            self.delivered = Some(id);
        }
        if from_log {
            if self.filled.len() >= MAX_FILLED {
                self.filled.pop_front();
            }
            self.filled.push_back(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_events_are_delivered_as_they_come() {
        let mut o = Order::default();
        for id in [5, 6, 7] {
            assert_eq!(o.place(EventId(id)), Place::Next);
            o.delivered(EventId(id), false);
        }
    }

    #[test]
    fn a_gap_is_filled_and_the_late_message_skipped_once() {
        let mut o = Order::default();
        o.delivered(EventId(9), false);
        assert_eq!(o.place(EventId(11)), Place::After(EventId(9)));
        o.delivered(EventId(10), true);
        o.delivered(EventId(11), false);
        assert_eq!(o.place(EventId(10)), Place::Filled);
        // A second copy of 10 (not filled any more) is late, not skipped.
        assert_eq!(o.place(EventId(10)), Place::Next);
        assert_eq!(o.place(EventId(12)), Place::Next);
    }

    #[test]
    fn filled_ids_are_bounded() {
        let mut o = Order::default();
        for id in 1..=(MAX_FILLED as u64 + 10) {
            o.delivered(EventId(id), true);
        }
        assert_eq!(o.filled.len(), MAX_FILLED);
        assert_eq!(o.place(EventId(1)), Place::Next);
        assert_eq!(o.place(EventId(MAX_FILLED as u64 + 10)), Place::Filled);
    }
}
