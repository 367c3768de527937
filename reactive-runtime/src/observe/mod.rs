//! What the runtime tells the outside about itself: metrics through the `metrics`
//! facade ([`metrics`]) and the names of the fields its `tracing` spans carry
//! ([`trace`]).

pub mod metrics;
pub mod trace;
