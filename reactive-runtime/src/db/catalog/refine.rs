//! Refining read and change sets with the catalog: key values in their column's
//! canonical form or the column unknown; see the `catalog` module docs for views,
//! computed and triggered columns and tables that replace on conflict.

use reactive_codegen::sql::Dialect;

use std::collections::BTreeSet;

use super::class::Canonical;
use super::trigger_writes::TriggerWrites;
use super::{Catalog, Tables, class_in, read_set};
use crate::types::{ChangeSet, Conjunction, KeyValue, ReadSet, RowChange, RowOp};

impl Catalog {
    /// Puts every key value of `reads` in its column's canonical form, dropping those
    /// that have none (the conjunction then covers more rows). A read of a view reads
    /// everything (see the `catalog` module docs).
    ///
    /// Runs on every cache miss: when every value already is canonical and every name
    /// lower-case (the common case), the read set is left as it is, without a copy.
    pub fn refine_reads(&self, reads: &mut ReadSet, dialect: Dialect) {
        if reads.everything || reads.tables.is_empty() {
            return;
        }
        let views = self.views();
        if reads.tables.keys().any(|table| views.contains(table)) {
            *reads = ReadSet::everything();
            return;
        }
        let known = self.snapshot();
        let mut rebuild = false;
        for (table, conjunctions) in &mut reads.tables {
            rebuild |= !is_lower(table);
            for conj in conjunctions {
                conj.columns.retain(|column, values| {
                    rebuild |= !is_lower(column);
                    match refine_in_place(&known, table, column, values, dialect) {
                        Refined::Same => true,
                        Refined::Changed => {
                            rebuild = true;
                            true
                        }
                        Refined::Unknown => {
                            rebuild = true;
                            false
                        }
                    }
                });
            }
        }
        if rebuild {
            // Values changed or were dropped: alternatives may now coincide, or one may
            // have become the whole table; `add` puts the set back in normal form.
            let old = std::mem::take(&mut reads.tables);
            for (table, conjunctions) in old {
                for conj in conjunctions {
                    let mut refined = Conjunction::whole();
                    for (column, values) in conj.columns {
                        refined = refined.with_values(&column, values);
                    }
                    reads.add(&table, refined);
                }
            }
        }
    }

    /// Puts every key value of `changes` in its column's canonical form; a column with
    /// a value that has none becomes unknown. A write to a view changes everything: the
    /// database writes its base tables (an updatable view, or an `INSTEAD OF` trigger
    /// that may write any table), which the statement does not name. A write to a table
    /// with triggers also changes the tables their bodies write (see the module docs).
    pub fn refine_changes(&self, changes: &mut ChangeSet, dialect: Dialect) {
        if changes.everything {
            return;
        }
        let views = self.views();
        if changes.tables.keys().any(|table| views.contains(table)) {
            *changes = ChangeSet::everything();
            return;
        }
        // A partition's rows are its partitioned table's (and the other way round).
        let relatives = self.relatives();
        if !relatives.is_empty() {
            let shared: Vec<(String, Vec<RowChange>)> = changes
                .tables
                .iter()
                .filter_map(|(table, rows)| Some((relatives.get(table)?, rows)))
                .flat_map(|(others, rows)| others.iter().map(move |o| (o.clone(), rows.clone())))
                .collect();
            for (table, rows) in shared {
                for row in rows {
                    changes.push_row(&table, row);
                }
            }
        }
        // What the written tables' triggers write: whole tables, or everything.
        let trigger_writes = self.trigger_writes();
        let mut written_by_triggers = BTreeSet::new();
        if !trigger_writes.is_empty() {
            let any = trigger_writes.get("*");
            // A foreign key's action fires the triggers of the rows it changes too.
            let edges = self
                .foreign_keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
                .unwrap_or_default();
            let mut reached: BTreeSet<String> = changes.tables.keys().cloned().collect();
            let mut frontier: Vec<String> = reached.iter().cloned().collect();
            while let Some(table) = frontier.pop() {
                for edge in edges.iter().filter(|e| e.from_table == table) {
                    if reached.insert(edge.to_table.clone()) {
                        frontier.push(edge.to_table.clone());
                    }
                }
            }
            for table in &reached {
                for writes in any.into_iter().chain(trigger_writes.get(table.as_str())) {
                    match writes {
                        TriggerWrites::Everything => {
                            *changes = ChangeSet::everything();
                            return;
                        }
                        TriggerWrites::Tables(tables) => {
                            written_by_triggers.extend(tables.iter().cloned())
                        }
                    }
                }
            }
        }
        let known = self.snapshot();
        let computed = read_set(&self.computed);
        let triggered = read_set(&self.triggered);
        let replacing = read_set(&self.replacing);
        let mut replaced = Vec::new();
        for (table, rows) in &mut changes.tables {
            if replacing.contains(table) && rows.iter().any(|r| !matches!(r.op, RowOp::Delete)) {
                replaced.push(table.clone());
            }
            let rewritten = triggered.contains(table) || triggered.contains("*");
            for row in rows {
                let written = !matches!(row.op, RowOp::Delete);
                row.columns.retain(|column, values| {
                    if written && (rewritten || computed.contains(&format!("{table}.{column}"))) {
                        return false;
                    }
                    !matches!(
                        refine_in_place(&known, table, column, values, dialect),
                        Refined::Unknown
                    )
                });
            }
        }
        // A write that may delete rows it does not name (the ones its new values conflict
        // with): the whole table, as for an upsert, deletes included (their relations).
        for table in replaced.into_iter().chain(written_by_triggers) {
            changes.push_row(&table, RowChange::whole());
        }
    }
}

fn refine_values(
    tables: &Tables,
    table: &str,
    column: &str,
    values: &std::collections::BTreeSet<KeyValue>,
    dialect: Dialect,
) -> Option<std::collections::BTreeSet<KeyValue>> {
    let class = class_in(tables, table, column);
    values.iter().map(|v| class.canonical(v, dialect)).collect()
}

/// What [`refine_in_place`] did to a value set.
enum Refined {
    /// Every value was canonical already: unchanged.
    Same,
    /// Replaced by the canonical forms.
    Changed,
    /// A value has no canonical form: the column is unknown (the set is left as it was).
    Unknown,
}

/// [`refine_values`] in place, without a copy when every value is canonical already.
fn refine_in_place(
    tables: &Tables,
    table: &str,
    column: &str,
    values: &mut std::collections::BTreeSet<KeyValue>,
    dialect: Dialect,
) -> Refined {
    let class = class_in(tables, table, column);
    let mut changed = false;
    for value in values.iter() {
        match class.canonicalize(value, dialect) {
            Canonical::Already => {}
            Canonical::Is(_) => changed = true,
            Canonical::Unknown => return Refined::Unknown,
        }
    }
    if !changed {
        return Refined::Same;
    }
    match refine_values(tables, table, column, values, dialect) {
        Some(refined) => {
            *values = refined;
            Refined::Changed
        }
        None => Refined::Unknown,
    }
}

/// `true` when `name` is already lower-case (as [`ReadSet::add`] keeps names).
fn is_lower(name: &str) -> bool {
    name.is_ascii() && !name.bytes().any(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::db::catalog::ColumnClass;

    /// `refine_reads` as it was before the in-place fast path: rebuild everything.
    fn refine_reads_by_rebuilding(catalog: &Catalog, reads: &mut ReadSet, dialect: Dialect) {
        if reads.everything || reads.tables.is_empty() {
            return;
        }
        let known = catalog.snapshot();
        let old = std::mem::take(&mut reads.tables);
        for (table, conjunctions) in old {
            for conj in conjunctions {
                let mut refined = Conjunction::whole();
                for (column, values) in conj.columns {
                    if let Some(values) = refine_values(&known, &table, &column, &values, dialect) {
                        refined = refined.with_values(&column, values);
                    }
                }
                reads.add(&table, refined);
            }
        }
    }

    /// `refine_changes` as it was before: take every column out and put back the refined.
    fn refine_changes_by_rebuilding(catalog: &Catalog, changes: &mut ChangeSet, dialect: Dialect) {
        let known = catalog.snapshot();
        for (table, rows) in &mut changes.tables {
            for row in rows {
                let columns = std::mem::take(&mut row.columns);
                for (column, values) in columns {
                    if let Some(values) = refine_values(&known, table, &column, &values, dialect) {
                        row.columns.insert(column, values);
                    }
                }
            }
        }
    }

    fn catalog() -> Catalog {
        let catalog = Catalog::default();
        let columns = [
            ("id", ColumnClass::Uuid),
            ("n", ColumnClass::Int),
            ("name", ColumnClass::Text),
            ("flag", ColumnClass::Bool),
            ("at", ColumnClass::Other),
        ];
        let table = columns
            .iter()
            .map(|(c, class)| ((*c).to_owned(), *class))
            .collect();
        *catalog.tables.write().unwrap() = Arc::new(Tables::from([("t".to_owned(), table)]));
        catalog
    }

    #[test]
    fn a_write_to_a_view_changes_everything() {
        let catalog = catalog();
        *catalog.views.write().unwrap() = Arc::new(["v".to_owned()].into());
        let row = || RowChange::whole().with("id", KeyValue::from_i64(1));
        let mut through_view = ChangeSet::empty().with_row("v", row());
        catalog.refine_changes(&mut through_view, Dialect::Postgres);
        assert!(through_view.is_everything(), "{through_view:?}");
        // A read of the view was already everything; a write to a table stays a table's.
        let mut table_only = ChangeSet::empty().with_row("t", row());
        catalog.refine_changes(&mut table_only, Dialect::Postgres);
        assert!(!table_only.is_everything());
        assert_eq!(table_only.table_names().collect::<Vec<_>>(), ["t"]);
    }

    #[test]
    fn refining_in_place_gives_what_rebuilding_gave() {
        let catalog = catalog();
        let lower = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        let upper = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11";
        for dialect in [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite] {
            let k = |s: &str| KeyValue::from_str(s, dialect);
            let conj = |pairs: &[(&str, &str)]| {
                pairs
                    .iter()
                    .fold(Conjunction::whole(), |c, (col, v)| c.with(col, k(v)))
            };
            // Names not lower-case, set through the public fields (`add` would lower them).
            let mut shouting = ReadSet::empty();
            shouting.tables.insert(
                "T".to_owned(),
                vec![Conjunction {
                    columns: [("ID".to_owned(), [KeyValue::null()].into())].into(),
                }],
            );
            let cases = [
                // Canonical already: left as it is.
                ReadSet::empty().with("t", conj(&[("id", lower), ("n", "7")])),
                // Two spellings of one uuid: one alternative after refining.
                ReadSet::empty()
                    .with("t", conj(&[("id", upper)]))
                    .with("t", conj(&[("id", lower)])),
                // A column without comparable values: dropped; that alternative becomes
                // the whole table and absorbs the others.
                ReadSet::empty()
                    .with("t", conj(&[("id", lower)]))
                    .with("t", conj(&[("at", "2024-01-01"), ("n", "1")]))
                    .with("t", conj(&[("at", "2024-01-02")])),
                // Mixed values in one set, NULL, booleans, text, a uuid that is not one.
                ReadSet::empty()
                    .with(
                        "t",
                        Conjunction::whole().with_values("id", [k(lower), k(upper)]),
                    )
                    .with("t", conj(&[("flag", "true"), ("name", "José")]))
                    .with(
                        "t",
                        Conjunction::whole()
                            .with_values("n", [KeyValue::null(), k("12")])
                            .with("id", k("not-a-uuid")),
                    ),
                // A table the catalog does not know: every key unknown.
                ReadSet::empty()
                    .with("u", conj(&[("id", lower)]))
                    .with("t", conj(&[("name", "x")])),
                shouting,
                ReadSet::everything(),
                ReadSet::empty(),
            ];
            for case in cases {
                let mut fast = case.clone();
                catalog.refine_reads(&mut fast, dialect);
                let mut reference = case.clone();
                refine_reads_by_rebuilding(&catalog, &mut reference, dialect);
                assert_eq!(fast, reference, "{dialect:?}: {case:?}");

                let mut changes = ChangeSet::empty();
                for (table, alts) in &case.tables {
                    for alt in alts {
                        let mut row = RowChange::whole();
                        row.columns = alt.columns.clone();
                        changes = changes.with_row(table, row);
                    }
                }
                let mut fast = changes.clone();
                catalog.refine_changes(&mut fast, dialect);
                let mut reference = changes.clone();
                refine_changes_by_rebuilding(&catalog, &mut reference, dialect);
                assert_eq!(fast, reference, "{dialect:?}: {changes:?}");
            }
        }
    }
}
