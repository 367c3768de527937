//! Analysing every function of a whole source file (for the CLI).

use std::collections::HashMap;

use proc_macro2::Span;

use super::{AnalyzeOptions, HandlerAnalysis, analyze_parts};

/// One function of a file, borrowed from the syntax tree.
#[derive(Debug, Clone, Copy)]
pub struct FnItem<'a> {
    /// Its attributes (outer attributes, doc comments included).
    pub attrs: &'a [syn::Attribute],
    /// Its visibility (`Inherited` for trait and impl methods without one).
    pub vis: Option<&'a syn::Visibility>,
    /// Its signature.
    pub sig: &'a syn::Signature,
    /// Its body.
    pub block: &'a syn::Block,
    /// A free function (top level or in an inline module), not a method.
    pub free: bool,
    /// Inside an inline module (`mod m { ... }`): the file's top-level `use`s do not reach it.
    pub nested: bool,
}

/// Every function of a file with a body: free functions, methods in `impl` blocks,
/// default methods of traits and functions in inline modules, in file order.
pub fn file_fns(file: &syn::File) -> Vec<FnItem<'_>> {
    let mut out = Vec::new();
    collect_fns(&file.items, false, &mut out);
    out
}

/// Analyse every function in a file (see [`file_fns`]), in file order. String
/// constants declared anywhere in the file (`const SQL: &str = "..."`) are visible
/// to every function as SQL; a name declared twice is not used (it could be
/// either). `options.consts` are added to (and override) the file's.
pub fn analyze_file(file: &syn::File, options: &AnalyzeOptions) -> Vec<HandlerAnalysis> {
    let options = file_options(file, options);
    file_fns(file)
        .into_iter()
        .map(|f| analyze_parts(f.sig, f.block, &options))
        .collect()
}

/// `options` with the file's string constants added (see [`analyze_file`]).
pub fn file_options(file: &syn::File, options: &AnalyzeOptions) -> AnalyzeOptions {
    let mut consts: HashMap<String, Option<(String, Span)>> = HashMap::new();
    collect_consts(&file.items, &mut consts);
    let mut options = options.clone();
    for (name, value) in consts {
        if let Some(value) = value {
            options.consts.entry(name).or_insert(value);
        }
    }
    options
}

fn collect_fns<'a>(items: &'a [syn::Item], nested: bool, out: &mut Vec<FnItem<'a>>) {
    for item in items {
        match item {
            syn::Item::Fn(f) => out.push(FnItem {
                attrs: &f.attrs,
                vis: Some(&f.vis),
                sig: &f.sig,
                block: &f.block,
                free: true,
                nested,
            }),
            syn::Item::Impl(imp) => {
                for item in &imp.items {
                    if let syn::ImplItem::Fn(f) = item {
                        out.push(FnItem {
                            attrs: &f.attrs,
                            vis: Some(&f.vis),
                            sig: &f.sig,
                            block: &f.block,
                            free: false,
                            nested,
                        });
                    }
                }
            }
            syn::Item::Trait(t) => {
                for item in &t.items {
                    if let syn::TraitItem::Fn(f) = item
                        && let Some(block) = &f.default
                    {
                        out.push(FnItem {
                            attrs: &f.attrs,
                            vis: None,
                            sig: &f.sig,
                            block,
                            free: false,
                            nested,
                        });
                    }
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    collect_fns(items, true, out);
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
