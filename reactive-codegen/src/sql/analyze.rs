//! Entry point of SQL analysis. (Being written: returns `unknown` until then, which is safe.)

use super::model::{Dialect, Operation, StatementAnalysis, Unknown};

/// Analyse one SQL string. Never panics; SQL it cannot read yields an analysis
/// with [`StatementAnalysis::unknown`] set.
pub fn analyze(sql: &str, dialect: Dialect) -> StatementAnalysis {
    let _ = (sql, dialect);
    StatementAnalysis::unknown(Operation::Other, Unknown::Unsupported("not implemented".into()))
}
