//! SSE fan-out bench server, built on the real router (`reactive_runtime::Reactive::router`).
//!
//! Used by `scripts/sse-bench.sh` with the shared `sseload` tool (see `docs/benchmarks.md`).
//!
//! - `GET /events?subscribe=bench.channel:{"channel":"<ch>"}`: the real SSE endpoint. Each
//!   subscriber subscribes to the query key of a hand-registered query function
//!   `bench.channel` (`SELECT .. FROM bench_msg WHERE channel = $1`), so a channel is a
//!   query key, exactly as a real app's `useReactive` subscription. `bench.channelPushed`
//!   is the same query with pushed results (`"push":true`): its subscribers get the new
//!   value in the `invalidate` frame (used by the `herd` example, `scripts/herd-bench.sh`).
//! - `POST /pub?id=<ch>` (body: any text): a real reactive write through [`ReactiveDb`]:
//!   `INSERT INTO bench_msg (channel, body, marker) VALUES ($1, $2, $3)`, run as the
//!   bench tenant's principal ([`with_principal`]). The write goes through statement
//!   interception → invalidation engine → `RealtimeListener` → event log → bus → hub →
//!   every SSE connection whose subscription the change set affects.
//! - The marker: sseload counts a delivery when the `lgts=<seq>.<micros>` marker of its
//!   published body appears in an SSE `data:` line. Events carry no row contents, only
//!   key values of columns some query filters on, and only when the server enables
//!   `HubConfig::event_keys`. So the bench has a dedicated key column: `/pub` stores the
//!   marker it finds in the body in `bench_msg.marker`, which the hand-registered query
//!   `bench.byMarker` filters on, and the bench enables `event_keys`; the marker then
//!   rides in the event's `keys` (and the body does not).
//! - `POST /rpc/bench.publish` (`{"channel": .., "body": ..}`) does the same write through
//!   the real RPC path.
//! - `GET /stats`: `connections` (live SSE connections in the hub), `query_executions`
//!   (runs of the `bench.channel*` handlers: database executions, not cache hits),
//!   `http_requests` (every request the router served, event streams included; of those
//!   `pub_requests` and `stats_requests` are the `/pub` writes and `/stats` probes) and
//!   `cpu_seconds` (the process's user + system CPU time).
//! - `GET /idle-sse` (diagnostic): a bare axum SSE response that never sends anything, not
//!   going through the realtime code: the per-connection memory floor of axum + hyper +
//!   Tokio on this machine, to compare `/events` against.
//!
//! Environment: `SSE_BENCH_ADDR` (default `127.0.0.1:8091`), `SSE_BENCH_THREADS` (Tokio
//! worker threads, default: one per core), `SSE_BENCH_DB` (default `sqlite::memory:`, whose pooled connections each have a
//! database of their own: `scripts/sse-bench.sh` passes a file),
//! `SSE_BENCH_SERVER` (`axum` to serve with `axum::serve` instead of `reactive_runtime::serve`),
//! `SSE_BENCH_REAUTH` (seconds between re-authorizations of open streams, `off` to disable;
//! default: the router's default, 300).
//! Authorization: everyone is the single tenant `bench` (a trivial authorizer; this is a
//! bench, not an app).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use reactive_runtime::ReactiveDb;
use reactive_runtime::realtime::{HubConfig, MemoryBus, MemoryLog, Realtime};
use reactive_runtime::registry::{FunctionDef, InputError, Prepared};
use reactive_runtime::router::{Principal, RouterConfig, SingleTenant, with_principal};
use serde_json::{Value, json};
use sqlx::Row;

#[path = "herd/cpu.rs"]
mod cpu;

const TENANT: &str = "bench";
const SELECT: &str = "SELECT id, channel, body FROM bench_msg WHERE channel = $1";
const INSERT: &str = "INSERT INTO bench_msg (channel, body, marker) VALUES ($1, $2, $3)";

/// Executions of the `bench.channel*` queries against the database (cache misses).
static QUERY_EXECUTIONS: AtomicU64 = AtomicU64::new(0);
/// HTTP requests that reached the router (event streams included), and of those the
/// `/pub` writes and `/stats` probes, which a reader subtracts.
static HTTP_REQUESTS: AtomicU64 = AtomicU64::new(0);
static PUB_REQUESTS: AtomicU64 = AtomicU64::new(0);
static STATS_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Counts every request into [`HTTP_REQUESTS`] (and `/pub`, `/stats` apart).
async fn count_requests(request: Request, next: Next) -> Response {
    HTTP_REQUESTS.fetch_add(1, Ordering::Relaxed);
    match request.uri().path() {
        "/pub" => PUB_REQUESTS.fetch_add(1, Ordering::Relaxed),
        "/stats" => STATS_REQUESTS.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
    next.run(request).await
}

/// The sseload marker in a published body (`lgts=<seq>.<micros>`), or `""`.
fn marker_of(body: &str) -> String {
    let Some(at) = body.find("lgts=") else {
        return String::new();
    };
    let rest = &body[at + 5..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    format!("lgts={}", &rest[..end])
}

fn string_field(input: &Value, name: &str) -> Result<String, InputError> {
    match input.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(InputError {
            path: name.into(),
            message: "invalid type: expected a string".into(),
        }),
        None if input.is_object() => Err(InputError {
            path: name.into(),
            message: format!("missing field `{name}`"),
        }),
        None => Err(InputError {
            path: ".".into(),
            message: "invalid type: expected an object".into(),
        }),
    }
}

fn prepare_channel(input: Value) -> Result<Prepared, InputError> {
    let channel = string_field(&input, "channel")?;
    Ok(Prepared {
        bindings: vec![json!(channel)],
        run: Box::new(move |db| {
            let db: ReactiveDb<sqlx::Any> = *db.downcast().expect("an Any handle");
            Box::pin(async move {
                // Counted where the database is asked: a cache hit never gets here.
                QUERY_EXECUTIONS.fetch_add(1, Ordering::Relaxed);
                let rows = sqlx::query(SELECT).bind(channel).fetch_all(&db).await?;
                Ok(serde_json::to_vec(&Value::Array(
                    rows.iter()
                        .map(|r| {
                            json!({
                                "id": r.try_get::<i64, _>("id").unwrap_or_default(),
                                "channel": r.try_get::<String, _>("channel").unwrap_or_default(),
                                "body": r.try_get::<String, _>("body").unwrap_or_default(),
                            })
                        })
                        .collect(),
                ))?)
            })
        }),
    })
}

fn prepare_publish(input: Value) -> Result<Prepared, InputError> {
    let channel = string_field(&input, "channel")?;
    let body = string_field(&input, "body")?;
    let marker = marker_of(&body);
    Ok(Prepared {
        bindings: vec![json!(channel), json!(body), json!(marker)],
        run: Box::new(move |db| {
            let db: ReactiveDb<sqlx::Any> = *db.downcast().expect("an Any handle");
            Box::pin(async move {
                let done = sqlx::query(INSERT)
                    .bind(channel)
                    .bind(body)
                    .bind(marker)
                    .execute(&db)
                    .await?;
                Ok(serde_json::to_vec(
                    &json!({"inserted": done.rows_affected()}),
                )?)
            })
        }),
    })
}

/// The model of a `bench.channel`-shaped query named `$name` (`$push`: `true` or
/// `false`): what `#[reactive_function]` would emit for this function.
macro_rules! channel_model {
    ($name:literal, $push:literal) => {
        concat!(
            r#"{"name":""#,
            $name,
            r#"","rust_name":"channel","kind":"query","requires_ack":false,"push":"#,
            $push,
            r#","dialect":"sqlite","#,
            r#""bindings":[{"source":"input.channel","path":["channel"]}],"#,
            r#""dependencies":[{"table":"bench_msg","keys":[{"column":"channel","values":[{"binding":0}]}]}],"#,
            r#""invalidates":[],"statements":[{"sql":"SELECT id, channel, body FROM bench_msg WHERE channel = $1","analysis":"#,
            r#"{"operation":"select","reads":[{"table":"bench_msg","filter":{"rows":"keys","keys":[{"column":"channel","values":[{"param":{"index":1}}]}]}}],"writes":[],"returning":false,"unknown":null}"#,
            r#","params":[0]}],"calls":[]}"#
        )
    };
}

/// The query every subscriber subscribes to, by key: `bench.channel:{"channel":"<ch>"}`.
static CHANNEL_DEF: FunctionDef =
    FunctionDef::by_hand(channel_model!("bench.channel", "false"), prepare_channel);

/// The same query with pushed results (`#[reactive_function(push)]`):
/// `bench.channelPushed:{"channel":"<ch>"}` subscribers get its new value in the event.
static CHANNEL_PUSHED_DEF: FunctionDef = FunctionDef::by_hand(
    channel_model!("bench.channelPushed", "true"),
    prepare_channel,
);

/// Makes `bench_msg.marker` a key column (a query filters on it), so that events keep
/// the marker (see the module docs). Nobody needs to call it.
static BY_MARKER_DEF: FunctionDef = FunctionDef::by_hand(
    concat!(
        r#"{"name":"bench.byMarker","rust_name":"by_marker","kind":"query","requires_ack":false,"dialect":"sqlite","#,
        r#""bindings":[{"source":"input.marker","path":["marker"]}],"#,
        r#""dependencies":[{"table":"bench_msg","keys":[{"column":"marker","values":[{"binding":0}]}]}],"#,
        r#""invalidates":[],"statements":[],"calls":[]}"#
    ),
    prepare_by_marker,
);

fn prepare_by_marker(input: Value) -> Result<Prepared, InputError> {
    string_field(&input, "marker")?;
    Ok(Prepared {
        bindings: vec![input["marker"].clone()],
        run: Box::new(|_db| Box::pin(async { Ok(b"[]".to_vec()) })),
    })
}

/// The same write as `POST /pub`, as a mutation callable through `POST /rpc/bench.publish`.
static PUBLISH_DEF: FunctionDef = FunctionDef::by_hand(
    concat!(
        r#"{"name":"bench.publish","rust_name":"publish","kind":"mutation","requires_ack":false,"dialect":"sqlite","#,
        r#""bindings":[{"source":"input.channel","path":["channel"]},{"source":"input.body","path":["body"]},{"source":"marker","path":[]}],"#,
        r#""dependencies":[],"invalidates":[],"statements":[{"sql":"INSERT INTO bench_msg (channel, body, marker) VALUES ($1, $2, $3)","analysis":"#,
        r#"{"operation":"insert","reads":[],"writes":[{"table":"bench_msg","operation":"insert","filter":{"rows":"all"},"set":[],"inserted":[[{"column":"channel","value":{"param":{"index":1}}},{"column":"body","value":{"param":{"index":2}}},{"column":"marker","value":{"param":{"index":3}}}]]}],"returning":false,"unknown":null}"#,
        r#","params":[0,1,2]}],"calls":[]}"#
    ),
    prepare_publish,
);

#[derive(Clone)]
struct Bench {
    db: ReactiveDb<sqlx::Any>,
    realtime: reactive_runtime::realtime::Realtime,
}

/// `POST /pub?id=<ch>`: inserts the body into `bench_msg` for channel `<ch>` through the
/// reactive database, as the bench tenant. Answers once the event is published.
async fn publish(
    State(bench): State<Bench>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> impl IntoResponse {
    let Some(channel) = params.get("id").cloned() else {
        return (StatusCode::BAD_REQUEST, "missing ?id=<channel>").into_response();
    };
    let text = match String::from_utf8(body.to_vec()) {
        Ok(t) => t,
        Err(_) => return (StatusCode::BAD_REQUEST, "body is not UTF-8").into_response(),
    };
    let principal = Principal::new(TENANT, "publisher");
    let db = bench.db.clone();
    let marker = marker_of(&text);
    let write = with_principal(principal, async move {
        sqlx::query(INSERT)
            .bind(channel)
            .bind(text)
            .bind(marker)
            .execute(&db)
            .await
    })
    .await;
    match write {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "bench publish failed");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

/// `GET /stats`: live SSE connections, the counters above, and the process's CPU time.
async fn stats(State(bench): State<Bench>) -> impl IntoResponse {
    axum::Json(json!({
        "connections": bench.realtime.connections(),
        "query_executions": QUERY_EXECUTIONS.load(Ordering::Relaxed),
        "http_requests": HTTP_REQUESTS.load(Ordering::Relaxed),
        "pub_requests": PUB_REQUESTS.load(Ordering::Relaxed),
        "stats_requests": STATS_REQUESTS.load(Ordering::Relaxed),
        "cpu_seconds": cpu::seconds("self"),
    }))
}

/// `GET /idle-sse`: an SSE response whose body never yields (diagnostic floor).
async fn idle_sse() -> impl IntoResponse {
    let body = axum::body::Body::from_stream(futures::stream::pending::<
        Result<Bytes, std::convert::Infallible>,
    >());
    (
        [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
        body,
    )
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("SSE_BENCH_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8091".into())
        .parse()?;
    let url = std::env::var("SSE_BENCH_DB").unwrap_or_else(|_| "sqlite::memory:".into());
    let db = ReactiveDb::connect(&url).await?;
    sqlx::query("DROP TABLE IF EXISTS bench_msg")
        .execute(db.pool())
        .await?;
    sqlx::query(
        "CREATE TABLE bench_msg (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, body TEXT NOT NULL, marker TEXT NOT NULL DEFAULT '')",
    )
    .execute(db.pool())
    .await?;
    // Created behind the handle: read its columns now, not at the first writes (which
    // would change the whole table, reaching every subscriber, until the catalog sees it).
    db.refresh_schema().await;

    // Every subscriber is one principal here: no per-principal stream cap. Events show
    // their keys, where the marker rides (see the module docs).
    let realtime = Realtime::new(
        Arc::new(MemoryLog::new(1024)),
        Arc::new(MemoryBus::default()),
        HubConfig {
            max_streams_per_principal: usize::MAX,
            event_keys: true,
            ..HubConfig::default()
        },
    );
    let mut config = RouterConfig::new(SingleTenant::new(TENANT, "subscriber"))
        .realtime(realtime)
        .functions(vec![
            &CHANNEL_DEF,
            &CHANNEL_PUSHED_DEF,
            &BY_MARKER_DEF,
            &PUBLISH_DEF,
        ]);
    match std::env::var("SSE_BENCH_REAUTH").ok().as_deref() {
        None | Some("") => {}
        Some("off") => config = config.reauthorize_every(None),
        Some(secs) => {
            config = config.reauthorize_every(Some(Duration::from_secs(secs.parse()?)));
        }
    }
    let bench = Bench {
        db: db.clone(),
        realtime: config.realtime.clone(),
    };
    let reactive = reactive_runtime::Reactive::builder()
        .database(db)
        .http(config)
        .build()
        .await?;
    let app = Router::new()
        .merge(reactive.router())
        .merge(
            Router::new()
                .route("/pub", post(publish))
                .route("/stats", get(stats))
                .route("/idle-sse", get(idle_sse))
                .with_state(bench),
        )
        .layer(middleware::from_fn(count_requests));

    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // Same backlog as the nchan peer (`listen ... backlog=4096`).
    let listener = socket.listen(4096)?;
    println!(
        "sse_bench listening on http://{addr} (pid {})",
        std::process::id()
    );
    // `SSE_BENCH_SERVER=axum` serves through `axum::serve` (hyper for every connection)
    // instead of `reactive_runtime::serve` (event streams on the bare socket).
    if std::env::var("SSE_BENCH_SERVER").as_deref() == Ok("axum") {
        axum::serve(listener, app).await?;
    } else {
        reactive_runtime::serve(listener, app).await?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = std::env::var("SSE_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        rt.worker_threads(n);
    }
    rt.enable_all().build()?.block_on(serve())
}
