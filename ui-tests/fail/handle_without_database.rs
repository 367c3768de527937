use reactive::{ReactiveDb, reactive_function};

// The handle names the database the handler runs on: `ReactiveDb<Postgres>`, ...
#[reactive_function]
pub async fn agent_count(db: &ReactiveDb) -> reactive::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM agent")
        .fetch_one(db)
        .await?)
}

fn main() {}
