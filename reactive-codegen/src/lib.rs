//! Analysis and code generation for the `reactive` framework.
//!
//! This is an ordinary library (the proc-macro crate `reactive-macros` is a thin
//! shell around it, as `sqlx-macros` is around `sqlx-macros-core`), so every part
//! is unit-testable:
//!
//! - [`sql`]: what one SQL statement reads and writes, and on which keys.
//! - [`model`]: the compile-time model of a reactive function, shared with the runtime.
//! - `handler` (feature `rust`): every SQL literal an async handler sends, with
//!   spans and the Rust expressions bound to its parameters.
//! - `expand` (feature `rust`): the macros' expansion.
//! - `build` (feature `build`): the generated TypeScript client written by an app's
//!   `build.rs` from its sources.
//!
//! The `reactive` command line tool is the `reactive-cli` crate, built on this one's
//! public analysis API; the macros never compile it.
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `rust` (default) | handler analysis and macro expansion (syn, quote, darling) |
//! | `build` | `build::typescript`, for build scripts (implies `rust`; adds thiserror) |

pub mod calls;
pub mod model;
pub mod sql;
pub mod typescript;

#[cfg(feature = "rust")]
pub mod handler;

#[cfg(feature = "rust")]
pub mod expand;

#[cfg(feature = "build")]
pub mod build;
