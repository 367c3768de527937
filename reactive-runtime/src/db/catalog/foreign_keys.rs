//! The relation edges of the database's own foreign keys: a `CASCADE`, `SET NULL` or
//! `SET DEFAULT` action changes referencing rows no statement names, so the engine
//! expands a change to the referenced table along them as along a declared edge.

use reactive_codegen::sql::Dialect;

use super::queries::foreign_keys_query;
use super::rows::text_rows;
use crate::db::backend::Backend;
use crate::types::RelationEdge;

/// Reads [`foreign_keys_query`]: one edge per column pair, from the referenced
/// table's column to the referencing one (a composite key gives one edge per pair:
/// each selects a superset of the rows the key selects, wider, never narrower).
pub(super) async fn read_foreign_key_edges<DB: Backend>(
    pool: &sqlx::Pool<DB>,
    dialect: Dialect,
) -> Result<Vec<RelationEdge>, sqlx::Error> {
    let mut edges = Vec::new();
    for row in text_rows(pool, foreign_keys_query(dialect), 4).await? {
        if let [Some(table), Some(column), Some(parent), Some(key)] = row.as_slice() {
            edges.push(RelationEdge::keyed(parent, key, table, Some(column)));
        }
    }
    Ok(edges)
}
