use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct OrgInput {
    pub organization_id: i64,
}

#[reactive_function(dialect = "mysql")]
pub async fn tool_names(db: &ReactiveDb<sqlx::Any>, input: OrgInput) -> reactive::Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT `name` FROM tool WHERE organization_id = ?")
            .bind(input.organization_id)
            .fetch_all(db)
            .await?,
    )
}

// A mutation, inferred from the write; its key is traced to the input.
#[derive(Deserialize, TS)]
pub struct NewTool {
    pub organization_id: i64,
    pub name: String,
}

#[reactive_function(dialect = "mysql", requires_ack)]
pub async fn tool_create(db: &ReactiveDb<sqlx::Any>, input: NewTool) -> reactive::Result<()> {
    sqlx::query("INSERT INTO tool (organization_id, name) VALUES (?, ?)")
        .bind(input.organization_id)
        .bind(&input.name)
        .execute(db)
        .await?;
    Ok(())
}

fn main() {
    let functions = reactive::registry::functions();
    let read = functions
        .iter()
        .find(|f| f.model().name == "tool_names")
        .unwrap()
        .model();
    assert_eq!(serde_json::to_value(read.dialect).unwrap(), "mysql");
    assert_eq!(read.kind, reactive::model::FunctionKind::Query);
    assert_eq!(read.dependencies[0].table, "tool");
    assert_eq!(read.dependencies[0].keys[0].column, "organization_id");
    let write = functions
        .iter()
        .find(|f| f.model().name == "tool_create")
        .unwrap()
        .model();
    assert_eq!(write.kind, reactive::model::FunctionKind::Mutation);
    assert!(write.requires_ack);
}
