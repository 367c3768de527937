//! Shared harness of the realtime tests: hand-registered reactive functions over an
//! `rt_item` table, a token authorizer, a server on port 0 and an SSE frame reader.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use reactive_runtime::registry::{FunctionDef, InputError, Prepared};
use reactive_runtime::router::{AuthError, Authorizer, Principal, RouterConfig};
use reactive_runtime::{Error, ReactiveDb};
use serde_json::{Value, json};
use sqlx::Row;

// ---------------------------------------------------------------- functions

const BY_ORG: &str = "SELECT id, org, title FROM rt_item WHERE org = $1";
const BY_TITLE: &str = "SELECT id, org, title FROM rt_item WHERE org = $1 AND title = $2";
const INSERT: &str = "INSERT INTO rt_item (org, title) VALUES ($1, $2)";

const SELECT_BY_ORG: &str = r#"{"operation":"select","reads":[{"table":"rt_item","filter":{"rows":"keys","keys":[{"column":"org","values":[{"param":{"index":1}}]}]}}],"writes":[],"returning":false,"unknown":null}"#;

fn field(input: &Value, name: &str) -> Result<String, InputError> {
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

async fn rows(
    db: &ReactiveDb<sqlx::Any>,
    q: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>,
) -> reactive_runtime::Result<Vec<u8>> {
    let rows = q.fetch_all(db).await?;
    Ok(serde_json::to_vec(&Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "id": r.try_get::<i64, _>("id").unwrap_or_default(),
                    "org": r.try_get::<String, _>("org").unwrap_or_default(),
                    "title": r.try_get::<String, _>("title").unwrap_or_default(),
                })
            })
            .collect(),
    ))?)
}

/// The `ReactiveDb<Any>` a call runs with.
fn any_db(db: reactive_runtime::registry::DbHandle) -> ReactiveDb<sqlx::Any> {
    *db.downcast()
        .expect("functions of these tests take a ReactiveDb<Any>")
}

fn prepare_by_org(input: Value) -> Result<Prepared, InputError> {
    let org = field(&input, "org")?;
    Ok(Prepared {
        bindings: vec![json!(org)],
        run: Box::new(move |db| {
            let db = any_db(db);
            Box::pin(async move { rows(&db, sqlx::query(BY_ORG).bind(org)).await })
        }),
    })
}

fn prepare_by_title(input: Value) -> Result<Prepared, InputError> {
    let org = field(&input, "org")?;
    let title = field(&input, "title")?;
    Ok(Prepared {
        bindings: vec![json!(org), json!(title)],
        run: Box::new(move |db| {
            let db = any_db(db);
            Box::pin(async move { rows(&db, sqlx::query(BY_TITLE).bind(org).bind(title)).await })
        }),
    })
}

fn prepare_create(input: Value) -> Result<Prepared, InputError> {
    let org = field(&input, "org")?;
    let title = field(&input, "title")?;
    Ok(Prepared {
        bindings: vec![json!(org), json!(title)],
        run: Box::new(move |db| {
            let db = any_db(db);
            Box::pin(async move {
                let done = sqlx::query(INSERT)
                    .bind(org)
                    .bind(title)
                    .execute(&db)
                    .await?;
                Ok(serde_json::to_vec(
                    &json!({"inserted": done.rows_affected()}),
                )?)
            })
        }),
    })
}

fn prepare_fail(_input: Value) -> Result<Prepared, InputError> {
    Ok(Prepared {
        bindings: vec![],
        run: Box::new(|_db| {
            Box::pin(async { Err(Error::Internal("secret-internal-detail".into())) })
        }),
    })
}

fn prepare_forbidden(_input: Value) -> Result<Prepared, InputError> {
    Ok(Prepared {
        bindings: vec![],
        run: Box::new(|_db| Box::pin(async { Err(Error::Forbidden("not yours".into())) })),
    })
}

fn prepare_whoami(_input: Value) -> Result<Prepared, InputError> {
    Ok(Prepared {
        bindings: vec![],
        run: Box::new(|_db| {
            Box::pin(async {
                let p = reactive_runtime::router::current_principal();
                Ok(serde_json::to_vec(
                    &p.map(|p| format!("{}/{}", p.tenant, p.subject)),
                )?)
            })
        }),
    })
}

macro_rules! by_org_fn {
    ($def:ident, $name:literal, $push:literal) => {
        pub static $def: FunctionDef = FunctionDef::by_hand(
            concat!(
                r#"{"name":""#, $name, r#"","rust_name":"by_org","kind":"query","requires_ack":false,"push":"#, $push, r#","dialect":"sqlite","#,
                r#""bindings":[{"source":"input.org","path":["org"]}],"#,
                r#""dependencies":[{"table":"rt_item","keys":[{"column":"org","values":[{"binding":0}]}]}],"#,
                r#""invalidates":[],"statements":[{"sql":"SELECT id, org, title FROM rt_item WHERE org = $1","analysis":"#,
                r#"{"operation":"select","reads":[{"table":"rt_item","filter":{"rows":"keys","keys":[{"column":"org","values":[{"param":{"index":1}}]}]}}],"writes":[],"returning":false,"unknown":null}"#,
                r#","params":[0]}],"calls":[]}"#
            ),
            prepare_by_org,
        );
    };
}
by_org_fn!(BY_ORG_DEF, "rt.items.byOrg", "false");
// The same query as a `push` function.
by_org_fn!(BY_ORG_PUSHED_DEF, "rt.items.byOrgPushed", "true");

pub static BY_TITLE_DEF: FunctionDef = FunctionDef::by_hand(
    concat!(
        r#"{"name":"rt.items.byTitle","rust_name":"by_title","kind":"query","requires_ack":false,"dialect":"sqlite","#,
        r#""bindings":[{"source":"input.org","path":["org"]},{"source":"input.title","path":["title"]}],"#,
        r#""dependencies":[{"table":"rt_item","keys":[{"column":"org","values":[{"binding":0}]},{"column":"title","values":[{"binding":1}]}]}],"#,
        r#""invalidates":[],"statements":[{"sql":"SELECT id, org, title FROM rt_item WHERE org = $1 AND title = $2","analysis":"#,
        r#"{"operation":"select","reads":[{"table":"rt_item","filter":{"rows":"keys","keys":[{"column":"org","values":[{"param":{"index":1}}]},{"column":"title","values":[{"param":{"index":2}}]}]}}],"writes":[],"returning":false,"unknown":null}"#,
        r#","params":[0,1]}],"calls":[]}"#
    ),
    prepare_by_title,
);

macro_rules! create_fn {
    ($def:ident, $name:literal, $ack:literal) => {
        pub static $def: FunctionDef = FunctionDef::by_hand(
            concat!(
                r#"{"name":""#, $name, r#"","rust_name":"create","kind":"mutation","requires_ack":"#, $ack, r#","dialect":"sqlite","#,
                r#""bindings":[{"source":"input.org","path":["org"]},{"source":"input.title","path":["title"]}],"#,
                r#""dependencies":[],"invalidates":[],"statements":[{"sql":"INSERT INTO rt_item (org, title) VALUES ($1, $2)","analysis":"#,
                r#"{"operation":"insert","reads":[],"writes":[{"table":"rt_item","operation":"insert","filter":{"rows":"all"},"set":[],"inserted":[[{"column":"org","value":{"param":{"index":1}}},{"column":"title","value":{"param":{"index":2}}}]]}],"returning":false,"unknown":null}"#,
                r#","params":[0,1]}],"calls":[]}"#
            ),
            prepare_create,
        );
    };
}
create_fn!(CREATE_DEF, "rt.items.create", "false");
create_fn!(CREATE_ACKED_DEF, "rt.items.createAcked", "true");

macro_rules! simple_query {
    ($def:ident, $name:literal, $prepare:ident) => {
        pub static $def: FunctionDef = FunctionDef::by_hand(
            concat!(
                r#"{"name":""#, $name, r#"","rust_name":"f","kind":"query","requires_ack":false,"dialect":"sqlite","#,
                r#""bindings":[],"dependencies":[{"table":"rt_other","keys":[]}],"invalidates":[],"statements":[],"calls":[]}"#
            ),
            $prepare,
        );
    };
}
simple_query!(FAIL_DEF, "rt.fail", prepare_fail);
simple_query!(FORBIDDEN_DEF, "rt.forbidden", prepare_forbidden);
simple_query!(WHOAMI_DEF, "rt.whoami", prepare_whoami);

/// Every function of the harness (registered with the router explicitly: a
/// `FunctionDef` holds a `OnceLock` and cannot go through `inventory::submit!`).
pub fn functions() -> Vec<&'static FunctionDef> {
    vec![
        &BY_ORG_DEF,
        &BY_ORG_PUSHED_DEF,
        &BY_TITLE_DEF,
        &CREATE_DEF,
        &CREATE_ACKED_DEF,
        &FAIL_DEF,
        &FORBIDDEN_DEF,
        &WHOAMI_DEF,
    ]
}

/// Keeps `SELECT_BY_ORG` referenced (documentation of the literal above).
pub fn select_by_org_analysis() -> &'static str {
    SELECT_BY_ORG
}

// ---------------------------------------------------------------- authorizer

/// `Authorization: Bearer <tenant>:<subject>[:<ttl ms>]`; `x-revoked` tokens listed in
/// `revoked` fail. Inputs with an `org` other than the caller's tenant are forbidden;
/// with `deny_whole` set, so are procedure-name and `*` subscriptions.
#[derive(Default, Clone)]
pub struct TokenAuth {
    pub revoked: Arc<AtomicBool>,
    pub deny_whole: Arc<AtomicBool>,
}

impl Authorizer for TokenAuth {
    fn authorize<'a>(
        &'a self,
        parts: &'a axum::http::request::Parts,
    ) -> futures::future::BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(async move {
            if self.revoked.load(Ordering::SeqCst) {
                return Err(AuthError::Unauthorized("revoked".into()));
            }
            let token = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| AuthError::Unauthorized("missing bearer token".into()))?;
            let mut it = token.split(':');
            let (Some(tenant), Some(subject)) = (it.next(), it.next()) else {
                return Err(AuthError::Unauthorized("bad token".into()));
            };
            let mut p = Principal::new(tenant, subject);
            if let Some(ttl) = it.next().and_then(|t| t.parse::<u64>().ok()) {
                p.expires_at = Some(SystemTime::now() + Duration::from_millis(ttl));
            }
            Ok(p)
        })
    }

    fn check_input<'a>(
        &'a self,
        principal: &'a Principal,
        _procedure: &'a str,
        input: &'a Value,
    ) -> futures::future::BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            match input.get("org").and_then(Value::as_str) {
                Some(org) if org != principal.tenant => {
                    Err(AuthError::Forbidden("another organization".into()))
                }
                _ => Ok(()),
            }
        })
    }

    fn check_subscription<'a>(
        &'a self,
        _principal: &'a Principal,
        _procedure: Option<&'a str>,
    ) -> futures::future::BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            if self.deny_whole.load(Ordering::SeqCst) {
                Err(AuthError::Forbidden("whole-procedure subscriptions".into()))
            } else {
                Ok(())
            }
        })
    }
}

// ---------------------------------------------------------------- server

pub struct Server {
    pub base: String,
    pub db: ReactiveDb<sqlx::Any>,
    pub auth: TokenAuth,
    pub realtime: reactive_runtime::realtime::Realtime,
    pub http: reqwest::Client,
}

pub async fn memory_db() -> ReactiveDb<sqlx::Any> {
    let db = ReactiveDb::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    sqlx::query("CREATE TABLE rt_item (id INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, title TEXT NOT NULL)")
        .execute(db.pool())
        .await
        .expect("create table");
    db
}

/// Which HTTP server runs the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `reactive_runtime::serve` (event streams on the bare socket).
    Reactive,
    /// `axum::serve` (hyper for everything).
    Axum,
}

pub async fn serve(
    db: ReactiveDb<sqlx::Any>,
    configure: impl FnOnce(RouterConfig) -> RouterConfig,
) -> Server {
    serve_on(Transport::Reactive, db, configure).await
}

pub async fn serve_on(
    transport: Transport,
    db: ReactiveDb<sqlx::Any>,
    configure: impl FnOnce(RouterConfig) -> RouterConfig,
) -> Server {
    let auth = TokenAuth::default();
    let config = configure(RouterConfig::new(auth.clone()).functions(functions()));
    let realtime = config.realtime.clone();
    let app = reactive_runtime::Reactive::builder()
        .database(db.clone())
        .http(config)
        .build()
        .await
        .expect("wire the router")
        .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        match transport {
            Transport::Reactive => reactive_runtime::serve(listener, app).await,
            Transport::Axum => axum::serve(listener, app).await,
        }
        .expect("serve");
    });
    Server {
        base: format!("http://{addr}"),
        db,
        auth,
        realtime,
        http: reqwest::Client::new(),
    }
}

pub async fn start() -> Server {
    serve(memory_db().await, |c| c).await
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST /rpc/{name} as `tenant:subject`.
    pub async fn post(&self, token: &str, name: &str, input: Value) -> (u16, Value) {
        let res = self
            .http
            .post(self.url(&format!("/rpc/{name}")))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(input.to_string())
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Opens an SSE stream with these query parameters.
    pub async fn events(
        &self,
        token: &str,
        query: &[(&str, &str)],
        last_event_id: Option<&str>,
    ) -> Sse {
        let mut req = self
            .http
            .get(self.url("/events"))
            .header("accept", "text/event-stream")
            .bearer_auth(token)
            .query(query);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let res = req.send().await.expect("events request");
        assert_eq!(res.status().as_u16(), 200, "events status");
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Sse {
            stream: Box::pin(res.bytes_stream()),
            buf: String::new(),
        }
    }
}

// ---------------------------------------------------------------- SSE reader

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub retry: Option<String>,
    pub comment: bool,
}

impl Frame {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().unwrap_or("null")).expect("data is JSON")
    }
}

pub struct Sse {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    /// Reads any `text/event-stream` response (the dev tools' feed, say).
    pub fn from_response(res: reqwest::Response) -> Sse {
        Sse {
            stream: Box::pin(res.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next frame (comments included), or `None` at the end of the stream or timeout.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let mut f = Frame::default();
                for line in raw.lines() {
                    if line.starts_with(':') {
                        f.comment = true;
                        continue;
                    }
                    let (k, v) = line.split_once(':').unwrap_or((line, ""));
                    let v = v.strip_prefix(' ').unwrap_or(v).to_string();
                    match k {
                        "id" => f.id = Some(v),
                        "event" => f.event = Some(v),
                        "data" => f.data = Some(v),
                        "retry" => f.retry = Some(v),
                        _ => {}
                    }
                }
                return Some(f);
            }
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self
                    .buf
                    .push_str(std::str::from_utf8(&chunk).expect("utf8")),
                _ => return None,
            }
        }
    }

    /// The next `invalidate` or `reset` frame within `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self.next_within(left).await?;
            if matches!(f.event.as_deref(), Some("invalidate" | "reset" | "close")) {
                return Some(f);
            }
        }
    }

    /// Reads the `retry` + `ready` preamble; returns the ready data.
    pub async fn ready(&mut self) -> Value {
        let retry = self
            .next_within(Duration::from_secs(5))
            .await
            .expect("retry frame");
        assert_eq!(retry.retry.as_deref(), Some("3000"));
        let ready = self
            .next_within(Duration::from_secs(5))
            .await
            .expect("ready frame");
        assert_eq!(ready.event.as_deref(), Some("ready"));
        ready.json()
    }
}

pub const SHORT: Duration = Duration::from_millis(400);
pub const LONG: Duration = Duration::from_secs(5);
