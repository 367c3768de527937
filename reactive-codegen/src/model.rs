//! The compile-time model of one `#[reactive_function]`: the contract between the
//! macro (which builds it from the handler body) and the runtime (which reads it).
//!
//! The macro serializes a [`FunctionModel`] to JSON and embeds it as a
//! `&'static str` in the function's registration; the runtime deserializes it once
//! per process. No SQL is parsed at run time for the statements listed here.

use serde::{Deserialize, Serialize};

use crate::sql::{Dialect, StatementAnalysis};

/// Whether a function only reads (cacheable) or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FunctionKind {
    /// Reads only; results are cached and invalidated.
    Query,
    /// Writes; never cached; its writes invalidate queries.
    Mutation,
}

/// A value the generated code extracts from the typed input before the handler runs
/// (for example `input.organization_id`). Bindings are numbered by their position
/// in [`FunctionModel::bindings`]; at run time the generated code returns one
/// `serde_json::Value` per binding, in that order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Binding {
    /// The Rust expression, as written (`input.organization_id`).
    pub source: String,
    /// The field path below the input argument (`["organization_id"]`).
    pub path: Vec<String>,
}

/// Where a key value comes from, after tracing a bind parameter to its expression.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    /// An input field: index into [`FunctionModel::bindings`].
    Binding(usize),
    /// A literal in the SQL text.
    Literal(crate::sql::Literal),
}

/// `column = one of values` on a table, with values traced to their source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyDependency {
    /// Column name, lower-cased.
    pub column: String,
    /// The values (any of them).
    pub values: Vec<KeySource>,
}

/// One table a query depends on. `keys` empty means every row of the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableDependency {
    /// Table name, normalized (see [`crate::sql::TableRead::table`]).
    pub table: String,
    /// Conjunction of key predicates; empty = the whole table.
    pub keys: Vec<KeyDependency>,
}

/// One SQL statement the body sends, with its analysis and the sources of its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementModel {
    /// The SQL text exactly as in the literal; the runtime looks statements up by it.
    pub sql: String,
    /// The analysis of that text.
    pub analysis: StatementAnalysis,
    /// For each bind position (index 0 = parameter 1): the binding it traces to, if any.
    pub params: Vec<Option<usize>>,
}

/// Everything the runtime needs to know about one reactive function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionModel {
    /// Public procedure name (`agents.findMany`).
    pub name: String,
    /// The Rust function's name.
    pub rust_name: String,
    /// Query or mutation.
    pub kind: FunctionKind,
    /// Events caused by this mutation must be acknowledged by clients.
    pub requires_ack: bool,
    /// Clients subscribed to a query key of this query get its new result pushed
    /// after a write invalidates it, instead of refetching (`#[reactive_function(push)]`).
    #[serde(default)]
    pub push: bool,
    /// The dialect the SQL was analysed with.
    pub dialect: Dialect,
    /// Values extracted from the input (see [`Binding`]).
    pub bindings: Vec<Binding>,
    /// What a query reads (inferred, plus explicit `dependencies(...)` as whole tables
    /// where the body could not be analysed). Sorted by table.
    pub dependencies: Vec<TableDependency>,
    /// Tables a mutation declares it writes (`invalidates(...)`), beyond what the body shows.
    pub invalidates: Vec<String>,
    /// Statements found in the body.
    pub statements: Vec<StatementModel>,
    /// Names of reactive functions this one calls (their dependencies are included above).
    pub calls: Vec<String>,
}
