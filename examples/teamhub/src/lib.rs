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
use std::sync::Arc;

use axum::Router;
use reactive::realtime::{HubConfig, MemoryBus, MemoryLog, Realtime};
use reactive::router::{DevToolsConfig, RouterConfig};
use reactive::{Reactive, ReactiveDb};

/// Where the app keeps its data and how it is reached.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database URL; default an SQLite file `teamhub.db` in the working directory.
    pub database_url: String,
    /// Redis URL for the shared cache, bus and event log (several instances).
    pub redis_url: Option<String>,
    /// Folder of the built web page (`web/dist`), served at `/` when present.
    pub web_dist: PathBuf,
    /// Push the new results of `push` functions (`messages.getAll`) in the event stream
    /// (default); `false` (`TEAMHUB_PUSH=off`) leaves their clients to refetch, as for
    /// any query: the switch the hit-rate bench compares (`scripts/hitrate-bench.sh`).
    pub push: bool,
}

impl Config {
    /// Reads `DATABASE_URL`, `REDIS_URL` and `TEAMHUB_PUSH` (`off` turns push off)
    /// from the environment.
    pub fn from_env() -> Self {
        Config {
            database_url: std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "sqlite://teamhub.db?mode=rwc".to_string()),
            redis_url: std::env::var("REDIS_URL").ok().filter(|s| !s.is_empty()),
            web_dist: web_dir().join("dist"),
            push: std::env::var("TEAMHUB_PUSH").as_deref() != Ok("off"),
        }
    }
}

/// The `web/` folder of this example (source of the page and of its generated client).
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// Connects, migrates and seeds the database, then wires it for serving (demo
/// authentication, the dev tools page; with `REDIS_URL`, the cache, the event log and the
/// bus in Redis, so that several instances never serve what another one invalidated and
/// every instance replays and delivers every event). `true` when it seeded.
pub async fn open(config: &Config) -> anyhow::Result<(Reactive<sqlx::Any>, bool)> {
    let db = ReactiveDb::connect(&config.database_url).await?;
    seed::migrate(&db).await?;
    let seeded = seed::seed_if_empty(&db).await?;
    // The dev tools page at /api/devtools, in debug builds (DevToolsConfig's default).
    let http = RouterConfig::new(auth::DemoAuth)
        .devtools(DevToolsConfig::new("/devtools", auth::is_devtools_admin));
    let hub = HubConfig {
        push: config.push,
        ..HubConfig::default()
    };
    let builder = Reactive::builder().database(db).http(http);
    let builder = match &config.redis_url {
        None => builder.realtime(Realtime::new(
            Arc::new(MemoryLog::new(1024)),
            Arc::new(MemoryBus::default()),
            hub,
        )),
        #[cfg(feature = "redis")]
        Some(url) => builder.redis(
            reactive::Redis::new(url.clone())
                .prefix("teamhub")
                .events_per_tenant(10_000)
                .hub(hub),
        ),
        #[cfg(not(feature = "redis"))]
        Some(url) => anyhow::bail!(
            "REDIS_URL is set ({url}) but teamhub was built without the `redis` feature"
        ),
    };
    let reactive = builder.build().await?;
    if seeded {
        // A shared cache may still hold results of an earlier database at this URL.
        reactive.db().engine().store().clear().await?;
    }
    Ok((reactive, seeded))
}

/// The whole HTTP app: the reactive routes under `/api`, the page at `/`.
pub fn app(reactive: &Reactive<sqlx::Any>, web_dist: &Path) -> Router {
    let app = Router::new().nest("/api", reactive.router());
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
