//! Statement analysis at run time: the function model's statements (no parsing) and
//! a bounded memo of statements parsed once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use reactive_codegen::model::FunctionModel;
use reactive_codegen::sql::{Dialect, StatementAnalysis, analyze};

use super::rewrite::{PlaceholderError, WhereTemplate, mysql_placeholders, where_template};

/// Where a statement's analysis came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalysisSource {
    /// The function model of the active call (compile-time analysis).
    Model,
    /// The run-time memo (parsed earlier).
    Memo,
    /// Parsed just now.
    Parsed,
}

/// Everything the interceptor needs about one SQL text; built once per text.
#[derive(Debug)]
pub struct StatementInfo {
    /// What the statement does.
    pub analysis: Arc<StatementAnalysis>,
    /// The text sent to the backend when it differs (MySQL `$N` → `?`).
    pub backend_sql: Option<Arc<str>>,
    /// Set when the text can't run on this backend (MySQL with reused/out-of-order `$N`).
    pub rewrite_error: Option<PlaceholderError>,
    /// The pre-read template (computed on first need).
    where_template: OnceLock<Option<WhereTemplate>>,
    /// Set when the database rejected this statement's pre-read (e.g. a watched column
    /// the table does not have): later executions don't try again.
    pub pre_read_disabled: AtomicBool,
    /// For a function model's statement: the binding each parameter traces to
    /// (index 0 = parameter 1). Empty for statements parsed at run time.
    pub params: Vec<Option<usize>>,
}

impl StatementInfo {
    /// Builds the info for `sql` on `backend`, with an analysis already at hand or
    /// parsed here.
    pub fn build(sql: &str, backend: Dialect, analysis: Option<StatementAnalysis>) -> Self {
        let (backend_sql, rewrite_error) = match backend {
            Dialect::MySql => match mysql_placeholders(sql) {
                Ok(rewritten) => (rewritten.map(Arc::from), None),
                Err(e) => (None, Some(e)),
            },
            Dialect::Postgres | Dialect::Sqlite => (None, None),
        };
        let analysis = analysis.unwrap_or_else(|| {
            // MySqlDialect reads `$1` as an identifier: analyse the text MySQL will see.
            let text = backend_sql.as_deref().unwrap_or(sql);
            analyze(text, backend)
        });
        Self {
            analysis: Arc::new(analysis),
            backend_sql,
            rewrite_error,
            where_template: OnceLock::new(),
            pre_read_disabled: AtomicBool::new(false),
            params: Vec::new(),
        }
    }

    /// The template of a pre-read for this (single-table `UPDATE`/`DELETE`) statement.
    pub fn where_template(&self, sql: &str, backend: Dialect) -> Option<&WhereTemplate> {
        self.where_template
            .get_or_init(|| where_template(self.backend_sql.as_deref().unwrap_or(sql), backend))
            .as_ref()
    }
}

/// A function model's statements by exact SQL text, built once per model and backend.
#[derive(Debug)]
pub struct ModelIndex {
    statements: HashMap<String, Arc<StatementInfo>>,
    /// The model with `dialect` set to the backend's, so that key values of its read
    /// set are canonicalized as the backend compares them (MySQL folds case) — the
    /// same way as the change sets of writes on that backend.
    pub model: FunctionModel,
}

impl ModelIndex {
    /// Indexes `model`'s statements for `backend`.
    pub fn new(model: &FunctionModel, backend: Dialect) -> Self {
        // One text sent twice with different arguments: a parameter traces to a binding
        // only where every occurrence agrees.
        let mut params: HashMap<&str, Vec<Option<usize>>> = HashMap::new();
        for s in &model.statements {
            params
                .entry(s.sql.as_str())
                .and_modify(|p| {
                    for (i, b) in p.iter_mut().enumerate() {
                        if s.params.get(i).copied().flatten() != *b {
                            *b = None;
                        }
                    }
                })
                .or_insert_with(|| s.params.clone());
        }
        let statements = model
            .statements
            .iter()
            .map(|s| {
                let mut info = StatementInfo::build(&s.sql, backend, Some(s.analysis.clone()));
                info.params = params.get(s.sql.as_str()).cloned().unwrap_or_default();
                (s.sql.clone(), Arc::new(info))
            })
            .collect();
        let mut model = model.clone();
        model.dialect = backend;
        Self { statements, model }
    }

    /// The statement with this exact text.
    pub fn get(&self, sql: &str) -> Option<&Arc<StatementInfo>> {
        self.statements.get(sql)
    }
}

/// Bounded memo of statements analysed at run time, keyed by SQL text.
pub struct Memo {
    cache: moka::sync::Cache<Arc<str>, Arc<StatementInfo>>,
    backend: Dialect,
    pub(super) hits: AtomicU64,
    pub(super) parsed: AtomicU64,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl Memo {
    /// A memo holding at most `capacity` statements.
    pub fn new(backend: Dialect, capacity: u64) -> Self {
        Self {
            cache: moka::sync::Cache::new(capacity),
            backend,
            hits: AtomicU64::new(0),
            parsed: AtomicU64::new(0),
        }
    }

    /// The analysis of `sql`, parsed on first sight.
    pub fn get(&self, sql: &str) -> (Arc<StatementInfo>, AnalysisSource) {
        if let Some(info) = self.cache.get(sql) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return (info, AnalysisSource::Memo);
        }
        let _span = tracing::debug_span!("reactive.parse", sql).entered();
        let info = Arc::new(StatementInfo::build(sql, self.backend, None));
        self.parsed.fetch_add(1, Ordering::Relaxed);
        self.cache.insert(Arc::from(sql), info.clone());
        (info, AnalysisSource::Parsed)
    }
}
