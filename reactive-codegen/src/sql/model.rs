//! The result types of SQL analysis. These are shared by the macro (compile time),
//! the runtime (run-time analysis of statements the macro did not see) and the CLI.

use serde::{Deserialize, Serialize};

/// The SQL dialect a statement is parsed with ([`Dialect::parser`] gives sqlparser's).
///
/// The default is PostgreSQL, as everywhere a dialect is not said: the macro without
/// `dialect = ...` on a `ReactiveDb<Any>` handle, and the CLI without `--dialect`.
/// `$1` placeholders are the most common in sqlx code, and SQLite accepts them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// PostgreSQL (`$1` placeholders). The default.
    #[default]
    Postgres,
    /// SQLite (`?`, `?1`, `$1`, `:name` placeholders).
    Sqlite,
    /// MySQL / MariaDB (`?` placeholders).
    #[serde(rename = "mysql")]
    MySql,
}

/// What kind of statement this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// `SELECT`, `WITH ... SELECT`, `VALUES`, set operations.
    Select,
    /// `INSERT` (or `REPLACE`) without a conflict clause.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `INSERT ... ON CONFLICT` / `ON DUPLICATE KEY UPDATE` / `INSERT OR REPLACE` / `REPLACE`.
    Upsert,
    /// `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, ...
    Ddl,
    /// Anything else (`BEGIN`, `SET`, `PRAGMA`, unparseable input, several statements).
    Other,
}

impl Operation {
    /// `true` for statements that change rows (insert, update, delete, upsert).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::Insert | Self::Update | Self::Delete | Self::Upsert
        )
    }
}

/// A bind parameter in the SQL text.
///
/// `index` is the 1-based position of the value in the bind order, which is what
/// `.bind(..)` calls line up with:
/// - `$N` and `?N`: `N`;
/// - `?`: the order of appearance of anonymous placeholders (1, 2, 3, ...);
/// - `:name` / `@name` / `$name`: the order of first appearance among named parameters
///   (SQLite's numbering), and `name` is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Param {
    /// 1-based bind position.
    pub index: usize,
    /// The name for `:name`-style parameters.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

/// A literal value in the SQL text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Literal {
    /// A quoted string.
    String(String),
    /// A number, as written (`42`, `-1`, `3.5`).
    Number(String),
    /// `TRUE` / `FALSE`.
    Bool(bool),
    /// `NULL`.
    Null,
}

/// The value side of a key predicate: a bind parameter or a literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueRef {
    /// A bind parameter, resolved at run time.
    Param(Param),
    /// A literal written in the SQL.
    Literal(Literal),
}

/// `column = value` or `column IN (value, ...)`. `values` has one element for `=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyPredicate {
    /// Column name, lower-cased, without qualifier.
    pub column: String,
    /// The values the column is compared with (any of them).
    pub values: Vec<ValueRef>,
}

/// Which rows of a table a statement touches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(tag = "rows", content = "keys", rename_all = "lowercase")]
pub enum RowFilter {
    /// Any row: the analyser could not narrow it (or there is no WHERE).
    #[default]
    All,
    /// Only rows satisfying *every* predicate (a conjunction). Never empty.
    Keys(Vec<KeyPredicate>),
}

/// One table read by a statement, with the rows it may read.
///
/// A statement may read the same table more than once (a self-join); each access
/// is listed, and a change affects the statement if it matches any of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableRead {
    /// Table name: the last part of a schema-qualified name, lower-cased
    /// (quoted names too: merging two names can only widen invalidation).
    pub table: String,
    /// The rows read.
    pub filter: RowFilter,
}

/// One table written by a statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableWrite {
    /// Table name, normalized as in [`TableRead::table`].
    pub table: String,
    /// The operation on this table (`Insert`, `Update`, `Delete` or `Upsert`).
    pub operation: Operation,
    /// Rows affected by `UPDATE` / `DELETE` (from `WHERE`); `All` for `INSERT`
    /// (its rows are described by `inserted`).
    pub filter: RowFilter,
    /// `UPDATE`'s `SET` columns with their values (`None` when the value is an
    /// expression, e.g. `count = count + 1`). Upserts list their update columns here.
    pub set: Vec<ColumnValue>,
    /// `INSERT`'s rows, each a column → value map; `None` when the rows come from a
    /// `SELECT` or the column list is missing (values unknown).
    pub inserted: Option<Vec<Vec<ColumnValue>>>,
}

/// A column and the value assigned to it, when the value is a parameter or literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ColumnValue {
    /// Column name, lower-cased.
    pub column: String,
    /// The value, or `None` when it is an expression the analyser can't evaluate.
    pub value: Option<ValueRef>,
}

/// Why a statement's effect is unknown. An unknown statement may read and write anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum Unknown {
    /// The SQL did not parse; the parser's message.
    Parse(String),
    /// More than one statement in one string.
    MultipleStatements,
    /// DDL (`CREATE`, `ALTER`, `DROP`, `TRUNCATE`, ...).
    Ddl,
    /// A statement kind the analyser does not model (e.g. `CALL`, `MERGE`).
    Unsupported(String),
    /// The statement calls a function that is not a known pure built-in (its name as
    /// written): it may read any table and write. The only unknown a user can declare
    /// away (`dependencies(...)` or `mutation` on `#[reactive_function]`).
    Function(String),
}

/// What one SQL statement does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementAnalysis {
    /// The statement's kind.
    pub operation: Operation,
    /// Tables read, sorted by name (including tables an `UPDATE`/`DELETE`/`INSERT ... SELECT` reads).
    pub reads: Vec<TableRead>,
    /// Tables written, sorted by name: one entry per write (a writable CTE and the
    /// statement writing the same rows are two entries).
    pub writes: Vec<TableWrite>,
    /// The statement has a `RETURNING` clause.
    pub returning: bool,
    /// Set when the effect is unknown: the statement must be treated as reading
    /// and writing anything.
    pub unknown: Option<Unknown>,
}

impl StatementAnalysis {
    /// An analysis for a statement whose effect is unknown.
    pub fn unknown(operation: Operation, why: Unknown) -> Self {
        Self {
            operation,
            reads: Vec::new(),
            writes: Vec::new(),
            returning: false,
            unknown: Some(why),
        }
    }

    /// `true` if the statement may change data (a write, DDL or unknown).
    pub fn may_write(&self) -> bool {
        self.unknown.is_some() || self.operation.is_write() || !self.writes.is_empty()
    }
}
