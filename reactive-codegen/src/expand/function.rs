//! `#[reactive_function]`: validation against the analysed body, and expansion.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::Errors;
use super::args::FunctionArgs;
use super::signature::{self, Signature};
use crate::handler::{self, CallSite, DiagnosticKind, HandlerAnalysis};
use crate::model::{FunctionKind, FunctionModel, TableDependency};
use crate::sql::{Dialect, RowFilter, TableRead, Unknown};

/// Expand `#[reactive_function(attr)] item`. Never fails: errors become
/// `compile_error!`s next to the re-emitted item.
pub fn reactive_function(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(item_fn) => item_fn,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[reactive_function]` applies to an `async fn(db: &ReactiveDb, input: Input) -> reactive::Result<Output>`",
            );
            let error = error.to_compile_error();
            return quote! { #item #error };
        }
    };
    let mut errors = Errors::default();
    let args = match FunctionArgs::parse(attr) {
        Ok(args) => Some(args),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let sig = match signature::validate(&item_fn.sig) {
        Ok(sig) => Some(sig),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let implied = sig.as_ref().and_then(|s| signature::handle_dialect(&s.db));
    if let (Some(args), Some(implied)) = (&args, implied)
        && let Some(declared) = &args.dialect
        && Dialect::from(**declared) != implied
    {
        errors.new_spanned(
            declared.span(),
            format!(
                "`dialect = \"{}\"` contradicts the handle, which runs on {}: drop `dialect` (the handle's type decides it)",
                dialect_name(Dialect::from(**declared)),
                dialect_name(implied)
            ),
        );
    }
    let dialect = args
        .as_ref()
        .map(|a| a.dialect(implied))
        .unwrap_or(implied.unwrap_or(Dialect::Postgres));
    // `query_file!` paths are relative to the crate being compiled, as for sqlx.
    let options = handler::AnalyzeOptions {
        dialect,
        manifest_dir: std::env::var_os("CARGO_MANIFEST_DIR").map(Into::into),
        ..handler::AnalyzeOptions::default()
    };
    let analysis = handler::analyze_fn_with(&item_fn, &options);
    let mut plan = args
        .as_ref()
        .map(|args| plan(args, &item_fn, &analysis, &mut errors));
    // Next to an error, a warning about precision is noise (the fix may change it).
    if !errors.is_empty()
        && let Some(plan) = plan.as_mut()
    {
        plan.warnings.clear();
    }

    let companion = companion(&item_fn, plan.as_ref(), &analysis);
    // `#[cfg(...)]` on the function applies to everything generated for it.
    let cfgs: Vec<&syn::Attribute> = item_fn
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .collect();
    // The type checks are emitted even next to errors; the registration (which uses
    // them, so that each unsatisfied bound is reported once, at the type) only without.
    let checked = sig.as_ref().map(|sig| {
        let types = type_consts(sig);
        let registration = match (&plan, errors.is_empty()) {
            (Some(plan), true) => registration(plan, sig),
            _ => TokenStream::new(),
        };
        quote! {
            #(#cfgs)*
            const _: () = {
                #types
                #registration
            };
        }
    });
    let compile_errors = errors.to_compile_errors();
    quote! {
        #item_fn
        #compile_errors
        #companion
        #checked
    }
}

/// A called function the expansion probes at compile time.
pub(crate) struct Probe {
    /// The callee's path as written, without generics (`crate::agents::find`).
    pub path: syn::Path,
    /// Span of the call's path (errors point there).
    pub span: Span,
    /// The callee's name.
    pub name: String,
    /// The probe module's identifier.
    pub module: syn::Ident,
}

/// What validation decided, ready to expand.
pub(crate) struct Plan {
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
    pub probes: Vec<Probe>,
}

/// Validate the body against the arguments and build the model.
pub(crate) fn plan(
    args: &FunctionArgs,
    item: &syn::ItemFn,
    analysis: &HandlerAnalysis,
    errors: &mut Errors,
) -> Plan {
    let mut parts = handler::to_model_parts(analysis);
    let explicit = args.dependencies.as_ref();
    let declared_mutation =
        args.mutation.is_present() || args.invalidates.is_some() || args.requires_ack.is_present();
    let kind_declared = declared_mutation || args.query.is_present();

    // Unparseable SQL: always an error, with sqlparser's message.
    for site in &analysis.statements {
        if let Some(Unknown::Parse(message)) = &site.analysis.unknown {
            errors.new_spanned(
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
    declare_functions(&mut parts, explicit, declared_mutation, analysis, errors);

    // SQL built at run time: dependencies cannot be inferred.
    if explicit.is_none() {
        for diagnostic in analysis
            .diagnostics
            .iter()
            .filter(|d| d.kind == DiagnosticKind::RuntimeSql)
        {
            errors.new_spanned(
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
                    errors.new_spanned(
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
            errors.new_spanned(
                site.span,
                format!("this statement {what}, but the function is declared `query`; declare it `mutation` (or drop `query`: the kind is inferred)"),
            );
        }
        if let Some(first) = args.invalidates.as_ref().and_then(|l| l.tables.first()) {
            errors.new_spanned(
                first.span,
                "`invalidates(...)` applies to mutations, but the function is declared `query`",
            );
        }
        if args.requires_ack.is_present() {
            errors.new_spanned(
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

    // Calls that pass the database handle.
    let mut probes = Vec::new();
    let mut opaque_call = false;
    // `db.begin()`, `db.clone()`, ... are ReactiveDb's own methods: they send no SQL of
    // their own (statements sent through the transaction are found in the body).
    const DB_METHODS: &[&str] = &["begin", "clone", "stats", "dialect", "engine"];
    for call in analysis
        .calls
        .iter()
        .filter(|c| c.passes_db && !(c.is_method && DB_METHODS.contains(&c.name.as_str())))
    {
        opaque_call = true;
        match probe_path(call) {
            Some(path) if !probes.iter().any(|p: &Probe| p.path == path) => {
                let module = format_ident!("__reactive_probe_{}", probes.len());
                probes.push(Probe {
                    path,
                    span: callee_name_span(&item.block, call),
                    name: call.name.clone(),
                    module,
                });
            }
            Some(_) => {}
            None if explicit.is_none() && !kind_declared => {
                errors.new_spanned(call.span, helper_message(&call.path))
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
        errors.new_spanned(
            name_arg.span(),
            "a procedure name must be non-empty and contain no whitespace, `/`, `?` or `#` (it is part of the URL `/rpc/{name}`)",
        );
    }
    let model = FunctionModel {
        name,
        rust_name: item.sig.ident.to_string(),
        kind,
        requires_ack: args.requires_ack.is_present(),
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
    explicit: Option<&super::args::TableList>,
    declared_mutation: bool,
    analysis: &HandlerAnalysis,
    errors: &mut Errors,
) {
    if declared_mutation {
        return;
    }
    let Some(list) = explicit else {
        for site in &analysis.statements {
            if let Some(Unknown::Function(name)) = &site.analysis.unknown {
                errors.new_spanned(
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

fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Sqlite => "sqlite",
        Dialect::MySql => "mysql",
    }
}

fn helper_message(path: &str) -> String {
    format!(
        "calls `{path}`, which receives the database handle but is not a `#[reactive_function]`: reactive cannot see the SQL inside it, so it cannot tell whether the function writes; declare `query` (its SQL is then analysed when it runs, and a write is refused) or `mutation`, or list the tables it reads in `dependencies(...)`"
    )
}

/// The callee path of a call that can be probed: a path call whose prefix is a
/// module path (`f`, `m::f`, `crate::m::f`, `super::f`). Generics are dropped.
/// The span of the callee's last path segment (`message_count` in
/// `messages::message_count(..)`), for errors at the call; the call's span otherwise.
fn callee_name_span(block: &syn::Block, call: &CallSite) -> Span {
    use syn::visit::Visit;
    struct Finder<'a> {
        call: &'a CallSite,
        found: Option<Span>,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_expr_call(&mut self, expr: &'ast syn::ExprCall) {
            if let (None, syn::Expr::Path(path)) = (self.found, &*expr.func) {
                let segments = &path.path.segments;
                let written = segments
                    .iter()
                    .map(|s| s.ident.to_string())
                    .collect::<Vec<_>>()
                    .join("::");
                let at = |span: Span| format!("{span:?}") == format!("{:?}", self.call.span);
                let first = segments.first().map(|s| s.ident.span());
                if written == self.call.path && (first.is_some_and(at) || at(path.span())) {
                    self.found = segments.last().map(|s| s.ident.span());
                }
            }
            syn::visit::visit_expr_call(self, expr);
        }
    }
    let mut finder = Finder { call, found: None };
    finder.visit_block(block);
    finder.found.unwrap_or(call.span)
}

fn probe_path(call: &CallSite) -> Option<syn::Path> {
    if call.is_method {
        return None;
    }
    let path: syn::Path = syn::parse_str(&call.path).ok()?;
    let segments: Vec<&syn::PathSegment> = path.segments.iter().collect();
    let (last, prefix) = segments.split_last()?;
    let module_like = |s: &&syn::PathSegment| {
        let ident = s.ident.to_string();
        matches!(s.arguments, syn::PathArguments::None)
            && (ident == "crate"
                || ident == "self"
                || ident == "super"
                || ident.starts_with(|c: char| c.is_ascii_lowercase() || c == '_'))
    };
    if !prefix.iter().all(module_like)
        || !last
            .ident
            .to_string()
            .starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
    {
        return None;
    }
    let mut clean = path.clone();
    for segment in &mut clean.segments {
        segment.arguments = syn::PathArguments::None;
    }
    Some(clean)
}

/// The probe's path inside the hidden module (one level below the user's module).
fn probe_import_path(path: &syn::Path) -> syn::Path {
    let first = path
        .segments
        .first()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    if path.leading_colon.is_some() || first == "crate" {
        return path.clone();
    }
    let mut out: syn::Path = syn::parse_quote!(super);
    let mut segments = path.segments.iter().peekable();
    if first == "self" {
        segments.next();
    }
    for segment in segments {
        out.segments.push(segment.clone());
    }
    out
}

/// The type-dependent operations as fn-pointer consts, each spanned at its type:
/// an input that is not `Deserialize + TS` or an output that is not `Serialize + TS`
/// is reported by rustc at the type, once. The registration only calls these.
fn type_consts(sig: &Signature) -> TokenStream {
    let private = quote!(::reactive::__private);
    let input = match &sig.input {
        Some(ty) => {
            let span = ty.span();
            quote_spanned! {span=>
                #[allow(dead_code)]
                const __REACTIVE_DECODE: fn(#private::serde_json::Value) -> ::core::result::Result<#ty, #private::InputError> =
                    #private::decode_input::<#ty>;
                #[allow(dead_code)]
                const __REACTIVE_TS_INPUT: fn(&mut #private::TsCollector) -> ::std::string::String =
                    #private::ts_collect::<#ty>;
            }
        }
        None => quote! {
            #[allow(dead_code)]
            const __REACTIVE_DECODE: fn(#private::serde_json::Value) -> ::core::result::Result<(), #private::InputError> =
                #private::decode_no_input;
            #[allow(dead_code)]
            const __REACTIVE_TS_INPUT: fn(&mut #private::TsCollector) -> ::std::string::String =
                #private::ts_collect_no_input;
        },
    };
    let output = &sig.output;
    let span = output.span();
    let output = quote_spanned! {span=>
        #[allow(dead_code)]
        const __REACTIVE_ENCODE: fn(#private::Result<#output>) -> #private::Result<::std::vec::Vec<u8>> =
            #private::encode_output::<#output>;
        #[allow(dead_code)]
        const __REACTIVE_TS_OUTPUT: fn(&mut #private::TsCollector) -> ::std::string::String =
            #private::ts_collect::<#output>;
    };
    quote! { #input #output }
}

fn str_lit(s: &str) -> syn::LitStr {
    syn::LitStr::new(s, Span::call_site())
}

/// Generated consts that join `items` (each a comma-separated list, possibly empty)
/// with `,` at compile time; evaluates to a `&'static str`.
fn const_join(items: &[TokenStream]) -> TokenStream {
    quote! {{
        const __ITEMS: &[&str] = &[#(#items),*];
        const __LEN: usize = ::reactive::__private::join_len(__ITEMS, ",");
        const __BYTES: [u8; __LEN] = ::reactive::__private::join_bytes::<__LEN>(__ITEMS, ",");
        ::reactive::__private::utf8(&__BYTES)
    }}
}

fn reactive_fn_path(probe: &Probe) -> TokenStream {
    let module = &probe.module;
    let name = syn::Ident::new(&probe.name, Span::call_site());
    quote! { <#module::#name as ::reactive::__private::ReactiveFn> }
}

/// The companion type and probes (emitted even when there are errors, so that
/// callers don't get secondary errors).
fn companion(item: &syn::ItemFn, plan: Option<&Plan>, analysis: &HandlerAnalysis) -> TokenStream {
    let ident = &item.sig.ident;
    let vis = &item.vis;
    let cfgs = item.attrs.iter().filter(|a| a.path().is_ident("cfg"));
    let cfgs: Vec<&syn::Attribute> = cfgs.collect();
    let (name, own_tables, probes): (String, Vec<String>, &[Probe]) = match plan {
        Some(plan) => (
            plan.model.name.clone(),
            plan.own_tables.clone(),
            &plan.probes,
        ),
        None => {
            let tables: BTreeSet<String> = analysis
                .statements
                .iter()
                .flat_map(|s| s.analysis.reads.iter().map(|r| r.table.clone()))
                .collect();
            (ident.to_string(), tables.into_iter().collect(), &[])
        }
    };
    let name_json = str_lit(&serde_json::to_string(&name).unwrap_or_default());
    let own_lits: Vec<syn::LitStr> = own_tables.iter().map(|t| str_lit(t)).collect();
    let own_json = own_tables
        .iter()
        .map(|t| {
            serde_json::to_string(&TableDependency {
                table: t.clone(),
                keys: Vec::new(),
            })
            .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(",");
    let own_json = str_lit(&own_json);
    let callee_paths: Vec<TokenStream> = probes.iter().map(reactive_fn_path).collect();
    let deps_json = const_join(
        &std::iter::once(quote!(#own_json))
            .chain(callee_paths.iter().map(|p| quote!(#p::DEPS_JSON)))
            .collect::<Vec<_>>(),
    );
    let probe_modules: Vec<TokenStream> = probes
        .iter()
        .map(|p| {
            probe_module(
                p,
                plan.and_then(|p| p.explicit.as_deref()),
                plan.is_some_and(|p| p.kind_declared),
            )
        })
        .collect();
    let deps = quote! {{
        const __LISTS: &[&[&str]] = &[&[#(#own_lits),*] #(, #callee_paths::DEPS)*];
        const __LEN: usize = ::reactive::__private::lists_len(__LISTS);
        const __ALL: [&str; __LEN] = ::reactive::__private::lists_concat::<__LEN>(__LISTS);
        &__ALL
    }};
    let warnings = plan
        .map_or(&[][..], |p| p.warnings.as_slice())
        .iter()
        .map(|(span, message)| {
            quote_spanned! {*span=>
                #(#cfgs)*
                const _: () = {
                    #[deprecated(note = #message)]
                    #[allow(non_upper_case_globals)]
                    const reactive_wide_read: () = ();
                    reactive_wide_read
                };
            }
        });
    let companion_doc = format!(
        "Compile-time information about the reactive function [`{ident}`] (generated; not part of the API)."
    );
    quote! {
        #(#cfgs)*
        #[doc = #companion_doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}

        #(#warnings)*

        #(#cfgs)*
        const _: () = {
            #(#probe_modules)*
            #[automatically_derived]
            impl ::reactive::__private::ReactiveFn for #ident {
                const IS_REACTIVE: bool = true;
                const NAME_JSON: &'static str = #name_json;
                const DEPS: &'static [&'static str] = #deps;
                const DEPS_JSON: &'static str = #deps_json;
            }
        };
    }
}

/// The hidden module resolving one callee, and the compile-time checks on it.
fn probe_module(probe: &Probe, explicit: Option<&[String]>, kind_declared: bool) -> TokenStream {
    let module = &probe.module;
    let name = syn::Ident::new(&probe.name, Span::call_site());
    let import = probe_import_path(&probe.path);
    let written = probe
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::");
    let span = probe.span;
    let check = match explicit {
        // The statements a plain helper sends are analysed when they run (and a write
        // inside a declared query is refused then): nothing to check here.
        None if kind_declared => TokenStream::new(),
        None => {
            let message = str_lit(&helper_message(&written));
            quote_spanned! {span=>
                const _: () = if !<#name as ::reactive::__private::ReactiveFn>::IS_REACTIVE {
                    ::core::panic!(#message)
                };
            }
        }
        Some(tables) => {
            let tables: Vec<syn::LitStr> = tables.iter().map(|t| str_lit(t)).collect();
            let before = str_lit(&format!("calls `{written}`, which reads table `"));
            let after = str_lit("`, but `dependencies(...)` does not list it");
            let panic = quote_spanned! {span=>
                const _: () = if !__MISSING.is_empty() {
                    ::core::panic!("{}", ::reactive::__private::utf8(&__MESSAGE))
                };
            };
            quote! {
                const __MISSING: &str = ::reactive::__private::first_missing(
                    &[#(#tables),*],
                    <#name as ::reactive::__private::ReactiveFn>::DEPS,
                );
                const __PARTS: &[&str] = &[#before, __MISSING, #after];
                const __MESSAGE_LEN: usize = ::reactive::__private::join_len(__PARTS, "");
                const __MESSAGE: [u8; __MESSAGE_LEN] = ::reactive::__private::join_bytes::<__MESSAGE_LEN>(__PARTS, "");
                #panic
            }
        }
    };
    quote! {
        #[allow(non_snake_case, dead_code, unused_imports)]
        mod #module {
            mod __fallback {
                #[allow(non_camel_case_types)]
                pub struct #name {}
                impl ::reactive::__private::ReactiveFn for #name {
                    const IS_REACTIVE: bool = false;
                    const NAME_JSON: &'static str = "";
                    const DEPS: &'static [&'static str] = &[];
                    const DEPS_JSON: &'static str = "";
                }
            }
            pub(super) use self::__fallback::*;
            pub(super) use #import;
            #check
        }
    }
}

/// The `FunctionDef` registration.
fn registration(plan: &Plan, sig: &Signature) -> TokenStream {
    let ident = &sig.ident;
    let output = &sig.output;
    let private = quote!(::reactive::__private);

    // Model JSON: everything but `dependencies` and `calls` is known now; the
    // called reactive functions' parts are joined in at compile time.
    let mut value = serde_json::to_value(&plan.model).unwrap_or_default();
    let own_deps = match value.as_object_mut() {
        Some(object) => {
            object.remove("calls");
            object.remove("dependencies").unwrap_or_default()
        }
        None => serde_json::Value::Null,
    };
    let head = serde_json::to_string(&value).unwrap_or_default();
    let head = str_lit(head.strip_suffix('}').unwrap_or(&head));
    let own_deps = own_deps
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let own_deps = str_lit(&own_deps);
    let callee_paths: Vec<TokenStream> = plan.probes.iter().map(reactive_fn_path).collect();
    let deps = const_join(
        &std::iter::once(quote!(#own_deps))
            .chain(callee_paths.iter().map(|p| quote!(#p::DEPS_JSON)))
            .collect::<Vec<_>>(),
    );
    let calls = const_join(
        &callee_paths
            .iter()
            .map(|p| quote!(#p::NAME_JSON))
            .collect::<Vec<_>>(),
    );
    let model_json = quote! {{
        const __PARTS: &[&str] = &[#head, ",\"dependencies\":[", #deps, "],\"calls\":[", #calls, "]}"];
        const __LEN: usize = ::reactive::__private::join_len(__PARTS, "");
        const __BYTES: [u8; __LEN] = ::reactive::__private::join_bytes::<__LEN>(__PARTS, "");
        ::reactive::__private::utf8(&__BYTES)
    }};

    let decode = match &sig.input {
        Some(_) => quote! { let input = __REACTIVE_DECODE(input)?; },
        None => quote! { __REACTIVE_DECODE(input)?; },
    };
    let bindings = plan.model.bindings.iter().map(|binding| {
        let members = binding
            .path
            .iter()
            .map(|segment| match segment.parse::<u32>() {
                Ok(index) => syn::Member::Unnamed(syn::Index {
                    index,
                    span: Span::call_site(),
                }),
                Err(_) => syn::Member::Named(syn::Ident::new(
                    segment.strip_prefix("r#").unwrap_or(segment),
                    Span::call_site(),
                )),
            });
        // The value comes from the field's type: unknown (`{}`) unless its JSON form
        // is what the database compares (see `binding_value`).
        quote! { #private::binding_value!(&input #(.#members)*) }
    });
    let call = match &sig.input {
        Some(_) => quote! { #ident(&db, input).await },
        None => quote! { #ident(&db).await },
    };
    let ret_span = sig.return_type.span();
    let typed_output = quote_spanned! {ret_span=>
        let output: #private::Result<#output> = #call;
    };
    let typescript = quote! {
        let mut collector = #private::TsCollector::default();
        let input = __REACTIVE_TS_INPUT(&mut collector);
        let output = __REACTIVE_TS_OUTPUT(&mut collector);
        collector.finish(input, output)
    };
    let ident_span = ident.span();
    let db_type = &sig.db;
    let run = quote_spanned! {ident_span=>
        #private::boxed_run::<#db_type, _, _>(move |db: #db_type| async move {
            #typed_output
            __REACTIVE_ENCODE(output)
        })
    };
    let probes = plan.probes.iter().map(|p| {
        let module = &p.module;
        let name = syn::Ident::new(&p.name, Span::call_site());
        let import = probe_import_path(&p.path);
        quote! {
            #[allow(non_snake_case, dead_code, unused_imports)]
            mod #module {
                mod __fallback {
                    #[allow(non_camel_case_types)]
                    pub struct #name {}
                    impl ::reactive::__private::ReactiveFn for #name {
                        const IS_REACTIVE: bool = false;
                        const NAME_JSON: &'static str = "";
                        const DEPS: &'static [&'static str] = &[];
                        const DEPS_JSON: &'static str = "";
                    }
                }
                pub(super) use self::__fallback::*;
                pub(super) use #import;
            }
        }
    });
    quote! {
            #(#probes)*

            const __MODEL_JSON: &str = #model_json;

            fn __reactive_prepare(
                input: #private::serde_json::Value,
            ) -> ::core::result::Result<#private::Prepared, #private::InputError> {
                #decode
                let bindings = ::std::vec![#(#bindings),*];
                ::core::result::Result::Ok(#private::Prepared { bindings, run: #run })
            }

            fn __reactive_typescript() -> #private::TsTypes {
                #typescript
            }

            static __REACTIVE_DEF: #private::FunctionDef = #private::FunctionDef {
                model_json: __MODEL_JSON,
                prepare: __reactive_prepare,
                typescript: __reactive_typescript,
                backend: #private::backend_of::<#db_type>,
                model_cell: #private::OnceLock::new(),
            };

            #private::inventory::submit! {
                #private::Registration(&__REACTIVE_DEF)
            }
    }
}
