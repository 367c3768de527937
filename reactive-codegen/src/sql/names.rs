//! Identifier normalization and matching.
//!
//! Table and column names in the analysis are the last identifier of a name,
//! lower-cased (quoted names too: merging two names can only widen invalidation).
//! *Resolving* a name (an alias, a CTE) is stricter, because a wrong resolution could
//! narrow the wrong table: two identifiers match with certainty only when they are
//! equal, or both unquoted and the dialect folds unquoted names (PostgreSQL, SQLite).

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

/// How sure we are that two identifiers name the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Match {
    /// They differ, even ignoring case.
    No,
    /// They are equal ignoring case, but the database may tell them apart.
    Possible,
    /// The database treats them as the same name.
    Certain,
}

/// Compare two identifiers. `fold` says that the dialect folds the case of unquoted names.
pub(crate) fn ident_match(a: &Ident, b: &Ident, fold: bool) -> Match {
    if a.value == b.value {
        Match::Certain
    } else if a.value.eq_ignore_ascii_case(&b.value)
        || a.value.to_lowercase() == b.value.to_lowercase()
    {
        if fold && a.quote_style.is_none() && b.quote_style.is_none() {
            Match::Certain
        } else {
            Match::Possible
        }
    } else {
        Match::No
    }
}

/// A column or table name as it appears in the analysis: lower-cased.
pub(crate) fn normalize(ident: &Ident) -> String {
    ident.value.to_lowercase()
}

/// The last identifier of a (possibly schema-qualified) name.
pub(crate) fn last_ident(name: &ObjectName) -> Option<&Ident> {
    match name.0.last()? {
        ObjectNamePart::Identifier(ident) => Some(ident),
        ObjectNamePart::Function(_) => None,
    }
}

/// The normalized table name of a (possibly schema-qualified) name.
pub(crate) fn table_name(name: &ObjectName) -> String {
    match last_ident(name) {
        Some(ident) => normalize(ident),
        None => name.to_string().to_lowercase(),
    }
}
