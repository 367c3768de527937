use reactive::Relations;

#[derive(Relations)]
#[relations(
    agent(organization, message.from_agent_id, memory.agent_id),
    organization(agent.organization_id, tool.organization_id),
    message(agent.from_agent_id, agent.to_agent_id),
)]
pub struct Schema;

fn main() {
    use reactive::engine::{RelationEdge, Relations};
    let relations = Relations::registered();
    let edges = relations.edges();
    assert_eq!(edges.len(), 7, "{edges:?}");
    assert!(edges.contains(&RelationEdge::new("agent", "organization", None)));
    assert!(edges.contains(&RelationEdge::new(
        "agent",
        "message",
        Some("from_agent_id")
    )));
    assert!(edges.contains(&RelationEdge::new(
        "organization",
        "tool",
        Some("organization_id")
    )));
    assert!(edges.contains(&RelationEdge::new("message", "agent", Some("to_agent_id"))));
}
