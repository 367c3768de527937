//! TeamHub, the example app of `reactive`: organizations, agents, messages, memory
//! and tools, served as reactive functions with a React page on top.
//!
//! `cargo run -p teamhub` serves http://127.0.0.1:3000 on an SQLite file; set
//! `DATABASE_URL` (postgres://, mysql://, sqlite://) and `REDIS_URL` to use servers.

pub mod auth;
pub mod handlers;
pub mod model;
pub mod schema;
pub mod seed;

use std::path::{Path, PathBuf};

use axum::Router;
use reactive::ReactiveDb;
use reactive::router::{DevToolsConfig, RouterConfig};

/// Where the app keeps its data and how it is reached.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database URL; default an SQLite file `teamhub.db` in the working directory.
    pub database_url: String,
    /// Redis URL for the shared cache, bus and event log (several instances).
    pub redis_url: Option<String>,
    /// Folder of the built web page (`web/dist`), served at `/` when present.
    pub web_dist: PathBuf,
}

impl Config {
    /// Reads `DATABASE_URL` and `REDIS_URL` from the environment.
    pub fn from_env() -> Self {
        Config {
            database_url: std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "sqlite://teamhub.db?mode=rwc".to_string()),
            redis_url: std::env::var("REDIS_URL").ok().filter(|s| !s.is_empty()),
            web_dist: web_dir().join("dist"),
        }
    }
}

/// The `web/` folder of this example (source of the page and of its generated client).
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// Connects, migrates and seeds the database. With `REDIS_URL`, the cache is the shared
/// Redis store (so several instances never serve what another one invalidated).
pub async fn open_db(config: &Config) -> anyhow::Result<(ReactiveDb<sqlx::Any>, bool)> {
    let mut db = ReactiveDb::connect(&config.database_url).await?;
    if let Some(url) = &config.redis_url {
        #[cfg(feature = "redis")]
        {
            let store = reactive::cache::redis::RedisStore::new(
                reactive::cache::redis::RedisConfig::new(url.clone()).prefix("teamhub:cache"),
            )?;
            db = db.with_engine(reactive::engine::Engine::new(std::sync::Arc::new(store)));
        }
        #[cfg(not(feature = "redis"))]
        anyhow::bail!("REDIS_URL is set ({url}) but teamhub was built without the `redis` feature");
    }
    seed::migrate(&db).await?;
    let seeded = seed::seed_if_empty(&db).await?;
    Ok((db, seeded))
}

/// The router settings: demo authentication, the dev tools page; with `REDIS_URL`, the event log and bus
/// live in Redis so that every instance replays and delivers every event.
pub async fn router_config(config: &Config) -> anyhow::Result<RouterConfig> {
    // The dev tools page at /api/devtools, in debug builds (DevToolsConfig's default).
    let router_config = RouterConfig::new(auth::DemoAuth)
        .devtools(DevToolsConfig::new("/devtools", auth::is_devtools_admin));
    let Some(url) = &config.redis_url else {
        return Ok(router_config);
    };
    #[cfg(feature = "redis")]
    {
        use reactive::realtime::{HubConfig, Realtime, RedisBus, RedisLog};
        use std::sync::Arc;
        let log = RedisLog::connect(url, "teamhub:events", 10_000).await?;
        let bus = RedisBus::connect(url, "teamhub:events").await?;
        Ok(router_config.realtime(Realtime::new(
            Arc::new(log),
            Arc::new(bus),
            HubConfig::default(),
        )))
    }
    #[cfg(not(feature = "redis"))]
    anyhow::bail!("REDIS_URL is set ({url}) but teamhub was built without the `redis` feature")
}

/// The whole HTTP app: the reactive router under `/api`, the page at `/`.
pub fn app(db: ReactiveDb<sqlx::Any>, router_config: RouterConfig, web_dist: &Path) -> Router {
    let api = reactive::router::router(db, router_config);
    let app = Router::new().nest("/api", api);
    if web_dist.join("index.html").exists() {
        app.fallback_service(tower_http::services::ServeDir::new(web_dist))
    } else {
        app.fallback(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                "the web page is not built: run `npm ci && npm run build` in examples/teamhub/web",
            )
        })
    }
}

/// Writes the generated TypeScript client into `web/src/generated` (only files that changed).
pub fn generate_typescript() -> std::io::Result<Vec<PathBuf>> {
    reactive::typescript::generate(web_dir().join("src/generated"))
}
