use reactive::{ReactiveDb, reactive_function};
use ts_rs::TS;

#[derive(TS, sqlx::FromRow)]
pub struct Agent {
    pub id: i64,
    pub name: String,
}

#[reactive_function]
pub async fn agents(db: &ReactiveDb<sqlx::Any>) -> reactive::Result<Vec<Agent>> {
    Ok(sqlx::query_as("SELECT id, name FROM agent").fetch_all(db).await?)
}

fn main() {}
