//! Interception of one statement, before it runs: its analysis (the call's function
//! model, the memo, or a parse), the MySQL rewrite check, the refusal of a write inside
//! a query, and the recording of its reads in the call's scope.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use reactive_codegen::model::FunctionKind;
use serde_json::Value as Json;
use sqlx::{AssertSqlSafe, Execute, SqlSafeStr, SqlStr};

use super::DbShared;
use super::backend::{Backend, Exec};
use super::changes::reads_of;
use super::scope::CallScope;
use super::statement::{AnalysisSource, StatementInfo};

/// An intercepted statement: its analysis and everything needed to run it.
pub(crate) struct Intercepted<DB: Backend> {
    pub sql: SqlStr,
    pub info: Arc<StatementInfo>,
    pub args: Option<DB::Arguments>,
    pub persistent: bool,
    /// The call the statement runs in, when its parameters trace to the call's input.
    pub scope: Option<Arc<CallScope>>,
}

/// A statement that writes, sent while a reactive function declared (or inferred) a
/// `query` runs: refused before it reaches the database, since the query's result is
/// cached and the write would be skipped by every later call served from the cache.
/// Declare the function `mutation`. Returned as `sqlx::Error::Configuration`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "reactive function `{function}` is a query but sent a write (through a helper?); declare it `mutation`"
)]
pub struct WriteInQuery {
    /// The procedure name.
    pub function: String,
}

/// The JSON value of parameter `index` (1-based): the bound value where the driver
/// shows it, else the call's binding the function model traced it to.
fn param_value<DB: Backend>(
    args: Option<&DB::Arguments>,
    info: &StatementInfo,
    scope: Option<&CallScope>,
    index: usize,
) -> Option<Json> {
    if DB::SEES_ARGUMENTS {
        return DB::arg_value(args?, index);
    }
    let binding = (*info.params.get(index.checked_sub(1)?)?)?;
    scope?.bindings.get(binding).cloned()
}

impl<DB: Backend> Intercepted<DB> {
    /// Whether the statement may write (then it runs the write protocol).
    pub(super) fn is_write(&self) -> bool {
        self.info.analysis.may_write()
    }

    /// The value of parameter `index` (1-based), where known.
    pub(super) fn value(&self, index: usize) -> Option<Json> {
        param_value::<DB>(self.args.as_ref(), &self.info, self.scope.as_deref(), index)
    }

    /// The statement as sqlx runs it, with the backend's text (MySQL rewrite).
    pub(super) fn into_exec(self) -> Exec<DB> {
        let sql = match &self.info.backend_sql {
            Some(text) => AssertSqlSafe(text.clone()).into_sql_str(),
            None => self.sql,
        };
        Exec {
            sql,
            args: self.args,
            persistent: self.persistent,
        }
    }
}

impl DbShared {
    /// Intercepts one statement sent in the call `scope` (if any): analysis (model,
    /// memo or parse), MySQL rewrite check, and recording of its reads in the scope.
    pub(crate) fn intercept<'q, DB: Backend, E: Execute<'q, DB>>(
        &self,
        mut query: E,
        scope: Option<Arc<CallScope>>,
    ) -> Result<Intercepted<DB>, sqlx::Error> {
        let persistent = query.persistent();
        let args = query.take_arguments().map_err(sqlx::Error::Encode)?;
        let sql = query.sql();
        let (info, origin) = match scope.as_ref().and_then(|s| s.index.get(sql.as_str())) {
            Some(info) => (info.clone(), AnalysisSource::Model),
            None => self.memo.get(sql.as_str()),
        };
        self.counters.statements.fetch_add(1, Ordering::Relaxed);
        if let Some(scope) = &scope {
            scope.count_statement();
        }
        if origin == AnalysisSource::Model {
            self.counters.model_hits.fetch_add(1, Ordering::Relaxed);
        }
        tracing::trace!(target: "reactive::db", sql = sql.as_str(), ?origin, function = scope.as_ref().map(|s| s.name.as_str()), write = info.analysis.may_write(), "intercepted");
        if let Some(e) = &info.rewrite_error {
            return Err(sqlx::Error::Configuration(Box::new(e.clone())));
        }
        if let Some(scope) = scope.as_ref().filter(|s| {
            s.index.model.kind == FunctionKind::Query
                && info.analysis.unknown.is_none()
                && (info.analysis.operation.is_write() || !info.analysis.writes.is_empty())
        }) {
            // A query's result is cached: a write in it (sent by a helper the macro could
            // not see into) would run once and then be skipped by every cache hit.
            return Err(sqlx::Error::Configuration(Box::new(WriteInQuery {
                function: scope.name.clone(),
            })));
        }
        if info.analysis.unknown.is_some() {
            // DDL, or a statement we could not read: the column types may have changed.
            self.catalog.invalidate();
        }
        let stmt = Intercepted {
            sql,
            info,
            args,
            persistent,
            scope,
        };
        if let Some(scope) = &stmt.scope
            && (stmt.info.analysis.unknown.is_some() || !stmt.info.analysis.reads.is_empty())
        {
            let reads = reads_of(&stmt.info.analysis, &|i| stmt.value(i), self.dialect);
            self.watch_reads(&reads);
            scope.record(reads);
        }
        Ok(stmt)
    }
}
