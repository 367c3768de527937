//! Column classes: how a column's values compare for key purposes, their canonical
//! forms (uuid spellings included), and a column's class from its catalog type name.

use reactive_codegen::sql::Dialect;

use crate::types::KeyValue;

/// How a column's values are compared, for key purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnClass {
    /// Integers: canonical decimal text; anything else is unknown.
    Int,
    /// Booleans: `1` / `0`.
    Bool,
    /// Uuids: lower-case hyphenated (every input spelling PostgreSQL accepts maps to it).
    Uuid,
    /// Text compared byte for byte (MySQL: case- and trailing-space-insensitively, for
    /// printable ASCII values only).
    Text,
    /// Anything else: never a key.
    Other,
}

impl ColumnClass {
    /// The canonical form of `value` in a column of this class; `None`: unknown.
    pub fn canonical(self, value: &KeyValue, dialect: Dialect) -> Option<KeyValue> {
        match self.canonicalize(value, dialect) {
            Canonical::Already => Some(value.clone()),
            Canonical::Is(v) => Some(v),
            Canonical::Unknown => None,
        }
    }

    /// [`ColumnClass::canonical`], telling apart a value that already is in canonical
    /// form (the common case: nothing to copy or rebuild).
    pub(super) fn canonicalize(self, value: &KeyValue, dialect: Dialect) -> Canonical {
        if value.is_null() {
            return Canonical::Already;
        }
        let text = value.as_str();
        let known = match self {
            ColumnClass::Int => text.parse::<i128>().is_ok(),
            ColumnClass::Bool => matches!(text, "0" | "1"),
            ColumnClass::Uuid if is_canonical_uuid(text) => true,
            ColumnClass::Uuid => {
                return canonical_uuid(text).map_or(Canonical::Unknown, |u| {
                    Canonical::Is(KeyValue::from_str(&u, dialect))
                });
            }
            ColumnClass::Text => match dialect {
                // Collations beyond case and trailing spaces (accents, ignorable
                // characters) fold non-ASCII text in ways we do not model.
                Dialect::MySql => text.bytes().all(|b| (0x20..0x7f).contains(&b)),
                Dialect::Postgres | Dialect::Sqlite => true,
            },
            ColumnClass::Other => false,
        };
        if known {
            Canonical::Already
        } else {
            Canonical::Unknown
        }
    }

    pub(super) fn merge(self, other: Self) -> Self {
        if self == other {
            self
        } else {
            ColumnClass::Other
        }
    }
}

/// What [`ColumnClass::canonicalize`] found.
pub(super) enum Canonical {
    /// The value is in canonical form.
    Already,
    /// Its canonical form.
    Is(KeyValue),
    /// It has none: unknown.
    Unknown,
}

/// `true` for `8-4-4-4-12` lower-case hex: what [`canonical_uuid`] returns, which maps
/// it to itself (and which [`KeyValue::from_str`] keeps as it is: not a number, not a
/// boolean, lower case without spaces).
fn is_canonical_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
        })
}

/// `8-4-4-4-12` lower-case hex, from any spelling with hyphens, braces or a `urn:uuid:`
/// prefix; `None` if it is not 32 hex digits.
fn canonical_uuid(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text
        .strip_prefix("urn:uuid:")
        .or_else(|| text.strip_prefix("URN:UUID:"))
        .unwrap_or(text);
    let text = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The class of a column from the catalog's type name and flags.
pub(super) fn classify(dialect: Dialect, ty: &str, flags: &str) -> ColumnClass {
    let ty = ty.to_ascii_lowercase();
    match dialect {
        Dialect::Postgres => {
            let deterministic = flags.starts_with('d');
            let base = flags.get(1..2) == Some("b");
            if !base {
                return ColumnClass::Other; // enums, domains, composites, ranges
            }
            match ty.as_str() {
                "int2" | "int4" | "int8" => ColumnClass::Int,
                "bool" => ColumnClass::Bool,
                "uuid" => ColumnClass::Uuid,
                "text" | "varchar" | "name" if deterministic => ColumnClass::Text,
                _ => ColumnClass::Other,
            }
        }
        Dialect::MySql => match ty.as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => ColumnClass::Int,
            "uuid" => ColumnClass::Uuid,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                ColumnClass::Text
            }
            _ => ColumnClass::Other,
        },
        Dialect::Sqlite => {
            // Affinity rules (https://sqlite.org/datatype3.html#determination_of_column_affinity),
            // with date/time types apart: their text forms differ between serde and the database.
            if ["date", "time", "blob", "json"]
                .iter()
                .any(|t| ty.contains(t))
            {
                ColumnClass::Other
            } else if ty.contains("bool") {
                ColumnClass::Bool
            } else if flags.to_ascii_lowercase().contains("nocase") {
                ColumnClass::Other
            } else {
                // INTEGER, TEXT, NUMERIC, REAL and untyped columns: SQLite converts
                // between numbers and numeric text by affinity, which the canonical
                // form (numbers and numeric strings meet) only widens.
                ColumnClass::Text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uuids_are_recognized() {
        assert!(is_canonical_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
        for not in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
            "a0eebc99-9c0b-4ef8-bb6d6-bb9bd380a11",
        ] {
            assert!(!is_canonical_uuid(not), "{not}");
            // Whatever `canonical_uuid` makes of it is canonical.
            if let Some(u) = canonical_uuid(not) {
                assert!(is_canonical_uuid(&u), "{u}");
            }
        }
        // A canonical uuid is its own canonical form, also as a key value.
        let u = "12345678-1234-1234-1234-123456789012";
        assert_eq!(canonical_uuid(u).as_deref(), Some(u));
        assert_eq!(KeyValue::from_str(u, Dialect::Postgres).as_str(), u);
        assert_eq!(KeyValue::from_str(u, Dialect::MySql).as_str(), u);
    }

    #[test]
    fn uuid_spellings_meet() {
        let want = Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_owned());
        assert_eq!(canonical_uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), want);
        assert_eq!(
            canonical_uuid("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"),
            want
        );
        assert_eq!(canonical_uuid("a0eebc999c0b4ef8bb6d6bb9bd380a11"), want);
        assert_eq!(canonical_uuid("a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11"), want);
        assert_eq!(canonical_uuid("not-a-uuid"), None);
        assert_eq!(canonical_uuid("123"), None);
    }

    #[test]
    fn classes_keep_only_comparable_values() {
        let pg = Dialect::Postgres;
        let k = |s: &str| KeyValue::from_str(s, pg);
        assert_eq!(ColumnClass::Int.canonical(&k("42"), pg), Some(k("42")));
        assert_eq!(ColumnClass::Int.canonical(&k("1abc"), pg), None);
        assert_eq!(ColumnClass::Bool.canonical(&k("true"), pg), Some(k("1")));
        assert_eq!(ColumnClass::Other.canonical(&k("2024-01-01"), pg), None);
        assert_eq!(
            ColumnClass::Other.canonical(&KeyValue::null(), pg),
            Some(KeyValue::null())
        );
        let my = Dialect::MySql;
        assert!(
            ColumnClass::Text
                .canonical(&KeyValue::from_str("José", my), my)
                .is_none()
        );
        assert!(
            ColumnClass::Text
                .canonical(&KeyValue::from_str("Jose", my), my)
                .is_some()
        );
    }

    #[test]
    fn classify_by_dialect() {
        assert_eq!(classify(Dialect::Postgres, "uuid", "db"), ColumnClass::Uuid);
        assert_eq!(
            classify(Dialect::Postgres, "text", "nb"),
            ColumnClass::Other
        );
        assert_eq!(
            classify(Dialect::Postgres, "status", "de"),
            ColumnClass::Other
        );
        assert_eq!(
            classify(Dialect::Postgres, "timestamptz", "db"),
            ColumnClass::Other
        );
        assert_eq!(classify(Dialect::MySql, "enum", ""), ColumnClass::Other);
        assert_eq!(classify(Dialect::MySql, "bigint", ""), ColumnClass::Int);
        assert_eq!(
            classify(Dialect::Sqlite, "DATETIME", ""),
            ColumnClass::Other
        );
        assert_eq!(classify(Dialect::Sqlite, "INTEGER", ""), ColumnClass::Text);
        assert_eq!(
            classify(
                Dialect::Sqlite,
                "TEXT",
                "CREATE TABLE t (a TEXT COLLATE NOCASE)"
            ),
            ColumnClass::Other
        );
    }
}
