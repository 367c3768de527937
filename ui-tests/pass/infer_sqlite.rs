use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct AgentInput {
    pub agent_id: i64,
}

#[reactive_function(dialect = "sqlite")]
pub async fn memory_count(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM memory WHERE agent_id = ?1")
            .bind(input.agent_id)
            .fetch_one(db)
            .await?,
    )
}

fn main() {
    let def = reactive::registry::functions()
        .into_iter()
        .find(|f| f.model().name == "memory_count")
        .unwrap();
    let model = def.model();
    assert_eq!(serde_json::to_value(model.dialect).unwrap(), "sqlite");
    assert_eq!(model.dependencies[0].table, "memory");
    assert_eq!(model.dependencies[0].keys[0].column, "agent_id");
    assert_eq!(model.statements[0].params, [Some(0)]);
}
