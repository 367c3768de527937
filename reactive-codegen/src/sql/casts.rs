//! Casts the analyser sees through: those that keep a key value's canonical form.
//!
//! The runtime compares key values as canonical text (numbers by value, strings as
//! written, see `reactive-runtime/src/engine/key.rs`). A cast between a key predicate's
//! column and its value can be ignored only when the value the database compares is
//! the one the runtime will compare; otherwise the predicate must be dropped (wider).
//!
//! Seen through, as `CAST(e AS t)`, `e::t` or MySQL's `CONVERT(e, t)`, on either side
//! of `=` / `IN` / `= ANY(ARRAY[...])`, nested or in parentheses:
//! - to a text type without a length (`text`, `varchar`, `character varying`,
//!   `string`, and `char` outside PostgreSQL, where MySQL's `CAST(e AS CHAR)` and
//!   SQLite's `CHAR` affinity do not truncate): an id or a plain string keeps its text.
//!   On the column side (`col::text = $1`) the database compares the column's text
//!   form, which is the column's value for the ids and plain strings keys are made of,
//!   so `col` stays the key; values the runtime cannot canonicalise are dropped there.
//! - to `uuid`, on the value side only: a uuid's text form is its canonical form.
//!   A string *literal* cast to `uuid` is rewritten to that form here
//!   (`'{A0EE...}'::uuid` → `'a0ee...'`); one that is not a uuid is dropped (the
//!   database rejects it anyway). A bound parameter keeps the text it is bound
//!   with: the runtime's canonical form does not fold a uuid written in upper case
//!   or with braces, the same known limit as for an uncast `id = 'A0EE...'` (bind
//!   `Uuid` values, or lower-case strings).
//!
//! Not seen through (the predicate is dropped):
//! - a length or precision (`varchar(3)`, `char(2)`): the value is truncated;
//! - a `uuid` cast on the column side (`text_col::uuid = $1`): many spellings of one
//!   uuid are equal there, and the runtime compares the column's text;
//! - PostgreSQL's `char` (that is `char(1)`), `bpchar` and `citext` (blank-padded or
//!   case-insensitive comparison);
//! - numeric, date and time types: casts round (`1.5::int` is 2), truncate (SQLite
//!   and MySQL turn `'12abc'` into 12) or reformat, so the bound value's canonical
//!   form may differ from the value compared;
//! - `CONVERT(e USING charset)` (characters the charset lacks become `?`), `COLLATE`,
//!   and every function call (`lower(col)`, `uuid($1)`).

use sqlparser::ast::{CastKind, DataType, Expr};

use super::model::Dialect;

/// What a cast that keeps key values converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A text type without a length.
    Text,
    /// `uuid`.
    Uuid,
}

/// The operand and target of `expr` when it is a cast that keeps key values.
pub(crate) fn keeping_cast(expr: &Expr, dialect: Dialect) -> Option<(&Expr, Target)> {
    let (inner, data_type) = match expr {
        Expr::Cast {
            kind: CastKind::Cast | CastKind::DoubleColon,
            expr,
            data_type,
            format: None,
        } => (expr, data_type),
        Expr::Convert {
            is_try: false,
            expr,
            data_type: Some(data_type),
            charset: None,
            target_before_value: false,
            styles,
        } if styles.is_empty() => (expr, data_type),
        _ => return None,
    };
    Some((inner, target(data_type, dialect)?))
}

fn target(data_type: &DataType, dialect: Dialect) -> Option<Target> {
    match data_type {
        DataType::Text
        | DataType::Varchar(None)
        | DataType::CharVarying(None)
        | DataType::CharacterVarying(None)
        | DataType::String(None) => Some(Target::Text),
        // PostgreSQL's `char` is `char(1)`: it truncates.
        DataType::Char(None) | DataType::Character(None) if dialect != Dialect::Postgres => {
            Some(Target::Text)
        }
        DataType::Uuid => Some(Target::Uuid),
        _ => None,
    }
}

/// `expr` without enclosing parentheses and casts that keep key values
/// (`(col)::text` → `col`), with whether one of the casts was to `uuid`.
pub(crate) fn strip_casts(mut expr: &Expr, dialect: Dialect) -> (&Expr, bool) {
    let mut uuid = false;
    loop {
        expr = match expr {
            Expr::Nested(inner) => inner,
            other => match keeping_cast(other, dialect) {
                Some((inner, target)) => {
                    uuid |= target == Target::Uuid;
                    inner
                }
                None => return (expr, uuid),
            },
        };
    }
}

/// The canonical text of a uuid written in any form PostgreSQL accepts (upper or
/// lower case, with or without braces, hyphens after any group of four digits):
/// lower case, hyphenated 8-4-4-4-12. `None` if `s` is not a uuid.
pub(crate) fn canonical_uuid(s: &str) -> Option<String> {
    let s = match s.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => s,
    };
    let mut digits = String::with_capacity(32);
    let mut since_hyphen = 0;
    for c in s.chars() {
        if c == '-' {
            // A hyphen may only follow a group of four digits.
            if since_hyphen == 0 || since_hyphen % 4 != 0 {
                return None;
            }
            since_hyphen = 0;
        } else if c.is_ascii_hexdigit() {
            digits.push(c.to_ascii_lowercase());
            since_hyphen += 1;
        } else {
            return None;
        }
    }
    if digits.len() != 32 || s.ends_with('-') {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &digits[..8],
        &digits[8..12],
        &digits[12..16],
        &digits[16..20],
        &digits[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::canonical_uuid;

    #[test]
    fn uuid_forms_postgres_accepts_are_canonicalised() {
        let canonical = Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_owned());
        for s in [
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
        ] {
            assert_eq!(canonical_uuid(s), canonical, "{s}");
        }
        for s in [
            "",
            "a0eebc99",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ] {
            assert_eq!(canonical_uuid(s), None, "{s}");
        }
    }
}
