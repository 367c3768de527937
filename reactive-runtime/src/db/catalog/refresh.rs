//! Reading the catalog from the database: column classes, computed columns, views,
//! tables with triggers and what their bodies write, SQLite tables that replace on conflict, foreign-key actions.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use reactive_codegen::sql::Dialect;

use super::class::classify;
use super::foreign_keys::read_foreign_key_edges;
use super::queries::{inheritance_query, query, triggers_query, views_query};
use super::referencing::read_referencing;
use super::rows::text_rows;
use super::trigger_writes::{TriggerTargets, TriggerWrites, read_trigger_writes};
use super::{Catalog, Tables, write_set};
use crate::db::backend::Backend;
use crate::types::ReferencingValues;

impl Catalog {
    /// Reads the column types of every table of the database. On failure the catalog
    /// keeps what it knew (unknown columns stay unknown: wider, never stale).
    pub async fn refresh<DB: Backend>(&self, pool: &sqlx::Pool<DB>, dialect: Dialect) {
        self.dirty.store(false, Ordering::Relaxed);
        let rows = match text_rows(pool, query(dialect), 5).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(target: "reactive::db", error = %e, "could not read the column types; keys on unknown columns are dropped (wider invalidation)");
                return;
            }
        };
        let mut tables = Tables::new();
        let mut computed = HashSet::new();
        let mut replacing = HashSet::new();
        for row in rows {
            let text = |i: usize| row[i].clone();
            let (Some(table), Some(column), Some(ty)) = (text(0), text(1), text(2)) else {
                continue;
            };
            let flags = text(3).unwrap_or_default();
            if dialect == Dialect::Sqlite && replaces_on_conflict(&flags) {
                replacing.insert(table.to_lowercase());
            }
            let class = classify(dialect, &ty, &flags);
            let column = column.to_lowercase();
            if text(4).as_deref() == Some("y") {
                computed.insert(format!("{}.{column}", table.to_lowercase()));
            }
            let columns = tables.entry(table.to_lowercase()).or_default();
            let merged = columns.get(&column).map_or(class, |c| c.merge(class));
            columns.insert(column, merged);
        }
        tracing::debug!(target: "reactive::db", tables = tables.len(), "column types read");
        *self
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(tables);
        write_set(&self.computed, Arc::new(computed));
        write_set(&self.replacing, Arc::new(replacing));
        let referencing = match read_referencing(pool, dialect, &self.snapshot()).await {
            Ok(values) => values,
            Err(e) => {
                // Widest: the rows edges reach have an unknown referencing column.
                tracing::warn!(target: "reactive::db", error = %e, "could not read the foreign keys' SET NULL/SET DEFAULT actions; the referencing columns of rows reached through relations are unknown");
                ReferencingValues::unknown()
            }
        };
        self.set_referencing(Arc::new(referencing));
        match read_foreign_key_edges(pool, dialect).await {
            Ok(edges) => self.set_foreign_keys(Arc::new(edges)),
            // The edges read before stay: declared relations still cover what they name.
            Err(e) => {
                tracing::warn!(target: "reactive::db", error = %e, "could not read the foreign keys; rows their actions change are covered only by declared relations")
            }
        }
        self.refresh_views(pool, dialect).await;
        if let Some(sql) = inheritance_query(dialect) {
            match text_rows(pool, sql, 2).await {
                Ok(rows) => {
                    let pairs = rows.into_iter().filter_map(|row| match row.as_slice() {
                        [Some(child), Some(parent)] => {
                            Some((child.to_lowercase(), parent.to_lowercase()))
                        }
                        _ => None,
                    });
                    *self
                        .relatives
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Arc::new(relatives(pairs));
                }
                // The relatives read before stay (a partition created since is missed).
                Err(e) => {
                    tracing::warn!(target: "reactive::db", error = %e, "could not read the tables' inheritance; a write to a partition created since may miss its partitioned table's queries")
                }
            }
        }
        let mut relations: HashSet<String> = self.snapshot().keys().cloned().collect();
        relations.extend(self.views().iter().cloned());
        let targets = match read_trigger_writes(pool, dialect, &relations).await {
            Ok(targets) => targets,
            Err(e) => {
                // Widest: any write may have made a trigger write anything.
                tracing::warn!(target: "reactive::db", error = %e, "could not read the triggers' bodies; every write changes everything");
                TriggerTargets::from([("*".to_owned(), TriggerWrites::Everything)])
            }
        };
        *self
            .trigger_writes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(targets);
        match read_names(pool, triggers_query(dialect)).await {
            Ok(triggered) => write_set(&self.triggered, Arc::new(triggered)),
            Err(e) => {
                // Widest: every table's written rows are unknown until a read succeeds.
                tracing::warn!(target: "reactive::db", error = %e, "could not read the triggers; written rows are unknown");
                write_set(&self.triggered, Arc::new(HashSet::from(["*".to_owned()])));
            }
        }
    }

    /// Reads the names of the database's views. On failure the catalog keeps the views
    /// it knew (a view created since would be read as a table: logged as a warning).
    async fn refresh_views<DB: Backend>(&self, pool: &sqlx::Pool<DB>, dialect: Dialect) {
        match read_names(pool, views_query(dialect)).await {
            Ok(views) => {
                *self
                    .views
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(views);
            }
            Err(e) => {
                tracing::warn!(target: "reactive::db", error = %e, "could not read the views; a view created since is read as a table");
            }
        }
    }
}

/// Every table of `(child, parent)` pairs → its ancestors and descendants (transitive).
fn relatives(
    pairs: impl IntoIterator<Item = (String, String)>,
) -> HashMap<String, BTreeSet<String>> {
    let mut parents: HashMap<String, Vec<String>> = HashMap::new();
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    for (child, parent) in pairs {
        parents
            .entry(child.clone())
            .or_default()
            .push(parent.clone());
        children.entry(parent).or_default().push(child);
    }
    let reach = |start: &str, edges: &HashMap<String, Vec<String>>, out: &mut BTreeSet<String>| {
        let mut stack = vec![start.to_owned()];
        while let Some(t) = stack.pop() {
            for next in edges.get(&t).into_iter().flatten() {
                if next != start && out.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
    };
    let tables: BTreeSet<String> = parents.keys().chain(children.keys()).cloned().collect();
    tables
        .into_iter()
        .map(|t| {
            let mut out = BTreeSet::new();
            reach(&t, &parents, &mut out);
            reach(&t, &children, &mut out);
            (t, out)
        })
        .collect()
}

/// `true` when a SQLite table's `CREATE` text has a constraint whose conflict
/// resolution is `REPLACE` (`UNIQUE ... ON CONFLICT REPLACE`, also on the primary key):
/// a plain `INSERT` or `UPDATE` then deletes the rows it conflicts with. A false
/// positive (the words in a comment or a default) only widens.
fn replaces_on_conflict(create: &str) -> bool {
    let words: Vec<String> = create
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    words
        .windows(3)
        .any(|w| w[0] == "on" && w[1] == "conflict" && w[2] == "replace")
}

/// The lower-cased names in the first column of a query's rows.
async fn read_names<DB: Backend>(
    pool: &sqlx::Pool<DB>,
    sql: String,
) -> Result<HashSet<String>, sqlx::Error> {
    Ok(text_rows(pool, sql, 1)
        .await?
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .map(|name| name.to_lowercase())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relatives_are_ancestors_and_descendants() {
        let r = relatives([
            ("p1".to_owned(), "p".to_owned()),
            ("p2".to_owned(), "p".to_owned()),
            ("p1a".to_owned(), "p1".to_owned()),
        ]);
        let names = |t: &str| r[t].iter().map(String::as_str).collect::<Vec<_>>();
        assert_eq!(names("p"), ["p1", "p1a", "p2"]);
        assert_eq!(names("p1"), ["p", "p1a"]);
        assert_eq!(names("p1a"), ["p", "p1"]);
        assert_eq!(names("p2"), ["p"]);
    }

    #[test]
    fn replace_constraints_are_found_in_the_create_text() {
        assert!(replaces_on_conflict(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE ON CONFLICT REPLACE)"
        ));
        assert!(replaces_on_conflict(
            "create table t (a, b, unique (a, b) on\n conflict\treplace)"
        ));
        assert!(replaces_on_conflict(
            "CREATE TABLE t (id INTEGER PRIMARY KEY ON CONFLICT REPLACE)"
        ));
        assert!(!replaces_on_conflict(
            "CREATE TABLE t (id INTEGER PRIMARY KEY ON CONFLICT ABORT, replace TEXT)"
        ));
    }
}
