//! What a connection's queue holds ([`Outgoing`]) and the frames joined once per
//! delivery for every connection with the same tail ([`FrameMemo`]).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::push::Slot;
use crate::types::Event;

/// One frame (or event) waiting to be written.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// An event for this connection.
    Event {
        /// The event.
        event: Arc<Event>,
        /// This connection's tail (`"entry",..]}\n\n`), kept for re-sends.
        tail: Bytes,
        /// The whole frame (the event's head, then `tail`), shared by every connection
        /// whose tail is the same (see [`FrameMemo`]).
        frame: Bytes,
        /// The pushed results the frame carries once they are computed (see the `push`
        /// module); `None` for most events.
        results: Option<Box<[Arc<Slot>]>>,
    },
    /// Raw frame bytes.
    Raw(Bytes),
}

/// Whole frames already joined during one delivery, by tail. Connections whose matched
/// entries are the same get one frame built once (a reference-counted `Bytes` each),
/// not one copy each: 10,000 clients of one query cost one join per event.
#[derive(Debug, Default)]
pub(crate) struct FrameMemo {
    joined: Vec<(Bytes, Bytes)>,
}

/// Distinct tails remembered per delivery; more (unusual) are joined without memo.
const MEMO_TAILS: usize = 16;

impl FrameMemo {
    pub(super) fn frame(&mut self, event: &Event, tail: &Bytes) -> Bytes {
        if let Some((_, frame)) = self.joined.iter().find(|(t, _)| t == tail) {
            return frame.clone();
        }
        let head = event.frame_head();
        let mut joined = BytesMut::with_capacity(head.len() + tail.len());
        joined.extend_from_slice(&head);
        joined.extend_from_slice(tail);
        let frame = joined.freeze();
        if self.joined.len() < MEMO_TAILS {
            self.joined.push((tail.clone(), frame.clone()));
        }
        frame
    }
}

impl Outgoing {
    /// Bytes this item adds to its connection's queue (frames shared with other
    /// connections are counted whole: the bound holds whatever the sharing).
    pub(super) fn size(&self) -> usize {
        match self {
            Outgoing::Event { frame, .. } => frame.len(),
            Outgoing::Raw(b) => b.len(),
        }
    }
}
