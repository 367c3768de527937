//! How a change to one TeamHub table reaches the others.
//!
//! `agent(message.from_agent_id)` means: when the agent row `id = X` is deleted (or
//! its id changes), the `message` rows with `from_agent_id = X` count as changed too —
//! what the foreign key's `ON DELETE CASCADE` does behind the interceptor's back.
//! Inserts and updates of other columns propagate nowhere (see `reactive::engine::RowOp`).

use reactive::Relations;

/// The relations of the TeamHub schema (the seed's, plus `message.to_agent_id`,
/// which cascades too).
#[derive(Relations)]
#[relations(
    agent(organization, message.from_agent_id, message.to_agent_id, memory.agent_id),
    organization(agent.organization_id, tool.organization_id),
)]
pub struct Schema;
