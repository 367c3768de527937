//! Plan: what a write changes as far as the statement and its arguments tell, and the
//! pre-reads that fetch the old values of the rows it writes (see the `db` module docs).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use reactive_codegen::sql::StatementAnalysis;
use serde_json::Value as Json;
use sqlx::Arguments;

use super::super::DbShared;
use super::super::backend::Backend;
use super::super::changes::{
    Binding, CascadeRead, PreRead, cascade_plan, change_of, pre_read_plan,
};
use super::super::intercept::Intercepted;
use super::super::rewrite::WhereTemplate;
use super::super::statement::StatementInfo;
use crate::types::ChangeSet;

/// What a write needs after it ran: its change set, the optional pre-read and the
/// cascade pre-reads (run only after the pre-read, whose row count check they rely on).
pub(crate) struct WritePlan<DB: Backend> {
    /// The change set known from the statement alone.
    pub change: ChangeSet,
    /// The pre-read of the written rows' old values, if one is planned.
    pub pre: Option<PreRead>,
    /// The arguments of the pre-read (the write's own), taken when it runs.
    pre_args: Option<DB::Arguments>,
    cascades: Vec<(CascadeRead, DB::Arguments)>,
    pub info: Arc<StatementInfo>,
    /// Parameter values of the write, by 1-based index (for the pre-read's `SET` values).
    pub values: Vec<Option<Json>>,
    /// A reported count of 0 rows means nothing changed (the statement's effect is
    /// known: parsed, not everything), and no trigger or rule of the
    /// written tables may have written (a `BEFORE` trigger that redirects the row and
    /// returns `NULL` writes while the statement reports 0 rows).
    pub zero_is_nothing: bool,
}

/// The pre-reads of a plan, taken to run them: the write's own pre-read with its
/// arguments, and the cascade pre-reads.
pub(crate) struct PlannedReads<DB: Backend> {
    pub pre: PreRead,
    pub args: DB::Arguments,
    pub cascades: Vec<(CascadeRead, DB::Arguments)>,
}

impl<DB: Backend> WritePlan<DB> {
    /// Takes the planned pre-reads (they run once); `None` when none is planned.
    pub fn take_reads(&mut self) -> Option<PlannedReads<DB>> {
        let (pre, args) = self.pre.clone().zip(self.pre_args.take())?;
        Some(PlannedReads {
            pre,
            args,
            cascades: std::mem::take(&mut self.cascades),
        })
    }
}

/// Plans a write: its change set from the statement, and its pre-reads when old values
/// are read, the statement writes one table and some query watches its columns.
pub(crate) fn plan_write<DB: Backend>(inner: &DbShared, stmt: &Intercepted<DB>) -> WritePlan<DB> {
    let analysis = &stmt.info.analysis;
    let count = stmt.args.as_ref().map_or(0, Arguments::len);
    let values: Vec<Option<Json>> = (1..=count).map(|i| stmt.value(i)).collect();
    let value = |i: usize| values.get(i.checked_sub(1)?).cloned().flatten();
    // A write through a view changes its base tables (or whatever an `INSTEAD OF`
    // trigger writes), and its row count may be 0 (SQLite counts no trigger's rows):
    // everything, and never skipped as a no-op.
    let change = if analysis
        .writes
        .iter()
        .any(|w| inner.catalog.is_view(&w.table))
    {
        ChangeSet::everything()
    } else {
        change_of(analysis, &value, inner.dialect)
    };
    let known_single = analysis.unknown.is_none() && !change.is_everything();
    let zero_is_nothing = known_single
        && !analysis
            .writes
            .iter()
            .any(|w| inner.catalog.has_triggers(&w.table));
    let mut pre = None;
    let mut pre_args = None;
    let mut cascades = Vec::new();
    if inner.options.read_old_values
        && known_single
        && analysis.writes.len() == 1
        && !stmt.info.pre_read_disabled.load(Ordering::Relaxed)
    {
        let watched = inner.watched_columns(&analysis.writes[0].table);
        if !watched.is_empty() {
            let template = stmt.info.where_template(stmt.sql.as_str(), inner.dialect);
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
                let cascade_plans = cascade_plans(inner, analysis, &change, template, binding);
                let force = cascade_plans.first().map(|c| c.edge.from_column.as_str());
                if let Some(plan) = pre_read_plan(
                    analysis,
                    &change,
                    &value,
                    inner.dialect,
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
        zero_is_nothing,
    }
}

/// The cascade pre-reads of a single-table `DELETE` (or `UPDATE` of a relation
/// source's key column): one per relation edge from the written table to a target
/// column, when some query filters on other columns of the target table.
fn cascade_plans(
    inner: &DbShared,
    analysis: &StatementAnalysis,
    change: &ChangeSet,
    template: Option<&WhereTemplate>,
    binding: Binding,
) -> Vec<CascadeRead> {
    let (Some(template), [write]) = (template, analysis.writes.as_slice()) else {
        return Vec::new();
    };
    let Some([row]) = change.rows(&write.table) else {
        return Vec::new();
    };
    inner
        .engine
        .relations()
        .edges()
        .iter()
        .filter(|e| e.from_table == write.table && row.op.propagates_through(&e.from_column))
        .filter_map(|e| {
            cascade_plan(
                e,
                &inner.watched_columns(&e.to_table),
                template,
                inner.dialect,
                binding,
            )
        })
        .collect()
}
