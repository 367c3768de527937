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
use reactive::router::RouterConfig;
use reactive::{Reactive, ReactiveDb};
use sqlx::Postgres;

/// Connects, applies `migrations/`, wraps the pool and wires it for serving (demo
/// bearer-token authentication).
pub async fn open(url: &str) -> anyhow::Result<Reactive<Postgres>> {
    let pool = sqlx::PgPool::connect(url).await?;
    // Migrations run on the plain pool, before the handle reads the catalog.
    sqlx::migrate!().run(&pool).await?;
    let db = ReactiveDb::new(pool).await?;
    Ok(Reactive::builder()
        .database(db)
        .http(RouterConfig::new(auth::DemoAuth))
        .build()
        .await?)
}

/// The whole HTTP app: the reactive routes under `/api`.
pub fn app(reactive: &Reactive<Postgres>) -> Router {
    Router::new().nest("/api", reactive.router())
}
