//! The sqlx `Executor` implementations: every statement sent through `&ReactiveDb`
//! or `&mut ReactiveTx` is intercepted here.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::{self, BoxFuture};
use futures::stream::{self, BoxStream, StreamExt};
use reactive_codegen::sql::Dialect;
use sqlx::AnyConnection;
use sqlx::any::{Any, AnyArguments, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::error::BoxDynError;
use sqlx::{AssertSqlSafe, Either, Execute, Executor, SqlSafeStr, SqlStr};
use tracing::Instrument;

use super::changes::{
    CascadeRead, PreRead, add_cascades, add_old_values, cascade_plan, change_of, pre_read_plan,
    reads_of,
};
use super::statement::{Origin, StatementInfo};
use super::values::{arg_count, select_args};
use super::{Inner, ReactiveDb, ReactiveTx, TransactionLost, scope};
use crate::engine::ChangeSet;

type Step = Either<AnyQueryResult, AnyRow>;

/// What sqlx gets from us: the (possibly rewritten) SQL and the original arguments.
pub(crate) struct Exec {
    sql: SqlStr,
    args: Option<AnyArguments>,
    persistent: bool,
}

impl Execute<'_, Any> for Exec {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&AnyStatement> {
        None
    }

    fn take_arguments(&mut self) -> Result<Option<AnyArguments>, BoxDynError> {
        Ok(self.args.take())
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

/// An intercepted statement: its analysis and everything needed to run it.
pub(crate) struct Intercepted {
    pub sql: SqlStr,
    pub info: Arc<StatementInfo>,
    pub args: Option<AnyArguments>,
    pub persistent: bool,
}

impl Intercepted {
    fn is_write(&self) -> bool {
        self.info.analysis.may_write()
    }

    fn into_exec(self) -> Exec {
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
struct WritePlan {
    change: ChangeSet,
    pre: Option<(PreRead, Option<AnyArguments>, AnyArguments)>,
    cascades: Vec<(CascadeRead, AnyArguments)>,
    info: Arc<StatementInfo>,
    known_single: bool,
}

/// The rows the cascade pre-reads returned (`None`: one failed, use none of them).
type CascadeRows = Option<Vec<(CascadeRead, Vec<AnyRow>)>>;

/// Whether a failed statement took its whole transaction with it: a deadlock or
/// serialization failure (SQLSTATE `40001`). MySQL/MariaDB then roll the transaction
/// back on the server and run what follows on that connection in autocommit mode, so a
/// write must not go on as if it were still inside the transaction.
fn rolls_back_transaction(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("40001"))
}

impl Inner {
    /// Intercepts one statement: analysis (model, memo or parse), MySQL rewrite check,
    /// and recording of its reads in the active call scope.
    pub(crate) fn intercept<'q, E: Execute<'q, Any>>(
        &self,
        mut query: E,
    ) -> Result<Intercepted, sqlx::Error> {
        let persistent = query.persistent();
        let args = query.take_arguments().map_err(sqlx::Error::Encode)?;
        let sql = query.sql();
        let scope = scope::current();
        let (info, origin) = match scope.as_ref().and_then(|s| s.index.get(sql.as_str())) {
            Some(info) => (info.clone(), Origin::Model),
            None => self.memo.get(sql.as_str()),
        };
        self.counters.statements.fetch_add(1, Ordering::Relaxed);
        if origin == Origin::Model {
            self.counters.model_hits.fetch_add(1, Ordering::Relaxed);
        }
        tracing::trace!(target: "reactive::db", sql = sql.as_str(), ?origin, function = scope.as_ref().map(|s| s.name.as_str()), write = info.analysis.may_write(), "intercepted");
        if let Some(e) = &info.rewrite_error {
            return Err(sqlx::Error::Configuration(Box::new(e.clone())));
        }
        if let Some(scope) = &scope
            && (info.analysis.unknown.is_some() || !info.analysis.reads.is_empty())
        {
            let reads = reads_of(&info.analysis, args.as_ref(), self.dialect);
            self.watch_reads(&reads);
            scope.record(reads);
        }
        Ok(Intercepted {
            sql,
            info,
            args,
            persistent,
        })
    }

    fn plan_write(&self, stmt: &Intercepted) -> WritePlan {
        let analysis = &stmt.info.analysis;
        let change = change_of(analysis, stmt.args.as_ref(), self.dialect);
        let known_single = analysis.unknown.is_none() && !change.is_everything();
        let mut pre = None;
        let mut cascades = Vec::new();
        if self.options.read_old_values
            && known_single
            && analysis.writes.len() == 1
            && !stmt.info.pre_read_disabled.load(Ordering::Relaxed)
        {
            let watched = self.watched_columns(&analysis.writes[0].table);
            if !watched.is_empty() {
                let template = stmt.info.where_template(stmt.sql.as_str(), self.dialect);
                let cascade_plans = self.cascade_plans(analysis, &change, template);
                let force = cascade_plans.first().map(|c| c.edge.from_column.as_str());
                if let Some(plan) = pre_read_plan(
                    analysis,
                    &change,
                    stmt.args.as_ref(),
                    self.dialect,
                    &watched,
                    template,
                    force,
                ) {
                    match select_args(stmt.args.as_ref(), &plan.params) {
                        Some(pre_args)
                            if plan
                                .params
                                .iter()
                                .all(|p| *p <= arg_count(stmt.args.as_ref())) =>
                        {
                            let copy = stmt.args.as_ref().map(super::values::clone_args);
                            for c in cascade_plans {
                                if let Some(args) = select_args(stmt.args.as_ref(), &plan.params) {
                                    cascades.push((c, args));
                                }
                            }
                            pre = Some((plan, copy, pre_args));
                        }
                        _ => {}
                    }
                }
            }
        }
        WritePlan {
            change,
            pre,
            cascades,
            info: stmt.info.clone(),
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
                )
            })
            .collect()
    }

    /// Runs the cascade pre-reads on `conn`, each fenced by a savepoint on PostgreSQL
    /// (a failed statement would abort the transaction). All or nothing.
    async fn cascade_reads(
        &self,
        conn: &mut AnyConnection,
        cascades: Vec<(CascadeRead, AnyArguments)>,
        lost: &mut Option<sqlx::Error>,
    ) -> CascadeRows {
        let savepoint = self.dialect == Dialect::Postgres;
        let mut out = Vec::with_capacity(cascades.len());
        for (read, args) in cascades {
            let fence = savepoint.then_some("reactive_cascade_read");
            match self.fenced_read(conn, &read.sql, args, fence).await {
                Ok(rows) => out.push((read, rows)),
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
    fn finish_write(
        &self,
        plan: WritePlan,
        results: &[Result<Step, sqlx::Error>],
        pre_rows: Option<Vec<AnyRow>>,
        cascade_rows: CascadeRows,
    ) -> Option<ChangeSet> {
        let failed = results.iter().any(Result::is_err);
        let affected: u64 = results
            .iter()
            .filter_map(|r| match r {
                Ok(Either::Left(q)) => Some(q.rows_affected()),
                _ => None,
            })
            .sum();
        let returned = results
            .iter()
            .filter(|r| matches!(r, Ok(Either::Right(_))))
            .count() as u64;
        // A plain INSERT/UPDATE/DELETE that reports no affected and no returned row
        // changed nothing (a writable CTE under a SELECT could report 0: not skipped).
        if plan.known_single
            && plan.info.analysis.operation.is_write()
            && !failed
            && affected == 0
            && returned == 0
        {
            return None;
        }
        let mut change = plan.change;
        if let (Some((pre, args, _)), Some(rows)) = (&plan.pre, pre_rows) {
            let count = rows.len() as u64;
            if !failed && (count == affected || (affected == 0 && count == returned)) {
                add_old_values(
                    &mut change,
                    &plan.info.analysis,
                    pre,
                    &rows,
                    args.as_ref(),
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
            self.add_returned_keys(&mut change, &plan.info.analysis, results);
        }
        Some(change)
    }

    /// An `INSERT ... RETURNING` gives the values of columns the statement does not
    /// know, such as generated ids: each watched column the inserted row changes leave
    /// unknown takes the values of every returned row (a superset per row). Columns a
    /// returned row has no key form for stay unknown.
    fn add_returned_keys(
        &self,
        change: &mut ChangeSet,
        analysis: &reactive_codegen::sql::StatementAnalysis,
        results: &[Result<Step, sqlx::Error>],
    ) {
        use sqlx::{Column, Row};
        let [write] = analysis.writes.as_slice() else {
            return;
        };
        if write.operation != reactive_codegen::sql::Operation::Insert {
            return;
        }
        let rows: Vec<&AnyRow> = results
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
                    .any(|r| r.op == crate::engine::RowOp::Insert && r.values(&name).is_none())
            {
                continue;
            }
            let values: Option<std::collections::BTreeSet<crate::engine::KeyValue>> = rows
                .iter()
                .map(|r| {
                    super::values::row_value(r, i)
                        .and_then(|v| crate::engine::KeyValue::from_json(&v, self.dialect))
                })
                .collect();
            let Some(values) = values else {
                continue;
            };
            for row in inserted.iter_mut() {
                if row.op == crate::engine::RowOp::Insert && row.values(&name).is_none() {
                    row.columns.insert(name.clone(), values.clone());
                }
            }
        }
    }

    /// Runs the pre-read on `conn` (inside the write's transaction).
    async fn pre_read(
        &self,
        conn: &mut AnyConnection,
        pre: &PreRead,
        args: AnyArguments,
        savepoint: bool,
        info: &StatementInfo,
        lost: &mut Option<sqlx::Error>,
    ) -> Option<Vec<AnyRow>> {
        let fence = savepoint.then_some("reactive_pre_read");
        match self.fenced_read(conn, &pre.sql, args, fence).await {
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

    /// Runs one pre-read on `conn`, inside the savepoint `fence` when given (on
    /// PostgreSQL a failed statement would abort the whole transaction). Counts the
    /// pre-read, and a failure as a fallback. `Err(None)`: the savepoint could not be set.
    async fn fenced_read(
        &self,
        conn: &mut AnyConnection,
        sql: &str,
        args: AnyArguments,
        fence: Option<&str>,
    ) -> Result<Vec<AnyRow>, Option<sqlx::Error>> {
        self.counters.pre_reads.fetch_add(1, Ordering::Relaxed);
        let fallback = || {
            self.counters
                .pre_read_fallbacks
                .fetch_add(1, Ordering::Relaxed);
        };
        if let Some(name) = fence
            && conn
                .execute(AssertSqlSafe(format!("SAVEPOINT {name}")))
                .await
                .is_err()
        {
            fallback();
            return Err(None);
        }
        let result = sqlx::query_with::<Any, _>(AssertSqlSafe(sql.to_owned()), args)
            .fetch_all(&mut *conn)
            .await;
        let end = match (&result, fence) {
            (_, None) => None,
            (Ok(_), Some(name)) => Some(format!("RELEASE SAVEPOINT {name}")),
            (Err(_), Some(name)) => Some(format!("ROLLBACK TO SAVEPOINT {name}")),
        };
        if let Some(end) = end {
            let _ = conn.execute(AssertSqlSafe(end)).await;
        }
        result.map_err(|e| {
            fallback();
            Some(e)
        })
    }

    /// An autocommit write: execute (with a pre-read in one transaction when planned),
    /// then invalidate before returning.
    async fn write_autocommit(
        self: Arc<Self>,
        stmt: Intercepted,
    ) -> Vec<Result<Step, sqlx::Error>> {
        let mut plan = self.plan_write(&stmt);
        let exec = stmt.into_exec();
        let mut pre_rows = None;
        let mut cascade_rows = None;
        let results: Vec<Result<Step, sqlx::Error>> = match plan
            .pre
            .as_mut()
            .map(|(p, _, a)| (p.clone(), std::mem::take(a)))
        {
            None => self.pool.fetch_many(exec).collect().await,
            Some((pre, pre_args)) => {
                let begin = match self.dialect {
                    // Take the write lock first, so the pre-read and the write see one state.
                    Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
                    Dialect::Postgres | Dialect::MySql => self.pool.begin().await,
                };
                match begin {
                    Err(e) => vec![Err(e)],
                    Ok(mut tx) => {
                        let mut lost = None;
                        pre_rows = self
                            .pre_read(&mut tx, &pre, pre_args, false, &plan.info, &mut lost)
                            .await;
                        if pre_rows.is_some() && !plan.cascades.is_empty() {
                            let cascades = std::mem::take(&mut plan.cascades);
                            cascade_rows = self.cascade_reads(&mut tx, cascades, &mut lost).await;
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
                            self.pool.fetch_many(exec).collect().await
                        } else {
                            let mut results: Vec<_> = (&mut *tx).fetch_many(exec).collect().await;
                            if results.iter().any(Result::is_err) {
                                drop(tx);
                                pre_rows = None;
                                cascade_rows = None;
                            } else if let Err(e) = tx.commit().await {
                                results.push(Err(e));
                            }
                            results
                        }
                    }
                }
            }
        };
        if let Some(change) = self.finish_write(plan, &results, pre_rows, cascade_rows) {
            self.apply(change).await;
        }
        results
    }
}

fn error_stream<'e, T: Send + 'e>(e: sqlx::Error) -> BoxStream<'e, Result<T, sqlx::Error>> {
    stream::once(future::ready(Err(e))).boxed()
}

fn first_row(results: Vec<Result<Step, sqlx::Error>>) -> Result<Option<AnyRow>, sqlx::Error> {
    let mut first = None;
    for r in results {
        match r? {
            Either::Right(row) if first.is_none() => first = Some(row),
            _ => {}
        }
    }
    Ok(first)
}

/// `sqlx::query(..).fetch_all(&db)` and friends: intercepted, then run on the pool.
/// Reads go straight to the pool (streaming); writes run to completion, invalidate,
/// and then yield their results.
impl<'c> Executor<'c> for &'c ReactiveDb {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let stmt = match self.inner.intercept(query) {
            Ok(stmt) => stmt,
            Err(e) => return error_stream(e),
        };
        if !stmt.is_write() {
            return self.inner.pool.fetch_many(stmt.into_exec());
        }
        let inner = self.inner.clone();
        let span = tracing::debug_span!("reactive.write", sql = stmt.sql.as_str());
        stream::once(inner.write_autocommit(stmt).instrument(span))
            .flat_map(stream::iter)
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let stmt = match self.inner.intercept(query) {
            Ok(stmt) => stmt,
            Err(e) => return Box::pin(future::ready(Err(e))),
        };
        if !stmt.is_write() {
            return self.inner.pool.fetch_optional(stmt.into_exec());
        }
        let inner = self.inner.clone();
        let span = tracing::debug_span!("reactive.write", sql = stmt.sql.as_str());
        Box::pin(async move { first_row(inner.write_autocommit(stmt).await) }.instrument(span))
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        match self.inner.backend_sql(sql) {
            Ok(sql) => self.inner.pool.prepare_with(sql, parameters),
            Err(e) => Box::pin(future::ready(Err(e))),
        }
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self.inner.backend_sql(sql) {
            Ok(sql) => self.inner.pool.describe(sql),
            Err(e) => Box::pin(future::ready(Err(e))),
        }
    }
}

impl ReactiveTx {
    async fn write_in_tx(
        inner: Arc<Inner>,
        conn: &mut AnyConnection,
        pending: &mut Vec<ChangeSet>,
        lost_tx: &mut bool,
        stmt: Intercepted,
    ) -> Vec<Result<Step, sqlx::Error>> {
        let mut plan = inner.plan_write(&stmt);
        let exec = stmt.into_exec();
        let mut pre_rows = None;
        let mut lost = None;
        if let Some((pre, _, args)) = plan.pre.as_mut() {
            let args = std::mem::take(args);
            // A failed statement aborts a PostgreSQL transaction: fence the pre-read.
            let savepoint = inner.dialect == Dialect::Postgres;
            pre_rows = inner
                .pre_read(conn, &pre.clone(), args, savepoint, &plan.info, &mut lost)
                .await;
        }
        let mut cascade_rows = None;
        if pre_rows.is_some() && !plan.cascades.is_empty() {
            let cascades = std::mem::take(&mut plan.cascades);
            cascade_rows = inner.cascade_reads(conn, cascades, &mut lost).await;
        }
        if let Some(e) = lost {
            // The server rolled the user's transaction back (a deadlock on our locking
            // read). Running the statement now would commit it on its own, outside the
            // transaction, with no change set applied if the caller then rolls back: the
            // statement fails with the deadlock instead, as it would have by itself.
            *lost_tx = true;
            return vec![Err(e)];
        }
        let results: Vec<_> = conn.fetch_many(exec).collect().await;
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
impl<'c> Executor<'c> for &'c mut ReactiveTx {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let stmt = match self.inner.intercept(query) {
            Ok(stmt) => stmt,
            Err(e) => return error_stream(e),
        };
        if self.lost {
            return error_stream(TransactionLost::error());
        }
        let Some(tx) = self.tx.as_mut() else {
            return error_stream(sqlx::Error::WorkerCrashed);
        };
        let conn: &'c mut AnyConnection = tx;
        if !stmt.is_write() {
            // A locking read can deadlock too.
            let lost = &mut self.lost;
            let mysql = self.inner.dialect == Dialect::MySql;
            return conn
                .fetch_many(stmt.into_exec())
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
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let stmt = match self.inner.intercept(query) {
            Ok(stmt) => stmt,
            Err(e) => return Box::pin(future::ready(Err(e))),
        };
        if self.lost {
            return Box::pin(future::ready(Err(TransactionLost::error())));
        }
        let Some(tx) = self.tx.as_mut() else {
            return Box::pin(future::ready(Err(sqlx::Error::WorkerCrashed)));
        };
        let conn: &'c mut AnyConnection = tx;
        if !stmt.is_write() {
            let lost = &mut self.lost;
            let mysql = self.inner.dialect == Dialect::MySql;
            let read = conn.fetch_optional(stmt.into_exec());
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
                first_row(ReactiveTx::write_in_tx(inner, conn, pending, lost, stmt).await)
            }
            .instrument(span),
        )
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        let sql = match self.inner.backend_sql(sql) {
            Ok(sql) => sql,
            Err(e) => return Box::pin(future::ready(Err(e))),
        };
        match self.tx.as_mut() {
            Some(tx) => {
                let conn: &'c mut AnyConnection = tx;
                conn.prepare_with(sql, parameters)
            }
            None => Box::pin(future::ready(Err(sqlx::Error::WorkerCrashed))),
        }
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        let sql = match self.inner.backend_sql(sql) {
            Ok(sql) => sql,
            Err(e) => return Box::pin(future::ready(Err(e))),
        };
        match self.tx.as_mut() {
            Some(tx) => {
                let conn: &'c mut AnyConnection = tx;
                conn.describe(sql)
            }
            None => Box::pin(future::ready(Err(sqlx::Error::WorkerCrashed))),
        }
    }
}
