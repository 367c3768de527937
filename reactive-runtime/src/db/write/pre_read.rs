//! Pre-read: the old values of the rows a write is about to change, read on the
//! write's own transaction before it runs, and the rows reached through relation
//! edges (cascade pre-reads); then the check that the write wrote the rows the
//! pre-read locked (see the `db` module docs).

use std::sync::atomic::Ordering;

use futures::future;
use futures::stream::StreamExt;
use reactive_codegen::sql::Dialect;
use serde_json::Value as Json;
use sqlx::{AssertSqlSafe, Either, SqlSafeStr};

use super::super::DbShared;
use super::super::backend::{Backend, Exec};
use super::super::changes::{CascadeRead, PreRead};
use super::super::statement::StatementInfo;
use super::super::tx::rolls_back_transaction;
use super::plan::PlannedReads;

/// The rows the cascade pre-reads returned (`None`: one failed, use none of them).
pub(crate) type CascadeRows = Option<Vec<(CascadeRead, Vec<Vec<Option<Json>>>)>>;

/// What the pre-reads found: the written rows' old values and the rows reached
/// through relation edges (each `None` when not read or not usable).
pub(crate) struct OldRows<DB: Backend> {
    pub rows: Option<Vec<DB::Row>>,
    pub cascades: CascadeRows,
}

impl<DB: Backend> OldRows<DB> {
    /// Nothing read: old values unknown.
    pub fn none() -> Self {
        OldRows {
            rows: None,
            cascades: None,
        }
    }
}

/// The rows of a pre-read as JSON values, column by column.
pub(crate) fn json_rows<DB: Backend>(rows: &[DB::Row]) -> Vec<Vec<Option<Json>>> {
    use sqlx::Row;
    rows.iter()
        .map(|r| (0..r.len()).map(|i| DB::row_value(r, i)).collect())
        .collect()
}

/// Runs the planned pre-reads on `conn` (inside the write's transaction): the write's
/// own, inside a savepoint when `fence`, then the cascade pre-reads if it succeeded.
/// `Err`: a deadlock rolled the transaction back (its locks, and so what the
/// pre-reads saw, are gone).
pub(crate) async fn read_old<DB: Backend>(
    inner: &DbShared,
    conn: &mut DB::Connection,
    reads: PlannedReads<DB>,
    fence: bool,
    info: &StatementInfo,
) -> Result<OldRows<DB>, sqlx::Error> {
    let mut lost = None;
    let mut old = OldRows::none();
    old.rows = pre_read::<DB>(inner, conn, &reads.pre, reads.args, fence, info, &mut lost).await;
    if old.rows.is_some() && !reads.cascades.is_empty() {
        old.cascades = cascade_reads::<DB>(inner, conn, reads.cascades, &mut lost).await;
    }
    match lost {
        Some(e) => Err(e),
        None => Ok(old),
    }
}

/// Runs the pre-read on `conn` (inside the write's transaction).
async fn pre_read<DB: Backend>(
    inner: &DbShared,
    conn: &mut DB::Connection,
    pre: &PreRead,
    args: DB::Arguments,
    savepoint: bool,
    info: &StatementInfo,
    lost: &mut Option<sqlx::Error>,
) -> Option<Vec<DB::Row>> {
    let fence = savepoint.then_some("reactive_pre_read");
    match fenced_read::<DB>(inner, conn, &pre.sql, args, fence).await {
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

/// Runs the cascade pre-reads on `conn`, each fenced by a savepoint on PostgreSQL
/// (a failed statement would abort the transaction). All or nothing.
async fn cascade_reads<DB: Backend>(
    inner: &DbShared,
    conn: &mut DB::Connection,
    cascades: Vec<(CascadeRead, DB::Arguments)>,
    lost: &mut Option<sqlx::Error>,
) -> CascadeRows {
    let savepoint = inner.dialect == Dialect::Postgres;
    let mut out = Vec::with_capacity(cascades.len());
    for (read, args) in cascades {
        let fence = savepoint.then_some("reactive_cascade_read");
        match fenced_read::<DB>(inner, conn, &read.sql, args, fence).await {
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

/// Whether the write just run on `conn` (inside its transaction) wrote the rows
/// `rows` of `pre` locked: see [`PreRead::verify_from`]. `true` when there is
/// nothing to check. A failed check counts as a mismatch.
pub(crate) async fn wrote_pre_read_rows<DB: Backend>(
    inner: &DbShared,
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
    let visible = fenced_read::<DB>(
        inner,
        conn,
        &sql,
        Default::default(),
        Some("reactive_verify"),
    )
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
    inner: &DbShared,
    conn: &mut DB::Connection,
    sql: &str,
    args: DB::Arguments,
    fence: Option<&str>,
) -> Result<Vec<DB::Row>, Option<sqlx::Error>> {
    let counters = &inner.counters;
    counters.pre_reads.fetch_add(1, Ordering::Relaxed);
    let fallback = || {
        counters.pre_read_fallbacks.fetch_add(1, Ordering::Relaxed);
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
