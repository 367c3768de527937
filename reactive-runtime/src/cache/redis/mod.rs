//! [`RedisStore`]: a cache shared by every instance of the app (`redis` feature).
//!
//! # Layout (all keys under a configurable prefix `P`)
//!
//! | key | type | content |
//! |---|---|---|
//! | `P e:<cache key>` | string | the serialized value; expires after the TTL |
//! | `P r:<cache key>` | string | the entry's routing record: its read set (JSON); expires after the TTL plus the ghost retention |
//! | `P seq` | string | the shared invalidation sequence (`INCR` per change set) |
//! | `P t:<table>` | string | the `seq` of the last change to the table; `P tall`: of the last "everything" change |
//! | `P iall` | zset | every routing record, scored by its expiry (the age order for the byte bound) |
//! | `P rsize`, `P rbytes` | hash, string | the size of each routing record; their sum |
//! | `P ieverything` | zset | entries that read everything |
//! | `P iw:<table>` | zset | entries reading the whole table |
//! | `P ic:<table>` | set | the columns entries of that table are indexed under |
//! | `P ia:<table,column>` | zset | entries indexed under the column (any value) |
//! | `P iv:<table,column,value>` | zset | entries indexed under `column = value` |
//!
//! Index members are encoded cache keys. Index zsets score members by the expiry of
//! their routing record; each insert first drops expired members, so an index never
//! outgrows the routing records by more than a lifetime's worth.
//!
//! # Ghosts
//!
//! The value and its routing record live apart: when the value expires (or `clear`
//! runs), the routing record stays for [`RedisConfig::ghost_retention`] as a *ghost*, so
//! that a later change — made by any instance, including one started after the value
//! expired — still finds the key and its tenant hears of it (a client may still show
//! the value). [`CacheStore::invalidate`] reports a ghost like
//! a live entry and deletes it. Routing records are bounded in bytes
//! ([`RedisConfig::max_routing_bytes`]): beyond it the oldest go first, each with its
//! value if it still has one (a value is never readable without its routing record).
//!
//! # Why a Redis-side index
//!
//! Instance A's write must make every instance miss the entries it affects before the
//! write returns — including entries instance B stored. So the index lives in Redis,
//! next to the entries: [`CacheStore::invalidate`] (run by A for its own changes)
//! finds candidates through it, confirms each with the entry's stored read set, and
//! deletes them. B, which receives A's change set on the event bus, only updates its
//! in-process state ([`ChangeOrigin::Remote`] invalidations are no-ops here).
//!
//! # Cross-instance race guard
//!
//! [`CacheStore::begin`] reads `seq`. An invalidation first increments `seq` and writes
//! it to `t:<table>` for each changed table (one Lua script), then deletes. The `put`
//! script refuses to store when any `t:<table>` of the entry's read set (or `seq`
//! itself for a read set of "everything", or `tall`) is newer than the ticket, and
//! writes entry and index atomically otherwise. A put that passes the check is in the
//! index before the deletion step of any change it did not see, which removes it.
//! `clear` deletes entries only: never `seq` or `t:*` (tickets taken before a clear stay
//! valid), nor the index (another instance may be storing meanwhile).
//!
//! Requirements: a standalone Redis (or one primary; scripts touch keys across slots,
//! so Redis Cluster is not supported), version ≥ 5, and `maxmemory-policy noeviction`:
//! `t:*` must survive, and a `volatile-*` policy could evict a routing record or an index
//! key (they have TTLs) before the value they route. Values stored by a version with the
//! older layout (one hash per entry) fail to read (misses, counted as store errors) until
//! they expire.
//!
//! Connection: a lazily connecting [`ConnectionManager`] with short timeouts; when Redis
//! is down operations fail fast with [`CacheError::Unavailable`], which the engine turns
//! into misses and skipped stores.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

mod config;
mod keys;
mod list;
mod scripts;

pub use config::RedisConfig;
use list::{glob_escape, scan};
use scripts::{BUMP_SCRIPT, DROP_SCRIPT, PUT_SCRIPT};

use crate::seams::{CacheError, CacheStore, EntryPage, ListQuery, PutOutcome, StoreTicket};
use crate::types::{CacheKey, ChangeOrigin};
use crate::types::{ChangeSet, InvalidatedEntry, MAX_REASONS, ReadSet};

/// The shared cache store (see the module docs).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    config: RedisConfig,
    put_script: Script,
    bump_script: Script,
    drop_script: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

fn map_err(e: RedisError) -> CacheError {
    if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() || e.is_connection_dropped() {
        CacheError::Unavailable(e.to_string())
    } else {
        CacheError::Backend(e.to_string())
    }
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl RedisStore {
    /// A store for `config`. Does not connect yet (the first operation does), so an
    /// app starts while Redis is down; only an invalid URL is an error.
    pub fn new(config: RedisConfig) -> Result<Self, CacheError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| CacheError::Config(e.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn =
            ConnectionManager::new_lazy_with_config(client, manager_config).map_err(map_err)?;
        Ok(Self {
            conn,
            config,
            put_script: Script::new(PUT_SCRIPT),
            bump_script: Script::new(BUMP_SCRIPT),
            drop_script: Script::new(DROP_SCRIPT),
        })
    }

    async fn candidates(&self, changes: &ChangeSet) -> Result<BTreeSet<String>, CacheError> {
        let mut conn = self.conn.clone();
        let mut out = BTreeSet::new();
        if changes.is_everything() {
            let all: Vec<String> = redis::cmd("ZRANGE")
                .arg(self.k("iall"))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            out.extend(all);
            return Ok(out);
        }
        let tables: Vec<&String> = changes.tables.keys().collect();
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGE").arg(self.k("ieverything")).arg(0).arg(-1);
        for t in &tables {
            pipe.cmd("ZRANGE").arg(self.whole_key(t)).arg(0).arg(-1);
            pipe.cmd("SMEMBERS").arg(self.columns_key(t));
        }
        let mut first: Vec<Vec<String>> = pipe.query_async(&mut conn).await.map_err(map_err)?;
        first.reverse();
        out.extend(first.pop().unwrap_or_default());
        let mut pipe = redis::pipe();
        let mut queued = 0usize;
        for t in &tables {
            out.extend(first.pop().unwrap_or_default());
            let columns: Vec<String> = first.pop().unwrap_or_default();
            let rows = changes.rows(t).unwrap_or_default();
            for column in columns {
                if rows.iter().any(|r| r.values(column.as_str()).is_none()) {
                    pipe.cmd("ZRANGE")
                        .arg(self.column_key(t, &column))
                        .arg(0)
                        .arg(-1);
                    queued += 1;
                } else {
                    let values: BTreeSet<_> = rows
                        .iter()
                        .filter_map(|r| r.values(column.as_str()))
                        .flatten()
                        .collect();
                    for v in values {
                        pipe.cmd("ZRANGE")
                            .arg(self.value_key(t, &column, v.as_str()))
                            .arg(0)
                            .arg(-1);
                        queued += 1;
                    }
                }
            }
        }
        if queued > 0 {
            let second: Vec<Vec<String>> = pipe.query_async(&mut conn).await.map_err(map_err)?;
            out.extend(second.into_iter().flatten());
        }
        Ok(out)
    }
    /// Writes a routing record, with a value unless `value` is `None` (a ghost); `false`
    /// when the ticket is older than a change to a table the entry read.
    async fn write_record(
        &self,
        key: &CacheKey,
        value: Option<&Bytes>,
        reads: &ReadSet,
        reads_json: &str,
        ticket: StoreTicket,
    ) -> Result<bool, CacheError> {
        let member = key.encode();
        let mut versions = vec![self.k("tall")];
        if reads.everything {
            versions.push(self.k("seq"));
        }
        versions.extend(reads.tables.keys().map(|t| self.version_key(t)));
        let (zsets, columns) = self.index_keys(reads);
        let mut inv = self.put_script.prepare_invoke();
        inv.key(self.entry_key(key))
            .key(self.routing_key(&member))
            .key(self.k("iall"))
            .key(self.k("rsize"))
            .key(self.k("rbytes"));
        for v in &versions {
            inv.key(v);
        }
        for (k, _) in &columns {
            inv.key(k);
        }
        for z in &zsets {
            inv.key(z);
        }
        let ttl_ms = self.config.ttl.as_millis().max(1) as u64;
        let keep_ms = ttl_ms + self.config.ghost_retention.as_millis() as u64;
        inv.arg(ticket.0)
            .arg(ttl_ms)
            .arg(value.map_or(&[][..], |v| v.as_ref()))
            .arg(reads_json)
            .arg(versions.len())
            .arg(columns.len())
            .arg(keep_ms)
            .arg(self.config.max_routing_bytes)
            .arg(&member)
            .arg(&self.config.prefix)
            .arg(if value.is_some() { "0" } else { "1" });
        for (_, c) in &columns {
            inv.arg(c);
        }
        let mut conn = self.conn.clone();
        let stored: i64 = inv.invoke_async(&mut conn).await.map_err(map_err)?;
        Ok(stored == 1)
    }

    /// Deletes these members' values and routing records.
    async fn drop_members(&self, members: &[String]) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        for chunk in members.chunks(512) {
            let mut inv = self.drop_script.prepare_invoke();
            inv.key(self.k("iall"))
                .key(self.k("rsize"))
                .key(self.k("rbytes"))
                .arg(&self.config.prefix);
            for m in chunk {
                inv.arg(m);
            }
            let _: i64 = inv.invoke_async(&mut conn).await.map_err(map_err)?;
        }
        Ok(())
    }
}

impl CacheStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn begin(&self) -> BoxFuture<'_, Result<StoreTicket, CacheError>> {
        async move {
            let mut conn = self.conn.clone();
            let seq: Option<u64> = redis::cmd("GET")
                .arg(self.k("seq"))
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            Ok(StoreTicket(seq.unwrap_or(0)))
        }
        .boxed()
    }

    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>> {
        async move {
            let mut conn = self.conn.clone();
            let v: Option<Vec<u8>> = redis::cmd("GET")
                .arg(self.entry_key(key))
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            Ok(v.map(Bytes::from))
        }
        .boxed()
    }

    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        value: Bytes,
        reads: &'a ReadSet,
        ticket: StoreTicket,
    ) -> BoxFuture<'a, Result<PutOutcome, CacheError>> {
        async move {
            let reads_json = json(reads);
            let size = value.len() + reads_json.len() + key.approx_size();
            if size as u64 > self.config.max_entry_bytes {
                return Ok(PutOutcome::TooLarge);
            }
            let stored = self
                .write_record(key, Some(&value), reads, &reads_json, ticket)
                .await?;
            Ok(if stored {
                PutOutcome::Stored
            } else {
                PutOutcome::Conflict
            })
        }
        .boxed()
    }

    fn put_ghost<'a>(
        &'a self,
        key: &'a CacheKey,
        reads: &'a ReadSet,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        async move {
            let reads_json = json(reads);
            self.write_record(key, None, reads, &reads_json, StoreTicket(0))
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn invalidate<'a>(
        &'a self,
        changes: &'a ChangeSet,
        origin: ChangeOrigin,
    ) -> BoxFuture<'a, Result<Vec<InvalidatedEntry>, CacheError>> {
        async move {
            if origin == ChangeOrigin::Remote || changes.is_empty() {
                return Ok(Vec::new());
            }
            let mut conn = self.conn.clone();
            // 1. Versions first: from now on no put that started earlier and read these tables succeeds.
            let mut inv = self.bump_script.prepare_invoke();
            inv.key(self.k("seq"));
            if changes.is_everything() {
                inv.key(self.k("tall"));
            }
            for t in changes.tables.keys() {
                inv.key(self.version_key(t));
            }
            let _: u64 = inv.invoke_async(&mut conn).await.map_err(map_err)?;
            // 2. Candidates from the index, confirmed with each routing record's read set
            //    (a ghost's as a live entry's).
            let candidates: Vec<String> = self.candidates(changes).await?.into_iter().collect();
            if candidates.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for c in &candidates {
                pipe.cmd("GET").arg(self.routing_key(c));
            }
            let read_sets: Vec<Option<String>> =
                pipe.query_async(&mut conn).await.map_err(map_err)?;
            let mut doomed = Vec::new();
            let mut out = Vec::new();
            for (member, reads) in candidates.iter().zip(read_sets) {
                let Some(reads) = reads else { continue }; // expired or already removed
                let reasons = match serde_json::from_str::<ReadSet>(&reads) {
                    Ok(reads) => reads.reasons(changes, MAX_REASONS),
                    // Undecodable: remove it to be safe.
                    Err(_) => vec![crate::types::Reason::everything(None)],
                };
                if reasons.is_empty() {
                    continue;
                }
                doomed.push(member.clone());
                if let Some(key) = CacheKey::decode(member) {
                    out.push(InvalidatedEntry { key, reasons });
                }
            }
            // 3. Delete values and routing records.
            self.drop_members(&doomed).await?;
            Ok(out)
        }
        .boxed()
    }

    fn remove<'a>(&'a self, keys: &'a [CacheKey]) -> BoxFuture<'a, Result<(), CacheError>> {
        async move {
            let members: Vec<String> = keys.iter().map(CacheKey::encode).collect();
            self.drop_members(&members).await
        }
        .boxed()
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), CacheError>> {
        async move {
            let mut conn = self.conn.clone();
            // Values only. `seq` and `t:*` must survive (see the module docs), and so must
            // the index: deleting it while another instance stores could leave an entry that
            // no invalidation finds. Routing records stay as ghosts: clients may still show
            // the values.
            {
                let pattern = format!("{}e:*", glob_escape(&self.config.prefix));
                let mut cursor: u64 = 0;
                loop {
                    let (next, names) = scan(&mut conn, cursor, &pattern).await?;
                    if !names.is_empty() {
                        let _: () = redis::cmd("DEL")
                            .arg(&names)
                            .query_async(&mut conn)
                            .await
                            .map_err(map_err)?;
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn list<'a>(
        &'a self,
        query: &'a ListQuery,
    ) -> BoxFuture<'a, Result<Option<EntryPage>, CacheError>> {
        async move { self.list_values(query).await.map(Some) }.boxed()
    }
}
