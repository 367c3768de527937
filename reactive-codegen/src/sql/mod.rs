//! SQL statement analysis: one SQL string and a dialect in, a [`StatementAnalysis`] out.
//!
//! The analysis is *conservative*: whenever it cannot be sure which rows a
//! statement touches it says [`RowFilter::All`], and whenever it cannot be sure
//! what a statement does at all it returns [`StatementAnalysis::unknown`] set.
//! Over-invalidation costs a cache miss; under-invalidation would serve stale data.
//!
//! Modules, one job each:
//! - `parse`: dialect, tokenizing, the complexity guard, parsing;
//! - `params`: placeholder numbering and literal values;
//! - `casts`: which casts keep a key value (and are seen through);
//! - `names`, `scope`: identifier matching, the relations of a `FROM` list, CTE names;
//! - `predicates`: key conjuncts of `WHERE` / `ON`;
//! - `query`: reads (queries, `SELECT` scopes, joins and the outer-join rule);
//! - `writes`: `INSERT` / upserts, `UPDATE`, `DELETE`;
//! - `functions`: function calls the analysis sees through (built-ins) or not;
//! - `collect`: walk state, the relation backstop, deduplication and sorting;
//! - `statement`: dispatch on the statement kind.

mod analyze;
mod casts;
mod collect;
mod functions;
mod model;
mod names;
mod params;
mod parse;
mod predicates;
mod query;
mod scope;
mod statement;
mod writes;

pub use analyze::analyze;
pub use model::*;
