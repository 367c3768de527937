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

    #[reactive_function(name = "messages.count")]
    pub async fn message_count(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM message WHERE from_agent_id = $1")
                .bind(input.agent_id)
                .fetch_one(db)
                .await?,
        )
    }
}

use messages::message_count;

// Inferred: the callee's tables are added to the caller's model.
#[reactive_function]
pub async fn activity(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
    let name: String = sqlx::query_scalar("SELECT name FROM agent WHERE id = $1")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?;
    Ok(message_count(
        db,
        AgentInput {
            agent_id: input.agent_id,
        },
    )
    .await?
        + name.len() as i64)
}

// Explicit: the list covers the callee's tables (checked at compile time).
#[reactive_function(dependencies(agent, message))]
pub async fn activity_explicit(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
    let name: String = sqlx::query_scalar("SELECT name FROM agent WHERE id = $1")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?;
    Ok(messages::message_count(
        db,
        AgentInput {
            agent_id: input.agent_id,
        },
    )
    .await?
        + name.len() as i64)
}

// Two levels: `outer` calls `activity`, which calls `message_count`.
#[reactive_function]
pub async fn outer(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
    activity(db, input).await
}

fn main() {
    let functions = reactive::registry::functions();
    let model = |name: &str| {
        functions
            .iter()
            .find(|f| f.model().name == name)
            .unwrap()
            .model()
    };
    let tables = |name: &str| {
        model(name)
            .dependencies
            .iter()
            .map(|d| d.table.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        tables("activity").contains(&"message".to_owned()),
        "{:?}",
        tables("activity")
    );
    assert!(tables("activity").contains(&"agent".to_owned()));
    assert_eq!(model("activity").calls, ["messages.count"]);
    assert!(tables("activity_explicit").contains(&"message".to_owned()));
    assert!(
        tables("outer").contains(&"message".to_owned()),
        "{:?}",
        tables("outer")
    );
    assert!(tables("outer").contains(&"agent".to_owned()));
    assert_eq!(model("outer").calls, ["activity"]);
}
