use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct SearchInput {
    pub column: String,
}

#[reactive_function]
pub async fn sorted_agents(db: &ReactiveDb<sqlx::Any>, input: SearchInput) -> reactive::Result<Vec<String>> {
    let sql = format!("SELECT name FROM agent ORDER BY {}", input.column);
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(db).await?)
}

fn main() {}
