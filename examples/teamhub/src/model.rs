//! Row types and procedure inputs/outputs of TeamHub. JSON is camelCase, as in the seed.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// An organization: the tenant.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, TS)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    pub name: String,
}

/// An agent of an organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, TS)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub status: String,
    pub created_at: i64,
}

/// A message between two agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, TS)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub from_agent_id: String,
    pub to_agent_id: String,
    pub body: String,
    pub created_at: i64,
}

/// A memory entry of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, TS)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    pub id: String,
    pub agent_id: String,
    pub content: String,
    pub created_at: i64,
}

/// A tool available to an organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, TS)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub id: String,
    pub name: String,
}

/// `{organizationId}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgInput {
    pub organization_id: String,
}

/// `{organizationId, agentId}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentInput {
    pub organization_id: String,
    pub agent_id: String,
}

/// `{agent, messageCount, memoryCount}`
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AgentStats {
    pub agent: Option<Agent>,
    pub message_count: i64,
    pub memory_count: i64,
}

/// `{organizationId, name}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAgent {
    pub organization_id: String,
    pub name: String,
}

/// `{name?, status?}`
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentChanges {
    #[ts(optional)]
    pub name: Option<String>,
    #[ts(optional)]
    pub status: Option<String>,
}

/// `{organizationId, id, data: {name?, status?}}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAgent {
    pub organization_id: String,
    pub id: String,
    pub data: AgentChanges,
}

/// `{organizationId, id}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteAgent {
    pub organization_id: String,
    pub id: String,
}

/// `{organizationId, fromAgentId, toAgentId, body}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessage {
    pub organization_id: String,
    pub from_agent_id: String,
    pub to_agent_id: String,
    pub body: String,
}

/// `{organizationId, agentId, content}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMemory {
    pub organization_id: String,
    pub agent_id: String,
    pub content: String,
}
