//! One parsed statement → its analysis: dispatch on the statement kind.
//!
//! | statement | result |
//! |---|---|
//! | `SELECT`, `WITH`, `VALUES`, set operations | [`Operation::Select`] (or the write's operation for `WITH x AS (DELETE ...) ...`) |
//! | `INSERT` / `REPLACE` / `UPDATE` / `DELETE` | the write, see `writes.rs` |
//! | `EXPLAIN ANALYZE <stmt>`, `EXPLAIN (ANALYZE, ...) <stmt>` | the analysis of `<stmt>` (it runs it) |
//! | `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `RENAME`, `COMMENT`, `GRANT`, `REVOKE`, `ATTACH`, ... | [`Operation::Ddl`], unknown [`Unknown::Ddl`] |
//! | `BEGIN`/`START TRANSACTION`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`, `SET`, `SHOW`, `EXPLAIN`, `PRAGMA`, `USE`, `LISTEN`, `NOTIFY`, `LOCK`, `ANALYZE`, `VACUUM`, `PREPARE`, `DEALLOCATE`, `DISCARD`, `RESET` | [`Operation::Other`], nothing read or written |
//! | anything else (`CALL`, `MERGE`, `COPY`, `EXECUTE`, `DECLARE`, `LOAD DATA`, ...) | [`Operation::Other`], unknown [`Unknown::Unsupported`] |

use sqlparser::ast::{SetExpr, Statement};

use super::collect::Analyzer;
use super::model::{Operation, StatementAnalysis, Unknown};
use super::params::Params;
use super::scope::Env;

/// `true` when PostgreSQL's parenthesized `EXPLAIN` options run the statement: an
/// `ANALYZE` option whose argument is not plainly false (`ANALYZE`, `ANALYZE true`,
/// `analyze on`, `ANALYZE 1`; an argument we cannot read counts as true: wider).
fn runs_statement(options: &[sqlparser::ast::UtilityOption]) -> bool {
    options.iter().any(|o| {
        o.name.value.eq_ignore_ascii_case("analyze")
            && o.arg.as_ref().is_none_or(|arg| {
                let text = arg.to_string();
                !["false", "off", "0", "'false'", "'off'", "'0'"]
                    .iter()
                    .any(|f| text.eq_ignore_ascii_case(f))
            })
    })
}

/// First words of DDL statements the explicit match below does not list.
const DDL_WORDS: &[&str] = &[
    "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT", "GRANT", "REVOKE", "DENY",
    "ATTACH", "DETACH", "REFRESH",
];

/// Analyse one statement. `first_word` is the first word of its text.
pub(crate) fn analyze_statement(
    statement: &Statement,
    params: &Params,
    fold: bool,
    first_word: &str,
) -> StatementAnalysis {
    let env = Env::default();
    match statement {
        Statement::Query(query) => {
            let mut an = Analyzer::new(params, fold);
            an.analyze_query(query, &env);
            // `WITH ... INSERT/UPDATE/DELETE`: the statement is that write, the last
            // one analysed (after the CTEs, which may write too).
            let (operation, returning) = match query.body.as_ref() {
                SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) => {
                    an.last_write.unwrap_or((Operation::Other, false))
                }
                _ => (an.first_write.unwrap_or(Operation::Select), false),
            };
            an.finish(statement, operation, returning)
        }
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
            let mut an = Analyzer::new(params, fold);
            let (operation, returning) = an.analyze_write(statement, &env);
            an.finish(statement, operation, returning)
        }
        Statement::Explain {
            analyze,
            options,
            statement,
            ..
        } if *analyze || options.as_deref().is_some_and(runs_statement) => {
            analyze_statement(statement, params, fold, first_word)
        }
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. }
        | Statement::Set(_)
        | Statement::ShowFunctions { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowProcessList { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowCharset(_)
        | Statement::ShowObjects(_)
        | Statement::ShowTables { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowCollation { .. }
        | Statement::Explain { .. }
        | Statement::ExplainTable { .. }
        | Statement::Pragma { .. }
        | Statement::Use(_)
        | Statement::LISTEN { .. }
        | Statement::UNLISTEN { .. }
        | Statement::NOTIFY { .. }
        | Statement::Lock(_)
        | Statement::LockTables { .. }
        | Statement::UnlockTables
        | Statement::Analyze(_)
        | Statement::Vacuum(_)
        | Statement::Prepare { .. }
        | Statement::Deallocate { .. }
        | Statement::Discard { .. }
        | Statement::Reset(_) => nothing(Operation::Other),
        Statement::CreateTable(_)
        | Statement::CreateIndex(_)
        | Statement::CreateView(_)
        | Statement::AlterTable(_)
        | Statement::Drop { .. }
        | Statement::Truncate(_)
        | Statement::RenameTable(_)
        | Statement::CreateVirtualTable { .. }
        | Statement::CreateTrigger(_)
        | Statement::DropTrigger(_)
        | Statement::AttachDatabase { .. } => {
            StatementAnalysis::unknown(Operation::Ddl, Unknown::Ddl)
        }
        _ if DDL_WORDS.contains(&first_word) => {
            StatementAnalysis::unknown(Operation::Ddl, Unknown::Ddl)
        }
        _ => {
            let what = if first_word.is_empty() {
                "statement".to_owned()
            } else {
                format!("{first_word} statement")
            };
            StatementAnalysis::unknown(Operation::Other, Unknown::Unsupported(what))
        }
    }
}

/// A statement that reads and writes no rows.
pub(crate) fn nothing(operation: Operation) -> StatementAnalysis {
    StatementAnalysis {
        operation,
        reads: Vec::new(),
        writes: Vec::new(),
        returning: false,
        unknown: None,
    }
}
