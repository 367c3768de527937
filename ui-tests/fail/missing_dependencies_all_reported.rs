use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct AgentInput {
    pub agent_id: i64,
}

// Every missing table is reported in one build, each at its SQL literal.
#[reactive_function(name = "agents.stats", dependencies(agent))]
pub async fn agent_stats(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<(i64, i64)> {
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM message WHERE from_agent_id = $1")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?;
    let memories: i64 = sqlx::query_scalar("SELECT count(*) FROM memory WHERE agent_id = $1")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?;
    Ok((messages, memories))
}

fn main() {}
