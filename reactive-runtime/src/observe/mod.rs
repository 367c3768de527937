//! What the runtime tells the outside about itself: metrics through the `metrics`
//! facade ([`metrics`]), the fields its `tracing` spans carry ([`trace`]), and the dev
//! tools page's recorder ([`devtools`]).

pub mod devtools;
pub mod metrics;
pub mod trace;
