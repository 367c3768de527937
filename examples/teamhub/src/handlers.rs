//! TeamHub's procedures. Every one is a `#[reactive_function]` whose dependencies
//! are inferred from its SQL: nothing here lists tables by hand.
//!
//! SQL uses `$N` placeholders; on MySQL the runtime rewrites them to `?` (each
//! appears once, in order), so the same handlers run on SQLite, PostgreSQL and MariaDB.

use reactive::{Error, ReactiveDb, reactive_function};

use crate::model::*;

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn new_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    format!(
        "{prefix}-{nanos:x}{:04x}",
        SEQ.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}

fn check_name(name: &str) -> reactive::Result<()> {
    if name.trim().is_empty() || name.len() > 80 {
        return Err(Error::BadRequest("name must be 1 to 80 characters".into()));
    }
    Ok(())
}

/// All agents of an organization.
#[reactive_function(name = "agents.findMany")]
pub async fn agents_find_many(
    db: &ReactiveDb<sqlx::Any>,
    input: OrgInput,
) -> reactive::Result<Vec<Agent>> {
    Ok(sqlx::query_as::<_, Agent>(
        "SELECT id, organization_id, name, status, created_at FROM agent \
         WHERE organization_id = $1 ORDER BY created_at, id",
    )
    .bind(&input.organization_id)
    .fetch_all(db)
    .await?)
}

/// One agent with the number of its messages and memories.
#[reactive_function(name = "agents.getWithStats")]
pub async fn agents_get_with_stats(
    db: &ReactiveDb<sqlx::Any>,
    input: AgentInput,
) -> reactive::Result<AgentStats> {
    let agent = sqlx::query_as::<_, Agent>(
        "SELECT id, organization_id, name, status, created_at FROM agent \
         WHERE id = $1 AND organization_id = $2",
    )
    .bind(&input.agent_id)
    .bind(&input.organization_id)
    .fetch_optional(db)
    .await?;
    // Two keyed counts rather than `from_agent_id = $2 OR to_agent_id = $3`: an OR across
    // columns narrows nothing, while each subquery's keys narrow what invalidates it.
    let message_count: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM message WHERE organization_id = $1 AND from_agent_id = $2) \
         + (SELECT COUNT(*) FROM message WHERE organization_id = $3 AND to_agent_id = $4 \
            AND from_agent_id <> $5)",
    )
    .bind(&input.organization_id)
    .bind(&input.agent_id)
    .bind(&input.organization_id)
    .bind(&input.agent_id)
    .bind(&input.agent_id)
    .fetch_one(db)
    .await?;
    let memory_count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM memory WHERE agent_id = $1 AND organization_id = $2",
    )
    .bind(&input.agent_id)
    .bind(&input.organization_id)
    .fetch_one(db)
    .await?;
    Ok(AgentStats {
        agent,
        message_count,
        memory_count,
    })
}

/// Create an agent.
#[reactive_function(name = "agents.create")]
pub async fn agents_create(
    db: &ReactiveDb<sqlx::Any>,
    input: CreateAgent,
) -> reactive::Result<Agent> {
    check_name(&input.name)?;
    let agent = Agent {
        id: new_id("agt"),
        organization_id: input.organization_id.clone(),
        name: input.name.trim().to_string(),
        status: "idle".into(),
        created_at: now_millis(),
    };
    sqlx::query(
        "INSERT INTO agent (id, organization_id, name, status, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&agent.id)
    .bind(&input.organization_id)
    .bind(&agent.name)
    .bind(&agent.status)
    .bind(agent.created_at)
    .execute(db)
    .await?;
    Ok(agent)
}

/// Rename an agent or change its status.
#[reactive_function(name = "agents.update")]
pub async fn agents_update(
    db: &ReactiveDb<sqlx::Any>,
    input: UpdateAgent,
) -> reactive::Result<Agent> {
    if let Some(name) = &input.data.name {
        check_name(name)?;
    }
    let done = sqlx::query(
        "UPDATE agent SET name = COALESCE($1, name), status = COALESCE($2, status) \
         WHERE id = $3 AND organization_id = $4",
    )
    .bind(input.data.name.as_deref().map(str::trim))
    .bind(&input.data.status)
    .bind(&input.id)
    .bind(&input.organization_id)
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("agent {}", input.id)));
    }
    Ok(sqlx::query_as::<_, Agent>(
        "SELECT id, organization_id, name, status, created_at FROM agent WHERE id = $1 AND organization_id = $2",
    )
    .bind(&input.id)
    .bind(&input.organization_id)
    .fetch_one(db)
    .await?)
}

/// Delete an agent with its messages and memories, in one transaction.
#[reactive_function(name = "agents.delete")]
pub async fn agents_delete(
    db: &ReactiveDb<sqlx::Any>,
    input: DeleteAgent,
) -> reactive::Result<bool> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM message WHERE organization_id = $1 AND (from_agent_id = $2 OR to_agent_id = $3)")
        .bind(&input.organization_id)
        .bind(&input.id)
        .bind(&input.id)
        .execute(&mut tx)
        .await?;
    sqlx::query("DELETE FROM memory WHERE agent_id = $1 AND organization_id = $2")
        .bind(&input.id)
        .bind(&input.organization_id)
        .execute(&mut tx)
        .await?;
    let done = sqlx::query("DELETE FROM agent WHERE id = $1 AND organization_id = $2")
        .bind(&input.id)
        .bind(&input.organization_id)
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// Messages sent or received by an agent, oldest first. Pushed: a chat view held by many
/// pages gets each new message in its event stream instead of refetching it.
#[reactive_function(name = "messages.getAll", push)]
pub async fn messages_get_all(
    db: &ReactiveDb<sqlx::Any>,
    input: AgentInput,
) -> reactive::Result<Vec<Message>> {
    // A UNION of two keyed reads (see `agents_get_with_stats`).
    Ok(sqlx::query_as::<_, Message>(
        "SELECT id, from_agent_id, to_agent_id, body, created_at FROM message \
         WHERE organization_id = $1 AND from_agent_id = $2 \
         UNION \
         SELECT id, from_agent_id, to_agent_id, body, created_at FROM message \
         WHERE organization_id = $3 AND to_agent_id = $4 \
         ORDER BY created_at, id",
    )
    .bind(&input.organization_id)
    .bind(&input.agent_id)
    .bind(&input.organization_id)
    .bind(&input.agent_id)
    .fetch_all(db)
    .await?)
}

/// Send a message from one agent to another.
#[reactive_function(name = "messages.send")]
pub async fn messages_send(
    db: &ReactiveDb<sqlx::Any>,
    input: SendMessage,
) -> reactive::Result<Message> {
    if input.body.trim().is_empty() {
        return Err(Error::BadRequest("body must not be empty".into()));
    }
    let message = Message {
        id: new_id("msg"),
        from_agent_id: input.from_agent_id.clone(),
        to_agent_id: input.to_agent_id.clone(),
        body: input.body.clone(),
        created_at: now_millis(),
    };
    sqlx::query(
        "INSERT INTO message (id, organization_id, from_agent_id, to_agent_id, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&message.id)
    .bind(&input.organization_id)
    .bind(&input.from_agent_id)
    .bind(&input.to_agent_id)
    .bind(&input.body)
    .bind(message.created_at)
    .execute(db)
    .await?;
    Ok(message)
}

/// Add a memory to an agent.
#[reactive_function(name = "memory.add")]
pub async fn memory_add(db: &ReactiveDb<sqlx::Any>, input: AddMemory) -> reactive::Result<Memory> {
    let memory = Memory {
        id: new_id("mem"),
        agent_id: input.agent_id.clone(),
        content: input.content.clone(),
        created_at: now_millis(),
    };
    sqlx::query(
        "INSERT INTO memory (id, organization_id, agent_id, content, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&memory.id)
    .bind(&input.organization_id)
    .bind(&input.agent_id)
    .bind(&input.content)
    .bind(memory.created_at)
    .execute(db)
    .await?;
    Ok(memory)
}

/// The 20 most recent memories of an agent.
#[reactive_function(name = "memory.recent")]
pub async fn memory_recent(
    db: &ReactiveDb<sqlx::Any>,
    input: AgentInput,
) -> reactive::Result<Vec<Memory>> {
    Ok(sqlx::query_as::<_, Memory>(
        "SELECT id, agent_id, content, created_at FROM memory \
         WHERE agent_id = $1 AND organization_id = $2 ORDER BY created_at DESC, id DESC LIMIT 20",
    )
    .bind(&input.agent_id)
    .bind(&input.organization_id)
    .fetch_all(db)
    .await?)
}

/// The tools an organization can use.
#[reactive_function(name = "tools.available")]
pub async fn tools_available(
    db: &ReactiveDb<sqlx::Any>,
    input: OrgInput,
) -> reactive::Result<Vec<Tool>> {
    Ok(sqlx::query_as::<_, Tool>(
        "SELECT id, name FROM tool WHERE organization_id = $1 ORDER BY name",
    )
    .bind(&input.organization_id)
    .fetch_all(db)
    .await?)
}
