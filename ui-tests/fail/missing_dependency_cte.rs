use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct OrgInput {
    pub organization_id: i64,
}

#[reactive_function(dependencies(agent))]
pub async fn busy_agents(db: &ReactiveDb<sqlx::Any>, input: OrgInput) -> reactive::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "WITH busy AS (SELECT from_agent_id FROM message GROUP BY from_agent_id HAVING count(*) > 10) \
         SELECT a.name FROM agent a JOIN busy b ON b.from_agent_id = a.id WHERE a.organization_id = $1",
    )
    .bind(input.organization_id)
    .fetch_all(db)
    .await?)
}

fn main() {}
