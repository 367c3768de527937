use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct AgentInput {
    pub agent_id: i64,
}

// A plain helper: reactive cannot see the SQL inside it.
async fn count_messages(db: &ReactiveDb<sqlx::Any>, agent_id: i64) -> reactive::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM message WHERE from_agent_id = $1")
        .bind(agent_id)
        .fetch_one(db)
        .await?)
}

#[reactive_function]
pub async fn agent_message_count(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
    count_messages(db, input.agent_id).await
}

fn main() {}
