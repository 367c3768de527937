//! A foreign key to another column than `id`, declared `organization(project.org_slug =
//! slug)`: deleting an organization (by its `id`) cascades to the projects holding its
//! `slug`, and their cached queries are invalidated. Before the edge could name its key,
//! the runtime followed `organization.id`, found no project holding it, and left the
//! cascaded projects' queries stale.

use reactive::engine::{Engine, EngineConfig, RelationEdge, Relations};
use reactive::registry::FunctionDef;
use reactive::{ReactiveDb, reactive_function};
use serde::Deserialize;
use serde_json::json;
use sqlx::Sqlite;

fn def(name: &str) -> &'static FunctionDef {
    reactive::registry::functions()
        .into_iter()
        .find(|d| d.model().name == name)
        .unwrap_or_else(|| panic!("{name} is registered"))
}

#[derive(Deserialize, ts_rs::TS)]
pub struct TeamInput {
    pub team: String,
}

/// Projects of one team: the key is `team`, not the organization's slug, so only the
/// cascade's pre-read (which reads the deleted projects' teams) can reach it.
#[reactive_function(name = "rk.projectsOfTeam")]
pub async fn projects_of_team(
    db: &ReactiveDb<Sqlite>,
    input: TeamInput,
) -> reactive::Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT name FROM rk_project WHERE team = ?1 ORDER BY name")
            .bind(&input.team)
            .fetch_all(db)
            .await?,
    )
}

async fn projects(db: &ReactiveDb<Sqlite>, team: &str) -> (Vec<String>, bool) {
    let out = db
        .call(def("rk.projectsOfTeam"), "t", json!({ "team": team }))
        .await
        .expect("call");
    (serde_json::from_slice(&out.bytes).unwrap(), out.hit)
}

async fn fixture(edge: RelationEdge) -> ReactiveDb<Sqlite> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::raw_sql(
        "PRAGMA foreign_keys = ON;
         CREATE TABLE rk_org (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE);
         CREATE TABLE rk_project (id INTEGER PRIMARY KEY, name TEXT NOT NULL, team TEXT NOT NULL,
             org_slug TEXT NOT NULL REFERENCES rk_org (slug) ON DELETE CASCADE);
         INSERT INTO rk_org VALUES (1, 'acme'), (2, 'globex');
         INSERT INTO rk_project VALUES (1, 'rocket', 'red', 'acme'), (2, 'anvil', 'blue', 'globex');",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = ReactiveDb::new(pool).await.unwrap();
    let engine = Engine::with_config(
        db.engine().store().clone(),
        EngineConfig {
            relations: Relations::from_edges([edge]),
            ..EngineConfig::default()
        },
    );
    db.with_engine(engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_through_a_foreign_key_to_a_non_id_column_invalidates_the_children() {
    let db = fixture(RelationEdge::keyed(
        "rk_org",
        "slug",
        "rk_project",
        Some("org_slug"),
    ))
    .await;
    assert_eq!(
        projects(&db, "red").await,
        (vec!["rocket".to_owned()], false)
    );
    assert_eq!(
        projects(&db, "blue").await,
        (vec!["anvil".to_owned()], false)
    );
    sqlx::query("DELETE FROM rk_org WHERE id = ?1")
        .bind(1_i64)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        projects(&db, "red").await,
        (vec![], false),
        "acme's projects went with it"
    );
    assert!(projects(&db, "blue").await.1, "globex's stayed cached");
}

/// The registered form: `#[derive(Relations)]` with `= key` reaches the runtime.
#[derive(reactive::Relations)]
#[relations(rk_org(rk_project.org_slug = slug))]
pub struct Schema;

#[test]
fn the_derive_carries_the_key_column() {
    assert!(
        Relations::registered()
            .edges()
            .contains(&RelationEdge::keyed(
                "rk_org",
                "slug",
                "rk_project",
                Some("org_slug")
            ))
    );
}
