//! Tracker over HTTP against a real PostgreSQL: what a write invalidates, and what it
//! leaves cached. Needs TEST_POSTGRES_URL (skipped otherwise, unless CI is set); each
//! test recreates its own database `tracker_test_<name>` next to the one the URL names.

use std::time::Duration;

use futures::StreamExt;
use reactive::ReactiveDb;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use sqlx::Postgres;
use tokio::sync::mpsc;

const ACME: &str = "acme-token";
const GLOBEX: &str = "globex-token";

struct Server {
    base: String,
    db: ReactiveDb<Postgres>,
    http: reqwest::Client,
}

/// A fresh database and the real server on an ephemeral port.
async fn start(name: &str) -> Option<Server> {
    let Ok(url) = std::env::var("TEST_POSTGRES_URL") else {
        if std::env::var_os("CI").is_some() {
            panic!("TEST_POSTGRES_URL must be set when CI is set");
        }
        eprintln!("skipped: TEST_POSTGRES_URL not set");
        return None;
    };
    let database = format!("tracker_test_{name}");
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("connect TEST_POSTGRES_URL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .expect("drop test database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let mut db_url = Url::parse(&url).expect("TEST_POSTGRES_URL is a URL");
    db_url.set_path(&format!("/{database}"));
    let reactive = tracker::open(db_url.as_str())
        .await
        .expect("open tracker db");
    let db = reactive.db().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api", listener.local_addr().unwrap());
    let app = tracker::app(&reactive);
    tokio::spawn(async move { reactive::serve(listener, app).await });
    Some(Server {
        base,
        db,
        http: reqwest::Client::new(),
    })
}

impl Server {
    /// `POST /rpc/{name}`: status and body.
    async fn rpc(&self, token: &str, name: &str, input: &Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}/rpc/{name}", self.base))
            .bearer_auth(token)
            .json(input)
            .send()
            .await
            .expect("rpc request");
        let status = res.status();
        (status, res.json().await.expect("json body"))
    }

    /// A successful call's `data`.
    async fn ok(&self, token: &str, name: &str, input: &Value) -> Value {
        let (status, body) = self.rpc(token, name, input).await;
        assert_eq!(status, StatusCode::OK, "{name} {input}: {body}");
        body["data"].clone()
    }

    /// A query's `data`, and whether the cache served it (the engine's hit counter moved;
    /// calls are sequential, so the delta belongs to this call).
    async fn query(&self, token: &str, name: &str, input: &Value) -> (Value, bool) {
        let before = self.db.stats().engine;
        let data = self.ok(token, name, input).await;
        let after = self.db.stats().engine;
        let hit = after.hits == before.hits + 1;
        assert!(
            hit || after.misses == before.misses + 1,
            "{name}: neither a hit nor a miss ({before:?} → {after:?})"
        );
        (data, hit)
    }

    async fn create_project(&self, token: &str, org: &str, name: &str) -> String {
        let p = self
            .ok(
                token,
                "projects.create",
                &json!({"organizationId": org, "name": name, "settings": {"color": "blue"}}),
            )
            .await;
        p["id"].as_str().unwrap().to_string()
    }

    async fn create_task(&self, token: &str, org: &str, project: &str, title: &str) -> Value {
        self.ok(
            token,
            "tasks.create",
            &json!({"organizationId": org, "projectId": project, "title": title,
                    "tags": ["x", "y"], "due": "2030-01-31"}),
        )
        .await
    }

    /// Opens an event stream subscribed to `entries`; frames arrive as (event, data).
    async fn events(
        &self,
        token: &str,
        entries: &[String],
    ) -> mpsc::UnboundedReceiver<(String, Value)> {
        let url = Url::parse_with_params(
            &format!("{}/events", self.base),
            entries.iter().map(|e| ("subscribe", e.as_str())),
        )
        .unwrap();
        let res = self
            .http
            .get(url)
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("events request");
        assert_eq!(res.status(), StatusCode::OK);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut body = res.bytes_stream();
        tokio::spawn(async move {
            let mut buf = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    let mut event = String::new();
                    let mut data = Value::Null;
                    for line in frame.lines() {
                        if let Some(e) = line.strip_prefix("event: ") {
                            event = e.to_string();
                        } else if let Some(d) = line.strip_prefix("data: ") {
                            data = serde_json::from_str(d).unwrap_or(Value::Null);
                        }
                    }
                    if !event.is_empty() && tx.send((event, data)).is_err() {
                        return;
                    }
                }
            }
        });
        let (event, _) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("ready frame in time")
            .expect("stream open");
        assert_eq!(event, "ready");
        rx
    }
}

/// The subscription entry of a query key: `name:<json input>`.
fn key(name: &str, input: &Value) -> String {
    format!("{name}:{input}")
}

fn list_input(org: &str, project: &str) -> Value {
    json!({"organizationId": org, "projectId": project})
}

async fn next_invalidate(rx: &mut mpsc::UnboundedReceiver<(String, Value)>) -> Value {
    let (event, data) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event in time")
        .expect("stream open");
    assert_eq!(event, "invalidate", "{data}");
    data
}

fn assert_quiet(rx: &mut mpsc::UnboundedReceiver<(String, Value)>, who: &str) {
    if let Ok(frame) = rx.try_recv() {
        panic!("{who} received {frame:?}");
    }
}

/// Two tenants, P1 and P2 in acme, P3 in globex, one task each; every list cached.
struct Fixture {
    s: Server,
    p: [String; 3],
    t: [Value; 3],
    lists: [Value; 3],
}

async fn fixture(name: &str) -> Option<Fixture> {
    let s = start(name).await?;
    let p1 = s.create_project(ACME, "acme", "P1").await;
    let p2 = s.create_project(ACME, "acme", "P2").await;
    let p3 = s.create_project(GLOBEX, "globex", "P3").await;
    let t1 = s.create_task(ACME, "acme", &p1, "t1").await;
    let t2 = s.create_task(ACME, "acme", &p2, "t2").await;
    let t3 = s.create_task(GLOBEX, "globex", &p3, "t3").await;
    let lists = [
        list_input("acme", &p1),
        list_input("acme", &p2),
        list_input("globex", &p3),
    ];
    let tokens = [ACME, ACME, GLOBEX];
    for (i, input) in lists.iter().enumerate() {
        let (data, hit) = s.query(tokens[i], "tasks.list", input).await;
        assert!(!hit, "first call of list {i} computes");
        assert_eq!(data.as_array().unwrap().len(), 1, "{data}");
        let (again, hit) = s.query(tokens[i], "tasks.list", input).await;
        assert!(hit, "second call of list {i} is served from the cache");
        assert_eq!(again, data);
    }
    Some(Fixture {
        s,
        p: [p1, p2, p3],
        t: [t1, t2, t3],
        lists,
    })
}

#[tokio::test]
async fn update_status_invalidates_only_its_project_and_tenant() {
    let Some(f) = fixture("update_status").await else {
        return;
    };
    let s = &f.s;
    let mut a1 = s.events(ACME, &[key("tasks.list", &f.lists[0])]).await;
    let mut a2 = s.events(ACME, &[key("tasks.list", &f.lists[1])]).await;
    let mut b3 = s.events(GLOBEX, &[key("tasks.list", &f.lists[2])]).await;

    let t1 = &f.t[0];
    assert_eq!(t1["status"], "todo");
    let updated = s
        .ok(
            ACME,
            "tasks.updateStatus",
            &json!({"organizationId": "acme", "taskId": t1["id"], "status": "in_progress"}),
        )
        .await;
    assert_eq!(updated["status"], "in_progress");

    // A's P1 subscriber is told, naming its key verbatim.
    let event = next_invalidate(&mut a1).await;
    assert_eq!(
        event["queries"],
        json!([key("tasks.list", &f.lists[0])]),
        "{event}"
    );
    assert!(
        event["tables"].as_array().unwrap().contains(&json!("task")),
        "{event}"
    );
    // Events are appended before the write returns: nothing more is on its way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_quiet(&mut a2, "acme's P2 subscriber");
    assert_quiet(&mut b3, "globex's P3 subscriber");

    // P1 recomputes and shows the new status (never the stale cached list).
    let (p1, hit) = s.query(ACME, "tasks.list", &f.lists[0]).await;
    assert!(!hit, "P1's list was invalidated");
    assert_eq!(p1[0]["status"], "in_progress", "{p1}");
    // P2 (same tenant) and P3 (other tenant) stay cached.
    let (p2, hit) = s.query(ACME, "tasks.list", &f.lists[1]).await;
    assert!(hit, "P2's list is still cached");
    assert_eq!(p2[0]["title"], "t2");
    let (p3, hit) = s.query(GLOBEX, "tasks.list", &f.lists[2]).await;
    assert!(hit, "globex's P3 list is still cached");
    assert_eq!(p3[0]["title"], "t3");
    assert_eq!(p3[0]["tags"], json!(["x", "y"]));
    assert_eq!(p3[0]["due"], "2030-01-31");
}

#[tokio::test]
async fn create_task_invalidates_its_project_list_only() {
    let Some(f) = fixture("create_task").await else {
        return;
    };
    let s = &f.s;
    s.create_task(ACME, "acme", &f.p[0], "t1b").await;
    let (p1, hit) = s.query(ACME, "tasks.list", &f.lists[0]).await;
    assert!(!hit, "P1's list was invalidated by the insert");
    assert_eq!(p1.as_array().unwrap().len(), 2, "{p1}");
    let (_, hit) = s.query(ACME, "tasks.list", &f.lists[1]).await;
    assert!(hit, "P2's list is still cached");
    let (_, hit) = s.query(GLOBEX, "tasks.list", &f.lists[2]).await;
    assert!(hit, "P3's list is still cached");
}

#[tokio::test]
async fn delete_project_invalidates_its_tasks_through_the_relation() {
    let Some(f) = fixture("delete_project").await else {
        return;
    };
    let s = &f.s;
    let by_ids = json!({"organizationId": "acme", "ids": [f.t[0]["id"], f.t[1]["id"]]});
    let (both, hit) = s.query(ACME, "tasks.byIds", &by_ids).await;
    assert!(!hit);
    assert_eq!(both.as_array().unwrap().len(), 2, "{both}");

    let mut a1 = s.events(ACME, &[key("tasks.list", &f.lists[0])]).await;
    let mut a2 = s.events(ACME, &[key("tasks.list", &f.lists[1])]).await;
    let deleted = s
        .ok(
            ACME,
            "projects.delete",
            &json!({"organizationId": "acme", "projectId": f.p[0]}),
        )
        .await;
    assert_eq!(deleted, json!(true));
    // The `project(task.project_id)` relation turned the delete into a change of P1's
    // tasks too (with the rows' real values, from the cascade pre-read): P1's list
    // hears of it, P2's does not. (Events carry no key values to clients by default.)
    let event = next_invalidate(&mut a1).await;
    let tables = event["tables"].as_array().unwrap();
    assert!(tables.contains(&json!("project")), "{event}");
    assert!(tables.contains(&json!("task")), "{event}");
    assert!(event.get("keys").is_none(), "{event}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_quiet(&mut a2, "P2's list");

    // The cascade removed P1's task: its list and the lookup by id recompute.
    let (p1, hit) = s.query(ACME, "tasks.list", &f.lists[0]).await;
    assert!(!hit, "P1's list was invalidated");
    assert_eq!(p1, json!([]));
    let (ids, hit) = s.query(ACME, "tasks.byIds", &by_ids).await;
    assert!(!hit, "tasks.byIds was invalidated by the cascade");
    assert_eq!(ids.as_array().unwrap().len(), 1, "{ids}");
    assert_eq!(ids[0]["id"], f.t[1]["id"]);
    // Another project's list (same tenant) and the other tenant stay cached.
    let (_, hit) = s.query(ACME, "tasks.list", &f.lists[1]).await;
    assert!(hit, "P2's list is still cached");
    let (_, hit) = s.query(GLOBEX, "tasks.list", &f.lists[2]).await;
    assert!(hit, "P3's list is still cached");
}

#[tokio::test]
async fn errors_malformed_uuid_duplicate_and_other_tenant() {
    let Some(f) = fixture("errors").await else {
        return;
    };
    let s = &f.s;
    // A malformed uuid never reaches the database: 400 with the field's path.
    let (status, body) = s
        .rpc(
            ACME,
            "tasks.list",
            &json!({"organizationId": "acme", "projectId": "not-a-uuid"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    assert_eq!(body["error"]["path"], "projectId", "{body}");

    // The same title twice in a project: 409 naming the unique constraint.
    let (status, body) = s
        .rpc(
            ACME,
            "tasks.create",
            &json!({"organizationId": "acme", "projectId": f.p[0], "title": "t1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    assert_eq!(
        body["error"]["constraint"], "task_project_id_title_key",
        "{body}"
    );
    // A failed write is invalidated conservatively with the values it names (the runtime
    // does not rely on the database having changed nothing): P1's list recomputes, with
    // the same single task; P2's stays cached.
    let (p1, _) = s.query(ACME, "tasks.list", &f.lists[0]).await;
    assert_eq!(p1.as_array().unwrap().len(), 1, "{p1}");
    let (_, hit) = s.query(ACME, "tasks.list", &f.lists[1]).await;
    assert!(hit, "a failed insert into P1 leaves P2's list cached");

    // Another organization's input: 403; another organization's id: not found.
    let (status, _) = s.rpc(GLOBEX, "tasks.list", &f.lists[0]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (data, _) = s
        .query(GLOBEX, "tasks.list", &list_input("globex", &f.p[0]))
        .await;
    assert_eq!(data, json!([]), "acme's project is invisible to globex");
    let (status, _) = s
        .rpc(
            GLOBEX,
            "tasks.updateStatus",
            &json!({"organizationId": "globex", "taskId": f.t[0]["id"], "status": "done"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn other_procedures_and_the_transaction() {
    let Some(f) = fixture("procedures").await else {
        return;
    };
    let s = &f.s;
    let org = json!({"organizationId": "acme"});
    let (projects, _) = s.query(ACME, "projects.list", &org).await;
    assert_eq!(projects.as_array().unwrap().len(), 2, "{projects}");
    assert_eq!(projects[0]["name"], "P1");
    assert_eq!(projects[0]["taskCount"], 1);
    assert_eq!(projects[0]["doneCount"], 0);
    assert_eq!(projects[0]["settings"], json!({"color": "blue"}));

    let page = json!({"organizationId": "acme", "projectId": f.p[0], "limit": 1, "offset": 1});
    let (empty, _) = s.query(ACME, "tasks.list", &page).await;
    assert_eq!(empty, json!([]));

    let search = json!({"organizationId": "acme", "query": "T"});
    let (found, _) = s.query(ACME, "tasks.search", &search).await;
    assert_eq!(
        found.as_array().unwrap().len(),
        2,
        "ILIKE finds t1 and t2: {found}"
    );

    // Move t1 from P1 to P2 with a note (one transaction, two statements).
    let moved = s
        .ok(
            ACME,
            "tasks.move",
            &json!({"organizationId": "acme", "taskId": f.t[0]["id"], "toProjectId": f.p[1], "note": "belongs to P2"}),
        )
        .await;
    assert_eq!(moved["projectId"], json!(f.p[1]));
    let (p1, hit) = s.query(ACME, "tasks.list", &f.lists[0]).await;
    assert!(!hit);
    assert_eq!(p1, json!([]));
    let (p2, hit) = s.query(ACME, "tasks.list", &f.lists[1]).await;
    assert!(!hit);
    assert_eq!(p2.as_array().unwrap().len(), 2);
    let (_, hit) = s.query(GLOBEX, "tasks.list", &f.lists[2]).await;
    assert!(hit, "the other tenant's list is still cached");
    let (comments, _) = s
        .query(
            ACME,
            "comments.list",
            &json!({"organizationId": "acme", "taskId": f.t[0]["id"]}),
        )
        .await;
    assert_eq!(comments[0]["body"], "belongs to P2", "{comments}");
    let (projects, hit) = s.query(ACME, "projects.list", &org).await;
    assert!(!hit, "the counts changed");
    assert_eq!(projects[1]["taskCount"], 2, "{projects}");

    let deleted = s
        .ok(
            ACME,
            "tasks.delete",
            &json!({"organizationId": "acme", "taskId": f.t[0]["id"]}),
        )
        .await;
    assert_eq!(deleted, json!(true));
    let (p2, hit) = s.query(ACME, "tasks.list", &f.lists[1]).await;
    assert!(!hit);
    assert_eq!(p2.as_array().unwrap().len(), 1);
}
