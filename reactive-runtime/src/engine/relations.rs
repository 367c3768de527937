//! Relations between tables, declared once with `#[derive(Relations)]`, expand a
//! change set before it is matched.
//!
//! An edge `agent -> message.from_agent_id` means: a change to the `agent` row with
//! `id = X` also counts as a change to the `message` rows with `from_agent_id = X`.
//! An edge to a bare table (`agent -> organization`) means a change to any `agent`
//! row counts as a change to every `organization` row.
//!
//! Expansion is one hop: the rows a relation adds are not expanded again (a
//! transitive closure would turn most writes into whole-table changes). The key of
//! the source row is its `id` column ([`RelationEdge::from_column`]); when the change
//! does not know it, the target rows are unknown (the whole target table).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::change::{ChangeSet, RowChange};

/// The static data `#[derive(Relations)]` submits with `inventory`:
/// `(from table, to table, to column)` triples; `None` = the whole target table.
#[derive(Debug)]
pub struct RelationsDef {
    /// The edges, as written in the attribute (the runtime lower-cases names).
    pub edges: &'static [(&'static str, &'static str, Option<&'static str>)],
}

inventory::collect!(RelationsDef);

/// One relation edge (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RelationEdge {
    /// The table whose change propagates.
    pub from_table: String,
    /// The key column of the source row whose values select the target rows (`id`).
    pub from_column: String,
    /// The table the change propagates to.
    pub to_table: String,
    /// The target column holding the source key; `None` = every row of `to_table`.
    pub to_column: Option<String>,
}

impl RelationEdge {
    /// An edge from `from_table.id` to `to_table.to_column` (names are lower-cased).
    pub fn new(from_table: &str, to_table: &str, to_column: Option<&str>) -> Self {
        Self {
            from_table: from_table.to_lowercase(),
            from_column: "id".to_owned(),
            to_table: to_table.to_lowercase(),
            to_column: to_column.map(str::to_lowercase),
        }
    }
}

impl fmt::Display for RelationEdge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.to_column {
            Some(c) => write!(
                f,
                "{}.{} -> {}.{}",
                self.from_table, self.from_column, self.to_table, c
            ),
            None => write!(f, "{} -> {}", self.from_table, self.to_table),
        }
    }
}

/// A set of relation edges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relations {
    edges: Vec<RelationEdge>,
}

impl Relations {
    /// No edges.
    pub fn none() -> Self {
        Self::default()
    }

    /// Exactly these edges (deduplicated); for tests and for apps that build them by hand.
    pub fn from_edges(edges: impl IntoIterator<Item = RelationEdge>) -> Self {
        let set: BTreeSet<RelationEdge> = edges.into_iter().collect();
        Self {
            edges: set.into_iter().collect(),
        }
    }

    /// Every edge submitted by `#[derive(Relations)]` in this binary.
    pub fn registered() -> Self {
        Self::from_edges(
            inventory::iter::<RelationsDef>
                .into_iter()
                .flat_map(|def| def.edges.iter())
                .map(|(from, to, col)| RelationEdge::new(from, to, *col)),
        )
    }

    /// The edges, sorted.
    pub fn edges(&self) -> &[RelationEdge] {
        &self.edges
    }

    /// The change set plus, for each edge whose source table the change touches, the
    /// target rows it counts as changing (one hop). The added rows record their edge.
    pub fn expand(&self, changes: &ChangeSet) -> ChangeSet {
        let mut out = changes.clone();
        if changes.is_everything() || self.edges.is_empty() {
            return out;
        }
        for edge in &self.edges {
            let Some(rows) = changes.rows(&edge.from_table) else {
                continue;
            };
            for row in rows.iter().filter(|r| r.via.is_none()) {
                let mut target = RowChange::whole().via(edge.clone());
                if let Some(col) = &edge.to_column
                    && let Some(values) = row.values(&edge.from_column)
                {
                    target = target.with_values(col, values.iter().cloned());
                }
                out.push_row(&edge.to_table, target);
            }
        }
        out
    }
}
