use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct AgentInput {
    pub agent_id: i64,
}

#[reactive_function(dependencies(agent))]
pub async fn message_count(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM message WHERE from_agent_id = $1")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?)
}

fn main() {}
