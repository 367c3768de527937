//! Handler analysis: every SQL literal an async handler body sends, with spans,
//! the Rust expressions bound to its parameters, and diagnostics for SQL built
//! at run time. (Being written.)
