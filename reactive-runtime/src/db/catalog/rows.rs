//! Running one catalog query: each row as its columns' text.

use futures::StreamExt;
use sqlx::{AssertSqlSafe, Either, SqlSafeStr};

use crate::db::backend::{Backend, Exec};

/// Every row of `sql`, its first `columns` columns as text (`None`: NULL or not text).
pub(super) async fn text_rows<DB: Backend>(
    pool: &sqlx::Pool<DB>,
    sql: String,
    columns: usize,
) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
    let exec = Exec::<DB> {
        sql: AssertSqlSafe(sql).into_sql_str(),
        args: None,
        persistent: false,
    };
    let results: Vec<_> = DB::pool_run(pool, exec).collect().await;
    let mut rows = Vec::new();
    for result in results {
        if let Either::Right(row) = result? {
            rows.push(
                (0..columns)
                    .map(|i| match DB::row_value(&row, i) {
                        Some(serde_json::Value::String(s)) => Some(s),
                        _ => None,
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}
