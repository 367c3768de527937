//! Key predicates: the conjuncts of a `WHERE` / `ON` condition that pin a column
//! to parameters or literals.
//!
//! Recognized (parentheses, and the casts of the `casts` module, are seen through
//! on both sides):
//! - `col = v` and `v = col`;
//! - `col IN (v1, v2, ...)` (not `NOT IN`, not an empty list);
//! - `col = ANY(ARRAY[v1, v2, ...])` (or `SOME`): the same as `IN`;
//! - `col = v1 OR col = v2 OR col IN (...)`, all on the same column: becomes one `IN`.
//!
//! where `v` is a literal or a bind parameter. Anything else (`col = other_col`, ranges,
//! `LIKE`, `NOT`, functions, lossy casts, `OR` across columns) is not a key and narrows
//! nothing. `col = ANY($1)` is not a key either: its values are the elements of one
//! array-valued parameter, and a [`ValueRef::Param`] stands for one value (the runtime
//! would compare the whole array with the column).

use sqlparser::ast::{Array, BinaryOperator, Expr, Ident, InTarget};

use super::casts::strip_casts;
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

/// `col = v`, `v = col`, `col IN (v, ...)` or `col = ANY(ARRAY[v, ...])`.
fn simple_key<'a>(expr: &'a Expr, params: &Params) -> Option<Key<'a>> {
    // A text cast on the column side keeps the column as the key: the database
    // compares the column's text form, which is its canonical key value for the ids
    // and plain strings keys are made of. Not a uuid cast: `text_col::uuid` equals
    // one uuid for many spellings of it (case, braces), which the runtime keeps apart.
    let key_column = |e: &'a Expr| match strip_casts(e, params.dialect) {
        (column, false) => column_of(column),
        (_, true) => None,
    };
    match strip_nested(expr) {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            if let (Some(column), Some(value)) = (key_column(left), params.value_of(right)) {
                return Some(Key {
                    column,
                    values: vec![value],
                });
            }
            let (column, value) = (key_column(right)?, params.value_of(left)?);
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
        } => Some(Key {
            column: key_column(expr)?,
            values: values_of(list, params)?,
        }),
        Expr::AnyOp {
            left,
            compare_op: BinaryOperator::Eq,
            right,
            ..
        } => match strip_nested(right) {
            Expr::Array(Array { elem, .. }) => Some(Key {
                column: key_column(left)?,
                values: values_of(elem, params)?,
            }),
            // `= ANY($1)`, `= ANY($1::uuid[])`, `= ANY('{1,2}')`, `= ANY(SELECT ...)`:
            // not a list of values the model can name (see the module docs).
            _ => None,
        },
        _ => None,
    }
}

/// The values of a non-empty list whose items are all values, without duplicates.
fn values_of(list: &[Expr], params: &Params) -> Option<Vec<ValueRef>> {
    if list.is_empty() {
        return None;
    }
    let mut values = Vec::with_capacity(list.len());
    for item in list {
        let v = params.value_of(item)?;
        if !values.contains(&v) {
            values.push(v);
        }
    }
    Some(values)
}
