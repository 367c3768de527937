use reactive::Relations;

#[derive(Relations)]
#[relations(
    agent(organization, message.from_agent_id.extra, memory.agent_id),
    organization = tool,
    memory,
)]
pub struct Schema;

fn main() {}
