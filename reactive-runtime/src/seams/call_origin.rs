//! The origin of a write: who the call that made it was made for. The database handle
//! carries it to the [`InvalidationListener`](super::InvalidationListener), which
//! publishes the write's event for that tenant.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use super::Principal;

/// Who a write is made for: the principal of the call whose handler made it (or the
/// one [`with_principal`](crate::router::with_principal) set), whether its events wait
/// for an ack, and what its invalidations published for the caller's tenant.
///
/// The handle a reactive function receives carries it, and so do its clones and the
/// transactions begun from it: a task the handler spawns with its handle writes for
/// the same tenant.
#[derive(Debug, Clone)]
pub struct CallOrigin {
    principal: Principal,
    requires_ack: bool,
    events: Arc<CallEvents>,
}

/// The events a call's writes recorded for the caller's tenant.
#[derive(Debug, Default)]
pub(crate) struct CallEvents {
    /// The newest id recorded (0: none).
    pub(crate) newest: AtomicU64,
    /// An event or change set could not be recorded or published.
    pub(crate) failed: AtomicBool,
}

impl CallOrigin {
    /// Writes made for `principal`, whose events need no ack.
    pub fn new(principal: Principal) -> Self {
        Self::for_call(principal, false)
    }

    /// Writes of a call for `principal` of a function that does (or does not) require
    /// acks.
    pub(crate) fn for_call(principal: Principal, requires_ack: bool) -> Self {
        CallOrigin {
            principal,
            requires_ack,
            events: Arc::default(),
        }
    }

    /// The principal the writes are made for.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether the write's events wait for the client's ack.
    pub fn requires_ack(&self) -> bool {
        self.requires_ack
    }

    /// What the call's invalidations published for its tenant.
    pub(crate) fn events(&self) -> &CallEvents {
        &self.events
    }
}
