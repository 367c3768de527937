//! SQL statement analysis: one SQL string and a dialect in, a [`StatementAnalysis`] out.
//!
//! The analysis is *conservative*: whenever it cannot be sure which rows a
//! statement touches it says [`RowFilter::All`], and whenever it cannot be sure
//! what a statement does at all it returns [`StatementAnalysis::unknown`] set.
//! Over-invalidation costs a cache miss; under-invalidation would serve stale data.

mod analyze;
mod model;

pub use analyze::analyze;
pub use model::*;
