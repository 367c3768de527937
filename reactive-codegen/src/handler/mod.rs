//! Handler analysis: every SQL statement an async handler body sends, with spans,
//! the Rust expressions bound to its parameters, the other functions it calls, and
//! diagnostics for what the analysis cannot see (SQL built at run time).
//!
//! # Pipeline
//!
//! [`analyze_fn`] walks a `syn::ItemFn` (ast) and returns a [`HandlerAnalysis`]:
//! one [`SqlSite`] per statement found, each already analysed with
//! [`crate::sql::analyze`], one [`CallSite`] per other call, and [`Diagnostic`]s.
//! [`to_model_parts`] then turns it into the pieces of a
//! [`crate::model::FunctionModel`] (bindings, dependencies, statements, kind).
//!
//! # What is recognised
//!
//! - Query constructors, by the last segment of a call path (with or without
//!   `sqlx::`, turbofish allowed): `query`, `query_as`, `query_scalar`, their
//!   `_with` forms and the `_unchecked` forms of all of those, and `raw_sql`.
//!   The Nth `.bind(expr)` in the method chain that follows is parameter N. The
//!   `_with` forms take pre-built arguments: their parameters are not traced.
//! - The macros `query!`, `query_as!` (first argument is the row type),
//!   `query_scalar!` and their `_unchecked` forms: the SQL literal, then the bind
//!   arguments in order (the Nth argument is parameter N, as the Nth `.bind`).
//! - The `query_file!` forms of those (`query_file_as!`, ...): the file is read
//!   from [`AnalyzeOptions::manifest_dir`], as sqlx does. Without a manifest
//!   directory, with an absolute path or a file that cannot be read, they are
//!   reported as run-time SQL.
//! - `executor.execute("...")` / `fetch*("...")` with a string literal.
//! - The SQL argument may be a string literal (raw strings too), `concat!` of
//!   literals, a local `let` bound exactly once (not `mut`) to such a value, a
//!   `const` item inside the fn, or (with [`AnalyzeOptions::consts`]) a
//!   module-level `const`. `&`, parentheses, `AssertSqlSafe(..)`, `.as_str()` and
//!   similar wrappers are looked through.
//! - Anything else in the SQL position (`format!`, `String` concatenation, a
//!   parameter, a `mut` local, `QueryBuilder`) is a [`DiagnosticKind::RuntimeSql`].
//! - The bodies of other macros (`tokio::try_join!(..)`, `vec![..]`) are searched
//!   when they parse as comma-separated expressions (`select!`-style bodies don't).
//!   Closures and `async` blocks are searched; nested `fn` items too, but nothing
//!   in them is traced to this function's input.
//!
//! # Tracing bind expressions to the input
//!
//! The *input argument* is the function's second typed parameter (the first is the
//! database handle; a `self` receiver is skipped), whatever its name. A bind
//! expression is an input field when, after removing `&`, `*`, parentheses and
//! the conversions `.clone()`, `.to_owned()`, `.to_string()`, `.as_str()`,
//! `.as_ref()`, `.as_deref()` and `.into()`, it is a field path on the input
//! (`input.data.name`), or a local bound once (non-`mut`) to one, or a field bound
//! by a destructuring input pattern (`OrgInput { organization_id, .. }`,
//! `Json(input)`). The key value is then computed from the field itself, and only
//! for field types whose JSON form is what the database compares (the run time
//! gives every other type an unknown value, which drops the key): on those types
//! the conversions above keep the value. Anything else (`as` casts, `.trim()`,
//! `.to_lowercase()`, arithmetic, `format!`, function calls) is not traced: a key
//! on it is widened.
//! Rust literals (`.bind(1)`, `.bind("active")`) become [`BindValue::Literal`].
//! If the input's name is bound again anywhere in the body (shadowing), no field is
//! traced: every such key is widened, which is always safe.
//!
//! # Spans
//!
//! Every [`SqlSite`], [`BindSite`], [`CallSite`] and [`Diagnostic`] keeps its
//! `proc_macro2::Span` (for compile errors in the macro) and a [`Location`]
//! (line/column, for the CLI; meaningful when the tokens came from source text or
//! a real macro invocation).

mod file;
mod find;
mod parts;
mod render;
mod scope;
mod syntax;
#[cfg(test)]
mod tests;

pub use file::{FnItem, analyze_file, file_fns, file_options};
pub use parts::{
    KeyParam, ModelParts, ResolvedKey, ResolvedTable, read_key_params, resolved_reads,
    resolved_writes, to_model_parts,
};

use std::collections::HashMap;
use std::path::PathBuf;

use proc_macro2::Span;

use crate::model::FunctionKind;
use crate::sql::{Dialect, StatementAnalysis};

/// The message of a [`DiagnosticKind::RuntimeSql`] diagnostic (shown by the CLI).
pub const RUNTIME_SQL_MESSAGE: &str = "SQL built at run time; dependencies cannot be inferred";

/// Options for [`analyze_fn_with`].
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    /// The dialect every SQL string is parsed with.
    pub dialect: Dialect,
    /// String constants visible to the function from outside it (module-level
    /// `const SQL: &str = "..."`), by name, with the literal's span. A name not
    /// found here or inside the fn is treated as run-time SQL.
    pub consts: HashMap<String, (String, Span)>,
    /// The directory `query_file!` paths are relative to (the crate's
    /// `CARGO_MANIFEST_DIR`). `None`: their SQL is not read (run-time SQL).
    pub manifest_dir: Option<PathBuf>,
}

/// A line and column in the source (line 1-based, column 1-based, in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Location {
    /// Where a span starts.
    pub fn of(span: Span) -> Self {
        let start = span.start();
        Self {
            line: start.line,
            column: start.column + 1,
        }
    }
}

/// The result of analysing one handler.
#[derive(Debug, Clone)]
pub struct HandlerAnalysis {
    /// The function's name.
    pub name: String,
    /// Span and location of the function's name.
    pub span: Span,
    /// Location of the function's name.
    pub location: Location,
    /// `true` for `async fn`.
    pub is_async: bool,
    /// The dialect the SQL was analysed with.
    pub dialect: Dialect,
    /// The input argument, if the function has one.
    pub input: Option<InputArg>,
    /// The name of the database argument (first typed parameter), if it is a plain identifier.
    pub db: Option<String>,
    /// Every statement the body sends, in source order.
    pub statements: Vec<SqlSite>,
    /// Every other call in the body (function and method calls), in source order.
    /// Calls that are part of a recognised query chain (`.bind`, `.fetch_all`, ...) are not listed.
    pub calls: Vec<CallSite>,
    /// What the analysis could not see, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl HandlerAnalysis {
    /// `Mutation` if any statement may write (a write, DDL, or SQL the analyser
    /// could not read), else `Query`. SQL built at run time is not counted (it is
    /// reported as a diagnostic instead).
    pub fn kind(&self) -> FunctionKind {
        if self.statements.iter().any(|s| s.analysis.may_write()) {
            FunctionKind::Mutation
        } else {
            FunctionKind::Query
        }
    }

    /// `true` if the body sends SQL (a recognised statement, or SQL built at run time).
    pub fn sends_sql(&self) -> bool {
        !self.statements.is_empty()
            || self
                .diagnostics
                .iter()
                .any(|d| d.kind == DiagnosticKind::RuntimeSql)
    }
}

/// The input argument of a handler.
#[derive(Debug, Clone)]
pub struct InputArg {
    /// The identifier (`input`), or `None` for a destructuring pattern.
    pub name: Option<String>,
    /// Span of the pattern.
    pub span: Span,
}

/// One SQL statement sent by the body.
#[derive(Debug, Clone)]
pub struct SqlSite {
    /// The SQL text (the literal's value, or the file's contents for `query_file!`).
    pub sql: String,
    /// Span of the string literal (which may be in a `let` or `const` away from the
    /// call); for `query_file!`, of the path literal.
    pub span: Span,
    /// Location of the string literal.
    pub location: Location,
    /// Span of the call or macro that sends it.
    pub call_span: Span,
    /// Which API sends it.
    pub api: SqlApi,
    /// The bind expressions found, in bind order (`binds[0]` is parameter 1).
    /// Parameters beyond `binds.len()` are not traced (e.g. bound in a later statement).
    pub binds: Vec<BindSite>,
    /// The SQL analysis of [`SqlSite::sql`].
    pub analysis: StatementAnalysis,
}

/// The family of a query API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryFamily {
    /// `query` / `query!`.
    Query,
    /// `query_as` / `query_as!`.
    QueryAs,
    /// `query_scalar` / `query_scalar!`.
    QueryScalar,
    /// `raw_sql` (no parameters).
    RawSql,
    /// `Executor::execute` / `fetch*` called with a string literal (no parameters).
    Executor,
}

/// Which API sends a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlApi {
    /// `query`, `query_as`, ...
    pub family: QueryFamily,
    /// A macro (`query!`) rather than a function (`query(..)`).
    pub is_macro: bool,
    /// The `_with` form (pre-built arguments; parameters are not traced).
    pub with_args: bool,
    /// The `_unchecked` form.
    pub unchecked: bool,
    /// The `query_file!` form (the SQL is read from a file).
    pub from_file: bool,
}

impl SqlApi {
    /// The API's name as written without path (`query_as_with`, `query!`, `execute`).
    pub fn name(&self) -> String {
        let base = match self.family {
            QueryFamily::Query => "query",
            QueryFamily::QueryAs => "query_as",
            QueryFamily::QueryScalar => "query_scalar",
            QueryFamily::RawSql => "raw_sql",
            QueryFamily::Executor => "execute",
        };
        let mut name = match base.strip_prefix("query") {
            Some(rest) if self.from_file => format!("query_file{rest}"),
            _ => base.to_owned(),
        };
        if self.with_args {
            name.push_str("_with");
        }
        if self.unchecked {
            name.push_str("_unchecked");
        }
        if self.is_macro {
            name.push('!');
        }
        name
    }
}

/// One bind argument.
#[derive(Debug, Clone)]
pub struct BindSite {
    /// 1-based parameter position.
    pub index: usize,
    /// The expression as written (source text when available, else compact tokens).
    pub expr: String,
    /// Span of the expression.
    pub span: Span,
    /// Location of the expression.
    pub location: Location,
    /// What the expression was traced to.
    pub value: BindValue,
}

/// What a bind expression was traced to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BindValue {
    /// A field of the input argument.
    Input {
        /// Field path below the input (`["data", "name"]`); empty for the whole input.
        path: Vec<String>,
        /// Canonical expression (`input.data.name`), used as [`crate::model::Binding::source`].
        source: String,
    },
    /// A Rust literal (`1`, `"active"`, `true`).
    Literal(crate::sql::Literal),
    /// Anything else (a local, a computed value): not traceable; keys on it are widened.
    Other,
}

/// A call to another function or method in the body.
#[derive(Debug, Clone)]
pub struct CallSite {
    /// The callee's name: the last path segment (`find_agent`) or the method name.
    pub name: String,
    /// The full path as written without generics (`crate::agents::find_agent`); for
    /// method calls, the method name.
    pub path: String,
    /// A method call (`x.name(..)`) rather than a path call (`name(..)`).
    pub is_method: bool,
    /// The database argument (see [`HandlerAnalysis::db`]) is passed to it
    /// (directly, by reference, or as the receiver), so it may send SQL.
    pub passes_db: bool,
    /// Span of the callee path / method name.
    pub span: Span,
    /// Span of the callee's name: the path's last segment (`find_agent` in
    /// `agents::find_agent(..)`) or the method name.
    pub name_span: Span,
    /// The callee's path as written, for a path call (`None` for a method call).
    pub callee: Option<syn::Path>,
    /// Location of the callee.
    pub location: Location,
}

/// What went wrong or could not be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiagnosticKind {
    /// SQL built or chosen at run time (`format!`, concatenation, a variable that is
    /// not a literal, `QueryBuilder`, `query_file!`): its dependencies cannot be inferred.
    RuntimeSql,
    /// A statement the SQL analyser could not read (parse error, several
    /// statements, DDL, unsupported): treated as reading and writing anything.
    UnknownStatement,
}

/// A diagnostic with its span.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// The kind.
    pub kind: DiagnosticKind,
    /// A message for the user (see [`RUNTIME_SQL_MESSAGE`]).
    pub message: String,
    /// Where.
    pub span: Span,
    /// Location of [`Diagnostic::span`].
    pub location: Location,
}

impl Diagnostic {
    pub(crate) fn new(kind: DiagnosticKind, message: impl Into<String>, span: Span) -> Self {
        Self {
            kind,
            message: message.into(),
            span,
            location: Location::of(span),
        }
    }
}

/// Analyse one handler with the given dialect.
pub fn analyze_fn(item: &syn::ItemFn, dialect: Dialect) -> HandlerAnalysis {
    analyze_fn_with(
        item,
        &AnalyzeOptions {
            dialect,
            ..AnalyzeOptions::default()
        },
    )
}

/// Analyse one handler (signature + body) with options.
pub fn analyze_fn_with(item: &syn::ItemFn, options: &AnalyzeOptions) -> HandlerAnalysis {
    find::analyze_signature_and_block(&item.sig, &item.block, options)
}

/// Analyse a function given as signature and body (for `impl` methods: `ImplItemFn`).
pub fn analyze_parts(
    sig: &syn::Signature,
    block: &syn::Block,
    options: &AnalyzeOptions,
) -> HandlerAnalysis {
    find::analyze_signature_and_block(sig, block, options)
}
