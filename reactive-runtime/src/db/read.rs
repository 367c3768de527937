//! Reads, once intercepted (their reads are recorded by then): streamed from the pool,
//! or run on a transaction's connection, where a deadlock marks the transaction lost.

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use sqlx::Pool;

use super::backend::{Backend, Exec, Step};
use super::tx::rolls_back_transaction;

/// A read ready to run.
pub(crate) enum Read<'c, DB: Backend> {
    /// On a pooled connection.
    Pool { pool: &'c Pool<DB>, exec: Exec<DB> },
    /// On a user transaction's connection.
    Tx {
        conn: &'c mut DB::Connection,
        /// Set when a deadlock rolled the transaction back (MySQL/MariaDB only: a
        /// locking read can deadlock too, and what follows would autocommit).
        lost: &'c mut bool,
        mysql: bool,
        exec: Exec<DB>,
    },
}

impl<'c, DB: Backend> Read<'c, DB> {
    /// Every result, streamed.
    pub fn stream(self) -> BoxStream<'c, Result<Step<DB>, sqlx::Error>> {
        match self {
            Read::Pool { pool, exec } => DB::pool_run(pool, exec),
            Read::Tx {
                conn,
                lost,
                mysql,
                exec,
            } => DB::run(conn, exec)
                .inspect(move |r| {
                    if mysql && r.as_ref().is_err_and(rolls_back_transaction) {
                        *lost = true;
                    }
                })
                .boxed(),
        }
    }

    /// The first row.
    pub fn optional(self) -> BoxFuture<'c, Result<Option<DB::Row>, sqlx::Error>> {
        match self {
            Read::Pool { pool, exec } => DB::pool_run_optional(pool, exec),
            Read::Tx {
                conn,
                lost,
                mysql,
                exec,
            } => {
                let read = DB::run_optional(conn, exec);
                Box::pin(async move {
                    let result = read.await;
                    if mysql && result.as_ref().is_err_and(rolls_back_transaction) {
                        *lost = true;
                    }
                    result
                })
            }
        }
    }
}
