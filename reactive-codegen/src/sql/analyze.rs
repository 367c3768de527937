//! Entry point of SQL analysis.

use super::model::{Dialect, Operation, StatementAnalysis, Unknown};
use super::parse::parse;
use super::statement::{analyze_statement, nothing};

/// Analyse one SQL string: its operation, the tables it reads and writes, and the
/// key predicates that narrow which rows.
///
/// Never panics, whatever the input. The result is conservative: when the analyser
/// cannot be sure which rows a statement touches it says [`RowFilter::All`], and
/// when it cannot be sure what a statement does at all, [`StatementAnalysis::unknown`]
/// is set:
///
/// - SQL that does not parse: [`Unknown::Parse`] with the parser's message;
/// - several statements in one string: [`Unknown::MultipleStatements`];
/// - DDL: operation [`Operation::Ddl`] and [`Unknown::Ddl`];
/// - statements that may write but are not modelled (`CALL`, `MERGE`, `COPY`, ...):
///   [`Unknown::Unsupported`];
/// - statements so long that walking them could exhaust the stack: [`Unknown::Unsupported`];
/// - statements calling a function that is not a known pure built-in (`SELECT f($1)`,
///   `FROM f($1)`): [`Unknown::Function`] (the function may read any table, or write).
///
/// Transaction control, `SET`, `SHOW`, `EXPLAIN` and `PRAGMA` are [`Operation::Other`]
/// with nothing read or written. An empty string (or only comments and `;`) runs
/// nothing: [`Operation::Other`], no unknown.
///
/// Placeholders are numbered as the database binds them: `$N` / `?N` is `N`; `?` is
/// one more than the largest index so far; `:name`, `@name`, `$name` get one more
/// than the largest index so far at their first appearance (SQLite's rule; for a
/// statement using one style only this is simply the order of appearance).
///
/// ```
/// use reactive_codegen::sql::{analyze, Dialect, KeyPredicate, Operation, Param, RowFilter, ValueRef};
///
/// let a = analyze(
///     "SELECT a.* FROM agent a LEFT JOIN message m ON m.agent_id = a.id AND m.kind = 'chat' \
///      WHERE a.organization_id = $1",
///     Dialect::Postgres,
/// );
/// assert_eq!(a.operation, Operation::Select);
/// assert!(a.unknown.is_none());
/// // agent: narrowed by the WHERE clause.
/// assert_eq!(a.reads[0].table, "agent");
/// assert_eq!(
///     a.reads[0].filter,
///     RowFilter::Keys(vec![KeyPredicate {
///         column: "organization_id".into(),
///         values: vec![ValueRef::Param(Param { index: 1, name: None })],
///     }])
/// );
/// // message: the NULL-supplying side of the LEFT JOIN, narrowed by its ON clause.
/// assert_eq!(a.reads[1].table, "message");
/// assert!(matches!(&a.reads[1].filter, RowFilter::Keys(k) if k[0].column == "kind"));
/// ```
///
/// [`RowFilter::All`]: super::model::RowFilter::All
pub fn analyze(sql: &str, dialect: Dialect) -> StatementAnalysis {
    let parsed = match parse(sql, dialect) {
        Ok(parsed) => parsed,
        Err(why) => return StatementAnalysis::unknown(Operation::Other, why),
    };
    let fold = !matches!(dialect, Dialect::MySql);
    match parsed.statements.as_slice() {
        [] => nothing(Operation::Other),
        [statement] => analyze_statement(statement, &parsed.params, fold, &parsed.first_word),
        _ => StatementAnalysis::unknown(Operation::Other, Unknown::MultipleStatements),
    }
}
