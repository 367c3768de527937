//! The TeamHub model: TeamHub's handlers on `ReactiveDb<Any>`, and a precision test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reactive::cache::CacheKey;
use reactive::cache::CacheStore;
use reactive::cache::memory::MemoryStore;
use reactive::engine::{Engine, EngineConfig, Relations};
use reactive::{Dialect, ReactiveDb, reactive_function};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{AnyPool, AssertSqlSafe};
use teamhub::model::{Agent, AgentStats, Memory, Message, Tool};

use crate::check::{Checker, Drive, Listener, Model, ModelQuery, Recorder, drive};
use crate::common::*;

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
// The fixture.

/// A fresh, migrated TeamHub database; dropped by [`Fixture::finish`].
struct Fixture {
    db: ReactiveDb<sqlx::Any>,
    scratch: Scratch,
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
        let scratch = Scratch::create(backend).await?;
        let url = &scratch.url;
        let db = ReactiveDb::connect(url)
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
        Some(Self { db, scratch })
    }

    async fn finish(self) {
        self.db.engine().clear().await;
        self.db.pool().close().await;
        self.scratch.drop_all().await;
    }
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
}

impl ModelQuery for Query {
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

// ---------------------------------------------------------------------------------
// The model run.

struct Shared {
    db: ReactiveDb<sqlx::Any>,
    check: Checker,
    /// Agent ids reads and writes pick from (seeded ones, then created ones; bounded).
    agents: Mutex<Vec<String>>,
    /// The organization each agent was last seen in (reads mostly ask an agent's own
    /// organization, as the app does).
    homes: Mutex<HashMap<String, String>>,
    clock: AtomicI64,
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

    /// With writers stopped: every query key through the cache equals the database.
    async fn sweep(&self) {
        let _quiet = self.check.gate.write().await;
        let queries = Query::all(&self.agents());
        self.check.sweep_quiet(&self.db, &queries, true).await;
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
                self.check.counts.moves.fetch_add(1, SeqCst);
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
                self.check.counts.tx_commits.fetch_add(1, SeqCst);
            }
            1 => {
                tx.rollback().await.map_err(e)?;
                self.check.counts.tx_rollbacks.fetch_add(1, SeqCst);
            }
            _ => {
                drop(tx);
                self.check.counts.tx_rollbacks.fetch_add(1, SeqCst);
            }
        }
        Ok(())
    }
}

impl Model for Shared {
    fn checker(&self) -> &Checker {
        &self.check
    }

    async fn read(&self, _t: usize, rng: &mut Rng) {
        let q = self.random_query(rng);
        self.check.checked_read(&self.db, &q, true).await;
    }

    async fn random_write(&self, rng: &mut Rng, t: usize, n: u64) -> bool {
        Shared::random_write(self, rng, t, n).await
    }

    async fn sweep(&self) {
        Shared::sweep(self).await;
    }
}

async fn model_run(backend: Backend, store: Store) {
    let relations = true;
    let Some(redis_url) = redis_url_for(store) else {
        return;
    };
    let Some(fixture) = Fixture::new(backend, store, redis_url.as_deref(), relations).await else {
        return;
    };
    let seed = master_seed();
    let secs = env_u64("MODEL_SECS", 5);
    println!(
        "model test {backend:?}/{store:?}: seed {seed} (replay with MODEL_SEED={seed}), {secs} s"
    );
    let rec = Arc::new(Recorder::default());
    fixture
        .db
        .set_listener(Arc::new(Listener(rec.clone(), None)));
    let shared = Arc::new(Shared {
        db: fixture.db.clone(),
        check: Checker::new(rec.clone()),
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
        clock: AtomicI64::new(1_764_100_000_000),
    });
    let how = Drive {
        seed,
        salt: 1,
        secs,
        readers: 4,
        writers: 2,
        sweep_every: Duration::from_secs(1),
    };
    drive(shared.clone(), how).await;

    println!(
        "model test {backend:?}/{store:?} seed {seed}: {}",
        shared.check.summary(&fixture.db)
    );
    let db = fixture.db.clone();
    fixture.finish().await;
    shared
        .check
        .assert_clean(&db, &format!("{backend:?}/{store:?}"), seed);
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
    let Some(redis_url) = redis_url_for(store) else {
        return;
    };
    let Some(fixture) = Fixture::new(backend, store, redis_url.as_deref(), relations).await else {
        return;
    };
    let db = fixture.db.clone();
    let rec = Arc::new(Recorder::default());
    db.set_listener(Arc::new(Listener(rec.clone(), None)));
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
