//! Analysis and code generation for the `reactive` framework.
//!
//! This is an ordinary library (the proc-macro crate `reactive-macros` is a thin
//! shell around it, as `sqlx-macros` is around `sqlx-macros-core`), so every part
//! is unit-testable:
//!
//! - [`sql`]: what one SQL statement reads and writes, and on which keys.
//! - [`model`]: the compile-time model of a reactive function, shared with the runtime.
//! - [`schema`]: tables, columns and foreign keys read from migrations.
//! - `handler` (feature `rust`): every SQL literal an async handler sends, with
//!   spans and the Rust expressions bound to its parameters.
//! - `expand` and `cli` (feature `rust`): the macros' expansion, and the `reactive`
//!   command line tool.
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `rust` (default) | handler analysis, macro expansion, the CLI (syn, quote, darling) |
//! | `live` | `reactive relations ... --database-url`: live schema introspection (sqlx, tokio); only the CLI uses it, never the macros |

pub mod model;
pub mod schema;
pub mod sql;
pub mod typescript;

#[cfg(feature = "rust")]
pub mod handler;

/// The `reactive` command line tool (`reactive analyze`, `suggest`, `relations`,
/// `convert`, `rules`, `new`).
#[cfg(feature = "rust")]
pub mod cli;

#[cfg(feature = "rust")]
pub mod expand;
