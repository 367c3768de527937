//! Subscriptions: which events a connection receives.
//!
//! An entry is `*`, a procedure name (`agents.findMany`) or a query key
//! (`agents.findMany:{"organizationId":"o1"}`); see `docs/protocol.md` section 4. A
//! query key's read set (its model's dependencies with this input's key values) is
//! computed once, when the connection subscribes; matching an event is then a few
//! set lookups.
//!
//! Entries are kept, matched and echoed (in events' `queries`) in canonical form
//! ([`ParsedEntry::canonical`]): `name:` + the input's JSON with sorted keys and no
//! whitespace. Entries with the same canonical form are one entry, so that spelling one
//! key thirty ways costs one entry and one echo, not thirty.

use reactive_codegen::model::FunctionKind;
use serde_json::Value;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

use crate::registry::{FunctionDef, InputError};
use crate::types::ReadSet;
use crate::types::{Event, frame_tail};

/// Why a subscription entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubscribeError {
    /// No such procedure.
    #[error("unknown procedure `{name}`")]
    UnknownProcedure {
        /// Index of the entry.
        index: usize,
        /// The name.
        name: String,
    },
    /// The entry is malformed or its input does not decode.
    #[error("{message}")]
    Invalid {
        /// Index of the entry.
        index: usize,
        /// What was wrong.
        message: String,
        /// JSON path of the bad input field, if the input was at fault.
        path: Option<String>,
    },
}

/// One parsed entry, before its read set is computed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParsedEntry<'a> {
    /// `*`
    All,
    /// A procedure name.
    Procedure(&'a str),
    /// A procedure name and its input.
    Query(&'a str, Value),
}

impl ParsedEntry<'_> {
    /// The entry's canonical text: `*`, the name, or [`query_key`] (`name:` + canonical
    /// JSON), which is what events echo.
    pub(crate) fn canonical(&self) -> String {
        match self {
            ParsedEntry::All => "*".to_owned(),
            ParsedEntry::Procedure(name) => (*name).to_owned(),
            ParsedEntry::Query(name, input) => query_key(name, input),
        }
    }
}

/// Splits an entry's text (`*`, `name` or `name:json`).
pub(crate) fn parse_entry(text: &str) -> Result<ParsedEntry<'_>, String> {
    if text == "*" {
        return Ok(ParsedEntry::All);
    }
    let (name, input) = match text.split_once(':') {
        None => (text, None),
        Some((n, json)) => (n, Some(json)),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(format!("`{}` is not a procedure name", truncate(name)));
    }
    match input {
        None => Ok(ParsedEntry::Procedure(name)),
        Some(json) => serde_json::from_str(json)
            .map(|v| ParsedEntry::Query(name, v))
            .map_err(|e| format!("the input of `{name}` is not valid JSON: {e}")),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The text of a query key: `name:canonical-json` (the form cache reports use too).
pub(crate) fn query_key(name: &str, input: &Value) -> String {
    format!("{name}:{}", crate::types::canonical_json(input))
}

/// The read set a subscription entry stands for: the model's dependencies with the
/// input's key values (`None` for a whole procedure: every key dropped, whole tables).
/// A model with an unanalysable statement reads everything.
fn read_set(
    def: &'static FunctionDef,
    bindings: Option<&[Value]>,
    keys: &dyn Fn(&'static FunctionDef, &[Value]) -> ReadSet,
) -> ReadSet {
    if def
        .model()
        .statements
        .iter()
        .any(|s| s.analysis.unknown.is_some())
    {
        return ReadSet::everything();
    }
    keys(def, bindings.unwrap_or(&[]))
}

#[derive(Debug)]
enum Kind {
    All,
    Procedure(ReadSet),
    Query { key: String, read: ReadSet },
}

/// One subscribed entry, with its precomputed JSON text and read set.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The entry's canonical text, as a JSON string literal (echoed in `queries`).
    json: Box<[u8]>,
    /// The frame tail when this entry is the only one matched (`json` + `]}\n\n`).
    tail: Bytes,
    kind: Kind,
    /// A query key of a `push` function: live events carry its new value.
    push: bool,
}

impl Entry {
    fn new(text: &str, kind: Kind) -> Entry {
        let json = serde_json::to_vec(text).expect("a string serializes");
        Entry {
            tail: frame_tail(&json),
            json: json.into_boxed_slice(),
            kind,
            push: false,
        }
    }

    fn matches(&self, event: &Event) -> bool {
        let rec = event.record();
        match &self.kind {
            Kind::All => true,
            Kind::Procedure(read) => read.is_affected_by(&rec.changes),
            Kind::Query { key, read } => {
                rec.invalidated.iter().any(|k| k == key) || read.is_affected_by(&rec.changes)
            }
        }
    }
}

/// A connection's (or a poll's) subscription: a cheap handle, shared by every connection
/// that subscribed with the same entries (see [`SubscriptionCache`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Subscription {
    inner: Arc<EntrySet>,
}

/// The entries, and what the hub's fan-out index posts (computed once).
#[derive(Debug, Default)]
struct EntrySet {
    entries: Vec<Entry>,
    all: bool,
    /// Some entry is a query key of a `push` function.
    push: bool,
    keys: Vec<String>,
    /// The union of the entries' read sets (a superset of the changes that can match),
    /// when there are several; a single entry's own read set serves otherwise.
    union: Option<ReadSet>,
}

static NOTHING: std::sync::LazyLock<ReadSet> = std::sync::LazyLock::new(ReadSet::empty);

impl Entry {
    fn read_set(&self) -> &ReadSet {
        match &self.kind {
            Kind::All => &NOTHING,
            Kind::Procedure(read) | Kind::Query { read, .. } => read,
        }
    }
}

impl Subscription {
    fn from_entries(entries: Vec<Entry>) -> Subscription {
        let all = entries.iter().any(|e| matches!(e.kind, Kind::All));
        let keys = entries
            .iter()
            .filter_map(|e| match &e.kind {
                Kind::Query { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect();
        let union = (entries.len() > 1).then(|| {
            let mut reads = ReadSet::empty();
            for entry in &entries {
                reads.union(entry.read_set());
            }
            reads
        });
        let push = entries.iter().any(|e| e.push);
        Subscription {
            inner: Arc::new(EntrySet {
                entries,
                all,
                push,
                keys,
                union,
            }),
        }
    }

    /// Subscribes to every event of the tenant.
    pub(crate) fn all() -> Subscription {
        Subscription::from_entries(vec![Entry::new("*", Kind::All)])
    }

    /// Builds a subscription from entry texts; `lookup` finds a registered function,
    /// `keys` gives the read set of a call of it with these binding values (the
    /// database handle's, whose key values are canonical for its column types).
    /// Runs each query key's input through the function's decoder (errors carry the path).
    /// Entries are kept in canonical form, each once (the first occurrence's place).
    pub(crate) fn build(
        texts: &[String],
        lookup: impl Fn(&str) -> Option<&'static FunctionDef>,
        keys: &dyn Fn(&'static FunctionDef, &[Value]) -> ReadSet,
    ) -> Result<Subscription, SubscribeError> {
        let mut entries = Vec::with_capacity(texts.len());
        let mut seen = std::collections::HashSet::new();
        for (index, text) in texts.iter().enumerate() {
            let invalid = |message: String, path: Option<String>| SubscribeError::Invalid {
                index,
                message,
                path,
            };
            let parsed = parse_entry(text).map_err(|m| invalid(m, None))?;
            let canonical = parsed.canonical();
            if !seen.insert(canonical.clone()) {
                continue;
            }
            let (name, input) = match parsed {
                ParsedEntry::All => {
                    entries.push(Entry::new(&canonical, Kind::All));
                    continue;
                }
                ParsedEntry::Procedure(n) => (n, None),
                ParsedEntry::Query(n, v) => (n, Some(v)),
            };
            let def = lookup(name).ok_or_else(|| SubscribeError::UnknownProcedure {
                index,
                name: name.to_owned(),
            })?;
            let model = def.model();
            if model.kind == FunctionKind::Mutation {
                return Err(invalid(
                    format!("`{name}` is a mutation; only queries can be subscribed to"),
                    None,
                ));
            }
            let push = input.is_some() && model.push;
            let kind = match input {
                None => Kind::Procedure(read_set(def, None, keys)),
                Some(input) => {
                    let key = canonical.clone();
                    let prepared =
                        (def.prepare)(input).map_err(|InputError { path, message }| {
                            invalid(format!("invalid input at `{path}`: {message}"), Some(path))
                        })?;
                    Kind::Query {
                        key,
                        read: read_set(def, Some(&prepared.bindings), keys),
                    }
                }
            };
            entries.push(Entry {
                push,
                ..Entry::new(&canonical, kind)
            });
        }
        Ok(Subscription::from_entries(entries))
    }

    #[cfg(test)]
    /// The matched entries as a comma-separated list of JSON strings, or `None` when the
    /// event does not concern this subscription.
    pub(crate) fn matches(&self, event: &Event) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.write_matches(event, &mut out).then_some(out)
    }

    /// Appends the matched entries (comma-separated JSON strings) to `out`; `false` (and
    /// nothing appended) when the event does not concern this subscription.
    pub(crate) fn write_matches(&self, event: &Event, out: &mut impl bytes::BufMut) -> bool {
        let mut any = false;
        for entry in self.inner.entries.iter().filter(|e| e.matches(event)) {
            if any {
                out.put_u8(b',');
            }
            out.put_slice(&entry.json);
            any = true;
        }
        any
    }

    /// The SSE frame tail for `event` (the matched entries, then `]}\n\n`), or `None`
    /// when the event does not concern this subscription. Allocation-free when nothing
    /// matches, and when exactly one entry matches (its tail is precomputed).
    pub(crate) fn match_tail(&self, event: &Event) -> Option<Bytes> {
        let mut matched = self.inner.entries.iter().filter(|e| e.matches(event));
        let first = matched.next()?;
        let Some(second) = matched.next() else {
            return Some(first.tail.clone());
        };
        let mut buf = Vec::with_capacity(first.json.len() + second.json.len() + 1);
        buf.extend_from_slice(&first.json);
        for entry in std::iter::once(second).chain(matched) {
            buf.push(b',');
            buf.extend_from_slice(&entry.json);
        }
        Some(frame_tail(&buf))
    }

    /// [`Subscription::match_tail`], also handing the matched query keys of `push`
    /// functions to `pushed`.
    pub(crate) fn match_tail_pushing(
        &self,
        event: &Event,
        pushed: &mut impl FnMut(&str),
    ) -> Option<Bytes> {
        let tail = self.match_tail(event)?;
        if self.inner.push {
            for entry in self.inner.entries.iter().filter(|e| e.push) {
                if let Kind::Query { key, .. } = &entry.kind
                    && entry.matches(event)
                {
                    pushed(key);
                }
            }
        }
        Some(tail)
    }

    /// What the hub's fan-out index posts: whether an entry is `*`, the query keys
    /// subscribed to, and the union of the entries' read sets (a superset of the
    /// changes that can match).
    pub(crate) fn index_terms(&self) -> (bool, &[String], &ReadSet) {
        let reads = match (&self.inner.union, self.inner.entries.first()) {
            (Some(union), _) => union,
            (None, Some(only)) => only.read_set(),
            (None, None) => &NOTHING,
        };
        (self.inner.all, &self.inner.keys, reads)
    }

    /// A subscription from already-computed entries: `(text, query key, read set)`;
    /// `text == "*"` is `*`, no key is a whole procedure (for unit tests).
    #[cfg(test)]
    pub(crate) fn from_parts(parts: Vec<(&str, Option<&str>, ReadSet)>) -> Subscription {
        let entries = parts
            .into_iter()
            .map(|(text, key, read)| {
                let kind = match (text, key) {
                    ("*", _) => Kind::All,
                    (_, None) => Kind::Procedure(read),
                    (_, Some(key)) => Kind::Query {
                        key: key.to_owned(),
                        read,
                    },
                };
                Entry::new(text, kind)
            })
            .collect();
        Subscription::from_entries(entries)
    }

    /// [`Subscription::from_parts`] whose query keys are of `push` functions.
    #[cfg(test)]
    pub(crate) fn from_parts_pushed(parts: Vec<(&str, Option<&str>, ReadSet)>) -> Subscription {
        let mut entries = Arc::try_unwrap(Subscription::from_parts(parts).inner)
            .expect("not shared yet")
            .entries;
        for e in &mut entries {
            e.push = matches!(e.kind, Kind::Query { .. });
        }
        Subscription::from_entries(entries)
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.inner.entries.len()
    }

    #[cfg(test)]
    /// Whether two handles share one subscription.
    pub(crate) fn ptr_eq(&self, other: &Subscription) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// Shares one [`Subscription`] among the connections that subscribe with the same entry
/// texts (give it canonical texts, so that spellings of one subscription share it), so that 10,000 clients of one query hold one read set, not 10,000. Entries
/// depend only on their text and the registered functions, never on the tenant (the
/// tenant scopes the connection, and input checks run per request before this).
#[derive(Debug, Default)]
pub(crate) struct SubscriptionCache {
    map: Mutex<CacheMap>,
}

#[derive(Debug, Default)]
struct CacheMap {
    live: HashMap<Box<[String]>, Weak<EntrySet>>,
    /// Size after the last sweep of dropped subscriptions.
    swept: usize,
}

impl SubscriptionCache {
    /// The live subscription for `texts`, or the one `build` makes (then shared).
    pub(crate) fn get_or_build<E>(
        &self,
        texts: &[String],
        build: impl FnOnce() -> Result<Subscription, E>,
    ) -> Result<Subscription, E> {
        if let Some(inner) = self.lock().live.get(texts).and_then(Weak::upgrade) {
            return Ok(Subscription { inner });
        }
        let sub = build()?;
        let mut map = self.lock();
        map.live.insert(texts.into(), Arc::downgrade(&sub.inner));
        // Sweep the texts of subscriptions nobody holds any more, amortized.
        if map.live.len() > 2 * map.swept + 64 {
            map.live.retain(|_, w| w.strong_count() > 0);
            map.swept = map.live.len();
        }
        Ok(sub)
    }

    /// Distinct subscriptions remembered (live or not yet swept).
    pub(crate) fn len(&self) -> usize {
        self.lock().live.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheMap> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_entries() {
        assert_eq!(parse_entry("*"), Ok(ParsedEntry::All));
        assert_eq!(
            parse_entry("agents.findMany"),
            Ok(ParsedEntry::Procedure("agents.findMany"))
        );
        assert_eq!(
            parse_entry(r#"agents.get:{"id":"a:1"}"#),
            Ok(ParsedEntry::Query("agents.get", json!({"id": "a:1"})))
        );
        assert!(parse_entry("agents get").is_err());
        assert!(parse_entry("agents.get:{").is_err());
        assert_eq!(
            parse_entry(r#"agents.get:{ "b" : 1,"a":[ true ] }"#)
                .unwrap()
                .canonical(),
            r#"agents.get:{"a":[true],"b":1}"#
        );
    }

    #[test]
    fn identical_subscriptions_share_one_and_dropped_ones_are_swept() {
        let cache = SubscriptionCache::default();
        let texts = |t: &str| vec![t.to_owned()];
        let builds = std::cell::Cell::new(0);
        let build = || {
            builds.set(builds.get() + 1);
            Ok::<_, ()>(Subscription::all())
        };
        let a = cache.get_or_build(&texts("*"), build).unwrap();
        let b = cache.get_or_build(&texts("*"), build).unwrap();
        assert!(a.ptr_eq(&b));
        assert_eq!(builds.get(), 1);
        drop((a, b));
        // Dropped: built again, not resurrected.
        let c = cache.get_or_build(&texts("*"), build).unwrap();
        assert_eq!(builds.get(), 2);
        for i in 0..200 {
            drop(cache.get_or_build(&texts(&format!("p{i}")), build).unwrap());
        }
        assert!(
            cache.len() < 100,
            "dropped subscriptions are swept: {}",
            cache.len()
        );
        assert!(
            cache
                .get_or_build(&texts("*"), || Err(()))
                .unwrap()
                .ptr_eq(&c)
        );
    }
}
