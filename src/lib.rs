//! # reactive
//!
//! Make any SQL database reactive. Annotate async sqlx functions with
//! `#[reactive_function]`; the macro infers what each one reads, the runtime
//! caches results and invalidates exactly what a write can affect, and an SSE
//! endpoint tells clients what changed.
//!
//! This crate is the facade users depend on: it re-exports the runtime and the
//! macros. See the README for the full picture.

pub use reactive_macros::*;
pub use reactive_runtime::*;
