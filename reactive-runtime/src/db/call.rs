//! [`ReactiveDb::call`]: runs a registered reactive function through the cache.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use reactive_codegen::model::FunctionKind;
use tracing::Instrument;

use super::changes::whole_tables;
use super::scope::CallScope;
use super::{Backend, ReactiveDb, origin};
use crate::registry::{FunctionDef, Handler, InputError};
use crate::seams::CallOrigin;
use crate::types::CacheKey;
use crate::types::{ReadSet, Source};

/// How many times [`ReactiveDb::call`] computes a query again when the race guard
/// refused to store its result (a write that may affect it was applied while it ran).
///
/// The refused value may predate that write, and the write's event was not routed to
/// the key (nothing was stored under it), so it is not handed out: the next run sees the
/// write. The engine left a routing record (ghost) for the key before the next run
/// started, so a write that refuses *that* run finds the record and its event reaches
/// the caller's tenant (after the watermark the response carries). The value of the
/// last run is handed out even when refused: it is covered unless that run read rows
/// the earlier ones did not (a known gap, see the README).
pub const REFUSED_RETRIES: usize = 2;

/// The serialized result of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutput {
    /// The output as JSON bytes, ready to splice into a response.
    pub bytes: Bytes,
    /// `true` when served from the cache.
    pub hit: bool,
    /// Where the value came from (hit, computed, or a coalesced wait).
    pub source: Source,
    /// The watermark the output reflects (see [`ReactiveDb::call_at`]).
    pub watermark: u64,
    /// Statements the handler sent in this call (every run of it, when the race guard
    /// made it compute again; statements the write protocol adds, such as pre-reads,
    /// not counted); 0 for a hit or a coalesced wait.
    pub statements: u32,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The input did not decode; the database was not touched.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The handler returned an error.
    #[error(transparent)]
    Handler(#[from] crate::Error),
    /// The function was written for another database handle type than this one
    /// (`&ReactiveDb<Postgres>` called through a `ReactiveDb<Any>`, say).
    #[error(
        "reactive function `{name}` takes another database handle type than the one it was called with"
    )]
    Backend {
        /// The procedure name.
        name: String,
    },
}

impl<DB: Backend> ReactiveDb<DB> {
    /// The registered function `name` written for this handle type, to call by name
    /// with [`ReactiveDb::call`] (procedure names are unique per handle type: an app
    /// may register the same name once per backend).
    ///
    /// ```
    /// use reactive_runtime::ReactiveDb;
    ///
    /// assert!(ReactiveDb::<sqlx::Any>::function("no.such.procedure").is_none());
    /// ```
    pub fn function(name: &str) -> Option<&'static FunctionDef> {
        let handle = std::any::TypeId::of::<ReactiveDb<DB>>();
        crate::registry::functions_unsorted()
            .find(|d| (d.backend)() == handle && d.model().name == name)
    }

    /// Reads the column types again if the catalog does not know a table `model` uses
    /// (see the module docs of `db`).
    pub(crate) async fn ensure_schema(&self, model: &reactive_codegen::model::FunctionModel) {
        let tables: Vec<&str> = model
            .dependencies
            .iter()
            .map(|d| d.table.as_str())
            .chain(model.statements.iter().flat_map(|s| {
                s.analysis
                    .reads
                    .iter()
                    .map(|r| r.table.as_str())
                    .chain(s.analysis.writes.iter().map(|w| w.table.as_str()))
            }))
            .collect();
        self.inner
            .catalog
            .ensure(&self.pool, self.inner.dialect, tables)
            .await;
    }

    /// Runs a reactive function for `tenant` with JSON `input`.
    ///
    /// The input is decoded first (an [`InputError`] never reaches the database). A
    /// query is looked up in the cache by (tenant, name, canonical input); on a miss
    /// its handler runs inside a call scope (its statements are found in the model
    /// without parsing and its reads are recorded), and the result is stored with the
    /// model's read set (from the bindings) plus the reads recorded, unless a
    /// conflicting write was applied meanwhile. A mutation runs without the cache; its
    /// writes invalidate as they execute, and its declared `invalidates(...)` tables
    /// are invalidated when it succeeds.
    pub async fn call(
        &self,
        def: &FunctionDef,
        tenant: &str,
        input: serde_json::Value,
    ) -> Result<CallOutput, CallError> {
        self.call_at(def, tenant, input, 0).await
    }

    /// [`ReactiveDb::call`] with a watermark: the newest event of `tenant` known to be
    /// reflected by a read that starts now (the event log's head, read before the
    /// call). [`CallOutput::watermark`] is what the output really reflects: this one,
    /// unless the query joined a computation another caller started, whose watermark
    /// it then carries (see [`Engine::get_or_compute_at`](crate::engine::Engine::get_or_compute_at)).
    ///
    /// The handler's writes are made for the task's origin (see
    /// [`with_principal`](crate::router::with_principal)), if any.
    pub async fn call_at(
        &self,
        def: &FunctionDef,
        tenant: &str,
        input: serde_json::Value,
        watermark: u64,
    ) -> Result<CallOutput, CallError> {
        self.call_as(def, tenant, origin::current(), input, watermark)
            .await
    }

    /// [`ReactiveDb::call_at`] for `origin`: the handle handed to the handler carries
    /// it (its writes, also from tasks it spawns, are made for it), and
    /// [`current_principal`](crate::router::current_principal) returns its principal
    /// while the handler runs.
    pub(crate) async fn call_as(
        &self,
        def: &FunctionDef,
        tenant: &str,
        origin: Option<CallOrigin>,
        input: serde_json::Value,
        watermark: u64,
    ) -> Result<CallOutput, CallError> {
        let model = def.model();
        let span = tracing::debug_span!(
            "reactive.call",
            procedure = model.name.as_str(),
            tenant,
            cache = tracing::field::Empty,
        );
        let key = (model.kind == FunctionKind::Query).then(|| {
            CacheKey::from_json((!tenant.is_empty()).then_some(tenant), &model.name, &input)
        });
        let prepared = (def.prepare)(input)?;
        if (def.backend)() != std::any::TypeId::of::<Self>() {
            return Err(CallError::Backend {
                name: model.name.clone(),
            });
        }
        let statements = Arc::new(AtomicU32::new(0));
        // A scope for one run of the handler, with the statements of its model.
        let new_scope = |bindings| {
            Arc::new(CallScope {
                name: model.name.clone(),
                index: self.inner.model_index(model),
                bindings,
                reads: Mutex::new(Vec::new()),
                origin: origin.clone(),
                statements: statements.clone(),
            })
        };
        // The handler's handle carries its call; the task-local origin is for
        // `current_principal` inside the handler.
        let run = |handler: Handler, scope: &Arc<CallScope>| {
            let handle: crate::registry::DbHandle = Box::new(self.in_call(scope.clone()));
            origin::within(origin.clone(), handler(handle))
        };
        match key {
            Some(key) => {
                let mut prepared = prepared;
                let mut retries = 0;
                loop {
                    let dialect = self.inner.dialect;
                    // Everything a run needs beyond the input is built only on a miss (a
                    // hit never needs it): the column types, the scope, and the read set
                    // (what the model promises for these bindings plus what the handler's
                    // statements recorded, refined once).
                    let compute = || async move {
                        self.ensure_schema(model).await;
                        let scope = new_scope(prepared.bindings);
                        // The read set does not depend on the rows: it is built while the
                        // handler waits for the database (polled after the handler, so the
                        // reads its first statements recorded are in it). Refining a
                        // union part by part gives the same set as refining it whole.
                        let (bytes, mut reads) =
                            futures::future::join(run(prepared.run, &scope), async {
                                let mut reads =
                                    ReadSet::from_model(&scope.index.model, &scope.bindings);
                                for r in scope.take_reads() {
                                    reads.union_owned(r);
                                }
                                self.inner.catalog.refine_reads(&mut reads, dialect);
                                reads
                            })
                            .await;
                        let bytes = bytes?;
                        // Statements sent after the first wait recorded theirs since.
                        let later = scope.take_reads();
                        if !later.is_empty() {
                            let mut extra = ReadSet::empty();
                            for r in later {
                                extra.union_owned(r);
                            }
                            self.inner.catalog.refine_reads(&mut extra, dialect);
                            reads.union_owned(extra);
                        }
                        Ok::<_, crate::Error>((Bytes::from(bytes), reads))
                    };
                    let fetched = self
                        .inner
                        .engine
                        .get_or_compute_at(&key, watermark, ReadSet::empty(), compute)
                        .instrument(span.clone())
                        .await?;
                    span.record("cache", crate::observe::trace::outcome(fetched.source));
                    if fetched.refused && retries < REFUSED_RETRIES {
                        // The value may predate a write whose event was not routed to this
                        // key; a new run sees that write (see `REFUSED_RETRIES`).
                        retries += 1;
                        tracing::debug!(
                            name = model.name,
                            retries,
                            "computing again: the result may predate a write applied while it ran"
                        );
                        let input = serde_json::from_str(&key.input).map_err(|e| InputError {
                            path: ".".into(),
                            message: e.to_string(),
                        })?;
                        prepared = (def.prepare)(input)?;
                        continue;
                    }
                    return Ok(CallOutput {
                        hit: fetched.is_hit(),
                        source: fetched.source,
                        bytes: fetched.value,
                        watermark: fetched.watermark,
                        statements: statements.load(Ordering::Relaxed),
                    });
                }
            }
            None => {
                span.record("cache", "none");
                self.ensure_schema(model).await;
                let scope = new_scope(prepared.bindings);
                let bytes = run(prepared.run, &scope).instrument(span.clone()).await?;
                if !model.invalidates.is_empty() {
                    self.inner
                        .apply_detached(whole_tables(&model.invalidates), origin.clone())
                        .instrument(span)
                        .await;
                }
                Ok(CallOutput {
                    bytes: Bytes::from(bytes),
                    hit: false,
                    source: Source::Computed,
                    watermark,
                    statements: statements.load(Ordering::Relaxed),
                })
            }
        }
    }
}
