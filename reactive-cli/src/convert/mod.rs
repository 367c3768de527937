//! `reactive convert`: plain sqlx functions into reactive functions.
//!
//! A function is converted when it is a free `async fn` without
//! `#[reactive_function]` whose first parameter is a shared reference to a sqlx
//! pool (`&PgPool`, `&SqlitePool`, `&MySqlPool`, `&AnyPool`, `&Pool<DB>`). The edits
//! are textual, at the spans syn gives (the rest of the file is left as it is):
//!
//! - `#[reactive_function(name = "...")]` above the function (with
//!   `dialect = "sqlite"`/`"mysql"` for those pools), name from
//!   [`crate::procedure_name`];
//! - the pool type becomes the handle of its database: `&PgPool` →
//!   `&ReactiveDb<Postgres>`, `&MySqlPool` → `&ReactiveDb<MySql>`, `&SqlitePool` →
//!   `&ReactiveDb<Sqlite>`, `&AnyPool` → `&ReactiveDb<Any>`; `&Pool<DB>` keeps `DB`
//!   as written (`&ReactiveDb<sqlx::Postgres>`). The body is left alone: the handle
//!   is an executor of the same database, so native types (`Uuid`, ...), binds and
//!   `query!`/`query_as!` keep compiling;
//! - `Result<T, sqlx::Error>` / `sqlx::Result<T>` becomes `reactive::Result<T>`;
//! - `&mut *tx` stays: a `ReactiveTx` derefs to an executor as sqlx's does;
//! - `use reactive::{reactive_function, ReactiveDb};` after the last top-level
//!   `use` (or before the first item), unless already imported; inside an inline
//!   `mod` (which the file's `use` does not reach) the edits spell
//!   `reactive::reactive_function` and `reactive::ReactiveDb` instead;
//! - `use sqlx::Postgres;` (or `MySql`, `Sqlite`, `Any`) next to it when a pool
//!   alias was converted and the file does not import that name yet (inside a
//!   module: `sqlx::Postgres`);
//! - `use sqlx::PgPool;` (and the other pools) goes when nothing else uses it; in
//!   a group (`use sqlx::{PgPool, Row};`) only the pool goes.
//!
//! Inserted lines use the file's line ending (CRLF files stay CRLF).
//!
//! What needs a person is listed as notes, by line (exit status 1): more than one
//! value besides the pool (a reactive function takes one input: a struct is
//! proposed), an input taken by reference, another return type, SQL built at run
//! time (needs `dependencies(...)`: see `reactive suggest`), generic executors,
//! connections and transactions taken as the first parameter (`&mut PgConnection`,
//! `&mut Transaction<'_, Postgres>`: statements sent there bypass the handle).
//!
//! Without `--write`, prints a unified diff of the edits; with it, rewrites the file.

mod derives;
mod diff;
mod function;
mod imports;
mod text;
mod types;

use std::io::Write;

use crate::{CliError, Outcome, read_rust_file};

pub use diff::unified_diff;
pub use function::convert_source;

/// Arguments of `reactive convert`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ConvertArgs {
    /// The Rust file
    #[arg(value_name = "FILE.rs")]
    pub file: String,
    /// Rewrite the file instead of printing a diff
    #[arg(long)]
    pub write: bool,
}

/// A textual edit: replace `range` (bytes of the original) with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Bytes of the original text.
    pub range: std::ops::Range<usize>,
    /// The replacement.
    pub text: String,
}

/// What `convert` would do to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// The original text.
    pub original: String,
    /// The edits, sorted, not overlapping.
    pub edits: Vec<Edit>,
    /// Names of the functions converted.
    pub converted: Vec<String>,
    /// What needs a person: (line, message).
    pub notes: Vec<(usize, String)>,
}

impl Conversion {
    /// The text with the edits applied.
    pub fn converted_text(&self) -> String {
        apply(&self.original, &self.edits, 0..self.original.len())
    }
}

fn apply(text: &str, edits: &[Edit], window: std::ops::Range<usize>) -> String {
    let mut out = String::new();
    let mut at = window.start;
    for edit in edits
        .iter()
        .filter(|e| e.range.start >= window.start && e.range.end <= window.end)
    {
        out.push_str(&text[at..edit.range.start]);
        out.push_str(&edit.text);
        at = edit.range.end;
    }
    out.push_str(&text[at..window.end]);
    out
}

pub(crate) fn run(args: &ConvertArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let (source, file) = read_rust_file(&args.file)?;
    let conversion = convert_source(&source, &file);
    if conversion.edits.is_empty() {
        writeln!(
            out,
            "{}: nothing to convert (no `async fn` taking a sqlx pool first)",
            args.file
        )?;
    } else if args.write {
        std::fs::write(&args.file, conversion.converted_text()).map_err(|source| {
            CliError::Write {
                path: args.file.clone(),
                source,
            }
        })?;
        writeln!(
            out,
            "{}: converted {}",
            args.file,
            conversion.converted.join(", ")
        )?;
    } else {
        out.write_all(unified_diff(&args.file, &conversion).as_bytes())?;
    }
    for (line, message) in &conversion.notes {
        writeln!(out, "{}:{line}: note: {message}", args.file)?;
    }
    Ok(if conversion.notes.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}
