//! `use` items: what the file imports, and the pool imports a conversion leaves unused.

use std::collections::BTreeSet;

use syn::spanned::Spanned;

use super::text::{line_end, line_start};
use super::{Edit, apply};
use crate::suggest::source_of;

/// Names imported by `use` items at the top level (`*` for a glob of `reactive`; a
/// glob of `sqlx` or of its driver modules brings the database types).
pub(super) fn imported(items: &[syn::Item]) -> BTreeSet<String> {
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
pub(super) fn unused_pool_imports(source: &str, file: &syn::File, edits: &[Edit]) -> Vec<Edit> {
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
