//! [`DbShared`]: what the clones of one handle share (analysis memo, watched columns,
//! counters, engine, listener, catalog), and the application of a change set to the
//! engine and the listener.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use reactive_codegen::model::FunctionModel;
use reactive_codegen::sql::{Dialect, RowFilter};
use tracing::Instrument;

use super::statement::{Memo, ModelIndex};
use super::{DbOptions, InvalidationListener, MAX_CHANGE_VALUE_LEN, catalog, detach};
use crate::engine::Engine;
use crate::seams::CallOrigin;
use crate::types::{ChangeSet, InvalidationReport, ReadSet};

/// Drops values longer than `max` (their column becomes unknown in that row).
pub(super) fn bound_values(changes: &mut ChangeSet, max: usize) {
    for rows in changes.tables.values_mut() {
        for row in rows.iter_mut() {
            row.columns
                .retain(|_, values| values.iter().all(|v| v.as_str().len() <= max));
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct DbCounters {
    pub(super) statements: AtomicU64,
    pub(super) model_hits: AtomicU64,
    pub(super) changes_applied: AtomicU64,
    pub(super) pre_reads: AtomicU64,
    pub(super) pre_read_fallbacks: AtomicU64,
}

/// Everything a handle holds but its pool: shared by the clones of one handle, and
/// the same whatever the driver.
pub(crate) struct DbShared {
    pub(super) dialect: Dialect,
    pub(super) memo: Memo,
    pub(super) models: Mutex<HashMap<String, Arc<ModelIndex>>>,
    /// Table → columns some query filters on (what pre-reads fetch).
    pub(super) watched: RwLock<HashMap<String, BTreeSet<String>>>,
    pub(super) options: DbOptions,
    pub(super) counters: DbCounters,
    pub(super) engine: Engine,
    pub(super) listener: RwLock<Option<Arc<dyn InvalidationListener>>>,
    pub(super) catalog: catalog::Catalog,
    /// Writes finishing in tasks of their own (see [`ReactiveDb::settled`]).
    pub(super) detached: detach::InFlight,
}

impl DbShared {
    /// The installed listener, if any.
    pub(super) fn listener(&self) -> Option<Arc<dyn InvalidationListener>> {
        self.listener
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Applies a change set made for `origin` to the engine, then awaits the listener.
    pub(crate) async fn apply(
        &self,
        changes: ChangeSet,
        origin: Option<CallOrigin>,
    ) -> Arc<InvalidationReport> {
        let listener = self.listener().map(|l| l.bind_to(origin));
        self.apply_with(changes, listener).await
    }

    /// [`DbShared::apply`] with this (bound) listener.
    pub(crate) async fn apply_with(
        &self,
        mut changes: ChangeSet,
        listener: Option<Arc<dyn InvalidationListener>>,
    ) -> Arc<InvalidationReport> {
        self.catalog.refine_changes(&mut changes, self.dialect);
        bound_values(&mut changes, MAX_CHANGE_VALUE_LEN);
        let span = tracing::debug_span!(
            "reactive.invalidate",
            everything = changes.is_everything(),
            tables = ?changes.tables.keys().collect::<Vec<_>>(),
            entries = tracing::field::Empty,
            reasons = tracing::field::Empty,
        );
        self.counters
            .changes_applied
            .fetch_add(1, Ordering::Relaxed);
        let report = Arc::new(self.engine.apply(changes).instrument(span.clone()).await);
        span.record("entries", report.entries.len());
        // Naming each entry allocates: only for a subscriber that records the span.
        if !span.is_disabled() && !report.entries.is_empty() {
            span.record("reasons", crate::observe::trace::reasons(&report).as_str());
        }
        if let Some(listener) = listener {
            listener
                .on_invalidation(report.clone())
                .instrument(span)
                .await;
        }
        report
    }

    /// The model index of a function (built once per name).
    pub(super) fn model_index(&self, model: &FunctionModel) -> Arc<ModelIndex> {
        let mut models = self
            .models
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(index) = models.get(&model.name) {
            return index.clone();
        }
        let index = Arc::new(ModelIndex::new(model, self.dialect));
        models.insert(model.name.clone(), index.clone());
        drop(models);
        self.watch_model(model);
        index
    }

    /// Adds the key columns a model's queries filter on to the watched columns.
    pub(super) fn watch_model(&self, model: &FunctionModel) {
        let mut watched = self
            .watched
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for dep in &model.dependencies {
            for key in &dep.keys {
                watched
                    .entry(dep.table.clone())
                    .or_default()
                    .insert(key.column.clone());
            }
        }
        for st in &model.statements {
            for read in &st.analysis.reads {
                if let RowFilter::Keys(preds) = &read.filter {
                    for p in preds {
                        watched
                            .entry(read.table.clone())
                            .or_default()
                            .insert(p.column.clone());
                    }
                }
            }
        }
    }

    /// Adds the key columns of a recorded read to the watched columns.
    pub(super) fn watch_reads(&self, reads: &ReadSet) {
        let missing = {
            let watched = self
                .watched
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            reads.tables.iter().any(|(table, alts)| {
                alts.iter()
                    .flat_map(|c| c.columns.keys())
                    .any(|c| !watched.get(table).is_some_and(|w| w.contains(c)))
            })
        };
        if missing {
            let mut watched = self
                .watched
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (table, alts) in &reads.tables {
                for c in alts.iter().flat_map(|c| c.columns.keys()) {
                    watched.entry(table.clone()).or_default().insert(c.clone());
                }
            }
        }
    }

    /// The watched columns of a table.
    pub(super) fn watched_columns(&self, table: &str) -> BTreeSet<String> {
        let mut columns = self
            .watched
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(table)
            .cloned()
            .unwrap_or_default();
        // The source key of every edge from this table: the rows it reaches are
        // selected by the old values of that column.
        for edge in self.engine.relations().edges() {
            if edge.from_table == table {
                columns.insert(edge.from_column.clone());
            }
        }
        columns
    }

    /// The SQL text to send to the backend (MySQL rewrite), for prepare/describe.
    pub(super) fn backend_sql(&self, sql: sqlx::SqlStr) -> Result<sqlx::SqlStr, sqlx::Error> {
        use sqlx::SqlSafeStr;
        if self.dialect != Dialect::MySql {
            return Ok(sql);
        }
        let (info, _) = self.memo.get(sql.as_str());
        if let Some(e) = &info.rewrite_error {
            return Err(sqlx::Error::Configuration(Box::new(e.clone())));
        }
        Ok(match &info.backend_sql {
            Some(text) => sqlx::AssertSqlSafe(text.clone()).into_sql_str(),
            None => sql,
        })
    }
}
