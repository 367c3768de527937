//! The sqlx `Executor` adapter: every statement sent through `&ReactiveDb` (on the
//! pool, autocommit), `&mut ReactiveTxConn` or `&mut ReactiveTx` (inside a
//! transaction) is intercepted here and then runs as a read ([`Read`]) or through the
//! write protocol ([`write`](super::write)). The three `Executor` impls only say which
//! of the two connection sources ([`Via`]) they are.

use futures::future::{self, BoxFuture};
use futures::stream::{self, BoxStream, StreamExt};
use reactive_codegen::sql::Dialect;
use sqlx::{Either, Execute, Executor, SqlStr};
use tracing::Instrument;

use super::backend::{Backend, Step};
use super::read::Read;
use super::write::{self, Results};
use super::{ReactiveDb, ReactiveTx, ReactiveTxConn};
use crate::error::TransactionLost;

/// Where a statement runs: on the pool, or inside a transaction.
pub(crate) enum Via<'c, DB: Backend> {
    /// Autocommit, on the handle's pool.
    Pool(&'c ReactiveDb<DB>),
    /// Inside the transaction of this connection.
    Tx(&'c mut ReactiveTxConn<DB>),
}

/// An intercepted statement, started: a read to run, or the write protocol running.
enum Run<'c, DB: Backend> {
    Read(Read<'c, DB>),
    Write(BoxFuture<'c, Results<DB>>),
}

impl<'c, DB: Backend> Via<'c, DB> {
    /// `Executor::fetch_many`: a read streams; a write runs to its end (invalidation
    /// included) and then yields its results.
    pub fn fetch_many<'q, E: Execute<'q, DB>>(
        self,
        query: E,
    ) -> BoxStream<'c, Result<Step<DB>, sqlx::Error>> {
        match self.start(query) {
            Ok(Run::Read(read)) => read.stream(),
            Ok(Run::Write(write)) => stream::once(write).flat_map(stream::iter).boxed(),
            Err(e) => stream::once(future::ready(Err(e))).boxed(),
        }
    }

    /// `Executor::fetch_optional`: the first row of a read, or of a write's results.
    pub fn fetch_optional<'q, E: Execute<'q, DB>>(
        self,
        query: E,
    ) -> BoxFuture<'c, Result<Option<DB::Row>, sqlx::Error>> {
        match self.start(query) {
            Ok(Run::Read(read)) => read.optional(),
            Ok(Run::Write(write)) => Box::pin(async move { first_row::<DB>(write.await) }),
            Err(e) => Box::pin(future::ready(Err(e))),
        }
    }

    /// `Executor::prepare_with`, with the backend's text (MySQL rewrite).
    pub fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, sqlx::Error>>
    where
        'c: 'e,
    {
        let sql = match self.backend_sql(sql) {
            Ok(sql) => sql,
            Err(e) => return Box::pin(future::ready(Err(e))),
        };
        match self {
            Via::Pool(db) => DB::pool_prepare_with(&db.pool, sql, parameters),
            Via::Tx(conn) => match conn.tx.as_mut() {
                Some(tx) => DB::prepare_with(tx, sql, parameters),
                None => Box::pin(future::ready(Err(sqlx::Error::WorkerCrashed))),
            },
        }
    }

    /// `Executor::describe`, with the backend's text (MySQL rewrite).
    pub fn describe(self, sql: SqlStr) -> BoxFuture<'c, Result<sqlx::Describe<DB>, sqlx::Error>> {
        let sql = match self.backend_sql(sql) {
            Ok(sql) => sql,
            Err(e) => return Box::pin(future::ready(Err(e))),
        };
        match self {
            Via::Pool(db) => DB::pool_describe(&db.pool, sql),
            Via::Tx(conn) => match conn.tx.as_mut() {
                Some(tx) => DB::describe(tx, sql),
                None => Box::pin(future::ready(Err(sqlx::Error::WorkerCrashed))),
            },
        }
    }

    fn backend_sql(&self, sql: SqlStr) -> Result<SqlStr, sqlx::Error> {
        match self {
            Via::Pool(db) => db.inner.backend_sql(sql),
            Via::Tx(conn) => conn.inner.backend_sql(sql),
        }
    }

    /// Intercepts `query` and starts it: a read on this source, or the write protocol
    /// (autocommit on the pool, or inside the transaction).
    fn start<'q, E: Execute<'q, DB>>(self, query: E) -> Result<Run<'c, DB>, sqlx::Error> {
        match self {
            Via::Pool(db) => {
                let stmt = db.inner.intercept::<DB, E>(query, db.scope.clone())?;
                if !stmt.is_write() {
                    let exec = stmt.into_exec();
                    return Ok(Run::Read(Read::Pool {
                        pool: &db.pool,
                        exec,
                    }));
                }
                let span = tracing::debug_span!("reactive.write", sql = stmt.sql.as_str());
                let origin = db.origin();
                let write = write::autocommit(db.inner.clone(), db.pool.clone(), origin, stmt);
                Ok(Run::Write(Box::pin(write.instrument(span))))
            }
            Via::Tx(conn) => {
                let ReactiveTxConn {
                    inner,
                    scope,
                    tx,
                    pending,
                    lost,
                    ..
                } = conn;
                let stmt = inner.intercept::<DB, E>(query, scope.clone())?;
                if *lost {
                    return Err(TransactionLost::error());
                }
                let Some(tx) = tx.as_mut() else {
                    return Err(sqlx::Error::WorkerCrashed);
                };
                let conn: &'c mut DB::Connection = tx;
                if !stmt.is_write() {
                    let mysql = inner.dialect == Dialect::MySql;
                    let exec = stmt.into_exec();
                    return Ok(Run::Read(Read::Tx {
                        conn,
                        lost,
                        mysql,
                        exec,
                    }));
                }
                let span =
                    tracing::debug_span!("reactive.write", sql = stmt.sql.as_str(), tx = true);
                let inner: &'c _ = inner;
                let write = write::in_tx(inner, conn, pending, lost, stmt);
                Ok(Run::Write(Box::pin(write.instrument(span))))
            }
        }
    }
}

/// The first row among a write's results (its first error, if any comes first).
fn first_row<DB: Backend>(results: Results<DB>) -> Result<Option<DB::Row>, sqlx::Error> {
    let mut first = None;
    for r in results {
        match r? {
            Either::Right(row) if first.is_none() => first = Some(row),
            _ => {}
        }
    }
    Ok(first)
}

/// Implements `Executor<'c>` for `$executor` by forwarding each method to the
/// [`Via`] that `$via` makes of `self`: the one adapter, written once for the three
/// executor types.
macro_rules! executor_via {
    ($(#[$doc:meta])* $executor:ty, |$this:ident| $via:expr) => {
        $(#[$doc])*
        impl<'c, DB: Backend> Executor<'c> for $executor {
            type Database = DB;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>>
            where
                'c: 'e,
                E: 'q + Execute<'q, DB>,
            {
                let $this = self;
                $via.fetch_many(query)
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
            where
                'c: 'e,
                E: 'q + Execute<'q, DB>,
            {
                let $this = self;
                $via.fetch_optional(query)
            }

            fn prepare_with<'e>(
                self,
                sql: SqlStr,
                parameters: &'e [DB::TypeInfo],
            ) -> BoxFuture<'e, Result<DB::Statement, sqlx::Error>>
            where
                'c: 'e,
            {
                let $this = self;
                $via.prepare_with(sql, parameters)
            }

            fn describe<'e>(
                self,
                sql: SqlStr,
            ) -> BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>>
            where
                'c: 'e,
            {
                let $this = self;
                $via.describe(sql)
            }
        }
    };
}

executor_via!(
    /// `sqlx::query(..).fetch_all(&db)`, `query_as!(..).fetch_all(db)` and friends:
    /// intercepted, then run on the pool. Reads go straight to the pool (streaming);
    /// writes run to completion, invalidate, and then yield their results.
    &'c ReactiveDb<DB>,
    |db| Via::Pool(db)
);

executor_via!(
    /// `sqlx::query(..).execute(&mut *tx)`: intercepted inside the transaction; change
    /// sets are held until [`ReactiveTx::commit`].
    &'c mut ReactiveTxConn<DB>,
    |conn| Via::Tx(conn)
);

executor_via!(
    /// `sqlx::query(..).execute(&mut tx)`: the same executor as `&mut *tx` (its
    /// [`ReactiveTxConn`]).
    &'c mut ReactiveTx<DB>,
    |tx| Via::Tx(&mut **tx)
);
