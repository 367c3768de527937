//! The relation edges of the database's own foreign keys: a `CASCADE`, `SET NULL` or
//! `SET DEFAULT` action changes referencing rows no statement names, so the engine
//! expands a change to the referenced table along them as along a declared edge.

use futures::StreamExt;
use reactive_codegen::sql::Dialect;
use sqlx::{AssertSqlSafe, Either, SqlSafeStr};

use super::queries::foreign_keys_query;
use crate::db::backend::{Backend, Exec};
use crate::types::RelationEdge;

/// Reads [`foreign_keys_query`]: one edge per column pair, from the referenced
/// table's column to the referencing one (a composite key gives one edge per pair:
/// each selects a superset of the rows the key selects, wider, never narrower).
pub(super) async fn read_foreign_key_edges<DB: Backend>(
    pool: &sqlx::Pool<DB>,
    dialect: Dialect,
) -> Result<Vec<RelationEdge>, sqlx::Error> {
    let exec = Exec::<DB> {
        sql: AssertSqlSafe(foreign_keys_query(dialect)).into_sql_str(),
        args: None,
        persistent: false,
    };
    let results: Vec<_> = DB::pool_run(pool, exec).collect().await;
    let mut edges = Vec::new();
    for result in results {
        let Either::Right(row) = result? else {
            continue;
        };
        let text = |i| match DB::row_value(&row, i) {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        };
        if let (Some(table), Some(column), Some(parent), Some(key)) =
            (text(0), text(1), text(2), text(3))
        {
            edges.push(RelationEdge::keyed(&parent, &key, &table, Some(&column)));
        }
    }
    Ok(edges)
}
