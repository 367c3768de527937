//! A call of a function reactive cannot see into (here with a side effect) must be
//! declared: `dependencies(...)` (a cached query) or `mutation`.
use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct AgentInput {
    pub agent_id: i64,
}

#[reactive_function]
pub async fn archive_agent(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<bool> {
    Ok(sqlx::query_scalar("SELECT archive_agent($1)")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?)
}

#[reactive_function]
pub async fn agent_stats(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
    Ok(sqlx::query_scalar("SELECT total FROM agent_stats($1)")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?)
}

fn main() {}
