//! Redis-backed event log and bus (feature `redis`), for several instances.
//!
//! - [`RedisLog`]: per tenant, a counter `{prefix}:seq:{tenant}` and a stream
//!   `{prefix}:log:{tenant}` capped in entries and in bytes (the payload bytes it holds
//!   are counted in `{prefix}:bytes:{tenant}`). A Lua script increments the counter,
//!   appends the entry with stream id `<n>-0` and trims the oldest entries atomically,
//!   so ids are contiguous per tenant, the stream is in id order, and every instance
//!   sees the same ids. (Trimming uses `XTRIM MINID` and exclusive `XRANGE` bounds:
//!   Redis 6.2 or later.) A tenant's counter starts at the
//!   Redis server's time in microseconds, so ids still increase if the keys are lost,
//!   and a client's id from before is recognised as unknown (→ reset).
//! - [`RedisBus`]: one pub/sub channel `{prefix}:bus`; a background task per instance
//!   reads it into a local broadcast channel. When that subscription drops and
//!   reconnects, messages may have been missed: it emits [`BusMessage::Resync`], and the
//!   hub closes its streams so clients replay from the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::observe::metrics;
use crate::seams::RealtimeError;
use crate::seams::{AckMessage, BusMessage, EventBus, RemoteChanges};
use crate::seams::{EventLog, Replay};
use crate::types::{Event, EventDraft, EventId, EventRecord};

/// Initializes a tenant's counter (to the server time in µs) if missing.
const INIT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[1], string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2])), 'NX')
end";

/// Appends `ARGV[1]` under the next id, then drops the oldest entries while the stream
/// holds more than `ARGV[2]` entries or `ARGV[3]` payload bytes (always keeping the
/// newest). Each entry records its payload size (`n`) so that trimming needs no
/// decoding; `KEYS[3]` holds the sum, re-based whenever one entry is left (so it cannot
/// drift for long if keys are lost or trimmed by hand).
fn append_script() -> Script {
    Script::new(&format!(
        "{INIT}
local id = redis.call('INCR', KEYS[1])
local n = string.len(ARGV[1])
redis.call('XADD', KEYS[2], string.format('%d', id) .. '-0', 'e', ARGV[1], 'n', n)
local bytes = redis.call('INCRBY', KEYS[3], n)
local len = redis.call('XLEN', KEYS[2])
local cap = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local cursor = '-'
local cut = nil
while len > 1 and (len > cap or bytes > max) do
  local old = redis.call('XRANGE', KEYS[2], cursor, '+', 'COUNT', 1)
  if #old == 0 then break end
  local fields = old[1][2]
  local size = nil
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then size = tonumber(fields[i + 1]) end
  end
  if size == nil then
    for i = 1, #fields, 2 do
      if fields[i] == 'e' then size = string.len(fields[i + 1]) end
    end
  end
  bytes = bytes - (size or 0)
  len = len - 1
  cut = string.match(old[1][1], '^(%d+)-')
  cursor = '(' .. old[1][1]
end
if cut then
  redis.call('XTRIM', KEYS[2], 'MINID', cut .. '-1')
end
if len <= 1 or bytes < 0 then bytes = n end
redis.call('SET', KEYS[3], bytes)
return id"
    ))
}

fn head_script() -> Script {
    Script::new(&format!(
        "{INIT}\nreturn tonumber(redis.call('GET', KEYS[1]))"
    ))
}

/// The stored form of an event (without its id, which is the stream entry's).
#[derive(Serialize, Deserialize)]
struct Stored {
    tenant: String,
    changes: crate::types::ChangeSet,
    #[serde(default)]
    requires_ack: bool,
    #[serde(default)]
    invalidated: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    show_keys: bool,
}

/// Default bound of a tenant's stream in payload bytes ([`RedisLog::max_bytes`]).
pub const DEFAULT_REDIS_LOG_BYTES: usize = 4 << 20;

/// Event log in Redis streams (see the module docs).
pub struct RedisLog {
    conn: ConnectionManager,
    prefix: String,
    cap: usize,
    max_bytes: usize,
    append: Script,
    head: Script,
}

impl RedisLog {
    /// Connects (lazily reconnecting); keeps `cap_per_tenant` events per tenant, within
    /// 4 MiB of payload per tenant ([`RedisLog::max_bytes`]), under keys starting with
    /// `prefix`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        cap_per_tenant: usize,
    ) -> Result<Self, RealtimeError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        Ok(RedisLog {
            conn,
            prefix: prefix.to_owned(),
            cap: cap_per_tenant.max(1),
            max_bytes: DEFAULT_REDIS_LOG_BYTES,
            append: append_script(),
            head: head_script(),
        })
    }

    /// Bounds each tenant's stream to `bytes` of payload; the oldest events are dropped
    /// first, the newest is always kept.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Payload bytes a tenant's stream holds (as counted by the append script).
    pub async fn tenant_bytes(&self, tenant: &str) -> Result<usize, RealtimeError> {
        let mut conn = self.conn.clone();
        let n: Option<usize> = conn.get(self.bytes_key(tenant)).await?;
        Ok(n.unwrap_or(0))
    }

    fn bytes_key(&self, tenant: &str) -> String {
        format!("{}:bytes:{}", self.prefix, tenant)
    }

    fn seq_key(&self, tenant: &str) -> String {
        format!("{}:seq:{}", self.prefix, tenant)
    }

    fn log_key(&self, tenant: &str) -> String {
        format!("{}:log:{}", self.prefix, tenant)
    }

    async fn head_of(&self, tenant: &str) -> Result<EventId, RealtimeError> {
        let mut conn = self.conn.clone();
        let head: u64 = self
            .head
            .key(self.seq_key(tenant))
            .invoke_async(&mut conn)
            .await?;
        Ok(EventId(head))
    }
}

fn entry_id(id: &str) -> Option<EventId> {
    id.split('-').next()?.parse().ok().map(EventId)
}

fn decode(
    tenant: &str,
    id: EventId,
    map: &std::collections::HashMap<String, redis::Value>,
) -> Result<Event, RealtimeError> {
    let raw: String = match map.get("e") {
        Some(v) => {
            redis::from_redis_value_ref(v).map_err(|e| RealtimeError::Corrupt(e.to_string()))?
        }
        None => {
            return Err(RealtimeError::Corrupt(format!(
                "event {id} of {tenant} has no payload"
            )));
        }
    };
    let stored: Stored =
        serde_json::from_str(&raw).map_err(|e| RealtimeError::Corrupt(e.to_string()))?;
    Ok(Event::new(EventRecord {
        tenant: stored.tenant,
        id,
        changes: stored.changes,
        requires_ack: stored.requires_ack,
        invalidated: stored.invalidated,
        show_keys: stored.show_keys,
    }))
}

impl EventLog for RedisLog {
    fn append(&self, draft: EventDraft) -> BoxFuture<'_, Result<Arc<Event>, RealtimeError>> {
        Box::pin(async move {
            let payload = serde_json::to_string(&Stored {
                tenant: draft.tenant.clone(),
                changes: draft.changes.clone(),
                requires_ack: draft.requires_ack,
                invalidated: draft.invalidated.clone(),
                show_keys: draft.show_keys,
            })
            .map_err(|e| RealtimeError::Corrupt(e.to_string()))?;
            let mut conn = self.conn.clone();
            let id: u64 = self
                .append
                .key(self.seq_key(&draft.tenant))
                .key(self.log_key(&draft.tenant))
                .key(self.bytes_key(&draft.tenant))
                .arg(payload)
                .arg(self.cap)
                .arg(self.max_bytes)
                .invoke_async(&mut conn)
                .await?;
            Ok(Arc::new(Event::new(draft.with_id(EventId(id)))))
        })
    }

    fn head<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<EventId, RealtimeError>> {
        Box::pin(self.head_of(tenant))
    }

    fn since<'a>(
        &'a self,
        tenant: &'a str,
        after: EventId,
    ) -> BoxFuture<'a, Result<Replay, RealtimeError>> {
        Box::pin(async move {
            let head = self.head_of(tenant).await?;
            if after > head {
                return Ok(Replay::Reset { head });
            }
            if after == head {
                return Ok(Replay::Events {
                    events: Vec::new(),
                    head,
                });
            }
            let mut conn = self.conn.clone();
            let reply: StreamRangeReply = conn
                .xrange(self.log_key(tenant), format!("{}-0", after.0 + 1), "+")
                .await?;
            let mut events = Vec::with_capacity(reply.ids.len());
            for (expect, entry) in (after.0 + 1..).zip(reply.ids.iter()) {
                let id = entry_id(&entry.id)
                    .ok_or_else(|| RealtimeError::Corrupt(format!("stream id {}", entry.id)))?;
                if id.0 != expect {
                    // Trimmed away (or lost): the client must revalidate.
                    return Ok(Replay::Reset { head: head.max(id) });
                }
                events.push(Arc::new(decode(tenant, id, &entry.map)?));
            }
            let last = events.last().map_or(after, |e| e.id());
            if last < head {
                return Ok(Replay::Reset { head });
            }
            Ok(Replay::Events { events, head: last })
        })
    }
}

/// What goes over the Redis channel.
#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
enum Wire {
    Event(EventRecord),
    Ack(AckMessage),
    Changes(RemoteChanges),
}

/// Event bus over Redis pub/sub (see the module docs).
pub struct RedisBus {
    conn: ConnectionManager,
    channel: String,
    tx: broadcast::Sender<BusMessage>,
    task: tokio::task::JoinHandle<()>,
    subscribed: Arc<Subscribed>,
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.task.abort();
        self.subscribed.set(false);
    }
}

/// Whether the bus's subscription is up, mirrored in [`metrics::BUS_SUBSCRIBED`].
#[derive(Default)]
struct Subscribed(AtomicBool);

impl Subscribed {
    /// Moves the gauge only on a change, so that it counts each bus once.
    fn set(&self, up: bool) {
        if self.0.swap(up, Ordering::SeqCst) != up {
            metrics::gauge_add(metrics::BUS_SUBSCRIBED, if up { 1.0 } else { -1.0 });
        }
    }
}

impl RedisBus {
    /// Connects and starts reading the channel `{prefix}:bus`. Must run inside Tokio.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RealtimeError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        let channel = format!("{prefix}:bus");
        let (tx, _) = broadcast::channel(4096);
        // Subscribe before returning, so nothing published after `connect` is missed.
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&channel).await?;
        let subscribed = Arc::new(Subscribed::default());
        subscribed.set(true);
        let task = tokio::spawn(read_loop(
            client,
            channel.clone(),
            pubsub,
            tx.clone(),
            subscribed.clone(),
        ));
        Ok(RedisBus {
            conn,
            channel,
            tx,
            task,
            subscribed,
        })
    }
}

async fn read_loop(
    client: redis::Client,
    channel: String,
    mut pubsub: redis::aio::PubSub,
    tx: broadcast::Sender<BusMessage>,
    subscribed: Arc<Subscribed>,
) {
    loop {
        {
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let wire: Wire = match serde_json::from_slice(msg.get_payload_bytes()) {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!(error = %e, "undecodable message on the event bus");
                        continue;
                    }
                };
                let msg = match wire {
                    Wire::Event(record) => BusMessage::Event(Arc::new(Event::new(record))),
                    Wire::Ack(a) => BusMessage::Ack(a),
                    Wire::Changes(c) => BusMessage::Changes(c),
                };
                let _ = tx.send(msg);
            }
        }
        subscribed.set(false);
        tracing::warn!("event bus subscription lost; reconnecting");
        let mut delay = Duration::from_millis(100);
        pubsub = loop {
            tokio::time::sleep(delay).await;
            match client.get_async_pubsub().await {
                Ok(mut p) => match p.subscribe(&channel).await {
                    Ok(()) => break p,
                    Err(e) => tracing::warn!(error = %e, "event bus resubscribe failed"),
                },
                Err(e) => tracing::warn!(error = %e, "event bus reconnect failed"),
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        };
        subscribed.set(true);
        // Messages published while we were away are lost: streams must replay.
        let _ = tx.send(BusMessage::Resync);
    }
}

impl EventBus for RedisBus {
    fn publish(&self, msg: BusMessage) -> BoxFuture<'_, Result<(), RealtimeError>> {
        Box::pin(async move {
            let wire = match msg {
                BusMessage::Event(e) => Wire::Event(e.record().clone()),
                BusMessage::Ack(a) => Wire::Ack(a),
                BusMessage::Changes(c) => Wire::Changes(c),
                BusMessage::Resync => return Ok(()),
            };
            let payload =
                serde_json::to_string(&wire).map_err(|e| RealtimeError::Corrupt(e.to_string()))?;
            let mut conn = self.conn.clone();
            let _: i64 = conn.publish(&self.channel, payload).await?;
            Ok(())
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.tx.subscribe()
    }
}
