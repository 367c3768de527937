//! The lean path's conformance with hyper: the oracle (shared with the fuzz target) and
//! the regression suite of hostile and odd request heads.

mod conformance;
pub mod hyper_oracle;
