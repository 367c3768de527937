//! Tracker, the native-PostgreSQL example app of `reactive`: projects and tasks of
//! organizations, written with sqlx's compile-time checked query macros (`query_as!`)
//! over `uuid`, `timestamptz`, `date`, `jsonb`, `text[]` and a PostgreSQL enum.
//!
//! `DATABASE_URL=postgres://... cargo run -p tracker` serves the API at
//! http://127.0.0.1:3001/api. The macros check queries offline against the committed
//! `.sqlx/` data (see the README).

pub mod auth;
pub mod handlers;
pub mod model;
pub mod schema;

use axum::Router;
use reactive::ReactiveDb;
use reactive::router::RouterConfig;
use sqlx::Postgres;

/// Connects, applies `migrations/` and wraps the pool.
pub async fn open_db(url: &str) -> anyhow::Result<ReactiveDb<Postgres>> {
    let pool = sqlx::PgPool::connect(url).await?;
    // Migrations run on the plain pool, before the handle reads the catalog.
    sqlx::migrate!().run(&pool).await?;
    Ok(ReactiveDb::new(pool).await?)
}

/// The router settings: demo bearer-token authentication.
pub fn router_config() -> RouterConfig {
    RouterConfig::new(auth::DemoAuth)
}

/// The whole HTTP app: the reactive router under `/api`.
pub fn app(db: ReactiveDb<Postgres>) -> Router {
    Router::new().nest("/api", reactive::router::router(db, router_config()))
}
