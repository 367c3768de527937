use reactive::{ReactiveDb, reactive_function};

#[reactive_function]
pub async fn agents_in(organization_id: i64, db: &ReactiveDb<sqlx::Any>) -> reactive::Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT name FROM agent WHERE organization_id = $1")
        .bind(organization_id)
        .fetch_all(db)
        .await?)
}

#[reactive_function]
pub async fn agent_named(db: &ReactiveDb<sqlx::Any>, organization_id: i64, name: String) -> reactive::Result<i64> {
    Ok(sqlx::query_scalar("SELECT id FROM agent WHERE organization_id = $1 AND name = $2")
        .bind(organization_id)
        .bind(name)
        .fetch_one(db)
        .await?)
}

#[reactive_function]
pub async fn no_result(db: &ReactiveDb<sqlx::Any>) -> i64 {
    let _ = db;
    0
}

fn main() {}
