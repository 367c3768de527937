use reactive::{ReactiveDb, reactive_function};
use ts_rs::TS;

#[derive(TS)]
pub struct OrgInput {
    pub organization_id: i64,
}

#[reactive_function]
pub async fn agent_count(db: &ReactiveDb<sqlx::Any>, input: OrgInput) -> reactive::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM agent WHERE organization_id = $1")
        .bind(input.organization_id)
        .fetch_one(db)
        .await?)
}

fn main() {}
