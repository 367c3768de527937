//! Listing the stored values for the dev tools, with bounded `SCAN`s.

use std::collections::HashSet;

use redis::aio::ConnectionManager;

use super::{RedisStore, json, map_err};
use crate::cache::PageFill;
use crate::seams::{CacheError, EntryPage, ListQuery};
use crate::types::{CacheKey, ReadSet};

/// One `SCAN` step over the keys matching `pattern` (up to 1000): the next cursor (0:
/// done) and the names, possibly some seen before.
pub(super) async fn scan(
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

/// `SCAN` calls one [`CacheStore::list`](crate::seams::CacheStore::list) makes at most (each asks for 1000 keys): a
/// listing costs Redis a bounded amount of work however many keys it holds; past it,
/// the page's count of the rest is a lower bound.
const LIST_SCANS: usize = 64;

impl RedisStore {
    /// One page of the values under `e:`, found with `SCAN` (never `KEYS`), the tenant
    /// filter in the `MATCH` pattern; then size, remaining lifetime and read set of the
    /// listed ones in one pipeline. The store counts no hits (that would cost a write
    /// per lookup).
    pub(super) async fn list_values(&self, query: &ListQuery) -> Result<EntryPage, CacheError> {
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
pub(super) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
