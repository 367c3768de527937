//! The tables a reactive function depends on through the reactive functions it calls.
//!
//! Each function's model lists only what its own body reads; whoever knows every function
//! (the runtime's registry, the build-time TypeScript emitter) adds its callees' tables,
//! transitively, as whole-table dependencies.

use std::collections::{BTreeSet, HashSet};

use crate::model::TableDependency;

/// The tables read by the functions `calls` names, and by the functions they call,
/// transitively. `lookup` gives a function's own tables and calls by procedure name;
/// an empty name (a probed callee that is not reactive) is skipped. A cycle (a function
/// reaching itself) is walked once.
pub fn callee_tables<'a>(
    caller: &'a str,
    calls: &'a [&'a str],
    lookup: impl Fn(&str) -> Option<(&'a [String], &'a [&'a str])>,
) -> BTreeSet<&'a str> {
    let mut tables = BTreeSet::new();
    let mut visited = HashSet::from([caller]);
    let mut pending: Vec<&str> = calls.to_vec();
    while let Some(name) = pending.pop() {
        if name.is_empty() || !visited.insert(name) {
            continue;
        }
        if let Some((own, calls)) = lookup(name) {
            tables.extend(own.iter().map(String::as_str));
            pending.extend(calls);
        }
    }
    tables
}

/// Each table as a whole-table dependency, unless one is already there.
pub fn add_whole_tables<'a>(
    dependencies: &mut Vec<TableDependency>,
    tables: impl IntoIterator<Item = &'a str>,
) {
    for table in tables {
        if !dependencies
            .iter()
            .any(|d| d.table == table && d.keys.is_empty())
        {
            dependencies.push(TableDependency {
                table: table.to_owned(),
                keys: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::model::KeyDependency;

    fn graph() -> HashMap<&'static str, (Vec<String>, &'static [&'static str])> {
        HashMap::from([
            ("a", (vec!["agent".to_owned()], &["b"][..])),
            ("b", (vec!["message".to_owned()], &["c", "a"][..])),
            (
                "c",
                (vec!["memory".to_owned(), "agent".to_owned()], &["b"][..]),
            ),
            ("plain", (vec![], &[][..])),
        ])
    }

    #[test]
    fn callee_tables_are_transitive_and_cycles_end() {
        let graph = graph();
        let lookup = |name: &str| graph.get(name).map(|(t, c)| (&t[..], *c));
        let tables = callee_tables("a", &["b", ""], lookup);
        assert_eq!(
            tables.into_iter().collect::<Vec<_>>(),
            ["agent", "memory", "message"]
        );
        let tables = callee_tables("plain", &["missing", "c"], lookup);
        assert_eq!(
            tables.into_iter().collect::<Vec<_>>(),
            ["agent", "memory", "message"]
        );
    }

    #[test]
    fn callee_tables_are_added_once_as_whole_tables() {
        let keyed = TableDependency {
            table: "agent".into(),
            keys: vec![KeyDependency {
                column: "id".into(),
                values: vec![],
            }],
        };
        let mut dependencies = vec![keyed.clone()];
        add_whole_tables(&mut dependencies, ["agent", "message", "agent"]);
        let whole = |table: &str| TableDependency {
            table: table.into(),
            keys: vec![],
        };
        assert_eq!(dependencies, [keyed, whole("agent"), whole("message")]);
    }
}
