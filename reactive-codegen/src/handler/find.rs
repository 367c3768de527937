//! The walk over a handler body: finds SQL sites, bind expressions, calls and
//! run-time SQL. See the parent module for what is recognised.

use std::collections::HashMap;

use proc_macro2::Span;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Expr, Token};

use super::render::{expr_text, path_text};
use super::scope::Scope;
use super::syntax::{
    collect_input_pattern, constructor_api, last_segment, macro_api, macro_exprs, plain_ident,
    rust_literal, strip,
};
use super::{
    AnalyzeOptions, BindSite, BindValue, CallSite, Diagnostic, DiagnosticKind, HandlerAnalysis,
    InputArg, Location, QueryFamily, RUNTIME_SQL_MESSAGE, SqlApi, SqlSite,
};
use crate::sql::{self, Unknown};

/// Methods looked through when tracing a bind expression to an input field: the
/// key value is then computed from the field itself (`input.x`), not from the
/// bound expression. On the types whose key value is known at all (strings,
/// integers, `bool`, `Uuid`, `Option`s and references of those; everything else
/// gives the unknown marker at run time, see `reactive::__private::binding_value`),
/// each of these yields a value the database compares equal to the field's JSON
/// form once canonicalized (`5.to_string()` is `"5"`, which meets `5`). Anything
/// else (`as` casts, `.trim()`, arithmetic, calls) may change the value: untraced.
const TRANSPARENT_METHODS: &[&str] = &[
    "clone",
    "to_owned",
    "to_string",
    "as_str",
    "as_ref",
    "as_deref",
    "into",
];

/// Methods that turn a string into a string: looked through when resolving SQL.
const SQL_STRING_METHODS: &[&str] = &["as_str", "to_string", "to_owned", "into", "clone", "as_ref"];

/// `Executor` methods that accept SQL directly (`db.execute("...")`).
const EXECUTOR_METHODS: &[&str] = &[
    "execute",
    "execute_many",
    "fetch",
    "fetch_many",
    "fetch_all",
    "fetch_one",
    "fetch_optional",
];

/// How deep locals are followed (`let a = b; let b = c; ...`).
const MAX_DEPTH: usize = 8;

pub(super) fn analyze_signature_and_block(
    sig: &syn::Signature,
    block: &syn::Block,
    options: &AnalyzeOptions,
) -> HandlerAnalysis {
    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(pat) => Some(pat),
            _ => None,
        })
        .collect();
    let db = typed
        .first()
        .and_then(|p| plain_ident(&p.pat).map(|(name, _)| name));
    let input = typed.get(1).map(|p| InputArg {
        name: plain_ident(&p.pat).map(|(name, _)| name),
        span: p.pat.span(),
    });
    let mut input_fields = HashMap::new();
    // `input: &mut In` can be changed before a bind: nothing is traced to it.
    if let Some(p) = typed.get(1)
        && !matches!(&*p.ty, syn::Type::Reference(r) if r.mutability.is_some())
    {
        collect_input_pattern(&p.pat, &mut Vec::new(), &mut input_fields);
    }

    let mut scope = Scope::default();
    scope.visit_block(block);

    let mut finder = Finder {
        options,
        scope: &scope,
        input_fields,
        db: db.clone(),
        nested: 0,
        statements: Vec::new(),
        calls: Vec::new(),
        diagnostics: Vec::new(),
    };
    finder.visit_block(block);

    let Finder {
        mut statements,
        mut calls,
        mut diagnostics,
        ..
    } = finder;
    for site in &statements {
        if let Some(why) = &site.analysis.unknown {
            diagnostics.push(Diagnostic::new(
                DiagnosticKind::UnknownStatement,
                unknown_message(why),
                site.span,
            ));
        }
    }
    // Source order (stable: tokens without real locations keep the walk's order).
    statements.sort_by_key(|s| Location::of(s.call_span));
    calls.sort_by_key(|c| c.location);
    diagnostics.sort_by_key(|d| d.location);

    HandlerAnalysis {
        name: sig.ident.to_string(),
        span: sig.ident.span(),
        location: Location::of(sig.ident.span()),
        is_async: sig.asyncness.is_some(),
        dialect: options.dialect,
        input,
        db,
        statements,
        calls,
        diagnostics,
    }
}

fn unknown_message(why: &Unknown) -> String {
    let what = match why {
        Unknown::Parse(message) => format!("SQL could not be parsed ({message})"),
        Unknown::MultipleStatements => "several SQL statements in one string".to_owned(),
        Unknown::Ddl => "DDL statement".to_owned(),
        Unknown::Unsupported(what) => format!("statement the analyser does not support ({what})"),
        Unknown::Function(name) => {
            format!("calls `{name}`, a function that may read any table or write")
        }
    };
    format!("{what}; treated as reading and writing anything")
}

/// The result of resolving the SQL argument of a call.
enum SqlArg {
    /// A string known at compile time, with the span of its literal.
    Literal(String, Span),
    /// Anything else.
    Runtime,
}

struct Finder<'a> {
    options: &'a AnalyzeOptions,
    scope: &'a Scope,
    /// Identifiers bound by the input pattern → field path.
    input_fields: HashMap<String, Vec<String>>,
    db: Option<String>,
    /// Depth of nested fn items (their bodies are searched for SQL, but nothing is
    /// traced to this function's input there).
    nested: usize,
    statements: Vec<SqlSite>,
    calls: Vec<CallSite>,
    diagnostics: Vec<Diagnostic>,
}

impl Finder<'_> {
    fn runtime_sql(&mut self, span: Span) {
        self.diagnostics.push(Diagnostic::new(
            DiagnosticKind::RuntimeSql,
            RUNTIME_SQL_MESSAGE,
            span,
        ));
    }

    fn push_site(
        &mut self,
        sql: String,
        span: Span,
        call_span: Span,
        api: SqlApi,
        binds: Vec<BindSite>,
    ) {
        let analysis = sql::analyze(&sql, self.options.dialect);
        self.statements.push(SqlSite {
            sql,
            span,
            location: Location::of(span),
            call_span,
            api,
            binds,
            analysis,
        });
    }

    /// Resolve an expression in SQL position to a compile-time string.
    fn resolve_sql(&self, expr: &Expr, depth: usize) -> SqlArg {
        if depth > MAX_DEPTH {
            return SqlArg::Runtime;
        }
        match expr {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => SqlArg::Literal(s.value(), s.span()),
            Expr::Reference(r) => self.resolve_sql(&r.expr, depth),
            Expr::Paren(p) => self.resolve_sql(&p.expr, depth),
            Expr::Group(g) => self.resolve_sql(&g.expr, depth),
            Expr::MethodCall(m)
                if m.args.is_empty()
                    && SQL_STRING_METHODS.contains(&m.method.to_string().as_str()) =>
            {
                self.resolve_sql(&m.receiver, depth)
            }
            Expr::Call(call) if call.args.len() == 1 => match &*call.func {
                Expr::Path(p) => {
                    let name = last_segment(&p.path);
                    let is_string_from = p.path.segments.len() >= 2
                        && name.as_deref() == Some("from")
                        && p.path.segments[p.path.segments.len() - 2].ident == "String";
                    if name.as_deref() == Some("AssertSqlSafe") || is_string_from {
                        self.resolve_sql(&call.args[0], depth)
                    } else {
                        SqlArg::Runtime
                    }
                }
                _ => SqlArg::Runtime,
            },
            Expr::Macro(m) if last_segment(&m.mac.path).as_deref() == Some("concat") => {
                let Some(parts) = macro_exprs(&m.mac) else {
                    return SqlArg::Runtime;
                };
                let mut sql = String::new();
                for part in &parts {
                    match part {
                        Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => sql.push_str(&s.value()),
                        _ => return SqlArg::Runtime,
                    }
                }
                SqlArg::Literal(sql, m.span())
            }
            Expr::Path(p) if p.qself.is_none() => {
                let Some(name) = p.path.get_ident().map(ToString::to_string) else {
                    return SqlArg::Runtime;
                };
                if let Some(init) = self.scope.single_let(&name) {
                    self.resolve_sql(init, depth + 1)
                } else if let Some(value) = self.scope.constant(&name) {
                    self.resolve_sql(value, depth + 1)
                } else if self.scope.pattern_count(&name) == 0
                    && let Some((sql, span)) = self.options.consts.get(&name)
                {
                    SqlArg::Literal(sql.clone(), *span)
                } else {
                    SqlArg::Runtime
                }
            }
            _ => SqlArg::Runtime,
        }
    }

    /// The SQL of a `query_file!`: its path is a string literal relative to the
    /// manifest directory (sqlx takes nothing else), read now. The span is the
    /// path literal's, so errors about the SQL point at it.
    fn read_sql_file(&self, expr: &Expr) -> SqlArg {
        let (
            Some(dir),
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }),
        ) = (&self.options.manifest_dir, expr)
        else {
            return SqlArg::Runtime;
        };
        let relative = std::path::PathBuf::from(lit.value());
        // sqlx refuses absolute paths; reading one would make the analysis depend on
        // the machine.
        if relative.is_absolute() {
            return SqlArg::Runtime;
        }
        match std::fs::read_to_string(dir.join(relative)) {
            Ok(sql) => SqlArg::Literal(sql, lit.span()),
            Err(_) => SqlArg::Runtime,
        }
    }

    /// Does this expression in an executor's argument position look like SQL built at run time?
    fn looks_like_runtime_sql(expr: &Expr) -> bool {
        match strip(expr) {
            Expr::Macro(m) => last_segment(&m.mac.path).as_deref() == Some("format"),
            Expr::Call(call) => match &*call.func {
                Expr::Path(p) => last_segment(&p.path).as_deref() == Some("AssertSqlSafe"),
                _ => false,
            },
            Expr::Binary(b) => matches!(b.op, syn::BinOp::Add(_)),
            Expr::MethodCall(m) if m.args.is_empty() => Self::looks_like_runtime_sql(&m.receiver),
            _ => false,
        }
    }

    /// Trace a bind expression to an input field or a literal.
    fn trace(&self, expr: &Expr, depth: usize) -> BindValue {
        if depth > MAX_DEPTH {
            return BindValue::Other;
        }
        match expr {
            Expr::Reference(r) => self.trace(&r.expr, depth),
            Expr::Paren(p) => self.trace(&p.expr, depth),
            Expr::Group(g) => self.trace(&g.expr, depth),
            Expr::Unary(u) => match (&u.op, &*u.expr) {
                (syn::UnOp::Deref(_), inner) => self.trace(inner, depth),
                (syn::UnOp::Neg(_), Expr::Lit(lit)) => {
                    rust_literal(&lit.lit, true).map_or(BindValue::Other, BindValue::Literal)
                }
                _ => BindValue::Other,
            },
            Expr::MethodCall(m)
                if m.args.is_empty()
                    && m.turbofish.is_none()
                    && TRANSPARENT_METHODS.contains(&m.method.to_string().as_str()) =>
            {
                self.trace(&m.receiver, depth)
            }
            Expr::Field(f) => match self.trace(&f.base, depth) {
                BindValue::Input {
                    mut path,
                    mut source,
                } => {
                    let member = match &f.member {
                        syn::Member::Named(ident) => ident.to_string(),
                        syn::Member::Unnamed(index) => index.index.to_string(),
                    };
                    source.push('.');
                    source.push_str(&member);
                    path.push(member);
                    BindValue::Input { path, source }
                }
                _ => BindValue::Other,
            },
            Expr::Lit(lit) => {
                rust_literal(&lit.lit, false).map_or(BindValue::Other, BindValue::Literal)
            }
            Expr::Path(p) if p.qself.is_none() => match p.path.get_ident() {
                Some(ident) => self.trace_ident(&ident.to_string(), depth),
                None => BindValue::Other,
            },
            _ => BindValue::Other,
        }
    }

    fn trace_ident(&self, name: &str, depth: usize) -> BindValue {
        if self.nested > 0 {
            return BindValue::Other;
        }
        if let Some(path) = self.input_fields.get(name) {
            // Bound again in the body (shadowed): not traceable.
            if self.scope.pattern_count(name) == 0 {
                return BindValue::Input {
                    path: path.clone(),
                    source: name.to_owned(),
                };
            }
            return BindValue::Other;
        }
        match self.scope.single_let(name) {
            Some(init) => match self.trace(init, depth + 1) {
                // A local bound to a Rust literal is still that literal.
                value @ (BindValue::Input { .. } | BindValue::Literal(_)) => value,
                BindValue::Other => BindValue::Other,
            },
            None => BindValue::Other,
        }
    }

    fn bind_site(&self, index: usize, expr: &Expr) -> BindSite {
        let span = expr.span();
        BindSite {
            index,
            expr: expr_text(expr),
            span,
            location: Location::of(span),
            value: self.trace(expr, 0),
        }
    }

    fn is_db(&self, expr: &Expr) -> bool {
        let Some(db) = &self.db else { return false };
        match strip(expr) {
            Expr::Path(p) => p.path.is_ident(db),
            Expr::MethodCall(m) if m.args.is_empty() => {
                matches!(m.method.to_string().as_str(), "clone" | "as_ref" | "borrow")
                    && self.is_db(&m.receiver)
            }
            _ => false,
        }
    }

    /// A query constructor call, followed by the method chain `methods` (innermost first).
    fn handle_constructor(
        &mut self,
        call: &syn::ExprCall,
        api: SqlApi,
        methods: &[&syn::ExprMethodCall],
    ) {
        if let Some(sql_arg) = call.args.first() {
            let binds = if api.with_args || api.family == QueryFamily::RawSql {
                Vec::new()
            } else {
                methods
                    .iter()
                    .filter(|m| m.method == "bind" && m.args.len() == 1)
                    .enumerate()
                    .map(|(i, m)| self.bind_site(i + 1, &m.args[0]))
                    .collect()
            };
            match self.resolve_sql(sql_arg, 0) {
                SqlArg::Literal(sql, span) => {
                    self.push_site(sql, span, call.span(), api, binds);
                }
                SqlArg::Runtime => self.runtime_sql(sql_arg.span()),
            }
        }
        for arg in &call.args {
            self.visit_expr(arg);
        }
        for method in methods {
            for arg in &method.args {
                self.visit_expr(arg);
            }
        }
    }

    /// A query macro, followed by the method chain `methods`.
    fn handle_macro(&mut self, mac: &syn::Macro, api: SqlApi, methods: &[&syn::ExprMethodCall]) {
        let with_type = api.family == QueryFamily::QueryAs;
        let parser = |input: ParseStream<'_>| {
            if with_type {
                input.parse::<syn::Type>()?;
                input.parse::<Token![,]>()?;
            }
            Punctuated::<Expr, Token![,]>::parse_terminated(input)
        };
        // A malformed invocation is sqlx's to report; there is nothing to analyse.
        if let Ok(args) = mac.parse_body_with(parser)
            && let Some(sql_arg) = args.first()
        {
            let binds = args
                .iter()
                .skip(1)
                .enumerate()
                .map(|(i, arg)| self.bind_site(i + 1, arg))
                .collect();
            let sql = if api.from_file {
                self.read_sql_file(sql_arg)
            } else {
                self.resolve_sql(sql_arg, 0)
            };
            match sql {
                SqlArg::Literal(sql, span) => self.push_site(sql, span, mac.span(), api, binds),
                SqlArg::Runtime => self.runtime_sql(sql_arg.span()),
            }
            for arg in args.iter().skip(1) {
                self.visit_expr(arg);
            }
        }
        for method in methods {
            for arg in &method.args {
                self.visit_expr(arg);
            }
        }
    }

    fn record_method_call(&mut self, node: &syn::ExprMethodCall, passes_db: bool) {
        let span = node.method.span();
        self.calls.push(CallSite {
            name: node.method.to_string(),
            path: node.method.to_string(),
            is_method: true,
            passes_db,
            span,
            name_span: span,
            callee: None,
            location: Location::of(span),
        });
    }

    fn record_path_call(&mut self, name: String, path: &syn::Path, passes_db: bool) {
        let span = path.span();
        self.calls.push(CallSite {
            name,
            path: path_text(path),
            is_method: false,
            passes_db,
            span,
            name_span: path.segments.last().map_or(span, |s| s.ident.span()),
            callee: Some(path.clone()),
            location: Location::of(span),
        });
    }
}

impl<'ast> Visit<'ast> for Finder<'_> {
    fn visit_expr_method_call(&mut self, node: &'ast syn::ExprMethodCall) {
        // The chain `root.m1(..).m2(..)...node(..)`, innermost first.
        let mut methods = vec![node];
        let mut root: &Expr = &node.receiver;
        while let Expr::MethodCall(inner) = root {
            methods.push(inner);
            root = &inner.receiver;
        }
        methods.reverse();
        match strip(root) {
            Expr::Call(call) => {
                if let Expr::Path(p) = &*call.func
                    && let Some(api) = last_segment(&p.path).as_deref().and_then(constructor_api)
                {
                    self.handle_constructor(call, api, &methods);
                    return;
                }
            }
            Expr::Macro(m) => {
                if let Some(api) = last_segment(&m.mac.path).as_deref().and_then(macro_api) {
                    self.handle_macro(&m.mac, api, &methods);
                    return;
                }
            }
            _ => {}
        }

        let method = node.method.to_string();
        if EXECUTOR_METHODS.contains(&method.as_str()) && node.args.len() == 1 {
            let arg = &node.args[0];
            match self.resolve_sql(arg, 0) {
                SqlArg::Literal(sql, span) => {
                    let api = SqlApi {
                        family: QueryFamily::Executor,
                        is_macro: false,
                        with_args: false,
                        unchecked: false,
                        from_file: false,
                    };
                    self.push_site(sql, span, node.span(), api, Vec::new());
                    self.visit_expr(&node.receiver);
                    return;
                }
                SqlArg::Runtime if Self::looks_like_runtime_sql(arg) => {
                    self.runtime_sql(arg.span());
                    visit::visit_expr_method_call(self, node);
                    return;
                }
                SqlArg::Runtime => {}
            }
        }
        let passes_db = self.is_db(&node.receiver) || node.args.iter().any(|a| self.is_db(a));
        self.record_method_call(node, passes_db);
        visit::visit_expr_method_call(self, node);
    }

    fn visit_expr_call(&mut self, node: &'ast syn::ExprCall) {
        if let Expr::Path(p) = &*node.func {
            let name = last_segment(&p.path).unwrap_or_default();
            if let Some(api) = constructor_api(&name) {
                self.handle_constructor(node, api, &[]);
                return;
            }
            let in_query_builder = p.path.segments.iter().any(|s| s.ident == "QueryBuilder");
            if in_query_builder && (name == "new" || name == "with_arguments") {
                self.runtime_sql(node.span());
                visit::visit_expr_call(self, node);
                return;
            }
            let passes_db = node.args.iter().any(|a| self.is_db(a));
            self.record_path_call(name, &p.path, passes_db);
        }
        visit::visit_expr_call(self, node);
    }

    fn visit_macro(&mut self, node: &'ast syn::Macro) {
        let name = last_segment(&node.path).unwrap_or_default();
        if let Some(api) = macro_api(&name) {
            self.handle_macro(node, api, &[]);
        } else if let Some(exprs) = macro_exprs(node) {
            for expr in &exprs {
                self.visit_expr(expr);
            }
        }
    }

    fn visit_item_fn(&mut self, node: &'ast syn::ItemFn) {
        self.nested += 1;
        visit::visit_item_fn(self, node);
        self.nested -= 1;
    }

    fn visit_impl_item_fn(&mut self, node: &'ast syn::ImplItemFn) {
        self.nested += 1;
        visit::visit_impl_item_fn(self, node);
        self.nested -= 1;
    }
}
