use reactive::{ReactiveDb, reactive_function};

#[reactive_function]
pub async fn agent_count(db: &ReactiveDb<sqlx::Any>) -> reactive::Result<i64> {
    Ok(sqlx::query_scalar("SELEC count(*) FROM agent").fetch_one(db).await?)
}

fn main() {}
