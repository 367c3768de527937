//! What every model shares: seeded randomness, backends, stores, scratch databases.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use reactive::cache::CacheStore;
use reactive::registry::FunctionDef;
use reactive::{Dialect, ReactiveDb};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection};

// ---------------------------------------------------------------------------------
// Seeded randomness (SplitMix64: no dependency, same sequence everywhere).

#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn master_seed() -> u64 {
    match std::env::var("MODEL_SEED") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("MODEL_SEED must be a u64, got {v:?}")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default();
            nanos ^ u64::from(std::process::id()).rotate_left(32)
        }
    }
}

pub fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{tag}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, SeqCst)
    )
}

// ---------------------------------------------------------------------------------
// Backends and stores.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Memory,
    Redis,
}

/// The URL in `var`, or `None` after printing why the test skips (panics under `CI`).
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{var} must be set when CI is set");
            }
            eprintln!("skipped: {var} not set");
            None
        }
    }
}

/// The Redis URL a run with `store` needs: `Some(None)` for the memory store,
/// `None` when the run skips.
pub fn redis_url_for(store: Store) -> Option<Option<String>> {
    match store {
        Store::Memory => Some(None),
        Store::Redis => service_url("TEST_REDIS_URL").map(Some),
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A database created for one run (a SQLite file, or a fresh PostgreSQL / MariaDB
/// database); [`Scratch::drop_all`] removes it.
pub struct Scratch {
    pub url: String,
    admin_url: Option<String>,
    database: String,
    sqlite_path: Option<std::path::PathBuf>,
}

impl Scratch {
    /// `None` when the backend's URL is not set (the skip is printed).
    pub async fn create(backend: Backend) -> Option<Self> {
        sqlx::any::install_default_drivers();
        let database = unique("reactive_proof");
        let (url, admin_url, sqlite_path) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{database}.db"));
                let _ = std::fs::remove_file(&path);
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    None,
                    Some(path),
                )
            }
            Backend::Postgres | Backend::MySql => {
                let var = if backend == Backend::Postgres {
                    "TEST_POSTGRES_URL"
                } else {
                    "TEST_MYSQL_URL"
                };
                let admin = service_url(var)?;
                let mut conn = sqlx::AnyConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {var}: {e}"));
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("create database {database}: {e}"));
                let _ = conn.close().await;
                (with_database(&admin, &database), Some(admin), None)
            }
        };
        Some(Self {
            url,
            admin_url,
            database,
            sqlite_path,
        })
    }

    /// Drops the database (or removes the file).
    pub async fn drop_all(&self) {
        if let Some(admin) = &self.admin_url
            && let Ok(mut conn) = sqlx::AnyConnection::connect(admin).await
        {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {}",
                self.database
            )))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
        if let Some(path) = &self.sqlite_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A Redis store under a key prefix of its own (`prefix`: share one between instances).
#[cfg(feature = "redis")]
pub fn redis_store_at(
    url: &str,
    prefix: &str,
    ttl: Option<std::time::Duration>,
) -> Arc<dyn CacheStore> {
    use reactive::cache::redis::{RedisConfig, RedisStore};
    let mut config = RedisConfig::new(url).prefix(prefix);
    if let Some(ttl) = ttl {
        config = config.ttl(ttl);
    }
    Arc::new(RedisStore::new(config).expect("redis store"))
}

#[cfg(not(feature = "redis"))]
pub fn redis_store_at(
    _url: &str,
    _prefix: &str,
    _ttl: Option<std::time::Duration>,
) -> Arc<dyn CacheStore> {
    panic!("the Redis store needs the `redis` feature (run with --all-features)")
}

/// A Redis store under a fresh key prefix.
pub fn redis_store(url: &str) -> Arc<dyn CacheStore> {
    redis_store_at(url, &format!("{}:", unique("reactive:proof")), None)
}

/// SQL for the raw pool: `$N` → `?` on MySQL (the runtime does this for `ReactiveDb`).
pub fn sql(dialect: Dialect, text: &str) -> String {
    if dialect != Dialect::MySql {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

pub fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializable")
}

/// The registered definition of a procedure (TeamHub's or this test's).
pub fn def(name: &str) -> &'static FunctionDef {
    reactive::registry::functions()
        .into_iter()
        .find(|d| d.model().name == name)
        .unwrap_or_else(|| panic!("reactive function `{name}` is not registered"))
}

/// Expected write failures (not found, foreign keys, lock conflicts) are not errors of
/// the model; print them only when asked.
pub fn tracing_note(e: &str) {
    if std::env::var_os("MODEL_VERBOSE").is_some() {
        eprintln!("write failed (expected under random writes): {e}");
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Keeps the handle type named in one place.
pub type Db = ReactiveDb<sqlx::Any>;
