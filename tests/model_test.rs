//! The proof of issue 4: a randomized, seeded model test of [`ReactiveDb`] over the
//! TeamHub schema, and a precision test.
//!
//! # Model test
//!
//! Reader tasks call the TeamHub queries through `db.call` (the cache) while writer
//! tasks run the TeamHub mutations, a test-only mutation that *moves* an agent to
//! another organization, and transactions that commit, roll back or are dropped. Every
//! reactive read is compared with the same query run on `db.pool()` (no interception,
//! no cache):
//!
//! - during the run, a read is bracketed by a direct query before and after it; the
//!   reactive value must equal one of them. When it equals neither and no write was in
//!   flight from the first direct query to the last, the read is **stale**; when a
//!   write overlapped, the read is *unverified* (it may show an intermediate state);
//! - every second and at the end, a sweep stops the writers (after their writes, and
//!   the invalidations those writes await, completed) and reads *every* query key
//!   through the cache: each must equal the direct query, else it is **stale**.
//!
//! Any stale read fails the test. Unnecessary invalidations are measured: an entry
//! invalidated while holding value `v` whose next computation (started after the
//! invalidation) gives `v` again was invalidated for nothing.
//!
//! Each task's operation sequence is reproducible from the printed seed (`MODEL_SEED`
//! replays it); the interleaving of tasks is up to the scheduler. `MODEL_SECS`
//! (default 5) bounds each run; `MODEL_MAX_OPS` (default 50 000) bounds the operations
//! per task.
//!
//! Backends: SQLite always (temporary file); PostgreSQL with `TEST_POSTGRES_URL`,
//! MariaDB/MySQL with `TEST_MYSQL_URL` (a fresh database each run, dropped at the end);
//! cache stores: memory always, Redis with `TEST_REDIS_URL` (unique key prefix). A
//! missing URL skips with a message, or panics when `CI` is set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reactive::cache::memory::MemoryStore;
use reactive::cache::{CacheKey, CacheStore};
use reactive::db::InvalidationListener;
use reactive::engine::{Engine, EngineConfig, InvalidationReport, Relations, Source};
use reactive::registry::{BoxFuture, FunctionDef};
use reactive::{Dialect, ReactiveDb, reactive_function};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{AnyPool, AssertSqlSafe, Connection};
use teamhub::model::{Agent, AgentStats, Memory, Message, Tool};

/// A serialized result as kept by the test.
type Bytes = Vec<u8>;

// ---------------------------------------------------------------------------------
// The test-only mutation: move an agent to another organization.

/// Input of [`move_agent`].
#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoveAgent {
    /// The agent.
    pub id: String,
    /// Its new organization.
    pub to_organization_id: String,
}

/// Moves an agent between organizations. The statement names only the new
/// organization: the old one must come from the runtime's pre-read.
#[reactive_function(name = "proof.moveAgent")]
pub async fn move_agent(db: &ReactiveDb<sqlx::Any>, input: MoveAgent) -> reactive::Result<i64> {
    let done = sqlx::query("UPDATE agent SET organization_id = $1 WHERE id = $2")
        .bind(&input.to_organization_id)
        .bind(&input.id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() as i64)
}

/// Input of [`delete_agent`].
#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteAgentOnly {
    /// The agent.
    pub id: String,
}

/// Deletes an agent alone: its messages and memories go with it through the schema's
/// `ON DELETE CASCADE`, which the runtime sees only through the relation edges (and
/// reads before the delete, so that other organizations' entries stay cached).
#[reactive_function(name = "proof.deleteAgent")]
pub async fn delete_agent(
    db: &ReactiveDb<sqlx::Any>,
    input: DeleteAgentOnly,
) -> reactive::Result<i64> {
    let done = sqlx::query("DELETE FROM agent WHERE id = $1")
        .bind(&input.id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() as i64)
}

// ---------------------------------------------------------------------------------
// Seeded randomness (SplitMix64: no dependency, same sequence everywhere).

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn master_seed() -> u64 {
    match std::env::var("MODEL_SEED") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("MODEL_SEED must be a u64, got {v:?}")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default();
            nanos ^ u64::from(std::process::id()).rotate_left(32)
        }
    }
}

fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{tag}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, SeqCst)
    )
}

// ---------------------------------------------------------------------------------
// Backends and stores.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Memory,
    Redis,
}

/// The URL in `var`, or `None` after printing why the test skips (panics under `CI`).
fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{var} must be set when CI is set");
            }
            eprintln!("skipped: {var} not set");
            None
        }
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A fresh, migrated TeamHub database; dropped by [`Fixture::finish`].
struct Fixture {
    db: ReactiveDb<sqlx::Any>,
    admin_url: Option<String>,
    database: String,
    sqlite_path: Option<std::path::PathBuf>,
}

impl Fixture {
    /// `None` when the backend's URL is not set (the skip is printed).
    /// `relations`: expand change sets with TeamHub's `#[derive(Relations)]` edges (the
    /// default); `false` isolates the key matcher and the old-value pre-reads.
    async fn new(
        backend: Backend,
        store: Store,
        redis_url: Option<&str>,
        relations: bool,
    ) -> Option<Self> {
        sqlx::any::install_default_drivers();
        let database = unique("reactive_proof");
        let (url, admin_url, sqlite_path) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{database}.db"));
                let _ = std::fs::remove_file(&path);
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    None,
                    Some(path),
                )
            }
            Backend::Postgres | Backend::MySql => {
                let var = if backend == Backend::Postgres {
                    "TEST_POSTGRES_URL"
                } else {
                    "TEST_MYSQL_URL"
                };
                let admin = service_url(var)?;
                let mut conn = sqlx::AnyConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {var}: {e}"));
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("create database {database}: {e}"));
                let _ = conn.close().await;
                (with_database(&admin, &database), Some(admin), None)
            }
        };
        let db = ReactiveDb::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        let store: Arc<dyn CacheStore> = match store {
            Store::Memory => Arc::new(MemoryStore::default()),
            Store::Redis => redis_store(redis_url?),
        };
        let config = EngineConfig {
            relations: if relations {
                Relations::registered()
            } else {
                Relations::none()
            },
            ..EngineConfig::default()
        };
        let db = db.with_engine(Engine::with_config(store, config));
        teamhub::seed::migrate(&db).await.expect("migrate");
        seed(&db).await;
        // Calling a handler directly keeps teamhub's registrations linked into this binary.
        teamhub::handlers::tools_available(
            &db,
            teamhub::model::OrgInput {
                organization_id: "org-1".into(),
            },
        )
        .await
        .expect("direct handler call");
        Some(Self {
            db,
            admin_url,
            database,
            sqlite_path,
        })
    }

    async fn finish(self) {
        self.db.engine().clear().await;
        self.db.pool().close().await;
        if let Some(admin) = &self.admin_url
            && let Ok(mut conn) = sqlx::AnyConnection::connect(admin).await
        {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {}",
                self.database
            )))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
        if let Some(path) = &self.sqlite_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(feature = "redis")]
fn redis_store(url: &str) -> Arc<dyn CacheStore> {
    use reactive::cache::redis::{RedisConfig, RedisStore};
    let prefix = format!("{}:", unique("reactive:proof"));
    Arc::new(RedisStore::new(RedisConfig::new(url).prefix(prefix)).expect("redis store"))
}

#[cfg(not(feature = "redis"))]
fn redis_store(_url: &str) -> Arc<dyn CacheStore> {
    panic!("the Redis store needs the `redis` feature (run with --all-features)")
}

const ORGS: [&str; 3] = ["org-1", "org-2", "org-3"];

/// TeamHub's demo data plus a third organization with agents, messages, memories, tools.
async fn seed(db: &ReactiveDb<sqlx::Any>) {
    assert!(
        teamhub::seed::seed_if_empty(db).await.expect("seed"),
        "fresh database"
    );
    let pool = db.pool();
    let d = db.dialect();
    sqlx::query(AssertSqlSafe(sql(
        d,
        "INSERT INTO organization (id, name) VALUES ($1, $2)",
    )))
    .bind("org-3")
    .bind("Initech")
    .execute(pool)
    .await
    .expect("seed org-3");
    for (i, (id, name)) in [("agent-6", "Fermat"), ("agent-7", "Gauss")]
        .iter()
        .enumerate()
    {
        sqlx::query(AssertSqlSafe(sql(d, "INSERT INTO agent (id, organization_id, name, status, created_at) VALUES ($1, $2, $3, $4, $5)")))
            .bind(*id).bind("org-3").bind(*name).bind("idle").bind(1_764_000_000_100_i64 + i as i64)
            .execute(pool).await.expect("seed agent");
    }
    sqlx::query(AssertSqlSafe(sql(
        d,
        "INSERT INTO tool (id, organization_id, name) VALUES ($1, $2, $3)",
    )))
    .bind("tool-4")
    .bind("org-3")
    .bind("stapler")
    .execute(pool)
    .await
    .expect("seed tool");
    // Nothing cached yet, but start from a clean slate anyway.
    db.engine().clear().await;
}

/// SQL for the raw pool: `$N` → `?` on MySQL (the runtime does this for `ReactiveDb`).
fn sql(dialect: Dialect, text: &str) -> String {
    if dialect != Dialect::MySql {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Queries: through the cache, and directly on the pool.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Query {
    Agents { org: String },
    Stats { org: String, agent: String },
    Messages { org: String, agent: String },
    Memories { org: String, agent: String },
    Tools { org: String },
}

impl Query {
    fn procedure(&self) -> &'static str {
        match self {
            Query::Agents { .. } => "agents.findMany",
            Query::Stats { .. } => "agents.getWithStats",
            Query::Messages { .. } => "messages.getAll",
            Query::Memories { .. } => "memory.recent",
            Query::Tools { .. } => "tools.available",
        }
    }

    fn org(&self) -> &str {
        match self {
            Query::Agents { org }
            | Query::Tools { org }
            | Query::Stats { org, .. }
            | Query::Messages { org, .. }
            | Query::Memories { org, .. } => org,
        }
    }

    fn input(&self) -> Value {
        match self {
            Query::Agents { org } | Query::Tools { org } => json!({ "organizationId": org }),
            Query::Stats { org, agent }
            | Query::Messages { org, agent }
            | Query::Memories { org, agent } => {
                json!({ "organizationId": org, "agentId": agent })
            }
        }
    }

    fn cache_key(&self) -> CacheKey {
        CacheKey::from_json(Some(self.org()), self.procedure(), &self.input())
    }

    fn random(rng: &mut Rng, agents: &[String]) -> Self {
        let org = rng.pick(&ORGS).to_string();
        let agent = rng.pick(agents).clone();
        match rng.below(5) {
            0 => Query::Agents { org },
            1 => Query::Stats { org, agent },
            2 => Query::Messages { org, agent },
            3 => Query::Memories { org, agent },
            _ => Query::Tools { org },
        }
    }

    /// Every query over these agents.
    fn all(agents: &[String]) -> Vec<Self> {
        let mut out = Vec::new();
        for org in ORGS {
            let org = org.to_string();
            out.push(Query::Agents { org: org.clone() });
            out.push(Query::Tools { org: org.clone() });
            for agent in agents {
                let (org, agent) = (org.clone(), agent.clone());
                out.push(Query::Stats {
                    org: org.clone(),
                    agent: agent.clone(),
                });
                out.push(Query::Messages {
                    org: org.clone(),
                    agent: agent.clone(),
                });
                out.push(Query::Memories { org, agent });
            }
        }
        out
    }

    /// The same SQL as the TeamHub handler, on the raw pool (no interception, no cache).
    async fn direct(&self, pool: &AnyPool, d: Dialect) -> Result<Value, sqlx::Error> {
        let q = |text: &str| AssertSqlSafe(sql(d, text));
        Ok(match self {
            Query::Agents { org } => to_json(
                &sqlx::query_as::<_, Agent>(q(
                    "SELECT id, organization_id, name, status, created_at FROM agent \
                     WHERE organization_id = $1 ORDER BY created_at, id",
                ))
                .bind(org)
                .fetch_all(pool)
                .await?,
            ),
            Query::Stats { org, agent } => {
                let a = sqlx::query_as::<_, Agent>(q(
                    "SELECT id, organization_id, name, status, created_at FROM agent \
                     WHERE id = $1 AND organization_id = $2",
                ))
                .bind(agent)
                .bind(org)
                .fetch_optional(pool)
                .await?;
                let message_count: i64 = sqlx::query_scalar(q(
                    "SELECT COUNT(*) FROM message WHERE organization_id = $1 \
                     AND (from_agent_id = $2 OR to_agent_id = $3)",
                ))
                .bind(org)
                .bind(agent)
                .bind(agent)
                .fetch_one(pool)
                .await?;
                let memory_count: i64 = sqlx::query_scalar(q(
                    "SELECT COUNT(*) FROM memory WHERE agent_id = $1 AND organization_id = $2",
                ))
                .bind(agent)
                .bind(org)
                .fetch_one(pool)
                .await?;
                to_json(&AgentStats {
                    agent: a,
                    message_count,
                    memory_count,
                })
            }
            Query::Messages { org, agent } => to_json(
                &sqlx::query_as::<_, Message>(q(
                    "SELECT id, from_agent_id, to_agent_id, body, created_at FROM message \
                     WHERE organization_id = $1 AND (from_agent_id = $2 OR to_agent_id = $3) \
                     ORDER BY created_at, id",
                ))
                .bind(org)
                .bind(agent)
                .bind(agent)
                .fetch_all(pool)
                .await?,
            ),
            Query::Memories { org, agent } => to_json(
                &sqlx::query_as::<_, Memory>(q(
                    "SELECT id, agent_id, content, created_at FROM memory \
                     WHERE agent_id = $1 AND organization_id = $2 \
                     ORDER BY created_at DESC, id DESC LIMIT 20",
                ))
                .bind(agent)
                .bind(org)
                .fetch_all(pool)
                .await?,
            ),
            Query::Tools { org } => to_json(
                &sqlx::query_as::<_, Tool>(q(
                    "SELECT id, name FROM tool WHERE organization_id = $1 ORDER BY name",
                ))
                .bind(org)
                .fetch_all(pool)
                .await?,
            ),
        })
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializable")
}

/// The registered definition of a procedure (TeamHub's or this file's).
fn def(name: &str) -> &'static FunctionDef {
    reactive::registry::functions()
        .into_iter()
        .find(|d| d.model().name == name)
        .unwrap_or_else(|| panic!("reactive function `{name}` is not registered"))
}

// ---------------------------------------------------------------------------------
// Recording invalidations (for the unnecessary-invalidation measure).

#[derive(Default)]
struct Recorder {
    /// Last value seen for each cache key (computed or hit).
    known: Mutex<HashMap<CacheKey, (Bytes, u64)>>,
    /// Entries invalidated and not yet recomputed: value dropped, invalidation sequence,
    /// and whether every reason was a relation edge.
    dropped: Mutex<HashMap<CacheKey, (Bytes, u64, bool)>>,
    reports: AtomicU64,
    entries: AtomicU64,
    unnecessary: AtomicU64,
    necessary: AtomicU64,
    /// Of `unnecessary`, those whose every reason was a relation edge.
    unnecessary_via_relation: AtomicU64,
    /// Reports captured while `capture` is on (precision test).
    captured: Mutex<Option<Vec<Arc<InvalidationReport>>>>,
}

struct Listener(Arc<Recorder>);

impl InvalidationListener for Listener {
    fn on_invalidation(&self, report: Arc<InvalidationReport>) -> BoxFuture<()> {
        let rec = self.0.clone();
        Box::pin(async move {
            rec.reports.fetch_add(1, SeqCst);
            rec.entries.fetch_add(report.entries.len() as u64, SeqCst);
            {
                let mut known = rec.known.lock().unwrap();
                let mut dropped = rec.dropped.lock().unwrap();
                for entry in &report.entries {
                    if let Some((value, _)) = known.remove(&entry.key) {
                        let via_relation = entry.reasons.iter().all(|r| r.relation.is_some());
                        dropped.entry(entry.key.clone()).or_insert((
                            value,
                            report.sequence,
                            via_relation,
                        ));
                    }
                }
            }
            if let Some(captured) = rec.captured.lock().unwrap().as_mut() {
                captured.push(report);
            }
        })
    }
}

impl Recorder {
    /// Records a call's result; `started` is the engine sequence before the call.
    fn observe(&self, key: &CacheKey, bytes: &[u8], source: Source, started: u64) {
        if source == Source::Computed {
            let mut dropped = self.dropped.lock().unwrap();
            if let Some((old, seq, via_relation)) = dropped.get(key) {
                // Only a computation that began after the invalidation tells whether it
                // was needed.
                if started >= *seq {
                    if old.as_slice() == bytes {
                        self.unnecessary.fetch_add(1, SeqCst);
                        if *via_relation {
                            self.unnecessary_via_relation.fetch_add(1, SeqCst);
                        }
                    } else {
                        self.necessary.fetch_add(1, SeqCst);
                    }
                    dropped.remove(key);
                }
            }
        }
        self.known
            .lock()
            .unwrap()
            .insert(key.clone(), (bytes.to_vec(), started));
    }
}

// ---------------------------------------------------------------------------------
// The model run.

#[derive(Default)]
struct Counts {
    reads: AtomicU64,
    hits: AtomicU64,
    strict_reads: AtomicU64,
    unverified_reads: AtomicU64,
    read_errors: AtomicU64,
    stale: AtomicU64,
    writes: AtomicU64,
    write_errors: AtomicU64,
    moves: AtomicU64,
    tx_commits: AtomicU64,
    tx_rollbacks: AtomicU64,
    sweeps: AtomicU64,
    sweep_reads: AtomicU64,
    /// Writes started / finished (a read is strictly checkable when none overlapped).
    writes_started: AtomicU64,
    writes_finished: AtomicU64,
}

struct Shared {
    db: ReactiveDb<sqlx::Any>,
    rec: Arc<Recorder>,
    counts: Counts,
    /// Agent ids reads and writes pick from (seeded ones, then created ones; bounded).
    agents: Mutex<Vec<String>>,
    /// The organization each agent was last seen in (reads mostly ask an agent's own
    /// organization, as the app does).
    homes: Mutex<HashMap<String, String>>,
    /// Writers hold it shared for each write; a sweep holds it exclusively.
    gate: tokio::sync::RwLock<()>,
    clock: AtomicI64,
    stale_examples: Mutex<Vec<String>>,
}

const MAX_AGENTS: usize = 14;

impl Shared {
    fn agents(&self) -> Vec<String> {
        self.agents.lock().unwrap().clone()
    }

    fn set_home(&self, agent: &str, org: &str) {
        self.homes
            .lock()
            .unwrap()
            .insert(agent.to_owned(), org.to_owned());
    }

    /// A random query; per-agent queries name the agent's own organization 80% of the time.
    fn random_query(&self, rng: &mut Rng) -> Query {
        let mut q = Query::random(rng, &self.agents());
        if rng.chance(80)
            && let Query::Stats { org, agent }
            | Query::Messages { org, agent }
            | Query::Memories { org, agent } = &mut q
            && let Some(home) = self.homes.lock().unwrap().get(agent.as_str())
        {
            *org = home.clone();
        }
        q
    }

    fn stale(&self, what: String) {
        self.counts.stale.fetch_add(1, SeqCst);
        let mut examples = self.stale_examples.lock().unwrap();
        if examples.len() < 10 {
            examples.push(what);
        }
    }

    /// A reactive read, checked against direct queries before and after it.
    async fn checked_read(&self, q: &Query) {
        let c = &self.counts;
        let pool = self.db.pool();
        let d = self.db.dialect();
        let started_before = c.writes_started.load(SeqCst);
        let finished_before = c.writes_finished.load(SeqCst);
        let Ok(before) = q.direct(pool, d).await else {
            c.read_errors.fetch_add(1, SeqCst);
            return;
        };
        let seq = self.db.engine().sequence().await;
        let out = self.db.call(def(q.procedure()), q.org(), q.input()).await;
        let after = q.direct(pool, d).await;
        let started_after = c.writes_started.load(SeqCst);
        let (out, after) = match (out, after) {
            (Ok(out), Ok(after)) => (out, after),
            _ => {
                c.read_errors.fetch_add(1, SeqCst);
                return;
            }
        };
        c.reads.fetch_add(1, SeqCst);
        if out.hit {
            c.hits.fetch_add(1, SeqCst);
        }
        self.rec
            .observe(&q.cache_key(), &out.bytes, out.source, seq);
        let value: Value = serde_json::from_slice(&out.bytes).expect("JSON output");
        let quiet = started_before == finished_before && started_after == started_before;
        if quiet {
            c.strict_reads.fetch_add(1, SeqCst);
        }
        if value == before || value == after {
            return;
        }
        if quiet {
            self.stale(format!(
                "{q:?} ({:?}): reactive {value} but the database says {after}",
                out.source
            ));
        } else {
            c.unverified_reads.fetch_add(1, SeqCst);
        }
    }

    /// With writers stopped: every query key through the cache equals the database.
    async fn sweep(&self) {
        let _quiet = self.gate.write().await;
        let c = &self.counts;
        c.sweeps.fetch_add(1, SeqCst);
        let pool = self.db.pool();
        let d = self.db.dialect();
        for q in Query::all(&self.agents()) {
            let seq = self.db.engine().sequence().await;
            let out = match self.db.call(def(q.procedure()), q.org(), q.input()).await {
                Ok(out) => out,
                Err(e) => {
                    c.read_errors.fetch_add(1, SeqCst);
                    eprintln!("sweep read {q:?} failed: {e}");
                    continue;
                }
            };
            let Ok(direct) = q.direct(pool, d).await else {
                c.read_errors.fetch_add(1, SeqCst);
                continue;
            };
            c.reads.fetch_add(1, SeqCst);
            c.sweep_reads.fetch_add(1, SeqCst);
            c.strict_reads.fetch_add(1, SeqCst);
            if out.hit {
                c.hits.fetch_add(1, SeqCst);
            }
            self.rec
                .observe(&q.cache_key(), &out.bytes, out.source, seq);
            let value: Value = serde_json::from_slice(&out.bytes).expect("JSON output");
            if value != direct {
                self.stale(format!(
                    "sweep {q:?} ({:?}): reactive {value} but the database says {direct}",
                    out.source
                ));
            }
        }
    }

    fn now(&self) -> i64 {
        self.clock.fetch_add(1, SeqCst)
    }

    /// One random write; returns whether it succeeded.
    async fn random_write(&self, rng: &mut Rng, task: usize, n: u64) -> bool {
        let agents = self.agents();
        let org = rng.pick(&ORGS).to_string();
        let agent = rng.pick(&agents).clone();
        let other = rng.pick(&agents).clone();
        let db = &self.db;
        let result: Result<(), String> = match rng.below(100) {
            0..15 => {
                let name = format!("a{task}-{n}");
                match db
                    .call(
                        def("agents.create"),
                        &org,
                        json!({ "organizationId": org, "name": name }),
                    )
                    .await
                {
                    Ok(out) => {
                        let created: Agent = serde_json::from_slice(&out.bytes).expect("agent");
                        self.set_home(&created.id, &org);
                        let mut pool = self.agents.lock().unwrap();
                        if pool.len() >= MAX_AGENTS {
                            let i = rng.below(pool.len());
                            pool.swap_remove(i);
                        }
                        pool.push(created.id);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            15..35 => {
                let data = if rng.chance(50) {
                    json!({ "name": format!("renamed{task}-{n}") })
                } else {
                    json!({ "status": *rng.pick(&["idle", "active", "busy"]) })
                };
                db.call(
                    def("agents.update"),
                    &org,
                    json!({ "organizationId": org, "id": agent, "data": data }),
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string())
            }
            35..50 => {
                self.counts.moves.fetch_add(1, SeqCst);
                match db
                    .call(
                        def("proof.moveAgent"),
                        &org,
                        json!({ "id": agent, "toOrganizationId": org }),
                    )
                    .await
                {
                    Ok(_) => {
                        self.set_home(&agent, &org);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            50..53 => db
                .call(
                    def("agents.delete"),
                    &org,
                    json!({ "organizationId": org, "id": agent }),
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            // The agent alone; its messages and memories go by `ON DELETE CASCADE`.
            53..56 => db
                .call(def("proof.deleteAgent"), &org, json!({ "id": agent }))
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            56..68 => db
                .call(
                    def("messages.send"),
                    &org,
                    json!({ "organizationId": org, "fromAgentId": agent, "toAgentId": other, "body": format!("m{task}-{n}") }),
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            68..78 => db
                .call(
                    def("memory.add"),
                    &org,
                    json!({ "organizationId": org, "agentId": agent, "content": format!("k{task}-{n}") }),
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            finish => {
                // A transaction: rename one agent, move another, add a memory; then
                // commit (78..88), roll back (88..94) or drop (94..100).
                let outcome = match finish {
                    78..88 => 0,
                    88..94 => 1,
                    _ => 2,
                };
                self.transaction(rng, task, n, &org, &agent, &other, outcome)
                    .await
            }
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                tracing_note(&e);
                false
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn transaction(
        &self,
        rng: &mut Rng,
        task: usize,
        n: u64,
        org: &str,
        agent: &str,
        other: &str,
        outcome: u8,
    ) -> Result<(), String> {
        let e = |e: sqlx::Error| e.to_string();
        let mut tx = self.db.begin().await.map_err(e)?;
        sqlx::query("UPDATE agent SET name = $1 WHERE id = $2")
            .bind(format!("tx{task}-{n}"))
            .bind(agent)
            .execute(&mut tx)
            .await
            .map_err(e)?;
        let to = *rng.pick(&ORGS);
        sqlx::query("UPDATE agent SET organization_id = $1 WHERE id = $2")
            .bind(to)
            .bind(other)
            .execute(&mut tx)
            .await
            .map_err(e)?;
        sqlx::query("INSERT INTO memory (id, organization_id, agent_id, content, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(format!("txmem-{task}-{n}-{}", rng.next() % 1000))
            .bind(org)
            .bind(agent)
            .bind(format!("tx memory {task}-{n}"))
            .bind(self.now())
            .execute(&mut tx)
            .await
            .map_err(e)?;
        match outcome {
            0 => {
                tx.commit().await.map_err(e)?;
                self.set_home(other, to);
                self.counts.tx_commits.fetch_add(1, SeqCst);
            }
            1 => {
                tx.rollback().await.map_err(e)?;
                self.counts.tx_rollbacks.fetch_add(1, SeqCst);
            }
            _ => {
                drop(tx);
                self.counts.tx_rollbacks.fetch_add(1, SeqCst);
            }
        }
        Ok(())
    }
}

/// Expected write failures (not found, foreign keys, lock conflicts) are not errors of
/// the model; print them only when asked.
fn tracing_note(e: &str) {
    if std::env::var_os("MODEL_VERBOSE").is_some() {
        eprintln!("write failed (expected under random writes): {e}");
    }
}

async fn model_run(backend: Backend, store: Store) {
    let relations = true;
    let redis_url = match store {
        Store::Memory => None,
        Store::Redis => match service_url("TEST_REDIS_URL") {
            Some(u) => Some(u),
            None => return,
        },
    };
    let Some(fixture) = Fixture::new(backend, store, redis_url.as_deref(), relations).await else {
        return;
    };
    let seed = master_seed();
    let secs = env_u64("MODEL_SECS", 5);
    let max_ops = env_u64("MODEL_MAX_OPS", 50_000);
    println!(
        "model test {backend:?}/{store:?}: seed {seed} (replay with MODEL_SEED={seed}), {secs} s, at most {max_ops} ops per task"
    );
    let rec = Arc::new(Recorder::default());
    fixture.db.set_listener(Arc::new(Listener(rec.clone())));
    let shared = Arc::new(Shared {
        db: fixture.db.clone(),
        rec: rec.clone(),
        counts: Counts::default(),
        agents: Mutex::new((1..=7).map(|i| format!("agent-{i}")).collect()),
        homes: Mutex::new(
            (1..=7)
                .map(|i| {
                    let org = [
                        "org-1", "org-1", "org-1", "org-2", "org-2", "org-3", "org-3",
                    ][i - 1];
                    (format!("agent-{i}"), org.to_owned())
                })
                .collect(),
        ),
        gate: tokio::sync::RwLock::new(()),
        clock: AtomicI64::new(1_764_100_000_000),
        stale_examples: Mutex::new(Vec::new()),
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let readers = 4;
    let writers = 2;
    let mut tasks = Vec::new();
    for t in 0..readers + writers {
        let shared = shared.clone();
        let mut rng = Rng(seed ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline && n < max_ops {
                n += 1;
                if t < readers {
                    let q = shared.random_query(&mut rng);
                    shared.checked_read(&q).await;
                } else {
                    {
                        let _write = shared.gate.read().await;
                        let c = &shared.counts;
                        c.writes_started.fetch_add(1, SeqCst);
                        if shared.random_write(&mut rng, t, n).await {
                            c.writes.fetch_add(1, SeqCst);
                        } else {
                            c.write_errors.fetch_add(1, SeqCst);
                        }
                        c.writes_finished.fetch_add(1, SeqCst);
                    }
                    // Leave quiet moments in which reads are strictly checkable.
                    let pause = rng.below(3) as u64;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }));
    }
    {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() + Duration::from_millis(1000) < deadline {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                shared.sweep().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("model task panicked");
    }
    shared.sweep().await;
    // A second sweep reads what the first one stored: hits must still be fresh.
    shared.sweep().await;

    let c = &shared.counts;
    let stats = fixture.db.stats();
    let unnecessary = rec.unnecessary.load(SeqCst);
    let via_relation = rec.unnecessary_via_relation.load(SeqCst);
    let necessary = rec.necessary.load(SeqCst);
    let resolved = unnecessary + necessary;
    let share = if resolved == 0 {
        0.0
    } else {
        100.0 * unnecessary as f64 / resolved as f64
    };
    let reads = c.reads.load(SeqCst);
    let hits = c.hits.load(SeqCst);
    println!(
        "model test {backend:?}/{store:?} seed {seed}: reads {reads} (hits {hits}, {:.1}%; strictly checked {}, unverified {}, errors {}; sweeps {} with {} reads), \
         writes {} ok + {} failed (moves {}, tx commits {}, rollbacks/drops {}), \
         invalidations {} applied, {} entries invalidated ({} via listener reports), \
         unnecessary {unnecessary} of {resolved} resolved ({share:.1}%; {via_relation} of them only via relation edges), \
         engine: hits {} misses {} coalesced {} stores dropped {} store errors {}; pre-reads {} (fallbacks {}), \
         stale reads {}",
        100.0 * hits as f64 / reads.max(1) as f64,
        c.strict_reads.load(SeqCst),
        c.unverified_reads.load(SeqCst),
        c.read_errors.load(SeqCst),
        c.sweeps.load(SeqCst),
        c.sweep_reads.load(SeqCst),
        c.writes.load(SeqCst),
        c.write_errors.load(SeqCst),
        c.moves.load(SeqCst),
        c.tx_commits.load(SeqCst),
        c.tx_rollbacks.load(SeqCst),
        stats.engine.invalidations,
        stats.engine.entries_invalidated,
        rec.entries.load(SeqCst),
        stats.engine.hits,
        stats.engine.misses,
        stats.engine.coalesced_waits,
        stats.engine.stores_dropped,
        stats.engine.store_errors,
        stats.pre_reads,
        stats.pre_read_fallbacks,
        c.stale.load(SeqCst),
    );
    let examples = shared.stale_examples.lock().unwrap().clone();
    fixture.finish().await;
    assert!(
        examples.is_empty(),
        "{} stale read(s) ({backend:?}/{store:?}, replay with MODEL_SEED={seed}):\n{}",
        c.stale.load(SeqCst),
        examples.join("\n")
    );
    assert!(
        c.writes.load(SeqCst) > 0 && hits > 0,
        "the run did nothing useful"
    );
    assert_eq!(stats.engine.store_errors, 0, "cache store errors");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn model_sqlite_memory() {
    runtime().block_on(model_run(Backend::Sqlite, Store::Memory));
}

#[test]
fn model_sqlite_redis() {
    runtime().block_on(model_run(Backend::Sqlite, Store::Redis));
}

#[test]
fn model_postgres_memory() {
    runtime().block_on(model_run(Backend::Postgres, Store::Memory));
}

#[test]
fn model_postgres_redis() {
    runtime().block_on(model_run(Backend::Postgres, Store::Redis));
}

#[test]
fn model_mysql_memory() {
    runtime().block_on(model_run(Backend::MySql, Store::Memory));
}

#[test]
fn model_mysql_redis() {
    runtime().block_on(model_run(Backend::MySql, Store::Redis));
}

// ---------------------------------------------------------------------------------
// Precision: a write to organization A invalidates no cached query of organization B.

/// Fills the cache with every query of every organization and checks they are cached.
async fn warm(db: &ReactiveDb<sqlx::Any>, queries: &[Query]) {
    for q in queries {
        db.call(def(q.procedure()), q.org(), q.input())
            .await
            .expect("warm read");
    }
    for q in queries {
        let out = db
            .call(def(q.procedure()), q.org(), q.input())
            .await
            .expect("warm read");
        assert!(out.hit, "{q:?} is cached after a read");
    }
}

async fn precision_run(backend: Backend, store: Store, relations: bool) {
    let redis_url = match store {
        Store::Memory => None,
        Store::Redis => match service_url("TEST_REDIS_URL") {
            Some(u) => Some(u),
            None => return,
        },
    };
    let Some(fixture) = Fixture::new(backend, store, redis_url.as_deref(), relations).await else {
        return;
    };
    let db = fixture.db.clone();
    let rec = Arc::new(Recorder::default());
    db.set_listener(Arc::new(Listener(rec.clone())));
    // org-1 agents: agent-1..3; org-2: agent-4, agent-5; org-3: agent-6, agent-7.
    let agents: Vec<String> = (1..=7).map(|i| format!("agent-{i}")).collect();
    let queries = Query::all(&agents);
    // Writes that touch only org-1 (a move from org-1 to org-3 touches both of those),
    // each with a query it must invalidate.
    let mut writes: Vec<(&str, Value, Query)> = vec![
        (
            "agents.create",
            json!({ "organizationId": "org-1", "name": "Hopper" }),
            Query::Agents {
                org: "org-1".into(),
            },
        ),
        (
            "agents.update",
            json!({ "organizationId": "org-1", "id": "agent-1", "data": { "name": "Ada L." } }),
            Query::Stats {
                org: "org-1".into(),
                agent: "agent-1".into(),
            },
        ),
        (
            "agents.update",
            json!({ "organizationId": "org-1", "id": "agent-2", "data": { "status": "busy" } }),
            Query::Agents {
                org: "org-1".into(),
            },
        ),
        (
            "memory.add",
            json!({ "organizationId": "org-1", "agentId": "agent-1", "content": "likes tea" }),
            Query::Memories {
                org: "org-1".into(),
                agent: "agent-1".into(),
            },
        ),
        (
            "messages.send",
            json!({ "organizationId": "org-1", "fromAgentId": "agent-1", "toAgentId": "agent-3", "body": "hi" }),
            Query::Messages {
                org: "org-1".into(),
                agent: "agent-3".into(),
            },
        ),
        (
            "proof.moveAgent",
            json!({ "id": "agent-2", "toOrganizationId": "org-3" }),
            Query::Agents {
                org: "org-1".into(),
            },
        ),
        (
            "agents.delete",
            json!({ "organizationId": "org-1", "id": "agent-3" }),
            Query::Agents {
                org: "org-1".into(),
            },
        ),
    ];
    if relations {
        // A delete that reaches `memory` and `message` only through `ON DELETE CASCADE`
        // (the relation edges): the cascaded rows' organizations are read before the
        // delete, so no other organization's entry may be dropped.
        writes.push((
            "proof.deleteAgent",
            json!({ "id": "agent-1" }),
            Query::Memories {
                org: "org-1".into(),
                agent: "agent-1".into(),
            },
        ));
    }
    let mut failures = Vec::new();
    for (procedure, input, must) in writes {
        warm(&db, &queries).await;
        *rec.captured.lock().unwrap() = Some(Vec::new());
        db.call(def(procedure), "org-1", input.clone())
            .await
            .unwrap_or_else(|e| panic!("{procedure} {input}: {e}"));
        let reports = rec.captured.lock().unwrap().take().unwrap_or_default();
        let entries: Vec<_> = reports.iter().flat_map(|r| r.entries.iter()).collect();
        let invalidated: Vec<&CacheKey> = entries.iter().map(|e| &e.key).collect();
        assert!(
            invalidated.contains(&&must.cache_key()),
            "{procedure} {input} must invalidate {must:?}; invalidated {invalidated:?}"
        );
        let moved_to = input.get("toOrganizationId").and_then(Value::as_str);
        // Deletes reach `message` and `memory` through relation edges; the rows they reach
        // are read before the delete with their organization, so relation edges drop no
        // other organization's entries either.
        for entry in &entries {
            let org = entry.key.tenant.as_deref().unwrap_or_default();
            if org != "org-1" && Some(org) != moved_to {
                let why: Vec<String> = entry
                    .reasons
                    .iter()
                    .map(|r| match &r.relation {
                        Some(edge) => format!("{} via relation {edge}", r.table),
                        None => format!("{} {:?}={:?}", r.table, r.column, r.value),
                    })
                    .collect();
                failures.push(format!(
                    "{procedure} {input} invalidated {:?} because {}",
                    entry.key,
                    why.join("; ")
                ));
            }
        }
        // The other organization's entries are still served from the cache.
        for q in queries.iter().filter(|q| q.org() == "org-2") {
            let out = db
                .call(def(q.procedure()), q.org(), q.input())
                .await
                .expect("read");
            if !out.hit {
                failures.push(format!("{procedure} {input}: {q:?} was no longer cached"));
            }
        }
    }
    fixture.finish().await;
    let shown = failures.len().min(12);
    assert!(
        failures.is_empty(),
        "{} cache entries of other organizations invalidated by writes to org-1 ({backend:?}/{store:?}, relations {relations}); the first {shown}:\n{}",
        failures.len(),
        failures[..shown].join("\n")
    );
}

/// Precision of the key matcher and the old-value pre-reads alone (no relation edges).
#[test]
fn precision_keys_sqlite_memory() {
    runtime().block_on(precision_run(Backend::Sqlite, Store::Memory, false));
}

#[test]
fn precision_keys_sqlite_redis() {
    runtime().block_on(precision_run(Backend::Sqlite, Store::Redis, false));
}

#[test]
fn precision_keys_postgres_memory() {
    runtime().block_on(precision_run(Backend::Postgres, Store::Memory, false));
}

#[test]
fn precision_keys_mysql_memory() {
    runtime().block_on(precision_run(Backend::MySql, Store::Memory, false));
}

/// Precision with TeamHub's relation edges, as the app runs.
#[test]
fn precision_teamhub_sqlite_memory() {
    runtime().block_on(precision_run(Backend::Sqlite, Store::Memory, true));
}

#[test]
fn precision_teamhub_postgres_memory() {
    runtime().block_on(precision_run(Backend::Postgres, Store::Memory, true));
}

#[test]
fn precision_teamhub_mysql_memory() {
    runtime().block_on(precision_run(Backend::MySql, Store::Memory, true));
}
