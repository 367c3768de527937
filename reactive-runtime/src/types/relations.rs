//! Relations between tables, declared once with `#[derive(Relations)]`, expand a
//! change set before it is matched.
//!
//! An edge `agent -> message.from_agent_id` means: a change to the `agent` row with
//! `id = X` also counts as a change to the `message` rows with `from_agent_id = X`.
//! An edge to a bare table (`agent -> organization`) means a change to any `agent`
//! row counts as a change to every `organization` row.
//!
//! Edges model what a database propagates from a parent row to the rows referencing
//! it (foreign-key actions): a change propagates when the source row is deleted, when
//! an update sets its key column, or when the write is not known ([`RowOp`]). An
//! insert, or an update of other columns, reaches no other table (otherwise every
//! agent rename would invalidate every organization's message queries).
//!
//! Expansion is transitive: deleting an organization deletes its projects, whose
//! deletion deletes their tasks (`organization -> project.organization_id`,
//! `project -> task.project_id`, both `ON DELETE CASCADE`). The rows a relation adds
//! carry what a foreign key does to them ([`RelationEdge::target_op`]), and are
//! expanded in turn, up to
//! [`MAX_HOPS`] edges deep (a cycle of edges stops when a hop adds nothing new;
//! beyond the bound the change becomes *everything*). Only deletes, key changes and
//! unknown writes propagate, so inserts and most updates stay where they are. The key
//! of the source row is its `id` column ([`RelationEdge::from_column`]); when the
//! change does not know it, the target rows are unknown (the whole target table, and,
//! a hop further, the whole tables their relations reach). The target rows are known by
//! the referencing column alone, unless the writer already listed them with their real
//! key values and marked the edge [`RowChange::resolved`] (the interceptor reads them
//! before a delete or key change).
//!
//! A foreign key whose action is `SET NULL` or `SET DEFAULT` gives the rows it reaches a
//! *new* value in the referencing column, so those rows must also match the queries
//! keyed on that value (`WHERE project_id = 0`, 0 being the default). The edges do not
//! know the database's actions: [`ReferencingValues`] (read from the catalog by
//! `ReactiveDb`) lists the new values per referencing column, and every row a relation
//! adds or a writer listed through an edge gets them (an expression default makes the
//! column unknown).

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::change::{ChangeSet, RowChange, RowOp};
use super::key::KeyValue;

/// The static data `#[derive(Relations)]` submits with `inventory`:
/// `(from table, to table, to column)` triples; `None` = the whole target table.
#[derive(Debug)]
pub struct RelationsDef {
    /// The edges, as written in the attribute (the runtime lower-cases names).
    /// Each is `(from table, from key column, to table, to column)`.
    pub edges: &'static [(
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    )],
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

    /// An edge from `from_table.from_column` (a foreign key to another column than
    /// `id`) to `to_table.to_column`.
    pub fn keyed(
        from_table: &str,
        from_column: &str,
        to_table: &str,
        to_column: Option<&str>,
    ) -> Self {
        Self {
            from_column: from_column.to_lowercase(),
            ..Self::new(from_table, to_table, to_column)
        }
    }
}

impl RelationEdge {
    /// What the rows this edge reaches undergo when a source row undergoes `op`: a
    /// foreign key's action deletes them (`CASCADE`, the widest of its actions) or
    /// sets their referencing column (`ON UPDATE CASCADE`, `SET NULL`); an edge to a
    /// bare table is a dependency of meaning (a count, say), whose rows keep their keys
    /// and propagate nowhere.
    pub fn target_op(&self, op: &RowOp) -> RowOp {
        match (&self.to_column, op) {
            (None, _) => RowOp::Update(BTreeSet::new()),
            (Some(_), RowOp::Delete | RowOp::Unknown) => op.clone(),
            (Some(column), _) => RowOp::Update([column.clone()].into_iter().collect()),
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

/// The values a foreign key's `SET NULL` / `SET DEFAULT` action gives the referencing
/// columns of the rows it reaches, per `(table, column)`: `NULL`, the column's default,
/// or unknown (an expression default, a database that does not say). A column not
/// listed keeps its values (`CASCADE`, `RESTRICT`, `NO ACTION`, or no foreign key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferencingValues {
    columns: HashMap<(String, String), Option<BTreeSet<KeyValue>>>,
    /// The actions could not be read: every referencing column reached through an edge
    /// is unknown (wider) until they can.
    unknown: bool,
}

impl ReferencingValues {
    /// Nothing listed: every edge keeps the referencing column's values.
    pub fn none() -> Self {
        Self::default()
    }

    /// The actions are not known: every referencing column reached through an edge is
    /// unknown.
    pub fn unknown() -> Self {
        Self {
            unknown: true,
            ..Self::default()
        }
    }

    /// Adds a new value `table.column` may take (`None`: unknown).
    pub fn add(&mut self, table: &str, column: &str, value: Option<KeyValue>) {
        let entry = self
            .columns
            .entry((table.to_lowercase(), column.to_lowercase()))
            .or_insert_with(|| Some(BTreeSet::new()));
        match (entry.as_mut(), value) {
            (Some(values), Some(v)) => {
                values.insert(v);
            }
            (_, None) => *entry = None,
            (None, Some(_)) => {}
        }
    }

    /// `true` when nothing is listed and nothing is unknown.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty() && !self.unknown
    }

    /// Gives a row reached through `edge` the new values its referencing column may take.
    fn assign(&self, edge: &RelationEdge, row: &mut RowChange) {
        let Some(column) = &edge.to_column else {
            return;
        };
        if self.unknown {
            row.columns.remove(column);
            return;
        }
        match self.columns.get(&(edge.to_table.clone(), column.clone())) {
            None => {}
            Some(None) => {
                row.columns.remove(column);
            }
            Some(Some(values)) => {
                // An absent column is unknown already: adding values would narrow it.
                if let Some(known) = row.columns.get_mut(column) {
                    known.extend(values.iter().cloned());
                }
            }
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
                .map(|(from, key, to, col)| RelationEdge::keyed(from, key, to, *col)),
        )
    }

    /// The edges, sorted.
    pub fn edges(&self) -> &[RelationEdge] {
        &self.edges
    }

    /// The change set plus, for each edge whose source table the change touches, the
    /// target rows it counts as changing, transitively (see the module docs). The
    /// added rows record their edge.
    pub fn expand(&self, changes: &ChangeSet) -> ChangeSet {
        self.expand_with(changes, &ReferencingValues::none())
    }

    /// [`Relations::expand`], giving the rows reached through an edge (and those a
    /// writer listed through one) the new values `referencing` lists for their
    /// referencing column.
    pub fn expand_with(&self, changes: &ChangeSet, referencing: &ReferencingValues) -> ChangeSet {
        let mut out = changes.clone();
        if changes.is_everything() || self.edges.is_empty() {
            return out;
        }
        if !referencing.is_empty() {
            for row in out.tables.values_mut().flatten() {
                if let Some(edge) = row.via.clone() {
                    referencing.assign(&edge, row);
                }
            }
        }
        // Rows whose relations are still to follow: the change's own, and the rows a
        // writer already listed through an edge (a cascade it read) — their own
        // relations are the next hop.
        let mut frontier: Vec<(String, RowChange)> = out
            .tables
            .iter()
            .flat_map(|(table, rows)| rows.iter().map(move |r| (table.clone(), r.clone())))
            .collect();
        for _ in 0..MAX_HOPS {
            let mut next = Vec::new();
            for (table, row) in &frontier {
                for edge in self.edges.iter().filter(|e| &e.from_table == table) {
                    if !row.op.propagates_through(&edge.from_column) || row.resolved.contains(edge)
                    {
                        continue;
                    }
                    let mut target = RowChange::whole().via(edge.clone());
                    target.op = edge.target_op(&row.op);
                    if let Some(col) = &edge.to_column
                        && let Some(values) = row.values(&edge.from_column)
                    {
                        target = target.with_values(col, values.iter().cloned());
                    }
                    referencing.assign(edge, &mut target);
                    // A cycle, or two paths to the same rows: nothing new to follow.
                    if out
                        .rows(&edge.to_table)
                        .is_some_and(|rows| rows.contains(&target))
                    {
                        continue;
                    }
                    out.push_row(&edge.to_table, target.clone());
                    next.push((edge.to_table.clone(), target));
                }
            }
            if next.is_empty() {
                return out;
            }
            frontier = next;
        }
        // Deeper than any schema we model: give up on precision, not on correctness.
        ChangeSet::everything()
    }
}

/// How many edges deep [`Relations::expand`] follows a change before it treats the
/// change as touching everything.
pub const MAX_HOPS: usize = 16;

#[cfg(test)]
mod propagation_tests {
    use super::*;
    use crate::types::{KeyValue, RowOp};

    fn agent_change(op: RowOp) -> ChangeSet {
        let mut row = RowChange::whole()
            .with(
                "id",
                KeyValue::from_str("agent-1", reactive_codegen::sql::Dialect::Sqlite),
            )
            .with(
                "organization_id",
                KeyValue::from_str("org-1", reactive_codegen::sql::Dialect::Sqlite),
            );
        row.op = op;
        ChangeSet::empty().with_row("agent", row)
    }

    fn relations() -> Relations {
        Relations::from_edges([
            RelationEdge::new("agent", "message", Some("from_agent_id")),
            RelationEdge::new("agent", "organization", None),
        ])
    }

    fn expanded_tables(op: RowOp) -> Vec<String> {
        relations()
            .expand(&agent_change(op))
            .table_names()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn deletes_and_unknown_writes_propagate() {
        assert_eq!(
            expanded_tables(RowOp::Delete),
            ["agent", "message", "organization"]
        );
        assert_eq!(
            expanded_tables(RowOp::Unknown),
            ["agent", "message", "organization"]
        );
        let expanded = relations().expand(&agent_change(RowOp::Delete));
        let message = &expanded.rows("message").expect("message rows")[0];
        assert!(
            message
                .values("from_agent_id")
                .is_some_and(|v| v.len() == 1)
        );
    }

    #[test]
    fn an_update_of_the_key_column_propagates() {
        let set = ["id".to_owned()].into_iter().collect();
        assert_eq!(
            expanded_tables(RowOp::Update(set)),
            ["agent", "message", "organization"]
        );
    }

    #[test]
    fn resolved_edges_are_not_expanded_again() {
        let mut change = agent_change(RowOp::Delete);
        let edge = RelationEdge::new("agent", "message", Some("from_agent_id"));
        let precise = RowChange::whole()
            .with(
                "organization_id",
                KeyValue::from_str("org-1", reactive_codegen::sql::Dialect::Sqlite),
            )
            .via(edge.clone());
        change.tables.get_mut("agent").expect("agent")[0]
            .resolved
            .insert(edge);
        change.push_row("message", precise.clone());
        let expanded = relations().expand(&change);
        assert_eq!(expanded.rows("message"), Some(&[precise][..]));
        assert!(
            expanded.rows("organization").is_some(),
            "other edges still expand"
        );
    }

    #[test]
    fn set_null_and_set_default_add_the_childs_new_value() {
        let sqlite = reactive_codegen::sql::Dialect::Sqlite;
        let relations = relations();
        let mut referencing = ReferencingValues::none();
        referencing.add("message", "from_agent_id", Some(KeyValue::null()));
        referencing.add(
            "message",
            "from_agent_id",
            Some(KeyValue::from_str("nobody", sqlite)),
        );
        let expanded = relations.expand_with(&agent_change(RowOp::Delete), &referencing);
        let message = &expanded.rows("message").expect("message rows")[0];
        let values = message.values("from_agent_id").expect("known");
        assert!(values.contains(&KeyValue::from_str("agent-1", sqlite)));
        assert!(values.contains(&KeyValue::null()));
        assert!(values.contains(&KeyValue::from_str("nobody", sqlite)));

        // A default that is an expression: the column is unknown.
        referencing.add("message", "from_agent_id", None);
        let expanded = relations.expand_with(&agent_change(RowOp::Delete), &referencing);
        let message = &expanded.rows("message").expect("message rows")[0];
        assert_eq!(message.values("from_agent_id"), None);

        // Actions that could not be read: unknown too, also for rows a writer listed.
        let edge = RelationEdge::new("agent", "message", Some("from_agent_id"));
        let mut change = agent_change(RowOp::Delete);
        change.tables.get_mut("agent").expect("agent")[0]
            .resolved
            .insert(edge.clone());
        change.push_row(
            "message",
            RowChange::whole()
                .with("from_agent_id", KeyValue::from_str("agent-1", sqlite))
                .via(edge),
        );
        let expanded = relations.expand_with(&change, &ReferencingValues::unknown());
        let message = &expanded.rows("message").expect("message rows")[0];
        assert_eq!(message.values("from_agent_id"), None);
    }

    #[test]
    fn inserts_and_updates_of_other_columns_stay_local() {
        assert_eq!(expanded_tables(RowOp::Insert), ["agent"]);
        let set = ["name".to_owned(), "organization_id".to_owned()]
            .into_iter()
            .collect();
        assert_eq!(expanded_tables(RowOp::Update(set)), ["agent"]);
    }

    #[test]
    fn analysed_statements_record_their_operation() {
        use reactive_codegen::sql::{Dialect, analyze};
        let resolve =
            |_: &reactive_codegen::sql::Param| Some(KeyValue::from_str("x", Dialect::Sqlite));
        let ops = |sql: &str| -> Vec<RowOp> {
            let changes = ChangeSet::from_statement(
                &analyze(sql, Dialect::Sqlite),
                &resolve,
                Dialect::Sqlite,
            );
            changes
                .rows("agent")
                .expect("agent rows")
                .iter()
                .map(|r| r.op.clone())
                .collect()
        };
        assert_eq!(
            ops("INSERT INTO agent (id, name) VALUES (?, ?)"),
            [RowOp::Insert]
        );
        assert_eq!(ops("DELETE FROM agent WHERE id = ?"), [RowOp::Delete]);
        assert_eq!(
            ops("UPDATE agent SET name = ? WHERE id = ?"),
            [RowOp::Update(["name".to_owned()].into_iter().collect())]
        );
    }
}
