//! Function calls: which ones the analysis can see through.
//!
//! A function is SQL the analyser cannot read: a user-defined one may read any table
//! (its reads would be missed, so its results served stale) or write (a cached call
//! would skip its side effect). So a statement calling a function that is not on a
//! small allowlist of built-ins is unknown, [`Unknown::Function`]: it reads and may
//! write anything. This holds for scalar calls (`SELECT archive_agent($1)`,
//! `WHERE f(x)`) and for table-valued calls in `FROM` (`FROM f($1)`, `LATERAL f(x)`).
//!
//! The allowlists hold built-ins that read no table and change nothing, per dialect:
//! string, number, date, JSON and array functions, aggregates, window functions, and
//! the table-valued built-ins (`generate_series`, `unnest`, `json_each`,
//! `jsonb_array_elements`, ...), which read nothing either. Some are not deterministic
//! (`now()`, `current_timestamp`, `random()`, `gen_random_uuid()`): they read no
//! table, so invalidation cannot be wrong about them, but a *cached* query keeps the
//! value of its first run until a write invalidates it (a query whose result depends
//! on the clock is cacheable only until invalidated). Sequence and session functions
//! (`nextval`, `setval`, `last_insert_id`, `pg_advisory_lock`, `set_config`, `sleep`,
//! ...) are left out on purpose: they have effects.
//!
//! A name matches only unqualified (or `pg_catalog.`-qualified on PostgreSQL); a
//! quoted name must be written in lower case. Not detected: a user function that
//! overloads a built-in's name for other argument types (PostgreSQL), or an
//! application-defined SQLite function replacing a built-in.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Statement, TableFactor, Visit, Visitor,
};

use super::model::Dialect;

/// Built-ins of every dialect: pure, reading no table.
const COMMON: &[&str] = &[
    "abs",
    "avg",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "coalesce",
    "concat",
    "concat_ws",
    "count",
    "cume_dist",
    "current_date",
    "current_time",
    "current_timestamp",
    "dense_rank",
    "exp",
    "first_value",
    "floor",
    "greatest",
    "hex",
    "lag",
    "last_value",
    "lead",
    "least",
    "left",
    "length",
    "ln",
    "localtime",
    "localtimestamp",
    "log",
    "lower",
    "lpad",
    "ltrim",
    "max",
    "min",
    "mod",
    "now",
    "nth_value",
    "ntile",
    "nullif",
    "percent_rank",
    "power",
    "random",
    "rank",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "row_number",
    "rpad",
    "rtrim",
    "sign",
    "sqrt",
    "substr",
    "substring",
    "sum",
    "trim",
    "upper",
];

/// PostgreSQL built-ins (scalar, aggregate and table-valued), and type names called
/// as functions (`uuid($1)`: a cast).
const POSTGRES: &[&str] = &[
    "bool",
    "date",
    "float4",
    "float8",
    "int2",
    "int4",
    "int8",
    "interval",
    "json",
    "jsonb",
    "numeric",
    "text",
    "timestamp",
    "timestamptz",
    "uuid",
    "varchar",
    "age",
    "any_value",
    "array",
    "array_agg",
    "array_append",
    "array_cat",
    "array_length",
    "array_position",
    "array_prepend",
    "array_remove",
    "array_to_string",
    "ascii",
    "bit_length",
    "bool_and",
    "bool_or",
    "btrim",
    "cardinality",
    "chr",
    "clock_timestamp",
    "current_role",
    "current_schema",
    "current_user",
    "date_part",
    "date_trunc",
    "div",
    "every",
    "format",
    "gen_random_uuid",
    "generate_series",
    "generate_subscripts",
    "initcap",
    "json_agg",
    "json_array_elements",
    "json_array_elements_text",
    "json_build_array",
    "json_build_object",
    "json_each",
    "json_each_text",
    "json_object_agg",
    "json_object_keys",
    "json_to_record",
    "json_to_recordset",
    "json_typeof",
    "jsonb_agg",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_each",
    "jsonb_each_text",
    "jsonb_insert",
    "jsonb_object_agg",
    "jsonb_object_keys",
    "jsonb_set",
    "jsonb_strip_nulls",
    "jsonb_to_record",
    "jsonb_to_recordset",
    "jsonb_typeof",
    "make_interval",
    "md5",
    "octet_length",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_table",
    "row_to_json",
    "session_user",
    "split_part",
    "starts_with",
    "statement_timestamp",
    "string_agg",
    "string_to_array",
    "string_to_table",
    "strpos",
    "to_char",
    "to_date",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_timestamp",
    "transaction_timestamp",
    "translate",
    "trunc",
    "unnest",
];

/// SQLite built-ins (scalar, aggregate and table-valued).
const SQLITE: &[&str] = &[
    "char",
    "date",
    "datetime",
    "format",
    "generate_series",
    "glob",
    "group_concat",
    "ifnull",
    "iif",
    "instr",
    "json",
    "json_array",
    "json_array_length",
    "json_each",
    "json_extract",
    "json_group_array",
    "json_group_object",
    "json_insert",
    "json_object",
    "json_patch",
    "json_quote",
    "json_remove",
    "json_replace",
    "json_set",
    "json_tree",
    "json_type",
    "json_valid",
    "julianday",
    "like",
    "likely",
    "printf",
    "quote",
    "randomblob",
    "strftime",
    "string_agg",
    "time",
    "total",
    "typeof",
    "unicode",
    "unixepoch",
    "unlikely",
    "zeroblob",
];

/// MySQL / MariaDB built-ins.
const MYSQL: &[&str] = &[
    "curdate",
    "curtime",
    "date",
    "date_add",
    "date_format",
    "date_sub",
    "datediff",
    "day",
    "dayofweek",
    "field",
    "find_in_set",
    "from_unixtime",
    "group_concat",
    "hour",
    "if",
    "ifnull",
    "instr",
    "json_array",
    "json_arrayagg",
    "json_contains",
    "json_extract",
    "json_length",
    "json_object",
    "json_objectagg",
    "json_unquote",
    "last_day",
    "lcase",
    "locate",
    "minute",
    "month",
    "rand",
    "second",
    "str_to_date",
    "sysdate",
    "timestampdiff",
    "truncate",
    "ucase",
    "unix_timestamp",
    "utc_date",
    "utc_timestamp",
    "uuid",
    "values",
    "week",
    "weekday",
    "year",
];

/// The first function `statement` calls that is not a known pure built-in of
/// `dialect`, as written; `None` when every call is known.
pub(crate) fn opaque_function(statement: &Statement, dialect: Dialect) -> Option<String> {
    let mut finder = Calls { dialect };
    match statement.visit(&mut finder) {
        ControlFlow::Break(name) => Some(name),
        ControlFlow::Continue(()) => None,
    }
}

/// Stops at the first call of an unknown function.
struct Calls {
    dialect: Dialect,
}

impl Calls {
    fn check(&self, name: &ObjectName) -> ControlFlow<String> {
        if is_builtin(name, self.dialect) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(name.to_string())
        }
    }
}

impl Visitor for Calls {
    type Break = String;

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        match expr {
            Expr::Function(function) => self.check(&function.name),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            // `FROM f(...)`: a table-valued function, not a table.
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => self.check(name),
            _ => ControlFlow::Continue(()),
        }
    }
}

/// Is `name` a built-in of the allowlists (see the module docs for the matching rule)?
fn is_builtin(name: &ObjectName, dialect: Dialect) -> bool {
    let parts: Vec<&Ident> = name
        .0
        .iter()
        .filter_map(|part| match part {
            ObjectNamePart::Identifier(ident) => Some(ident),
            ObjectNamePart::Function(_) => None,
        })
        .collect();
    let ident = match (parts.as_slice(), dialect) {
        ([ident], _) if name.0.len() == 1 => *ident,
        ([schema, ident], Dialect::Postgres)
            if name.0.len() == 2 && schema.value.eq_ignore_ascii_case("pg_catalog") =>
        {
            *ident
        }
        _ => return false,
    };
    let lower = ident.value.to_ascii_lowercase();
    if ident.quote_style.is_some() && lower != ident.value {
        return false;
    }
    let specific = match dialect {
        Dialect::Postgres => POSTGRES,
        Dialect::Sqlite => SQLITE,
        Dialect::MySql => MYSQL,
    };
    COMMON.contains(&lower.as_str()) || specific.contains(&lower.as_str())
}
