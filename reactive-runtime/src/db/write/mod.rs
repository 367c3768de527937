//! The write protocol, in one place: **plan** (the change set the statement tells,
//! and the pre-reads to run), **pre-read** (the written rows' old values, in the
//! write's transaction), **execute**, **finish** (the change set completed from the
//! results, then applied or held). [`run`] is the protocol; [`Target`] is where it
//! runs: autocommit on the pool ([`autocommit`], in a task of its own) or inside a
//! user's transaction ([`in_tx`]). The per-backend choices are in the `db` module docs.

mod finish;
mod plan;
mod pre_read;
mod target;

use std::sync::Arc;

use sqlx::Pool;

use super::DbShared;
use super::backend::{Backend, Step};
use super::detach::detached;
use super::intercept::Intercepted;
use crate::seams::CallOrigin;
use crate::types::ChangeSet;
use plan::plan_write;
use pre_read::{OldRows, read_old, wrote_pre_read_rows};
use target::Target;

/// Everything a statement returned, in order.
pub(crate) type Results<DB> = Vec<Result<Step<DB>, sqlx::Error>>;

/// An autocommit write made for `origin`: the protocol on the pool, then the
/// invalidation, before it returns. In a task of its own (see `detach`), so that a
/// dropped caller cannot stop it between the write and its invalidation.
pub(crate) async fn autocommit<DB: Backend>(
    inner: Arc<DbShared>,
    pool: Pool<DB>,
    origin: Option<CallOrigin>,
    stmt: Intercepted<DB>,
) -> Results<DB> {
    let shared = inner.clone();
    detached(&inner, origin, move |listener| async move {
        let tables: Vec<&str> = stmt
            .info
            .analysis
            .writes
            .iter()
            .map(|w| w.table.as_str())
            .collect();
        shared.catalog.ensure(&pool, shared.dialect, tables).await;
        let mut target = Target::Autocommit {
            pool,
            tx: None,
            listener,
        };
        run(&shared, &mut target, stmt).await
    })
    .await
}

/// A write inside a user's transaction on `conn`: its change set is pushed to
/// `pending` (applied at commit); `lost` is set when the database rolled the
/// transaction back on its own.
pub(crate) async fn in_tx<DB: Backend>(
    inner: &DbShared,
    conn: &mut DB::Connection,
    pending: &mut Vec<ChangeSet>,
    lost: &mut bool,
    stmt: Intercepted<DB>,
) -> Results<DB> {
    let mut target = Target::InTx {
        conn,
        pending,
        lost,
    };
    run(inner, &mut target, stmt).await
}

/// The protocol: plan → pre-read → execute → finish.
async fn run<DB: Backend>(
    inner: &DbShared,
    target: &mut Target<'_, DB>,
    stmt: Intercepted<DB>,
) -> Results<DB> {
    let mut plan = plan_write(inner, &stmt);
    let exec = stmt.into_exec();
    let mut old = OldRows::none();
    if let Some(reads) = plan.take_reads() {
        let fence = target.fences_pre_read(inner.dialect);
        let read = match target.begin(inner.dialect).await {
            Ok(conn) => read_old(inner, conn, reads, fence, &plan.info).await,
            // The write can't run either; what it may have changed still counts.
            Err(e) => return target.finish(inner, plan, vec![Err(e)], old).await,
        };
        match read {
            Ok(rows) => old = rows,
            Err(deadlock) => {
                if let Some(failed) = target.lost(deadlock) {
                    return failed;
                }
            }
        }
    }
    let (mut results, kept) = target.execute(exec, &plan.change, old.rows.is_some()).await;
    if !kept {
        old = OldRows::none();
    }
    if let (Some(pre), Some(rows)) = (&plan.pre, &old.rows)
        && results.iter().all(Result::is_ok)
        && let Some(conn) = target.conn()
        && !wrote_pre_read_rows::<DB>(inner, conn, pre, rows).await
    {
        old = OldRows::none();
    }
    target.end(inner.dialect, &mut results).await;
    target.finish(inner, plan, results, old).await
}
