//! Randomized, seeded model tests of [`ReactiveDb`](reactive::ReactiveDb), and a
//! precision test.
//!
//! # Model tests
//!
//! Reader tasks call queries through `db.call` (the cache) while writer tasks run
//! mutations, plain writes and transactions that commit, roll back or are dropped.
//! Every reactive read is compared with the same query run on `db.pool()` (no
//! interception, no cache):
//!
//! - during the run, a read is bracketed by a direct query before and after it; the
//!   reactive value must equal one of them. When it equals neither and no write was in
//!   flight from the first direct query to the last, the read is **stale**; when a
//!   write overlapped, the read is *unverified* (it may show an intermediate state);
//! - every second and at the end, a sweep stops the writers (after their writes, and
//!   the invalidations those writes await, completed) and reads *every* query key
//!   through the cache: each must equal the direct query, else it is **stale**.
//!
//! Any stale read fails the test. Unnecessary invalidations are measured: an entry
//! invalidated while holding value `v` whose next computation (started after the
//! invalidation) gives `v` again was invalidated for nothing.
//!
//! Two models share these checks ([`check`]):
//!
//! - [`teamhub`]: TeamHub's handlers and schema, plus a test-only mutation that
//!   *moves* an agent to another organization; and the precision test;
//! - [`shapes`]: a schema of its own with the shapes the analyser and the runtime find
//!   hardest (see its docs).
//!
//! Each task's operation sequence is reproducible from the printed seed (`MODEL_SEED`
//! replays it); the interleaving of tasks is up to the scheduler. `MODEL_SECS`
//! (default 5) bounds each run; `MODEL_MAX_OPS` (default 50 000) bounds the operations
//! per task.
//!
//! Backends: SQLite always (temporary file); PostgreSQL with `TEST_POSTGRES_URL`,
//! MariaDB/MySQL with `TEST_MYSQL_URL` (a fresh database each run, dropped at the end);
//! cache stores: memory always, Redis with `TEST_REDIS_URL` (unique key prefix). A
//! missing URL skips with a message, or panics when `CI` is set.

mod check;
mod common;
// The realtime tests' harness: token authorizer, server on port 0, SSE frame reader.
#[path = "../../reactive-runtime/tests/realtime_support/mod.rs"]
mod realtime_support;
mod shapes;
mod teamhub;
