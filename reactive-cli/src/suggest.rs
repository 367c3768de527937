//! `reactive suggest`: the `#[reactive_function(...)]` attribute each async fn that
//! sends SQL should carry.
//!
//! - `name`: the one already declared, else [`crate::procedure_name`] of the fn.
//! - `query` / `mutation`: what the body does (a declared `mutation` is kept).
//! - `dialect = "..."` when the analysis dialect is not the default `postgres`.
//! - `dependencies(...)` only when the macro cannot infer them (SQL built at run
//!   time, or a call handing the database handle to a function that is not, and
//!   will not be, a reactive function) or when the function already declares them.
//!   Tables named by the literal parts of a `format!` string in the body (holes
//!   filled with a placeholder, then analysed) are added, with a note. The tables listed are those seen in the
//!   body; the note says which run-time SQL must add its own. Otherwise the
//!   inferred dependencies are printed, not written into the attribute.
//! - `invalidates(...)` is hinted for mutations whose writes are not visible in the
//!   body (no write statement found, or SQL built at run time).
//! - Signature problems (`&PgPool` instead of `&ReactiveDb<Postgres>`, more than one input)
//!   are notes: `reactive convert` fixes the first kind.
//!
//! With `--json`: `{"functions": [{"name", "file", "line", "procedure", "kind",
//! "attribute", "existing", "inferred", "writes", "dependencies_required",
//! "notes": [{"line", "message"}]}]}`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;

use quote::ToTokens;
use serde::Serialize;

use crate::analyze::{TableReport, render_tables, table_reports};
use crate::{CliError, Outcome, dialect_name, procedure_name, read_rust_file};
use reactive_codegen::expand::args::FunctionArgs;
use reactive_codegen::expand::signature;
use reactive_codegen::handler::{self, AnalyzeOptions, DiagnosticKind, FnItem, HandlerAnalysis};
use reactive_codegen::model::FunctionKind;
use reactive_codegen::sql::Dialect;

/// Methods of `ReactiveDb` that send no SQL of their own (as the macro treats them).
const DB_METHODS: &[&str] = &["begin", "clone", "stats", "dialect", "engine"];

/// Arguments of `reactive suggest`: those of `reactive analyze` (a function's own
/// `dialect = "..."` wins over `--dialect`).
pub type SuggestArgs = crate::analyze::AnalyzeArgs;

/// The suggestions for all files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuggestReport {
    /// One entry per async fn sending SQL, in file order.
    pub functions: Vec<Suggestion>,
}

/// The suggestion for one function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// The Rust function's name.
    pub name: String,
    /// The file, as given.
    pub file: String,
    /// Line of the function's name.
    pub line: usize,
    /// The public procedure name.
    pub procedure: String,
    /// `query` or `mutation`.
    pub kind: FunctionKind,
    /// The attribute to write on the function.
    pub attribute: String,
    /// The `#[reactive_function...]` attribute already there, as written.
    pub existing: Option<String>,
    /// What the macro infers the function reads (tables, keys).
    pub inferred: Vec<TableReport>,
    /// What the body visibly writes.
    pub writes: Vec<TableReport>,
    /// `dependencies(...)` must be written (the macro cannot infer them all).
    pub dependencies_required: bool,
    /// What to do by hand, by line.
    pub notes: Vec<Note>,
}

/// Something to do by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// 1-based line.
    pub line: usize,
    /// The message.
    pub message: String,
}

pub(crate) fn run(args: &SuggestArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let report = suggest_files(args)?;
    if args.json {
        crate::write_json(out, &report)?;
    } else {
        out.write_all(render_human(&report).as_bytes())?;
    }
    Ok(Outcome::Clean)
}

/// The `#[reactive_function]` attribute of a function, if it has one.
pub(crate) fn reactive_attr(attrs: &[syn::Attribute]) -> Option<&syn::Attribute> {
    attrs.iter().find(|a| {
        a.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "reactive_function")
    })
}

fn attr_args(attr: &syn::Attribute) -> Option<FunctionArgs> {
    let tokens = match &attr.meta {
        syn::Meta::Path(_) => proc_macro2::TokenStream::new(),
        syn::Meta::List(list) => list.tokens.clone(),
        syn::Meta::NameValue(_) => return None,
    };
    FunctionArgs::parse(tokens).ok()
}

/// Source text of a span (falls back to the tokens).
pub(crate) fn source_of(source: &str, tokens: &impl ToTokens) -> String {
    use syn::spanned::Spanned;
    let range = tokens.span().byte_range();
    source
        .get(range)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| tokens.to_token_stream().to_string())
}

/// The functions of one file that send SQL, with their analyses.
type Analysed<'a> = Vec<(FnItem<'a>, HandlerAnalysis)>;

/// Read and analyse the files.
pub fn suggest_files(args: &SuggestArgs) -> Result<SuggestReport, CliError> {
    let mut parsed = Vec::new();
    for path in &args.files {
        let (source, file) = read_rust_file(path)?;
        parsed.push((path, source, file));
    }
    let mut functions = Vec::new();
    // Functions that are (or will be) reactive: callees by these names are probed by
    // the macro, so calling them needs no explicit dependencies.
    let mut reactive_names: BTreeSet<String> = BTreeSet::new();
    let mut analysed: Vec<(&str, &str, Analysed<'_>)> = Vec::new();
    for (path, source, file) in &parsed {
        let base = handler::file_options(
            file,
            &AnalyzeOptions {
                dialect: args.dialect,
                manifest_dir: crate::manifest_dir_of(path),
                ..AnalyzeOptions::default()
            },
        );
        let mut items = Vec::new();
        for item in handler::file_fns(file) {
            let declared = reactive_attr(item.attrs);
            let mut options = base.clone();
            if let Some(dialect) = declared
                .and_then(attr_args)
                .and_then(|a| a.dialect.as_ref().map(|d| Dialect::from(**d)))
            {
                options.dialect = dialect;
            }
            let analysis = handler::analyze_parts(item.sig, item.block, &options);
            let can_be_reactive = item.free && signature::validate(item.sig).is_ok();
            if declared.is_some() || (can_be_reactive && analysis.sends_sql()) {
                reactive_names.insert(analysis.name.clone());
            }
            if analysis.is_async && analysis.sends_sql() {
                items.push((item, analysis));
            }
        }
        analysed.push((path.as_str(), source.as_str(), items));
    }
    let structs = Structs::of(parsed.iter().map(|(_, _, file)| file));
    for (path, source, items) in &analysed {
        for (item, analysis) in items {
            let mut suggestion = suggest_one(path, source, item, analysis, &reactive_names);
            suggestion.notes.extend(key_notes(item, analysis, &structs));
            suggestion.notes.sort_by_key(|n| n.line);
            functions.push(suggestion);
        }
    }
    Ok(SuggestReport { functions })
}

fn suggest_one(
    path: &str,
    source: &str,
    item: &FnItem<'_>,
    analysis: &HandlerAnalysis,
    reactive_names: &BTreeSet<String>,
) -> Suggestion {
    let existing_attr = reactive_attr(item.attrs);
    let existing = existing_attr.map(|a| source_of(source, a));
    let declared = existing_attr.and_then(attr_args);
    let mut notes = Vec::new();

    if !item.free {
        notes.push(Note {
            line: analysis.location.line,
            message: "a method cannot be a `#[reactive_function]` yet: make it a free function"
                .into(),
        });
    }
    let takes_pool = item.sig.inputs.first().is_some_and(
        |arg| matches!(arg, syn::FnArg::Typed(t) if source_of(source, &*t.ty).contains("Pool")),
    );
    if takes_pool {
        notes.push(Note {
            line: analysis.location.line,
            message: "takes a sqlx pool: statements sent through it bypass `ReactiveDb` (nothing cached, nothing invalidated); `reactive convert` rewrites the signature".into(),
        });
    }
    for d in analysis
        .diagnostics
        .iter()
        .filter(|d| d.kind == DiagnosticKind::UnknownStatement)
    {
        notes.push(Note {
            line: d.location.line,
            message: format!(
                "{} ({} dialect; `--dialect` or `dialect = \"...\"` sets another)",
                d.message,
                dialect_name(analysis.dialect)
            ),
        });
    }
    if let Err(error) = signature::validate(item.sig) {
        for error in error {
            notes.push(Note {
                line: error.span().start().line,
                message: format!("signature: {error}"),
            });
        }
    }

    let procedure = declared
        .as_ref()
        .and_then(|d| d.name.as_ref().map(|n| n.as_str().to_owned()))
        .unwrap_or_else(|| procedure_name(&analysis.name));
    let declared_mutation = declared.as_ref().is_some_and(|d| {
        d.mutation.is_present() || d.invalidates.is_some() || d.requires_ack.is_present()
    });
    let kind = if declared_mutation {
        FunctionKind::Mutation
    } else {
        analysis.kind()
    };
    let inferred = table_reports(handler::resolved_reads(analysis));
    let writes = table_reports(handler::resolved_writes(analysis));

    // What the macro cannot see.
    let runtime_sql: Vec<usize> = analysis
        .diagnostics
        .iter()
        .filter(|d| d.kind == DiagnosticKind::RuntimeSql)
        .map(|d| d.location.line)
        .collect();
    for line in &runtime_sql {
        notes.push(Note {
            line: *line,
            message: "SQL built at run time: add every table it reads to `dependencies(...)`"
                .into(),
        });
    }
    // Tables named by the literal parts of `format!` strings: a lower bound of what the
    // run-time SQL reads (a piece filled in at run time can name more).
    let mut formatted: Vec<String> = Vec::new();
    if !runtime_sql.is_empty() {
        for (line, tables) in format_string_tables(item.block, analysis.dialect) {
            notes.push(Note {
                line,
                message: format!(
                    "the format string here reads {}: listed in `dependencies(...)` (check what is filled in at run time)",
                    tables
                        .iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            formatted.extend(tables);
        }
    }
    for call in analysis
        .calls
        .iter()
        .filter(|c| c.passes_db && !(c.is_method && DB_METHODS.contains(&c.name.as_str())))
    {
        if !call.is_method && reactive_names.contains(&call.name) {
            continue;
        }
        notes.push(Note {
            line: call.location.line,
            message: format!(
                "calls `{}` with the database handle; it is not a `#[reactive_function]`: its SQL is analysed when it runs, and the kind is declared (`query` refuses a write sent from it; declare `mutation` if it writes)",
                call.path
            ),
        });
    }
    let required = !runtime_sql.is_empty();
    let mut dependencies: Vec<String> = inferred.iter().map(|t| t.table.clone()).collect();
    dependencies.extend(formatted);
    if let Some(list) = declared.as_ref().and_then(|d| d.dependencies.as_ref()) {
        for table in &list.tables {
            if !dependencies.contains(&table.name) {
                dependencies.push(table.name.clone());
            }
        }
    }
    dependencies.sort();
    dependencies.dedup();

    if kind == FunctionKind::Mutation {
        let declared_invalidates = declared.as_ref().is_some_and(|d| d.invalidates.is_some());
        if writes.is_empty() && !declared_invalidates {
            let unknown = analysis
                .statements
                .iter()
                .any(|s| s.analysis.unknown.is_some());
            if !unknown {
                notes.push(Note {
                    line: analysis.location.line,
                    message: "no write is visible in the body: if it changes tables (through SQL built at run time, a procedure or another connection), list them in `invalidates(...)`".into(),
                });
            }
        } else if !runtime_sql.is_empty() && !declared_invalidates {
            notes.push(Note {
                line: runtime_sql[0],
                message: "the writes of SQL built at run time are seen when it runs through `ReactiveDb`; tables changed behind it (procedures; triggers are read from the catalog) go in `invalidates(...)`".into(),
            });
        }
    }

    let mut parts = vec![format!("name = {procedure:?}")];
    parts.push(
        match kind {
            FunctionKind::Query => "query",
            FunctionKind::Mutation => "mutation",
        }
        .to_owned(),
    );
    if analysis.dialect != Dialect::Postgres {
        parts.push(format!("dialect = {:?}", dialect_name(analysis.dialect)));
    }
    // Declared dependencies are kept (the macro checks them against the body).
    let declared_dependencies = declared.as_ref().is_some_and(|d| d.dependencies.is_some());
    if required || declared_dependencies {
        parts.push(format!("dependencies({})", dependencies.join(", ")));
    }
    if let Some(list) = declared.as_ref().and_then(|d| d.invalidates.as_ref()) {
        let tables: Vec<&str> = list.tables.iter().map(|t| t.name.as_str()).collect();
        parts.push(format!("invalidates({})", tables.join(", ")));
    }
    if declared
        .as_ref()
        .is_some_and(|d| d.requires_ack.is_present())
    {
        parts.push("requires_ack".into());
    }
    if kind == FunctionKind::Query && declared.as_ref().is_some_and(|d| d.push.is_present()) {
        parts.push("push".into());
    }
    notes.sort_by_key(|n| n.line);
    Suggestion {
        name: analysis.name.clone(),
        file: path.to_owned(),
        line: analysis.location.line,
        procedure,
        kind,
        attribute: format!("#[reactive_function({})]", parts.join(", ")),
        existing,
        inferred,
        writes,
        dependencies_required: required,
        notes,
    }
}

/// Named-field structs of the files, by name (a name defined twice is left out:
/// which one the input is cannot be told).
struct Structs(std::collections::HashMap<String, Option<syn::ItemStruct>>);

impl Structs {
    fn of<'a>(files: impl Iterator<Item = &'a syn::File>) -> Self {
        use syn::visit::Visit;
        struct Collect(std::collections::HashMap<String, Option<syn::ItemStruct>>);
        impl<'ast> Visit<'ast> for Collect {
            fn visit_item_struct(&mut self, item: &'ast syn::ItemStruct) {
                self.0
                    .entry(item.ident.to_string())
                    .and_modify(|seen| *seen = None)
                    .or_insert_with(|| Some(item.clone()));
            }
        }
        let mut collect = Collect(Default::default());
        for file in files {
            collect.visit_file(file);
        }
        Self(collect.0)
    }

    /// The declared type of `path` below a value of type `ty`, when every struct
    /// on the way is defined (once) in the files.
    fn field_type<'a>(&'a self, ty: &'a syn::Type, path: &[String]) -> Option<&'a syn::Type> {
        let Some((first, rest)) = path.split_first() else {
            return Some(ty);
        };
        let name = match ty {
            syn::Type::Reference(r) => return self.field_type(&r.elem, path),
            syn::Type::Path(p) if p.qself.is_none() => p.path.segments.last()?.ident.to_string(),
            _ => return None,
        };
        let item = self.0.get(&name)?.as_ref()?;
        let field = item
            .fields
            .iter()
            .find(|f| f.ident.as_ref().is_some_and(|i| i == first))?;
        self.field_type(&field.ty, rest)
    }
}

/// Does this type, as written, give a key value at run time (what
/// `reactive::__private::KeySafe` is implemented for)? Type aliases and types
/// named by other paths read as not safe: the note then says "unless".
fn key_safe_type(ty: &syn::Type) -> bool {
    const SCALARS: &[&str] = &[
        "String", "str", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "isize", "usize",
        "bool", "Uuid",
    ];
    let segment = match ty {
        syn::Type::Reference(r) => return key_safe_type(&r.elem),
        syn::Type::Paren(p) => return key_safe_type(&p.elem),
        syn::Type::Path(p) if p.qself.is_none() => match p.path.segments.last() {
            Some(segment) => segment,
            None => return false,
        },
        _ => return false,
    };
    let name = segment.ident.to_string();
    let args: Vec<&syn::Type> = match &segment.arguments {
        syn::PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    match (name.as_str(), args.as_slice()) {
        ("Option", [inner]) => key_safe_type(inner),
        ("Box" | "Arc" | "Cow", [inner]) => {
            matches!(inner, syn::Type::Path(p) if p.path.is_ident("str"))
        }
        (scalar, []) => SCALARS.contains(&scalar),
        _ => false,
    }
}

/// Notes on the keys of reads the run time cannot use: parameters bound to
/// something not traced to the input, or not bound where the analysis sees it, and
/// input fields whose declared type gives no key value (see
/// `reactive::__private::binding_value`). Each such key is dropped: the read is
/// wider and more writes invalidate it. Nothing is wrong, only less precise.
fn key_notes(item: &FnItem<'_>, analysis: &HandlerAnalysis, structs: &Structs) -> Vec<Note> {
    let input_ty = item
        .sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(t) => Some(&*t.ty),
            syn::FnArg::Receiver(_) => None,
        })
        .nth(1);
    let mut notes = Vec::new();
    let mut seen = BTreeSet::new();
    for key in handler::read_key_params(analysis) {
        let what = format!("`{}.{}` = ${}", key.table, key.column, key.param);
        let message = match (&key.value, &key.expr) {
            (handler::BindValue::Literal(_), _) => continue,
            (handler::BindValue::Input { path, source }, _) => {
                let Some(ty) = input_ty.and_then(|ty| structs.field_type(ty, path)) else {
                    continue;
                };
                if key_safe_type(ty) {
                    continue;
                }
                format!(
                    "{what}: `{source}` is a `{}`, which gives no key value unless it is a string, an integer, `bool` or `Uuid` (or an `Option` of one): its serialized form may not be what the database compares, so this key is dropped and invalidation is wider",
                    ty.to_token_stream().to_string().replace(' ', "")
                )
            }
            (handler::BindValue::Other, Some(expr)) => format!(
                "{what}: `{expr}` is not traced to an input field (only `input.x`, `&input.x`, `.clone()`, `.to_string()`, `.as_str()`, `.into()`, ... of it are), so this key is dropped and invalidation is wider (bind the field itself to keep the key)"
            ),
            (handler::BindValue::Other, None) => format!(
                "{what}: the parameter is not bound in the statement's own chain, so this key is dropped and invalidation is wider"
            ),
        };
        if seen.insert((key.location.line, message.clone())) {
            notes.push(Note {
                line: key.location.line,
                message,
            });
        }
    }
    notes
}

/// The SQL of each `format!` in the body whose string literal reads as SQL once
/// its `{...}` holes are filled with a placeholder: (line, tables it reads).
fn format_string_tables(block: &syn::Block, dialect: Dialect) -> Vec<(usize, Vec<String>)> {
    use syn::visit::Visit;
    const HOLE: &str = "reactive_hole";
    struct Finder {
        dialect: Dialect,
        found: Vec<(usize, Vec<String>)>,
    }
    impl<'ast> Visit<'ast> for Finder {
        fn visit_macro(&mut self, mac: &'ast syn::Macro) {
            if mac
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "format")
                && let Ok(args) = mac.parse_body_with(
                    syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated,
                )
                && let Some(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(lit),
                    ..
                })) = args.first()
            {
                let sql = fill_holes(&lit.value(), HOLE);
                let analysis = reactive_codegen::sql::analyze(&sql, self.dialect);
                let mut tables: Vec<String> = analysis
                    .reads
                    .iter()
                    .map(|r| r.table.clone())
                    .filter(|t| !t.contains(HOLE))
                    .collect();
                tables.sort();
                tables.dedup();
                if analysis.unknown.is_none() && !tables.is_empty() {
                    self.found.push((lit.span().start().line, tables));
                }
            }
            syn::visit::visit_macro(self, mac);
        }
    }
    let mut finder = Finder {
        dialect,
        found: Vec::new(),
    };
    finder.visit_block(block);
    finder.found
}

/// `{...}` holes of a format string replaced by `hole`; `{{`/`}}` unescaped.
fn fill_holes(format: &str, hole: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                out.push_str(hole);
            }
            other => out.push(other),
        }
    }
    out
}

/// The human-readable rendering.
pub fn render_human(report: &SuggestReport) -> String {
    let mut out = String::new();
    if report.functions.is_empty() {
        out.push_str("no async functions sending SQL found\n");
        return out;
    }
    for (i, s) in report.functions.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{}:{}: {}", s.file, s.line, s.name);
        let _ = writeln!(out, "  {}", s.attribute);
        if let Some(existing) = &s.existing {
            if existing
                .split_whitespace()
                .eq(s.attribute.split_whitespace())
            {
                let _ = writeln!(out, "  (already declared)");
            } else {
                let _ = writeln!(out, "  declared: {existing}");
            }
        }
        let label = if s.dependencies_required {
            "seen  "
        } else {
            "infers"
        };
        render_tables(&mut out, label, &s.inferred);
        if s.kind == FunctionKind::Mutation {
            render_tables(&mut out, "writes", &s.writes);
        }
        for note in &s.notes {
            let _ = writeln!(out, "  note: {}:{}: {}", s.file, note.line, note.message);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fill_holes;

    #[test]
    fn format_holes_are_filled_and_braces_unescaped() {
        assert_eq!(
            fill_holes(
                "SELECT {{1}} FROM {table} WHERE a = '{}' AND b = {x:?}",
                "h"
            ),
            "SELECT {1} FROM h WHERE a = 'h' AND b = h"
        );
    }
}
