//! Runtime of the `reactive` framework: statement interception (`ReactiveDb`),
//! cache stores, the invalidation engine, and the registry of reactive functions.

mod error;
pub mod registry;

pub use error::{Error, Result};
pub use reactive_codegen::model;

/// Stand-in until the interception layer lands: the database handle handlers receive.
#[derive(Clone, Debug)]
pub struct ReactiveDb {
    _private: (),
}
