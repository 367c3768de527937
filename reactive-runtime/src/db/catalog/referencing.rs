//! What `SET NULL`/`SET DEFAULT` foreign keys give referencing columns, read from the
//! database; a column default counts when it is a plain literal.

use reactive_codegen::sql::Dialect;

use super::queries::referencing_query;
use super::rows::text_rows;
use super::{Tables, class_in};
use crate::db::backend::Backend;
use crate::types::{KeyValue, ReferencingValues};

/// Reads [`referencing_query`] into the new values each referencing column may take,
/// in canonical form for the column's class (`tables`).
pub(super) async fn read_referencing<DB: Backend>(
    pool: &sqlx::Pool<DB>,
    dialect: Dialect,
    tables: &Tables,
) -> Result<ReferencingValues, sqlx::Error> {
    let mut out = ReferencingValues::none();
    for row in text_rows(pool, referencing_query(dialect), 5).await? {
        let text = |i: usize| row[i].clone();
        let (Some(table), Some(column)) = (text(0), text(1)) else {
            continue;
        };
        let (table, column) = (table.to_lowercase(), column.to_lowercase());
        let actions = [text(2).unwrap_or_default(), text(3).unwrap_or_default()];
        let class = class_in(tables, &table, &column);
        for action in actions {
            let value = match action.to_ascii_uppercase().as_str() {
                "N" | "SET NULL" => Some(KeyValue::null()),
                "D" | "SET DEFAULT" => match dialect {
                    Dialect::MySql => None,
                    Dialect::Postgres | Dialect::Sqlite => {
                        default_value(&text(4).unwrap_or_default(), dialect)
                    }
                },
                _ => continue,
            };
            out.add(
                &table,
                &column,
                value.and_then(|v| class.canonical(&v, dialect)),
            );
        }
    }
    Ok(out)
}

/// The value of a column default given as SQL text (`''`: no default, which is NULL);
/// `None` (unknown) unless it is a plain literal: a number, a quoted string or a
/// boolean, possibly in parentheses and with a PostgreSQL cast (`'x'::text`, `(-1)`).
fn default_value(sql: &str, dialect: Dialect) -> Option<KeyValue> {
    let mut text = sql.trim();
    while let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        text = inner.trim();
    }
    if text.is_empty() || text.eq_ignore_ascii_case("null") {
        return Some(KeyValue::null());
    }
    if let Some(rest) = text.strip_prefix('\'') {
        // A quoted string ('' escapes a quote), then nothing or a cast.
        let mut value = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                value.push(c);
                continue;
            }
            if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                value.push('\'');
                chars.next();
                continue;
            }
            let tail = rest[i + 1..].trim();
            return (tail.is_empty() || is_cast(tail)).then(|| KeyValue::from_str(&value, dialect));
        }
        return None;
    }
    let (literal, tail) = text.split_once("::").unwrap_or((text, ""));
    if !tail.is_empty() && !is_cast(&format!("::{tail}")) {
        return None;
    }
    let literal = literal.trim();
    let literal = literal
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(literal)
        .trim();
    if literal.eq_ignore_ascii_case("null") {
        return Some(KeyValue::null());
    }
    let numeric = literal.strip_prefix('-').unwrap_or(literal);
    if !numeric.is_empty()
        && numeric.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && numeric.bytes().any(|b| b.is_ascii_digit())
    {
        return Some(KeyValue::from_str(literal, dialect));
    }
    if literal.eq_ignore_ascii_case("true") || literal.eq_ignore_ascii_case("false") {
        return Some(KeyValue::from_bool(literal.eq_ignore_ascii_case("true")));
    }
    None
}

/// `true` for a PostgreSQL cast to a plain type name (`::text`, `::character varying`,
/// `::numeric(10,2)`), as `pg_get_expr` writes after a literal.
fn is_cast(tail: &str) -> bool {
    let Some(ty) = tail.strip_prefix("::") else {
        return false;
    };
    !ty.is_empty()
        && ty.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b' ' | b'_' | b'(' | b')' | b',' | b'"' | b'[' | b']')
        })
        && !ty.contains("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_defaults_are_read_when_they_are_literals() {
        let pg = Dialect::Postgres;
        let v = |s: &str| default_value(s, pg);
        assert_eq!(v(""), Some(KeyValue::null()));
        assert_eq!(v("NULL::bigint"), Some(KeyValue::null()));
        assert_eq!(v("0"), Some(KeyValue::from_i64(0)));
        assert_eq!(v("(-1)"), Some(KeyValue::from_i64(-1)));
        assert_eq!(v("'-1'::integer"), Some(KeyValue::from_i64(-1)));
        assert_eq!(v("'none'::text"), Some(KeyValue::from_str("none", pg)));
        assert_eq!(
            v("'it''s'::character varying"),
            Some(KeyValue::from_str("it's", pg))
        );
        assert_eq!(v("true"), Some(KeyValue::from_bool(true)));
        assert_eq!(v("nextval('t_id_seq'::regclass)"), None);
        assert_eq!(v("gen_random_uuid()"), None);
        assert_eq!(v("'a'::text || 'b'::text"), None);
        assert_eq!(v("CURRENT_TIMESTAMP"), None);
    }
}
