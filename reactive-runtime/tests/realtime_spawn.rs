//! A handler that runs its statements in a task it spawns, with the handle it was
//! given, keeps its call: the spawned write is made for the caller's tenant (its event
//! is the mutation's watermark), and the spawned read is part of the query's read set
//! (a write to what it read invalidates the cached result).

mod realtime_support;

use reactive_runtime::registry::{FunctionDef, InputError, Prepared};
use reactive_runtime::{Error, ReactiveDb};
use realtime_support::*;
use serde_json::{Value, json};

fn org_of(input: &Value) -> Result<String, InputError> {
    input
        .get("org")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| InputError {
            path: "org".into(),
            message: "missing field `org`".into(),
        })
}

fn any_db(db: reactive_runtime::registry::DbHandle) -> ReactiveDb<sqlx::Any> {
    *db.downcast().expect("a ReactiveDb<Any>")
}

/// A handler that runs `statements` (given the input's `org`) in a task it spawns
/// with the handle it received, and answers with what they return.
fn spawning<F, Fut>(input: &Value, statements: F) -> Result<Prepared, InputError>
where
    F: FnOnce(ReactiveDb<sqlx::Any>, String) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Value, sqlx::Error>> + Send + 'static,
{
    let org = org_of(input)?;
    Ok(Prepared {
        bindings: vec![],
        run: Box::new(move |db| {
            let db = any_db(db);
            Box::pin(async move {
                let spawned = tokio::spawn(statements(db, org));
                let out = spawned
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))??;
                Ok(serde_json::to_vec(&out)?)
            })
        }),
    })
}

/// Inserts a row of `org` from a spawned task.
fn prepare_spawned_insert(input: Value) -> Result<Prepared, InputError> {
    spawning(&input, |db, org| async move {
        let done = sqlx::query("INSERT INTO rt_item (org, title) VALUES ($1, 'spawned')")
            .bind(org)
            .execute(&db)
            .await?;
        Ok(json!({"inserted": done.rows_affected()}))
    })
}

/// Counts the rows of `org` from a spawned task. The model knows nothing of
/// `rt_item`: only the recorded read covers it.
fn prepare_spawned_count(input: Value) -> Result<Prepared, InputError> {
    spawning(&input, |db, org| async move {
        let rows = sqlx::query("SELECT id FROM rt_item WHERE org = $1")
            .bind(org)
            .fetch_all(&db)
            .await?;
        Ok(json!(rows.len()))
    })
}

static SPAWNED_INSERT_DEF: FunctionDef = FunctionDef::by_hand(
    concat!(
        r#"{"name":"rt.spawn.insert","rust_name":"spawned_insert","kind":"mutation","requires_ack":false,"dialect":"sqlite","#,
        r#""bindings":[],"dependencies":[],"invalidates":[],"statements":[],"calls":[]}"#
    ),
    prepare_spawned_insert,
);

static SPAWNED_COUNT_DEF: FunctionDef = FunctionDef::by_hand(
    concat!(
        r#"{"name":"rt.spawn.count","rust_name":"spawned_count","kind":"query","requires_ack":false,"dialect":"sqlite","#,
        r#""bindings":[],"dependencies":[],"invalidates":[],"statements":[],"calls":[]}"#
    ),
    prepare_spawned_count,
);

async fn start_with_spawning_functions() -> Server {
    let mut all = functions();
    all.extend([&SPAWNED_INSERT_DEF, &SPAWNED_COUNT_DEF]);
    serve(memory_db().await, |c| c.functions(all)).await
}

fn event_id(body: &Value) -> u64 {
    body["eventId"]
        .as_str()
        .expect("eventId string")
        .parse()
        .expect("numeric eventId")
}

#[tokio::test]
async fn a_write_in_a_spawned_task_is_made_for_the_callers_tenant() {
    let s = start_with_spawning_functions().await;
    let (st, body) = s.post("A:u1", "rt.items.byOrg", json!({"org": "A"})).await;
    assert_eq!(st, 200, "{body}");
    let before = event_id(&body);

    let (st, body) = s.post("A:u1", "rt.spawn.insert", json!({"org": "A"})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["inserted"], 1);
    assert!(
        event_id(&body) > before,
        "the spawned write published an event for tenant A, which the mutation's watermark names: {body}"
    );

    let (st, body) = s.post("A:u1", "rt.items.byOrg", json!({"org": "A"})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"][0]["title"], "spawned", "{body}");
}

#[tokio::test]
async fn a_read_in_a_spawned_task_is_part_of_the_querys_read_set() {
    let s = start_with_spawning_functions().await;
    let (st, body) = s.post("A:u1", "rt.spawn.count", json!({"org": "A"})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"], 0);

    let (st, body) = s
        .post("A:u1", "rt.items.create", json!({"org": "A", "title": "x"}))
        .await;
    assert_eq!(st, 200, "{body}");

    let (st, body) = s.post("A:u1", "rt.spawn.count", json!({"org": "A"})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["data"], 1,
        "the insert invalidated the entry through the read its spawned task recorded"
    );
}
