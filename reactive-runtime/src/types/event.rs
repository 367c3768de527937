//! Events: what a write changed, in one tenant, with an id that increases per tenant.
//!
//! An [`Event`] is serialized once, when it is created, into the bytes of its SSE frame;
//! every connection that receives it shares those bytes and only appends its own short
//! list of matched subscription entries (`"queries"`), which is precomputed per
//! subscription. See `docs/protocol.md` section 5 for the wire form: no row contents,
//! and the change set's key values (`keys`) only when the record says so
//! ([`EventRecord::show_keys`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// An event id: strictly increasing within a tenant, not contiguous, below 2^53.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId(pub u64);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for EventId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(EventId)
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            S(String),
            N(u64),
        }
        match Repr::deserialize(d)? {
            Repr::S(s) => s.parse().map_err(serde::de::Error::custom),
            Repr::N(n) => Ok(EventId(n)),
        }
    }
}

use super::change::ChangeSet;

/// Per table, per column, the changed values (`None` = SQL NULL); `None` = unknown rows.
type WireKeys<'a> = BTreeMap<&'a str, Option<BTreeMap<&'a str, BTreeSet<Option<&'a str>>>>>;

/// The wire summary of a change set (`keys`): per table, the columns known for every
/// changed row with the union of their values (`null` for SQL NULL); `None` when some
/// row is unknown (any row may have changed).
fn wire_keys(changes: &ChangeSet) -> WireKeys<'_> {
    let mut out = BTreeMap::new();
    for (table, rows) in &changes.tables {
        let summary = if rows.is_empty() || rows.iter().any(|r| r.is_whole()) {
            None
        } else {
            let mut cols: BTreeMap<&str, BTreeSet<Option<&str>>> = BTreeMap::new();
            for col in rows[0].columns.keys() {
                if rows.iter().all(|r| r.columns.contains_key(col)) {
                    let vals = cols.entry(col.as_str()).or_default();
                    for r in rows {
                        vals.extend(
                            r.columns[col]
                                .iter()
                                .map(|k| (!k.is_null()).then(|| k.as_str())),
                        );
                    }
                }
            }
            if cols.is_empty() { None } else { Some(cols) }
        };
        out.insert(table.as_str(), summary);
    }
    out
}

/// The stored and transported form of an event (what the log and the bus hold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The tenant the event belongs to.
    pub tenant: String,
    /// Its id (per tenant).
    pub id: EventId,
    /// What changed: as [`Realtime::publish`](crate::realtime::Realtime::publish) records it, only
    /// the key columns some query filters on, values and total bounded (see
    /// `KeyColumns`).
    pub changes: ChangeSet,
    /// Clients must acknowledge it.
    #[serde(default)]
    pub requires_ack: bool,
    /// Query keys (`name:canonical-json`) whose cache entries the write invalidated in this
    /// tenant: used server-side for matching, never sent to clients.
    #[serde(default)]
    pub invalidated: Vec<String>,
    /// Clients receive `keys` (the changed key values); off by default: see
    /// [`HubConfig::event_keys`](crate::realtime::HubConfig::event_keys).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub show_keys: bool,
}

/// An event before the log gave it an id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventDraft {
    /// The tenant.
    pub tenant: String,
    /// What changed.
    pub changes: ChangeSet,
    /// Clients must acknowledge it.
    pub requires_ack: bool,
    /// Query keys invalidated in the cache (see [`EventRecord::invalidated`]).
    pub invalidated: Vec<String>,
    /// Clients receive `keys` (see [`EventRecord::show_keys`]).
    pub show_keys: bool,
}

impl EventDraft {
    /// Gives the draft its id.
    pub fn with_id(self, id: EventId) -> EventRecord {
        EventRecord {
            tenant: self.tenant,
            id,
            changes: self.changes,
            requires_ack: self.requires_ack,
            invalidated: self.invalidated,
            show_keys: self.show_keys,
        }
    }
}

/// An event with its frame bytes, built once and shared by every connection.
#[derive(Debug, Clone)]
pub struct Event {
    record: EventRecord,
    /// `id: N\nevent: invalidate\ndata: {"eventId":..,"queries":[`
    frame: Bytes,
    /// Offset of `event:` in `frame` (a re-sent frame omits the `id:` line).
    resend_start: usize,
    /// Offset of the JSON object (`{`) in `frame`.
    data_start: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireHead<'a> {
    event_id: EventId,
    tables: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keys: Option<WireKeys<'a>>,
    requires_ack: bool,
}

impl Event {
    /// Builds the event's frame bytes (the only serialization it ever gets).
    pub fn new(record: EventRecord) -> Self {
        let tables: Vec<&str> = if record.changes.everything {
            vec!["*"]
        } else {
            record.changes.table_names().collect()
        };
        let head = WireHead {
            event_id: record.id,
            tables,
            keys: record.show_keys.then(|| wire_keys(&record.changes)),
            requires_ack: record.requires_ack,
        };
        let json = serde_json::to_vec(&head).expect("serializing strings and maps cannot fail");
        let mut buf = BytesMut::with_capacity(json.len() + 64);
        buf.put_slice(b"id: ");
        buf.put_slice(record.id.to_string().as_bytes());
        buf.put_slice(b"\n");
        let resend_start = buf.len();
        buf.put_slice(b"event: invalidate\ndata: ");
        let data_start = buf.len();
        // json ends with '}': replace it by `,"queries":[`
        buf.put_slice(&json[..json.len() - 1]);
        buf.put_slice(b",\"queries\":[");
        Event {
            record,
            frame: buf.freeze(),
            resend_start,
            data_start,
        }
    }

    /// The stored form.
    pub fn record(&self) -> &EventRecord {
        &self.record
    }

    /// The id.
    pub fn id(&self) -> EventId {
        self.record.id
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.record.tenant
    }

    /// Whether clients must acknowledge it.
    pub fn requires_ack(&self) -> bool {
        self.record.requires_ack
    }

    /// The shared head of the SSE frame (ends inside the `queries` array).
    pub fn frame_head(&self) -> Bytes {
        self.frame.clone()
    }

    /// The shared head of a re-sent frame (without the `id:` line).
    pub fn resend_head(&self) -> Bytes {
        self.frame.slice(self.resend_start..)
    }

    /// The shared head of the JSON data (for `/poll`), ending inside `queries`.
    pub fn data_head(&self) -> Bytes {
        self.frame.slice(self.data_start..)
    }

    /// About how many bytes the event holds (its frame, its change set and its
    /// invalidated keys): what the event logs count against their byte bound.
    pub fn approx_size(&self) -> usize {
        let changes: usize = self
            .record
            .changes
            .tables
            .iter()
            .map(|(table, rows)| {
                table.len()
                    + 32
                    + rows
                        .iter()
                        .flat_map(|r| &r.columns)
                        .map(|(c, vs)| {
                            c.len() + 48 + vs.iter().map(|v| v.as_str().len() + 24).sum::<usize>()
                        })
                        .sum::<usize>()
            })
            .sum();
        let invalidated: usize = self.record.invalidated.iter().map(|k| k.len() + 24).sum();
        std::mem::size_of::<Event>() + self.frame.len() + changes + invalidated
    }
}

/// Closes an SSE frame after the matched entries (`entries` are JSON string literals,
/// comma-separated).
pub(crate) fn frame_tail(entries: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(entries.len() + 4);
    b.put_slice(entries);
    b.put_slice(b"]}\n\n");
    b.freeze()
}

/// The SSE frame of a `reset` (carries `id:` so the browser's Last-Event-ID moves on).
pub(crate) fn reset_frame(head: EventId) -> Bytes {
    Bytes::from(format!(
        "id: {head}\nevent: reset\ndata: {{\"eventId\":\"{head}\"}}\n\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{KeyValue, RowChange};
    use reactive_codegen::sql::Dialect;

    fn k(s: &str) -> KeyValue {
        KeyValue::from_str(s, Dialect::Postgres)
    }

    fn rec() -> EventRecord {
        EventRecord {
            tenant: "t".into(),
            id: EventId(42),
            changes: ChangeSet::empty()
                .with_row("agent", RowChange::whole().with("id", k("a1")))
                .with_row("message", RowChange::whole()),
            requires_ack: true,
            invalidated: vec![],
            show_keys: true,
        }
    }

    #[test]
    fn frame_is_valid_sse_with_json_data() {
        let ev = Event::new(rec());
        let mut full = ev.frame_head().to_vec();
        full.extend_from_slice(&frame_tail(br#""agents.findMany""#));
        let text = String::from_utf8(full).unwrap();
        assert!(text.starts_with("id: 42\nevent: invalidate\ndata: {"));
        assert!(text.ends_with("\n\n"));
        let data = text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap();
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["eventId"], "42");
        assert_eq!(v["tables"], serde_json::json!(["agent", "message"]));
        assert_eq!(v["keys"]["message"], serde_json::Value::Null);
        assert_eq!(v["keys"]["agent"]["id"], serde_json::json!(["a1"]));
        assert_eq!(v["requiresAck"], true);
        assert_eq!(v["queries"], serde_json::json!(["agents.findMany"]));
        assert!(ev.resend_head().starts_with(b"event: invalidate\n"));
        assert!(ev.data_head().starts_with(b"{"));
    }

    /// Unless the server shows keys, the data carries no `keys` at all.
    #[test]
    fn keys_are_left_out_unless_shown() {
        let ev = Event::new(EventRecord {
            show_keys: false,
            ..rec()
        });
        let head = String::from_utf8(ev.data_head().to_vec()).unwrap();
        assert!(!head.contains("keys") && !head.contains("a1"), "{head}");
        let mut data = head.into_bytes();
        data.extend_from_slice(b"]}");
        let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(v["tables"], serde_json::json!(["agent", "message"]));
    }

    #[test]
    fn wire_keys_keep_only_columns_known_in_every_row() {
        let c = ChangeSet::empty()
            .with_row("agent", RowChange::whole().with("id", k("a1")))
            .with_row(
                "agent",
                RowChange::whole().with("id", k("a2")).with("org", k("o")),
            );
        let w = wire_keys(&c);
        let agent = w["agent"].as_ref().unwrap();
        assert_eq!(agent["id"].len(), 2);
        assert!(!agent.contains_key("org"));
        let c = c.with_row("agent", RowChange::whole());
        assert!(wire_keys(&c)["agent"].is_none());
    }
}
