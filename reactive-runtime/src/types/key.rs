//! [`KeyValue`]: the canonical, type-erased form of a key value.
//!
//! Read sets and change sets compare values that come from different places: JSON
//! input fields (`"organization_id": 1`), SQL literals (`WHERE id = '1'`), values a
//! database returned. They are compared as *canonical text* so that `1`, `1.0`, `"1"`
//! and `true` all meet. Merging distinct values into one canonical form can only
//! make a change match more queries (over-invalidation, a cache miss), never fewer.
//!
//! Canonical form:
//! - numbers (and strings that parse as a number after trimming) → the shortest
//!   decimal text: integers without a fraction (`1.0` → `1`), others as `f64` text;
//! - booleans (and the strings `true` / `false`, any case) → `1` / `0`;
//! - `NULL` → a marker no other value produces;
//! - other strings → themselves; for [`Dialect::MySql`] lower-cased and right-trimmed
//!   of spaces, because MySQL's default collations compare strings case- and
//!   trailing-space-insensitively.
//!
//! Arrays and objects have no canonical key form: [`KeyValue::from_json`] returns
//! `None` for them, which callers treat as *unknown* (matches anything).
//!
//! Known limits (comparisons the canonical form does not model, which could make a
//! change miss a query): non-default collations (SQLite `COLLATE NOCASE`, PostgreSQL
//! `citext` or nondeterministic collations, MySQL `_bin`/case-sensitive collations are
//! fine: folding only widens), and MySQL's numeric comparison of a string column with a
//! number (`'1abc' = 1` is true there). Keep key columns to ids and plain strings.

use std::fmt;
use std::sync::Arc;

use reactive_codegen::sql::{Dialect, Literal};
use serde::{Deserialize, Serialize};

/// The text `NULL` canonicalizes to; no string can produce it (strings never start with NUL here).
const NULL_MARKER: &str = "\u{0}null";

/// A key value in canonical form (see the module docs). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyValue(Arc<str>);

impl KeyValue {
    /// The canonical form of a JSON value; `None` for arrays and objects (unknown).
    pub fn from_json(value: &serde_json::Value, dialect: Dialect) -> Option<Self> {
        use serde_json::Value;
        match value {
            Value::Null => Some(Self::null()),
            Value::Bool(b) => Some(Self::from_bool(*b)),
            Value::Number(n) => Some(Self(canonical_number(&n.to_string()).into())),
            Value::String(s) => Some(Self::from_str(s, dialect)),
            Value::Array(_) | Value::Object(_) => None,
        }
    }

    /// The canonical form of a SQL literal.
    pub fn from_literal(literal: &Literal, dialect: Dialect) -> Self {
        match literal {
            Literal::String(s) => Self::from_str(s, dialect),
            Literal::Number(n) => Self(canonical_number(n).into()),
            Literal::Bool(b) => Self::from_bool(*b),
            Literal::Null => Self::null(),
        }
    }

    /// The canonical form of a string value.
    pub fn from_str(s: &str, dialect: Dialect) -> Self {
        let trimmed = s.trim();
        if looks_numeric(trimmed) {
            return Self(canonical_number(trimmed).into());
        }
        if trimmed.eq_ignore_ascii_case("true") {
            return Self::from_bool(true);
        }
        if trimmed.eq_ignore_ascii_case("false") {
            return Self::from_bool(false);
        }
        let text = s.strip_prefix('\u{0}').unwrap_or(s);
        match dialect {
            Dialect::MySql => Self(text.trim_end_matches(' ').to_lowercase().into()),
            Dialect::Postgres | Dialect::Sqlite => Self(text.into()),
        }
    }

    /// The canonical form of an integer.
    pub fn from_i64(n: i64) -> Self {
        Self(n.to_string().into())
    }

    /// The canonical form of a boolean (`1` / `0`).
    pub fn from_bool(b: bool) -> Self {
        Self(if b { "1" } else { "0" }.into())
    }

    /// The canonical form of `NULL`.
    pub fn null() -> Self {
        Self(NULL_MARKER.into())
    }

    /// `true` for the `NULL` value.
    pub fn is_null(&self) -> bool {
        &*self.0 == NULL_MARKER
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() {
            f.write_str("NULL")
        } else {
            write!(f, "{:?}", &*self.0)
        }
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() {
            f.write_str("NULL")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// `true` if `s` is a decimal number as SQL and JSON write them (`-1`, `2.50`, `1e3`).
fn looks_numeric(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty()
        && digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && s.parse::<f64>().is_ok()
}

/// Shortest canonical text of a numeric string; the input itself if it does not parse.
fn canonical_number(s: &str) -> String {
    let s = s.trim();
    if let Ok(i) = s.parse::<i128>() {
        return i.to_string();
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() => {
            if f.fract() == 0.0 && f.abs() < 1e18 {
                // Exact: |f| < 2^63 and integral.
                (f as i64).to_string()
            } else {
                f.to_string()
            }
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn j(v: serde_json::Value) -> KeyValue {
        KeyValue::from_json(&v, Dialect::Postgres).expect("scalar")
    }

    #[test]
    fn numbers_strings_and_bools_meet() {
        assert_eq!(j(json!(1)), j(json!("1")));
        assert_eq!(j(json!(1)), j(json!(1.0)));
        assert_eq!(j(json!(1)), j(json!(true)));
        assert_eq!(j(json!("0")), j(json!(false)));
        assert_eq!(
            j(json!(" 42 ")),
            KeyValue::from_literal(&Literal::Number("42".into()), Dialect::Postgres)
        );
        assert_eq!(
            j(json!(2.5)),
            KeyValue::from_literal(&Literal::String("2.50".into()), Dialect::Sqlite)
        );
        assert_eq!(j(json!("TRUE")), j(json!(true)));
        assert_ne!(j(json!(1)), j(json!(2)));
        assert_ne!(j(json!("1abc")), j(json!(1)));
    }

    #[test]
    fn big_integers_stay_exact() {
        assert_ne!(
            j(json!(9007199254740993_i64)),
            j(json!(9007199254740992_i64))
        );
        assert_eq!(j(json!("9007199254740993")), j(json!(9007199254740993_i64)));
    }

    #[test]
    fn null_is_distinct_from_every_string() {
        assert!(j(json!(null)).is_null());
        assert_ne!(j(json!(null)), j(json!("null")));
        assert_ne!(j(json!(null)), j(json!("\u{0}null")));
    }

    #[test]
    fn mysql_folds_case_and_trailing_spaces_others_do_not() {
        let a = KeyValue::from_str("Acme ", Dialect::MySql);
        let b = KeyValue::from_str("acme", Dialect::MySql);
        assert_eq!(a, b);
        assert_ne!(
            KeyValue::from_str("Acme", Dialect::Postgres),
            KeyValue::from_str("acme", Dialect::Postgres)
        );
        assert_ne!(
            KeyValue::from_str("Acme", Dialect::Sqlite),
            KeyValue::from_str("acme", Dialect::Sqlite)
        );
    }

    #[test]
    fn arrays_and_objects_are_unknown() {
        assert!(KeyValue::from_json(&json!([1]), Dialect::Sqlite).is_none());
        assert!(KeyValue::from_json(&json!({"a": 1}), Dialect::Sqlite).is_none());
    }
}
