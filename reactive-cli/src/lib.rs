//! The `reactive` command line tool, for people and AI assistants.
//!
//! ```text
//! reactive analyze [--dialect D] [--json] FILE.rs...
//! reactive suggest [--dialect D] [--json] FILE.rs...
//! reactive relations check (--migrations DIR | --database-url URL) [--dialect D] [--json] FILE.rs...
//! reactive relations suggest (--migrations DIR | --database-url URL) [--dialect D]
//! reactive convert [--write] FILE.rs
//! reactive rules [--target claude|cursor|copilot|agents|all] [--out DIR]
//! reactive new function NAME --table T [--key COLUMN] [--dialect D]
//! reactive completions SHELL
//! ```
//!
//! The arguments are parsed by clap ([`Cli`]); the binary is a few lines around
//! [`run`]. One module per command: [`analyze`] (what each function reads and writes),
//! [`suggest`] (the `#[reactive_function(...)]` each function should carry),
//! [`relations`] (a `#[derive(Relations)]` declaration against the schema of
//! [`schema`]), [`convert`] (plain sqlx functions into reactive ones),
//! [`rules`] (rules files for AI assistants), [`new`] (a handler skeleton). All of
//! them reuse the handler and SQL analysis of `reactive-codegen`, the one the macro uses;
//! this crate is not a dependency of the macros, so their builds never compile it.
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `live` | `reactive relations ... --database-url`: live schema introspection (sqlx, tokio) |
//!
//! # `reactive analyze`
//!
//! For every `async fn` in the files (free functions, `impl` methods, inline
//! modules) that sends SQL, prints its name, whether it only reads (`query`) or may
//! write (`mutation`: a write, DDL, or a statement the analyser could not read),
//! the tables it reads and writes with their keys, and diagnostics. SQL built at
//! run time is reported as a diagnostic and does not by itself make a function a
//! mutation (nothing is known about it).
//!
//! The default dialect is `postgres` (`$1` placeholders, the most common in sqlx
//! code); pass `--dialect sqlite` or `--dialect mysql` for `?` placeholders.
//!
//! ## `--json`
//!
//! ```json
//! {"functions": [{"name": "agents_find_many", "file": "src/agents.rs", "line": 12, "kind": "query",
//!   "reads":  [{"table": "agent", "keys": [{"column": "organization_id", "source": "input.organization_id"}]}],
//!   "writes": [],
//!   "diagnostics": [{"line": 20, "message": "SQL built at run time; dependencies cannot be inferred"}]}]}
//! ```
//!
//! - `functions`: in file order (files in command-line order); `file` as given;
//!   `line` is the line of the function's name.
//! - `reads`: tables read, sorted by name. `keys` is a conjunction of
//!   `column = source`; empty means the whole table. A key whose value comes from
//!   neither an input field nor a literal (a local, a computed value) is left out:
//!   the runtime cannot know its value from the input, so it watches more rows
//!   (this is what the runtime will use). A table read both whole and by key is
//!   listed once, whole.
//! - `writes`: tables written, sorted by name. `keys` holds the known column values
//!   of the affected rows: the `WHERE` conjuncts of `UPDATE`/`DELETE`, the inserted
//!   values of `INSERT`/upserts (every column whose value is a parameter traced to
//!   the input, or a literal), with the same rule for sources.
//! - `source`: the input expression (`input.organization_id`, or the bound name for a
//!   destructured input), the Rust literal bound (`"active"`), or the SQL literal
//!   (`'active'`, `42`); several values of an `IN` list (or of a multi-row insert)
//!   are joined with `", "`.
//! - `diagnostics`: SQL built at run time and statements the analyser could not
//!   read, by line.
//!
//! # Exit status
//!
//! 0 on success; 1 when an input cannot be read or parsed (nothing is printed on
//! standard output then) or a command found problems ([`Outcome::Findings`]:
//! `relations check` errors, `convert` notes, `rules` markers it cannot update);
//! 2 on a usage error (clap's message and usage on standard error). `suggest` only
//! advises: 0.

pub mod analyze;
pub mod convert;
#[cfg(feature = "live")]
pub mod live;
pub mod new;
pub mod relations;
pub mod rules;
pub mod schema;
pub mod suggest;

use std::io::Write;

use clap::builder::{EnumValueParser, TypedValueParser};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use clap_complete::Generator as _;
use reactive_codegen::sql::Dialect;

pub use analyze::{
    AnalyzeArgs, DiagnosticReport, FunctionReport, KeyReport, Report, TableReport, analyze_files,
    render_human,
};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "reactive",
    version,
    about = "Check and write reactive functions: what they read and write, their attributes, relations.",
    subcommand_required = true,
    arg_required_else_help = true,
    // An option given twice keeps its last value: a script can append an override.
    args_override_self = true
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// For every async fn sending SQL: query or mutation, tables and keys read and written
    Analyze(AnalyzeArgs),
    /// The #[reactive_function(...)] attribute each function should carry
    ///
    /// A function's own `dialect = "..."` wins over --dialect.
    Suggest(suggest::SuggestArgs),
    /// A #[derive(Relations)] declaration against the schema
    #[command(subcommand)]
    Relations(relations::RelationsCommand),
    /// Turn plain sqlx functions into reactive functions (preview; --write applies)
    Convert(convert::ConvertArgs),
    /// Write rules files for AI assistants (between marker comments)
    Rules(rules::RulesArgs),
    /// Print a skeleton to start from (`new function`)
    #[command(subcommand)]
    New(new::NewCommand),
    /// Print a shell completion script (e.g. `reactive completions bash > /etc/bash_completion.d/reactive`)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// The `--dialect` values; the aliases are the other names the dialects go by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DialectArg {
    #[value(alias = "postgresql", alias = "pg")]
    Postgres,
    Sqlite,
    #[value(alias = "mariadb")]
    Mysql,
}

impl From<DialectArg> for Dialect {
    fn from(dialect: DialectArg) -> Self {
        match dialect {
            DialectArg::Postgres => Dialect::Postgres,
            DialectArg::Sqlite => Dialect::Sqlite,
            DialectArg::Mysql => Dialect::MySql,
        }
    }
}

/// The parser of `--dialect` (`Dialect` is `reactive-codegen`'s: no `ValueEnum` of its own).
pub(crate) fn dialect_parser() -> impl TypedValueParser<Value = Dialect> {
    EnumValueParser::<DialectArg>::new().map(Dialect::from)
}

/// Errors of the command line tool (usage errors are clap's, before a command runs).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An argument that only turns out wrong when the command runs (a database URL
    /// of an unsupported kind); reported like clap's usage errors.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read.
    #[error("{path}: cannot read file: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{path}: cannot write file: {source}")]
    Write {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid Rust.
    #[error("{path}:{line}:{column}: syntax error: {message}")]
    Syntax {
        /// The path as given.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// An input the command cannot work with (the message names the file and line).
    #[error("{0}")]
    Input(String),
    /// Output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// How a command that ran to the end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to report (exit status 0).
    Clean,
    /// The command ran and found problems in its input (exit status 1).
    Findings,
}

impl Outcome {
    /// The process exit status.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Clean => 0,
            Self::Findings => 1,
        }
    }
}

/// The name of a dialect as the `--dialect` option and `dialect = "..."` spell it.
pub fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Sqlite => "sqlite",
        Dialect::MySql => "mysql",
    }
}

/// The sqlx database type of a dialect's native driver, as a handle names it
/// (`ReactiveDb<Postgres>`): the generated code imports it from `sqlx`.
pub fn database_type(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "Postgres",
        Dialect::Sqlite => "Sqlite",
        Dialect::MySql => "MySql",
    }
}

/// Run a parsed command, writing its result to `out`.
pub fn run(command: &Command, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let outcome = match command {
        Command::Analyze(args) => {
            let report = analyze_files(args)?;
            if args.json {
                write_json(out, &report)?;
            } else {
                out.write_all(render_human(&report).as_bytes())?;
            }
            Outcome::Clean
        }
        Command::Suggest(args) => suggest::run(args, out)?,
        Command::Relations(relations::RelationsCommand::Check(args)) => {
            relations::run_check(args, out)?
        }
        Command::Relations(relations::RelationsCommand::Suggest(args)) => {
            relations::run_suggest(args, out)?
        }
        Command::Convert(args) => convert::run(args, out)?,
        Command::Rules(args) => rules::run(args, out)?,
        Command::New(new::NewCommand::Function(args)) => new::run(args, out)?,
        Command::Completions { shell } => {
            // `clap_complete::generate` panics when the output is closed (`| head`).
            let mut command = Cli::command();
            command.set_bin_name("reactive");
            command.build();
            shell.try_generate(&command, out)?;
            Outcome::Clean
        }
    };
    Ok(outcome)
}

/// Pretty JSON and a newline.
pub(crate) fn write_json(
    out: &mut dyn Write,
    value: &impl serde::Serialize,
) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// Read a file as text.
pub(crate) fn read_text(path: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Read and parse a Rust file; returns its text too (spans index into it).
pub(crate) fn read_rust_file(path: &str) -> Result<(String, syn::File), CliError> {
    let source = read_text(path)?;
    let file = syn::parse_file(&source).map_err(|error| {
        let start = error.span().start();
        CliError::Syntax {
            path: path.to_owned(),
            line: start.line,
            column: start.column + 1,
            message: error.to_string(),
        }
    })?;
    Ok((source, file))
}

/// The directory of the `Cargo.toml` nearest above a source file: what
/// `CARGO_MANIFEST_DIR` is when the macro expands it, so `query_file!` paths are
/// read from the same place. `None` when there is none (they are then run-time SQL).
pub(crate) fn manifest_dir_of(path: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(path).canonicalize().ok()?;
    path.ancestors()
        .skip(1)
        .find(|dir| dir.join("Cargo.toml").is_file())
        .map(std::path::Path::to_path_buf)
}

/// `agents_by_org` → `AgentsByOrg` (type names derived from function and table names).
pub fn pascal_case(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The public procedure name suggested for a Rust function name: the first word is
/// the namespace, the rest in camelCase (`agents_find_many` → `agents.findMany`); a
/// name of one word stays as it is.
pub fn procedure_name(rust_name: &str) -> String {
    let rust_name = rust_name.strip_prefix("r#").unwrap_or(rust_name);
    let mut words = rust_name.split('_').filter(|w| !w.is_empty());
    let Some(first) = words.next() else {
        return rust_name.to_owned();
    };
    let rest: String = words
        .enumerate()
        .map(|(i, w)| {
            let mut chars = w.chars();
            match chars.next() {
                Some(c) if i > 0 => c.to_uppercase().chain(chars).collect::<String>(),
                Some(c) => c.to_lowercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect();
    if rest.is_empty() {
        first.to_owned()
    } else {
        format!("{first}.{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactive_codegen::model::FunctionKind;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("reactive").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_options_in_any_order() {
        let parsed =
            parse(&["analyze", "a.rs", "--json", "--dialect", "sqlite", "b.rs"]).expect("valid");
        assert_eq!(
            parsed,
            Command::Analyze(AnalyzeArgs {
                dialect: Dialect::Sqlite,
                json: true,
                files: vec!["a.rs".into(), "b.rs".into()]
            })
        );
        let parsed = parse(&["analyze", "--dialect=MariaDB", "a.rs"]).expect("valid");
        assert!(matches!(
            parsed,
            Command::Analyze(AnalyzeArgs {
                dialect: Dialect::MySql,
                json: false,
                ..
            })
        ));
        let parsed = parse(&["analyze", "--dialect", "pg", "--dialect", "sqlite", "a.rs"])
            .expect("the last value wins");
        assert!(matches!(
            parsed,
            Command::Analyze(AnalyzeArgs {
                dialect: Dialect::Sqlite,
                ..
            })
        ));
    }

    #[test]
    fn procedure_names() {
        assert_eq!(procedure_name("agents_find_many"), "agents.findMany");
        assert_eq!(procedure_name("agent_with_stats"), "agent.withStats");
        assert_eq!(procedure_name("delete"), "delete");
        assert_eq!(procedure_name("r#type_get"), "type.get");
    }

    #[test]
    fn default_dialect_is_postgres() {
        let Command::Analyze(args) = parse(&["analyze", "a.rs"]).expect("valid") else {
            panic!("analyze")
        };
        assert_eq!(args.dialect, Dialect::Postgres);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["analyze"][..],
            &["analyze", "--dialect"],
            &["analyze", "--dialect", "oracle", "a.rs"],
            &["analyze", "--jsn", "a.rs"],
            &["frobnicate"],
            &[],
        ] {
            let err = parse(bad).expect_err("usage error");
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn double_dash_ends_options() {
        let Command::Analyze(args) = parse(&["analyze", "--", "--json"]).expect("valid") else {
            panic!()
        };
        assert_eq!(args.files, vec!["--json".to_owned()]);
        assert!(!args.json);
    }

    #[test]
    fn human_output_lists_tables_and_warnings() {
        let report = Report {
            functions: vec![FunctionReport {
                name: "f".into(),
                file: "a.rs".into(),
                line: 3,
                kind: FunctionKind::Query,
                reads: vec![
                    TableReport {
                        table: "agent".into(),
                        keys: vec![KeyReport {
                            column: "id".into(),
                            source: "input.id".into(),
                            several: false,
                        }],
                    },
                    TableReport {
                        table: "tool".into(),
                        keys: vec![],
                    },
                ],
                writes: vec![],
                diagnostics: vec![DiagnosticReport {
                    line: 5,
                    message: "m".into(),
                }],
            }],
        };
        assert_eq!(
            render_human(&report),
            "a.rs:3: f (query)\n  reads   agent [id = input.id]\n          tool [all rows]\n  writes  -\n  warning: a.rs:5: m\n"
        );
    }
}
