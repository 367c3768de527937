//! `GET /events` (SSE), `POST /events/ack`, `GET /poll`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use tokio::time::Instant;

use super::auth::{Authorizer, Principal};
use super::error::ApiError;
use super::rpc::{authorize, read_body, require_json};
use super::{AppState, State as RouterState};
use crate::realtime::{
    CloseReason, ConnGuard, Outgoing, ParsedEntry, Slot, SubscribeError, Subscription,
    UNKNOWN_EVENT_ID, parse_entry, with_results,
};
use crate::seams::{AckMessage, RealtimeError, Replay};
use crate::types::{EventId, reset_frame};

fn query_pairs(parts: &Parts) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))
}

/// A client's last event id (`Last-Event-ID`, `lastEventId`, `since`). Text that is not
/// an id is an id the log cannot place, like one too old: the answer is `reset`, not
/// `400`, because a browser's `EventSource` never reconnects after a non-200 answer.
fn read_id(text: &str) -> EventId {
    text.parse().unwrap_or(UNKNOWN_EVENT_ID)
}

/// A replay that failed on a corrupt stored event (the log answers, but cannot give
/// what follows the client's id): a reset to `head`, so that the client moves past it
/// instead of asking for it again. Other failures (the log unreachable) stay errors.
fn readable_reset(e: RealtimeError, head: EventId) -> Result<Replay, RealtimeError> {
    match e {
        RealtimeError::Corrupt(_) if head != UNKNOWN_EVENT_ID => {
            tracing::error!(error = %e, "a stored event could not be read; the client is reset");
            Ok(Replay::Reset { head })
        }
        e => Err(e),
    }
}

/// `reset` without an id: revalidate everything, keep your last id.
const RESET_NO_ID: &[u8] = b"event: reset\ndata: {\"eventId\":null}\n\n";

/// Parses, limits, authorizes and builds a subscription from `subscribe` parameters.
/// Every entry is authorized: query keys by [`Authorizer::check_input`], procedure
/// names and `*` by [`Authorizer::check_subscription`]. Entries are canonicalized and
/// deduplicated before the subscription is looked up or built.
async fn subscription(
    state: &RouterState,
    principal: &Principal,
    pairs: &[(String, String)],
    default_all: bool,
) -> Result<Subscription, ApiError> {
    let raw: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "subscribe")
        .map(|(_, v)| v.as_str())
        .collect();
    let cfg = &state.config;
    if raw.is_empty() && default_all {
        cfg.authorizer.check_subscription(principal, None).await?;
        return Ok(Subscription::all());
    }
    if raw.len() > cfg.max_subscriptions {
        return Err(ApiError::bad_input(
            format!(
                "{} subscription entries; at most {} are allowed",
                raw.len(),
                cfg.max_subscriptions
            ),
            "subscribe",
        ));
    }
    let realtime = state.realtime();
    let max_bytes = realtime.hub().config().max_subscription_bytes;
    let total: usize = raw.iter().map(|t| t.len()).sum();
    if total > max_bytes {
        return Err(ApiError::bad_input(
            format!("subscription entries of {total} bytes; at most {max_bytes} are allowed"),
            "subscribe",
        ));
    }
    // Canonical texts, each once, with the index of the entry it came from (for errors).
    let mut texts: Vec<String> = Vec::with_capacity(raw.len());
    let mut origin: Vec<usize> = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        if text.len() > cfg.max_entry_len {
            return Err(ApiError::bad_input(
                format!("subscription entry longer than {} bytes", cfg.max_entry_len),
                format!("subscribe[{i}]"),
            ));
        }
        let parsed =
            parse_entry(text).map_err(|m| ApiError::bad_input(m, format!("subscribe[{i}]")))?;
        let name = match &parsed {
            ParsedEntry::Query(name, input) => {
                cfg.authorizer.check_input(principal, name, input).await?;
                Some(*name)
            }
            ParsedEntry::Procedure(name) => {
                cfg.authorizer
                    .check_subscription(principal, Some(name))
                    .await?;
                Some(*name)
            }
            ParsedEntry::All => {
                cfg.authorizer.check_subscription(principal, None).await?;
                None
            }
        };
        if let Some(def) = name.and_then(|n| state.function(n)) {
            state.db.ensure_schema(def).await;
        }
        let canonical = parsed.canonical();
        if !texts.contains(&canonical) {
            texts.push(canonical);
            origin.push(i);
        }
    }
    let build = || {
        Subscription::build(&texts, |n| state.function(n), &|def, bindings| {
            let reads = state.db.read_set(def, bindings);
            // Events must keep the columns this entry filters on.
            realtime.key_columns().watch_reads(&reads);
            reads
        })
    };
    realtime
        .hub()
        .subscriptions()
        .get_or_build(&texts, build)
        .map_err(|e| match e {
            SubscribeError::UnknownProcedure { index, name } => ApiError {
                path: Some(format!("subscribe[{}]", origin[index])),
                ..ApiError::not_found(format!("unknown procedure `{name}`"))
            },
            SubscribeError::Invalid {
                index,
                message,
                path,
            } => {
                let index = origin[index];
                let path = match path.as_deref() {
                    None | Some(".") => format!("subscribe[{index}]"),
                    Some(p) => format!("subscribe[{index}].{p}"),
                };
                ApiError::bad_input(message, path)
            }
        })
}

/// `GET /events`.
pub(crate) async fn sse(State(state): State<AppState>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    match open(state, parts).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn open(state: AppState, parts: Parts) -> Result<Response, ApiError> {
    let principal = authorize(&state, &parts).await?;
    let pairs = query_pairs(&parts)?;
    let subscription = subscription(&state, &principal, &pairs, false).await?;
    let last = match parts
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
    {
        Some(v) => Some(read_id(v)),
        None => match pairs.iter().find(|(k, _)| k == "lastEventId") {
            Some((_, v)) if !v.trim().is_empty() => Some(read_id(v)),
            _ => None,
        },
    };
    let realtime = state.realtime();
    realtime.start();
    let tenant = principal.tenant.clone();
    // Register before reading the log: an event appended meanwhile is either in the
    // replay or arrives live (duplicates are skipped by id), never lost.
    let guard = realtime
        .hub()
        .register(&tenant, &principal.subject, subscription)
        .map_err(|e| ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_streams",
            ..ApiError::bad_request(format!("{e}: close another stream of this user, or poll"))
        })?;
    // The log unreachable (Redis down) is no reason to refuse the stream: live events
    // still arrive once it is back; `ready` then carries the unknown id.
    let head = realtime.head(&tenant).await.unwrap_or(UNKNOWN_EVENT_ID);
    let mut outbox = VecDeque::new();
    outbox.push_back(Bytes::from(format!(
        "retry: {}\n\nevent: ready\ndata: {{\"connectionId\":\"{}\",\"eventId\":\"{}\"}}\n\n",
        state.config.retry_ms,
        guard.conn().token(),
        head
    )));
    let mut skip = EventId(0);
    if let Some(last) = last {
        match realtime
            .since(&tenant, last)
            .await
            .or_else(|e| readable_reset(e, head))
        {
            Ok(Replay::Events { events, head }) => {
                let conn = guard.conn();
                let limit = realtime.hub().config().queue_bytes;
                let mut replay = Vec::new();
                let mut bytes = 0;
                for ev in events {
                    if let Some(tail) = conn.subscription().match_tail(&ev) {
                        bytes += ev.frame_head().len() + tail.len();
                        if bytes > limit {
                            break;
                        }
                        replay.push((ev, tail));
                    }
                }
                if bytes > limit {
                    // A replay longer than a live queue may hold: as for a live
                    // overflow, the client revalidates everything instead.
                    outbox.push_back(reset_frame(head));
                } else {
                    for (ev, tail) in replay {
                        if ev.requires_ack() {
                            conn.sent_needing_ack(ev.clone(), tail.clone());
                        }
                        outbox.push_back(ev.frame_head());
                        outbox.push_back(tail);
                    }
                }
                skip = head;
            }
            Ok(Replay::Reset { head }) => {
                outbox.push_back(reset_frame(head));
                skip = head;
            }
            // What the client missed cannot be read now: it revalidates everything and
            // keeps its id (events lost meanwhile are repaired, see `Realtime`).
            Err(_) => outbox.push_back(Bytes::from_static(RESET_NO_ID)),
        }
    }
    let cfg = &state.config;
    let now = Instant::now();
    let stream = SseStream {
        guard,
        outbox,
        skip,
        heartbeat: cfg.heartbeat.map(|p| tokio::time::interval_at(now + p, p)),
        expires: principal.expires_at.map(to_instant),
        recheck: cfg.reauthorize_every.map(|every| Recheck {
            every,
            next: now + every,
            parts: clone_head(&parts),
            authorizer: cfg.authorizer.clone(),
        }),
        principal,
        done: false,
        pushed: SentResults::default(),
    };
    let body = Body::from_stream(futures::stream::unfold(stream, |mut st| async move {
        st.next().await.map(|b| (Ok::<Bytes, Infallible>(b), st))
    }));
    Ok(event_stream(body))
}

/// A `text/event-stream` response, unbuffered by proxies.
pub(crate) fn event_stream(body: Body) -> Response {
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

fn to_instant(t: SystemTime) -> Instant {
    let left = t
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + left
}

fn clone_head(parts: &Parts) -> Parts {
    let mut req = Request::new(());
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.headers_mut() = parts.headers.clone();
    req.into_parts().0
}

struct Recheck {
    every: Duration,
    next: Instant,
    parts: Parts,
    authorizer: Arc<dyn Authorizer>,
}

struct SseStream {
    guard: ConnGuard,
    outbox: VecDeque<Bytes>,
    /// Live events up to this id were covered by the replay (or the reset).
    skip: EventId,
    heartbeat: Option<tokio::time::Interval>,
    expires: Option<Instant>,
    recheck: Option<Recheck>,
    principal: Principal,
    done: bool,
    /// The pushed results this stream sent last, per key.
    pushed: SentResults,
}

/// The result slot each pushed key of a stream last sent: the later events of a burst
/// share their round's result, which the client then already holds (their frames go
/// without it).
#[derive(Default)]
struct SentResults(Vec<Arc<Slot>>);

impl SentResults {
    /// The `(key, value)` pairs of `slots` this stream has not sent yet, once computed
    /// (waiting at most `wait` in all: a round that never ends costs its value, not the
    /// stream).
    async fn take_new(&mut self, slots: &[Arc<Slot>], wait: Duration) -> Vec<(Bytes, Bytes)> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        for slot in slots {
            if self.0.iter().any(|s| Arc::ptr_eq(s, slot)) {
                continue;
            }
            self.0.retain(|s| s.key != slot.key);
            self.0.push(slot.clone());
            if let Ok(Some(value)) = tokio::time::timeout_at(deadline, slot.wait()).await {
                out.push((slot.key.clone(), value.clone()));
            }
        }
        out
    }
}

/// The heartbeat: an event (not a `:` comment, which the browser's `EventSource` hides)
/// so that a client can tell a live idle stream from a dead one; no `id:` line, so it
/// does not move the client's Last-Event-ID.
const PING: &[u8] = b"event: ping\ndata:\n\n";
const CLOSE_UNAUTHORIZED: &[u8] = b"event: close\ndata: {\"reason\":\"unauthorized\"}\n\n";

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl SseStream {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(b) = self.outbox.pop_front() {
                return Some(b);
            }
            if self.done {
                return None;
            }
            let conn = self.guard.conn().clone();
            let resend_at = conn.next_resend();
            let auth_at = match (self.expires, self.recheck.as_ref().map(|r| r.next)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                biased;
                item = conn.next() => match item {
                    Ok(Outgoing::Event { event, tail, frame, results }) => {
                        if event.id() <= self.skip {
                            continue;
                        }
                        if event.requires_ack() {
                            conn.sent_needing_ack(event, tail);
                        }
                        match results {
                            None => self.outbox.push_back(frame),
                            Some(slots) => {
                                let wait = conn.push_wait();
                                let results = self.pushed.take_new(&slots, wait).await;
                                self.outbox.extend(with_results(&frame, &results));
                            }
                        }
                    }
                    Ok(Outgoing::Raw(b)) => self.outbox.push_back(b),
                    Err(CloseReason::Lagged) => self.done = true,
                    Err(CloseReason::Reset) => {
                        self.outbox.push_back(Bytes::from_static(RESET_NO_ID));
                        self.done = true;
                    }
                },
                _ = sleep_until(resend_at) => {
                    self.outbox.extend(conn.due_resends(Instant::now()));
                }
                _ = tick(self.heartbeat.as_mut()) => {
                    self.outbox.push_back(Bytes::from_static(PING));
                }
                _ = sleep_until(auth_at) => {
                    if !self.still_authorized().await {
                        self.outbox.push_back(Bytes::from_static(CLOSE_UNAUTHORIZED));
                        self.done = true;
                    }
                }
            }
        }
    }

    async fn still_authorized(&mut self) -> bool {
        let now = Instant::now();
        if self.expires.is_some_and(|e| e <= now) {
            return false;
        }
        if let Some(r) = self.recheck.as_mut()
            && r.next <= now
        {
            match r.authorizer.authorize(&r.parts).await {
                Ok(p)
                    if p.tenant == self.principal.tenant && p.subject == self.principal.subject =>
                {
                    self.expires = p.expires_at.map(to_instant);
                    r.next = Instant::now() + r.every;
                }
                _ => return false,
            }
        }
        true
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AckBody {
    event_id: EventId,
    #[serde(default)]
    connection_id: Option<String>,
}

/// `POST /events/ack`.
pub(crate) async fn ack(State(state): State<AppState>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let result = async {
        let principal = authorize(&state, &parts).await?;
        require_json(&parts.headers)?;
        let bytes = read_body(body, &parts.headers, state.config.body_limit).await?;
        let ack: AckBody = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_input(
                format!("expected {{\"eventId\": \"<id>\", \"connectionId\"?: \"..\"}}: {e}"),
                ".",
            )
        })?;
        let forwarded = state
            .realtime()
            .ack(AckMessage {
                tenant: principal.tenant,
                subject: principal.subject,
                connection: ack.connection_id,
                event_id: ack.event_id,
            })
            .await;
        if let Err(e) = forwarded {
            // Applied here, not forwarded (Redis down): a connection on another instance
            // re-sends the event, and the client acknowledges it again.
            tracing::warn!(error = %e, "an ack could not be forwarded to the other instances");
        }
        Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /poll?since=<id>&subscribe=..`.
pub(crate) async fn poll(State(state): State<AppState>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    let result = async {
        let principal = authorize(&state, &parts).await?;
        let pairs = query_pairs(&parts)?;
        let subscription = subscription(&state, &principal, &pairs, true).await?;
        let since = match pairs.iter().find(|(k, _)| k == "since") {
            Some((_, v)) if !v.trim().is_empty() => Some(read_id(v)),
            _ => None,
        };
        let realtime = state.realtime();
        let tenant = &principal.tenant;
        let mut out = BytesMut::new();
        let nothing_new = |out: &mut BytesMut, id: EventId| {
            out.put_slice(
                format!("{{\"eventId\":\"{id}\",\"reset\":false,\"more\":false,\"events\":[]}}")
                    .as_bytes(),
            )
        };
        match since {
            // The log unreachable (Redis down): the unknown id, which resets once it is back.
            None => nothing_new(
                &mut out,
                realtime.head(tenant).await.unwrap_or(UNKNOWN_EVENT_ID),
            ),
            Some(since) => match match realtime.since(tenant, since).await {
                Err(e @ RealtimeError::Corrupt(_)) => {
                    let head = realtime.head(tenant).await.unwrap_or(UNKNOWN_EVENT_ID);
                    readable_reset(e, head)
                }
                replay => replay,
            } {
                // The log unreachable: nothing known yet; poll again from the same id
                // (what happens meanwhile is replayed, or repaired, once it answers).
                Err(_) => nothing_new(&mut out, since),
                Ok(Replay::Reset { head }) => out.put_slice(
                    format!(
                        "{{\"eventId\":\"{head}\",\"reset\":true,\"more\":false,\"events\":[]}}"
                    )
                    .as_bytes(),
                ),
                Ok(Replay::Events { events, head }) => {
                    // One page: events until the body would exceed the limit (at least
                    // one). `eventId` is then the last event looked at, so the client's
                    // next poll continues right after it.
                    let limit = state.config.max_poll_bytes;
                    let mut body = BytesMut::new();
                    let mut next = head;
                    let mut more = false;
                    let mut first = true;
                    let mut last_seen = since;
                    for ev in events {
                        let mark = body.len();
                        if !first {
                            body.put_u8(b',');
                        }
                        body.put_slice(&ev.data_head());
                        if subscription.write_matches(&ev, &mut body) {
                            body.put_slice(b"]}");
                            if !first && body.len() > limit {
                                body.truncate(mark);
                                next = last_seen;
                                more = true;
                                break;
                            }
                            first = false;
                        } else {
                            body.truncate(mark);
                        }
                        last_seen = ev.id();
                    }
                    out.put_slice(
                        format!(
                            "{{\"eventId\":\"{next}\",\"reset\":false,\"more\":{more},\"events\":["
                        )
                        .as_bytes(),
                    );
                    out.put_slice(&body);
                    out.put_slice(b"]}");
                }
            },
        }
        let mut res = Response::new(Body::from(out.freeze()));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok::<_, ApiError>(res)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
