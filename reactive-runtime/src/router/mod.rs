//! The HTTP side: the routers [`Reactive`](crate::Reactive) hands out serve every
//! registered reactive function, the SSE stream, acks and polling, as described in
//! `docs/protocol.md` (the wire contract).
//!
//! - Authentication: the app's [`Authorizer`] turns a request head into a [`Principal`]
//!   (tenant + subject); `401` otherwise. Per-input checks: [`Authorizer::check_input`]
//!   (before every call and for every subscribed query key),
//!   [`Authorizer::check_subscription`] (for every subscribed procedure name and `*`) and
//!   [`current_principal`] inside handlers.
//! - Errors: `{"error": {"code", "message", "path"}}` ([`ApiError`]). A database error a
//!   client can act on ([`DbErrorClass`](crate::DbErrorClass)) is answered by its class:
//!   duplicate key `409 conflict`, foreign key `409 foreign_key`, `NOT NULL`/`CHECK`
//!   `422 constraint`, too long/out of range `422 out_of_range`, malformed value
//!   `400 invalid_value`, deadlock/serialization failure `503 retry`. Other handler
//!   errors than `BadRequest`/`Unauthorized`/`Forbidden`/`NotFound` get a generic `500`.
//!   Every 5xx is logged with `tracing::error!` and the procedure name; a handler that
//!   panics answers `500` too (the panic's message is logged), never a dropped connection.
//! - Failures of the event log or bus (Redis down) degrade, never fail a request: reads
//!   answer with the unknown watermark `"0"`, a committed write answers `200` (see
//!   [`Realtime`]'s failure docs and `docs/protocol.md` §10).
//! - Events: [`RealtimeListener`] (installed on the `ReactiveDb` by
//!   [`ReactiveBuilder::build`](crate::ReactiveBuilder::build)) turns each
//!   invalidation into one event per tenant concerned, appended to the log and published
//!   on the bus before the write returns.
//!
//! ```ignore
//! let reactive = Reactive::builder().database(db).http(RouterConfig::new(MyAuth)).build().await?;
//! let app = axum::Router::new().merge(reactive.router());
//! ```

mod auth;
mod devtools;
mod error;
mod events;
mod push;
mod rpc;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

pub use auth::{AuthError, Authorizer, Principal, SingleTenant, current_principal, with_principal};
pub use devtools::DevToolsConfig;
pub use error::ApiError;

use crate::ReactiveDb;
use crate::db::InvalidationListener;
use crate::db::{Backend, CallError, CallOutput};
use crate::engine::EngineStats;
use crate::observe::devtools::DevTools;
use crate::realtime::Realtime;
use crate::registry::{self, BoxFuture, FunctionDef};
use crate::seams::{CacheStore, CallOrigin};
use crate::types::InvalidationReport;
use crate::types::ReadSet;

/// Settings of the HTTP side ([`ReactiveBuilder::http`](crate::ReactiveBuilder::http)).
/// `RouterConfig::new(authorizer)` gives the defaults.
#[derive(Clone)]
pub struct RouterConfig {
    /// Turns requests into principals.
    pub authorizer: Arc<dyn Authorizer>,
    /// Event log, bus and live connections (in memory by default; Redis for several
    /// instances).
    pub realtime: Realtime,
    /// Largest accepted request body in bytes (default 1 MiB); larger → `413`.
    pub body_limit: usize,
    /// The `retry:` hint sent at the start of each stream, in milliseconds (default 3000).
    pub retry_ms: u64,
    /// Interval of `event: ping` frames on every stream (default 15 s; `None`: none).
    /// They let clients tell an idle stream from a dead one (the TypeScript client
    /// reopens a stream silent for twice its `heartbeat` option, 30 s by default), keep
    /// proxies from closing idle connections, and make the server notice a peer that
    /// went away.
    pub heartbeat: Option<Duration>,
    /// How often an open stream's credentials are checked again with the authorizer
    /// (default 5 minutes; `None`: only the principal's `expires_at` is enforced).
    pub reauthorize_every: Option<Duration>,
    /// Most entries in one subscription (default 256).
    pub max_subscriptions: usize,
    /// Longest subscription entry in bytes (default 2048).
    pub max_entry_len: usize,
    /// Largest `/poll` body in bytes (default 256 KiB): beyond it the answer is one page
    /// (`"more": true`) and the client polls again from its `eventId`.
    pub max_poll_bytes: usize,
    /// The functions to serve (default: every registered one, `registry::functions()`).
    pub functions: Option<Vec<&'static FunctionDef>>,
    /// The dev tools page (default none; see [`DevToolsConfig`]).
    pub devtools: Option<DevToolsConfig>,
}

impl RouterConfig {
    /// Defaults with this authorizer and an in-memory log and bus.
    pub fn new(authorizer: impl Authorizer) -> Self {
        RouterConfig {
            authorizer: Arc::new(authorizer),
            realtime: Realtime::memory(),
            body_limit: 1 << 20,
            retry_ms: 3000,
            heartbeat: Some(Duration::from_secs(15)),
            reauthorize_every: Some(Duration::from_secs(300)),
            max_subscriptions: 256,
            max_entry_len: 2048,
            max_poll_bytes: 256 << 10,
            functions: None,
            devtools: None,
        }
    }

    /// Uses this log/bus/hub (e.g. Redis-backed).
    pub fn realtime(mut self, realtime: Realtime) -> Self {
        self.realtime = realtime;
        self
    }

    /// Serves these functions instead of every registered one.
    pub fn functions(mut self, functions: Vec<&'static FunctionDef>) -> Self {
        self.functions = Some(functions);
        self
    }

    /// Serves the dev tools page (when `config.enabled`).
    pub fn devtools(mut self, config: DevToolsConfig) -> Self {
        self.devtools = Some(config);
        self
    }

    /// Sets the body limit.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sets the heartbeat interval.
    pub fn heartbeat(mut self, every: Option<Duration>) -> Self {
        self.heartbeat = every;
        self
    }

    /// Sets the re-authorization interval of open streams.
    pub fn reauthorize_every(mut self, every: Option<Duration>) -> Self {
        self.reauthorize_every = every;
        self
    }
}

impl Default for RouterConfig {
    /// Single tenant, no authentication: for development only.
    fn default() -> Self {
        RouterConfig::new(SingleTenant::default())
    }
}

/// What the router needs of a `ReactiveDb<DB>`, whatever `DB` is.
pub(crate) trait ServedDb: Send + Sync {
    /// [`ReactiveDb::call_at`] for the tenant of `origin`, whose handler's handle
    /// carries `origin`.
    fn call<'a>(
        &'a self,
        def: &'a FunctionDef,
        origin: CallOrigin,
        input: serde_json::Value,
        watermark: u64,
    ) -> futures::future::BoxFuture<'a, Result<CallOutput, CallError>>;

    /// [`ReactiveDb::read_set`] with the column types known now (see `ensure_schema`).
    fn read_set(&self, def: &FunctionDef, bindings: &[serde_json::Value]) -> ReadSet;

    /// Makes sure the column types of the tables `def` uses are known.
    fn ensure_schema<'a>(&'a self, def: &'a FunctionDef) -> futures::future::BoxFuture<'a, ()>;

    /// The engine's counters.
    fn engine_stats(&self) -> EngineStats;

    /// The engine's cache store (the dev tools page lists its entries).
    fn cache_store(&self) -> Arc<dyn CacheStore>;
}

impl<DB: Backend> ServedDb for ReactiveDb<DB> {
    fn call<'a>(
        &'a self,
        def: &'a FunctionDef,
        origin: CallOrigin,
        input: serde_json::Value,
        watermark: u64,
    ) -> futures::future::BoxFuture<'a, Result<CallOutput, CallError>> {
        Box::pin(async move {
            let tenant = origin.principal().tenant.clone();
            self.call_as(def, &tenant, Some(origin), input, watermark)
                .await
        })
    }

    fn read_set(&self, def: &FunctionDef, bindings: &[serde_json::Value]) -> ReadSet {
        ReactiveDb::read_set_now(self, def, bindings)
    }

    fn ensure_schema<'a>(&'a self, def: &'a FunctionDef) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(ReactiveDb::ensure_schema(self, def.model()))
    }

    fn engine_stats(&self) -> EngineStats {
        self.engine().stats()
    }

    fn cache_store(&self) -> Arc<dyn CacheStore> {
        self.engine().store().clone()
    }
}

pub(crate) struct State {
    pub(crate) db: Box<dyn ServedDb>,
    pub(crate) config: RouterConfig,
    pub(crate) functions: HashMap<String, &'static FunctionDef>,
    /// The dev tools' recorder, when the page is enabled.
    pub(crate) devtools: Option<DevTools>,
}

impl State {
    pub(crate) fn function(&self, name: &str) -> Option<&'static FunctionDef> {
        self.functions.get(name).copied()
    }

    pub(crate) fn realtime(&self) -> &Realtime {
        &self.config.realtime
    }
}

pub(crate) type AppState = Arc<State>;

/// Publishes the invalidations of a [`ReactiveDb`] through a [`Realtime`]: one event
/// per tenant concerned. The tenant of the write comes from the origin the handle it
/// was made through carries (the call's, see [`ReactiveDb::origin`]), else from
/// [`with_principal`].
pub struct RealtimeListener {
    realtime: Realtime,
    devtools: Option<DevTools>,
}

impl RealtimeListener {
    /// A listener publishing through `realtime`.
    pub fn new(realtime: Realtime) -> Self {
        RealtimeListener {
            realtime,
            devtools: None,
        }
    }

    /// Also records each invalidation and its event in the dev tools' trace.
    pub fn with_devtools(mut self, devtools: DevTools) -> Self {
        self.devtools = Some(devtools);
        self
    }
}

impl InvalidationListener for RealtimeListener {
    fn on_invalidation(&self, report: Arc<InvalidationReport>) -> BoxFuture<'static, ()> {
        let origin = crate::db::origin::current();
        publish(self.realtime.clone(), self.devtools.clone(), origin, report)
    }

    fn bind(self: Arc<Self>) -> Arc<dyn InvalidationListener> {
        self.bind_to(crate::db::origin::current())
    }

    fn bind_to(self: Arc<Self>, origin: Option<CallOrigin>) -> Arc<dyn InvalidationListener> {
        Arc::new(BoundListener {
            realtime: self.realtime.clone(),
            devtools: self.devtools.clone(),
            origin,
        })
    }
}

/// A [`RealtimeListener`] with the origin of the write that caused the invalidation,
/// for an invalidation finishing in a task of its own.
struct BoundListener {
    realtime: Realtime,
    devtools: Option<DevTools>,
    origin: Option<CallOrigin>,
}

impl InvalidationListener for BoundListener {
    fn on_invalidation(&self, report: Arc<InvalidationReport>) -> BoxFuture<'static, ()> {
        publish(
            self.realtime.clone(),
            self.devtools.clone(),
            self.origin.clone(),
            report,
        )
    }

    fn bind(self: Arc<Self>) -> Arc<dyn InvalidationListener> {
        self
    }
}

/// Publishes one report as the events of the tenants concerned, and tells the call
/// (if any) what it recorded for its tenant. Failures are handled (logged, local
/// streams reset, repaired later) by [`Realtime::on_report`]: the write committed.
fn publish(
    realtime: Realtime,
    devtools: Option<DevTools>,
    origin: Option<CallOrigin>,
    report: Arc<InvalidationReport>,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let tenant = origin.as_ref().map(|o| o.principal().tenant.as_str());
        let ack = origin.as_ref().is_some_and(CallOrigin::requires_ack);
        let published = realtime.on_report(&report, tenant, ack).await;
        if let Some(devtools) = &devtools {
            devtools.record_invalidation(&report, tenant, published.event.map(|e| e.0));
        }
        if let Some(origin) = &origin {
            use std::sync::atomic::Ordering;
            let events = origin.events();
            if let Some(id) = published.event {
                events.newest.fetch_max(id.0, Ordering::SeqCst);
            }
            if published.failed {
                events.failed.store(true, Ordering::SeqCst);
            }
        }
    })
}

/// A database handle wired to a [`Realtime`] for serving: the listener installed, change
/// sets of other instances applied to its cache, the dispatcher started. Hands out
/// routers, which have no side effects of their own: `POST /rpc/{name}`,
/// `GET /rpc/{name}`, `GET /events`, `POST /events/ack` (and `/ack`), `GET /poll`.
///
/// Only the registered functions written for `db`'s handle type are served
/// (`&ReactiveDb<Postgres>` functions through a `ReactiveDb<Postgres>`); functions
/// written for another handle type are left out (logged at debug level).
#[derive(Clone)]
pub(crate) struct Served {
    state: AppState,
    /// Where the dev tools page is served, when it is enabled.
    devtools_path: Option<String>,
}

/// Every route for `db`, wired as [`Reactive::builder`](crate::Reactive::builder) does
/// with `.database(db).http(config)`: kept so that code written before the builder
/// still compiles. It installs the realtime listener on `db` and starts the dispatcher
/// when called (a side effect the builder makes explicit). Must be called inside a
/// Tokio runtime.
#[deprecated(
    since = "0.1.0",
    note = "use `Reactive::builder().database(db).http(config).build().await?.router()`"
)]
pub fn router<DB: Backend>(db: ReactiveDb<DB>, config: RouterConfig) -> Router {
    let served = Served::wire(db, config);
    served.rpc().merge(served.events()).merge(served.devtools())
}

impl Served {
    /// Wires `db` and `config.realtime`. Must be called inside a Tokio runtime.
    pub(crate) fn wire<DB: Backend>(db: ReactiveDb<DB>, config: RouterConfig) -> Served {
        let realtime = config.realtime.clone();
        let devtools = config.devtools.as_ref().filter(|d| d.enabled).map(|d| {
            (
                d.path.trim_end_matches('/').to_owned(),
                DevTools::new(d.trace_bytes),
            )
        });
        let mut listener = RealtimeListener::new(realtime.clone());
        if let Some((_, tools)) = &devtools {
            listener = listener.with_devtools(tools.clone());
            realtime.set_devtools(tools.clone());
        }
        db.set_listener(Arc::new(listener));
        let remote_db = db.clone();
        let remote_tools = devtools.as_ref().map(|(_, tools)| tools.clone());
        realtime.set_remote_apply(Arc::new(move |changes| {
            let db = remote_db.clone();
            let tools = remote_tools.clone();
            Box::pin(async move {
                let report = db.engine().apply_remote(changes).await;
                // Another instance's write: no writer's tenant or event known here.
                if let Some(tools) = &tools {
                    tools.record_invalidation(&report, None, None);
                }
                report
            })
        }));
        realtime.start();
        let functions = config
            .functions
            .clone()
            .unwrap_or_else(registry::functions)
            .into_iter()
            .filter(|f| {
                let served = (f.backend)() == std::any::TypeId::of::<ReactiveDb<DB>>();
                if !served {
                    tracing::debug!(
                        function = f.model().name,
                        "not served: written for another database handle type"
                    );
                }
                served
            })
            .map(|f| (f.model().name.clone(), f))
            .collect::<HashMap<_, _>>();
        // Events keep the key columns the served functions filter on (registered ones are
        // known to the `Realtime` already; these may not be registered).
        for f in functions.values() {
            realtime.key_columns().watch_model(f.model());
        }
        let (devtools_path, devtools) = devtools.unzip();
        let state = Arc::new(State {
            db: Box::new(db),
            config,
            functions,
            devtools,
        });
        realtime.set_push(push::compute(Arc::downgrade(&state)));
        Served {
            state,
            devtools_path,
        }
    }

    /// `POST /rpc/{name}` and `GET /rpc/{name}`.
    pub(crate) fn rpc(&self) -> Router {
        self.finish(Router::new().route("/rpc/{name}", post(rpc::post_rpc).get(rpc::get_rpc)))
    }

    /// `GET /events`, `POST /events/ack` (and `/ack`), `GET /poll`.
    pub(crate) fn events(&self) -> Router {
        self.finish(
            Router::new()
                .route("/events", get(events::sse))
                .route("/events/ack", post(events::ack))
                .route("/ack", post(events::ack))
                .route("/poll", get(events::poll)),
        )
    }

    /// The dev tools page, its state and its stream (no routes when it is disabled).
    pub(crate) fn devtools(&self) -> Router {
        let Some(path) = &self.devtools_path else {
            return Router::new();
        };
        self.finish(
            Router::new()
                .route(path, get(devtools::page))
                .route(&format!("{path}/state"), get(devtools::snapshot))
                .route(&format!("{path}/cache"), get(devtools::cache))
                .route(&format!("{path}/stream"), get(devtools::stream)),
        )
    }

    fn finish(&self, routes: Router<AppState>) -> Router {
        routes
            .with_state(self.state.clone())
            .layer(axum::middleware::from_fn(catch_panic))
    }
}

/// Answers a request whose handler panicked with a `500` (logged with the procedure
/// name and the panic's message) instead of dropping the connection without an answer,
/// which a client cannot tell from a network failure (and may retry). A panic while a
/// stream's body is being written still ends that stream.
async fn catch_panic(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use futures::FutureExt;
    let path = req.uri().path().to_owned();
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(res) => res,
        Err(panic) => {
            let cause = format!("panicked: {}", crate::realtime::panic_message(panic));
            match path.rsplit_once("/rpc/") {
                Some((_, procedure)) => ApiError::procedure_failed(procedure, &cause),
                None => {
                    tracing::error!(path, "request handler panicked");
                    ApiError::internal(&cause)
                }
            }
            .into_response()
        }
    }
}
