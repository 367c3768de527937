//! Validation of `#[reactive_function]`: the analysed body against the attribute's
//! arguments. Every error goes to the [`Ctxt`]; the result is the [`Plan`] to expand.

use std::collections::BTreeSet;

use proc_macro2::Span;

use super::args::{FunctionArgs, TableList};
use super::ctxt::Ctxt;
use super::probe::{self, Probe};
use crate::handler::{self, DiagnosticKind, HandlerAnalysis};
use crate::model::{FunctionKind, FunctionModel, TableDependency};
use crate::sql::{Dialect, RowFilter, TableRead, Unknown};

/// What validation decided, ready to expand.
pub(crate) struct Plan<'a> {
    pub model: FunctionModel,
    /// The caller's explicit `dependencies(...)`, if any.
    pub explicit: Option<Vec<String>>,
    /// Tables this function reads itself (for its companion's `DEPS`).
    pub own_tables: Vec<String>,
    /// The kind is declared (`query`, `mutation`, or what implies it): a plain helper
    /// receiving the handle is then allowed, its statements being analysed when they run.
    pub kind_declared: bool,
    /// Key predicates of a query that widen to the whole table, with where to say so.
    pub warnings: Vec<(Span, String)>,
    /// The called functions to resolve at compile time, one per distinct path.
    pub probes: Vec<Probe<'a>>,
}

/// Validate the body against the arguments and build the model.
pub(crate) fn plan<'a>(
    args: &FunctionArgs,
    item: &syn::ItemFn,
    analysis: &'a HandlerAnalysis,
    cx: &Ctxt,
) -> Plan<'a> {
    let mut parts = handler::to_model_parts(analysis);
    let explicit = args.dependencies.as_ref();
    let declared_mutation =
        args.mutation.is_present() || args.invalidates.is_some() || args.requires_ack.is_present();
    let kind_declared = declared_mutation || args.query.is_present();

    // Unparseable SQL: always an error, with sqlparser's message.
    for site in &analysis.statements {
        if let Some(Unknown::Parse(message)) = &site.analysis.unknown {
            cx.error_spanned(
                site.span,
                format!(
                    "this SQL does not parse ({} dialect): {message}",
                    dialect_name(analysis.dialect)
                ),
            );
        }
    }

    // A call of a function that is not a known built-in: it may read any table or
    // write, so the function can be neither a cached query nor a mutation with known
    // writes until the user says which (see `declare_functions`).
    declare_functions(&mut parts, explicit, declared_mutation, analysis, cx);

    // SQL built at run time: dependencies cannot be inferred.
    if explicit.is_none() {
        for diagnostic in analysis
            .diagnostics
            .iter()
            .filter(|d| d.kind == DiagnosticKind::RuntimeSql)
        {
            cx.error_spanned(
                diagnostic.span,
                "SQL built at run time: reactive cannot see which tables it reads; list them in `dependencies(...)` on `#[reactive_function]`",
            );
        }
    }

    // Explicit dependencies must cover every table the body reads.
    if let Some(list) = explicit {
        for site in &analysis.statements {
            let tables: BTreeSet<&str> = site
                .analysis
                .reads
                .iter()
                .map(|r| r.table.as_str())
                .collect();
            for table in tables {
                if !list.contains(table) {
                    cx.error_spanned(
                        site.span,
                        format!("handler reads table `{table}` here, but `dependencies(...)` does not list it"),
                    );
                }
            }
        }
    }

    // Kind.
    let writes_definitely = |site: &handler::SqlSite| {
        site.analysis.unknown.is_none()
            && (site.analysis.operation.is_write() || !site.analysis.writes.is_empty())
    };
    if args.query.is_present() {
        for site in analysis.statements.iter().filter(|s| writes_definitely(s)) {
            let tables: Vec<String> = site
                .analysis
                .writes
                .iter()
                .map(|w| format!("`{}`", w.table))
                .collect();
            let what = if tables.is_empty() {
                "writes".to_owned()
            } else {
                format!("writes {}", tables.join(", "))
            };
            cx.error_spanned(
                site.span,
                format!("this statement {what}, but the function is declared `query`; declare it `mutation` (or drop `query`: the kind is inferred)"),
            );
        }
        if let Some(first) = args.invalidates.as_ref().and_then(|l| l.tables.first()) {
            cx.error_spanned(
                first.span,
                "`invalidates(...)` applies to mutations, but the function is declared `query`",
            );
        }
        if args.requires_ack.is_present() {
            cx.error_spanned(
                args.requires_ack.span(),
                "`requires_ack` applies to mutations, but the function is declared `query`",
            );
        }
    }
    let kind = if args.query.is_present() {
        FunctionKind::Query
    } else if declared_mutation {
        FunctionKind::Mutation
    } else {
        parts.kind
    };
    if args.push.is_present() && kind == FunctionKind::Mutation {
        cx.error_spanned(
            args.push.span(),
            "`push` applies to queries (their new results are pushed), but this function is a mutation",
        );
    }

    // Calls that pass the database handle.
    let calls = probe::calls_with_db(analysis);
    let opaque_call = !calls.is_empty();
    let mut probes: Vec<Probe<'a>> = Vec::new();
    for call in calls {
        match probe::probe_path(call) {
            // A call to itself adds no table, and probing it would make its table list
            // a constant defined through itself (a const-evaluation cycle).
            Some(path) if names_itself(&path, &item.sig.ident) => {}
            Some(path) if !probes.iter().any(|p| p.path == path) => {
                probes.push(Probe::new(call, path, probes.len()));
            }
            Some(_) => {}
            None if explicit.is_none() && !kind_declared => {
                cx.error_spanned(call.span, helper_message(&call.path))
            }
            None => {}
        }
    }

    // Dependencies of the model.
    let mut dependencies = parts.dependencies.clone();
    let own_tables: Vec<String>;
    if let Some(list) = explicit {
        let listed: Vec<String> = list.tables.iter().map(|t| t.name.clone()).collect();
        let everything_listed_is_whole = !parts.complete || opaque_call;
        for table in &listed {
            let seen = dependencies.iter().any(|d| &d.table == table);
            if everything_listed_is_whole || !seen {
                dependencies.retain(|d| &d.table != table);
                dependencies.push(TableDependency {
                    table: table.clone(),
                    keys: Vec::new(),
                });
            }
        }
        own_tables = listed;
    } else {
        let mut tables: Vec<String> = dependencies.iter().map(|d| d.table.clone()).collect();
        tables.dedup();
        own_tables = tables;
    }
    dependencies.sort_by(|a, b| a.table.cmp(&b.table));

    let name = args
        .name
        .as_ref()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_else(|| item.sig.ident.to_string());
    let bad_name = |n: &str| {
        n.is_empty()
            || n.chars()
                .any(|c| c.is_whitespace() || c == '/' || c == '?' || c == '#')
    };
    if let Some(name_arg) = args.name.as_ref().filter(|n| bad_name(n.as_str())) {
        cx.error_spanned(
            name_arg.span(),
            "a procedure name must be non-empty and contain no whitespace, `/`, `?` or `#` (it is part of the URL `/rpc/{name}`)",
        );
    }
    let model = FunctionModel {
        name,
        rust_name: item.sig.ident.to_string(),
        kind,
        requires_ack: args.requires_ack.is_present(),
        push: args.push.is_present(),
        dialect: analysis.dialect,
        bindings: parts.bindings,
        dependencies,
        invalidates: args
            .invalidates
            .as_ref()
            .map(|l| l.tables.iter().map(|t| t.name.clone()).collect())
            .unwrap_or_default(),
        statements: parts.statements,
        calls: Vec::new(),
    };
    Plan {
        model,
        explicit: explicit.map(|l| l.tables.iter().map(|t| t.name.clone()).collect()),
        own_tables,
        kind_declared,
        warnings: if kind == FunctionKind::Query && explicit.is_none() && !allows_deprecated(item) {
            widened_keys(analysis)
        } else {
            Vec::new()
        },
        probes,
    }
}

/// `#[allow(deprecated)]` on the function silences the warnings (they are emitted as
/// uses of a deprecated item, the one warning a proc macro can raise on stable).
fn allows_deprecated(item: &syn::ItemFn) -> bool {
    item.attrs.iter().any(|a| {
        a.path().is_ident("allow")
            && quote::ToTokens::to_token_stream(&a.meta)
                .to_string()
                .contains("deprecated")
    })
}

/// Each key predicate of a read whose value is a bind the macro cannot trace to the
/// input: the read then depends on every row of its table (correct, but any write to
/// the table refetches it), which is worth saying where the bind is written.
fn widened_keys(analysis: &HandlerAnalysis) -> Vec<(Span, String)> {
    let mut out: Vec<(Span, String)> = Vec::new();
    for key in handler::read_key_params(analysis) {
        let what = match (&key.value, &key.expr) {
            (handler::BindValue::Other, Some(expr)) => {
                format!("the bind `{expr}` is not an input field")
            }
            (handler::BindValue::Other, None) => format!(
                "parameter {} is not bound where the macro can see it",
                key.param
            ),
            _ => continue,
        };
        let message = format!(
            "reactive: `{table}.{column} = ${param}` is not a key: {what}, so this query depends on every row of `{table}` and any write to it refetches the query; bind an input field (`input.{column}`) for key-level invalidation, or add `#[allow(deprecated)]` to the function",
            table = key.table,
            column = key.column,
            param = key.param,
        );
        if !out.iter().any(|(_, m)| *m == message) {
            out.push((key.span, message));
        }
    }
    out
}

/// Statements calling a function the analysis cannot see through
/// ([`Unknown::Function`]). Without a declaration: a compile error at the SQL literal,
/// never a silent cache (the function may read tables the cache would not watch, or
/// have a side effect a cache hit would skip). Declared:
/// - `mutation` (or `invalidates(...)` / `requires_ack`): the statement stays unknown;
///   at run time it invalidates every cached query;
/// - `dependencies(...)` (and not a mutation): the user says the function only reads
///   the listed tables; the statement becomes a read of them (whole tables, the
///   function's keys are not known), so the function can be a cached query.
fn declare_functions(
    parts: &mut handler::ModelParts,
    explicit: Option<&TableList>,
    declared_mutation: bool,
    analysis: &HandlerAnalysis,
    cx: &Ctxt,
) {
    if declared_mutation {
        return;
    }
    let Some(list) = explicit else {
        for site in &analysis.statements {
            if let Some(Unknown::Function(name)) = &site.analysis.unknown {
                cx.error_spanned(
                    site.span,
                    format!(
                        "this SQL calls `{name}`, which reactive cannot see into: it may read any table, or write. \
                         Declare it on `#[reactive_function]`: `dependencies(table, ...)` listing every table it reads \
                         (the function is then a query, cached and invalidated by writes to them), \
                         or `mutation` if it writes (every cached query is invalidated when it runs)"
                    ),
                );
            }
        }
        return;
    };
    let mut changed = false;
    for statement in &mut parts.statements {
        let a = &mut statement.analysis;
        if !matches!(a.unknown, Some(Unknown::Function(_))) {
            continue;
        }
        a.unknown = None;
        for table in &list.tables {
            a.reads.retain(|r| r.table != table.name);
            a.reads.push(TableRead {
                table: table.name.clone(),
                filter: RowFilter::All,
            });
        }
        a.reads.sort_by(|x, y| x.table.cmp(&y.table));
        changed = true;
    }
    if changed {
        parts.kind = if parts.statements.iter().any(|s| s.analysis.may_write()) {
            FunctionKind::Mutation
        } else {
            FunctionKind::Query
        };
    }
}

/// `f` or `self::f` inside `f`: the function's own name in its own module (a nested
/// item of the same name in the body would shadow it; the registry still resolves
/// callees by procedure name at run time).
fn names_itself(path: &syn::Path, ident: &syn::Ident) -> bool {
    let segments: Vec<&syn::Ident> = path.segments.iter().map(|s| &s.ident).collect();
    match segments.as_slice() {
        [name] => *name == ident,
        [first, name] => *first == "self" && *name == ident,
        _ => false,
    }
}

pub(crate) fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Sqlite => "sqlite",
        Dialect::MySql => "mysql",
    }
}

pub(crate) fn helper_message(path: &str) -> String {
    format!(
        "calls `{path}`, which receives the database handle but is not a `#[reactive_function]`: reactive cannot see the SQL inside it, so it cannot tell whether the function writes; declare `query` (its SQL is then analysed when it runs, and a write is refused) or `mutation`, or list the tables it reads in `dependencies(...)`"
    )
}
