//! Row types and procedure inputs/outputs of Tracker. JSON is camelCase.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

/// The PostgreSQL enum `task_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, TS)]
#[sqlx(type_name = "task_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Todo,
    InProgress,
    Done,
}

/// A project of an organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: Uuid,
    pub organization_id: String,
    pub name: String,
    /// Free-form settings (`jsonb`).
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A project with its task counts (`projects.list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSummary {
    pub id: Uuid,
    pub name: String,
    pub settings: serde_json::Value,
    pub task_count: i64,
    pub done_count: i64,
}

/// A task of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub status: Status,
    pub tags: Vec<String>,
    pub due: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

/// A comment on a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: Uuid,
    pub task_id: Uuid,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// `{organizationId}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgInput {
    pub organization_id: String,
}

/// `{organizationId, projectId, limit?, offset?}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectInput {
    pub organization_id: String,
    pub project_id: Uuid,
    /// Page size (default 50, at most 200).
    #[serde(default)]
    #[ts(optional)]
    pub limit: Option<i64>,
    #[serde(default)]
    #[ts(optional)]
    pub offset: Option<i64>,
}

/// `{organizationId, query}`: tasks whose title contains `query` (case-insensitive).
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchInput {
    pub organization_id: String,
    pub query: String,
}

/// `{organizationId, ids}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskIdsInput {
    pub organization_id: String,
    pub ids: Vec<Uuid>,
}

/// `{organizationId, taskId}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskInput {
    pub organization_id: String,
    pub task_id: Uuid,
}

/// `{organizationId, name, settings?}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProject {
    pub organization_id: String,
    pub name: String,
    #[serde(default)]
    #[ts(optional)]
    pub settings: Option<serde_json::Value>,
}

/// `{organizationId, projectId}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteProject {
    pub organization_id: String,
    pub project_id: Uuid,
}

/// `{organizationId, projectId, title, tags?, due?}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTask {
    pub organization_id: String,
    pub project_id: Uuid,
    pub title: String,
    #[serde(default)]
    #[ts(optional)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    #[ts(optional)]
    pub due: Option<NaiveDate>,
}

/// `{organizationId, taskId, status}`
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateStatus {
    pub organization_id: String,
    pub task_id: Uuid,
    pub status: Status,
}

/// `{organizationId, taskId, toProjectId, note}`: move a task to another project of the
/// organization and record why in a comment (one transaction).
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoveTask {
    pub organization_id: String,
    pub task_id: Uuid,
    pub to_project_id: Uuid,
    pub note: String,
}
