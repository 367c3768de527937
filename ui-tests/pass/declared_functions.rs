//! Function calls declared on `#[reactive_function]`: `dependencies(...)` makes a
//! cached query reading the listed tables; `mutation` an unknown write.
use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct AgentInput {
    pub agent_id: i64,
}

#[reactive_function(dependencies(agent, message))]
pub async fn agent_stats(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
    Ok(sqlx::query_scalar("SELECT total FROM agent_stats($1)")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?)
}

#[reactive_function(mutation)]
pub async fn archive_agent(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<bool> {
    Ok(sqlx::query_scalar("SELECT archive_agent($1)")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?)
}

fn main() {
    use reactive::model::FunctionKind;
    let model = |name: &str| {
        reactive::registry::functions()
            .into_iter()
            .find(|f| f.model().name == name)
            .expect("registered")
            .model()
            .clone()
    };
    let stats = model("agent_stats");
    assert_eq!(stats.kind, FunctionKind::Query);
    let tables: Vec<_> = stats.dependencies.iter().map(|d| d.table.as_str()).collect();
    assert_eq!(tables, ["agent", "message"]);
    assert!(stats.statements[0].analysis.unknown.is_none());
    let archive = model("archive_agent");
    assert_eq!(archive.kind, FunctionKind::Mutation);
    assert!(archive.statements[0].analysis.unknown.is_some());
}
