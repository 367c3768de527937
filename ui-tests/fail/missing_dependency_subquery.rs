use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct OrgInput {
    pub organization_id: i64,
}

#[reactive_function(dependencies(agent))]
pub async fn agents_with_memories(db: &ReactiveDb<sqlx::Any>, input: OrgInput) -> reactive::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT name FROM agent WHERE organization_id = $1 AND id IN (SELECT agent_id FROM memory)",
    )
    .bind(input.organization_id)
    .fetch_all(db)
    .await?)
}

fn main() {}
