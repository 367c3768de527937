//! The TeamHub handlers (organization, agent, message, memory, tool): every
//! dependency inferred, every function registered.

use reactive::{ReactiveDb, Relations, reactive_function};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Relations)]
#[relations(
    agent(organization, message.from_agent_id, memory.agent_id),
    organization(agent.organization_id, tool.organization_id),
    message(agent.from_agent_id, agent.to_agent_id),
)]
pub struct Schema;

#[derive(Deserialize, TS)]
pub struct OrgInput {
    pub organization_id: i64,
}

#[derive(Deserialize, TS)]
pub struct AgentInput {
    pub agent_id: i64,
}

#[derive(Serialize, TS, sqlx::FromRow)]
pub struct Organization {
    pub id: i64,
    pub name: String,
}

#[derive(Serialize, TS, sqlx::FromRow)]
pub struct Agent {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub status: String,
}

#[derive(Serialize, TS, sqlx::FromRow)]
pub struct Message {
    pub id: i64,
    pub from_agent_id: i64,
    pub to_agent_id: i64,
    pub body: String,
}

#[derive(Serialize, TS, sqlx::FromRow)]
pub struct Memory {
    pub id: i64,
    pub agent_id: i64,
    pub content: String,
}

#[derive(Serialize, TS, sqlx::FromRow)]
pub struct Tool {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
}

#[derive(Serialize, TS)]
pub struct AgentStats {
    pub agent: Agent,
    pub messages_sent: i64,
    pub memories: i64,
}

#[reactive_function(name = "organizations.get")]
pub async fn organizations_get(db: &ReactiveDb<sqlx::Any>, input: OrgInput) -> reactive::Result<Organization> {
    Ok(
        sqlx::query_as("SELECT id, name FROM organization WHERE id = $1")
            .bind(input.organization_id)
            .fetch_one(db)
            .await?,
    )
}

#[reactive_function(name = "agents.findMany")]
pub async fn agents_find_many(db: &ReactiveDb<sqlx::Any>, input: OrgInput) -> reactive::Result<Vec<Agent>> {
    Ok(sqlx::query_as("SELECT id, organization_id, name, status FROM agent WHERE organization_id = $1 ORDER BY name")
        .bind(input.organization_id)
        .fetch_all(db)
        .await?)
}

#[reactive_function(name = "agents.getWithStats")]
pub async fn agents_get_with_stats(
    db: &ReactiveDb<sqlx::Any>,
    input: AgentInput,
) -> reactive::Result<AgentStats> {
    let agent = sqlx::query_as("SELECT id, organization_id, name, status FROM agent WHERE id = $1")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?;
    let messages_sent = sqlx::query_scalar("SELECT count(*) FROM message WHERE from_agent_id = $1")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?;
    let memories = sqlx::query_scalar("SELECT count(*) FROM memory WHERE agent_id = $1")
        .bind(input.agent_id)
        .fetch_one(db)
        .await?;
    Ok(AgentStats {
        agent,
        messages_sent,
        memories,
    })
}

#[derive(Deserialize, TS)]
pub struct NewAgent {
    pub organization_id: i64,
    pub name: String,
}

#[reactive_function(name = "agents.create")]
pub async fn agents_create(db: &ReactiveDb<sqlx::Any>, input: NewAgent) -> reactive::Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO agent (organization_id, name, status) VALUES ($1, $2, 'idle') RETURNING id",
    )
    .bind(input.organization_id)
    .bind(&input.name)
    .fetch_one(db)
    .await?)
}

#[derive(Deserialize, TS)]
pub struct AgentStatus {
    pub agent_id: i64,
    pub status: String,
}

#[reactive_function(name = "agents.setStatus", requires_ack)]
pub async fn agents_set_status(db: &ReactiveDb<sqlx::Any>, input: AgentStatus) -> reactive::Result<()> {
    sqlx::query("UPDATE agent SET status = $1 WHERE id = $2")
        .bind(&input.status)
        .bind(input.agent_id)
        .execute(db)
        .await?;
    Ok(())
}

#[reactive_function(name = "messages.inbox")]
pub async fn messages_inbox(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<Vec<Message>> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.from_agent_id, m.to_agent_id, m.body FROM message m \
         JOIN agent a ON a.id = m.from_agent_id WHERE m.to_agent_id = $1 ORDER BY m.id DESC LIMIT 50",
    )
    .bind(input.agent_id)
    .fetch_all(db)
    .await?)
}

#[derive(Deserialize, TS)]
pub struct NewMessage {
    pub from_agent_id: i64,
    pub to_agent_id: i64,
    pub body: String,
}

#[reactive_function(name = "messages.send")]
pub async fn messages_send(db: &ReactiveDb<sqlx::Any>, input: NewMessage) -> reactive::Result<()> {
    sqlx::query("INSERT INTO message (from_agent_id, to_agent_id, body) VALUES ($1, $2, $3)")
        .bind(input.from_agent_id)
        .bind(input.to_agent_id)
        .bind(&input.body)
        .execute(db)
        .await?;
    Ok(())
}

#[reactive_function(name = "memory.forAgent")]
pub async fn memory_for_agent(db: &ReactiveDb<sqlx::Any>, input: AgentInput) -> reactive::Result<Vec<Memory>> {
    Ok(
        sqlx::query_as("SELECT id, agent_id, content FROM memory WHERE agent_id = $1")
            .bind(input.agent_id)
            .fetch_all(db)
            .await?,
    )
}

#[derive(Deserialize, TS)]
pub struct NewMemory {
    pub agent_id: i64,
    pub content: String,
}

#[reactive_function(name = "memory.add")]
pub async fn memory_add(db: &ReactiveDb<sqlx::Any>, input: NewMemory) -> reactive::Result<()> {
    sqlx::query("INSERT INTO memory (agent_id, content) VALUES ($1, $2)")
        .bind(input.agent_id)
        .bind(&input.content)
        .execute(db)
        .await?;
    Ok(())
}

#[reactive_function(name = "tools.findMany")]
pub async fn tools_find_many(db: &ReactiveDb<sqlx::Any>, input: OrgInput) -> reactive::Result<Vec<Tool>> {
    Ok(
        sqlx::query_as("SELECT id, organization_id, name FROM tool WHERE organization_id = $1")
            .bind(input.organization_id)
            .fetch_all(db)
            .await?,
    )
}

#[derive(Deserialize, TS)]
pub struct ToolId {
    pub tool_id: i64,
}

#[reactive_function(name = "tools.delete")]
pub async fn tools_delete(db: &ReactiveDb<sqlx::Any>, input: ToolId) -> reactive::Result<()> {
    sqlx::query("DELETE FROM tool WHERE id = $1")
        .bind(input.tool_id)
        .execute(db)
        .await?;
    Ok(())
}

#[reactive_function(name = "organizations.count")]
pub async fn organizations_count(db: &ReactiveDb<sqlx::Any>) -> reactive::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM organization")
        .fetch_one(db)
        .await?)
}

fn main() {
    use reactive::model::FunctionKind::{Mutation, Query};

    let functions = reactive::registry::functions();
    let names: Vec<&str> = functions.iter().map(|f| f.model().name.as_str()).collect();
    assert_eq!(
        names,
        [
            "agents.create",
            "agents.findMany",
            "agents.getWithStats",
            "agents.setStatus",
            "memory.add",
            "memory.forAgent",
            "messages.inbox",
            "messages.send",
            "organizations.count",
            "organizations.get",
            "tools.delete",
            "tools.findMany",
        ]
    );
    let model = |name: &str| {
        functions
            .iter()
            .find(|f| f.model().name == name)
            .unwrap()
            .model()
    };
    let deps = |name: &str| {
        model(name)
            .dependencies
            .iter()
            .map(|d| {
                let keys: Vec<&str> = d.keys.iter().map(|k| k.column.as_str()).collect();
                format!("{}({})", d.table, keys.join(","))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(deps("organizations.get"), ["organization(id)"]);
    assert_eq!(deps("agents.findMany"), ["agent(organization_id)"]);
    assert_eq!(
        deps("agents.getWithStats"),
        ["agent(id)", "memory(agent_id)", "message(from_agent_id)"]
    );
    assert_eq!(deps("messages.inbox"), ["agent()", "message(to_agent_id)"]);
    assert_eq!(deps("memory.forAgent"), ["memory(agent_id)"]);
    assert_eq!(deps("tools.findMany"), ["tool(organization_id)"]);
    assert_eq!(deps("organizations.count"), ["organization()"]);
    for name in [
        "organizations.get",
        "agents.findMany",
        "agents.getWithStats",
        "messages.inbox",
        "tools.findMany",
    ] {
        assert_eq!(model(name).kind, Query, "{name}");
    }
    for name in [
        "agents.create",
        "agents.setStatus",
        "messages.send",
        "memory.add",
        "tools.delete",
    ] {
        assert_eq!(model(name).kind, Mutation, "{name}");
    }
    assert!(model("agents.setStatus").requires_ack);
    // The input is decoded with the path of a bad field; bindings come out in order.
    let stats = functions
        .iter()
        .find(|f| f.model().name == "agents.getWithStats")
        .unwrap();
    let prepared = (stats.prepare)(serde_json::json!({ "agent_id": 3 }))
        .ok()
        .unwrap();
    assert_eq!(prepared.bindings, [serde_json::json!(3)]);
    let ts = (stats.typescript)();
    assert_eq!(ts.output, "AgentStats");
    let declared: Vec<&str> = ts
        .declarations
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(declared, ["Agent", "AgentInput", "AgentStats"]);
    assert_eq!(reactive::engine::Relations::registered().edges().len(), 7);
}
