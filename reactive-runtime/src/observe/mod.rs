//! What the runtime tells the outside about itself: metrics through the `metrics`
//! facade ([`metrics`]).

pub mod metrics;
