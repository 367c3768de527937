//! Shared fixture of the `db_*` tests: an `agent`-like table, hand-built function
//! definitions (the macro is not needed to test the runtime), and scenarios run
//! against every backend.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use reactive_codegen::sql::{
    ColumnValue, Dialect, KeyPredicate, Operation, Param, RowFilter, StatementAnalysis, TableRead,
    TableWrite, ValueRef,
};
use reactive_runtime::db::{DbOptions, InvalidationListener};
use reactive_runtime::engine::InvalidationReport;
use reactive_runtime::model::{
    Binding, FunctionKind, FunctionModel, KeyDependency, KeySource, StatementModel, TableDependency,
};
use reactive_runtime::registry::{BoxFuture, FunctionDef, InputError, Prepared};
use reactive_runtime::{ReactiveDb, ReactiveTx};
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;

/// A row of the fixture table.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct Agent {
    pub id: i64,
    pub name: String,
    pub organization_id: i64,
}

/// Connects to a backend from an environment variable, or explains the skip
/// (panics when `CI` is set: the services must be there).
pub async fn connect_env(var: &str) -> Option<ReactiveDb<sqlx::Any>> {
    let Ok(url) = std::env::var(var) else {
        if std::env::var_os("CI").is_some() {
            panic!("{var} must be set when CI is set");
        }
        eprintln!("skipped: {var} not set");
        return None;
    };
    Some(
        ReactiveDb::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect to {var}: {e}")),
    )
}

/// A fresh SQLite database in a temporary file.
pub async fn sqlite(name: &str, options: DbOptions) -> ReactiveDb<sqlx::Any> {
    let dir = std::env::temp_dir().join(format!("reactive-db-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    ReactiveDb::connect_with(&format!("sqlite://{}?mode=rwc", path.display()), options)
        .await
        .unwrap()
}

/// A table name unique to this process and scenario.
pub fn table_name(scenario: &str) -> String {
    format!("dbt_{scenario}_{}", std::process::id())
}

fn p(i: usize) -> ValueRef {
    ValueRef::Param(Param {
        index: i,
        name: None,
    })
}

fn keys(column: &str, v: ValueRef) -> RowFilter {
    RowFilter::Keys(vec![KeyPredicate {
        column: column.into(),
        values: vec![v],
    }])
}

fn select(table: &str, filter: RowFilter) -> StatementAnalysis {
    StatementAnalysis {
        operation: Operation::Select,
        reads: vec![TableRead {
            table: table.into(),
            filter,
        }],
        writes: vec![],
        returning: false,
        unknown: None,
    }
}

fn write(
    table: &str,
    operation: Operation,
    filter: RowFilter,
    set: Vec<ColumnValue>,
    inserted: Option<Vec<Vec<ColumnValue>>>,
) -> StatementAnalysis {
    let reads = match &filter {
        RowFilter::Keys(_) => vec![TableRead {
            table: table.into(),
            filter: filter.clone(),
        }],
        RowFilter::All => vec![],
    };
    StatementAnalysis {
        operation,
        reads,
        writes: vec![TableWrite {
            table: table.into(),
            operation,
            filter,
            set,
            inserted,
        }],
        returning: false,
        unknown: None,
    }
}

fn cv(column: &str, v: ValueRef) -> ColumnValue {
    ColumnValue {
        column: column.into(),
        value: Some(v),
    }
}

/// SQL of the fixture (PostgreSQL-style `$N`; rewritten for MySQL by the runtime).
pub struct Sql;

impl Sql {
    pub fn by_org(t: &str) -> String {
        format!("SELECT id, name, organization_id FROM {t} WHERE organization_id = $1 ORDER BY id")
    }
    pub fn by_name(t: &str) -> String {
        format!("SELECT id, name, organization_id FROM {t} WHERE name = $1 ORDER BY id")
    }
    pub fn count(t: &str) -> String {
        format!("SELECT COUNT(*) AS n FROM {t}")
    }
    pub fn rename(t: &str) -> String {
        format!("UPDATE {t} SET name = $1 WHERE id = $2")
    }
    pub fn rename_by_name(t: &str) -> String {
        format!("UPDATE {t} SET name = $1 WHERE name = $2")
    }
    pub fn move_org(t: &str) -> String {
        format!("UPDATE {t} SET organization_id = $1 WHERE id = $2")
    }
    pub fn insert(t: &str) -> String {
        format!("INSERT INTO {t} (id, name, organization_id) VALUES ($1, $2, $3)")
    }
    pub fn delete(t: &str) -> String {
        format!("DELETE FROM {t} WHERE id = $1")
    }
}

/// The query `<t>.byOrg`: agents of an organization; its model lists the SELECT
/// (keyed on `organization_id`). The handler of `<t>.byOrgCount` also runs a
/// statement the model does not list (parsed at run time).
fn by_org_model(t: &str, name: &str) -> FunctionModel {
    FunctionModel {
        name: name.into(),
        rust_name: name.replace('.', "_"),
        kind: FunctionKind::Query,
        requires_ack: false,
        push: false,
        dialect: Dialect::Postgres,
        bindings: vec![Binding {
            source: "input.org".into(),
            path: vec!["org".into()],
        }],
        dependencies: vec![TableDependency {
            table: t.into(),
            keys: vec![KeyDependency {
                column: "organization_id".into(),
                values: vec![KeySource::Binding(0)],
            }],
        }],
        invalidates: vec![],
        statements: vec![StatementModel {
            sql: Sql::by_org(t),
            analysis: select(t, keys("organization_id", p(1))),
            params: vec![Some(0)],
        }],
        calls: vec![],
    }
}

/// `by_org_model` plus a dependency on a column the table does not have: writes to the
/// table then plan a pre-read the database refuses.
fn ghost_model(t: &str, name: &str) -> FunctionModel {
    let mut model = by_org_model(t, name);
    model.dependencies[0].keys.push(KeyDependency {
        column: "ghost".into(),
        values: vec![KeySource::Binding(0)],
    });
    model
}

/// The query `<t>.byName`: agents with a name (keyed on `name`).
fn by_name_model(t: &str, name: &str) -> FunctionModel {
    let mut model = by_org_model(t, name);
    model.bindings = vec![Binding {
        source: "input.name".into(),
        path: vec!["name".into()],
    }];
    model.dependencies[0].keys = vec![KeyDependency {
        column: "name".into(),
        values: vec![KeySource::Binding(0)],
    }];
    model.statements = vec![StatementModel {
        sql: Sql::by_name(t),
        analysis: select(t, keys("name", p(1))),
        params: vec![Some(0)],
    }];
    model
}

fn prepare_by_name(input: Value) -> Result<Prepared, InputError> {
    let name = input
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| input_error("name", "expected a string"))?
        .to_owned();
    let t = input
        .get("table")
        .and_then(Value::as_str)
        .ok_or_else(|| input_error("table", "expected a string"))?
        .to_owned();
    Ok(Prepared {
        bindings: vec![json!(name)],
        run: Box::new(
            move |db: reactive_runtime::registry::DbHandle| -> BoxFuture<'static, reactive_runtime::Result<Vec<u8>>> {
                let db = *db.downcast::<ReactiveDb<sqlx::Any>>().expect("an Any handle");
                Box::pin(async move {
                    let agents: Vec<Agent> = sqlx::query_as(AssertSqlSafe(Sql::by_name(&t)))
                        .bind(name)
                        .fetch_all(&db)
                        .await?;
                    Ok(serde_json::to_vec(&agents)?)
                })
            },
        ),
    })
}

/// Key values of a model's read set are canonicalized for the backend (on MySQL,
/// whose default collation ignores case, `ADA` becomes `ada`), and a cached query
/// for `ADA` is invalidated by a write to the row named `ada`.
pub async fn backend_collation_applies_to_model_keys(f: &Fixture) {
    let by_name = leak(
        by_name_model(&f.t, &format!("{}.byName", f.t)),
        prepare_by_name,
    );
    let call = |name: &str| {
        f.db.call(by_name, "tenant", json!({ "table": f.t, "name": name }))
    };
    // The model's read set (what selective delivery evaluates) uses the backend's rules.
    let read = f.db.read_set(by_name, &[json!("ADA")]).await;
    let expected = reactive_runtime::engine::KeyValue::from_str("ADA", f.db.dialect());
    assert_eq!(
        read.tables[&f.t][0].columns["name"]
            .iter()
            .collect::<Vec<_>>(),
        vec![&expected],
        "read set keys canonicalized for {:?}",
        f.db.dialect()
    );
    let first = call("ADA").await.unwrap();
    let rows: Vec<Agent> = serde_json::from_slice(&first.bytes).unwrap();
    let case_insensitive = !rows.is_empty();
    assert!(call("ADA").await.unwrap().hit);
    f.write(&[("rename", vec![json!("ada7"), json!(1)])], None)
        .await;
    let after = call("ADA").await.unwrap();
    if case_insensitive {
        assert!(
            !after.hit,
            "the rename of `ada` must invalidate the query for `ADA`"
        );
        assert_eq!(
            serde_json::from_slice::<Vec<Agent>>(&after.bytes).unwrap(),
            vec![]
        );
    } else {
        assert!(after.hit, "a case-sensitive backend: `ADA` is another key");
    }
}

fn input_error(path: &str, message: &str) -> InputError {
    InputError {
        path: path.into(),
        message: message.into(),
    }
}

fn prepare_by_org(input: Value) -> Result<Prepared, InputError> {
    let org = input
        .get("org")
        .and_then(Value::as_i64)
        .ok_or_else(|| input_error("org", "expected an integer"))?;
    let t = input
        .get("table")
        .and_then(Value::as_str)
        .ok_or_else(|| input_error("table", "expected a string"))?
        .to_owned();
    let with_count = input.get("count").and_then(Value::as_bool).unwrap_or(false);
    Ok(Prepared {
        bindings: vec![json!(org)],
        run: Box::new(
            move |db: reactive_runtime::registry::DbHandle| -> BoxFuture<'static, reactive_runtime::Result<Vec<u8>>> {
                let db = *db.downcast::<ReactiveDb<sqlx::Any>>().expect("an Any handle");
                Box::pin(async move {
                    let agents: Vec<Agent> = sqlx::query_as(AssertSqlSafe(Sql::by_org(&t)))
                        .bind(org)
                        .fetch_all(&db)
                        .await?;
                    if with_count {
                        let n: i64 = sqlx::query_scalar(AssertSqlSafe(Sql::count(&t)))
                            .fetch_one(&db)
                            .await?;
                        return Ok(serde_json::to_vec(
                            &json!({ "agents": agents, "total": n }),
                        )?);
                    }
                    Ok(serde_json::to_vec(&agents)?)
                })
            },
        ),
    })
}

/// One step of the generic mutation: `(statement, arguments)`.
pub type Step = (&'static str, Vec<Value>);

/// The mutation `<t>.write`: runs steps (`rename`, `rename_by_name`, `move`,
/// `insert`, `delete`), optionally in a transaction that ends with `commit`,
/// `rollback` or `drop`. It returns `db.stats().changes_applied` after each step and
/// after the transaction's end, so tests can see when invalidation happened.
fn mutation_model(t: &str, name: &str) -> FunctionModel {
    let st = |sql: String, analysis: StatementAnalysis, n: usize| StatementModel {
        sql,
        analysis,
        params: vec![None; n],
    };
    FunctionModel {
        name: name.into(),
        rust_name: name.replace('.', "_"),
        kind: FunctionKind::Mutation,
        requires_ack: false,
        push: false,
        dialect: Dialect::Postgres,
        bindings: vec![],
        dependencies: vec![],
        invalidates: vec![],
        statements: vec![
            st(
                Sql::rename(t),
                write(
                    t,
                    Operation::Update,
                    keys("id", p(2)),
                    vec![cv("name", p(1))],
                    None,
                ),
                2,
            ),
            st(
                Sql::rename_by_name(t),
                write(
                    t,
                    Operation::Update,
                    keys("name", p(2)),
                    vec![cv("name", p(1))],
                    None,
                ),
                2,
            ),
            st(
                Sql::move_org(t),
                write(
                    t,
                    Operation::Update,
                    keys("id", p(2)),
                    vec![cv("organization_id", p(1))],
                    None,
                ),
                2,
            ),
            st(
                Sql::insert(t),
                write(
                    t,
                    Operation::Insert,
                    RowFilter::All,
                    vec![],
                    Some(vec![vec![
                        cv("id", p(1)),
                        cv("name", p(2)),
                        cv("organization_id", p(3)),
                    ]]),
                ),
                3,
            ),
            st(
                Sql::delete(t),
                write(t, Operation::Delete, keys("id", p(1)), vec![], None),
                1,
            ),
        ],
        calls: vec![],
    }
}

fn sql_of(step: &str, t: &str) -> String {
    match step {
        "rename" => Sql::rename(t),
        "rename_by_name" => Sql::rename_by_name(t),
        "move" => Sql::move_org(t),
        "insert" => Sql::insert(t),
        "delete" => Sql::delete(t),
        other => panic!("unknown step {other}"),
    }
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: &[Value],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            Value::Number(n) => q.bind(n.as_i64().expect("integer arguments")),
            Value::String(s) => q.bind(s.clone()),
            other => panic!("unsupported argument {other}"),
        };
    }
    q
}

fn prepare_write(input: Value) -> Result<Prepared, InputError> {
    let t = input
        .get("table")
        .and_then(Value::as_str)
        .ok_or_else(|| input_error("table", "expected a string"))?
        .to_owned();
    let tx_end = input.get("tx").and_then(Value::as_str).map(str::to_owned);
    let steps: Vec<(String, Vec<Value>)> =
        serde_json::from_value(input.get("steps").cloned().unwrap_or(json!([])))
            .map_err(|e| input_error("steps", &e.to_string()))?;
    Ok(Prepared {
        bindings: vec![],
        run: Box::new(
            move |db: reactive_runtime::registry::DbHandle| -> BoxFuture<'static, reactive_runtime::Result<Vec<u8>>> {
                let db = *db.downcast::<ReactiveDb<sqlx::Any>>().expect("an Any handle");
                Box::pin(async move {
                    let mut seen = Vec::new();
                    let mut tx: Option<ReactiveTx<sqlx::Any>> = if tx_end.is_some() {
                        Some(db.begin().await?)
                    } else {
                        None
                    };
                    for (step, args) in &steps {
                        let q = bind_all(sqlx::query(AssertSqlSafe(sql_of(step, &t))), args);
                        match tx.as_mut() {
                            Some(tx) => q.execute(tx).await?,
                            None => q.execute(&db).await?,
                        };
                        seen.push(db.stats().changes_applied);
                    }
                    if let Some(tx) = tx {
                        match tx_end.as_deref() {
                            Some("commit") => tx.commit().await?,
                            Some("rollback") => tx.rollback().await?,
                            _ => drop(tx),
                        }
                        seen.push(db.stats().changes_applied);
                    }
                    Ok(serde_json::to_vec(&seen)?)
                })
            },
        ),
    })
}

fn leak(
    model: FunctionModel,
    prepare: fn(Value) -> Result<Prepared, InputError>,
) -> &'static FunctionDef {
    let model_json: &'static str =
        Box::leak(serde_json::to_string(&model).unwrap().into_boxed_str());
    Box::leak(Box::new(FunctionDef::by_hand(model_json, prepare)))
}

/// Records every invalidation report.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Arc<InvalidationReport>>>);

impl InvalidationListener for Recorder {
    fn on_invalidation(&self, report: Arc<InvalidationReport>) -> BoxFuture<'static, ()> {
        self.0.lock().unwrap().push(report);
        Box::pin(async {})
    }

    fn bind(self: Arc<Self>) -> Arc<dyn InvalidationListener> {
        self
    }
}

impl Recorder {
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A database with the fixture table and functions.
pub struct Fixture {
    pub db: ReactiveDb<sqlx::Any>,
    pub t: String,
    pub by_org: &'static FunctionDef,
    pub by_org_count: &'static FunctionDef,
    pub write: &'static FunctionDef,
    pub recorder: Arc<Recorder>,
}

impl Fixture {
    /// Creates the table (dropping a leftover one) with agents 1, 2 in org 1 and 3 in org 2.
    pub async fn new(db: ReactiveDb<sqlx::Any>, scenario: &str) -> Self {
        let t = table_name(scenario);
        let pool = db.pool();
        sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {t}")))
            .execute(pool)
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, organization_id BIGINT NOT NULL)"
        )))
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {t} (id, name, organization_id) VALUES (1, 'ada', 1), (2, 'bob', 1), (3, 'cy', 2)"
        )))
        .execute(pool)
        .await
        .unwrap();
        let by_org = leak(by_org_model(&t, &format!("{t}.byOrg")), prepare_by_org);
        let by_org_count = leak(by_org_model(&t, &format!("{t}.byOrgCount")), prepare_by_org);
        let write = leak(mutation_model(&t, &format!("{t}.write")), prepare_write);
        let recorder = Arc::new(Recorder::default());
        db.set_listener(recorder.clone());
        Self {
            db,
            t,
            by_org,
            by_org_count,
            write,
            recorder,
        }
    }

    /// Calls `byOrg(org)`: (agents, hit).
    pub async fn agents(&self, org: i64) -> (Vec<Agent>, bool) {
        let out = self
            .db
            .call(
                self.by_org,
                "tenant",
                json!({ "table": self.t, "org": org }),
            )
            .await
            .unwrap();
        (serde_json::from_slice(&out.bytes).unwrap(), out.hit)
    }

    /// The same query directly against the database (bypassing everything).
    pub async fn direct(&self, org: i64) -> Vec<Agent> {
        let sql = Sql::by_org(&self.t);
        let sql = if self.db.dialect() == Dialect::MySql {
            sql.replace("$1", "?")
        } else {
            sql
        };
        sqlx::query_as(AssertSqlSafe(sql))
            .bind(org)
            .fetch_all(self.db.pool())
            .await
            .unwrap()
    }

    /// Runs the mutation; returns `changes_applied` after each step (and the tx end).
    pub async fn write(&self, steps: &[Step], tx: Option<&str>) -> Vec<u64> {
        let steps: Vec<Value> = steps.iter().map(|(s, a)| json!([s, a])).collect();
        let out = self
            .db
            .call(
                self.write,
                "tenant",
                json!({ "table": self.t, "steps": steps, "tx": tx }),
            )
            .await
            .unwrap();
        serde_json::from_slice(&out.bytes).unwrap()
    }

    /// Asserts `byOrg(org)` is served from the cache (`hit`) or not, and equals the database.
    pub async fn expect(&self, org: i64, hit: bool, what: &str) {
        let (agents, was_hit) = self.agents(org).await;
        assert_eq!(
            agents,
            self.direct(org).await,
            "{what}: org {org} result differs from the database"
        );
        assert_eq!(was_hit, hit, "{what}: org {org} expected hit={hit}");
    }

    pub async fn drop_table(&self) {
        let _ = sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {}", self.t)))
            .execute(self.db.pool())
            .await;
    }
}

/// Warms both organizations' cache entries and checks the next call hits.
/// Polls `count_sql` (one integer) until it is positive: a pause point on another
/// connection's state (a lock wait), not a sleep. Panics after 10 s naming `what`.
pub async fn wait_until_positive(pool: &sqlx::AnyPool, count_sql: &str, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.to_owned()))
            .fetch_one(pool)
            .await
            .unwrap();
        if n > 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Runs each statement on the raw pool (no interception, no invalidation).
pub async fn run_raw(f: &Fixture, statements: impl IntoIterator<Item = String>) {
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(f.db.pool())
            .await
            .unwrap();
    }
}

/// A transaction, left open, that locks agent 1 (organization 1) and moves the selection
/// in `sel` from agent 1 to agent 3 (organization 2): a delete through `sel` started
/// now pre-reads agent 1 (waiting on its lock) and, once this commits, deletes agent 3.
pub async fn swap_selection(f: &Fixture, sel: &str) -> sqlx::Transaction<'static, sqlx::Any> {
    let mut other = f.db.pool().begin().await.unwrap();
    for sql in [
        format!("SELECT id FROM {} WHERE id = 1 FOR UPDATE", f.t),
        format!("DELETE FROM {sel} WHERE id = 1"),
        format!("INSERT INTO {sel} VALUES (3)"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *other)
            .await
            .unwrap();
    }
    other
}

/// Without a race, a delete through a subquery condition (`sel` lists the ids to delete)
/// keeps the pre-read's precision: deleting agent 2 (organization 1) leaves organization
/// 2's entry cached.
pub async fn subquery_delete_keeps_precision(f: &Fixture, sel: &str) {
    run_raw(
        f,
        [
            format!("DELETE FROM {sel}"),
            format!("INSERT INTO {sel} VALUES (2)"),
        ],
    )
    .await;
    warm(f).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {} WHERE id IN (SELECT id FROM {sel})",
        f.t
    )))
    .execute(&f.db)
    .await
    .unwrap();
    f.expect(1, false, "organization 1 after deleting agent 2")
        .await;
    f.expect(2, true, "organization 2 after deleting agent 2")
        .await;
}

pub async fn warm(f: &Fixture) {
    for org in [1, 2] {
        f.agents(org).await;
        f.expect(org, true, "warm").await;
    }
}

/// Expands to a module `scenarios` with one `#[tokio::test]` per shared scenario, each
/// on a fixture table of its own (`{backend}_{scenario}`), so that they run in parallel
/// and a failure names its scenario. `connect` gives the database for a scenario
/// (`None`: the backend is not configured, the test is skipped):
/// `scenario_tests!("pg", |_scenario| connect_env("TEST_POSTGRES_URL").await);`
#[allow(unused_macros)]
macro_rules! scenario_tests {
    ($backend:literal, |$scenario:ident| $connect:expr) => {
        $crate::db_support::scenario_tests!(
            @each $backend, |$scenario| $connect,
            precise_update_and_move, transactions, unknown_statements
        );
    };
    (@each $backend:literal, |$scenario:ident| $connect:expr, $($name:ident),*) => {
        mod scenarios {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let $scenario: &str = stringify!($name);
                    let Some(db) = $connect else {
                        return;
                    };
                    let f = $crate::db_support::Fixture::new(
                        db,
                        &format!("{}_{}", $backend, stringify!($name)),
                    )
                    .await;
                    $crate::db_support::$name(&f).await;
                    f.drop_table().await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use scenario_tests;

/// A rename of an org-1 agent invalidates org 1 only (the pre-read learns its
/// organization); moving an agent invalidates both organizations; insert/delete hit
/// their organization only.
pub async fn precise_update_and_move(f: &Fixture) {
    warm(f).await;
    let before = f.db.stats();
    f.write(&[("rename", vec![json!("ada2"), json!(1)])], None)
        .await;
    f.expect(1, false, "rename in org 1").await;
    f.expect(2, true, "rename in org 1").await;
    assert!(
        f.db.stats().pre_reads > before.pre_reads,
        "the rename ran a pre-read"
    );

    warm(f).await;
    f.write(&[("move", vec![json!(2), json!(1)])], None).await;
    f.expect(1, false, "agent 1 moved from org 1 to 2").await;
    f.expect(2, false, "agent 1 moved from org 1 to 2").await;
    assert!(f.direct(2).await.iter().any(|a| a.id == 1));
    // The change set knows the old organization (pre-read) and the new one (SET).
    assert_eq!(
        last_values(f, "organization_id"),
        Some(vec!["1".to_owned(), "2".to_owned()])
    );

    warm(f).await;
    f.write(&[("insert", vec![json!(10), json!("dee"), json!(1)])], None)
        .await;
    f.expect(1, false, "insert into org 1").await;
    f.expect(2, true, "insert into org 1").await;

    warm(f).await;
    f.write(&[("delete", vec![json!(10)])], None).await;
    f.expect(1, false, "delete from org 1").await;
    f.expect(2, true, "delete from org 1").await;

    // A WHERE on a column no query filters on: the pre-read finds the organization.
    warm(f).await;
    f.write(&[("rename_by_name", vec![json!("cy2"), json!("cy")])], None)
        .await;
    f.expect(1, true, "rename by name in org 2").await;
    f.expect(2, false, "rename by name in org 2").await;

    // A write that changes no row invalidates nothing.
    warm(f).await;
    let applied = f.db.stats().changes_applied;
    f.write(&[("rename", vec![json!("x"), json!(999)])], None)
        .await;
    assert_eq!(
        f.db.stats().changes_applied,
        applied,
        "no row changed, nothing applied"
    );
    f.expect(1, true, "no-op update").await;
}

/// The values of `column` in the last reported change of the fixture table
/// (`None`: unknown).
pub fn last_values(f: &Fixture, column: &str) -> Option<Vec<String>> {
    let reports = f.recorder.0.lock().unwrap();
    let rows = reports.last()?.changes.rows(&f.t)?.to_vec();
    assert_eq!(rows.len(), 1, "one row change: {rows:?}");
    Some(
        rows[0]
            .values(column)?
            .iter()
            .map(|v| v.as_str().to_owned())
            .collect(),
    )
}

/// Change sets of a transaction apply at commit only; rollback and drop apply nothing.
pub async fn transactions(f: &Fixture) {
    // Pre-reads run inside the transaction too: a rename in org 2 leaves org 1 cached.
    warm(f).await;
    f.write(&[("rename", vec![json!("cy4"), json!(3)])], Some("commit"))
        .await;
    f.expect(1, true, "tx rename in org 2").await;
    f.expect(2, false, "tx rename in org 2").await;

    warm(f).await;
    let base = f.db.stats().changes_applied;
    let seen = f
        .write(
            &[
                ("rename", vec![json!("bob2"), json!(2)]),
                ("rename", vec![json!("cy3"), json!(3)]),
            ],
            Some("commit"),
        )
        .await;
    assert_eq!(
        seen,
        vec![base, base, base + 1],
        "held until commit, then one application"
    );
    f.expect(1, false, "committed tx").await;
    f.expect(2, false, "committed tx").await;

    for end in ["rollback", "drop"] {
        warm(f).await;
        let base = f.db.stats().changes_applied;
        let seen = f
            .write(&[("rename", vec![json!("zed"), json!(2)])], Some(end))
            .await;
        assert_eq!(seen, vec![base, base], "{end}: nothing applied");
        f.expect(1, true, end).await;
        f.expect(2, true, end).await;
        assert!(
            f.direct(1).await.iter().all(|a| a.name != "zed"),
            "{end} undid the write"
        );
    }
}

/// Statements of unknown effect (DDL, several statements in one string) invalidate
/// everything; the listener sees every invalidation before the write returns.
pub async fn unknown_statements(f: &Fixture) {
    warm(f).await;
    let seen = f.recorder.count();
    let other = format!("{}_x", f.t);
    sqlx::query(AssertSqlSafe(format!("CREATE TABLE {other} (id BIGINT)")))
        .execute(&f.db)
        .await
        .unwrap();
    assert_eq!(
        f.recorder.count(),
        seen + 1,
        "the listener ran before execute returned"
    );
    assert!(
        f.recorder
            .0
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .changes
            .is_everything()
    );
    f.expect(1, false, "DDL").await;
    f.expect(2, false, "DDL").await;

    warm(f).await;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO {other} (id) VALUES (1); INSERT INTO {other} (id) VALUES (2)"
    )))
    .execute(&f.db)
    .await
    .unwrap();
    f.expect(1, false, "multi-statement").await;
    f.expect(2, false, "multi-statement").await;
    sqlx::query(AssertSqlSafe(format!("DROP TABLE {other}")))
        .execute(&f.db)
        .await
        .unwrap();
}

/// A pre-read the database refuses (a watched column the table lacks) falls back to
/// unknown values: the write succeeds (also inside a PostgreSQL transaction, thanks to
/// the savepoint), both organizations are invalidated, and that statement does not
/// try again.
pub async fn pre_read_failure_falls_back(f: &Fixture) {
    let ghost = leak(ghost_model(&f.t, &format!("{}.ghost", f.t)), prepare_by_org);
    f.db.call(ghost, "tenant", json!({ "table": f.t, "org": 1 }))
        .await
        .unwrap();

    warm(f).await;
    let before = f.db.stats();
    f.write(&[("rename", vec![json!("ada9"), json!(1)])], Some("commit"))
        .await;
    assert!(
        f.direct(1).await.iter().any(|a| a.name == "ada9"),
        "the write in the transaction succeeded"
    );
    assert_eq!(
        f.db.stats().pre_read_fallbacks,
        before.pre_read_fallbacks + 1
    );
    f.expect(1, false, "failed pre-read in tx").await;
    f.expect(2, false, "failed pre-read in tx: organization unknown")
        .await;

    warm(f).await;
    f.write(
        &[("rename_by_name", vec![json!("bob9"), json!("bob")])],
        None,
    )
    .await;
    assert!(
        f.direct(1).await.iter().any(|a| a.name == "bob9"),
        "the autocommit write succeeded"
    );
    f.expect(1, false, "failed pre-read").await;
    f.expect(2, false, "failed pre-read: organization unknown")
        .await;

    let before = f.db.stats();
    f.write(
        &[("rename_by_name", vec![json!("bob10"), json!("bob9")])],
        None,
    )
    .await;
    assert_eq!(
        f.db.stats().pre_reads,
        before.pre_reads,
        "a refused pre-read is not tried again"
    );
}

/// Every sqlx entry point goes through the interceptor (counted), with the usual results.
pub async fn executor_apis(db: &ReactiveDb<sqlx::Any>, backend: &str) {
    use sqlx::{Executor, Row, SqlSafeStr};
    let t = table_name(&format!("{backend}_api"));
    let q = |s: String| {
        if db.dialect() == Dialect::MySql {
            s.replace("$1", "?").replace("$2", "?")
        } else {
            s
        }
    };
    sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {t}")))
        .execute(db)
        .await
        .unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, organization_id BIGINT NOT NULL)"
    )))
    .execute(db)
    .await
    .unwrap();
    let start = db.stats().statements;

    let done = sqlx::query(AssertSqlSafe(q(format!(
        "INSERT INTO {t} (id, name, organization_id) VALUES ($1, $2, 1)"
    ))))
    .bind(1_i64)
    .bind("ada")
    .execute(db)
    .await
    .unwrap();
    assert_eq!(done.rows_affected(), 1);
    sqlx::query(AssertSqlSafe(q(format!(
        "INSERT INTO {t} (id, name, organization_id) VALUES ($1, $2, 2)"
    ))))
    .bind(2_i64)
    .bind("bob")
    .execute(db)
    .await
    .unwrap();

    let rows = sqlx::query(AssertSqlSafe(q(format!(
        "SELECT id, name FROM {t} WHERE organization_id = $1"
    ))))
    .bind(1_i64)
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<String, _>("name"), "ada");

    let agents: Vec<Agent> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT id, name, organization_id FROM {t} ORDER BY id"
    )))
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(agents.iter().map(|a| a.id).collect::<Vec<_>>(), vec![1, 2]);

    let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let none = sqlx::query(AssertSqlSafe(q(format!(
        "SELECT id FROM {t} WHERE id = $1"
    ))))
    .bind(99_i64)
    .fetch_optional(db)
    .await
    .unwrap();
    assert!(none.is_none());
    let one: Agent = sqlx::query_as(AssertSqlSafe(q(format!(
        "SELECT id, name, organization_id FROM {t} WHERE id = $1"
    ))))
    .bind(2_i64)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(one.name, "bob");
    let missing = sqlx::query(AssertSqlSafe(q(format!(
        "SELECT id FROM {t} WHERE id = $1"
    ))))
    .bind(99_i64)
    .fetch_one(db)
    .await;
    assert!(matches!(missing, Err(sqlx::Error::RowNotFound)));

    // A write through fetch_optional (RETURNING is not portable: a plain DELETE).
    let deleted = sqlx::query(AssertSqlSafe(q(format!("DELETE FROM {t} WHERE id = $1"))))
        .bind(2_i64)
        .fetch_optional(db)
        .await
        .unwrap();
    assert!(deleted.is_none());

    // prepare / describe go to the backend (with the MySQL rewrite) and run nothing.
    let stmt = db
        .prepare(AssertSqlSafe(q(format!("SELECT id FROM {t} WHERE id = $1"))).into_sql_str())
        .await
        .unwrap();
    assert_eq!(sqlx::Statement::columns(&stmt).len(), 1);
    let described = db
        .describe(AssertSqlSafe(format!("SELECT id, name FROM {t}")).into_sql_str())
        .await;
    if let Ok(d) = described {
        assert_eq!(d.columns().len(), 2);
    }

    // The same text again is a memo hit, not a new parse.
    let stats = db.stats();
    let sql = format!("SELECT name FROM {t} WHERE id = 1");
    for _ in 0..2 {
        sqlx::query(AssertSqlSafe(sql.clone()))
            .fetch_all(db)
            .await
            .unwrap();
    }
    let after = db.stats();
    assert_eq!(
        after.parsed_at_runtime,
        stats.parsed_at_runtime + 1,
        "parsed once"
    );
    assert_eq!(after.memo_hits, stats.memo_hits + 1, "then memoized");
    assert_eq!(
        after.statements,
        start + 11,
        "every statement was intercepted (prepare and describe run nothing)"
    );
    sqlx::query(AssertSqlSafe(format!("DROP TABLE {t}")))
        .execute(db)
        .await
        .unwrap();
}

/// A handler statement the model does not list is parsed at run time and its read
/// recorded: the cached result is invalidated by a write it depends on.
pub async fn unlisted_statement_is_recorded(f: &Fixture) {
    let call = || {
        f.db.call(
            f.by_org_count,
            "tenant",
            json!({ "table": f.t, "org": 1, "count": true }),
        )
    };
    let first = call().await.unwrap();
    let second = call().await.unwrap();
    assert!(second.hit, "cached");
    assert_eq!(first.bytes, second.bytes);
    // An insert into org 2 changes the total the org-1 call returned.
    f.write(&[("insert", vec![json!(20), json!("eve"), json!(2)])], None)
        .await;
    let third = call().await.unwrap();
    assert!(!third.hit, "the count's read was recorded and matched");
    let v: Value = serde_json::from_slice(&third.bytes).unwrap();
    let direct: i64 = sqlx::query_scalar(AssertSqlSafe(Sql::count(&f.t)))
        .fetch_one(f.db.pool())
        .await
        .unwrap();
    assert_eq!(v["total"], json!(direct));
    f.write(&[("delete", vec![json!(20)])], None).await;
}

/// An `INSERT ... RETURNING id` gives the change set the generated id (a watched
/// column); without `RETURNING` the id stays unknown. `create` is the table's DDL with
/// a generated `id` column; `t` its name.
pub async fn returning_gives_generated_ids(db: &ReactiveDb<sqlx::Any>, t: &str, create: &str) {
    let _ = sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {t}")))
        .execute(db.pool())
        .await;
    sqlx::query(AssertSqlSafe(create.to_owned()))
        .execute(db.pool())
        .await
        .unwrap();
    // A query keyed on `id` makes it a watched column.
    let mut model = by_org_model(t, &format!("{t}.byId"));
    model.dependencies[0].keys[0].column = "id".into();
    let _ = db.read_set(leak(model, prepare_by_org), &[json!(1)]).await;
    let rec = Arc::new(Recorder::default());
    db.set_listener(rec.clone());
    let last_id_values = || {
        let reports = rec.0.lock().unwrap();
        let report = reports.last().expect("an invalidation").clone();
        let rows = report
            .changes
            .rows(t)
            .expect("a change to the table")
            .to_vec();
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows[0].values("id").cloned()
    };
    let id: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "INSERT INTO {t} (name, organization_id) VALUES ($1, $2) RETURNING id"
    )))
    .bind("gen")
    .bind(1_i64)
    .fetch_one(db)
    .await
    .unwrap();
    let expected = reactive_runtime::engine::KeyValue::from_i64(id);
    assert_eq!(
        last_id_values().map(|v| v.into_iter().collect::<Vec<_>>()),
        Some(vec![expected]),
        "the generated id comes from RETURNING"
    );
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {t} (name, organization_id) VALUES ($1, $2)"
    )))
    .bind("gen2")
    .bind(1_i64)
    .execute(db)
    .await
    .unwrap();
    assert_eq!(
        last_id_values(),
        None,
        "without RETURNING the id is unknown"
    );
    sqlx::query(AssertSqlSafe(format!("DROP TABLE {t}")))
        .execute(db.pool())
        .await
        .unwrap();
}

/// (Re)creates the view `v` over the fixture's table, through the pool (behind the handle).
async fn create_view(f: &Fixture, v: &str) {
    let _ = sqlx::query(AssertSqlSafe(format!("DROP VIEW IF EXISTS {v}")))
        .execute(f.db.pool())
        .await;
    sqlx::query(AssertSqlSafe(format!(
        "CREATE VIEW {v} AS SELECT id, name, organization_id FROM {}",
        f.t
    )))
    .execute(f.db.pool())
    .await
    .unwrap();
}

/// A query over a view is invalidated by a write to the view's base table: the
/// analyser sees the view's name only, the catalog knows it is a view, and a read of
/// a view reads everything. The view `<t>_v` is created after the handle (the catalog
/// is read again for a name it does not know).
pub async fn view_reads_its_base_tables(f: &Fixture) {
    let v = format!("{}_v", f.t);
    create_view(f, &v).await;
    let by_org = leak(by_org_model(&v, &format!("{v}.byOrg")), prepare_by_org);
    let call = || f.db.call(by_org, "tenant", json!({ "table": v, "org": 1 }));
    let first = call().await.unwrap();
    assert!(call().await.unwrap().hit, "a view query is cached");
    // Through the base table: the view's rows change.
    f.write(&[("rename", vec![json!("ada-renamed"), json!(1)])], None)
        .await;
    let after = call().await.unwrap();
    assert!(
        !after.hit,
        "a write to the base table invalidates the view query"
    );
    assert_ne!(first.bytes, after.bytes);
    let agents: Vec<Agent> = serde_json::from_slice(&after.bytes).unwrap();
    assert!(agents.iter().any(|a| a.name == "ada-renamed"), "{agents:?}");
    f.write(&[("rename", vec![json!("ada"), json!(1)])], None)
        .await;
    let _ = sqlx::query(AssertSqlSafe(format!("DROP VIEW IF EXISTS {v}")))
        .execute(f.db.pool())
        .await;
}

/// A writable CTE (PostgreSQL): `WITH d AS (DELETE ... RETURNING id) DELETE FROM
/// <other> WHERE id IN (SELECT id FROM d)` reports `DELETE 0` when `<other>` has no
/// matching row, but `d` deleted a row: the change is applied all the same.
pub async fn writable_cte_is_not_a_no_op(f: &Fixture) {
    let other = format!("{}_log", f.t);
    let _ = sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {other}")))
        .execute(f.db.pool())
        .await;
    sqlx::query(AssertSqlSafe(format!("CREATE TABLE {other} (id BIGINT)")))
        .execute(f.db.pool())
        .await
        .unwrap();
    for (sql, tag) in [
        // Two tables: the outer DELETE finds nothing and reports 0.
        (
            format!(
                "WITH d AS (DELETE FROM {t} WHERE id = $1 RETURNING id) \
                 DELETE FROM {other} WHERE id IN (SELECT id FROM d)",
                t = f.t
            ),
            Some(0),
        ),
        // One table twice: two write entries, whatever the tag says.
        (
            format!(
                "WITH d AS (DELETE FROM {t} WHERE id = $1 RETURNING id) \
                 DELETE FROM {t} WHERE id = $1",
                t = f.t
            ),
            None,
        ),
    ] {
        warm(f).await;
        let done = sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(3_i64)
            .execute(&f.db)
            .await
            .unwrap();
        if let Some(tag) = tag {
            assert_eq!(
                done.rows_affected(),
                tag,
                "{sql}: the top-level command tag"
            );
        }
        f.expect(2, false, &sql).await;
        f.write(&[("insert", vec![json!(3), json!("cy"), json!(2)])], None)
            .await;
    }
    let _ = sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {other}")))
        .execute(f.db.pool())
        .await;
}

/// A write *through* a view (PostgreSQL's and MySQL's updatable views, a SQLite view
/// with an `INSTEAD OF` trigger, `create_extra`) changes the view's base tables, which
/// the statement does not name: a cached query of the base table is invalidated all
/// the same, and is not served stale.
pub async fn view_writes_change_its_base_tables(f: &Fixture, create_extra: Option<&str>) {
    let v = format!("{}_wv", f.t);
    create_view(f, &v).await;
    if let Some(extra) = create_extra {
        sqlx::raw_sql(AssertSqlSafe(extra.replace("{v}", &v).replace("{t}", &f.t)))
            .execute(f.db.pool())
            .await
            .unwrap();
    }
    // The handle learns of the view (created behind it) from the catalog.
    f.db.refresh_schema().await;
    let call = || {
        f.db.call(
            f.by_org,
            "tenant",
            json!({ "table": f.t.clone(), "org": 1 }),
        )
    };
    let first: Vec<Agent> = serde_json::from_slice(&call().await.unwrap().bytes).unwrap();
    assert!(call().await.unwrap().hit, "the base table query is cached");
    assert!(first.iter().any(|a| a.name == "ada"), "{first:?}");
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {v} SET name = 'ada-through-view' WHERE id = 1"
    )))
    .execute(&f.db)
    .await
    .unwrap();
    f.db.settled().await;
    let after = call().await.unwrap();
    let agents: Vec<Agent> = serde_json::from_slice(&after.bytes).unwrap();
    assert!(
        agents.iter().any(|a| a.name == "ada-through-view"),
        "a write through the view reaches the base table's cached query: {agents:?}"
    );
    assert!(!after.hit);
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET name = 'ada' WHERE id = 1",
        f.t
    )))
    .execute(f.db.pool())
    .await
    .unwrap();
    let _ = sqlx::query(AssertSqlSafe(format!("DROP VIEW IF EXISTS {v}")))
        .execute(f.db.pool())
        .await;
}

/// A trigger on the fixture's table (`trigger`, with `{t}` and `{c}` for the table and
/// the one it writes) keeps a row of `<t>_trg` per organization up to date: a write to
/// `<t>` changes `<t>_trg` rows no statement names, and a cached query of `<t>_trg` is
/// invalidated all the same. With `precise`, the trigger widens nothing else: another
/// organization's query of `<t>` stays cached. `expected`: the names of `<t>_trg`'s
/// organization 1 after the insert of `dee` there.
pub async fn trigger_writes_reach_their_tables(
    f: &Fixture,
    trigger: &str,
    precise: bool,
    expected: &[&str],
) {
    let c = format!("{}_trg", f.t);
    let pool = f.db.pool();
    let _ = sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {c}")))
        .execute(pool)
        .await;
    for sql in [
        format!(
            "CREATE TABLE {c} (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, organization_id BIGINT NOT NULL)"
        ),
        format!(
            "INSERT INTO {c} (id, name, organization_id) VALUES (1, 'none', 1), (2, 'none', 2)"
        ),
    ] {
        sqlx::query(AssertSqlSafe(sql)).execute(pool).await.unwrap();
    }
    sqlx::raw_sql(AssertSqlSafe(
        trigger.replace("{t}", &f.t).replace("{c}", &c),
    ))
    .execute(pool)
    .await
    .unwrap();
    f.db.refresh_schema().await;
    let counter = leak(by_org_model(&c, &format!("{c}.byOrg")), prepare_by_org);
    let of = |def: &'static FunctionDef, table: &str, org: i64| {
        f.db.call(def, "tenant", json!({ "table": table, "org": org }))
    };
    of(counter, &c, 1).await.unwrap();
    of(f.by_org, &f.t, 2).await.unwrap();
    assert!(of(counter, &c, 1).await.unwrap().hit);
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {} (id, name, organization_id) VALUES (4, 'dee', 1)",
        f.t
    )))
    .execute(&f.db)
    .await
    .unwrap();
    f.db.settled().await;
    let after = of(counter, &c, 1).await.unwrap();
    let rows: Vec<Agent> = serde_json::from_slice(&after.bytes).unwrap();
    assert_eq!(
        rows.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        expected,
        "the trigger's write reaches the cached query of its table"
    );
    assert!(!after.hit);
    if precise {
        assert!(
            of(f.by_org, &f.t, 2).await.unwrap().hit,
            "a trigger naming its table widens nothing else"
        );
    }
    let _ = sqlx::query(AssertSqlSafe(format!("DELETE FROM {} WHERE id = 4", f.t)))
        .execute(pool)
        .await;
    let _ = sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {c}")))
        .execute(pool)
        .await;
}

/// PostgreSQL partitions (and inherited tables): a row written through the partition
/// is a row of the partitioned table, and a row written through the partitioned table
/// is a row of one of its partitions. A cached query of either sees the write.
pub async fn partitions_share_their_rows(f: &Fixture) {
    let p = format!("{}_part", f.t);
    let pool = f.db.pool();
    for sql in [
        format!("DROP TABLE IF EXISTS {p}"),
        format!(
            "CREATE TABLE {p} (id BIGINT NOT NULL, name VARCHAR(100) NOT NULL, organization_id BIGINT NOT NULL) \
             PARTITION BY LIST (organization_id)"
        ),
        format!("CREATE TABLE {p}_1 PARTITION OF {p} FOR VALUES IN (1)"),
        format!("CREATE TABLE {p}_2 PARTITION OF {p} FOR VALUES IN (2)"),
        format!("INSERT INTO {p} (id, name, organization_id) VALUES (1, 'ada', 1), (3, 'cy', 2)"),
    ] {
        sqlx::query(AssertSqlSafe(sql)).execute(pool).await.unwrap();
    }
    f.db.refresh_schema().await;
    let parent = leak(by_org_model(&p, &format!("{p}.byOrg")), prepare_by_org);
    let part = format!("{p}_1");
    let child = leak(
        by_org_model(&part, &format!("{part}.byOrg")),
        prepare_by_org,
    );
    let names = |out: &reactive_runtime::db::CallOutput| {
        serde_json::from_slice::<Vec<Agent>>(&out.bytes)
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect::<Vec<_>>()
    };
    let call = |def: &'static FunctionDef, table: &str| {
        f.db.call(def, "tenant", json!({ "table": table, "org": 1 }))
    };
    call(parent, &p).await.unwrap();
    call(child, &part).await.unwrap();
    assert!(call(parent, &p).await.unwrap().hit);
    assert!(call(child, &part).await.unwrap().hit);

    // Through the partition: the partitioned table's query sees it.
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {part} (id, name, organization_id) VALUES (2, 'bob', 1)"
    )))
    .execute(&f.db)
    .await
    .unwrap();
    f.db.settled().await;
    assert_eq!(
        names(&call(parent, &p).await.unwrap()),
        ["ada", "bob"],
        "a row inserted into a partition is a row of the partitioned table"
    );
    // Through the partitioned table: the partition's query sees it.
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {p} SET name = 'ada2' WHERE id = 1"
    )))
    .execute(&f.db)
    .await
    .unwrap();
    f.db.settled().await;
    assert_eq!(
        names(&call(child, &part).await.unwrap()),
        ["ada2", "bob"],
        "a row updated through the partitioned table is a row of its partition"
    );
    sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {p}")))
        .execute(pool)
        .await
        .unwrap();
}
