//! The dev tools page: one HTML/JS file from the binary at a path the app chooses,
//! its state as JSON (`{path}/state`), a live feed (`{path}/stream`, SSE: `trace`
//! records as invalidations happen, `delivery` records as events are queued to this
//! instance's streams, `state` every second) and one page of the cached
//! entries (`{path}/cache?tenant=…&limit=…`, JSON, on demand: listing costs the store
//! a walk). Every request passes the app's [`Authorizer`](super::Authorizer) and then
//! its admin check: `401`, `403`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::broadcast;

use super::auth::{AuthError, Principal};
use super::error::ApiError;
use super::{AppState, State as RouterState};
use crate::observe::devtools::DevTools;
use crate::seams::ListQuery;

const PAGE: &str = include_str!("devtools.html");

/// How often the live feed sends the state (timings, streams, engine counters).
const STATE_EVERY: Duration = Duration::from_secs(1);

/// Settings of the dev tools page ([`RouterConfig::devtools`](super::RouterConfig::devtools)).
#[derive(Clone)]
pub struct DevToolsConfig {
    /// Where the page is served, inside the router (`/devtools`).
    pub path: String,
    /// Served at all: default on in debug builds only, so a release build serves the
    /// page only when the app turns it on.
    pub enabled: bool,
    /// Most bytes the invalidation trace keeps (default 256 KiB; oldest records leave).
    pub trace_bytes: usize,
    /// Whether a principal (already accepted by the authorizer) may see the page, which
    /// shows every tenant's procedures, inputs and streams.
    pub admin: Arc<dyn Fn(&Principal) -> bool + Send + Sync>,
}

impl DevToolsConfig {
    /// The page at `path` for the principals `admin` accepts.
    pub fn new(
        path: impl Into<String>,
        admin: impl Fn(&Principal) -> bool + Send + Sync + 'static,
    ) -> Self {
        DevToolsConfig {
            path: path.into(),
            enabled: cfg!(debug_assertions),
            trace_bytes: 256 << 10,
            admin: Arc::new(admin),
        }
    }

    /// Turns the page on or off (a release build needs this to serve it).
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// Sets the trace's byte bound.
    pub fn trace_bytes(mut self, bytes: usize) -> Self {
        self.trace_bytes = bytes;
        self
    }
}

/// The app's authorizer, then its admin check.
async fn admit(state: &RouterState, parts: &Parts) -> Result<(), ApiError> {
    let principal = state.config.authorizer.authorize(parts).await?;
    let allowed = state
        .config
        .devtools
        .as_ref()
        .is_some_and(|d| (d.admin)(&principal));
    if allowed {
        Ok(())
    } else {
        Err(AuthError::Forbidden("the dev tools are for administrators".into()).into())
    }
}

/// The page's state: per-procedure timings, open streams, engine counters, trace size.
fn state_json(state: &RouterState, tools: &DevTools) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "timings": tools.timings(),
        "streams": state.realtime().hub().streams(),
        "engine": state.db.engine_stats(),
        "traceBytes": tools.trace_bytes(),
    }))
    .unwrap_or_default()
}

fn frame(event: &str, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + event.len() + 16);
    out.put_slice(b"event: ");
    out.put_slice(event.as_bytes());
    out.put_slice(b"\ndata: ");
    out.put_slice(data);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// `GET {path}`: the page.
pub(crate) async fn page(State(state): State<AppState>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    if let Err(e) = admit(&state, &parts).await {
        return e.into_response();
    }
    let mut res = Response::new(Body::from(PAGE));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `GET {path}/state`: the state, the whole trace and the recent deliveries, as JSON.
pub(crate) async fn snapshot(State(state): State<AppState>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    if let Err(e) = admit(&state, &parts).await {
        return e.into_response();
    }
    let Some(tools) = state.devtools.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut body = b"{\"state\":".to_vec();
    body.extend_from_slice(&state_json(&state, tools));
    body.extend_from_slice(b",\"trace\":[");
    for (i, record) in tools.trace().iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record);
    }
    body.extend_from_slice(b"],\"deliveries\":[");
    for (i, record) in tools.deliveries().iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record);
    }
    body.extend_from_slice(b"]}");
    let mut res = Response::new(Body::from(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Entries one `{path}/cache` page lists by default, and at most.
const CACHE_PAGE: usize = 100;
const CACHE_PAGE_MAX: usize = 1000;
/// Bytes of keys and read sets one `{path}/cache` page holds at most.
const CACHE_PAGE_BYTES: usize = 256 << 10;

/// `GET {path}/cache?tenant=…&limit=…`: one page of the cached entries (of one tenant,
/// or every tenant's), as JSON: `{"store", "listed", "entries", "more", "moreExact"}`;
/// `listed: false` when the store cannot list.
pub(crate) async fn cache(State(state): State<AppState>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    if let Err(e) = admit(&state, &parts).await {
        return e.into_response();
    }
    if state.devtools.is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let pairs: Vec<(String, String)> =
        match serde_urlencoded::from_str(parts.uri.query().unwrap_or("")) {
            Ok(p) => p,
            Err(e) => {
                return ApiError::bad_request(format!("bad query string: {e}")).into_response();
            }
        };
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let limit = match param("limit").map(|v| v.parse::<usize>()) {
        None => CACHE_PAGE,
        Some(Ok(n)) => n.min(CACHE_PAGE_MAX),
        Some(Err(_)) => return ApiError::bad_request("bad limit").into_response(),
    };
    let query = ListQuery {
        tenant: param("tenant").filter(|t| !t.is_empty()).cloned(),
        max_entries: limit,
        max_bytes: CACHE_PAGE_BYTES,
    };
    let store = state.db.cache_store();
    let page = match store.list(&query).await {
        Ok(page) => page,
        // `internal` logs it.
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let body = serde_json::to_vec(&serde_json::json!({
        "store": store.name(),
        "listed": page.is_some(),
        "entries": page.as_ref().map_or(&[][..], |p| &p.entries[..]),
        "more": page.as_ref().map_or(0, |p| p.more),
        "moreExact": page.as_ref().is_none_or(|p| p.more_exact),
    }))
    .unwrap_or_default();
    let mut res = Response::new(Body::from(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

struct Feed {
    state: AppState,
    tools: DevTools,
    /// The trace and the deliveries so far, sent first.
    backlog: std::vec::IntoIter<(&'static str, Bytes)>,
    live: broadcast::Receiver<Bytes>,
    live_deliveries: broadcast::Receiver<Bytes>,
    tick: tokio::time::Interval,
}

impl Feed {
    async fn next(&mut self) -> Option<Bytes> {
        if let Some((event, record)) = self.backlog.next() {
            return Some(frame(event, &record));
        }
        loop {
            tokio::select! {
                record = self.live.recv() => match record {
                    Ok(record) => return Some(frame("trace", &record)),
                    // A page too slow for the feed skips records; `/state` has them.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                record = self.live_deliveries.recv() => match record {
                    Ok(record) => return Some(frame("delivery", &record)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.tick.tick() => {
                    return Some(frame("state", &state_json(&self.state, &self.tools)));
                }
            }
        }
    }
}

/// `GET {path}/stream`: the live feed.
pub(crate) async fn stream(State(state): State<AppState>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    if let Err(e) = admit(&state, &parts).await {
        return e.into_response();
    }
    let Some(tools) = state.devtools.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Subscribe before reading the backlog: a record appended meanwhile may come twice
    // (the page skips a `seq` it has), never not at all.
    let live = tools.subscribe();
    let live_deliveries = tools.subscribe_deliveries();
    let backlog: Vec<(&'static str, Bytes)> = tools
        .trace()
        .into_iter()
        .map(|r| ("trace", r))
        .chain(tools.deliveries().into_iter().map(|r| ("delivery", r)))
        .collect();
    let feed = Feed {
        backlog: backlog.into_iter(),
        live,
        live_deliveries,
        tick: tokio::time::interval(STATE_EVERY),
        tools,
        state,
    };
    let body = Body::from_stream(futures::stream::unfold(feed, |mut feed| async move {
        feed.next()
            .await
            .map(|b| (Ok::<Bytes, Infallible>(b), feed))
    }));
    super::events::event_stream(body)
}
