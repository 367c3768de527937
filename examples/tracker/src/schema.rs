//! How a change to one Tracker table reaches the others.
//!
//! `project(task.project_id)`: when the project row `id = X` is deleted (or its id
//! changes), the `task` rows with `project_id = X` count as changed too — what the
//! foreign key's `ON DELETE CASCADE` does behind the interceptor's back. Inserts and
//! updates of other columns propagate nowhere.

use reactive::Relations;

/// The relations of the Tracker schema (one per `ON DELETE CASCADE` foreign key).
#[derive(Relations)]
#[relations(
    organization(project.organization_id),
    project(task.project_id),
    task(comment.task_id),
)]
pub struct Schema;
