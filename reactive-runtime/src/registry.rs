//! The registry of reactive functions. `#[reactive_function]` submits one
//! [`FunctionDef`] per function with `inventory`; the router and the TypeScript
//! generator read them with [`functions`]. No hand-written list anywhere.

use std::collections::HashMap;
use std::sync::OnceLock;

use reactive_codegen::calls::{add_whole_tables, callee_tables};
use reactive_codegen::model::FunctionModel;

pub use futures::future::BoxFuture;

/// Failure to decode a function's JSON input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input at `{path}`: {message}")]
pub struct InputError {
    /// JSON path of the offending field (`data.name`, `.` for the root).
    pub path: String,
    /// What was wrong.
    pub message: String,
}

/// The database handle a call runs with: the `ReactiveDb<DB>` the function was written
/// for, boxed (the generated code takes it back out; see [`FunctionDef::backend`]).
pub type DbHandle = Box<dyn std::any::Any + Send>;

/// A reactive function's handler, ready to run: takes the database handle, returns
/// the output as JSON bytes.
pub type Handler = Box<dyn FnOnce(DbHandle) -> BoxFuture<'static, crate::Result<Vec<u8>>> + Send>;

/// A decoded call, ready to run.
pub struct Prepared {
    /// One value per [`reactive_codegen::model::Binding`] of the function's model,
    /// in order: the key values extracted from the typed input. A value that is not a
    /// scalar (the generated code uses `{}`) is unknown: its predicates are dropped.
    pub bindings: Vec<serde_json::Value>,
    /// Runs the user's function and serializes its output to JSON bytes (once: the
    /// bytes are what the cache stores and the router sends).
    pub run: Handler,
}

/// TypeScript declarations of a function's input and output types (ts-rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsTypes {
    /// The TypeScript type expression of the input (`"OrgInput"`, or `"null"` without input).
    pub input: String,
    /// The TypeScript type expression of the output (`"Array<Agent>"`).
    pub output: String,
    /// Declarations needed by both, `(type name, declaration)`, deduplicated by name.
    pub declarations: Vec<(String, String)>,
}

/// One registered reactive function. Built by the macro as a `static`; not meant
/// to be written by hand.
pub struct FunctionDef {
    /// JSON of the function's own [`FunctionModel`]: what its body reads, without the
    /// functions it calls (see [`FunctionDef::calls`]).
    pub model_json: &'static str,
    /// Procedure names of the reactive functions the body calls (`""` for a probed
    /// callee that turned out not to be reactive). Their tables are added to
    /// [`FunctionDef::model`] when the registry resolves it.
    pub calls: &'static [&'static str],
    /// Decodes JSON input (errors carry the field path) and prepares the call.
    pub prepare: fn(serde_json::Value) -> Result<Prepared, InputError>,
    /// TypeScript types of input and output.
    pub typescript: fn() -> TsTypes,
    /// The type of the handle the function takes (`ReactiveDb<Postgres>`, ...): a router
    /// serves the functions written for its own handle type.
    pub backend: fn() -> std::any::TypeId,
    /// Lazily parsed model.
    pub model_cell: OnceLock<FunctionModel>,
}

impl FunctionDef {
    /// The function's model (parsed from JSON once), with the tables of the reactive
    /// functions it calls, transitively, as whole-table dependencies.
    pub fn model(&self) -> &FunctionModel {
        self.model_cell.get_or_init(|| {
            let mut model = self.own_model();
            model.calls = self
                .calls
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| (*c).to_owned())
                .collect();
            let callees = callee_tables(&model.name, self.calls, |name| {
                registered()
                    .get(name)
                    .map(|own| (&own.tables[..], own.calls))
            });
            add_whole_tables(&mut model.dependencies, callees);
            model
        })
    }

    /// The model as the macro emitted it, without the callees' tables.
    fn own_model(&self) -> FunctionModel {
        serde_json::from_str(self.model_json)
            .expect("the macro always emits a valid model; this is a bug in reactive-macros")
    }
}

/// What the transitive resolution needs of one registered function.
struct OwnTables {
    tables: Vec<String>,
    calls: &'static [&'static str],
}

/// Every registered function's own tables and calls, by procedure name (parsed once).
fn registered() -> &'static HashMap<String, OwnTables> {
    static REGISTERED: OnceLock<HashMap<String, OwnTables>> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        let mut by_name = HashMap::new();
        for registration in inventory::iter::<Registration> {
            let own = registration.0.own_model();
            let tables = own.dependencies.into_iter().map(|d| d.table).collect();
            by_name.entry(own.name).or_insert(OwnTables {
                tables,
                calls: registration.0.calls,
            });
        }
        by_name
    })
}

/// What the macro submits to `inventory`: a reference to the function's `static`
/// [`FunctionDef`] (a `static` may hold the lazily parsed model; a value submitted to
/// inventory directly may not, as it would be a borrowed temporary with interior mutability).
pub struct Registration(pub &'static FunctionDef);

inventory::collect!(Registration);

/// Every registered function, in inventory's (not deterministic) order.
pub(crate) fn functions_unsorted() -> impl Iterator<Item = &'static FunctionDef> {
    inventory::iter::<Registration>.into_iter().map(|r| r.0)
}

/// Every registered function, sorted by name (inventory's order is not deterministic).
pub fn functions() -> Vec<&'static FunctionDef> {
    let mut all: Vec<&'static FunctionDef> = functions_unsorted().collect();
    all.sort_by(|a, b| a.model().name.cmp(&b.model().name));
    all
}
