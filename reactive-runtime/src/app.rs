//! [`Reactive`]: the one place that wires a database handle, its cache store, the real-time
//! layer (event log, bus, dispatcher) and the HTTP side, once; it then hands out routers
//! without side effects of their own, and the database handle handlers receive.
//!
//! Building is where the side effects happen (the listener installed on the handle, the
//! remote applies, the dispatcher task); [`Reactive::router`] and its parts only build
//! routes, as often as asked. See [`Reactive::builder`] for an example.

use std::sync::Arc;

use axum::Router;
use futures::future::BoxFuture;

use crate::db::{Backend, ReactiveDb};
use crate::engine::{Engine, EngineConfig};
use crate::realtime::Realtime;
use crate::router::{RouterConfig, Served};
use crate::seams::{CacheError, CacheStore, RealtimeError};

/// Why [`ReactiveBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No database was given ([`ReactiveBuilder::database`]).
    #[error("no database: call `database` on the builder")]
    NoDatabase,
    /// The database given as a pool or a URL could not be opened.
    #[error("the database could not be opened: {0}")]
    Database(#[from] sqlx::Error),
    /// The cache store could not be set up.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The event log or bus could not be set up.
    #[error(transparent)]
    Realtime(#[from] RealtimeError),
}

/// Redis for everything instances share: the cache store, the event log and the event
/// bus, from one URL, under keys starting with `prefix` (`{prefix}:cache`,
/// `{prefix}:events`). For [`ReactiveBuilder::redis`].
#[cfg(feature = "redis")]
#[derive(Debug, Clone)]
pub struct Redis {
    url: String,
    prefix: String,
    events_per_tenant: usize,
    hub: crate::realtime::HubConfig,
}

#[cfg(feature = "redis")]
impl Redis {
    /// Redis at `url`, keys under `reactive`, 1024 events kept per tenant.
    pub fn new(url: impl Into<String>) -> Self {
        Redis {
            url: url.into(),
            prefix: "reactive".to_owned(),
            events_per_tenant: 1024,
            hub: crate::realtime::HubConfig::default(),
        }
    }

    /// Sets the key prefix (one per application sharing a Redis).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how many events the log keeps per tenant (what a reconnecting client can
    /// replay).
    pub fn events_per_tenant(mut self, events: usize) -> Self {
        self.events_per_tenant = events;
        self
    }

    /// Sets the limits of this instance's live connections and what its events carry
    /// (default [`HubConfig::default`](crate::realtime::HubConfig)).
    pub fn hub(mut self, config: crate::realtime::HubConfig) -> Self {
        self.hub = config;
        self
    }

    fn store(&self) -> Result<crate::cache::redis::RedisStore, CacheError> {
        crate::cache::redis::RedisStore::new(
            crate::cache::redis::RedisConfig::new(self.url.clone())
                .prefix(format!("{}:cache", self.prefix)),
        )
    }

    async fn realtime(&self) -> Result<Realtime, RealtimeError> {
        let prefix = format!("{}:events", self.prefix);
        let log =
            crate::realtime::RedisLog::connect(&self.url, &prefix, self.events_per_tenant).await?;
        let bus = crate::realtime::RedisBus::connect(&self.url, &prefix).await?;
        Ok(Realtime::new(
            Arc::new(log),
            Arc::new(bus),
            self.hub.clone(),
        ))
    }
}

/// What [`ReactiveBuilder::database`] takes: a [`ReactiveDb`], a native sqlx pool
/// (`PgPool`, `MySqlPool`, `SqlitePool`: wrapped with [`ReactiveDb::new`] when the builder
/// builds), or, for `Reactive<Any>`, a URL ([`ReactiveDb::connect`]).
pub struct Database<DB: Backend>(DatabaseInner<DB>);

type OpenDb<DB> =
    Box<dyn FnOnce() -> BoxFuture<'static, Result<ReactiveDb<DB>, sqlx::Error>> + Send>;

enum DatabaseInner<DB: Backend> {
    Ready(ReactiveDb<DB>),
    /// Opened by `build` (a pool's catalog is read, a URL connected).
    Open(OpenDb<DB>),
}

impl<DB: Backend> Database<DB> {
    async fn open(self) -> Result<ReactiveDb<DB>, sqlx::Error> {
        match self.0 {
            DatabaseInner::Ready(db) => Ok(db),
            DatabaseInner::Open(open) => open().await,
        }
    }
}

impl<DB: Backend> From<ReactiveDb<DB>> for Database<DB> {
    fn from(db: ReactiveDb<DB>) -> Self {
        Database(DatabaseInner::Ready(db))
    }
}

impl<DB: Backend> From<sqlx::Pool<DB>> for Database<DB> {
    fn from(pool: sqlx::Pool<DB>) -> Self {
        Database(DatabaseInner::Open(Box::new(move || {
            Box::pin(ReactiveDb::new(pool))
        })))
    }
}

impl From<&str> for Database<sqlx::Any> {
    fn from(url: &str) -> Self {
        Database::from(url.to_owned())
    }
}

impl From<String> for Database<sqlx::Any> {
    fn from(url: String) -> Self {
        Database(DatabaseInner::Open(Box::new(move || {
            Box::pin(async move { ReactiveDb::connect(&url).await })
        })))
    }
}

/// Collects the parts of a [`Reactive`]; [`ReactiveBuilder::build`] wires them.
#[must_use = "a builder does nothing until `build` is called"]
pub struct ReactiveBuilder<DB: Backend> {
    db: Option<Database<DB>>,
    cache: Option<Arc<dyn CacheStore>>,
    engine: Option<EngineConfig>,
    realtime: Option<Realtime>,
    #[cfg(feature = "redis")]
    redis: Option<Redis>,
    http: RouterConfig,
}

impl<DB: Backend> ReactiveBuilder<DB> {
    /// The database: a [`ReactiveDb`], a native pool (`PgPool`, ...), or for
    /// `Reactive<Any>` a URL whose scheme picks the backend (see [`Database`]).
    pub fn database(mut self, db: impl Into<Database<DB>>) -> Self {
        self.db = Some(db.into());
        self
    }

    /// Where cached results live (default: the handle's own, in memory).
    pub fn cache(mut self, store: impl CacheStore) -> Self {
        self.cache = Some(Arc::new(store));
        self
    }

    /// The engine's settings: relation edges, the race guard's ring, the store's retry
    /// (default: [`EngineConfig::default`], the edges `#[derive(Relations)]` registered).
    /// Applies to the store [`ReactiveBuilder::cache`] or [`ReactiveBuilder::redis`]
    /// names, or to the handle's own.
    pub fn engine(mut self, config: EngineConfig) -> Self {
        self.engine = Some(config);
        self
    }

    /// The event log, bus and live connections (default: in memory, one instance).
    pub fn realtime(mut self, realtime: Realtime) -> Self {
        self.realtime = Some(realtime);
        self
    }

    /// Redis as the cache store, event log and bus: what several instances share.
    /// Replaces [`ReactiveBuilder::cache`] and [`ReactiveBuilder::realtime`].
    #[cfg(feature = "redis")]
    pub fn redis(mut self, redis: Redis) -> Self {
        self.redis = Some(redis);
        self
    }

    /// The HTTP side: authorizer, limits, dev tools, the functions served (default:
    /// [`RouterConfig::default`], one tenant and no authentication). Its `realtime` is
    /// replaced by the builder's.
    pub fn http(mut self, config: RouterConfig) -> Self {
        self.http = config;
        self
    }

    /// Wires everything once: the cache store under the handle's engine, the listener
    /// that publishes invalidations as events, the application of other instances'
    /// changes to this cache, and the event dispatcher. Must be called inside a Tokio
    /// runtime.
    pub async fn build(self) -> Result<Reactive<DB>, BuildError> {
        let mut db = self.db.ok_or(BuildError::NoDatabase)?.open().await?;
        #[cfg(feature = "redis")]
        let (cache, realtime) = match &self.redis {
            Some(redis) => (
                Some(Arc::new(redis.store()?) as Arc<dyn CacheStore>),
                Some(redis.realtime().await?),
            ),
            None => (self.cache, self.realtime),
        };
        #[cfg(not(feature = "redis"))]
        let (cache, realtime) = (self.cache, self.realtime);
        if cache.is_some() || self.engine.is_some() {
            let store = cache.unwrap_or_else(|| db.engine().store().clone());
            let config = self.engine.unwrap_or_default();
            db = db.with_engine(Engine::with_config(store, config));
        }
        let mut http = self.http;
        if let Some(realtime) = realtime {
            http.realtime = realtime;
        }
        let realtime = http.realtime.clone();
        let served = Served::wire(db.clone(), http);
        Ok(Reactive {
            db,
            realtime,
            served,
        })
    }
}

/// A database wired for serving: its cache, the real-time layer and the HTTP side
/// (see [`Reactive::builder`]). Cheap to clone.
pub struct Reactive<DB: Backend = sqlx::Any> {
    db: ReactiveDb<DB>,
    realtime: Realtime,
    served: Served,
}

// By hand: a derive would require `DB: Clone`.
impl<DB: Backend> Clone for Reactive<DB> {
    fn clone(&self) -> Self {
        Reactive {
            db: self.db.clone(),
            realtime: self.realtime.clone(),
            served: self.served.clone(),
        }
    }
}

impl<DB: Backend> std::fmt::Debug for Reactive<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactive")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl<DB: Backend> Reactive<DB> {
    /// A builder: [`ReactiveBuilder::database`] is required, everything else has a default.
    ///
    /// ```
    /// use reactive_runtime::router::SingleTenant;
    /// use reactive_runtime::{Reactive, ReactiveDb, RouterConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let db = ReactiveDb::connect("sqlite::memory:").await?;
    /// let app = Reactive::builder()
    ///     .database(db)
    ///     // The cache stays in memory; `.redis(Redis::new(url))` (feature `redis`) would
    ///     // share the cache, the event log and the bus between instances.
    ///     .http(RouterConfig::new(SingleTenant::new("demo", "dev")))
    ///     .build()
    ///     .await?;
    /// // Routers without side effects: merge them into the application's own.
    /// let routes = axum::Router::new().nest("/api", app.router());
    /// // Writes through `app.db()` invalidate the cache and become events.
    /// sqlx::query("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)")
    ///     .execute(app.db())
    ///     .await?;
    /// # let _ = routes;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # })
    /// # }
    /// ```
    pub fn builder() -> ReactiveBuilder<DB> {
        ReactiveBuilder {
            db: None,
            cache: None,
            engine: None,
            realtime: None,
            #[cfg(feature = "redis")]
            redis: None,
            http: RouterConfig::default(),
        }
    }

    /// The database handle: what handlers and the application's own writes go through
    /// (its invalidations become events).
    pub fn db(&self) -> &ReactiveDb<DB> {
        &self.db
    }

    /// The event log, bus and live connections.
    pub fn realtime(&self) -> &Realtime {
        &self.realtime
    }

    /// Every route: [`Reactive::rpc_router`], [`Reactive::events_router`] and
    /// [`Reactive::devtools_router`] merged.
    pub fn router(&self) -> Router {
        self.rpc_router()
            .merge(self.events_router())
            .merge(self.devtools_router())
    }

    /// `POST /rpc/{name}` and `GET /rpc/{name}`: the calls.
    pub fn rpc_router(&self) -> Router {
        self.served.rpc()
    }

    /// `GET /events` (the event stream), `POST /events/ack` (and `/ack`), `GET /poll`.
    pub fn events_router(&self) -> Router {
        self.served.events()
    }

    /// The dev tools page, when [`RouterConfig::devtools`] enabled it (no routes
    /// otherwise).
    pub fn devtools_router(&self) -> Router {
        self.served.devtools()
    }
}
