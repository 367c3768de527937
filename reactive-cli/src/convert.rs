//! `reactive convert`: plain sqlx functions into reactive functions.
//!
//! A function is converted when it is a free `async fn` without
//! `#[reactive_function]` whose first parameter is a shared reference to a sqlx
//! pool (`&PgPool`, `&SqlitePool`, `&MySqlPool`, `&AnyPool`, `&Pool<DB>`). The edits
//! are textual, at the spans syn gives (the rest of the file is left as it is):
//!
//! - `#[reactive_function(name = "...")]` above the function (with
//!   `dialect = "sqlite"`/`"mysql"` for those pools), name from
//!   [`crate::procedure_name`];
//! - the pool type becomes the handle of its database: `&PgPool` →
//!   `&ReactiveDb<Postgres>`, `&MySqlPool` → `&ReactiveDb<MySql>`, `&SqlitePool` →
//!   `&ReactiveDb<Sqlite>`, `&AnyPool` → `&ReactiveDb<Any>`; `&Pool<DB>` keeps `DB`
//!   as written (`&ReactiveDb<sqlx::Postgres>`). The body is left alone: the handle
//!   is an executor of the same database, so native types (`Uuid`, ...), binds and
//!   `query!`/`query_as!` keep compiling;
//! - `Result<T, sqlx::Error>` / `sqlx::Result<T>` becomes `reactive::Result<T>`;
//! - `&mut *tx` stays: a `ReactiveTx` derefs to an executor as sqlx's does;
//! - `use reactive::{reactive_function, ReactiveDb};` after the last top-level
//!   `use` (or before the first item), unless already imported; inside an inline
//!   `mod` (which the file's `use` does not reach) the edits spell
//!   `reactive::reactive_function` and `reactive::ReactiveDb` instead;
//! - `use sqlx::Postgres;` (or `MySql`, `Sqlite`, `Any`) next to it when a pool
//!   alias was converted and the file does not import that name yet (inside a
//!   module: `sqlx::Postgres`);
//! - `use sqlx::PgPool;` (and the other pools) goes when nothing else uses it; in
//!   a group (`use sqlx::{PgPool, Row};`) only the pool goes.
//!
//! Inserted lines use the file's line ending (CRLF files stay CRLF).
//!
//! What needs a person is listed as notes, by line (exit status 1): more than one
//! value besides the pool (a reactive function takes one input: a struct is
//! proposed), an input taken by reference, another return type, SQL built at run
//! time (needs `dependencies(...)`: see `reactive suggest`), generic executors,
//! connections and transactions taken as the first parameter (`&mut PgConnection`,
//! `&mut Transaction<'_, Postgres>`: statements sent there bypass the handle).
//!
//! Without `--write`, prints a unified diff of the edits; with it, rewrites the file.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;

use syn::spanned::Spanned;

use crate::{
    CliError, Outcome, dialect_name, pascal_case, procedure_name, read_rust_file,
    suggest::reactive_attr, suggest::source_of,
};
use reactive_codegen::handler::{self, AnalyzeOptions, DiagnosticKind};
use reactive_codegen::sql::Dialect;

/// Arguments of `reactive convert`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ConvertArgs {
    /// The Rust file
    #[arg(value_name = "FILE.rs")]
    pub file: String,
    /// Rewrite the file instead of printing a diff
    #[arg(long)]
    pub write: bool,
}

/// A textual edit: replace `range` (bytes of the original) with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Bytes of the original text.
    pub range: std::ops::Range<usize>,
    /// The replacement.
    pub text: String,
}

/// What `convert` would do to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// The original text.
    pub original: String,
    /// The edits, sorted, not overlapping.
    pub edits: Vec<Edit>,
    /// Names of the functions converted.
    pub converted: Vec<String>,
    /// What needs a person: (line, message).
    pub notes: Vec<(usize, String)>,
}

impl Conversion {
    /// The text with the edits applied.
    pub fn converted_text(&self) -> String {
        apply(&self.original, &self.edits, 0..self.original.len())
    }
}

fn apply(text: &str, edits: &[Edit], window: std::ops::Range<usize>) -> String {
    let mut out = String::new();
    let mut at = window.start;
    for edit in edits
        .iter()
        .filter(|e| e.range.start >= window.start && e.range.end <= window.end)
    {
        out.push_str(&text[at..edit.range.start]);
        out.push_str(&edit.text);
        at = edit.range.end;
    }
    out.push_str(&text[at..window.end]);
    out
}

/// A pool parameter's type, read from its spelling.
struct PoolType<'a> {
    /// The dialect its SQL literals are parsed with (`Any`: PostgreSQL's, the default).
    dialect: Dialect,
    /// The database type the handle names: `Postgres`, `MySql`, `Sqlite` or `Any`.
    database: &'static str,
    /// The `DB` of `Pool<DB>` as written: the handle reuses it (it resolves where it
    /// stands); `None` for an alias (`PgPool`), whose database type is imported.
    written: Option<&'a syn::Type>,
    /// The referenced type, replaced by the handle.
    elem: &'a syn::Type,
}

/// The database a sqlx database type names (last path segment).
fn database_of(ty: &syn::Type) -> Option<&'static str> {
    let syn::Type::Path(p) = ty else { return None };
    match p.path.segments.last()?.ident.to_string().as_str() {
        "Postgres" => Some("Postgres"),
        "MySql" => Some("MySql"),
        "Sqlite" => Some("Sqlite"),
        "Any" => Some("Any"),
        _ => None,
    }
}

fn dialect_of(database: &str) -> Dialect {
    match database {
        "MySql" => Dialect::MySql,
        "Sqlite" => Dialect::Sqlite,
        // `Any` runs whatever the URL names: PostgreSQL's `$1` is the CLI's default.
        _ => Dialect::Postgres,
    }
}

/// The first type argument of a path segment (`Postgres` of `Pool<Postgres>`).
fn type_argument(segment: &syn::PathSegment) -> Option<&syn::Type> {
    let syn::PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// The pool a parameter type names (`&PgPool`, `&sqlx::Pool<sqlx::Postgres>`, ...).
fn pool_type(ty: &syn::Type) -> Option<PoolType<'_>> {
    let syn::Type::Reference(reference) = ty else {
        return None;
    };
    if reference.mutability.is_some() {
        return None;
    }
    let syn::Type::Path(path) = &*reference.elem else {
        return None;
    };
    let last = path.path.segments.last()?;
    let (database, written) = match last.ident.to_string().as_str() {
        "PgPool" => ("Postgres", None),
        "SqlitePool" => ("Sqlite", None),
        "MySqlPool" => ("MySql", None),
        "AnyPool" => ("Any", None),
        "Pool" => {
            let db = type_argument(last)?;
            (database_of(db)?, Some(db))
        }
        _ => return None,
    };
    Some(PoolType {
        dialect: dialect_of(database),
        database,
        written,
        elem: &reference.elem,
    })
}

/// The database of a connection or transaction taken by `&mut` (`&mut PgConnection`,
/// `&mut Transaction<'_, Postgres>`, `&mut PoolConnection<Sqlite>`), as the note names it.
fn connection_database(source: &str, ty: &syn::Type) -> Option<String> {
    let syn::Type::Reference(reference) = ty else {
        return None;
    };
    reference.mutability?;
    let syn::Type::Path(path) = &*reference.elem else {
        return None;
    };
    let last = path.path.segments.last()?;
    match last.ident.to_string().as_str() {
        "PgConnection" => Some("Postgres".into()),
        "MySqlConnection" => Some("MySql".into()),
        "SqliteConnection" => Some("Sqlite".into()),
        "AnyConnection" => Some("Any".into()),
        "Transaction" | "PoolConnection" => type_argument(last).map(|db| source_of(source, db)),
        _ => None,
    }
}

/// The database a generic executor's bounds name (`Database = Postgres`,
/// `PgExecutor`), when they do.
fn executor_database(bounds: &str) -> Option<&'static str> {
    let bounds = bounds.replace(' ', "");
    [
        ("Database=Postgres", "Postgres"),
        ("Database=sqlx::Postgres", "Postgres"),
        ("PgExecutor", "Postgres"),
        ("Database=MySql", "MySql"),
        ("Database=sqlx::MySql", "MySql"),
        ("MySqlExecutor", "MySql"),
        ("Database=Sqlite", "Sqlite"),
        ("Database=sqlx::Sqlite", "Sqlite"),
        ("SqliteExecutor", "Sqlite"),
        ("Database=Any", "Any"),
        ("Database=sqlx::Any", "Any"),
    ]
    .into_iter()
    .find(|(needle, _)| bounds.contains(needle))
    .map(|(_, database)| database)
}

/// Names imported by `use` items at the top level (`*` for a glob of `reactive`; a
/// glob of `sqlx` or of its driver modules brings the database types).
fn imported(items: &[syn::Item]) -> BTreeSet<String> {
    fn walk(tree: &syn::UseTree, path: &mut Vec<String>, out: &mut BTreeSet<String>) {
        match tree {
            syn::UseTree::Path(p) => {
                path.push(p.ident.to_string());
                walk(&p.tree, path, out);
                path.pop();
            }
            syn::UseTree::Name(n) => {
                out.insert(n.ident.to_string());
            }
            syn::UseTree::Rename(r) => {
                out.insert(r.rename.to_string());
            }
            syn::UseTree::Glob(_) => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                let names: &[&str] = match path.as_slice() {
                    [.., "reactive"] => &["*"],
                    ["sqlx"] => &["Postgres", "MySql", "Sqlite", "Any"],
                    ["sqlx", "postgres"] => &["Postgres"],
                    ["sqlx", "mysql"] => &["MySql"],
                    ["sqlx", "sqlite"] => &["Sqlite"],
                    ["sqlx", "any"] => &["Any"],
                    _ => &[],
                };
                out.extend(names.iter().map(|n| (*n).to_owned()));
            }
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    walk(tree, path, out);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    for item in items {
        if let syn::Item::Use(u) = item {
            walk(&u.tree, &mut Vec::new(), &mut out);
        }
    }
    out
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

fn line_end(text: &str, offset: usize) -> usize {
    text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// The owned form of a parameter type for an input struct field (`&str` → `String`).
fn owned_type(source: &str, ty: &syn::Type) -> String {
    match ty {
        syn::Type::Reference(r) => match &*r.elem {
            syn::Type::Path(p) if p.path.is_ident("str") => "String".into(),
            syn::Type::Slice(s) => format!("Vec<{}>", source_of(source, &*s.elem)),
            other => source_of(source, other),
        },
        other => source_of(source, other),
    }
}

/// Work out the edits for one file.
pub fn convert_source(source: &str, file: &syn::File) -> Conversion {
    let mut edits = Vec::new();
    let mut converted = Vec::new();
    let mut notes = Vec::new();
    let newline = if source.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    // A converted function at the top level needs the `use`.
    let mut top_level = false;
    let options = handler::file_options(file, &AnalyzeOptions::default());
    let mut derives = std::collections::BTreeMap::new();
    collect_derives(&file.items, &mut derives);
    // Database types a converted top-level function names bare (`ReactiveDb<Postgres>`).
    let mut databases = BTreeSet::new();
    for item in handler::file_fns(file) {
        let Some(syn::FnArg::Typed(first)) = item.sig.inputs.first() else {
            continue;
        };
        let name = item.sig.ident.to_string();
        let generic_executor = item.sig.generics.params.iter().any(|p| {
            matches!(p, syn::GenericParam::Type(t) if t.bounds.iter().any(|b| source_of(source, b).contains("Executor")))
        }) || source_of(source, &*first.ty).contains("Executor");
        let fn_line = item.sig.ident.span().start().line;
        if generic_executor && item.sig.asyncness.is_some() {
            let handle = match executor_database(&source_of(source, &item.sig.generics))
                .or_else(|| executor_database(&source_of(source, &*first.ty)))
            {
                Some(database) => format!("`db: &ReactiveDb<{database}>`"),
                None => "`db: &ReactiveDb<Postgres>` (or `MySql`, `Sqlite`, `Any`)".to_owned(),
            };
            notes.push((
                fn_line,
                format!("`{name}` is generic over the executor: make it take {handle} by hand (or keep it a helper called with a `ReactiveTx`)"),
            ));
            continue;
        }
        if item.sig.asyncness.is_some()
            && reactive_attr(item.attrs).is_none()
            && let Some(database) = connection_database(source, &first.ty)
        {
            // A connection or transaction is not intercepted: what is sent on it is
            // neither cached nor invalidating. Which one fits is the author's call.
            notes.push((
                fn_line,
                format!("`{name}` takes a connection or transaction (`{}`): statements sent through it bypass `ReactiveDb`; make it take `db: &ReactiveDb<{database}>` by hand, or keep it a helper taking `tx: &mut ReactiveTx<{database}>` (from `db.begin()`)", source_of(source, &*first.ty)),
            ));
            continue;
        }
        let Some(pool) = pool_type(&first.ty) else {
            continue;
        };
        if item.sig.asyncness.is_none() || !item.free || reactive_attr(item.attrs).is_some() {
            continue;
        }
        let dialect = pool.dialect;
        converted.push(name.clone());

        // The attribute, above the function (after its other attributes).
        let first_token = match item.vis {
            Some(vis) if !matches!(vis, syn::Visibility::Inherited) => vis.span(),
            _ => item
                .sig
                .constness
                .map(|c| c.span)
                .or(item.sig.asyncness.map(|a| a.span))
                .unwrap_or(item.sig.fn_token.span),
        };
        let start = line_start(source, first_token.byte_range().start);
        let indent: String = source[start..]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        let mut args = vec![format!("name = {:?}", procedure_name(&name))];
        if dialect != Dialect::Postgres {
            args.push(format!("dialect = {:?}", dialect_name(dialect)));
        }
        // Inside an inline module the file's `use` does not reach: full paths.
        let prefix = if item.nested { "reactive::" } else { "" };
        edits.push(Edit {
            range: start..start,
            text: format!(
                "{indent}#[{prefix}reactive_function({})]{newline}",
                args.join(", ")
            ),
        });
        top_level |= !item.nested;

        // The pool type: the handle of the same database, so the body's native types
        // and query macros keep type-checking against it.
        let database = match pool.written {
            Some(written) => source_of(source, written),
            None if item.nested => format!("sqlx::{}", pool.database),
            None => {
                databases.insert(pool.database);
                pool.database.to_owned()
            }
        };
        edits.push(Edit {
            range: pool.elem.span().byte_range(),
            text: format!("{prefix}ReactiveDb<{database}>"),
        });

        // The return type.
        match &item.sig.output {
            syn::ReturnType::Type(_, ty) => match result_parts(ty) {
                Some((ok, error)) => {
                    let sqlx_error = error.as_ref().is_none_or(|e| {
                        let e = source_of(source, *e).replace(' ', "");
                        e == "sqlx::Error" || e == "Error" || e == "sqlx::error::Error"
                    });
                    let path = source_of(source, &**ty);
                    let plain_result = error.is_none() && !path.starts_with("sqlx::");
                    if sqlx_error && !plain_result {
                        edits.push(Edit {
                            range: ty.span().byte_range(),
                            text: format!("reactive::Result<{}>", source_of(source, ok)),
                        });
                        edits.extend(wrap_tail(source, item.block, &name, &mut notes));
                        check_derives(ok, &derives, "output", &["Serialize", "TS"], &mut notes);
                    } else if !path.starts_with("reactive::") {
                        notes.push((
                            ty.span().start().line,
                            format!("`{name}` returns `{path}`: a reactive function returns `reactive::Result<T>` (sqlx errors convert with `?`); change it by hand"),
                        ));
                    }
                }
                None => notes.push((
                    ty.span().start().line,
                    format!(
                        "`{name}` returns `{}`: a reactive function returns `reactive::Result<T>`; change it by hand",
                        source_of(source, &**ty)
                    ),
                )),
            },
            syn::ReturnType::Default => notes.push((
                fn_line,
                format!("`{name}` returns nothing: a reactive function returns `reactive::Result<T>`"),
            )),
        }

        // The input.
        let rest: Vec<&syn::PatType> = item
            .sig
            .inputs
            .iter()
            .skip(1)
            .filter_map(|a| match a {
                syn::FnArg::Typed(t) => Some(t),
                syn::FnArg::Receiver(_) => None,
            })
            .collect();
        match rest.as_slice() {
            [] => {}
            [one] => {
                check_derives(
                    &one.ty,
                    &derives,
                    "input",
                    &["Deserialize", "TS"],
                    &mut notes,
                );
                if let syn::Type::Reference(_) = &*one.ty {
                    notes.push((
                        one.span().start().line,
                        format!(
                            "`{name}` takes its input by reference: a reactive function's input is decoded from JSON and passed by value; take `{}: {}`",
                            source_of(source, &*one.pat),
                            owned_type(source, &one.ty)
                        ),
                    ));
                }
            }
            several => {
                let struct_name = format!("{}Input", pascal_case(&name));
                let mut text = format!(
                    "`{name}` takes {} values besides the pool: a reactive function takes one input; add\n\n    #[derive(serde::Deserialize, ts_rs::TS)]\n    #[serde(rename_all = \"camelCase\")]\n    pub struct {struct_name} {{\n",
                    several.len()
                );
                for param in several {
                    let _ = writeln!(
                        text,
                        "        pub {}: {},",
                        source_of(source, &*param.pat),
                        owned_type(source, &param.ty)
                    );
                }
                let _ = write!(
                    text,
                    "    }}\n\n  take `input: {struct_name}` and bind `input.<field>` in the body"
                );
                notes.push((several[0].span().start().line, text));
            }
        }

        // Run-time SQL.
        let analysis = handler::analyze_parts(
            item.sig,
            item.block,
            &AnalyzeOptions {
                dialect,
                ..options.clone()
            },
        );
        for d in analysis
            .diagnostics
            .iter()
            .filter(|d| d.kind == DiagnosticKind::RuntimeSql)
        {
            notes.push((
                d.location.line,
                format!("`{name}` builds SQL at run time: list the tables it reads in `dependencies(...)` (`reactive suggest` prints the attribute)"),
            ));
        }
    }

    // The import.
    if top_level {
        let names = imported(&file.items);
        let mut missing = Vec::new();
        if !names.contains("*") {
            for name in ["reactive_function", "ReactiveDb"] {
                if !names.contains(name) {
                    missing.push(name);
                }
            }
        }
        let mut text = match missing.as_slice() {
            [] => String::new(),
            [one] => format!("use reactive::{one};{newline}"),
            several => format!("use reactive::{{{}}};{newline}", several.join(", ")),
        };
        let databases: Vec<&str> = databases
            .into_iter()
            .filter(|d| !names.contains(*d))
            .collect();
        match databases.as_slice() {
            [] => {}
            [one] => {
                let _ = write!(text, "use sqlx::{one};{newline}");
            }
            several => {
                let _ = write!(text, "use sqlx::{{{}}};{newline}", several.join(", "));
            }
        }
        if !text.is_empty() {
            let last_use = file.items.iter().rfind(|i| matches!(i, syn::Item::Use(_)));
            let at = match (last_use, file.items.first()) {
                (Some(u), _) => line_end(source, u.span().byte_range().end),
                (None, Some(first)) => line_start(source, first.span().byte_range().start),
                (None, None) => source.len(),
            };
            edits.push(Edit {
                range: at..at,
                text,
            });
        }
    }
    if !converted.is_empty() {
        let removed = unused_pool_imports(source, file, &edits);
        edits.extend(removed);
    }
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    notes.sort_by_key(|n| n.0);
    Conversion {
        original: source.to_owned(),
        edits,
        converted,
        notes,
    }
}

/// The body's tail expression returns a sqlx `Result` when it is an `.await`ed
/// call: `EXPR` becomes `Ok(EXPR?)` (the error converts into `reactive::Error`).
/// A tail `Ok(..)`/`Err(..)` is left alone; anything else is a note.
fn wrap_tail(
    source: &str,
    block: &syn::Block,
    name: &str,
    notes: &mut Vec<(usize, String)>,
) -> Vec<Edit> {
    let Some(syn::Stmt::Expr(tail, None)) = block.stmts.last() else {
        return Vec::new();
    };
    match tail {
        syn::Expr::Await(_) => {
            let range = tail.span().byte_range();
            vec![
                Edit {
                    range: range.start..range.start,
                    text: "Ok(".into(),
                },
                Edit {
                    range: range.end..range.end,
                    text: "?)".into(),
                },
            ]
        }
        syn::Expr::Call(call) if matches!(&*call.func, syn::Expr::Path(p) if p.path.is_ident("Ok") || p.path.is_ident("Err")) => {
            Vec::new()
        }
        other => {
            notes.push((
                other.span().start().line,
                format!(
                    "`{name}` now returns `reactive::Result`: check that `{}` has that type (`Ok(expr?)` converts a sqlx result)",
                    first_line(&source_of(source, other))
                ),
            ));
            Vec::new()
        }
    }
}

fn first_line(text: &str) -> String {
    match text.split_once('\n') {
        Some((first, _)) => format!("{first} ..."),
        None => text.to_owned(),
    }
}

/// The pool names `convert` replaces: their imports may become unused.
const POOL_NAMES: [&str; 5] = ["PgPool", "SqlitePool", "MySqlPool", "AnyPool", "Pool"];

/// How many times `word` occurs in `text` as a whole identifier.
fn word_count(text: &str, word: &str) -> usize {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word)
        .filter(|(at, _)| {
            !text[..*at].chars().next_back().is_some_and(ident)
                && !text[at + word.len()..].chars().next().is_some_and(ident)
        })
        .count()
}

/// Pool imports of `sqlx` the converted text no longer uses: `use sqlx::PgPool;`
/// goes; in `use sqlx::{MySql, MySqlPool};` the pool goes and the rest stays (an
/// unused import is a warning, an error under `deny(warnings)`).
fn unused_pool_imports(source: &str, file: &syn::File, edits: &[Edit]) -> Vec<Edit> {
    let mut sorted = edits.to_vec();
    sorted.sort_by_key(|e| (e.range.start, e.range.end));
    let converted = apply(source, &sorted, 0..source.len());
    let mut out = Vec::new();
    for item in &file.items {
        let syn::Item::Use(u) = item else { continue };
        let syn::UseTree::Path(p) = &u.tree else {
            continue;
        };
        if p.ident != "sqlx" {
            continue;
        }
        let range = item.span().byte_range();
        // Unused: every use of the name left is in this `use` item.
        let unused = |tree: &syn::UseTree| match tree {
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                POOL_NAMES.contains(&name.as_str())
                    && word_count(&converted, &name) == word_count(&source[range.clone()], &name)
            }
            _ => false,
        };
        let remove_line = |out: &mut Vec<Edit>| {
            let start = line_start(source, range.start);
            let end = line_end(source, range.end);
            if source[start..range.start].trim().is_empty()
                && source[range.end..end].trim().is_empty()
            {
                out.push(Edit {
                    range: start..end,
                    text: String::new(),
                });
            }
        };
        match &*p.tree {
            tree @ syn::UseTree::Name(_) if unused(tree) => remove_line(&mut out),
            syn::UseTree::Group(group) => {
                let kept: Vec<String> = group
                    .items
                    .iter()
                    .filter(|t| !unused(t))
                    .map(|t| source_of(source, t))
                    .collect();
                if kept.is_empty() {
                    remove_line(&mut out);
                } else if kept.len() < group.items.len() {
                    // The group is rewritten on one line: rustfmt restores a longer layout.
                    out.push(Edit {
                        range: group.span().byte_range(),
                        text: match kept.as_slice() {
                            [one] => one.clone(),
                            several => format!("{{{}}}", several.join(", ")),
                        },
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// The derives of every struct and enum of the file, by name (last path segments).
fn collect_derives(items: &[syn::Item], out: &mut std::collections::BTreeMap<String, Vec<String>>) {
    for item in items {
        let (ident, attrs) = match item {
            syn::Item::Struct(s) => (&s.ident, &s.attrs),
            syn::Item::Enum(e) => (&e.ident, &e.attrs),
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    collect_derives(items, out);
                }
                continue;
            }
            _ => continue,
        };
        let mut names = Vec::new();
        for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
            if let Ok(paths) = attr.parse_args_with(
                syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
            ) {
                names.extend(
                    paths
                        .iter()
                        .filter_map(|p| p.segments.last().map(|s| s.ident.to_string())),
                );
            }
        }
        out.insert(ident.to_string(), names);
    }
}

/// A type defined in the file (inside `Vec<..>`/`Option<..>` too) must derive
/// `needed` to be a reactive function's input or output: a note names what is missing.
fn check_derives(
    ty: &syn::Type,
    derives: &std::collections::BTreeMap<String, Vec<String>>,
    role: &str,
    needed: &[&str],
    notes: &mut Vec<(usize, String)>,
) {
    let syn::Type::Path(path) = ty else { return };
    let Some(last) = path.path.segments.last() else {
        return;
    };
    let name = last.ident.to_string();
    if name == "Vec" || name == "Option" {
        if let syn::PathArguments::AngleBracketed(args) = &last.arguments
            && let Some(syn::GenericArgument::Type(inner)) = args.args.first()
        {
            check_derives(inner, derives, role, needed, notes);
        }
        return;
    }
    let Some(have) = derives.get(&name) else {
        return;
    };
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|n| !have.iter().any(|h| h == n))
        .collect();
    if !missing.is_empty() {
        let paths: Vec<String> = missing
            .iter()
            .map(|m| match *m {
                "TS" => "ts_rs::TS".to_owned(),
                other => format!("serde::{other}"),
            })
            .collect();
        notes.push((
            ty.span().start().line,
            format!(
                "`{name}` is a reactive function's {role}: add `{}` to its `#[derive(...)]`",
                paths.join(", ")
            ),
        ));
    }
}

/// `(T, Some(E))` of `Result<T, E>`, `(T, None)` of `Result<T>`.
fn result_parts(ty: &syn::Type) -> Option<(&syn::Type, Option<&syn::Type>)> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let ok = types.next()?;
    Some((ok, types.next()))
}

/// A unified diff of the edits (3 lines of context), `--- a/PATH` / `+++ b/PATH`.
pub fn unified_diff(path: &str, conversion: &Conversion) -> String {
    let text = &conversion.original;
    // Changed blocks: line ranges of the original [first, end) and their new text.
    let mut blocks: Vec<(usize, usize, Vec<&Edit>)> = Vec::new();
    for edit in &conversion.edits {
        let first = line_of(text, edit.range.start) - 1;
        let zero_width_at_line_start =
            edit.range.is_empty() && line_start(text, edit.range.start) == edit.range.start;
        let end = if zero_width_at_line_start {
            first
        } else {
            line_of(text, edit.range.end.max(edit.range.start + 1) - 1)
        };
        // Edits on the same line go together; an insertion before a line is its own block.
        match blocks.last_mut() {
            Some(block) if first < block.1 => {
                block.1 = block.1.max(end);
                block.2.push(edit);
            }
            _ => blocks.push((first, end, vec![edit])),
        }
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let offsets: Vec<usize> = std::iter::once(0)
        .chain(lines.iter().scan(0, |at, l| {
            *at += l.len();
            Some(*at)
        }))
        .collect();
    // Each block as (old start, old lines, new lines).
    let changes: Vec<(usize, Vec<String>, Vec<String>)> = blocks
        .iter()
        .map(|(first, end, edits)| {
            let window = offsets[*first]..offsets[*end];
            let owned: Vec<Edit> = edits.iter().map(|e| (*e).clone()).collect();
            let new = apply(text, &owned, window.clone());
            (
                *first,
                text[window]
                    .split_inclusive('\n')
                    .map(str::to_owned)
                    .collect(),
                new.split_inclusive('\n').map(str::to_owned).collect(),
            )
        })
        .collect();
    let shown = path.trim_start_matches('/');
    let mut out = format!("--- a/{shown}\n+++ b/{shown}\n");
    const CONTEXT: usize = 3;
    let mut i = 0;
    let mut shift: isize = 0;
    while i < changes.len() {
        // Group changes whose contexts touch.
        let mut j = i;
        while j + 1 < changes.len()
            && changes[j + 1].0 <= changes[j].0 + changes[j].1.len() + 2 * CONTEXT
        {
            j += 1;
        }
        let start = changes[i].0.saturating_sub(CONTEXT);
        let last_end = changes[j].0 + changes[j].1.len();
        let end = (last_end + CONTEXT).min(lines.len());
        let mut body = String::new();
        let (mut old_count, mut new_count) = (0, 0);
        let mut at = start;
        let shift_before = shift;
        for change in &changes[i..=j] {
            for line in &lines[at..change.0] {
                push_line(&mut body, ' ', line);
                old_count += 1;
                new_count += 1;
            }
            for line in &change.1 {
                push_line(&mut body, '-', line);
                old_count += 1;
            }
            for line in &change.2 {
                push_line(&mut body, '+', line);
                new_count += 1;
            }
            shift += change.2.len() as isize - change.1.len() as isize;
            at = change.0 + change.1.len();
        }
        for line in &lines[at..end] {
            push_line(&mut body, ' ', line);
            old_count += 1;
            new_count += 1;
        }
        let new_start = (start as isize + shift_before) as usize;
        let _ = writeln!(
            out,
            "@@ -{},{old_count} +{},{new_count} @@",
            start + 1,
            new_start + 1
        );
        out.push_str(&body);
        i = j + 1;
    }
    out
}

fn push_line(out: &mut String, mark: char, line: &str) {
    out.push(mark);
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

pub(crate) fn run(args: &ConvertArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let (source, file) = read_rust_file(&args.file)?;
    let conversion = convert_source(&source, &file);
    if conversion.edits.is_empty() {
        writeln!(
            out,
            "{}: nothing to convert (no `async fn` taking a sqlx pool first)",
            args.file
        )?;
    } else if args.write {
        std::fs::write(&args.file, conversion.converted_text()).map_err(|source| {
            CliError::Write {
                path: args.file.clone(),
                source,
            }
        })?;
        writeln!(
            out,
            "{}: converted {}",
            args.file,
            conversion.converted.join(", ")
        )?;
    } else {
        out.write_all(unified_diff(&args.file, &conversion).as_bytes())?;
    }
    for (line, message) in &conversion.notes {
        writeln!(out, "{}:{line}: note: {message}", args.file)?;
    }
    Ok(if conversion.notes.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}
