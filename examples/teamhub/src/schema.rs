//! How a change to one TeamHub table reaches the others. `agent(message.from_agent_id)`:
//! a change to agent row `id = X` also counts as a change to message rows with
//! `from_agent_id = X` (deleting an agent cascades to its messages and memories).

use reactive::Relations;

/// The relations of the TeamHub schema.
#[derive(Relations)]
#[relations(
    agent(organization, message.from_agent_id, message.to_agent_id, memory.agent_id),
    organization(agent.organization_id, tool.organization_id),
)]
pub struct Schema;
