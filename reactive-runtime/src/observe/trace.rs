//! What the runtime's `tracing` spans carry, so that one request reads end to end in
//! an OpenTelemetry or fmt subscriber:
//!
//! - `reactive.call` (`procedure`, `tenant`, `cache`: `hit`, `miss`, `coalesced`, or
//!   `none` for a mutation): one call of a reactive function, through the router or
//!   [`ReactiveDb::call`](crate::ReactiveDb::call);
//! - `reactive.write` (`sql`, `tx`): one intercepted write, inside the call's span;
//! - `reactive.invalidate` (`tables`, `everything`, `entries`, `reasons`): the change set
//!   applied after commit, what it removed and why; inside it the engine's `invalidate`
//!   span and, from the realtime layer, one `event published` event per tenant
//!   (`tenant`, `event_id`, `keys`).
//!
//! `reasons` names each removed entry's procedure and input with its first reason:
//! `key agent.id=7 => agents.get {"id":7}`, `relation message.from_agent_id=7 via
//! agent.id -> message.from_agent_id => ...`, `table tool => ...`, `unknown * => ...`;
//! at most [`MAX_TRACED_ENTRIES`] entries, inputs cut at [`MAX_TRACED_INPUT`] bytes.

use std::fmt::Write;

use crate::types::{InvalidationReport, Source};

/// Entries named in a `reasons` field (the rest are counted, not listed).
pub const MAX_TRACED_ENTRIES: usize = 16;

/// Bytes of an entry's input named in a `reasons` field.
pub const MAX_TRACED_INPUT: usize = 96;

/// The `cache` field's value for a call's outcome.
pub fn outcome(source: Source) -> &'static str {
    match source {
        Source::Hit => "hit",
        Source::Computed => "miss",
        Source::Coalesced => "coalesced",
    }
}

/// The `reasons` field of an invalidation: each removed entry's procedure and first
/// reason. Built only when a subscriber records the span (it allocates).
pub fn reasons(report: &InvalidationReport) -> String {
    let mut out = String::new();
    for entry in report.entries.iter().take(MAX_TRACED_ENTRIES) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        let Some(reason) = entry.reasons.first() else {
            continue;
        };
        let kind = super::metrics::reason_label(&entry.reasons);
        let _ = write!(out, "{kind} {}", reason.table);
        if let Some(column) = &reason.column {
            let _ = write!(out, ".{column}");
            if let Some(value) = &reason.value {
                let _ = write!(out, "={value}");
            }
        }
        if let Some(edge) = &reason.relation {
            let _ = write!(out, " via {edge}");
        }
        let input = &entry.key.input;
        let mut end = input.len().min(MAX_TRACED_INPUT);
        while !input.is_char_boundary(end) {
            end -= 1;
        }
        let more = if end < input.len() { "..." } else { "" };
        let _ = write!(out, " => {} {}{more}", entry.key.procedure, &input[..end]);
    }
    if report.entries.len() > MAX_TRACED_ENTRIES {
        let _ = write!(
            out,
            "; and {} more",
            report.entries.len() - MAX_TRACED_ENTRIES
        );
    }
    out
}
