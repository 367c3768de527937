//! `#[derive(Relations)]`: the relations map as an attribute.
//!
//! ```text
//! #[derive(Relations)]
//! #[relations(
//!     agent(organization, message.from_agent_id, memory.agent_id),
//!     organization(agent.organization_id, tool.organization_id),
//! )]
//! pub struct Schema;
//! ```
//!
//! `agent(message.from_agent_id)`: a change to the `agent` row with `id = X` also
//! counts as a change to the `message` rows with `from_agent_id = X`. A foreign key to
//! another column than `id` names it: `agent(message.agent_code = code)` (rows whose
//! `agent_code` holds the changed agent's `code`). A bare table (`agent(organization)`)
//! means the whole table. The derive submits one `RelationsDef` with every edge
//! `(from table, from key column, to table, to column)`.
//! Every malformed entry and duplicate is reported, all at once.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::quote;
use syn::spanned::Spanned;

use super::ctxt::Ctxt;

/// One edge: a change to `from` also changes `to` (rows with `column = id`, or all rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The table whose change propagates.
    pub from: String,
    /// The table it propagates to.
    pub to: String,
    /// The column of `to` holding the `from` row's key; `None` = the whole table.
    pub column: Option<String>,
    /// The key column of `from` that `column` holds (`id` unless written `= key`).
    pub key: String,
}

/// Expand `#[derive(Relations)]`.
pub fn derive_relations(input: TokenStream) -> TokenStream {
    let input: syn::DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let cx = Ctxt::new();
    let edges = parse_edges(&input, &cx);
    if let Err(error) = cx.check() {
        return error.to_compile_error();
    }
    let edges = edges.iter().map(|edge| {
        let (from, key, to) = (&edge.from, &edge.key, &edge.to);
        let column = match &edge.column {
            Some(column) => quote!(::core::option::Option::Some(#column)),
            None => quote!(::core::option::Option::None),
        };
        quote! { (#from, #key, #to, #column) }
    });
    quote! {
        const _: () = {
            ::reactive::__private::inventory::submit! {
                ::reactive::__private::RelationsDef { edges: &[#(#edges),*] }
            }
        };
    }
}

/// Read every `#[relations(...)]` attribute; errors are collected.
pub(crate) fn parse_edges(input: &syn::DeriveInput, cx: &Ctxt) -> Vec<Edge> {
    parse_edges_spanned(input, cx)
        .into_iter()
        .map(|(edge, _)| edge)
        .collect()
}

/// The edges of a `#[derive(Relations)]` input, each with the span of its target
/// (`message.from_agent_id`), and every error, one per message: the derive's own
/// reading, for tools that check a declaration against a schema (`reactive relations
/// check`).
pub fn relation_edges(input: &syn::DeriveInput) -> (Vec<(Edge, Span)>, Vec<syn::Error>) {
    let cx = Ctxt::new();
    let edges = parse_edges_spanned(input, &cx);
    (edges, cx.into_errors())
}

/// [`parse_edges`], with the span of each edge's target (`message.from_agent_id`).
fn parse_edges_spanned(input: &syn::DeriveInput, cx: &Ctxt) -> Vec<(Edge, Span)> {
    let mut edges = Vec::new();
    let mut seen: Vec<(String, Span)> = Vec::new();
    let mut found = false;
    for attr in input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("relations"))
    {
        found = true;
        let tokens = match &attr.meta {
            syn::Meta::List(list) => list.tokens.clone(),
            other => {
                cx.error_spanned(
                    other.span(),
                    "expected `#[relations(table(other_table.column, ...), ...)]`",
                );
                continue;
            }
        };
        for chunk in split_commas(tokens) {
            parse_table_entry(&chunk, &mut seen, &mut edges, cx);
        }
    }
    if !found {
        cx.error_spanned(
            input.ident.span(),
            "`#[derive(Relations)]` needs a `#[relations(...)]` attribute, e.g. `#[relations(agent(message.from_agent_id))]`",
        );
    }
    edges
}

/// `agent(organization, message.from_agent_id)`.
fn parse_table_entry(
    chunk: &[TokenTree],
    seen: &mut Vec<(String, Span)>,
    edges: &mut Vec<(Edge, Span)>,
    cx: &Ctxt,
) {
    let (ident, group) = match chunk {
        [TokenTree::Ident(ident), TokenTree::Group(group)]
            if group.delimiter() == Delimiter::Parenthesis =>
        {
            (ident, group)
        }
        [TokenTree::Ident(ident)] => {
            cx.error_spanned(
                ident.span(),
                format!(
                    "`{ident}` lists no related tables: write `{ident}(other_table.column, ...)`"
                ),
            );
            return;
        }
        _ => {
            cx.syn_error(syn::Error::new_spanned(
                chunk.iter().cloned().collect::<TokenStream>(),
                "malformed relation: expected `table(other_table.column, ...)`, for example `agent(message.from_agent_id, organization)`",
            ));
            return;
        }
    };
    let from = normalize(&ident.to_string());
    if let Some((_, _first)) = seen.iter().find(|(t, _)| *t == from) {
        cx.error_spanned(
            ident.span(),
            format!("duplicate relations for table `{from}`: list all of its related tables in one `{from}(...)` entry"),
        );
        return;
    }
    seen.push((from.clone(), ident.span()));
    let mut targets: Vec<(String, Option<String>, String)> = Vec::new();
    let inner = split_commas(group.stream());
    if inner.is_empty() {
        cx.error_spanned(
            group.span(),
            format!("`{from}()` lists no related tables: write `{from}(other_table.column, ...)`"),
        );
    }
    for target in inner {
        let parsed = match target.as_slice() {
            [TokenTree::Ident(table)] => {
                Some((normalize(&table.to_string()), None, "id".to_owned()))
            }
            [
                TokenTree::Ident(table),
                TokenTree::Punct(dot),
                TokenTree::Ident(column),
            ] if dot.as_char() == '.' => Some((
                normalize(&table.to_string()),
                Some(normalize(&column.to_string())),
                "id".to_owned(),
            )),
            [
                TokenTree::Ident(table),
                TokenTree::Punct(dot),
                TokenTree::Ident(column),
                TokenTree::Punct(eq),
                TokenTree::Ident(key),
            ] if dot.as_char() == '.' && eq.as_char() == '=' => Some((
                normalize(&table.to_string()),
                Some(normalize(&column.to_string())),
                normalize(&key.to_string()),
            )),
            _ => {
                cx.syn_error(syn::Error::new_spanned(
                    target.iter().cloned().collect::<TokenStream>(),
                    "malformed related table: expected `table` (the whole table), `table.column` (rows whose `column` holds the changed row's id) or `table.column = key` (rows whose `column` holds the changed row's `key`)",
                ));
                None
            }
        };
        if let Some(parsed) = parsed {
            if targets.iter().any(|t| t.0 == parsed.0 && t.1 == parsed.1) {
                let shown = match &parsed.1 {
                    Some(column) => format!("{}.{column}", parsed.0),
                    None => parsed.0.clone(),
                };
                cx.syn_error(syn::Error::new_spanned(
                    target.iter().cloned().collect::<TokenStream>(),
                    format!("`{shown}` is listed twice for `{from}`"),
                ));
                continue;
            }
            targets.push(parsed.clone());
            let span = target.first().map_or(group.span(), TokenTree::span);
            edges.push((
                Edge {
                    from: from.clone(),
                    to: parsed.0,
                    column: parsed.1,
                    key: parsed.2,
                },
                span,
            ));
        }
    }
}

fn normalize(name: &str) -> String {
    name.strip_prefix("r#").unwrap_or(name).to_lowercase()
}

/// Split a token stream at top-level commas; empty chunks (trailing comma) are dropped.
fn split_commas(tokens: TokenStream) -> Vec<Vec<TokenTree>> {
    let mut chunks = vec![Vec::new()];
    for token in tokens {
        match &token {
            TokenTree::Punct(p) if p.as_char() == ',' => chunks.push(Vec::new()),
            _ => chunks.last_mut().map(|c| c.push(token)).unwrap_or_default(),
        }
    }
    chunks.retain(|c| !c.is_empty());
    chunks
}
