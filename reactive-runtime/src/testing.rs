//! What the integration tests observe of the runtime's internals. Not public API:
//! hidden from the docs, and may change in any release.

use std::sync::OnceLock;

use crate::ReactiveDb;
use crate::engine::Engine;
use crate::realtime::Realtime;
use crate::registry::{FunctionDef, InputError, Prepared, TsTypes};
use crate::types::EventId;

/// Computations `engine` is running now (coalesced waiters not counted).
pub fn in_flight(engine: &Engine) -> usize {
    engine.in_flight()
}

/// The ids sent to the stream `token` and not acknowledged yet; `None` for an unknown
/// stream.
pub fn pending_acks(realtime: &Realtime, token: &str) -> Option<Vec<EventId>> {
    realtime.hub().pending_acks(token)
}

/// Distinct subscriptions the hub holds built (shared between streams that subscribe
/// to the same entries).
pub fn cached_subscriptions(realtime: &Realtime) -> usize {
    realtime.hub().subscriptions().len()
}

impl FunctionDef {
    /// A definition written by hand instead of by the macro, for tests and benchmarks of
    /// the runtime on its own: the model as JSON, the input decoder, TypeScript types
    /// `unknown`, and the `ReactiveDb<sqlx::Any>` handle. A `const fn`, so that it can
    /// initialize a `static` to submit as a [`Registration`].
    #[doc(hidden)]
    pub const fn by_hand(
        model_json: &'static str,
        prepare: fn(serde_json::Value) -> Result<Prepared, InputError>,
    ) -> Self {
        Self {
            model_json,
            calls: &[],
            prepare,
            typescript: unknown_types,
            backend: std::any::TypeId::of::<ReactiveDb<sqlx::Any>>,
            model_cell: OnceLock::new(),
        }
    }
}

/// TypeScript types of a function defined by hand: `unknown` in and out.
fn unknown_types() -> TsTypes {
    TsTypes {
        input: "unknown".into(),
        output: "unknown".into(),
        declarations: vec![],
    }
}
