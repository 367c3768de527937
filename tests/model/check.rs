//! The checks every model runs: each reactive read against the database, sweeps with
//! the writers stopped, and the unnecessary-invalidation measure.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reactive::Dialect;
use reactive::cache::CacheKey;
use reactive::db::{CallOutput, InvalidationListener};
use reactive::engine::{InvalidationReport, Source};
use reactive::registry::BoxFuture;
use serde_json::Value;
use sqlx::AnyPool;

use crate::common::{Db, Rng, def, env_u64};

/// A serialized result as kept by the test.
type Bytes = Vec<u8>;

/// A query key of a model: what the cache is asked, and the same SQL on the raw pool.
pub(crate) trait ModelQuery: Debug + Send + Sync {
    fn procedure(&self) -> &'static str;
    /// The tenant the query is asked for (its cache key's tenant).
    fn org(&self) -> &str;
    fn input(&self) -> Value;
    fn cache_key(&self) -> CacheKey {
        CacheKey::from_json(Some(self.org()), self.procedure(), &self.input())
    }
    /// The handler's SQL on the raw pool (no interception, no cache).
    async fn direct(&self, pool: &AnyPool, d: Dialect) -> Result<Value, sqlx::Error>;
}

// ---------------------------------------------------------------------------------
// Recording invalidations (for the unnecessary-invalidation measure).

#[derive(Default)]
pub struct Recorder {
    /// Last value seen for each cache key (computed or hit).
    known: Mutex<HashMap<CacheKey, (Bytes, u64)>>,
    /// Entries invalidated and not yet recomputed: value dropped, invalidation sequence,
    /// and whether every reason was a relation edge.
    dropped: Mutex<HashMap<CacheKey, (Bytes, u64, bool)>>,
    pub reports: AtomicU64,
    pub entries: AtomicU64,
    pub unnecessary: AtomicU64,
    pub necessary: AtomicU64,
    /// Of `unnecessary`, those whose every reason was a relation edge.
    pub unnecessary_via_relation: AtomicU64,
    /// Procedure → (unnecessary, resolved).
    by_procedure: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Reports captured while `capture` is on (precision test).
    pub captured: Mutex<Option<Vec<Arc<InvalidationReport>>>>,
}

pub struct Listener(pub Arc<Recorder>, pub Option<Arc<dyn InvalidationListener>>);

impl Listener {
    /// Records, then hands the report to `next` (e.g. the router's realtime listener).
    pub fn then(rec: Arc<Recorder>, next: Arc<dyn InvalidationListener>) -> Self {
        Self(rec, Some(next))
    }
}

impl InvalidationListener for Listener {
    fn on_invalidation(&self, report: Arc<InvalidationReport>) -> BoxFuture<'static, ()> {
        let rec = self.0.clone();
        let next = self
            .1
            .as_ref()
            .map(|next| next.on_invalidation(report.clone()));
        Box::pin(async move {
            rec.reports.fetch_add(1, SeqCst);
            rec.entries.fetch_add(report.entries.len() as u64, SeqCst);
            {
                let mut known = rec.known.lock().unwrap();
                let mut dropped = rec.dropped.lock().unwrap();
                for entry in &report.entries {
                    if let Some((value, _)) = known.remove(&entry.key) {
                        let via_relation = entry.reasons.iter().all(|r| r.relation.is_some());
                        dropped.entry(entry.key.clone()).or_insert((
                            value,
                            report.sequence,
                            via_relation,
                        ));
                    }
                }
            }
            if let Some(captured) = rec.captured.lock().unwrap().as_mut() {
                captured.push(report);
            }
            if let Some(next) = next {
                next.await;
            }
        })
    }

    fn bind(self: Arc<Self>) -> Arc<dyn InvalidationListener> {
        match &self.1 {
            // The next listener may read the writer's context when bound.
            Some(next) => Arc::new(Listener(self.0.clone(), Some(next.clone().bind()))),
            None => self,
        }
    }
}

impl Recorder {
    /// Records a call's result; `started` is the engine sequence before the call.
    pub fn observe(&self, key: &CacheKey, bytes: &[u8], source: Source, started: u64) {
        if source == Source::Computed {
            let mut dropped = self.dropped.lock().unwrap();
            if let Some((old, seq, via_relation)) = dropped.get(key) {
                // Only a computation that began after the invalidation tells whether it
                // was needed.
                if started >= *seq {
                    let mut split = self.by_procedure.lock().unwrap();
                    let split = split.entry(key.procedure.clone()).or_default();
                    split.1 += 1;
                    if old.as_slice() == bytes {
                        split.0 += 1;
                        self.unnecessary.fetch_add(1, SeqCst);
                        if *via_relation {
                            self.unnecessary_via_relation.fetch_add(1, SeqCst);
                        }
                    } else {
                        self.necessary.fetch_add(1, SeqCst);
                    }
                    dropped.remove(key);
                }
            }
        }
        self.known
            .lock()
            .unwrap()
            .insert(key.clone(), (bytes.to_vec(), started));
    }

    /// `unnecessary of resolved (share%; via relation edges)`.
    pub fn summary(&self) -> String {
        let unnecessary = self.unnecessary.load(SeqCst);
        let via_relation = self.unnecessary_via_relation.load(SeqCst);
        let resolved = unnecessary + self.necessary.load(SeqCst);
        let share = if resolved == 0 {
            0.0
        } else {
            100.0 * unnecessary as f64 / resolved as f64
        };
        let split: Vec<String> = self
            .by_procedure
            .lock()
            .unwrap()
            .iter()
            .map(|(procedure, (u, r))| format!("{procedure} {u}/{r}"))
            .collect();
        format!(
            "unnecessary {unnecessary} of {resolved} resolved ({share:.1}%; {via_relation} of them only via relation edges; per procedure, unnecessary/resolved: {})",
            split.join(", ")
        )
    }
}

// ---------------------------------------------------------------------------------
// Checked reads and sweeps.

#[derive(Default)]
pub struct Counts {
    pub reads: AtomicU64,
    pub hits: AtomicU64,
    pub strict_reads: AtomicU64,
    pub unverified_reads: AtomicU64,
    pub read_errors: AtomicU64,
    pub stale: AtomicU64,
    pub writes: AtomicU64,
    pub write_errors: AtomicU64,
    pub moves: AtomicU64,
    pub tx_commits: AtomicU64,
    pub tx_rollbacks: AtomicU64,
    pub sweeps: AtomicU64,
    pub sweep_reads: AtomicU64,
    /// Writes started / finished (a read is strictly checkable when none overlapped).
    pub writes_started: AtomicU64,
    pub writes_finished: AtomicU64,
}

/// The state of the checks of one run.
pub struct Checker {
    pub rec: Arc<Recorder>,
    pub counts: Counts,
    /// Writers hold it shared for each write; a sweep holds it exclusively.
    pub gate: tokio::sync::RwLock<()>,
    stale_examples: Mutex<Vec<String>>,
}

impl Checker {
    pub fn new(rec: Arc<Recorder>) -> Self {
        Self {
            rec,
            counts: Counts::default(),
            gate: tokio::sync::RwLock::new(()),
            stale_examples: Mutex::new(Vec::new()),
        }
    }

    pub fn stale(&self, what: String) {
        self.counts.stale.fetch_add(1, SeqCst);
        let mut examples = self.stale_examples.lock().unwrap();
        if examples.len() < 10 {
            examples.push(what);
        }
    }

    pub fn stale_examples(&self) -> Vec<String> {
        self.stale_examples.lock().unwrap().clone()
    }

    /// Runs one write under the gate, counting it; `write` says whether it succeeded.
    pub async fn write(&self, write: impl Future<Output = bool>) {
        let _write = self.gate.read().await;
        let c = &self.counts;
        c.writes_started.fetch_add(1, SeqCst);
        if write.await {
            c.writes.fetch_add(1, SeqCst);
        } else {
            c.write_errors.fetch_add(1, SeqCst);
        }
        c.writes_finished.fetch_add(1, SeqCst);
    }

    /// Counts a read's output (and records it when `observe`); its value.
    fn counted<Q: ModelQuery>(&self, q: &Q, out: &CallOutput, seq: u64, observe: bool) -> Value {
        let c = &self.counts;
        c.reads.fetch_add(1, SeqCst);
        if out.hit {
            c.hits.fetch_add(1, SeqCst);
        }
        if observe {
            self.rec
                .observe(&q.cache_key(), &out.bytes, out.source, seq);
        }
        serde_json::from_slice(&out.bytes).expect("JSON output")
    }

    /// A reactive read through `db`, checked against direct queries before and after it.
    /// `observe`: feed the unnecessary-invalidation measure (reads of the instance whose
    /// invalidations the recorder hears).
    pub async fn checked_read<Q: ModelQuery>(&self, db: &Db, q: &Q, observe: bool) {
        let c = &self.counts;
        let pool = db.pool();
        let d = db.dialect();
        let started_before = c.writes_started.load(SeqCst);
        let finished_before = c.writes_finished.load(SeqCst);
        let Ok(before) = q.direct(pool, d).await else {
            c.read_errors.fetch_add(1, SeqCst);
            return;
        };
        let seq = db.engine().sequence().await;
        let out = db.call(def(q.procedure()), q.org(), q.input()).await;
        let after = q.direct(pool, d).await;
        let started_after = c.writes_started.load(SeqCst);
        let (out, after) = match (out, after) {
            (Ok(out), Ok(after)) => (out, after),
            _ => {
                c.read_errors.fetch_add(1, SeqCst);
                return;
            }
        };
        let value = self.counted(q, &out, seq, observe);
        let quiet = started_before == finished_before && started_after == started_before;
        if quiet {
            c.strict_reads.fetch_add(1, SeqCst);
        }
        if value == before || value == after {
            return;
        }
        if quiet {
            self.stale(format!(
                "{q:?} ({:?}): reactive {value} but the database says {after}",
                out.source
            ));
        } else {
            c.unverified_reads.fetch_add(1, SeqCst);
        }
    }

    /// With writers stopped (the caller holds `gate` exclusively): every query key
    /// through the cache of `db` equals the database. `observe` as in
    /// [`Checker::checked_read`].
    pub async fn sweep_quiet<Q: ModelQuery>(&self, db: &Db, queries: &[Q], observe: bool) {
        let c = &self.counts;
        c.sweeps.fetch_add(1, SeqCst);
        let pool = db.pool();
        let d = db.dialect();
        for q in queries {
            let seq = db.engine().sequence().await;
            let out = match db.call(def(q.procedure()), q.org(), q.input()).await {
                Ok(out) => out,
                Err(e) => {
                    c.read_errors.fetch_add(1, SeqCst);
                    eprintln!("sweep read {q:?} failed: {e}");
                    continue;
                }
            };
            let Ok(direct) = q.direct(pool, d).await else {
                c.read_errors.fetch_add(1, SeqCst);
                continue;
            };
            c.sweep_reads.fetch_add(1, SeqCst);
            c.strict_reads.fetch_add(1, SeqCst);
            let value = self.counted(q, &out, seq, observe);
            if value != direct {
                self.stale(format!(
                    "sweep {q:?} ({:?}): reactive {value} but the database says {direct}",
                    out.source
                ));
            }
        }
    }

    /// The figures every model prints.
    pub fn summary(&self, db: &Db) -> String {
        let c = &self.counts;
        let stats = db.stats();
        let reads = c.reads.load(SeqCst);
        let hits = c.hits.load(SeqCst);
        format!(
            "reads {reads} (hits {hits}, {:.1}%; strictly checked {}, unverified {}, errors {}; sweeps {} with {} reads), \
             writes {} ok + {} failed (moves {}, tx commits {}, rollbacks/drops {}), \
             invalidations {} applied, {} entries invalidated ({} via listener reports), {}, \
             engine: hits {} misses {} coalesced {} stores dropped {} store errors {}; pre-reads {} (fallbacks {}), \
             stale reads {}",
            100.0 * hits as f64 / reads.max(1) as f64,
            c.strict_reads.load(SeqCst),
            c.unverified_reads.load(SeqCst),
            c.read_errors.load(SeqCst),
            c.sweeps.load(SeqCst),
            c.sweep_reads.load(SeqCst),
            c.writes.load(SeqCst),
            c.write_errors.load(SeqCst),
            c.moves.load(SeqCst),
            c.tx_commits.load(SeqCst),
            c.tx_rollbacks.load(SeqCst),
            stats.engine.invalidations,
            stats.engine.entries_invalidated,
            self.rec.entries.load(SeqCst),
            self.rec.summary(),
            stats.engine.hits,
            stats.engine.misses,
            stats.engine.coalesced_waits,
            stats.engine.stores_dropped,
            stats.engine.store_errors,
            stats.pre_reads,
            stats.pre_read_fallbacks,
            c.stale.load(SeqCst),
        )
    }

    /// Fails on any stale read, a run that did nothing, or store errors.
    pub fn assert_clean(&self, db: &Db, what: &str, seed: u64) {
        let c = &self.counts;
        let examples = self.stale_examples();
        assert!(
            examples.is_empty(),
            "{} stale read(s) ({what}, replay with MODEL_SEED={seed}):\n{}",
            c.stale.load(SeqCst),
            examples.join("\n")
        );
        assert!(
            c.writes.load(SeqCst) > 0 && c.hits.load(SeqCst) > 0,
            "the run did nothing useful"
        );
        assert_eq!(db.stats().engine.store_errors, 0, "cache store errors");
    }
}

// ---------------------------------------------------------------------------------
// The tasks of a run.

/// What a model's reader and writer tasks do.
pub(crate) trait Model: Send + Sync + 'static {
    fn checker(&self) -> &Checker;
    /// Reader `t`'s next checked read.
    fn read(&self, t: usize, rng: &mut Rng) -> impl Future<Output = ()> + Send;
    /// One random write of writer `t` (its `n`th operation); whether it succeeded.
    fn random_write(&self, rng: &mut Rng, t: usize, n: u64) -> impl Future<Output = bool> + Send;
    /// Stops the writers and checks every query key.
    fn sweep(&self) -> impl Future<Output = ()> + Send;
}

/// How a run's tasks are driven.
pub struct Drive {
    pub seed: u64,
    /// Task `t`'s operations follow from `seed` and `t + salt`.
    pub salt: u64,
    pub secs: u64,
    pub readers: usize,
    pub writers: usize,
    /// Time between sweeps (each stops the writers while it reads every key).
    pub sweep_every: Duration,
}

/// Runs the reader and writer tasks for `secs` (at most `MODEL_MAX_OPS` operations
/// each, default 50 000) with a sweep every `sweep_every`, then sweeps twice.
pub async fn drive<M: Model>(model: Arc<M>, how: Drive) {
    let Drive {
        seed,
        salt,
        secs,
        readers,
        writers,
        sweep_every,
    } = how;
    let max_ops = env_u64("MODEL_MAX_OPS", 50_000);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for t in 0..readers + writers {
        let model = model.clone();
        let mut rng = Rng(seed ^ (t as u64 + salt).wrapping_mul(0xA24B_AED4_963E_E407));
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline && n < max_ops {
                n += 1;
                if t < readers {
                    model.read(t, &mut rng).await;
                } else {
                    model
                        .checker()
                        .write(model.random_write(&mut rng, t, n))
                        .await;
                    // Leave quiet moments in which reads are strictly checkable.
                    let pause = rng.below(3) as u64;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }));
    }
    {
        let model = model.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() + sweep_every < deadline {
                tokio::time::sleep(sweep_every).await;
                model.sweep().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("model task panicked");
    }
    model.sweep().await;
    // A second sweep reads what the first one stored: hits must still be fresh.
    model.sweep().await;
}
