//! Code the `reactive` CLI generates compiles and registers. Between the markers:
//! the exact output of `reactive new function agents_by_org --table agent --key
//! organization_id`, and of `reactive convert --write` on
//! `reactive-cli/tests/fixtures/convert/complete.rs` and `native.rs`
//! (`reactive-cli/tests/cli_tools.rs` checks that they are current). The
//! `query_as!` of `native.rs` is checked against `ui-tests/.sqlx` (offline data).

mod new_function {
// begin: reactive new function
use reactive::{reactive_function, ReactiveDb};
use sqlx::Postgres;

/// The input of `agents.byOrg`.
#[derive(Debug, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct AgentsByOrgInput {
    pub organization_id: String,
}

/// A row of `agent`: list the columns you need (they are read by name).
#[derive(Debug, serde::Serialize, sqlx::FromRow, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
}

/// The `agent` rows whose `organization_id` is `input.organization_id` (dependency inferred: `agent` keyed on `organization_id`).
#[reactive_function(name = "agents.byOrg")]
pub async fn agents_by_org(db: &ReactiveDb<Postgres>, input: AgentsByOrgInput) -> reactive::Result<Vec<Agent>> {
    Ok(sqlx::query_as::<_, Agent>("SELECT * FROM agent WHERE organization_id = $1")
        .bind(&input.organization_id)
        .fetch_all(db)
        .await?)
}
// end: reactive new function
}

mod converted {
// begin: reactive convert
//! Plain sqlx functions `reactive convert` converts completely; the result is the
//! compile-pass case `ui-tests/pass/cli_generated.rs`.

use reactive::{reactive_function, ReactiveDb};
use sqlx::Postgres;

#[derive(Debug, serde::Serialize, sqlx::FromRow, ts_rs::TS)]
pub struct Tool {
    pub id: String,
    pub name: String,
}

#[derive(Debug, serde::Deserialize, ts_rs::TS)]
pub struct Rename {
    pub id: String,
    pub name: String,
}

#[reactive_function(name = "tools.byOrg")]
pub async fn tools_by_org(pool: &ReactiveDb<Postgres>, organization_id: String) -> reactive::Result<Vec<Tool>> {
    Ok(sqlx::query_as::<_, Tool>("SELECT id, name FROM tool WHERE organization_id = $1")
        .bind(&organization_id)
        .fetch_all(pool)
        .await?)
}

#[reactive_function(name = "tools.rename")]
pub async fn tools_rename(pool: &ReactiveDb<Postgres>, input: Rename) -> reactive::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE tool SET name = $1 WHERE id = $2")
        .bind(&input.name)
        .bind(&input.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
// end: reactive convert
}

mod converted_native {
// begin: reactive convert native
//! Plain sqlx on PostgreSQL with native types (`Uuid`) and a query macro: `reactive
//! convert` converts it completely, into code that still compiles; the result is
//! in the compile-pass case `ui-tests/pass/cli_generated.rs` (its `query_as!` is
//! checked against the offline data in `ui-tests/.sqlx`).

use uuid::Uuid;
use reactive::{reactive_function, ReactiveDb};
use sqlx::Postgres;

#[derive(Debug, serde::Serialize, ts_rs::TS)]
pub struct Project {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, serde::Deserialize, ts_rs::TS)]
pub struct RenameProject {
    pub id: Uuid,
    pub name: String,
}

#[reactive_function(name = "projects.byOrg")]
pub async fn projects_by_org(pool: &ReactiveDb<Postgres>, organization_id: Uuid) -> reactive::Result<Vec<Project>> {
    Ok(sqlx::query_as!(
        Project,
        "SELECT id, name FROM project WHERE organization_id = $1",
        organization_id
    )
    .fetch_all(pool)
    .await?)
}

#[reactive_function(name = "project.rename")]
pub async fn project_rename(pool: &ReactiveDb<sqlx::Postgres>, input: RenameProject) -> reactive::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE project SET name = $1 WHERE id = $2")
        .bind(&input.name)
        .bind(input.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
// end: reactive convert native
}

fn main() {
    let functions = reactive::registry::functions();
    let names: Vec<&str> = functions.iter().map(|f| f.model().name.as_str()).collect();
    assert_eq!(
        names,
        ["agents.byOrg", "project.rename", "projects.byOrg", "tools.byOrg", "tools.rename"]
    );
    let by_org = functions[0].model();
    assert_eq!(by_org.dependencies[0].table, "agent");
    assert_eq!(by_org.dependencies[0].keys[0].column, "organization_id");
    // `query_as!` is read like `query_as(..)`: its `Uuid` argument keys the read.
    let projects = functions[2].model();
    assert_eq!(projects.dependencies[0].table, "project");
    assert_eq!(projects.dependencies[0].keys[0].column, "organization_id");
    for mutation in [1, 4] {
        assert_eq!(
            serde_json::to_value(functions[mutation].model().kind).unwrap(),
            "mutation"
        );
    }
}
