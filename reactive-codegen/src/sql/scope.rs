//! Name resolution: the relations visible in one `SELECT` (or `UPDATE`/`DELETE`)
//! and the CTE names visible from a query.

use sqlparser::ast::Ident;

use super::names::{Match, ident_match};
use super::predicates::ColumnRef;

/// One relation in a `FROM` list: a base table (with the index of its access
/// record) or something opaque (a derived table, a CTE reference, a table function).
#[derive(Debug)]
pub(crate) struct Entry {
    /// The name columns are qualified with: the alias, or the table's last identifier.
    pub(crate) name: Option<Ident>,
    /// The access of a base table; `None` for opaque relations.
    pub(crate) access: Option<usize>,
}

/// The relations of one `FROM` list.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    pub(crate) entries: Vec<Entry>,
}

impl Scope {
    /// Add a relation; returns its entry index.
    pub(crate) fn push(&mut self, name: Option<Ident>, access: Option<usize>) -> usize {
        self.entries.push(Entry { name, access });
        self.entries.len() - 1
    }

    /// The entry a column belongs to, when that is certain:
    /// - a qualified column: the single entry whose name certainly matches the
    ///   qualifier (none if another entry possibly matches, or none matches: it may
    ///   be an outer query's alias);
    /// - an unqualified column: the only entry, when the scope has exactly one.
    pub(crate) fn resolve(&self, column: &ColumnRef<'_>, fold: bool) -> Option<usize> {
        let Some(qualifier) = column.qualifier else {
            return (self.entries.len() == 1).then_some(0);
        };
        let mut found = None;
        for (i, entry) in self.entries.iter().enumerate() {
            let Some(name) = &entry.name else { continue };
            match ident_match(name, qualifier, fold) {
                Match::No => {}
                Match::Possible => return None,
                Match::Certain if found.is_some() => return None,
                Match::Certain => found = Some(i),
            }
        }
        found
    }
}

/// CTE names visible from a query: its own `WITH` and the enclosing queries'.
#[derive(Debug, Default)]
pub(crate) struct Env<'a> {
    names: Vec<Ident>,
    parent: Option<&'a Env<'a>>,
}

impl<'a> Env<'a> {
    /// A child environment (the parent's names stay visible).
    pub(crate) fn child(parent: &'a Env<'a>) -> Self {
        Self {
            names: Vec::new(),
            parent: Some(parent),
        }
    }

    /// Make a CTE name visible.
    pub(crate) fn add(&mut self, name: Ident) {
        self.names.push(name);
    }

    /// Is `name` (a one-part relation name) a CTE? The strongest match in scope.
    pub(crate) fn lookup(&self, name: &Ident, fold: bool) -> Match {
        let mut best = Match::No;
        let mut env = Some(self);
        while let Some(e) = env {
            for n in &e.names {
                best = best.max(ident_match(n, name, fold));
            }
            env = e.parent;
        }
        best
    }
}
