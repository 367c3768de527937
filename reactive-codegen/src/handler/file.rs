//! Analysing every function of a whole source file (for the CLI).

use std::collections::HashMap;

use proc_macro2::Span;

use super::{AnalyzeOptions, HandlerAnalysis, analyze_parts};

/// Analyse every function in a file: free functions, methods in `impl` blocks,
/// default methods of traits and functions in inline modules, in file order. String constants declared anywhere
/// in the file (`const SQL: &str = "..."`) are visible to every function as SQL;
/// a name declared twice is not used (it could be either). `options.consts` are
/// added to (and override) the file's.
pub fn analyze_file(file: &syn::File, options: &AnalyzeOptions) -> Vec<HandlerAnalysis> {
    let mut consts: HashMap<String, Option<(String, Span)>> = HashMap::new();
    collect_consts(&file.items, &mut consts);
    let mut options = options.clone();
    for (name, value) in consts {
        if let Some(value) = value {
            options.consts.entry(name).or_insert(value);
        }
    }
    let mut out = Vec::new();
    collect_fns(&file.items, &options, &mut out);
    out
}

fn collect_fns(items: &[syn::Item], options: &AnalyzeOptions, out: &mut Vec<HandlerAnalysis>) {
    for item in items {
        match item {
            syn::Item::Fn(f) => out.push(analyze_parts(&f.sig, &f.block, options)),
            syn::Item::Impl(imp) => {
                for item in &imp.items {
                    if let syn::ImplItem::Fn(f) = item {
                        out.push(analyze_parts(&f.sig, &f.block, options));
                    }
                }
            }
            syn::Item::Trait(t) => {
                for item in &t.items {
                    if let syn::TraitItem::Fn(f) = item
                        && let Some(block) = &f.default
                    {
                        out.push(analyze_parts(&f.sig, block, options));
                    }
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    collect_fns(items, options, out);
                }
            }
            _ => {}
        }
    }
}

fn collect_consts(items: &[syn::Item], out: &mut HashMap<String, Option<(String, Span)>>) {
    let mut record = |name: String, expr: &syn::Expr| {
        let value = match expr {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some((s.value(), s.span())),
            _ => None,
        };
        out.entry(name)
            .and_modify(|seen| *seen = None)
            .or_insert(value);
    };
    let mut nested = Vec::new();
    for item in items {
        match item {
            syn::Item::Const(c) => record(c.ident.to_string(), &c.expr),
            syn::Item::Static(s) => record(s.ident.to_string(), &s.expr),
            syn::Item::Impl(imp) => {
                for item in &imp.items {
                    if let syn::ImplItem::Const(c) = item {
                        record(c.ident.to_string(), &c.expr);
                    }
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    nested.push(items);
                }
            }
            _ => {}
        }
    }
    for items in nested {
        collect_consts(items, out);
    }
}
