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

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use super::PageFill;
use crate::seams::{CacheError, CacheStore, EntryPage, ListQuery, PutOutcome, StoreTicket};
use crate::types::{CacheKey, ChangeOrigin};
use crate::types::{ChangeSet, InvalidatedEntry, MAX_REASONS, ReadSet};

/// Settings of a [`RedisStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prefix of every key (default `reactive:cache:`); distinct apps or tests use distinct prefixes.
    pub prefix: String,
    /// Lifetime of an entry (default 5 minutes).
    pub ttl: Duration,
    /// Largest single entry accepted (default 8 MiB).
    pub max_entry_bytes: u64,
    /// Time limit of one command (default 1 s).
    pub response_timeout: Duration,
    /// Time limit of one connection attempt (default 1 s).
    pub connection_timeout: Duration,
    /// How long a routing record outlives its value (default 24 h: at least as long as a
    /// client may keep data and resume its stream from the event log); see the module docs.
    pub ghost_retention: Duration,
    /// Upper bound of the routing records' approximate total size (default 64 MiB); the
    /// oldest go first, with their values.
    pub max_routing_bytes: u64,
}

impl RedisConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "reactive:cache:".to_owned(),
            ttl: Duration::from_secs(300),
            max_entry_bytes: 8 * 1024 * 1024,
            response_timeout: Duration::from_secs(1),
            connection_timeout: Duration::from_secs(1),
            ghost_retention: Duration::from_secs(24 * 3600),
            max_routing_bytes: 64 * 1024 * 1024,
        }
    }

    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets how long a routing record outlives its value.
    pub fn ghost_retention(mut self, retention: Duration) -> Self {
        self.ghost_retention = retention;
        self
    }
}

/// Stores a value and its routing record, or (ARGV[11] = 1) a routing record alone.
/// KEYS: value, routing record, `iall`, `rsize`, `rbytes`, then `nt` version keys, `nc`
/// column sets, the other index zsets. ARGV: ticket, ttl, value, read set, nt, nc,
/// routing lifetime, byte bound, member, prefix, ghost flag, then the `nc` columns.
const PUT_SCRIPT: &str = r"
local start = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local nt = tonumber(ARGV[5])
local nc = tonumber(ARGV[6])
local keep = tonumber(ARGV[7])
local maxb = tonumber(ARGV[8])
local member = ARGV[9]
local prefix = ARGV[10]
local ghost = ARGV[11] == '1'
local F = 5
if ghost then
  -- a live value keeps the routing record it was stored with
  if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
else
  for i = F + 1, F + nt do
    local v = redis.call('GET', KEYS[i])
    if v and tonumber(v) > start then return 0 end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function forget(m)
  local sz = redis.call('HGET', KEYS[4], m)
  if sz then
    redis.call('HDEL', KEYS[4], m)
    redis.call('DECRBY', KEYS[5], sz)
  end
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)) do
  forget(m)
  redis.call('ZREM', KEYS[3], m)
end
local size = string.len(ARGV[4]) + string.len(member) + 64
forget(member)
redis.call('HSET', KEYS[4], member, size)
redis.call('INCRBY', KEYS[5], size)
if not ghost then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
end
redis.call('SET', KEYS[2], ARGV[4], 'PX', keep)
redis.call('ZADD', KEYS[3], now + keep, member)
for j = 1, nc do
  local k = KEYS[F + nt + j]
  redis.call('SADD', k, ARGV[11 + j])
  redis.call('PEXPIRE', k, keep)
end
for i = F + nt + nc + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZADD', KEYS[i], now + keep, member)
  redis.call('PEXPIRE', KEYS[i], keep)
end
local total = tonumber(redis.call('GET', KEYS[5]) or '0')
while total > maxb do
  local p = redis.call('ZPOPMIN', KEYS[3])
  if #p == 0 then break end
  forget(p[1])
  redis.call('DEL', prefix .. 'e:' .. p[1], prefix .. 'r:' .. p[1])
  total = tonumber(redis.call('GET', KEYS[5]) or '0')
end
return 1
";

/// Deletes values with their routing records. KEYS: `iall`, `rsize`, `rbytes`.
/// ARGV: prefix, then members.
const DROP_SCRIPT: &str = r"
for i = 2, #ARGV do
  local m = ARGV[i]
  local sz = redis.call('HGET', KEYS[2], m)
  if sz then
    redis.call('HDEL', KEYS[2], m)
    redis.call('DECRBY', KEYS[3], sz)
  end
  redis.call('ZREM', KEYS[1], m)
  redis.call('DEL', ARGV[1] .. 'e:' .. m, ARGV[1] .. 'r:' .. m)
end
return 1
";

const BUMP_SCRIPT: &str = r"
local g = redis.call('INCR', KEYS[1])
for i = 2, #KEYS do redis.call('SET', KEYS[i], g) end
return g
";

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

    fn k(&self, suffix: &str) -> String {
        format!("{}{}", self.config.prefix, suffix)
    }
    fn entry_key(&self, key: &CacheKey) -> String {
        self.k(&format!("e:{}", key.encode()))
    }
    fn routing_key(&self, member: &str) -> String {
        self.k(&format!("r:{member}"))
    }
    fn version_key(&self, table: &str) -> String {
        self.k(&format!("t:{table}"))
    }
    fn whole_key(&self, table: &str) -> String {
        self.k(&format!("iw:{table}"))
    }
    fn columns_key(&self, table: &str) -> String {
        self.k(&format!("ic:{table}"))
    }
    fn column_key(&self, table: &str, column: &str) -> String {
        self.k(&format!("ia:{}", json(&(table, column))))
    }
    fn value_key(&self, table: &str, column: &str, value: &str) -> String {
        self.k(&format!("iv:{}", json(&(table, column, value))))
    }

    /// The index keys an entry with `reads` is added to (besides `iall`), and
    /// `(columns key, column)` pairs.
    fn index_keys(&self, reads: &ReadSet) -> (Vec<String>, Vec<(String, String)>) {
        let mut zsets = Vec::new();
        let mut columns = Vec::new();
        if reads.everything {
            zsets.push(self.k("ieverything"));
        }
        for (table, alts) in &reads.tables {
            for alt in alts {
                // Same choice as the in-process index: the column with fewest values.
                match alt
                    .columns
                    .iter()
                    .min_by_key(|(c, vs)| (vs.len(), c.as_str()))
                {
                    None => zsets.push(self.whole_key(table)),
                    Some((column, values)) => {
                        columns.push((self.columns_key(table), column.clone()));
                        zsets.push(self.column_key(table, column));
                        zsets.extend(
                            values
                                .iter()
                                .map(|v| self.value_key(table, column, v.as_str())),
                        );
                    }
                }
            }
        }
        let mut seen = HashSet::new();
        zsets.retain(|z| seen.insert(z.clone()));
        (zsets, columns)
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

/// One `SCAN` step over the keys matching `pattern` (up to 1000): the next cursor (0:
/// done) and the names, possibly some seen before.
async fn scan(
    conn: &mut ConnectionManager,
    cursor: u64,
    pattern: &str,
) -> Result<(u64, Vec<String>), CacheError> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(1000)
        .query_async(conn)
        .await
        .map_err(map_err)
}

/// `SCAN` calls one [`CacheStore::list`] makes at most (each asks for 1000 keys): a
/// listing costs Redis a bounded amount of work however many keys it holds; past it,
/// the page's count of the rest is a lower bound.
const LIST_SCANS: usize = 64;

impl RedisStore {
    /// One page of the values under `e:`, found with `SCAN` (never `KEYS`), the tenant
    /// filter in the `MATCH` pattern; then size, remaining lifetime and read set of the
    /// listed ones in one pipeline. The store counts no hits (that would cost a write
    /// per lookup).
    async fn list_values(&self, query: &ListQuery) -> Result<EntryPage, CacheError> {
        let mut conn = self.conn.clone();
        let values = self.k("e:");
        // Encoded keys are JSON arrays starting with the tenant.
        let pattern = match &query.tenant {
            Some(t) => format!("{}\\[{},*", glob_escape(&values), glob_escape(&json(t))),
            None => format!("{}*", glob_escape(&values)),
        };
        let mut fill = PageFill::new(query);
        let mut seen = HashSet::new();
        let mut listed: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        let mut exact = false;
        for _ in 0..LIST_SCANS {
            let (next, names) = scan(&mut conn, cursor, &pattern).await?;
            for name in names {
                // SCAN may return a key twice.
                if !seen.insert(name.clone()) {
                    continue;
                }
                if listed.len() < query.max_entries {
                    listed.push(name);
                } else {
                    fill.skip();
                }
            }
            if next == 0 {
                exact = true;
                break;
            }
            cursor = next;
        }
        if listed.is_empty() {
            return Ok(fill.finish(exact));
        }
        let mut pipe = redis::pipe();
        for name in &listed {
            let member = &name[values.len()..];
            pipe.cmd("STRLEN").arg(name);
            pipe.cmd("PTTL").arg(name);
            pipe.cmd("GET").arg(self.routing_key(member));
        }
        let answers: Vec<redis::Value> = pipe.query_async(&mut conn).await.map_err(map_err)?;
        let ttl_ms = self.config.ttl.as_millis() as i64;
        let mut answers = answers.into_iter();
        for name in &listed {
            let (Some(len), Some(pttl), Some(reads)) =
                (answers.next(), answers.next(), answers.next())
            else {
                break;
            };
            let (Ok(len), Ok(pttl), Ok(Some(reads))) = (
                redis::from_redis_value::<u64>(len),
                redis::from_redis_value::<i64>(pttl),
                redis::from_redis_value::<Option<String>>(reads),
            ) else {
                continue; // gone between SCAN and now
            };
            if pttl < 0 {
                continue; // expired meanwhile (-2), or never expires (-1: not ours)
            }
            let Some(key) = CacheKey::decode(&name[values.len()..]) else {
                continue;
            };
            let reads =
                serde_json::from_str::<ReadSet>(&reads).unwrap_or_else(|_| ReadSet::everything());
            let age = u64::try_from(ttl_ms - pttl).unwrap_or(0);
            fill.offer(key, len, age, None, reads);
        }
        Ok(fill.finish(exact))
    }
}

/// Escapes Redis glob metacharacters.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
