//! From a [`HandlerAnalysis`] to the pieces of a [`crate::model::FunctionModel`],
//! and to the resolved read/write sets the CLI prints.
//!
//! The rule for a key predicate (`column = value` or `column IN (values)`) of a
//! table a statement touches:
//! - a parameter whose bind expression is an input field → [`KeySource::Binding`];
//! - a literal in the SQL, or a Rust literal bound to the parameter → [`KeySource::Literal`];
//! - a parameter bound to anything else (a local, a computed value), or not bound
//!   where the analysis can see it → the whole predicate is **dropped** from the
//!   conjunction. Dropping a conjunct widens the set of rows, which is always safe.
//!
//! When nothing remains the dependency is the whole table (`keys` empty).

use std::collections::HashMap;

use crate::model::{
    Binding, FunctionKind, KeyDependency, KeySource, StatementModel, TableDependency,
};
use crate::sql::{ColumnValue, KeyPredicate, Literal, Operation, RowFilter, ValueRef};

use super::{BindValue, DiagnosticKind, HandlerAnalysis, SqlSite};

/// The pieces of a [`crate::model::FunctionModel`] inferred from a handler body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelParts {
    /// Query or mutation (see [`HandlerAnalysis::kind`]).
    pub kind: FunctionKind,
    /// Input fields the keys are traced to, each listed once, in order of first use.
    pub bindings: Vec<Binding>,
    /// Tables read by any statement, with key conjunctions, sorted by table; a
    /// whole-table dependency absorbs keyed ones on the same table; no duplicates.
    pub dependencies: Vec<TableDependency>,
    /// One entry per statement, in source order.
    pub statements: Vec<StatementModel>,
    /// `false` when the body also sends SQL the analysis could not see (built at run
    /// time) or could not read (unknown statements): the dependencies above are then
    /// not everything the function reads, and the macro must not trust them alone.
    pub complete: bool,
}

/// A table with keys whose sources are rendered as text (for the CLI).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResolvedTable {
    /// Table name.
    pub table: String,
    /// Conjunction of keys; empty = the whole table.
    pub keys: Vec<ResolvedKey>,
}

/// One key with the text of where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResolvedKey {
    /// Column name.
    pub column: String,
    /// The Rust expression (`input.organization_id`), the Rust literal bound
    /// (`"active"`), or the SQL literal (`'active'`, `42`). For `IN` lists with
    /// several values, the sources joined with `", "`.
    pub source: String,
    /// Number of values (more than one for `IN` lists and multi-row inserts).
    pub values: usize,
}

/// Turn a handler analysis into model pieces (see the module docs for the key rule).
pub fn to_model_parts(analysis: &HandlerAnalysis) -> ModelParts {
    let mut bindings = Bindings::default();
    let mut statements = Vec::new();
    let mut dependencies = Vec::new();
    for site in &analysis.statements {
        let params = site
            .binds
            .iter()
            .map(|bind| bindings.index_of(&bind.value))
            .collect::<Vec<_>>();
        for read in &site.analysis.reads {
            let keys = match &read.filter {
                RowFilter::All => Vec::new(),
                RowFilter::Keys(preds) => preds
                    .iter()
                    .filter_map(|pred| resolve_model_key(site, pred, &mut bindings))
                    .collect(),
            };
            dependencies.push(TableDependency {
                table: read.table.clone(),
                keys,
            });
        }
        statements.push(StatementModel {
            sql: site.sql.clone(),
            analysis: site.analysis.clone(),
            params,
        });
    }
    let complete = analysis
        .statements
        .iter()
        .all(|s| s.analysis.unknown.is_none())
        && !analysis
            .diagnostics
            .iter()
            .any(|d| d.kind == DiagnosticKind::RuntimeSql);
    ModelParts {
        kind: analysis.kind(),
        bindings: bindings.list,
        dependencies: normalize_dependencies(dependencies),
        statements,
        complete,
    }
}

/// What the statements read, keys resolved to source text, sorted by table.
/// Follows the same rule as [`to_model_parts`] (so it shows what the runtime will use).
pub fn resolved_reads(analysis: &HandlerAnalysis) -> Vec<ResolvedTable> {
    let mut tables = Vec::new();
    for site in &analysis.statements {
        for read in &site.analysis.reads {
            tables.push(ResolvedTable {
                table: read.table.clone(),
                keys: resolve_filter(site, &read.filter),
            });
        }
    }
    normalize_resolved(tables)
}

/// A parameter compared with a key column in a read, and what its bind traced to
/// (see [`read_key_params`]).
#[derive(Debug, Clone)]
pub struct KeyParam {
    /// The table read.
    pub table: String,
    /// The key column.
    pub column: String,
    /// 1-based parameter position.
    pub param: usize,
    /// The bind expression as written; `None` when the parameter is not bound where
    /// the analysis can see it.
    pub expr: Option<String>,
    /// What the bind traced to (`Other` when not bound).
    pub value: BindValue,
    /// The bind expression's location, or the SQL literal's when not bound.
    pub location: super::Location,
    /// The span of that same expression or literal (where the macro warns).
    pub span: proc_macro2::Span,
}

/// Every parameter compared with a key column of a read, in source order: those
/// not traced to an input field or literal are dropped from the read's keys (see
/// the module docs), which `reactive suggest` reports.
pub fn read_key_params(analysis: &HandlerAnalysis) -> Vec<KeyParam> {
    let mut out = Vec::new();
    for site in &analysis.statements {
        for read in &site.analysis.reads {
            let RowFilter::Keys(preds) = &read.filter else {
                continue;
            };
            for pred in preds {
                for value in &pred.values {
                    let ValueRef::Param(param) = value else {
                        continue;
                    };
                    let bind = param.index.checked_sub(1).and_then(|i| site.binds.get(i));
                    out.push(KeyParam {
                        table: read.table.clone(),
                        column: pred.column.clone(),
                        param: param.index,
                        expr: bind.map(|b| b.expr.clone()),
                        value: bind.map_or(BindValue::Other, |b| b.value.clone()),
                        location: bind.map_or(site.location, |b| b.location),
                        span: bind.map_or(site.span, |b| b.span),
                    });
                }
            }
        }
    }
    out
}

/// What the statements write, sorted by table. `keys` holds the known column
/// values of the affected rows: the `WHERE` conjuncts for `UPDATE` / `DELETE`,
/// the inserted values for `INSERT` / upserts (each column whose value is known
/// in every row). Values not traced to the input or a literal are left out.
pub fn resolved_writes(analysis: &HandlerAnalysis) -> Vec<ResolvedTable> {
    let mut tables = Vec::new();
    for site in &analysis.statements {
        for write in &site.analysis.writes {
            let keys = match write.operation {
                Operation::Insert | Operation::Upsert => match &write.inserted {
                    Some(rows) => resolve_inserted(site, rows),
                    None => Vec::new(),
                },
                _ => resolve_filter(site, &write.filter),
            };
            tables.push(ResolvedTable {
                table: write.table.clone(),
                keys,
            });
        }
    }
    normalize_resolved(tables)
}

#[derive(Default)]
struct Bindings {
    list: Vec<Binding>,
    by_path: HashMap<Vec<String>, usize>,
}

impl Bindings {
    fn index_of(&mut self, value: &BindValue) -> Option<usize> {
        let BindValue::Input { path, source } = value else {
            return None;
        };
        if let Some(&index) = self.by_path.get(path) {
            return Some(index);
        }
        let index = self.list.len();
        self.list.push(Binding {
            source: source.clone(),
            path: path.clone(),
        });
        self.by_path.insert(path.clone(), index);
        Some(index)
    }
}

/// A value of a key, traced.
enum Traced<'a> {
    Input { path: &'a [String], source: &'a str },
    Literal { literal: Literal, text: String },
}

fn trace<'a>(site: &'a SqlSite, value: &ValueRef) -> Option<Traced<'a>> {
    match value {
        ValueRef::Literal(literal) => Some(Traced::Literal {
            literal: literal.clone(),
            text: sql_literal_text(literal),
        }),
        ValueRef::Param(param) => {
            let bind = site.binds.get(param.index.checked_sub(1)?)?;
            match &bind.value {
                BindValue::Input { path, source } => Some(Traced::Input { path, source }),
                BindValue::Literal(literal) => Some(Traced::Literal {
                    literal: literal.clone(),
                    text: bind.expr.clone(),
                }),
                BindValue::Other => None,
            }
        }
    }
}

fn resolve_model_key(
    site: &SqlSite,
    pred: &KeyPredicate,
    bindings: &mut Bindings,
) -> Option<KeyDependency> {
    let mut values = Vec::with_capacity(pred.values.len());
    for value in &pred.values {
        values.push(match trace(site, value)? {
            Traced::Input { path, source } => {
                KeySource::Binding(bindings.index_of(&BindValue::Input {
                    path: path.to_vec(),
                    source: source.to_owned(),
                })?)
            }
            Traced::Literal { literal, .. } => KeySource::Literal(literal),
        });
    }
    if values.is_empty() {
        return None;
    }
    Some(KeyDependency {
        column: pred.column.clone(),
        values,
    })
}

fn resolve_values(site: &SqlSite, column: &str, values: &[ValueRef]) -> Option<ResolvedKey> {
    let mut sources = Vec::with_capacity(values.len());
    for value in values {
        sources.push(match trace(site, value)? {
            Traced::Input { source, .. } => source.to_owned(),
            Traced::Literal { text, .. } => text,
        });
    }
    if sources.is_empty() {
        return None;
    }
    Some(ResolvedKey {
        column: column.to_owned(),
        source: sources.join(", "),
        values: sources.len(),
    })
}

fn resolve_filter(site: &SqlSite, filter: &RowFilter) -> Vec<ResolvedKey> {
    match filter {
        RowFilter::All => Vec::new(),
        RowFilter::Keys(preds) => preds
            .iter()
            .filter_map(|pred| resolve_values(site, &pred.column, &pred.values))
            .collect(),
    }
}

fn resolve_inserted(site: &SqlSite, rows: &[Vec<ColumnValue>]) -> Vec<ResolvedKey> {
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for column in first.iter().map(|cv| &cv.column) {
        let mut values = Vec::with_capacity(rows.len());
        for row in rows {
            match row
                .iter()
                .find(|cv| &cv.column == column)
                .and_then(|cv| cv.value.clone())
            {
                Some(value) => values.push(value),
                None => {
                    values.clear();
                    break;
                }
            }
        }
        if values.is_empty() {
            continue;
        }
        // Several rows: the column takes any of the values (like `IN`); one row: one value.
        values.dedup();
        if let Some(key) = resolve_values(site, column, &values) {
            keys.push(key);
        }
    }
    keys
}

fn sql_literal_text(literal: &Literal) -> String {
    match literal {
        Literal::String(s) => format!("'{}'", s.replace('\'', "''")),
        Literal::Number(n) => n.clone(),
        Literal::Bool(b) => b.to_string(),
        Literal::Null => "NULL".to_owned(),
    }
}

fn normalize_dependencies(mut deps: Vec<TableDependency>) -> Vec<TableDependency> {
    for dep in &mut deps {
        dep.keys.sort();
        dep.keys.dedup();
    }
    deps.sort();
    deps.dedup();
    let whole: Vec<String> = deps
        .iter()
        .filter(|d| d.keys.is_empty())
        .map(|d| d.table.clone())
        .collect();
    deps.retain(|d| d.keys.is_empty() || !whole.contains(&d.table));
    deps
}

fn normalize_resolved(mut tables: Vec<ResolvedTable>) -> Vec<ResolvedTable> {
    for table in &mut tables {
        table.keys.sort();
        table.keys.dedup();
    }
    tables.sort();
    tables.dedup();
    let whole: Vec<String> = tables
        .iter()
        .filter(|t| t.keys.is_empty())
        .map(|t| t.table.clone())
        .collect();
    tables.retain(|t| t.keys.is_empty() || !whole.contains(&t.table));
    tables
}
