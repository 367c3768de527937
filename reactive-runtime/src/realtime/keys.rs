//! What an event keeps of a write's change set: only the key columns some query filters
//! on, each value bounded in length, the whole bounded in bytes.
//!
//! A write's change set lists every value the statement named: an `INSERT` of a 500 KB
//! message body lists the body. Events need only what matching needs — the columns
//! subscription read sets (and the cache's `invalidated` keys) can compare — so
//! [`KeyColumns::trim`] keeps, per table, the columns the served functions' models
//! filter on and drops the rest. Dropping a column makes it unknown, and an unknown
//! value matches every query (`docs/protocol.md` section 5): trimming can only widen
//! what an event matches, never narrow it. A value longer than
//! [`HubConfig::max_key_len`](super::HubConfig::max_key_len) is dropped the same way,
//! and a table whose kept values exceed the event's byte budget becomes "any row".

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use reactive_codegen::model::FunctionModel;
use reactive_codegen::sql::RowFilter;

use crate::types::{ChangeSet, ReadSet, RowChange};

/// Bytes a value or name costs in the budget beyond its text (JSON quotes and commas,
/// rounded up), so that many tiny values still count.
const PER_ITEM: usize = 4;

/// The limits [`KeyColumns::trim`] applies (from [`HubConfig`](super::HubConfig)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrimLimits {
    /// Longest key value kept; longer ones make their column unknown.
    pub(crate) max_key_len: usize,
    /// Most bytes of key values and invalidated query keys in one event.
    pub(crate) max_event_bytes: usize,
}

/// The columns, per table, that some query filters on: the only ones events keep.
#[derive(Debug, Default)]
pub(crate) struct KeyColumns {
    tables: RwLock<HashMap<String, HashSet<String>>>,
}

impl KeyColumns {
    /// Adds the columns a function's queries filter on (its dependencies' key columns,
    /// and the key predicates of its statements' reads).
    pub(crate) fn watch_model(&self, model: &FunctionModel) {
        let mut tables = self.write();
        for dep in &model.dependencies {
            for key in &dep.keys {
                insert(&mut tables, &dep.table, &key.column);
            }
        }
        for st in &model.statements {
            for read in &st.analysis.reads {
                if let RowFilter::Keys(preds) = &read.filter {
                    for p in preds {
                        insert(&mut tables, &read.table, &p.column);
                    }
                }
            }
        }
    }

    /// Adds the columns a read set (a subscription entry's) filters on.
    pub(crate) fn watch_reads(&self, reads: &ReadSet) {
        let missing = {
            let tables = self.read();
            reads.tables.iter().any(|(table, alts)| {
                alts.iter()
                    .flat_map(|c| c.columns.keys())
                    .any(|c| !tables.get(table).is_some_and(|cols| cols.contains(c)))
            })
        };
        if missing {
            let mut tables = self.write();
            for (table, alts) in &reads.tables {
                for c in alts.iter().flat_map(|c| c.columns.keys()) {
                    insert(&mut tables, table, c);
                }
            }
        }
    }

    /// The part of `changes` an event keeps (see the module docs), and the invalidated
    /// query keys it keeps. When the keys alone exceed the budget they are dropped and
    /// the change becomes "everything": every subscription then matches, as it must,
    /// since no key can be checked any more.
    pub(crate) fn trim(
        &self,
        changes: &ChangeSet,
        invalidated: Vec<String>,
        limits: TrimLimits,
    ) -> (ChangeSet, Vec<String>) {
        let key_bytes: usize = invalidated.iter().map(|k| k.len() + PER_ITEM).sum();
        if changes.is_everything() || key_bytes > limits.max_event_bytes {
            return (ChangeSet::everything(), Vec::new());
        }
        let mut budget = limits.max_event_bytes - key_bytes;
        let tables = self.read();
        let mut out = ChangeSet::empty();
        for (table, rows) in &changes.tables {
            let kept = tables.get(table);
            let mut trimmed: Vec<RowChange> = Vec::new();
            let mut spent = 0;
            let mut whole = false;
            for row in rows {
                let mut r = RowChange::whole();
                for (column, values) in &row.columns {
                    if !kept.is_some_and(|k| k.contains(column))
                        || values.iter().any(|v| v.as_str().len() > limits.max_key_len)
                    {
                        continue;
                    }
                    spent += column.len()
                        + PER_ITEM
                        + values
                            .iter()
                            .map(|v| v.as_str().len() + PER_ITEM)
                            .sum::<usize>();
                    r.columns.insert(column.clone(), values.clone());
                }
                // A row without any kept column is any row of the table: it absorbs the
                // others. So does running out of budget.
                if r.is_whole() || spent > budget {
                    whole = true;
                    break;
                }
                if !trimmed.contains(&r) {
                    trimmed.push(r);
                }
            }
            if whole {
                out.tables.insert(table.clone(), vec![RowChange::whole()]);
            } else {
                budget -= spent;
                out.tables.insert(table.clone(), trimmed);
            }
        }
        (out, invalidated)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, HashSet<String>>> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, HashSet<String>>> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn insert(tables: &mut HashMap<String, HashSet<String>>, table: &str, column: &str) {
    if !tables.get(table).is_some_and(|c| c.contains(column)) {
        tables
            .entry(table.to_owned())
            .or_default()
            .insert(column.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Conjunction, KeyValue};
    use reactive_codegen::sql::Dialect;

    fn k(s: &str) -> KeyValue {
        KeyValue::from_str(s, Dialect::Postgres)
    }

    const LIMITS: TrimLimits = TrimLimits {
        max_key_len: 16,
        max_event_bytes: 200,
    };

    fn columns() -> KeyColumns {
        let cols = KeyColumns::default();
        cols.watch_reads(
            &ReadSet::empty().with("message", Conjunction::whole().with("channel_id", k("c"))),
        );
        cols
    }

    #[test]
    fn only_watched_columns_of_bounded_length_are_kept() {
        let cols = columns();
        let body = "x".repeat(500_000);
        let changes = ChangeSet::empty()
            .with_row(
                "message",
                RowChange::whole()
                    .with("channel_id", k("c1"))
                    .with("body", k(&body)),
            )
            .with_row("other", RowChange::whole().with("id", k("1")));
        let (t, inv) = cols.trim(&changes, vec!["q:{}".into()], LIMITS);
        assert_eq!(inv, vec!["q:{}".to_owned()]);
        let msg = &t.tables["message"];
        assert_eq!(msg.len(), 1);
        assert_eq!(msg[0].columns.keys().collect::<Vec<_>>(), ["channel_id"]);
        // a table no query filters on: any row
        assert!(t.tables["other"][0].is_whole());
        // a key value over the length bound: unknown, so any row
        let long = ChangeSet::empty().with_row(
            "message",
            RowChange::whole().with("channel_id", k(&"c".repeat(17))),
        );
        assert!(cols.trim(&long, vec![], LIMITS).0.tables["message"][0].is_whole());
    }

    #[test]
    fn the_budget_bounds_rows_and_invalidated_keys() {
        let cols = columns();
        let mut many = ChangeSet::empty();
        for i in 0..1000 {
            many.push_row(
                "message",
                RowChange::whole().with("channel_id", k(&format!("c{i}"))),
            );
        }
        let (t, _) = cols.trim(&many, vec![], LIMITS);
        assert_eq!(t.tables["message"], vec![RowChange::whole()]);
        // identical trimmed rows are kept once
        let mut same = ChangeSet::empty();
        for i in 0..1000 {
            same.push_row(
                "message",
                RowChange::whole()
                    .with("channel_id", k("c1"))
                    .with("id", k(&i.to_string())),
            );
        }
        assert_eq!(
            cols.trim(&same, vec![], LIMITS).0.tables["message"].len(),
            1
        );
        let keys: Vec<String> = (0..100).map(|i| format!("q:{{\"i\":{i}}}")).collect();
        let (t, inv) = cols.trim(&many, keys, LIMITS);
        assert!(t.is_everything() && inv.is_empty());
    }
}
