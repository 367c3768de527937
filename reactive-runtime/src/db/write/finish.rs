//! Finish: a write's change set completed from what it returned (rows affected,
//! `RETURNING` rows) and what its pre-reads found.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use reactive_codegen::sql::{Operation, StatementAnalysis};
use sqlx::Either;

use super::super::DbShared;
use super::super::backend::Backend;
use super::super::changes::{add_cascades, add_old_values};
use super::Results;
use super::plan::WritePlan;
use super::pre_read::{OldRows, json_rows};
use crate::types::{ChangeSet, KeyValue, RowOp};

/// Finishes a write's change set from its results (and pre-read rows) and returns
/// it, or `None` when nothing can have changed.
pub(crate) fn finish_write<DB: Backend>(
    inner: &DbShared,
    plan: WritePlan<DB>,
    results: &Results<DB>,
    old: OldRows<DB>,
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
    // analysis lists every write occurrence, CTEs' included). Nor is it for a table
    // with triggers (see `WritePlan::zero_is_nothing`).
    if plan.zero_is_nothing
        && plan.info.analysis.operation.is_write()
        && plan.info.analysis.writes.len() == 1
        && !failed
        && affected == 0
        && returned == 0
    {
        return None;
    }
    let analysis = &plan.info.analysis;
    let values = &plan.values;
    let mut change = plan.change;
    if let (Some(pre), Some(rows)) = (&plan.pre, old.rows) {
        let count = rows.len() as u64;
        if !failed && (count == affected || (affected == 0 && count == returned)) {
            add_old_values(
                &mut change,
                analysis,
                pre,
                &json_rows::<DB>(&rows),
                &|i| values.get(i.checked_sub(1)?).cloned().flatten(),
                inner.dialect,
            );
            // The written rows were locked and counted by the pre-read: the rows the
            // cascade reads found are those the database's cascade reaches.
            if let Some(cascades) = old.cascades {
                add_cascades(&mut change, &pre.table, cascades, inner.dialect);
            }
        } else {
            inner
                .counters
                .pre_read_fallbacks
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target: "reactive::db", count, affected, "pre-read row count differs from rows affected: old values unknown");
        }
    }
    if !failed && returned > 0 {
        add_returned_keys::<DB>(inner, &mut change, analysis, results);
    }
    Some(change)
}

/// An `INSERT ... RETURNING` gives the values of columns the statement does not
/// know, such as generated ids: each watched column the inserted row changes leave
/// unknown takes the values of every returned row (a superset per row). Columns a
/// returned row has no key form for stay unknown.
fn add_returned_keys<DB: Backend>(
    inner: &DbShared,
    change: &mut ChangeSet,
    analysis: &StatementAnalysis,
    results: &Results<DB>,
) {
    use sqlx::{Column, Row};
    let [write] = analysis.writes.as_slice() else {
        return;
    };
    if write.operation != Operation::Insert {
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
    let watched = inner.watched_columns(&write.table);
    let Some(inserted) = change.tables.get_mut(&write.table) else {
        return;
    };
    for (i, column) in first.columns().iter().enumerate() {
        let name = column.name().to_lowercase();
        if !watched.contains(&name)
            || !inserted
                .iter()
                .any(|r| r.op == RowOp::Insert && r.values(&name).is_none())
        {
            continue;
        }
        let values: Option<BTreeSet<KeyValue>> = rows
            .iter()
            .map(|r| DB::row_value(r, i).and_then(|v| KeyValue::from_json(&v, inner.dialect)))
            .collect();
        let Some(values) = values else {
            continue;
        };
        for row in inserted.iter_mut() {
            if row.op == RowOp::Insert && row.values(&name).is_none() {
                row.columns.insert(name.clone(), values.clone());
            }
        }
    }
}
