use reactive::{ReactiveDb, reactive_function};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct OrgInput {
    pub organization_id: i64,
}

#[derive(Serialize, TS, sqlx::FromRow)]
pub struct Agent {
    pub id: i64,
    pub name: String,
}

#[reactive_function(name = "agents.findMany")]
pub async fn agents_find_many(db: &ReactiveDb<sqlx::Any>, input: OrgInput) -> reactive::Result<Vec<Agent>> {
    Ok(
        sqlx::query_as::<_, Agent>("SELECT id, name FROM agent WHERE organization_id = $1")
            .bind(input.organization_id)
            .fetch_all(db)
            .await?,
    )
}

fn main() {
    let def = reactive::registry::functions()
        .into_iter()
        .find(|f| f.model().name == "agents.findMany")
        .expect("registered");
    let model = def.model();
    assert_eq!(model.rust_name, "agents_find_many");
    assert_eq!(model.kind, reactive::model::FunctionKind::Query);
    assert_eq!(model.dependencies.len(), 1);
    assert_eq!(model.dependencies[0].table, "agent");
    assert_eq!(model.dependencies[0].keys[0].column, "organization_id");
    assert_eq!(model.bindings[0].path, ["organization_id"]);
    let prepared = (def.prepare)(serde_json::json!({ "organization_id": 7 }))
        .ok()
        .expect("valid input");
    assert_eq!(prepared.bindings, [serde_json::json!(7)]);
    let error = (def.prepare)(serde_json::json!({ "organization_id": "x" }))
        .err()
        .expect("invalid input");
    assert_eq!(error.path, "organization_id");
    let ts = (def.typescript)();
    assert_eq!(ts.input, "OrgInput");
    assert_eq!(ts.output, "Array<Agent>");
    assert!(ts.declarations.iter().any(|(name, _)| name == "Agent"));
}
