//! The sqlx `Executor` implementations: every statement sent through `&ReactiveDb`
//! or `&mut ReactiveTx` is intercepted here.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::{self, BoxFuture};
use futures::stream::{self, BoxStream, StreamExt};
use reactive_codegen::sql::Dialect;
use serde_json::Value as Json;
use sqlx::{Arguments, AssertSqlSafe, Either, Execute, Executor, SqlSafeStr, SqlStr};
use tracing::Instrument;

use super::backend::{Backend, Exec, Step};
use super::changes::{
    Binding, CascadeRead, PreRead, add_cascades, add_old_values, cascade_plan, change_of,
    pre_read_plan, reads_of,
};
use super::finish::detached;
use super::scope::CallScope;
use super::statement::{AnalysisSource, StatementInfo};
use super::{DbShared, ReactiveDb, ReactiveTx, ReactiveTxConn, scope};
use crate::error::TransactionLost;
use crate::seams::InvalidationListener;
use crate::types::ChangeSet;

/// An intercepted statement: its analysis and everything needed to run it.
pub(crate) struct Intercepted<DB: Backend> {
    pub sql: SqlStr,
    pub info: Arc<StatementInfo>,
    pub args: Option<DB::Arguments>,
    pub persistent: bool,
    /// The call the statement runs in, when its parameters trace to the call's input.
    pub scope: Option<Arc<CallScope>>,
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

/// The rows of a pre-read as JSON values, column by column.
fn json_rows<DB: Backend>(rows: &[DB::Row]) -> Vec<Vec<Option<Json>>> {
    use sqlx::Row;
    rows.iter()
        .map(|r| (0..r.len()).map(|i| DB::row_value(r, i)).collect())
        .collect()
}

impl<DB: Backend> Intercepted<DB> {
    fn is_write(&self) -> bool {
        self.info.analysis.may_write()
    }

    fn value(&self, index: usize) -> Option<Json> {
        param_value::<DB>(self.args.as_ref(), &self.info, self.scope.as_deref(), index)
    }

    fn into_exec(self) -> Exec<DB> {
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

/// What a write needs after it ran: its change set, the optional pre-read and the
/// cascade pre-reads (run only after the pre-read, whose row count check they rely on).
struct WritePlan<DB: Backend> {
    change: ChangeSet,
    pre: Option<PreRead>,
    /// The arguments of the pre-read (the write's own), taken when it runs.
    pre_args: Option<DB::Arguments>,
    cascades: Vec<(CascadeRead, DB::Arguments)>,
    info: Arc<StatementInfo>,
    /// Parameter values of the write, by 1-based index (for the pre-read's `SET` values).
    values: Vec<Option<Json>>,
    known_single: bool,
}

/// The rows the cascade pre-reads returned (`None`: one failed, use none of them).
type CascadeRows = Option<Vec<(CascadeRead, Vec<Vec<Option<Json>>>)>>;

/// Runs a statement without arguments (savepoints), ignoring its results.
async fn execute_plain<DB: Backend>(
    conn: &mut DB::Connection,
    sql: String,
) -> Result<(), sqlx::Error> {
    let exec = Exec::<DB> {
        sql: AssertSqlSafe(sql).into_sql_str(),
        args: None,
        persistent: false,
    };
    let results: Vec<_> = DB::run(conn, exec).collect().await;
    results.into_iter().try_for_each(|r| r.map(|_| ()))
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

/// Whether a failed statement took its whole transaction with it: a deadlock or
/// serialization failure (SQLSTATE `40001`). MySQL/MariaDB then roll the transaction
/// back on the server and run what follows on that connection in autocommit mode, so a
/// write must not go on as if it were still inside the transaction.
fn rolls_back_transaction(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("40001"))
}

impl DbShared {
    /// Intercepts one statement: analysis (model, memo or parse), MySQL rewrite check,
    /// and recording of its reads in the active call scope.
    pub(crate) fn intercept<'q, DB: Backend, E: Execute<'q, DB>>(
        &self,
        mut query: E,
    ) -> Result<Intercepted<DB>, sqlx::Error> {
        let persistent = query.persistent();
        let args = query.take_arguments().map_err(sqlx::Error::Encode)?;
        let sql = query.sql();
        let scope = scope::current();
        let (info, origin) = match scope.as_ref().and_then(|s| s.index.get(sql.as_str())) {
            Some(info) => (info.clone(), AnalysisSource::Model),
            None => self.memo.get(sql.as_str()),
        };
        self.counters.statements.fetch_add(1, Ordering::Relaxed);
        if origin == AnalysisSource::Model {
            self.counters.model_hits.fetch_add(1, Ordering::Relaxed);
        }
        tracing::trace!(target: "reactive::db", sql = sql.as_str(), ?origin, function = scope.as_ref().map(|s| s.name.as_str()), write = info.analysis.may_write(), "intercepted");
        if let Some(e) = &info.rewrite_error {
            return Err(sqlx::Error::Configuration(Box::new(e.clone())));
        }
        if let Some(scope) = scope.as_ref().filter(|s| {
            s.index.model.kind == reactive_codegen::model::FunctionKind::Query
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

    fn plan_write<DB: Backend>(&self, stmt: &Intercepted<DB>) -> WritePlan<DB> {
        let analysis = &stmt.info.analysis;
        let count = stmt.args.as_ref().map_or(0, Arguments::len);
        let values: Vec<Option<Json>> = (1..=count).map(|i| stmt.value(i)).collect();
        let value = |i: usize| values.get(i.checked_sub(1)?).cloned().flatten();
        let change = change_of(analysis, &value, self.dialect);
        let known_single = analysis.unknown.is_none() && !change.is_everything();
        let mut pre = None;
        let mut pre_args = None;
        let mut cascades = Vec::new();
        if self.options.read_old_values
            && known_single
            && analysis.writes.len() == 1
            && !stmt.info.pre_read_disabled.load(Ordering::Relaxed)
        {
            let watched = self.watched_columns(&analysis.writes[0].table);
            if !watched.is_empty() {
                let template = stmt.info.where_template(stmt.sql.as_str(), self.dialect);
                // Arguments for the pre-reads: just the condition's when the driver lets
                // us pick them, else all of the write's.
                let args = || -> Option<(DB::Arguments, Binding)> {
                    let positions = &template?.params;
                    match &stmt.args {
                        Some(a) if DB::SEES_ARGUMENTS => {
                            DB::select_args(a, positions).map(|picked| (picked, Binding::Compact))
                        }
                        Some(a) => Some((DB::clone_args(a), Binding::Original(count))),
                        None => Some((DB::Arguments::default(), Binding::Original(0))),
                    }
                };
                if let Some((pre_arguments, binding)) = args() {
                    let cascade_plans = self.cascade_plans(analysis, &change, template, binding);
                    let force = cascade_plans.first().map(|c| c.edge.from_column.as_str());
                    if let Some(plan) = pre_read_plan(
                        analysis,
                        &change,
                        &value,
                        self.dialect,
                        &watched,
                        template,
                        force,
                        binding,
                    ) {
                        for c in cascade_plans {
                            if let Some((a, _)) = args() {
                                cascades.push((c, a));
                            }
                        }
                        pre_args = Some(pre_arguments);
                        pre = Some(plan);
                    }
                }
            }
        }
        WritePlan {
            change,
            pre,
            pre_args,
            cascades,
            info: stmt.info.clone(),
            values,
            known_single,
        }
    }

    /// The cascade pre-reads of a single-table `DELETE` (or `UPDATE` of a relation
    /// source's key column): one per relation edge from the written table to a target
    /// column, when some query filters on other columns of the target table.
    fn cascade_plans(
        &self,
        analysis: &reactive_codegen::sql::StatementAnalysis,
        change: &ChangeSet,
        template: Option<&super::rewrite::WhereTemplate>,
        binding: Binding,
    ) -> Vec<CascadeRead> {
        let (Some(template), [write]) = (template, analysis.writes.as_slice()) else {
            return Vec::new();
        };
        let Some([row]) = change.rows(&write.table) else {
            return Vec::new();
        };
        self.engine
            .relations()
            .edges()
            .iter()
            .filter(|e| e.from_table == write.table && row.op.propagates_through(&e.from_column))
            .filter_map(|e| {
                cascade_plan(
                    e,
                    &self.watched_columns(&e.to_table),
                    template,
                    self.dialect,
                    binding,
                )
            })
            .collect()
    }

    /// Runs the cascade pre-reads on `conn`, each fenced by a savepoint on PostgreSQL
    /// (a failed statement would abort the transaction). All or nothing.
    async fn cascade_reads<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        cascades: Vec<(CascadeRead, DB::Arguments)>,
        lost: &mut Option<sqlx::Error>,
    ) -> CascadeRows {
        let savepoint = self.dialect == Dialect::Postgres;
        let mut out = Vec::with_capacity(cascades.len());
        for (read, args) in cascades {
            let fence = savepoint.then_some("reactive_cascade_read");
            match self.fenced_read::<DB>(conn, &read.sql, args, fence).await {
                Ok(rows) => out.push((read, json_rows::<DB>(&rows))),
                Err(None) => return None,
                Err(Some(e)) => {
                    tracing::warn!(target: "reactive::db", error = %e, sql = read.sql, "cascade pre-read failed; rows reached through relations are known by the referencing column only");
                    if !savepoint && rolls_back_transaction(&e) {
                        *lost = Some(e);
                    }
                    return None;
                }
            }
        }
        Some(out)
    }

    /// Finishes a write's change set from its results (and pre-read rows) and returns
    /// it, or `None` when nothing can have changed.
    fn finish_write<DB: Backend>(
        &self,
        plan: WritePlan<DB>,
        results: &[Result<Step<DB>, sqlx::Error>],
        pre_rows: Option<Vec<DB::Row>>,
        cascade_rows: CascadeRows,
    ) -> Option<ChangeSet> {
        let failed = results.iter().any(Result::is_err);
        let affected: u64 = results
            .iter()
            .filter_map(|r| match r {
                Ok(Either::Left(q)) => Some(DB::rows_affected(q)),
                _ => None,
            })
            .sum();
        let returned = results
            .iter()
            .filter(|r| matches!(r, Ok(Either::Right(_))))
            .count() as u64;
        // A plain INSERT/UPDATE/DELETE that reports no affected and no returned row
        // changed nothing. The count is the top-level command's only: a writable CTE
        // (`WITH d AS (DELETE ...) DELETE FROM other ...`, or under a SELECT) may have
        // changed rows while it reports 0, so the skip needs exactly one write (the
        // analysis lists every write occurrence, CTEs' included).
        if plan.known_single
            && plan.info.analysis.operation.is_write()
            && plan.info.analysis.writes.len() == 1
            && !failed
            && affected == 0
            && returned == 0
        {
            return None;
        }
        let mut change = plan.change;
        if let (Some(pre), Some(rows)) = (&plan.pre, pre_rows) {
            let count = rows.len() as u64;
            if !failed && (count == affected || (affected == 0 && count == returned)) {
                let values = &plan.values;
                let value = |i: usize| values.get(i.checked_sub(1)?).cloned().flatten();
                add_old_values(
                    &mut change,
                    &plan.info.analysis,
                    pre,
                    &json_rows::<DB>(&rows),
                    &value,
                    self.dialect,
                );
                // The written rows were locked and counted by the pre-read: the rows the
                // cascade reads found are those the database's cascade reaches.
                if let Some(cascades) = cascade_rows {
                    add_cascades(&mut change, &pre.table, cascades, self.dialect);
                }
            } else {
                self.counters
                    .pre_read_fallbacks
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target: "reactive::db", count, affected, "pre-read row count differs from rows affected: old values unknown");
            }
        }
        if !failed && returned > 0 {
            self.add_returned_keys::<DB>(&mut change, &plan.info.analysis, results);
        }
        Some(change)
    }

    /// An `INSERT ... RETURNING` gives the values of columns the statement does not
    /// know, such as generated ids: each watched column the inserted row changes leave
    /// unknown takes the values of every returned row (a superset per row). Columns a
    /// returned row has no key form for stay unknown.
    fn add_returned_keys<DB: Backend>(
        &self,
        change: &mut ChangeSet,
        analysis: &reactive_codegen::sql::StatementAnalysis,
        results: &[Result<Step<DB>, sqlx::Error>],
    ) {
        use sqlx::{Column, Row};
        let [write] = analysis.writes.as_slice() else {
            return;
        };
        if write.operation != reactive_codegen::sql::Operation::Insert {
            return;
        }
        let rows: Vec<&DB::Row> = results
            .iter()
            .filter_map(|r| match r {
                Ok(Either::Right(row)) => Some(row),
                _ => None,
            })
            .collect();
        let Some(first) = rows.first() else {
            return;
        };
        let watched = self.watched_columns(&write.table);
        let Some(inserted) = change.tables.get_mut(&write.table) else {
            return;
        };
        for (i, column) in first.columns().iter().enumerate() {
            let name = column.name().to_lowercase();
            if !watched.contains(&name)
                || !inserted
                    .iter()
                    .any(|r| r.op == crate::types::RowOp::Insert && r.values(&name).is_none())
            {
                continue;
            }
            let values: Option<std::collections::BTreeSet<crate::types::KeyValue>> = rows
                .iter()
                .map(|r| {
                    DB::row_value(r, i)
                        .and_then(|v| crate::types::KeyValue::from_json(&v, self.dialect))
                })
                .collect();
            let Some(values) = values else {
                continue;
            };
            for row in inserted.iter_mut() {
                if row.op == crate::types::RowOp::Insert && row.values(&name).is_none() {
                    row.columns.insert(name.clone(), values.clone());
                }
            }
        }
    }

    /// Runs the pre-read on `conn` (inside the write's transaction).
    async fn pre_read<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        pre: &PreRead,
        args: DB::Arguments,
        savepoint: bool,
        info: &StatementInfo,
        lost: &mut Option<sqlx::Error>,
    ) -> Option<Vec<DB::Row>> {
        let fence = savepoint.then_some("reactive_pre_read");
        match self.fenced_read::<DB>(conn, &pre.sql, args, fence).await {
            Ok(rows) => Some(rows),
            Err(None) => None,
            Err(Some(e)) => {
                tracing::warn!(target: "reactive::db", error = %e, sql = pre.sql, "pre-read of old key values failed; those values are unknown");
                if !savepoint && rolls_back_transaction(&e) {
                    // A deadlock, not a refusal: the next write may well pre-read fine.
                    *lost = Some(e);
                } else if matches!(e, sqlx::Error::Database(_)) {
                    // The database refuses this pre-read (not a transient failure): stop trying.
                    info.pre_read_disabled.store(true, Ordering::Relaxed);
                }
                None
            }
        }
    }

    /// Whether the write just run on `conn` (inside its transaction) wrote the rows
    /// `rows` of `pre` locked: see [`PreRead::verify_from`]. `true` when there is
    /// nothing to check. A failed check counts as a mismatch.
    async fn wrote_pre_read_rows<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        pre: &PreRead,
        rows: &[DB::Row],
    ) -> bool {
        let Some(from) = &pre.verify_from else {
            return true;
        };
        let mut ctids = Vec::with_capacity(rows.len());
        for row in json_rows::<DB>(rows) {
            match row.get(pre.columns.len()) {
                // `(block,offset)`: nothing to quote.
                Some(Some(Json::String(c)))
                    if c.chars()
                        .all(|ch| ch.is_ascii_digit() || "(),".contains(ch)) =>
                {
                    ctids.push(format!("'{c}'::tid"));
                }
                _ => return false,
            }
        }
        if ctids.is_empty() {
            return true;
        }
        let sql = format!("SELECT 1 FROM {from} WHERE ctid IN ({})", ctids.join(", "));
        let visible = self
            .fenced_read::<DB>(conn, &sql, Default::default(), Some("reactive_verify"))
            .await;
        let matches = visible.is_ok_and(|still| still.is_empty());
        if !matches {
            tracing::debug!(target: "reactive::db", "the write selected other rows than its pre-read locked: old values unknown");
        }
        matches
    }

    /// Runs one pre-read on `conn`, inside the savepoint `fence` when given (on
    /// PostgreSQL a failed statement would abort the whole transaction). Counts the
    /// pre-read, and a failure as a fallback. `Err(None)`: the savepoint could not be set.
    async fn fenced_read<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        sql: &str,
        args: DB::Arguments,
        fence: Option<&str>,
    ) -> Result<Vec<DB::Row>, Option<sqlx::Error>> {
        self.counters.pre_reads.fetch_add(1, Ordering::Relaxed);
        let fallback = || {
            self.counters
                .pre_read_fallbacks
                .fetch_add(1, Ordering::Relaxed);
            crate::observe::metrics::count(crate::observe::metrics::PRE_READ_FAILURES, 1);
        };
        if let Some(name) = fence
            && execute_plain::<DB>(conn, format!("SAVEPOINT {name}"))
                .await
                .is_err()
        {
            fallback();
            return Err(None);
        }
        let exec = Exec::<DB> {
            sql: AssertSqlSafe(sql.to_owned()).into_sql_str(),
            args: Some(args),
            persistent: true,
        };
        let result: Result<Vec<DB::Row>, sqlx::Error> = DB::run(conn, exec)
            .filter_map(|r| {
                future::ready(match r {
                    Ok(Either::Right(row)) => Some(Ok(row)),
                    Ok(Either::Left(_)) => None,
                    Err(e) => Some(Err(e)),
                })
            })
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect();
        let end = match (&result, fence) {
            (_, None) => None,
            (Ok(_), Some(name)) => Some(format!("RELEASE SAVEPOINT {name}")),
            (Err(_), Some(name)) => Some(format!("ROLLBACK TO SAVEPOINT {name}")),
        };
        if let Some(end) = end {
            let _ = execute_plain::<DB>(conn, end).await;
        }
        result.map_err(|e| {
            fallback();
            Some(e)
        })
    }

    /// An autocommit write: execute (with a pre-read in one transaction when planned),
    /// then invalidate before returning.
    /// In a task of its own (see `finish`), so that a dropped caller cannot stop it
    /// between the write and its invalidation.
    async fn write_autocommit<DB: Backend>(
        self: Arc<Self>,
        pool: sqlx::Pool<DB>,
        stmt: Intercepted<DB>,
    ) -> Vec<Result<Step<DB>, sqlx::Error>> {
        let inner = self.clone();
        detached(&self, move |listener| {
            inner.write_autocommit_here(pool, stmt, listener)
        })
        .await
    }

    async fn write_autocommit_here<DB: Backend>(
        self: Arc<Self>,
        pool: sqlx::Pool<DB>,
        stmt: Intercepted<DB>,
        listener: Option<Arc<dyn InvalidationListener>>,
    ) -> Vec<Result<Step<DB>, sqlx::Error>> {
        let tables: Vec<String> = stmt
            .info
            .analysis
            .writes
            .iter()
            .map(|w| w.table.clone())
            .collect();
        self.catalog
            .ensure(&pool, self.dialect, tables.iter().map(String::as_str))
            .await;
        let mut plan = self.plan_write(&stmt);
        let exec = stmt.into_exec();
        let mut pre_rows = None;
        let mut cascade_rows = None;
        let results: Vec<Result<Step<DB>, sqlx::Error>> = match plan
            .pre
            .clone()
            .zip(plan.pre_args.take())
        {
            None => DB::pool_run(&pool, exec).collect().await,
            Some((pre, pre_args)) => {
                let begin = match self.dialect {
                    // Take the write lock first, so the pre-read and the write see one state.
                    Dialect::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                    Dialect::Postgres | Dialect::MySql => pool.begin().await,
                };
                match begin {
                    Err(e) => vec![Err(e)],
                    Ok(mut tx) => {
                        let mut lost = None;
                        pre_rows = self
                            .pre_read::<DB>(&mut tx, &pre, pre_args, false, &plan.info, &mut lost)
                            .await;
                        if pre_rows.is_some() && !plan.cascades.is_empty() {
                            let cascades = std::mem::take(&mut plan.cascades);
                            cascade_rows =
                                self.cascade_reads::<DB>(&mut tx, cascades, &mut lost).await;
                        }
                        if lost.is_some() {
                            // A deadlock rolled our transaction back: its locks are gone, so
                            // what the pre-reads saw may be out of date.
                            pre_rows = None;
                            cascade_rows = None;
                        }
                        if pre_rows.is_none() {
                            // The transaction may be aborted (PostgreSQL) or rolled back
                            // (MySQL deadlock): run the write on its own.
                            drop(tx);
                            DB::pool_run(&pool, exec).collect().await
                        } else {
                            let mut results: Vec<_> = DB::run(&mut tx, exec).collect().await;
                            if results.iter().any(Result::is_err) {
                                drop(tx);
                                pre_rows = None;
                                cascade_rows = None;
                            } else {
                                if let Some(rows) = &pre_rows
                                    && !self.wrote_pre_read_rows::<DB>(&mut tx, &pre, rows).await
                                {
                                    pre_rows = None;
                                    cascade_rows = None;
                                }
                                if let Err(e) = tx.commit().await {
                                    results.push(Err(e));
                                }
                            }
                            results
                        }
                    }
                }
            }
        };
        if let Some(change) = self.finish_write(plan, &results, pre_rows, cascade_rows) {
            self.apply_with(change, listener).await;
        }
        results
    }
}

fn error_stream<'e, T: Send + 'e>(e: sqlx::Error) -> BoxStream<'e, Result<T, sqlx::Error>> {
    stream::once(future::ready(Err(e))).boxed()
}

fn first_row<DB: Backend>(
    results: Vec<Result<Step<DB>, sqlx::Error>>,
) -> Result<Option<DB::Row>, sqlx::Error> {
    let mut first = None;
    for r in results {
        match r? {
            Either::Right(row) if first.is_none() => first = Some(row),
            _ => {}
        }
    }
    Ok(first)
}

/// `sqlx::query(..).fetch_all(&db)`, `query_as!(..).fetch_all(db)` and friends:
/// intercepted, then run on the pool. Reads go straight to the pool (streaming); writes
/// run to completion, invalidate, and then yield their results.
impl<'c, DB: Backend> Executor<'c> for &'c ReactiveDb<DB> {
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let stmt = match self.inner.intercept::<DB, E>(query) {
            Ok(stmt) => stmt,
            Err(e) => return error_stream(e),
        };
        if !stmt.is_write() {
            return DB::pool_run(&self.pool, stmt.into_exec());
        }
        let inner = self.inner.clone();
        let span = tracing::debug_span!("reactive.write", sql = stmt.sql.as_str());
        stream::once(
            inner
                .write_autocommit(self.pool.clone(), stmt)
                .instrument(span),
        )
        .flat_map(stream::iter)
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let stmt = match self.inner.intercept::<DB, E>(query) {
            Ok(stmt) => stmt,
            Err(e) => return Box::pin(future::ready(Err(e))),
        };
        if !stmt.is_write() {
            return DB::pool_run_optional(&self.pool, stmt.into_exec());
        }
        let inner = self.inner.clone();
        let pool = self.pool.clone();
        let span = tracing::debug_span!("reactive.write", sql = stmt.sql.as_str());
        Box::pin(
            async move { first_row::<DB>(inner.write_autocommit(pool, stmt).await) }
                .instrument(span),
        )
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, sqlx::Error>>
    where
        'c: 'e,
    {
        match self.inner.backend_sql(sql) {
            Ok(sql) => DB::pool_prepare_with(&self.pool, sql, parameters),
            Err(e) => Box::pin(future::ready(Err(e))),
        }
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self.inner.backend_sql(sql) {
            Ok(sql) => DB::pool_describe(&self.pool, sql),
            Err(e) => Box::pin(future::ready(Err(e))),
        }
    }
}

impl<DB: Backend> ReactiveTx<DB> {
    async fn write_in_tx(
        inner: Arc<DbShared>,
        conn: &mut DB::Connection,
        pending: &mut Vec<ChangeSet>,
        lost_tx: &mut bool,
        stmt: Intercepted<DB>,
    ) -> Vec<Result<Step<DB>, sqlx::Error>> {
        let mut plan = inner.plan_write(&stmt);
        let exec = stmt.into_exec();
        let mut pre_rows = None;
        let mut lost = None;
        if let (Some(pre), Some(args)) = (plan.pre.clone(), plan.pre_args.take()) {
            // A failed statement aborts a PostgreSQL transaction: fence the pre-read.
            let savepoint = inner.dialect == Dialect::Postgres;
            pre_rows = inner
                .pre_read::<DB>(conn, &pre, args, savepoint, &plan.info, &mut lost)
                .await;
        }
        let mut cascade_rows = None;
        if pre_rows.is_some() && !plan.cascades.is_empty() {
            let cascades = std::mem::take(&mut plan.cascades);
            cascade_rows = inner.cascade_reads::<DB>(conn, cascades, &mut lost).await;
        }
        if let Some(e) = lost {
            // The server rolled the user's transaction back (a deadlock on our locking
            // read). Running the statement now would commit it on its own, outside the
            // transaction, with no change set applied if the caller then rolls back: the
            // statement fails with the deadlock instead, as it would have by itself.
            *lost_tx = true;
            return vec![Err(e)];
        }
        // Held before the statement is sent: if this future is dropped while it runs,
        // the statement still runs in the transaction, and its commit must invalidate
        // what it may have changed.
        pending.push(plan.change.clone());
        let results: Vec<_> = DB::run(conn, exec).collect().await;
        pending.pop();
        if let (Some(pre), Some(rows)) = (&plan.pre, &pre_rows)
            && results.iter().all(Result::is_ok)
            && !inner.wrote_pre_read_rows::<DB>(conn, pre, rows).await
        {
            pre_rows = None;
            cascade_rows = None;
        }
        if inner.dialect == Dialect::MySql
            && results
                .iter()
                .any(|r| r.as_ref().is_err_and(rolls_back_transaction))
        {
            // The same for the user's own statement: what follows would autocommit.
            *lost_tx = true;
        }
        if let Some(change) = inner.finish_write(plan, &results, pre_rows, cascade_rows) {
            pending.push(change);
        }
        results
    }
}

/// `sqlx::query(..).execute(&mut tx)`: intercepted inside the transaction; change
/// sets are held until [`ReactiveTx::commit`].
impl<'c, DB: Backend> Executor<'c> for &'c mut ReactiveTxConn<DB> {
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let stmt = match self.inner.intercept::<DB, E>(query) {
            Ok(stmt) => stmt,
            Err(e) => return error_stream(e),
        };
        if self.lost {
            return error_stream(TransactionLost::error());
        }
        let Some(tx) = self.tx.as_mut() else {
            return error_stream(sqlx::Error::WorkerCrashed);
        };
        let conn: &'c mut DB::Connection = tx;
        if !stmt.is_write() {
            // A locking read can deadlock too.
            let lost = &mut self.lost;
            let mysql = self.inner.dialect == Dialect::MySql;
            return DB::run(conn, stmt.into_exec())
                .inspect(move |r| {
                    if mysql && r.as_ref().is_err_and(rolls_back_transaction) {
                        *lost = true;
                    }
                })
                .boxed();
        }
        let inner = self.inner.clone();
        let span = tracing::debug_span!("reactive.write", sql = stmt.sql.as_str(), tx = true);
        let (pending, lost) = (&mut self.pending, &mut self.lost);
        stream::once(ReactiveTx::write_in_tx(inner, conn, pending, lost, stmt).instrument(span))
            .flat_map(stream::iter)
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let stmt = match self.inner.intercept::<DB, E>(query) {
            Ok(stmt) => stmt,
            Err(e) => return Box::pin(future::ready(Err(e))),
        };
        if self.lost {
            return Box::pin(future::ready(Err(TransactionLost::error())));
        }
        let Some(tx) = self.tx.as_mut() else {
            return Box::pin(future::ready(Err(sqlx::Error::WorkerCrashed)));
        };
        let conn: &'c mut DB::Connection = tx;
        if !stmt.is_write() {
            let lost = &mut self.lost;
            let mysql = self.inner.dialect == Dialect::MySql;
            let read = DB::run_optional(conn, stmt.into_exec());
            return Box::pin(async move {
                let result = read.await;
                if mysql && result.as_ref().is_err_and(rolls_back_transaction) {
                    *lost = true;
                }
                result
            });
        }
        let inner = self.inner.clone();
        let span = tracing::debug_span!("reactive.write", sql = stmt.sql.as_str(), tx = true);
        let (pending, lost) = (&mut self.pending, &mut self.lost);
        Box::pin(
            async move {
                first_row::<DB>(ReactiveTx::write_in_tx(inner, conn, pending, lost, stmt).await)
            }
            .instrument(span),
        )
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, sqlx::Error>>
    where
        'c: 'e,
    {
        let sql = match self.inner.backend_sql(sql) {
            Ok(sql) => sql,
            Err(e) => return Box::pin(future::ready(Err(e))),
        };
        match self.tx.as_mut() {
            Some(tx) => DB::prepare_with(tx, sql, parameters),
            None => Box::pin(future::ready(Err(sqlx::Error::WorkerCrashed))),
        }
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>>
    where
        'c: 'e,
    {
        let sql = match self.inner.backend_sql(sql) {
            Ok(sql) => sql,
            Err(e) => return Box::pin(future::ready(Err(e))),
        };
        match self.tx.as_mut() {
            Some(tx) => DB::describe(tx, sql),
            None => Box::pin(future::ready(Err(sqlx::Error::WorkerCrashed))),
        }
    }
}

/// `&mut tx` is the same executor as `&mut *tx` (its [`ReactiveTxConn`]).
impl<'c, DB: Backend> Executor<'c> for &'c mut ReactiveTx<DB> {
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        (&mut **self).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        (&mut **self).fetch_optional(query)
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut **self).prepare_with(sql, parameters)
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut **self).describe(sql)
    }
}
