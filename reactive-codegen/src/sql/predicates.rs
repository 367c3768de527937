//! Key predicates: the conjuncts of a `WHERE` / `ON` condition that pin a column
//! to parameters or literals.
//!
//! Recognized (parentheses are seen through):
//! - `col = v` and `v = col`;
//! - `col IN (v1, v2, ...)` (not `NOT IN`, not an empty list);
//! - `col = v1 OR col = v2 OR col IN (...)`, all on the same column: becomes one `IN`.
//!
//! where `v` is a literal or a bind parameter. Anything else (`col = other_col`, ranges,
//! `LIKE`, `NOT`, functions, casts, `OR` across columns) is not a key and narrows nothing.

use sqlparser::ast::{BinaryOperator, Expr, Ident, InTarget};

use super::model::ValueRef;
use super::params::{Params, strip_nested};

/// A column as written: optional qualifier (the part before the column name) and name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColumnRef<'a> {
    pub(crate) qualifier: Option<&'a Ident>,
    pub(crate) column: &'a Ident,
}

impl ColumnRef<'_> {
    fn same_as(&self, other: &ColumnRef<'_>) -> bool {
        fn eq(a: &Ident, b: &Ident) -> bool {
            a.value == b.value && a.quote_style == b.quote_style
        }
        eq(self.column, other.column)
            && match (self.qualifier, other.qualifier) {
                (None, None) => true,
                (Some(a), Some(b)) => eq(a, b),
                _ => false,
            }
    }
}

/// A key predicate before name resolution.
#[derive(Debug)]
pub(crate) struct Key<'a> {
    pub(crate) column: ColumnRef<'a>,
    pub(crate) values: Vec<ValueRef>,
}

/// The top-level conjuncts of a condition (`a AND (b AND c)` → `a`, `b`, `c`), in order.
pub(crate) fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    split(expr, &BinaryOperator::And)
}

fn split<'a>(expr: &'a Expr, op: &BinaryOperator) -> Vec<&'a Expr> {
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Nested(inner) => stack.push(inner),
            Expr::BinaryOp { left, op: o, right } if o == op => {
                stack.push(right);
                stack.push(left);
            }
            other => out.push(other),
        }
    }
    out
}

/// The column of an expression that is a plain column reference.
pub(crate) fn column_of(expr: &Expr) -> Option<ColumnRef<'_>> {
    match strip_nested(expr) {
        Expr::Identifier(column) => Some(ColumnRef {
            qualifier: None,
            column,
        }),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [] => None,
            [column] => Some(ColumnRef {
                qualifier: None,
                column,
            }),
            [.., qualifier, column] => Some(ColumnRef {
                qualifier: Some(qualifier),
                column,
            }),
        },
        _ => None,
    }
}

/// The key predicate a conjunct states, if it is one.
pub(crate) fn key_of<'a>(expr: &'a Expr, params: &Params) -> Option<Key<'a>> {
    let disjuncts = split(expr, &BinaryOperator::Or);
    let mut keys = disjuncts.into_iter().map(|d| simple_key(d, params));
    let mut key = keys.next()??;
    for next in keys {
        let next = next?;
        if !key.column.same_as(&next.column) {
            return None;
        }
        for v in next.values {
            if !key.values.contains(&v) {
                key.values.push(v);
            }
        }
    }
    Some(key)
}

/// `col = v`, `v = col` or `col IN (v, ...)`.
fn simple_key<'a>(expr: &'a Expr, params: &Params) -> Option<Key<'a>> {
    match strip_nested(expr) {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            if let (Some(column), Some(value)) = (column_of(left), params.value_of(right)) {
                return Some(Key {
                    column,
                    values: vec![value],
                });
            }
            let (column, value) = (column_of(right)?, params.value_of(left)?);
            Some(Key {
                column,
                values: vec![value],
            })
        }
        Expr::In {
            expr,
            target: InTarget::List(list),
            negated: false,
            ..
        } if !list.is_empty() => {
            let column = column_of(expr)?;
            let mut values = Vec::with_capacity(list.len());
            for item in list {
                let v = params.value_of(item)?;
                if !values.contains(&v) {
                    values.push(v);
                }
            }
            Some(Key { column, values })
        }
        _ => None,
    }
}
