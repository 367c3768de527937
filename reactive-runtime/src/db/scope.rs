//! The call scope: what the handle [`super::ReactiveDb::call`] hands to a reactive
//! function's handler carries (its clones and transactions too). The interceptor
//! looks statements up in the function's model through it and records what the
//! handler reads; its writes are made for the call's origin.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::statement::ModelIndex;
use crate::seams::CallOrigin;
use crate::types::ReadSet;

/// State of one running call.
#[derive(Debug)]
pub struct CallScope {
    /// Procedure name (for logs).
    pub name: String,
    /// The model's statements by SQL text.
    pub index: Arc<ModelIndex>,
    /// The binding values extracted from the input (one per model binding).
    pub bindings: Vec<serde_json::Value>,
    /// Reads recorded while the handler runs (resolved with the bound values).
    pub reads: Mutex<Vec<ReadSet>>,
    /// Who the call's writes are made for (`None`: the task's, see `origin`).
    pub origin: Option<CallOrigin>,
    /// Statements the handler sent, shared by the runs of one call (for
    /// [`CallOutput::statements`](super::CallOutput::statements)).
    pub statements: Arc<AtomicU32>,
}

impl CallScope {
    /// Records a statement's reads.
    pub fn record(&self, reads: ReadSet) {
        let mut all = self
            .reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !all.contains(&reads) {
            all.push(reads);
        }
    }

    /// Counts one statement the handler sent.
    pub fn count_statement(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the recorded reads.
    pub fn take_reads(&self) -> Vec<ReadSet> {
        std::mem::take(
            &mut *self
                .reads
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}
