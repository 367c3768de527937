//! `POST /rpc/{name}` and `GET /rpc/{name}?input=<json>`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use reactive_codegen::model::FunctionKind;
use serde_json::Value;

use std::sync::atomic::Ordering;

use super::auth::{CallOrigin, Principal};
use super::error::ApiError;
use super::{AppState, State as RouterState};
use crate::db::CallError;
use crate::realtime::UNKNOWN_EVENT_ID;
use crate::registry::FunctionDef;
use crate::types::EventId;

/// Authenticates a request head.
pub(crate) async fn authorize(state: &RouterState, parts: &Parts) -> Result<Principal, ApiError> {
    Ok(state.config.authorizer.authorize(parts).await?)
}

pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim();
            m.eq_ignore_ascii_case("application/json")
                || (m.len() > 5 && m[m.len() - 5..].eq_ignore_ascii_case("+json"))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type())
    }
}

/// Reads a body up to the limit (`413` beyond it).
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(ApiError::too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::too_large(limit)
        } else {
            ApiError::bad_request(format!("could not read the request body: {e}"))
        }
    })
}

fn parse_input(text: &[u8]) -> Result<Value, ApiError> {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(text)
        .map_err(|e| ApiError::bad_input(format!("the input is not valid JSON: {e}"), "."))
}

fn lookup(state: &RouterState, name: &str) -> Result<&'static FunctionDef, ApiError> {
    state.function(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown procedure `{}`",
            name.chars().take(128).collect::<String>()
        ))
    })
}

/// `POST /rpc/{name}`.
pub(crate) async fn post_rpc(
    State(state): State<AppState>,
    Path(name): Path<String>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let result = async {
        let principal = authorize(&state, &parts).await?;
        let def = lookup(&state, &name)?;
        require_json(&parts.headers)?;
        let bytes = read_body(body, &parts.headers, state.config.body_limit).await?;
        let input = parse_input(&bytes)?;
        call(&state, def, principal, input).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /rpc/{name}?input=<json>`: queries only.
pub(crate) async fn get_rpc(
    State(state): State<AppState>,
    Path(name): Path<String>,
    req: axum::extract::Request,
) -> Response {
    let (parts, _body) = req.into_parts();
    let result = async {
        let principal = authorize(&state, &parts).await?;
        let def = lookup(&state, &name)?;
        if def.model().kind != FunctionKind::Query {
            return Err(ApiError::method_not_allowed(format!(
                "`{name}` is a mutation: call it with POST"
            )));
        }
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
                .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
        let input = match pairs.iter().find(|(k, _)| k == "input") {
            Some((_, v)) => parse_input(v.as_bytes())?,
            None => Value::Null,
        };
        call(&state, def, principal, input).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn call(
    state: &RouterState,
    def: &'static FunctionDef,
    principal: Principal,
    input: Value,
) -> Result<Response, ApiError> {
    let model = def.model();
    state
        .config
        .authorizer
        .check_input(&principal, &model.name, &input)
        .await?;
    let realtime = state.realtime();
    let tenant = principal.tenant.clone();
    // The watermark of a read is taken before it runs: every event up to it is
    // reflected in what the read sees (a write appends its event before returning).
    // An unreachable log (Redis down) does not fail the read: the database still
    // answers, and the unknown id makes the client revalidate once the log is back.
    let before = realtime.head(&tenant).await.unwrap_or(UNKNOWN_EVENT_ID);
    let started = state.devtools.as_ref().map(|_| std::time::Instant::now());
    let origin = CallOrigin::for_call(principal, model.requires_ack);
    let output = state
        .db
        .call(def, origin.clone(), input, before.0)
        .await
        .map_err(|e| match e {
            CallError::Input(e) => ApiError::bad_input(e.to_string(), e.path),
            CallError::Handler(e) => ApiError::from_handler(Some(&model.name), e),
            e @ CallError::Backend { .. } => ApiError::internal(&e),
        })?;
    if let (Some(tools), Some(started)) = (&state.devtools, started) {
        tools.record_call(
            &model.name,
            output.source,
            started.elapsed(),
            output.statements,
        );
    }
    // A mutation's watermark is the id of its own event, which its output reflects, read
    // from what it published (not the log's head afterwards: that costs a round trip,
    // can fail after the write committed, and may name a concurrent write the output
    // does not reflect). The write committed, so nothing here fails: if its event
    // could not be recorded, the unknown id (revalidate once the log is back).
    let watermark = if model.kind == FunctionKind::Mutation {
        let events = origin.events();
        if events.failed.load(Ordering::SeqCst) {
            UNKNOWN_EVENT_ID
        } else {
            match events.newest.load(Ordering::SeqCst) {
                0 => before,
                id => EventId(id),
            }
        }
    } else {
        // Not `before`: a query that joined another request's computation answers with
        // that request's watermark, which is what its value reflects: its own would claim
        // changes the shared value may not include.
        EventId(output.watermark)
    };
    let id = watermark.to_string();
    let mut body = BytesMut::with_capacity(output.bytes.len() + id.len() + 24);
    body.put_slice(b"{\"data\":");
    body.put_slice(&output.bytes);
    body.put_slice(b",\"eventId\":\"");
    body.put_slice(id.as_bytes());
    body.put_slice(b"\"}");
    let mut res = Response::new(Body::from(body.freeze()));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
