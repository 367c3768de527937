//! Schema migrations (one set per backend) and the demo data seeded on first start.

use reactive::ReactiveDb;

/// The demo organizations and the bearer tokens that sign in to them.
pub const DEMO_TENANTS: [(&str, &str, &str); 2] = [
    ("org-1", "Acme Robotics", "token-org-1"),
    ("org-2", "Globex Research", "token-org-2"),
];

/// Creates the schema if needed (sqlx migrations for the backend in use).
pub async fn migrate(db: &ReactiveDb<sqlx::Any>) -> anyhow::Result<()> {
    let migrator = match db.dialect() {
        reactive::Dialect::Postgres => sqlx::migrate!("./migrations/postgres"),
        reactive::Dialect::MySql => sqlx::migrate!("./migrations/mysql"),
        reactive::Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite"),
    };
    migrator.run(db.pool()).await?;
    Ok(())
}

/// Seeds demo data when the database has no organization yet. Returns whether it seeded.
pub async fn seed_if_empty(db: &ReactiveDb<sqlx::Any>) -> anyhow::Result<bool> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organization")
        .fetch_one(db)
        .await?;
    if count > 0 {
        return Ok(false);
    }
    let mut tx = db.begin().await?;
    let now = 1_764_000_000_000_i64;
    for (org, name, _) in DEMO_TENANTS {
        sqlx::query("INSERT INTO organization (id, name) VALUES ($1, $2)")
            .bind(org)
            .bind(name)
            .execute(&mut tx)
            .await?;
    }
    let agents = [
        ("agent-1", "org-1", "Ada", "active"),
        ("agent-2", "org-1", "Babbage", "idle"),
        ("agent-3", "org-1", "Curie", "active"),
        ("agent-4", "org-2", "Dijkstra", "idle"),
        ("agent-5", "org-2", "Euler", "active"),
    ];
    for (i, (id, org, name, status)) in agents.iter().enumerate() {
        sqlx::query("INSERT INTO agent (id, organization_id, name, status, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(*id)
            .bind(*org)
            .bind(*name)
            .bind(*status)
            .bind(now + i as i64)
            .execute(&mut tx)
            .await?;
    }
    let messages = [
        (
            "msg-1",
            "org-1",
            "agent-1",
            "agent-2",
            "Morning! The build is green.",
        ),
        (
            "msg-2",
            "org-1",
            "agent-2",
            "agent-1",
            "Great, shipping the analytics engine.",
        ),
        (
            "msg-3",
            "org-1",
            "agent-3",
            "agent-1",
            "Found a radioactive bug.",
        ),
        (
            "msg-4",
            "org-2",
            "agent-4",
            "agent-5",
            "Shortest path computed.",
        ),
    ];
    for (i, (id, org, from, to, body)) in messages.iter().enumerate() {
        sqlx::query(
            "INSERT INTO message (id, organization_id, from_agent_id, to_agent_id, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(*id)
        .bind(*org)
        .bind(*from)
        .bind(*to)
        .bind(*body)
        .bind(now + i as i64)
        .execute(&mut tx)
        .await?;
    }
    let memories = [
        (
            "mem-1",
            "org-1",
            "agent-1",
            "Prefers concise status reports.",
        ),
        ("mem-2", "org-1", "agent-1", "Owns the deploy pipeline."),
        ("mem-3", "org-2", "agent-4", "Graph algorithms specialist."),
    ];
    for (i, (id, org, agent, content)) in memories.iter().enumerate() {
        sqlx::query("INSERT INTO memory (id, organization_id, agent_id, content, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(*id)
            .bind(*org)
            .bind(*agent)
            .bind(*content)
            .bind(now + i as i64)
            .execute(&mut tx)
            .await?;
    }
    let tools = [
        ("tool-1", "org-1", "web-search"),
        ("tool-2", "org-1", "code-runner"),
        ("tool-3", "org-2", "calculator"),
    ];
    for (id, org, name) in tools {
        sqlx::query("INSERT INTO tool (id, organization_id, name) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(org)
            .bind(name)
            .execute(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}
