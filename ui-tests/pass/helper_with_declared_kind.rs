// Helpers factored as sqlx users factor them: `impl Executor` helpers called with the
// handle and with `&mut *tx`. A declared kind lets the macro accept what it cannot see.
use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use ts_rs::TS;

#[derive(Deserialize, TS)]
pub struct AgentInput {
    pub agent_id: i64,
}

async fn count_messages<'e>(
    e: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    agent_id: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM message WHERE from_agent_id = $1")
        .bind(agent_id)
        .fetch_one(e)
        .await
}

#[reactive_function(query)]
pub async fn agent_message_count(
    db: &ReactiveDb<sqlx::Postgres>,
    input: AgentInput,
) -> reactive::Result<i64> {
    Ok(count_messages(db, input.agent_id).await?)
}

#[reactive_function(mutation)]
pub async fn clear_messages(
    db: &ReactiveDb<sqlx::Postgres>,
    input: AgentInput,
) -> reactive::Result<i64> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM message WHERE from_agent_id = $1")
        .bind(input.agent_id)
        .execute(&mut *tx)
        .await?;
    let left = count_messages(&mut *tx, input.agent_id).await?;
    tx.commit().await?;
    Ok(left)
}

fn main() {}
