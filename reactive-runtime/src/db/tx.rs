//! [`ReactiveTx`]: a transaction whose statements are intercepted and whose change
//! sets are applied only when it commits.

use std::sync::Arc;

use sqlx::{Pool, Transaction};

use super::detach::detached;
use super::scope::CallScope;
use super::{Backend, DbShared, origin};
use crate::error::TransactionLost;
use crate::seams::CallOrigin;
use crate::types::ChangeSet;

/// A database transaction that is also an executor: `sqlx::query(..).execute(&mut tx)`,
/// or `.execute(&mut *tx)` as with sqlx's own `Transaction` (which derefs to its
/// connection; this one derefs to a [`ReactiveTxConn`], an executor too, so helpers
/// taking `impl PgExecutor<'_>` accept it).
///
/// Writes inside it are intercepted like autocommit writes, but their change sets are
/// held: [`ReactiveTx::commit`] commits, then invalidates once for all of them (and
/// awaits the invalidation listener). [`ReactiveTx::rollback`], or dropping the
/// transaction without committing, rolls back and invalidates nothing.
///
/// Reads inside the transaction see its uncommitted writes; when such a read runs in
/// a query's call scope, its result may reflect writes that are later rolled back.
/// Don't read through a transaction inside a cached query.
pub struct ReactiveTx<DB: Backend> {
    conn: ReactiveTxConn<DB>,
}

/// The connection side of a [`ReactiveTx`], what `&mut *tx` gives: an executor whose
/// statements run inside the transaction, intercepted like the transaction's own
/// (see [`ReactiveTx`]). It cannot commit; the [`ReactiveTx`] does.
pub struct ReactiveTxConn<DB: Backend> {
    pub(super) inner: Arc<DbShared>,
    /// The pool the transaction came from (the catalog is read on it after commit).
    pub(super) pool: Pool<DB>,
    /// The call of the handle the transaction was begun from, if any.
    pub(super) scope: Option<Arc<CallScope>>,
    pub(super) tx: Option<Transaction<'static, DB>>,
    pub(super) pending: Vec<ChangeSet>,
    /// The database rolled the transaction back on its own (MySQL/MariaDB after a
    /// deadlock): every later statement and the commit fail with [`TransactionLost`].
    pub(super) lost: bool,
}

impl<DB: Backend> std::fmt::Debug for ReactiveTx<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactiveTx")
            .field("pending_changes", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<DB: Backend> std::fmt::Debug for ReactiveTxConn<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactiveTxConn")
            .field("pending_changes", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<DB: Backend> std::ops::Deref for ReactiveTx<DB> {
    type Target = ReactiveTxConn<DB>;

    fn deref(&self) -> &ReactiveTxConn<DB> {
        &self.conn
    }
}

impl<DB: Backend> std::ops::DerefMut for ReactiveTx<DB> {
    fn deref_mut(&mut self) -> &mut ReactiveTxConn<DB> {
        &mut self.conn
    }
}

impl<DB: Backend> ReactiveTx<DB> {
    pub(super) fn new(conn: ReactiveTxConn<DB>) -> Self {
        ReactiveTx { conn }
    }

    /// Commits, then applies every change set the transaction's writes produced
    /// (one invalidation, awaited with its listener). If the commit fails nothing is
    /// invalidated, except when the outcome is unknown (a connection error during
    /// `COMMIT`), in which case the changes are applied anyway. The commit and its
    /// invalidation run to the end even if this future is dropped.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let tx = self
            .tx
            .take()
            .expect("a ReactiveTx holds its transaction until commit or rollback");
        let pending = std::mem::take(&mut self.pending);
        if self.lost {
            let _ = tx.rollback().await;
            return Err(TransactionLost::error());
        }
        let mut all = ChangeSet::empty();
        for change in &pending {
            all.merge(change);
        }
        // The commit and its invalidation run in a task of their own (see `detach`).
        let (inner, pool) = (self.inner.clone(), self.pool.clone());
        detached(&self.inner, self.origin(), move |listener| async move {
            let result = tx.commit().await;
            let applies = match &result {
                Ok(()) => true,
                // The server may have committed before the connection failed (or before
                // its answer became unreadable: MySQL after a statement was dropped
                // half-read).
                Err(
                    sqlx::Error::Io(_)
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed,
                ) => true,
                Err(_) => false,
            };
            if applies && !pending.is_empty() {
                let tables: Vec<&str> = all.tables.keys().map(String::as_str).collect();
                inner.catalog.ensure(&pool, inner.dialect, tables).await;
                inner.apply_with(all, listener).await;
            }
            result
        })
        .await
    }

    /// Rolls back; the transaction's change sets are dropped.
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.pending.clear();
        let tx = self
            .tx
            .take()
            .expect("a ReactiveTx holds its transaction until commit or rollback");
        tx.rollback().await
    }
}

impl<DB: Backend> ReactiveTxConn<DB> {
    /// The change sets held so far (applied at commit).
    pub fn pending_changes(&self) -> &[ChangeSet] {
        &self.pending
    }

    /// Who the transaction's writes are made for: see
    /// [`ReactiveDb::origin`](super::ReactiveDb::origin).
    pub fn origin(&self) -> Option<CallOrigin> {
        self.scope
            .as_ref()
            .and_then(|s| s.origin.clone())
            .or_else(origin::current)
    }
}

/// Whether a failed statement took its whole transaction with it: a deadlock or
/// serialization failure (SQLSTATE `40001`). MySQL/MariaDB then roll the transaction
/// back on the server and run what follows on that connection in autocommit mode, so a
/// write must not go on as if it were still inside the transaction.
pub(super) fn rolls_back_transaction(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("40001"))
}
