use reactive::Relations;

#[derive(Relations)]
#[relations(
    agent(message.from_agent_id),
    organization(agent.organization_id),
    agent(memory.agent_id),
)]
pub struct Schema;

fn main() {}
