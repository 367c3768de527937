//! The PostgreSQL change feed: writes that bypass `ReactiveDb` (a plain sqlx pool,
//! like `psql`) invalidate the cache through triggers + LISTEN/NOTIFY.
//! Needs TEST_POSTGRES_URL (skipped otherwise, unless CI is set).
#![cfg(feature = "postgres")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reactive_runtime::ReactiveDb;
use reactive_runtime::db::InvalidationListener;
use reactive_runtime::engine::InvalidationReport;
use reactive_runtime::feed::{FeedConfig, FeedError, FeedHandle, FeedStats, PgChangeFeed};
use reactive_runtime::registry::{BoxFuture, FunctionDef, InputError, Prepared, Registration};
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgPool, PgPoolOptions};

const WAIT: Duration = Duration::from_secs(10);

/// The query `feedtest.byOrg`: agents of an organization in the table named by the
/// input. Its model lists no statement: the SELECT is parsed at run time and its read
/// (keyed on `organization_id` with the bound value) recorded.
static BY_ORG: FunctionDef = FunctionDef::by_hand(
    r#"{"name":"feedtest.byOrg","rust_name":"feedtest_by_org","kind":"query","requires_ack":false,"dialect":"postgres","bindings":[],"dependencies":[],"invalidates":[],"statements":[],"calls":[]}"#,
    prepare_by_org,
);

inventory::submit! { Registration(&BY_ORG) }

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
struct Agent {
    id: i64,
    name: String,
    organization_id: i64,
}

fn prepare_by_org(input: Value) -> Result<Prepared, InputError> {
    let field = |name: &str| InputError {
        path: name.into(),
        message: "missing".into(),
    };
    let org = input
        .get("org")
        .and_then(Value::as_i64)
        .ok_or_else(|| field("org"))?;
    let table = input
        .get("table")
        .and_then(Value::as_str)
        .ok_or_else(|| field("table"))?
        .to_owned();
    Ok(Prepared {
        bindings: vec![],
        run: Box::new(
            move |db: reactive_runtime::registry::DbHandle| -> BoxFuture<'static, reactive_runtime::Result<Vec<u8>>> {
                let db = *db.downcast::<ReactiveDb<sqlx::Any>>().expect("an Any handle");
                Box::pin(async move {
                    let agents: Vec<Agent> = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT id, name, organization_id FROM {table} WHERE organization_id = $1 ORDER BY id"
                    )))
                    .bind(org)
                    .fetch_all(&db)
                    .await?;
                    Ok(serde_json::to_vec(&agents)?)
                })
            },
        ),
    })
}

/// Records every invalidation handed to the listener (what SSE publishes).
#[derive(Default)]
struct Recorder(Mutex<Vec<Arc<InvalidationReport>>>);

impl InvalidationListener for Recorder {
    fn on_invalidation(&self, report: Arc<InvalidationReport>) -> BoxFuture<'static, ()> {
        self.0.lock().unwrap().push(report);
        Box::pin(async {})
    }

    fn bind(self: Arc<Self>) -> Arc<dyn InvalidationListener> {
        self
    }
}

struct Ctx {
    db: ReactiveDb<sqlx::Any>,
    /// A separate pool without the app's application_name: writes bypass ReactiveDb.
    external: PgPool,
    t: String,
    app_name: String,
    listener_name: String,
    recorder: Arc<Recorder>,
}

fn url_with(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

impl Ctx {
    /// A fresh table `feed_<scenario>_<pid>` with agents 1, 2 in org 1 and 3 in org 2.
    async fn new(scenario: &str) -> Option<Self> {
        let Ok(url) = std::env::var("TEST_POSTGRES_URL") else {
            if std::env::var_os("CI").is_some() {
                panic!("TEST_POSTGRES_URL must be set when CI is set");
            }
            eprintln!("skipped: TEST_POSTGRES_URL not set");
            return None;
        };
        let t = format!("feed_{scenario}_{}", std::process::id());
        let app_name = format!("rf-app-{scenario}");
        let db = ReactiveDb::connect(&url_with(&url, &format!("application_name={app_name}")))
            .await
            .expect("connect the app");
        let external = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("connect the external pool");
        for sql in [
            format!("DROP TABLE IF EXISTS {t}"),
            format!(
                "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT NOT NULL, organization_id BIGINT NOT NULL)"
            ),
            format!(
                "INSERT INTO {t} (id, name, organization_id) VALUES (1, 'ada', 1), (2, 'bob', 1), (3, 'cy', 2)"
            ),
        ] {
            sqlx::query(AssertSqlSafe(sql))
                .execute(&external)
                .await
                .unwrap();
        }
        let recorder = Arc::new(Recorder::default());
        db.set_listener(recorder.clone());
        Some(Self {
            db,
            external,
            listener_name: format!("rf-listen-{scenario}-{}", std::process::id()),
            t,
            app_name,
            recorder,
        })
    }

    /// Installs the feed on the table (keys `id`, `organization_id`, `name`) on a
    /// channel of its own, starts it and waits until it listens.
    async fn feed(&self) -> (PgChangeFeed, FeedHandle) {
        let config = FeedConfig::new()
            .table_with_keys(&self.t, &["id", "organization_id", "name"])
            .channel(&self.t)
            .listener_application_name(&self.listener_name)
            .reconnect_delay(Duration::from_millis(50), Duration::from_millis(500));
        let feed = PgChangeFeed::install(&self.db, config).await.unwrap();
        assert_eq!(feed.own_application_name(), Some(self.app_name.as_str()));
        let handle = feed.clone().spawn(self.db.clone());
        assert!(handle.ready(WAIT).await, "the feed listens");
        (feed, handle)
    }

    /// `feedtest.byOrg(org)`: (agents, served from the cache).
    async fn agents(&self, org: i64) -> (Vec<Agent>, bool) {
        let out = self
            .db
            .call(&BY_ORG, "tenant", json!({ "table": self.t, "org": org }))
            .await
            .unwrap();
        (serde_json::from_slice(&out.bytes).unwrap(), out.hit)
    }

    /// Caches `byOrg(org)` for each org (and checks the second call is a hit).
    async fn warm(&self, orgs: &[i64]) {
        for &org in orgs {
            self.agents(org).await;
            assert!(self.agents(org).await.1, "org {org} cached");
        }
    }

    /// Runs SQL on the external pool (bypassing ReactiveDb).
    async fn external(&self, sql: &str) {
        sqlx::query(AssertSqlSafe(sql.replace("{t}", &self.t)))
            .execute(&self.external)
            .await
            .unwrap();
    }

    async fn drop_table(&self) {
        self.external("DROP TABLE IF EXISTS {t}").await;
    }
}

/// Waits for the counters to satisfy `pred`, or fails with `what`.
async fn wait(handle: &FeedHandle, what: &str, pred: impl FnMut(&FeedStats) -> bool) -> FeedStats {
    match handle.wait_until(pred, WAIT).await {
        Some(stats) => stats,
        None => panic!("timed out waiting for {what}: {:?}", handle.stats()),
    }
}

fn names(agents: &[Agent]) -> Vec<&str> {
    agents.iter().map(|a| a.name.as_str()).collect()
}

#[tokio::test]
async fn external_writes_invalidate_cached_queries() {
    let Some(c) = Ctx::new("ext").await else {
        return;
    };
    let (_feed, handle) = c.feed().await;
    c.warm(&[1, 2]).await;
    let before = handle.stats();
    let reports_before = c.recorder.0.lock().unwrap().len();

    c.external("UPDATE {t} SET name = 'ada2' WHERE id = 1")
        .await;
    wait(&handle, "the update's notification", |s| {
        s.applied > before.applied
    })
    .await;
    // The notification carried the statement's time: its lag is measured (same host,
    // same clock: well under the test's time budget).
    let lag = handle.stats().last_lag.expect("the lag of a notification");
    assert!(lag < std::time::Duration::from_secs(10), "{lag:?}");
    let (agents, hit) = c.agents(1).await;
    assert!(!hit, "org 1 was invalidated by the external update");
    assert_eq!(names(&agents), ["ada2", "bob"], "fresh result");
    assert!(c.agents(2).await.1, "org 2 is not affected (keyed change)");
    {
        // The installed listener (what publishes SSE events) got the external change.
        let reports = c.recorder.0.lock().unwrap();
        let org1 = json!({ "org": 1, "table": c.t }).to_string();
        let report = reports[reports_before..]
            .iter()
            .find(|r| r.changes.rows(&c.t).is_some())
            .expect("a report of the external change");
        assert!(
            report.entries.iter().any(|e| e.key.input == org1),
            "the report names the org-1 entry: {report:?}"
        );
    }

    // An insert into org 2 invalidates org 2 only.
    c.warm(&[1]).await;
    let before = handle.stats();
    c.external("INSERT INTO {t} (id, name, organization_id) VALUES (4, 'dan', 2)")
        .await;
    wait(&handle, "the insert's notification", |s| {
        s.applied > before.applied
    })
    .await;
    let (agents, hit) = c.agents(2).await;
    assert!(!hit);
    assert_eq!(names(&agents), ["cy", "dan"]);
    assert!(
        c.agents(1).await.1,
        "org 1 is not affected by an insert into org 2"
    );

    // A delete.
    c.warm(&[2]).await;
    let before = handle.stats();
    c.external("DELETE FROM {t} WHERE id = 3").await;
    wait(&handle, "the delete's notification", |s| {
        s.applied > before.applied
    })
    .await;
    let (agents, hit) = c.agents(2).await;
    assert!(!hit);
    assert_eq!(names(&agents), ["dan"]);
    c.drop_table().await;
}

#[tokio::test]
async fn update_moving_a_row_invalidates_old_and_new_keys() {
    let Some(c) = Ctx::new("move").await else {
        return;
    };
    let (_feed, handle) = c.feed().await;
    c.external("INSERT INTO {t} (id, name, organization_id) VALUES (9, 'zed', 3)")
        .await;
    wait(&handle, "the setup insert", |s| s.notifications >= 1).await;
    c.warm(&[1, 2, 3]).await;
    let before = handle.stats();

    c.external("UPDATE {t} SET organization_id = 2 WHERE id = 1")
        .await;
    wait(&handle, "the move's notification", |s| {
        s.applied > before.applied
    })
    .await;
    let (one, hit1) = c.agents(1).await;
    let (two, hit2) = c.agents(2).await;
    assert!(!hit1, "the old organization was invalidated");
    assert!(!hit2, "the new organization was invalidated");
    assert_eq!(names(&one), ["bob"]);
    assert_eq!(names(&two), ["ada", "cy"]);
    assert!(
        c.agents(3).await.1,
        "an unrelated organization stays cached"
    );
    c.drop_table().await;
}

#[tokio::test]
async fn rolled_back_external_writes_invalidate_nothing() {
    let Some(c) = Ctx::new("rollback").await else {
        return;
    };
    let (_feed, handle) = c.feed().await;
    c.warm(&[1, 2]).await;
    let before = handle.stats();

    let mut tx = c.external.begin().await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET name = 'gone' WHERE organization_id = 1",
        c.t
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    // A committed write afterwards: its notification comes after any of the rolled-back one.
    c.external("UPDATE {t} SET name = 'cy2' WHERE id = 3").await;
    wait(&handle, "the committed write", |s| {
        s.applied > before.applied
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = handle.stats();
    assert_eq!(
        after.notifications,
        before.notifications + 1,
        "only the committed write notified"
    );
    let (agents, hit) = c.agents(1).await;
    assert!(hit, "the rolled-back write invalidated nothing");
    assert_eq!(names(&agents), ["ada", "bob"]);
    assert!(!c.agents(2).await.1, "the committed write did invalidate");
    c.drop_table().await;
}

#[tokio::test]
async fn the_apps_own_writes_are_not_applied_twice() {
    let Some(c) = Ctx::new("own").await else {
        return;
    };
    let (_feed, handle) = c.feed().await;
    c.warm(&[1]).await;
    let before = handle.stats();
    let applied = c.db.stats().changes_applied;

    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET name = $1 WHERE id = $2",
        c.t
    )))
    .bind("ada3")
    .bind(1_i64)
    .execute(&c.db)
    .await
    .unwrap();
    assert_eq!(
        c.db.stats().changes_applied,
        applied + 1,
        "intercepted and applied once"
    );
    assert!(!c.agents(1).await.1, "the interceptor invalidated org 1");
    wait(&handle, "the own write's notification", |s| {
        s.own_writes_skipped > before.own_writes_skipped
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = handle.stats();
    assert_eq!(after.applied, before.applied, "the feed applied nothing");
    assert_eq!(
        c.db.stats().changes_applied,
        applied + 1,
        "no second application"
    );
    assert!(c.agents(1).await.1, "the re-cached org 1 stays cached");

    // The feed is alive: an external write is applied.
    c.external("UPDATE {t} SET name = 'ada4' WHERE id = 1")
        .await;
    wait(&handle, "the external write", |s| s.applied > after.applied).await;
    assert_eq!(c.db.stats().changes_applied, applied + 2);
    c.drop_table().await;
}

/// A row the database deletes on behalf of the app's own statement (`ON DELETE
/// CASCADE`, no relation declared) is applied from the feed, not skipped as an own
/// write: the interceptor never saw it.
#[tokio::test]
async fn rows_a_cascade_changes_for_the_apps_write_are_applied() {
    let Some(c) = Ctx::new("cascade").await else {
        return;
    };
    let parent = format!("{}_org", c.t);
    c.external(&format!("CREATE TABLE {parent} (id BIGINT PRIMARY KEY)"))
        .await;
    c.external(&format!("INSERT INTO {parent} VALUES (1), (2)"))
        .await;
    c.external(&format!(
        "ALTER TABLE {{t}} ADD FOREIGN KEY (organization_id) REFERENCES {parent} (id) ON DELETE CASCADE"
    ))
    .await;
    let (_feed, handle) = c.feed().await;
    c.warm(&[1, 2]).await;
    let before = handle.stats();
    sqlx::query(AssertSqlSafe(format!("DELETE FROM {parent} WHERE id = $1")))
        .bind(1_i64)
        .execute(&c.db)
        .await
        .unwrap();
    wait(&handle, "the cascaded deletes", |s| {
        s.notifications >= before.notifications + 2 && s.applied > before.applied
    })
    .await;
    assert_eq!(
        handle.stats().own_writes_skipped,
        before.own_writes_skipped,
        "the rows the cascade deleted are not the app's own writes"
    );
    let (agents, hit) = c.agents(1).await;
    assert!(!hit, "org 1's agents were deleted by the cascade");
    assert!(agents.is_empty());
    assert!(c.agents(2).await.1, "org 2 stays cached");
    c.drop_table().await;
    c.external(&format!("DROP TABLE IF EXISTS {parent}")).await;
}

#[tokio::test]
async fn reconnect_invalidates_the_tables_wholesale() {
    let Some(c) = Ctx::new("reconnect").await else {
        return;
    };
    let (_feed, handle) = c.feed().await;
    c.warm(&[1, 2]).await;
    let before = handle.stats();
    assert_eq!(before.resyncs, 1, "one resync at start");

    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&c.listener_name)
    .fetch_all(&c.external)
    .await
    .unwrap();
    assert_eq!(killed, [true], "the listener's connection was terminated");
    let after = wait(&handle, "the resync after reconnecting", |s| {
        s.resyncs > before.resyncs && s.applied > before.applied
    })
    .await;
    assert!(after.connects > before.connects);
    assert!(!c.agents(1).await.1, "org 1 invalidated wholesale");
    assert!(!c.agents(2).await.1, "org 2 invalidated wholesale");

    // Listening again.
    c.warm(&[1]).await;
    c.external("UPDATE {t} SET name = 'ada5' WHERE id = 1")
        .await;
    wait(&handle, "a notification after reconnecting", |s| {
        s.notifications > after.notifications && s.applied > after.applied
    })
    .await;
    let (agents, hit) = c.agents(1).await;
    assert!(!hit);
    assert_eq!(names(&agents), ["ada5", "bob"]);
    c.drop_table().await;
}

#[tokio::test]
async fn truncate_and_oversized_payloads_change_the_whole_table() {
    let Some(c) = Ctx::new("whole").await else {
        return;
    };
    let (_feed, handle) = c.feed().await;
    c.warm(&[1, 2]).await;
    let before = handle.stats();
    // `name` is a key column: a 9000-byte name cannot fit in a notification.
    c.external("UPDATE {t} SET name = repeat('x', 9000) WHERE id = 3")
        .await;
    wait(&handle, "the oversized notification", |s| {
        s.whole_table > before.whole_table && s.applied > before.applied
    })
    .await;
    assert!(
        !c.agents(1).await.1,
        "org 1 invalidated: the change had no key values"
    );

    c.warm(&[1]).await;
    let before = handle.stats();
    c.external("TRUNCATE {t}").await;
    wait(&handle, "the truncate notification", |s| {
        s.whole_table > before.whole_table && s.applied > before.applied
    })
    .await;
    let (agents, hit) = c.agents(1).await;
    assert!(!hit);
    assert!(agents.is_empty());
    c.drop_table().await;
}

#[tokio::test]
async fn install_checks_tables_and_key_columns() {
    let Some(c) = Ctx::new("install").await else {
        return;
    };
    c.external("ALTER TABLE {t} ADD COLUMN created TIMESTAMP, ADD COLUMN tag UUID")
        .await;
    let missing = format!("{}_missing", c.t);
    let err = PgChangeFeed::install(&c.db, FeedConfig::new().table(&missing))
        .await
        .unwrap_err();
    assert!(matches!(err, FeedError::Table { .. }), "{err}");
    assert!(matches!(
        PgChangeFeed::install(&c.db, FeedConfig::new()).await,
        Err(FeedError::NoTables)
    ));
    assert!(matches!(
        PgChangeFeed::install(&c.db, FeedConfig::new().table(&c.t).channel("no-dash")).await,
        Err(FeedError::InvalidChannel(_))
    ));

    // Derived keys: `id` (no registered function filters this table). Installing twice is fine.
    for _ in 0..2 {
        let feed = PgChangeFeed::install(&c.db, FeedConfig::new().table(&c.t.to_uppercase()))
            .await
            .unwrap();
        assert_eq!(feed.tables()[0].name, c.t);
        assert_eq!(feed.tables()[0].key_columns, ["id"]);
    }
    let feed = PgChangeFeed::install(
        &c.db,
        FeedConfig::new().table_with_keys(&c.t, &["organization_id", "created", "tag", "nope"]),
    )
    .await
    .unwrap();
    assert_eq!(feed.tables()[0].key_columns, ["organization_id"]);
    assert_eq!(feed.tables()[0].skipped_columns, ["created", "nope", "tag"]);
    // Writes still work with the trigger in place, and dropping a key column does not break them.
    c.external("ALTER TABLE {t} DROP COLUMN organization_id")
        .await;
    c.external("INSERT INTO {t} (id, name) VALUES (7, 'eve')")
        .await;
    feed.uninstall(&c.db).await.unwrap();
    let triggers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname LIKE 'reactive_feed%'",
    )
    .bind(&c.t)
    .fetch_one(&c.external)
    .await
    .unwrap();
    assert_eq!(triggers, 0, "uninstalled");
    c.drop_table().await;

    let sqlite = ReactiveDb::connect("sqlite::memory:").await.unwrap();
    assert!(matches!(
        PgChangeFeed::install(&sqlite, FeedConfig::new().table("agent")).await,
        Err(FeedError::UnsupportedBackend(_))
    ));
}

#[tokio::test]
async fn partitions_report_the_partitioned_table() {
    let Some(c) = Ctx::new("parts").await else {
        return;
    };
    c.drop_table().await;
    for sql in [
        "CREATE TABLE {t} (id BIGINT NOT NULL, name TEXT NOT NULL, organization_id BIGINT NOT NULL) PARTITION BY LIST (organization_id)",
        "CREATE TABLE {t}_p1 PARTITION OF {t} FOR VALUES IN (1)",
        "CREATE TABLE {t}_rest PARTITION OF {t} DEFAULT",
        "INSERT INTO {t} (id, name, organization_id) VALUES (1, 'ada', 1), (2, 'bob', 1), (3, 'cy', 2)",
    ] {
        c.external(sql).await;
    }
    let (_feed, handle) = c.feed().await;
    c.warm(&[1, 2]).await;
    let before = handle.stats();
    c.external("UPDATE {t} SET name = 'ada6' WHERE id = 1")
        .await;
    wait(&handle, "the partition's notification", |s| {
        s.applied > before.applied
    })
    .await;
    let (agents, hit) = c.agents(1).await;
    assert!(
        !hit,
        "a write to a partition invalidates the partitioned table's queries"
    );
    assert_eq!(names(&agents), ["ada6", "bob"]);
    assert!(c.agents(2).await.1, "keyed: org 2 stays cached");
    c.drop_table().await;
}
