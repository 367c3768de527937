//! Tracker's procedures: ordinary sqlx code for PostgreSQL (`query_as!` and friends,
//! checked at compile time against `.sqlx/`), each a `#[reactive_function]` whose
//! dependencies are inferred from its SQL.
//!
//! Tenant checks: every input names its organization (the authorizer refuses another
//! one than the caller's with 403), and every statement reaches its rows through
//! `project.organization_id`, so an id of another organization finds nothing.

use reactive::{Error, ReactiveDb, reactive_function};
use sqlx::Postgres;

use crate::model::*;

fn check_text(what: &str, text: &str) -> reactive::Result<()> {
    if text.trim().is_empty() || text.len() > 200 {
        return Err(Error::BadRequest(format!(
            "{what} must be 1 to 200 characters"
        )));
    }
    Ok(())
}

/// The projects of an organization with their task counts.
#[reactive_function(name = "projects.list")]
pub async fn projects_list(
    db: &ReactiveDb<Postgres>,
    input: OrgInput,
) -> reactive::Result<Vec<ProjectSummary>> {
    Ok(sqlx::query_as!(
        ProjectSummary,
        r#"SELECT p.id, p.name, p.settings,
                  count(t.id) AS "task_count!",
                  count(t.id) FILTER (WHERE t.status = 'done') AS "done_count!"
           FROM project p LEFT JOIN task t ON t.project_id = p.id
           WHERE p.organization_id = $1
           GROUP BY p.id
           ORDER BY p.name, p.id"#,
        &input.organization_id,
    )
    .fetch_all(db)
    .await?)
}

/// Create a project (`409 conflict` when the organization already has one of that name).
#[reactive_function(name = "projects.create")]
pub async fn projects_create(
    db: &ReactiveDb<Postgres>,
    input: CreateProject,
) -> reactive::Result<Project> {
    check_text("name", &input.name)?;
    let settings = input.settings.unwrap_or_else(|| serde_json::json!({}));
    Ok(sqlx::query_as!(
        Project,
        r#"INSERT INTO project (organization_id, name, settings) VALUES ($1, $2, $3)
           RETURNING id, organization_id, name, settings, created_at"#,
        &input.organization_id,
        input.name.trim(),
        settings,
    )
    .fetch_one(db)
    .await?)
}

/// Delete a project; its tasks and their comments go with it (`ON DELETE CASCADE`).
#[reactive_function(name = "projects.delete")]
pub async fn projects_delete(
    db: &ReactiveDb<Postgres>,
    input: DeleteProject,
) -> reactive::Result<bool> {
    let done = sqlx::query!(
        "DELETE FROM project WHERE id = $1 AND organization_id = $2",
        input.project_id,
        &input.organization_id,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// One page of the tasks of a project, oldest first.
///
/// `p.id = $1` repeats the join condition on purpose: it keys the read of `project` by
/// id as well as by organization, so creating or deleting *another* project of the
/// organization leaves this list cached (a read keyed by `organization_id` alone would
/// match every project row of the organization).
#[reactive_function(name = "tasks.list")]
pub async fn tasks_list(
    db: &ReactiveDb<Postgres>,
    input: ProjectInput,
) -> reactive::Result<Vec<Task>> {
    let limit = input.limit.unwrap_or(50).clamp(1, 200);
    let offset = input.offset.unwrap_or(0).max(0);
    Ok(sqlx::query_as!(
        Task,
        r#"SELECT t.id, t.project_id, t.title, t.status AS "status: Status", t.tags, t.due, t.created_at
           FROM task t JOIN project p ON p.id = t.project_id
           WHERE t.project_id = $1 AND p.id = $1 AND p.organization_id = $2
           ORDER BY t.created_at, t.id
           LIMIT $3 OFFSET $4"#,
        input.project_id,
        &input.organization_id,
        limit,
        offset,
    )
    .fetch_all(db)
    .await?)
}

/// Tasks of the organization whose title contains `query`, case-insensitively.
#[reactive_function(name = "tasks.search")]
pub async fn tasks_search(
    db: &ReactiveDb<Postgres>,
    input: SearchInput,
) -> reactive::Result<Vec<Task>> {
    let escaped = input
        .query
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let pattern = format!("%{escaped}%");
    Ok(sqlx::query_as!(
        Task,
        r#"SELECT t.id, t.project_id, t.title, t.status AS "status: Status", t.tags, t.due, t.created_at
           FROM task t JOIN project p ON p.id = t.project_id
           WHERE p.organization_id = $1 AND t.title ILIKE $2
           ORDER BY t.created_at, t.id
           LIMIT 100"#,
        &input.organization_id,
        pattern,
    )
    .fetch_all(db)
    .await?)
}

/// The tasks with these ids (those of the caller's organization).
#[reactive_function(name = "tasks.byIds")]
pub async fn tasks_by_ids(
    db: &ReactiveDb<Postgres>,
    input: TaskIdsInput,
) -> reactive::Result<Vec<Task>> {
    Ok(sqlx::query_as!(
        Task,
        r#"SELECT t.id, t.project_id, t.title, t.status AS "status: Status", t.tags, t.due, t.created_at
           FROM task t JOIN project p ON p.id = t.project_id
           WHERE t.id = ANY($1) AND p.organization_id = $2
           ORDER BY t.created_at, t.id"#,
        &input.ids,
        &input.organization_id,
    )
    .fetch_all(db)
    .await?)
}

/// The comments of a task, oldest first.
#[reactive_function(name = "comments.list")]
pub async fn comments_list(
    db: &ReactiveDb<Postgres>,
    input: TaskInput,
) -> reactive::Result<Vec<Comment>> {
    Ok(sqlx::query_as!(
        Comment,
        r#"SELECT c.id, c.task_id, c.body, c.created_at
           FROM comment c JOIN task t ON t.id = c.task_id JOIN project p ON p.id = t.project_id
           WHERE c.task_id = $1 AND p.organization_id = $2
           ORDER BY c.created_at, c.id"#,
        input.task_id,
        &input.organization_id,
    )
    .fetch_all(db)
    .await?)
}

/// Create a task (`409 conflict` when the project already has a task of that title).
#[reactive_function(name = "tasks.create")]
pub async fn tasks_create(db: &ReactiveDb<Postgres>, input: CreateTask) -> reactive::Result<Task> {
    check_text("title", &input.title)?;
    sqlx::query_scalar!(
        "SELECT id FROM project WHERE id = $1 AND organization_id = $2",
        input.project_id,
        &input.organization_id,
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(|| Error::NotFound(format!("project {}", input.project_id)))?;
    let tags = input.tags.unwrap_or_default();
    Ok(sqlx::query_as!(
        Task,
        r#"INSERT INTO task (project_id, title, tags, due) VALUES ($1, $2, $3, $4)
           RETURNING id, project_id, title, status AS "status: Status", tags, due, created_at"#,
        input.project_id,
        input.title.trim(),
        &tags,
        input.due,
    )
    .fetch_one(db)
    .await?)
}

/// Change the status of a task.
#[reactive_function(name = "tasks.updateStatus")]
pub async fn tasks_update_status(
    db: &ReactiveDb<Postgres>,
    input: UpdateStatus,
) -> reactive::Result<Task> {
    sqlx::query_as!(
        Task,
        r#"UPDATE task SET status = $1
           WHERE id = $2 AND project_id IN (SELECT id FROM project WHERE organization_id = $3)
           RETURNING id, project_id, title, status AS "status: Status", tags, due, created_at"#,
        input.status as Status,
        input.task_id,
        &input.organization_id,
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(|| Error::NotFound(format!("task {}", input.task_id)))
}

/// Delete a task (and its comments).
#[reactive_function(name = "tasks.delete")]
pub async fn tasks_delete(db: &ReactiveDb<Postgres>, input: TaskInput) -> reactive::Result<bool> {
    let done = sqlx::query!(
        "DELETE FROM task WHERE id = $1 AND project_id IN (SELECT id FROM project WHERE organization_id = $2)",
        input.task_id,
        &input.organization_id,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Move a task to another project of the organization and record the move in a
/// comment, in one transaction: both happen or neither.
#[reactive_function(name = "tasks.move")]
pub async fn tasks_move(db: &ReactiveDb<Postgres>, input: MoveTask) -> reactive::Result<Task> {
    check_text("note", &input.note)?;
    let mut tx = db.begin().await?;
    sqlx::query_scalar!(
        "SELECT id FROM project WHERE id = $1 AND organization_id = $2",
        input.to_project_id,
        &input.organization_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::NotFound(format!("project {}", input.to_project_id)))?;
    let task = sqlx::query_as!(
        Task,
        r#"UPDATE task SET project_id = $1
           WHERE id = $2 AND project_id IN (SELECT id FROM project WHERE organization_id = $3)
           RETURNING id, project_id, title, status AS "status: Status", tags, due, created_at"#,
        input.to_project_id,
        input.task_id,
        &input.organization_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::NotFound(format!("task {}", input.task_id)))?;
    sqlx::query!(
        "INSERT INTO comment (task_id, body) VALUES ($1, $2)",
        input.task_id,
        input.note.trim(),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(task)
}
