use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct AgentInput {
    pub agent_id: i64,
}

mod messages {
    use super::AgentInput;
    use reactive::{ReactiveDb, reactive_function};

    #[reactive_function]
    pub async fn message_count(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM message WHERE from_agent_id = $1")
            .bind(input.agent_id)
            .fetch_one(db)
            .await?)
    }
}

// `messages::message_count` reads `message`, which this list misses.
#[reactive_function(dependencies(agent))]
pub async fn agent_activity(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
    let name: String = sqlx::query_scalar("SELECT name FROM agent WHERE id = $1")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?;
    let count = messages::message_count(db, AgentInput { agent_id: input.agent_id }).await?;
    Ok(count + name.len() as i64)
}

fn main() {}
