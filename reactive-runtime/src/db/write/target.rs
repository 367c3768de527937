//! Where a write runs: autocommit on the pool, or inside a user's transaction. The
//! protocol (`super::run`) is the same for both; these are the steps where they differ.

use std::sync::Arc;

use futures::stream::StreamExt;
use reactive_codegen::sql::Dialect;
use sqlx::{Pool, Transaction};

use super::super::DbShared;
use super::super::backend::{Backend, Exec};
use super::super::tx::rolls_back_transaction;
use super::Results;
use super::finish::finish_write;
use super::plan::WritePlan;
use super::pre_read::OldRows;
use crate::seams::InvalidationListener;
use crate::types::ChangeSet;

/// The connection source of one write.
pub(crate) enum Target<'a, DB: Backend> {
    /// An autocommit write on the pool. When it pre-reads, the pre-reads and the write
    /// share a transaction of their own, committed here; the change set is applied
    /// (and `listener` awaited) before the write returns.
    Autocommit {
        pool: Pool<DB>,
        tx: Option<Transaction<'static, DB>>,
        listener: Option<Arc<dyn InvalidationListener>>,
    },
    /// A statement of a user's transaction: its change set is held in `pending` until
    /// the transaction commits.
    InTx {
        conn: &'a mut DB::Connection,
        pending: &'a mut Vec<ChangeSet>,
        /// Set when the database rolled the user's transaction back on its own.
        lost: &'a mut bool,
    },
}

impl<DB: Backend> Target<'_, DB> {
    /// Whether the write's own pre-read runs inside a savepoint: in a user's
    /// PostgreSQL transaction, which a failed statement would abort. An autocommit
    /// write whose pre-read fails runs on its own instead.
    pub fn fences_pre_read(&self, dialect: Dialect) -> bool {
        matches!(self, Target::InTx { .. }) && dialect == Dialect::Postgres
    }

    /// The connection of the transaction the pre-reads and the write share, opened
    /// here for an autocommit write.
    pub async fn begin(&mut self, dialect: Dialect) -> Result<&mut DB::Connection, sqlx::Error> {
        match self {
            Target::Autocommit { pool, tx, .. } => {
                let begun = match dialect {
                    // Take the write lock first, so the pre-read and the write see one state.
                    Dialect::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                    Dialect::Postgres | Dialect::MySql => pool.begin().await,
                }?;
                Ok(&mut **tx.insert(begun))
            }
            Target::InTx { conn, .. } => Ok(&mut **conn),
        }
    }

    /// The open transaction's connection, if any.
    pub fn conn(&mut self) -> Option<&mut DB::Connection> {
        match self {
            Target::Autocommit { tx, .. } => tx.as_deref_mut(),
            Target::InTx { conn, .. } => Some(&mut **conn),
        }
    }

    /// A deadlock rolled the pre-reads' transaction back. Autocommit: the write goes
    /// on, on its own with old values unknown (`None`). In a user's transaction,
    /// running it now would commit it on its own, outside the transaction, with no
    /// change set applied if the caller then rolls back: the transaction is lost and
    /// the statement fails with the deadlock, as it would have by itself.
    pub fn lost(&mut self, deadlock: sqlx::Error) -> Option<Results<DB>> {
        match self {
            Target::Autocommit { tx, .. } => {
                *tx = None;
                None
            }
            Target::InTx { lost, .. } => {
                **lost = true;
                Some(vec![Err(deadlock)])
            }
        }
    }

    /// Runs the write, with `change` (what it may change) held while it runs in a
    /// user's transaction. Also says whether the rows the pre-reads found still
    /// describe the write's transaction (`false` for an autocommit write that ran on
    /// its own or whose transaction was rolled back).
    pub async fn execute(
        &mut self,
        exec: Exec<DB>,
        change: &ChangeSet,
        have_old_rows: bool,
    ) -> (Results<DB>, bool) {
        match self {
            Target::Autocommit { pool, tx, .. } => match tx.as_mut() {
                Some(open) if have_old_rows => {
                    let results: Results<DB> = DB::run(open, exec).collect().await;
                    if results.iter().any(Result::is_err) {
                        *tx = None;
                        return (results, false);
                    }
                    (results, true)
                }
                _ => {
                    // The pre-read failed: its transaction may be aborted (PostgreSQL) or
                    // rolled back (MySQL deadlock), so the write runs on its own.
                    *tx = None;
                    (DB::pool_run(pool, exec).collect().await, false)
                }
            },
            Target::InTx { conn, pending, .. } => {
                // Held before the statement is sent: if this future is dropped while it
                // runs, the statement still runs in the transaction, and its commit must
                // invalidate what it may have changed.
                pending.push(change.clone());
                let results = DB::run(conn, exec).collect().await;
                pending.pop();
                (results, true)
            }
        }
    }

    /// After the write: commits an autocommit write's own transaction (a failed
    /// commit is one more result); in a user's MySQL transaction, marks it lost when
    /// the statement deadlocked (what follows would autocommit).
    pub async fn end(&mut self, dialect: Dialect, results: &mut Results<DB>) {
        match self {
            Target::Autocommit { tx, .. } => {
                if let Some(open) = tx.take()
                    && let Err(e) = open.commit().await
                {
                    results.push(Err(e));
                }
            }
            Target::InTx { lost, .. } => {
                if dialect == Dialect::MySql
                    && results
                        .iter()
                        .any(|r| r.as_ref().is_err_and(rolls_back_transaction))
                {
                    **lost = true;
                }
            }
        }
    }

    /// Completes the change set and hands it on: applied now (autocommit), or held
    /// until the user's transaction commits. Returns the write's results.
    pub async fn finish(
        &mut self,
        inner: &DbShared,
        plan: WritePlan<DB>,
        results: Results<DB>,
        old: OldRows<DB>,
    ) -> Results<DB> {
        if let Some(change) = finish_write(inner, plan, &results, old) {
            match self {
                Target::Autocommit { listener, .. } => {
                    inner.apply_with(change, listener.take()).await;
                }
                Target::InTx { pending, .. } => pending.push(change),
            }
        }
        results
    }
}
