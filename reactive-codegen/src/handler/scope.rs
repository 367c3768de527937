//! The bindings visible in a handler body, gathered before the walk: how often each
//! name is bound, the plain `let`s and the `const`s (what SQL and binds resolve through).

use std::collections::HashMap;

use syn::Expr;
use syn::visit::{self, Visit};

use super::syntax::{macro_exprs, plain_ident};

/// Bindings visible in the body: how often each name is bound, plain `let`s, and `const`s.
#[derive(Default)]
pub(super) struct Scope {
    /// Number of patterns binding each identifier anywhere in the body.
    patterns: HashMap<String, usize>,
    /// `let name = init;` (plain identifier patterns): `(mut, init)` per occurrence.
    lets: HashMap<String, Vec<(bool, Option<Expr>)>>,
    /// `const NAME: T = expr;` items anywhere in the body; `None` when defined twice.
    consts: HashMap<String, Option<Expr>>,
}

impl Scope {
    pub(super) fn pattern_count(&self, name: &str) -> usize {
        self.patterns.get(name).copied().unwrap_or(0)
    }

    /// The initializer of a local bound exactly once in the body, by a non-`mut` `let`.
    pub(super) fn single_let(&self, name: &str) -> Option<&Expr> {
        if self.pattern_count(name) != 1 {
            return None;
        }
        match self.lets.get(name).map(Vec::as_slice) {
            Some([(false, Some(init))]) => Some(init),
            _ => None,
        }
    }

    pub(super) fn constant(&self, name: &str) -> Option<&Expr> {
        if self.pattern_count(name) != 0 {
            return None;
        }
        self.consts.get(name).and_then(Option::as_ref)
    }
}

impl<'ast> Visit<'ast> for Scope {
    fn visit_local(&mut self, node: &'ast syn::Local) {
        if let Some((name, mutable)) = plain_ident(&node.pat) {
            let init = node
                .init
                .as_ref()
                .filter(|init| init.diverge.is_none())
                .map(|init| (*init.expr).clone());
            self.lets.entry(name).or_default().push((mutable, init));
        }
        visit::visit_local(self, node);
    }

    fn visit_pat_ident(&mut self, node: &'ast syn::PatIdent) {
        *self.patterns.entry(node.ident.to_string()).or_default() += 1;
        visit::visit_pat_ident(self, node);
    }

    fn visit_item_const(&mut self, node: &'ast syn::ItemConst) {
        self.consts
            .entry(node.ident.to_string())
            .and_modify(|seen| *seen = None)
            .or_insert_with(|| Some((*node.expr).clone()));
        visit::visit_item_const(self, node);
    }

    fn visit_macro(&mut self, node: &'ast syn::Macro) {
        if let Some(exprs) = macro_exprs(node) {
            for expr in &exprs {
                self.visit_expr(expr);
            }
        }
    }
}
