//! `ON DELETE SET DEFAULT` / `SET NULL` relation edges: deleting a
//! parent gives the children's referencing column a *new* value (the default, NULL), so
//! the queries keyed on that value must be invalidated too, not only those keyed on the
//! parent's id. Each runs with the edges declared and with none declared (the engine
//! then follows the foreign keys it read from the catalog). Real databases: PostgreSQL
//! (TEST_POSTGRES_URL), MySQL/MariaDB (TEST_MYSQL_URL) and SQLite.

mod db_support;

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use reactive_runtime::ReactiveDb;
use reactive_runtime::cache::memory::MemoryStore;
use reactive_runtime::db::InvalidationListener;
use reactive_runtime::engine::{
    ChangeSet, Engine, EngineConfig, InvalidationReport, KeyValue, RelationEdge, Relations,
    RowChange, RowOp,
};
use reactive_runtime::registry::{FunctionDef, InputError, Prepared};
use serde_json::{Value, json};
use sqlx::Row;

const TASKS: &str = "SELECT title FROM fkset_task WHERE project_id = $1 AND team = $2";

fn prepare_tasks(input: Value) -> Result<Prepared, InputError> {
    let project = input["project"].as_i64().ok_or_else(|| InputError {
        path: "project".into(),
        message: "expected an integer".into(),
    })?;
    let team = input["team"].as_str().unwrap_or_default().to_owned();
    Ok(Prepared {
        bindings: vec![json!(project), json!(team)],
        run: Box::new(move |db| {
            let db: ReactiveDb<sqlx::Any> = *db.downcast().expect("ReactiveDb<Any>");
            Box::pin(async move {
                let rows = sqlx::query(TASKS)
                    .bind(project)
                    .bind(team)
                    .fetch_all(&db)
                    .await?;
                let mut titles: Vec<String> = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>("title").unwrap_or_default())
                    .collect();
                titles.sort();
                Ok(serde_json::to_vec(&titles)?)
            })
        }),
    })
}

static TASKS_DEF: FunctionDef = FunctionDef::by_hand(
    concat!(
        r#"{"name":"fkset.tasks","rust_name":"tasks","kind":"query","requires_ack":false,"dialect":"postgres","#,
        r#""bindings":[{"source":"input.project","path":["project"]},{"source":"input.team","path":["team"]}],"#,
        r#""dependencies":[{"table":"fkset_task","keys":[{"column":"project_id","values":[{"binding":0}]},{"column":"team","values":[{"binding":1}]}]}],"#,
        r#""invalidates":[],"statements":[{"sql":"SELECT title FROM fkset_task WHERE project_id = $1 AND team = $2","analysis":"#,
        r#"{"operation":"select","reads":[{"table":"fkset_task","filter":{"rows":"keys","keys":[{"column":"project_id","values":[{"param":{"index":1}}]},{"column":"team","values":[{"param":{"index":2}}]}]}}],"writes":[],"returning":false,"unknown":null}"#,
        r#","params":[0,1]}],"calls":[]}"#
    ),
    prepare_tasks,
);

/// Keeps every report.
#[derive(Default)]
struct Reports(Mutex<Vec<Arc<InvalidationReport>>>);

impl InvalidationListener for Reports {
    fn on_invalidation(&self, report: Arc<InvalidationReport>) -> BoxFuture<'static, ()> {
        self.0.lock().unwrap().push(report);
        Box::pin(async {})
    }

    fn bind(self: Arc<Self>) -> Arc<dyn InvalidationListener> {
        self
    }
}

async fn tasks(db: &ReactiveDb<sqlx::Any>, project: i64, team: &str) -> (Vec<String>, bool) {
    let out = db
        .call(&TASKS_DEF, "t", json!({"project": project, "team": team}))
        .await
        .expect("call");
    (serde_json::from_slice(&out.bytes).unwrap(), out.hit)
}

/// Project 0 is the default every task falls back to (`SET DEFAULT`); a task's
/// reviewer project is set to NULL (`SET NULL`). Deleting project 1 moves its task
/// (team red) to project 0: the cached "project 0, team red" must go, "project 0, team
/// blue" and "project 2, team red" stay.
async fn deleting_a_parent_invalidates_queries_keyed_on_the_childs_new_value(
    db: ReactiveDb<sqlx::Any>,
    ddl: &[&str],
    declared: bool,
) {
    for sql in ddl {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let edges = [
        RelationEdge::new("fkset_project", "fkset_task", Some("project_id")),
        RelationEdge::new("fkset_project", "fkset_task", Some("reviewer_project_id")),
    ];
    let relations = if declared {
        Relations::from_edges(edges)
    } else {
        Relations::none()
    };
    // A store of its own: the tables are recreated behind the handle on each run.
    let db = db.with_engine(Engine::with_config(
        Arc::new(MemoryStore::default()),
        EngineConfig {
            relations,
            ..EngineConfig::default()
        },
    ));
    db.refresh_schema().await;
    let reports = Arc::new(Reports::default());
    db.set_listener(reports.clone());

    assert_eq!(tasks(&db, 0, "red").await, (vec!["zero".to_owned()], false));
    assert_eq!(tasks(&db, 0, "blue").await, (vec![], false));
    assert_eq!(tasks(&db, 2, "red").await, (vec!["two".to_owned()], false));
    assert!(tasks(&db, 0, "red").await.1, "cached");

    sqlx::query("DELETE FROM fkset_project WHERE id = $1")
        .bind(1_i64)
        .execute(&db)
        .await
        .unwrap();

    let (now, hit) = tasks(&db, 0, "red").await;
    assert_eq!(
        now,
        vec!["one".to_owned(), "zero".to_owned()],
        "project 1's task fell back to project 0 (served from the cache: {hit})"
    );
    assert!(!hit);
    assert!(tasks(&db, 0, "blue").await.1, "team blue stayed cached");
    assert!(tasks(&db, 2, "red").await.1, "project 2 stayed cached");

    // The SET NULL edge carries NULL as the children's new value.
    let reports = reports.0.lock().unwrap();
    let report = reports.last().expect("a report");
    let reviewer = report
        .changes
        .rows("fkset_task")
        .into_iter()
        .flatten()
        .filter(|r| {
            r.via
                .as_ref()
                .is_some_and(|e| e.to_column.as_deref() == Some("reviewer_project_id"))
        })
        .collect::<Vec<_>>();
    assert!(!reviewer.is_empty(), "{:?}", report.changes);
    for row in reviewer {
        let values = row.values("reviewer_project_id");
        assert!(
            values.is_some_and(|v| v.contains(&KeyValue::null())),
            "reviewer_project_id is set to NULL: {row:?}"
        );
    }
}

/// MySQL/MariaDB (InnoDB refuses `SET DEFAULT`): the `SET NULL` action is read from
/// the catalog and the edge's rows carry NULL, with the edge declared or read from the
/// catalog.
#[tokio::test]
async fn mysql_set_null() {
    let Some(db) = db_support::connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    for sql in [
        "DROP TABLE IF EXISTS fkset_task",
        "DROP TABLE IF EXISTS fkset_project",
        "CREATE TABLE fkset_project (id BIGINT PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE fkset_task (id BIGINT PRIMARY KEY, reviewer_project_id BIGINT NULL, \
         FOREIGN KEY (reviewer_project_id) REFERENCES fkset_project (id) ON DELETE SET NULL) ENGINE=InnoDB",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let edge = RelationEdge::new("fkset_project", "fkset_task", Some("reviewer_project_id"));
    for relations in [Relations::from_edges([edge]), Relations::none()] {
        let db = db.with_engine(Engine::with_config(
            db.engine().store().clone(),
            EngineConfig {
                relations,
                ..EngineConfig::default()
            },
        ));
        db.refresh_schema().await;
        let mut parent = RowChange::whole().with("id", KeyValue::from_i64(1));
        parent.op = RowOp::Delete;
        let expanded = db
            .engine()
            .expand(&ChangeSet::empty().with_row("fkset_project", parent));
        let task = &expanded.rows("fkset_task").expect("the edge's rows")[0];
        assert_eq!(
            task.values("reviewer_project_id"),
            Some(
                &[KeyValue::from_i64(1), KeyValue::null()]
                    .into_iter()
                    .collect()
            ),
            "{task:?}"
        );
    }
}

#[tokio::test]
async fn postgres_set_default_and_set_null() {
    let Some(db) = db_support::connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    for declared in [true, false] {
        deleting_a_parent_invalidates_queries_keyed_on_the_childs_new_value(
        db.clone(),
        &[
            "DROP TABLE IF EXISTS fkset_task",
            "DROP TABLE IF EXISTS fkset_project",
            "CREATE TABLE fkset_project (id BIGINT PRIMARY KEY)",
            "CREATE TABLE fkset_task (id BIGINT PRIMARY KEY, title TEXT NOT NULL, team TEXT NOT NULL, \
             project_id BIGINT NOT NULL DEFAULT 0 REFERENCES fkset_project (id) ON DELETE SET DEFAULT, \
             reviewer_project_id BIGINT REFERENCES fkset_project (id) ON DELETE SET NULL)",
            "INSERT INTO fkset_project VALUES (0), (1), (2)",
            "INSERT INTO fkset_task VALUES (1, 'zero', 'red', 0, NULL), (2, 'one', 'red', 1, 1), \
             (3, 'two', 'red', 2, NULL)",
        ],
        declared,
    )
    .await;
    }
}

#[tokio::test]
async fn sqlite_set_default_and_set_null() {
    for declared in [true, false] {
        let name = if declared {
            "fkset"
        } else {
            "fkset_undeclared"
        };
        let db = db_support::sqlite(name, Default::default()).await;
        deleting_a_parent_invalidates_queries_keyed_on_the_childs_new_value(
        db,
        &[
            "CREATE TABLE fkset_project (id INTEGER PRIMARY KEY)",
            "CREATE TABLE fkset_task (id INTEGER PRIMARY KEY, title TEXT NOT NULL, team TEXT NOT NULL, \
             project_id INTEGER NOT NULL DEFAULT 0 REFERENCES fkset_project (id) ON DELETE SET DEFAULT, \
             reviewer_project_id INTEGER REFERENCES fkset_project (id) ON DELETE SET NULL)",
            "INSERT INTO fkset_project VALUES (0), (1), (2)",
            "INSERT INTO fkset_task VALUES (1, 'zero', 'red', 0, NULL), (2, 'one', 'red', 1, 1), \
             (3, 'two', 'red', 2, NULL)",
        ],
        declared,
    )
    .await;
    }
}

/// An `ON DELETE CASCADE` foreign key nobody declared: the handle reads it from the
/// catalog, so deleting a parent reaches the children's cached queries.
async fn cascade_is_followed_without_a_declaration(db: ReactiveDb<sqlx::Any>, ddl: &[&str]) {
    for sql in ddl {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let db = db.with_engine(Engine::with_config(
        db.engine().store().clone(),
        EngineConfig {
            relations: Relations::none(),
            ..EngineConfig::default()
        },
    ));
    db.refresh_schema().await;
    let relations = db.engine().relations();
    assert!(
        relations.edges().contains(&RelationEdge::keyed(
            "fkcas_list",
            "code",
            "fkcas_item",
            Some("list_code")
        )),
        "{:?}",
        relations.edges()
    );
    let mut parent = RowChange::whole().with("code", KeyValue::from_i64(7));
    parent.op = RowOp::Delete;
    let expanded = db
        .engine()
        .expand(&ChangeSet::empty().with_row("fkcas_list", parent));
    let item = &expanded.rows("fkcas_item").expect("the cascade's rows")[0];
    assert_eq!(item.op, RowOp::Delete, "{item:?}");
    assert_eq!(
        item.values("list_code"),
        Some(&[KeyValue::from_i64(7)].into_iter().collect()),
        "{item:?}"
    );
}

#[tokio::test]
async fn cascade_without_a_declaration_sqlite() {
    let db = db_support::sqlite("fkcas", Default::default()).await;
    cascade_is_followed_without_a_declaration(
        db,
        &[
            "CREATE TABLE fkcas_list (id INTEGER PRIMARY KEY, code INTEGER NOT NULL UNIQUE)",
            "CREATE TABLE fkcas_item (id INTEGER PRIMARY KEY, \
             list_code INTEGER NOT NULL REFERENCES fkcas_list (code) ON DELETE CASCADE)",
        ],
    )
    .await;
}

#[tokio::test]
async fn cascade_without_a_declaration_postgres() {
    let Some(db) = db_support::connect_env("TEST_POSTGRES_URL").await else {
        return;
    };
    cascade_is_followed_without_a_declaration(
        db,
        &[
            "DROP TABLE IF EXISTS fkcas_item",
            "DROP TABLE IF EXISTS fkcas_list",
            "CREATE TABLE fkcas_list (id BIGINT PRIMARY KEY, code BIGINT NOT NULL UNIQUE)",
            "CREATE TABLE fkcas_item (id BIGINT PRIMARY KEY, \
             list_code BIGINT NOT NULL REFERENCES fkcas_list (code) ON DELETE CASCADE)",
        ],
    )
    .await;
}

#[tokio::test]
async fn cascade_without_a_declaration_mysql() {
    let Some(db) = db_support::connect_env("TEST_MYSQL_URL").await else {
        return;
    };
    cascade_is_followed_without_a_declaration(
        db,
        &[
            "DROP TABLE IF EXISTS fkcas_item",
            "DROP TABLE IF EXISTS fkcas_list",
            "CREATE TABLE fkcas_list (id BIGINT PRIMARY KEY, code BIGINT NOT NULL UNIQUE) ENGINE=InnoDB",
            "CREATE TABLE fkcas_item (id BIGINT PRIMARY KEY, list_code BIGINT NOT NULL, \
             FOREIGN KEY (list_code) REFERENCES fkcas_list (code) ON DELETE CASCADE) ENGINE=InnoDB",
        ],
    )
    .await;
}
