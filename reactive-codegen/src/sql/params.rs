//! Bind parameters and literals: the value side of key predicates.
//!
//! Placeholders are numbered from the token stream, in text order, so the
//! numbering does not depend on the order in which the analyser walks the AST.
//! The rule is SQLite's, which reduces to the simple cases for the other backends:
//!
//! - `$N` / `?N`: index `N` (PostgreSQL's `$N`, SQLite's `?NNN`);
//! - `?`: one more than the largest index assigned so far (so a run of `?` is 1, 2, 3, ...);
//! - `:name`, `@name`, `$name`: the index given at the name's first appearance, which is
//!   one more than the largest index assigned so far (so named parameters alone are
//!   numbered in order of first appearance).

use std::collections::HashMap;

use sqlparser::ast::{Expr, UnaryOperator, Value, ValueWithSpan};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use super::casts::{canonical_uuid, strip_casts};
use super::model::{Dialect, Literal, Param, ValueRef};

/// The placeholders of one SQL string, keyed by their position in the text, and
/// the dialect its values and casts are read in.
#[derive(Debug, Default)]
pub(crate) struct Params {
    by_location: HashMap<(u64, u64), Param>,
    pub(crate) dialect: Dialect,
}

impl Params {
    /// Number every placeholder token in `tokens` (text order).
    pub(crate) fn from_tokens(tokens: &[TokenWithSpan], dialect: Dialect) -> Self {
        let mut by_location = HashMap::new();
        let mut named: HashMap<String, usize> = HashMap::new();
        let mut max = 0usize;
        for (i, token) in tokens.iter().enumerate() {
            // `?`, `?N`, `$N`, `$name` are single tokens; `:name` and `@name` are a
            // `:` / `@` immediately followed by a word or number, which the parser
            // joins into one placeholder starting at the sigil.
            let joined;
            let text = match (&token.token, tokens.get(i + 1).map(|t| &t.token)) {
                (Token::Placeholder(text), _) => text.as_str(),
                (Token::Colon | Token::AtSign, Some(Token::Word(w))) if w.quote_style.is_none() => {
                    joined = format!("{}{}", token.token, w.value);
                    joined.as_str()
                }
                (Token::Colon | Token::AtSign, Some(Token::Number(n, false))) => {
                    joined = format!("{}{}", token.token, n);
                    joined.as_str()
                }
                _ => continue,
            };
            let param = match numbered(text) {
                Some(Ok(index)) => {
                    max = max.max(index);
                    Param { index, name: None }
                }
                // `$0`, `?99999999999999999999`: not a usable bind position.
                Some(Err(())) => continue,
                None if text == "?" => {
                    max += 1;
                    Param {
                        index: max,
                        name: None,
                    }
                }
                None => {
                    let index = *named.entry(text.to_owned()).or_insert_with(|| {
                        max += 1;
                        max
                    });
                    Param {
                        index,
                        name: Some(text[sigil_len(text)..].to_owned()),
                    }
                }
            };
            by_location.insert(key(token.span.start), param);
        }
        Self {
            by_location,
            dialect,
        }
    }

    /// The parameter at this position in the text, if the tokenizer saw one there.
    fn at(&self, location: Location) -> Option<&Param> {
        self.by_location.get(&key(location))
    }

    /// The value of an expression when it is a literal or a bind parameter
    /// (parentheses, a sign on a number and the casts of [`strip_casts`] are seen
    /// through).
    pub(crate) fn value_of(&self, expr: &Expr) -> Option<ValueRef> {
        let (expr, uuid) = strip_casts(expr, self.dialect);
        let value = self.uncast_value_of(expr)?;
        if !uuid {
            return Some(value);
        }
        // The database compares the uuid, whose text is canonical; a literal is
        // rewritten to that text, a literal that is no uuid is an error there.
        match value {
            ValueRef::Literal(Literal::String(s)) => {
                Some(ValueRef::Literal(Literal::String(canonical_uuid(&s)?)))
            }
            ValueRef::Literal(Literal::Number(_) | Literal::Bool(_)) => None,
            other => Some(other),
        }
    }

    fn uncast_value_of(&self, expr: &Expr) -> Option<ValueRef> {
        match expr {
            Expr::Value(value) => self.value(value),
            Expr::UnaryOp {
                op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
                expr,
            } => match strip_nested(expr) {
                Expr::Value(ValueWithSpan {
                    value: Value::Number(n, _),
                    ..
                }) => {
                    let sign = if matches!(op, UnaryOperator::Minus) {
                        "-"
                    } else {
                        ""
                    };
                    Some(ValueRef::Literal(Literal::Number(format!("{sign}{n}"))))
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn value(&self, value: &ValueWithSpan) -> Option<ValueRef> {
        let literal = match &value.value {
            Value::Placeholder(_) => {
                return self.at(value.span.start).cloned().map(ValueRef::Param);
            }
            Value::Number(n, _) => Literal::Number(n.clone()),
            Value::SingleQuotedString(s)
            | Value::DoubleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::UnicodeStringLiteral(s)
            | Value::NationalStringLiteral(s)
            | Value::TripleSingleQuotedString(s)
            | Value::TripleDoubleQuotedString(s) => Literal::String(s.clone()),
            Value::DollarQuotedString(s) => Literal::String(s.value.clone()),
            Value::Boolean(b) => Literal::Bool(*b),
            Value::Null => Literal::Null,
            // Byte strings, hex and raw literals: their comparison with a column value
            // is not something a key match can be sure of.
            _ => return None,
        };
        Some(ValueRef::Literal(literal))
    }
}

/// `Some(Ok(n))` for `$N` / `?N`, `Some(Err(()))` for an unusable number, `None` otherwise.
fn numbered(text: &str) -> Option<Result<usize, ()>> {
    let digits = text.strip_prefix('$').or_else(|| text.strip_prefix('?'))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<usize>().ok().filter(|&n| n > 0).ok_or(()))
}

fn sigil_len(text: &str) -> usize {
    text.chars().next().map_or(0, char::len_utf8)
}

fn key(location: Location) -> (u64, u64) {
    (location.line, location.column)
}

/// `expr` without enclosing parentheses.
pub(crate) fn strip_nested(mut expr: &Expr) -> &Expr {
    while let Expr::Nested(inner) = expr {
        expr = inner;
    }
    expr
}
