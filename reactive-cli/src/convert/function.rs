//! The edits for each converted function of a file.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use syn::spanned::Spanned;

use super::derives::{check_derives, collect_derives};
use super::imports::{imported, unused_pool_imports};
use super::text::{first_line, line_end, line_start};
use super::types::{connection_database, executor_database, owned_type, pool_type, result_parts};
use super::{Conversion, Edit};
use crate::{
    dialect_name, pascal_case, procedure_name, suggest::reactive_attr, suggest::source_of,
};
use reactive_codegen::handler::{self, AnalyzeOptions, DiagnosticKind};
use reactive_codegen::sql::Dialect;

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
