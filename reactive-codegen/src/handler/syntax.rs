//! Small readings of handler syntax the walk relies on: plain bindings, input
//! patterns, macro bodies, query constructors and macros by name, Rust literals.

use std::collections::HashMap;

use syn::punctuated::Punctuated;
use syn::{Expr, Pat, Token};

use super::{QueryFamily, SqlApi};
use crate::sql::Literal;

/// `name` or `mut name` (the flag says `mut`), through a type ascription.
pub(super) fn plain_ident(pat: &Pat) -> Option<(String, bool)> {
    match pat {
        Pat::Ident(p) if p.subpat.is_none() => Some((p.ident.to_string(), p.mutability.is_some())),
        Pat::Type(p) => plain_ident(&p.pat),
        _ => None,
    }
}

/// Identifiers bound by the input pattern, with their field path: `input` → `[]`,
/// `OrgInput { organization_id, data: Data { name, .. } }` → `organization_id` →
/// `["organization_id"]`, `name` → `["data", "name"]`; `Json(input)` → `input` → `[]`.
/// `mut` bindings are left out (they can be reassigned).
pub(super) fn collect_input_pattern(
    pat: &Pat,
    path: &mut Vec<String>,
    out: &mut HashMap<String, Vec<String>>,
) {
    match pat {
        Pat::Ident(p) if p.subpat.is_none() && p.mutability.is_none() && p.by_ref.is_none() => {
            out.insert(p.ident.to_string(), path.clone());
        }
        Pat::Type(p) => collect_input_pattern(&p.pat, path, out),
        Pat::Reference(p) => collect_input_pattern(&p.pat, path, out),
        Pat::Paren(p) => collect_input_pattern(&p.pat, path, out),
        Pat::TupleStruct(p) if p.elems.len() == 1 => collect_input_pattern(&p.elems[0], path, out),
        Pat::Struct(p) => {
            for field in &p.fields {
                let member = match &field.member {
                    syn::Member::Named(ident) => ident.to_string(),
                    syn::Member::Unnamed(index) => index.index.to_string(),
                };
                path.push(member);
                collect_input_pattern(&field.pat, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Try to read a macro's body as comma-separated expressions (`format!`, `try_join!`, ...).
pub(super) fn macro_exprs(mac: &syn::Macro) -> Option<Punctuated<Expr, Token![,]>> {
    mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
        .ok()
}

pub(super) fn last_segment(path: &syn::Path) -> Option<String> {
    path.segments.last().map(|s| s.ident.to_string())
}

/// Strip `&`, `&mut`, `*`, parentheses and invisible groups.
pub(super) fn strip(expr: &Expr) -> &Expr {
    match expr {
        Expr::Reference(r) => strip(&r.expr),
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => strip(&u.expr),
        _ => expr,
    }
}

/// A query constructor by the last segment of its name.
pub(super) fn constructor_api(name: &str) -> Option<SqlApi> {
    let (base, unchecked) = match name.strip_suffix("_unchecked") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let (base, with_args) = match base.strip_suffix("_with") {
        Some(base) => (base, true),
        None => (base, false),
    };
    let family = match base {
        "query" => QueryFamily::Query,
        "query_as" => QueryFamily::QueryAs,
        "query_scalar" => QueryFamily::QueryScalar,
        "raw_sql" if !with_args && !unchecked => QueryFamily::RawSql,
        _ => return None,
    };
    Some(SqlApi {
        family,
        is_macro: false,
        with_args,
        unchecked,
        from_file: false,
    })
}

/// A query macro by name (`query`, `query_as_unchecked`, `query_file_scalar`, ...).
pub(super) fn macro_api(name: &str) -> Option<SqlApi> {
    let (base, unchecked) = match name.strip_suffix("_unchecked") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let (base, from_file) = match base.strip_prefix("query_file") {
        Some(rest) => (format!("query{rest}"), true),
        None => (base.to_owned(), false),
    };
    let family = match base.as_str() {
        "query" => QueryFamily::Query,
        "query_as" => QueryFamily::QueryAs,
        "query_scalar" => QueryFamily::QueryScalar,
        _ => return None,
    };
    Some(SqlApi {
        family,
        is_macro: true,
        with_args: false,
        unchecked,
        from_file,
    })
}

pub(super) fn rust_literal(lit: &syn::Lit, negative: bool) -> Option<Literal> {
    let sign = if negative { "-" } else { "" };
    match lit {
        syn::Lit::Str(s) if !negative => Some(Literal::String(s.value())),
        syn::Lit::Int(i) => Some(Literal::Number(format!("{sign}{}", i.base10_digits()))),
        syn::Lit::Float(f) => Some(Literal::Number(format!("{sign}{}", f.base10_digits()))),
        syn::Lit::Bool(b) if !negative => Some(Literal::Bool(b.value)),
        _ => None,
    }
}
