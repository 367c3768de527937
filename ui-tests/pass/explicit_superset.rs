use reactive::{ReactiveDb, reactive_function};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct AgentInput {
    pub agent_id: i64,
}

#[derive(Serialize, TS)]
pub struct AgentStats {
    pub messages: i64,
    pub memories: i64,
}

// Lists more than the body reads (`tool`): allowed; listed tables the body does
// not show are whole-table dependencies.
#[reactive_function(
    name = "agents.getWithStats",
    dependencies(agent, message, memory, tool)
)]
pub async fn agent_with_stats(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<AgentStats> {
    let messages = sqlx::query_scalar("SELECT count(*) FROM message WHERE from_agent_id = $1")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?;
    let memories = sqlx::query_scalar(
        "SELECT count(*) FROM memory m JOIN agent a ON a.id = m.agent_id WHERE a.id = $1",
    )
    .bind(input.agent_id)
    .fetch_one(db)
    .await?;
    Ok(AgentStats { messages, memories })
}

// Run-time SQL is fine with explicit dependencies.
#[derive(Deserialize, TS)]
pub struct Sorted {
    pub column: String,
}

#[reactive_function(dependencies(agent))]
pub async fn agents_sorted(db: &ReactiveDb<sqlx::Any>, input: Sorted) -> reactive::Result<Vec<String>> {
    let column = if input.column == "name" { "name" } else { "id" };
    let sql = format!("SELECT name FROM agent ORDER BY {column}");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(db)
        .await?)
}

// A plain helper receiving the handle: explicit dependencies silence the check.
async fn count_messages(db: &ReactiveDb<sqlx::Any>, agent_id: i64) -> reactive::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM message WHERE from_agent_id = $1")
            .bind(agent_id)
            .fetch_one(db)
            .await?,
    )
}

#[reactive_function(dependencies(message))]
pub async fn message_total(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
    count_messages(db, input.agent_id).await
}

fn main() {
    let total = reactive::registry::functions()
        .into_iter()
        .find(|f| f.model().name == "message_total")
        .unwrap();
    assert_eq!(total.model().dependencies.len(), 1);
    assert_eq!(total.model().dependencies[0].table, "message");
    assert!(total.model().dependencies[0].keys.is_empty());

    let functions = reactive::registry::functions();
    let stats = functions
        .iter()
        .find(|f| f.model().name == "agents.getWithStats")
        .unwrap()
        .model();
    let tables: Vec<&str> = stats
        .dependencies
        .iter()
        .map(|d| d.table.as_str())
        .collect();
    for table in ["agent", "memory", "message", "tool"] {
        assert!(tables.contains(&table), "{tables:?}");
    }
    let sorted = functions
        .iter()
        .find(|f| f.model().name == "agents_sorted")
        .unwrap()
        .model();
    assert_eq!(sorted.dependencies.len(), 1);
    assert!(sorted.dependencies[0].keys.is_empty());
}
