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
//! ```
//!
//! One module per command: [`analyze`](crate::cli::analyze) (what each function reads and writes),
//! [`suggest`](crate::cli::suggest) (the `#[reactive_function(...)]` each function should carry),
//! [`relations`](crate::cli::relations) (a `#[derive(Relations)]` declaration against the schema of
//! [`crate::schema`]), [`convert`](crate::cli::convert) (plain sqlx functions into reactive ones),
//! [`rules`](crate::cli::rules) (rules files for AI assistants), [`new`](crate::cli::new) (a handler skeleton). All of
//! them reuse the handler and SQL analysis the macro uses.
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
//! 2 on a usage error. `suggest` only advises: 0.

pub mod analyze;
pub mod convert;
#[cfg(feature = "live")]
pub mod live;
pub mod new;
pub mod relations;
pub mod rules;
pub mod suggest;

use std::io::Write;

pub use analyze::{
    AnalyzeArgs, DiagnosticReport, FunctionReport, KeyReport, Report, TableReport, analyze_files,
    render_human,
};

use crate::sql::Dialect;

/// The usage text.
pub const USAGE: &str = "\
usage: reactive analyze [--dialect postgres|sqlite|mysql] [--json] FILE.rs...
       reactive suggest [--dialect D] [--json] FILE.rs...
       reactive relations check (--migrations DIR | --database-url URL) [--dialect D] [--json] FILE.rs...
       reactive relations suggest (--migrations DIR | --database-url URL) [--dialect D]
       reactive convert [--write] FILE.rs
       reactive rules [--target claude|cursor|copilot|agents|all] [--out DIR]
       reactive new function NAME --table TABLE [--key COLUMN] [--dialect D]

commands:
  analyze            for every async fn sending SQL: query or mutation, tables and keys read and written
  suggest            the #[reactive_function(...)] attribute each function should carry
  relations check    check a #[derive(Relations)] declaration against the schema
  relations suggest  print a #[relations(...)] block from the schema's foreign keys
  convert            turn plain sqlx functions into reactive functions (preview; --write applies)
  rules              write rules files for AI assistants (between marker comments)
  new function       print a reactive function skeleton

options:
  --dialect D         SQL dialect: postgres (default), sqlite or mysql
  --json              machine-readable output
  --migrations DIR    the schema from the .sql files of DIR (CREATE/ALTER/DROP TABLE, in file-name order)
  --database-url URL  the schema of a live database (needs the `live` feature)
  -h, --help          this help";

/// Errors of the command line tool.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments.
    #[error("{0}\n\n{USAGE}")]
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

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `reactive analyze ...`.
    Analyze(AnalyzeArgs),
    /// `reactive suggest ...`.
    Suggest(suggest::SuggestArgs),
    /// `reactive relations check ...`.
    RelationsCheck(relations::CheckArgs),
    /// `reactive relations suggest ...`.
    RelationsSuggest(relations::SchemaArgs),
    /// `reactive convert ...`.
    Convert(convert::ConvertArgs),
    /// `reactive rules ...`.
    Rules(rules::RulesArgs),
    /// `reactive new function ...`.
    NewFunction(new::NewFunctionArgs),
    /// `reactive --help` / `reactive <command> --help`.
    Help,
}

/// Options of one command line, split into flags, options with values and operands.
#[derive(Debug, Default)]
pub(crate) struct Options {
    flags: Vec<&'static str>,
    values: Vec<(&'static str, String)>,
    /// Operands, in order.
    pub(crate) operands: Vec<String>,
    help: bool,
}

impl Options {
    /// Split `args`: `flags` take no value, `valued` take one (`--x v` or `--x=v`);
    /// `--` ends options; `-h`/`--help` asks for help.
    pub(crate) fn parse(
        args: impl Iterator<Item = String>,
        flags: &[&'static str],
        valued: &[&'static str],
    ) -> Result<Self, CliError> {
        let mut parsed = Self::default();
        let mut args = args;
        let mut only_operands = false;
        while let Some(arg) = args.next() {
            if only_operands {
                parsed.operands.push(arg);
                continue;
            }
            if arg == "--" {
                only_operands = true;
            } else if arg == "-h" || arg == "--help" {
                parsed.help = true;
            } else if let Some(flag) = flags.iter().find(|f| **f == arg) {
                parsed.flags.push(flag);
            } else if let Some(name) = valued.iter().find(|v| **v == arg) {
                let value = args
                    .next()
                    .ok_or_else(|| CliError::Usage(format!("{name} needs a value")))?;
                parsed.values.push((name, value));
            } else if let Some((name, value)) = valued.iter().find_map(|v| {
                arg.strip_prefix(v)
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(|value| (*v, value))
            }) {
                parsed.values.push((name, value.to_owned()));
            } else if arg.starts_with('-') && arg.len() > 1 {
                return Err(CliError::Usage(format!("unknown option `{arg}`")));
            } else {
                parsed.operands.push(arg);
            }
        }
        Ok(parsed)
    }

    /// `true` if the flag was given.
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    /// The last value given for an option.
    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `--dialect` value, `postgres` by default.
    pub(crate) fn dialect(&self) -> Result<Dialect, CliError> {
        self.value("--dialect")
            .map(parse_dialect)
            .transpose()
            .map(|d| d.unwrap_or(Dialect::Postgres))
    }
}

/// Parse the arguments (without the program name).
pub fn parse_args<I, S>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let command = match args.next() {
        Some(command) => command,
        None => return Err(CliError::Usage("missing command".into())),
    };
    let command = match command.as_str() {
        "-h" | "--help" | "help" => return Ok(Command::Help),
        "analyze" => {
            let options = Options::parse(args, &["--json"], &["--dialect"])?;
            if options.help {
                return Ok(Command::Help);
            }
            if options.operands.is_empty() {
                return Err(CliError::Usage("no input files".into()));
            }
            Command::Analyze(AnalyzeArgs {
                dialect: options.dialect()?,
                json: options.flag("--json"),
                files: options.operands,
            })
        }
        "suggest" => suggest::parse(args)?,
        "relations" => relations::parse(args)?,
        "convert" => convert::parse(args)?,
        "rules" => rules::parse(args)?,
        "new" => new::parse(args)?,
        other => return Err(CliError::Usage(format!("unknown command `{other}`"))),
    };
    Ok(command)
}

fn parse_dialect(value: &str) -> Result<Dialect, CliError> {
    match value.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" | "pg" => Ok(Dialect::Postgres),
        "sqlite" => Ok(Dialect::Sqlite),
        "mysql" | "mariadb" => Ok(Dialect::MySql),
        _ => Err(CliError::Usage(format!(
            "unknown dialect `{value}` (expected postgres, sqlite or mysql)"
        ))),
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

/// Run the tool: parse `args` (without the program name), write the result to `out`.
pub fn run<I, S>(args: I, out: &mut dyn Write) -> Result<Outcome, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let outcome = match parse_args(args)? {
        Command::Help => {
            writeln!(out, "{USAGE}")?;
            Outcome::Clean
        }
        Command::Analyze(args) => {
            let report = analyze_files(&args)?;
            if args.json {
                write_json(out, &report)?;
            } else {
                out.write_all(render_human(&report).as_bytes())?;
            }
            Outcome::Clean
        }
        Command::Suggest(args) => suggest::run(&args, out)?,
        Command::RelationsCheck(args) => relations::run_check(&args, out)?,
        Command::RelationsSuggest(args) => relations::run_suggest(&args, out)?,
        Command::Convert(args) => convert::run(&args, out)?,
        Command::Rules(args) => rules::run(&args, out)?,
        Command::NewFunction(args) => new::run(&args, out)?,
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
    use crate::model::FunctionKind;

    #[test]
    fn parses_options_in_any_order() {
        let parsed = parse_args(["analyze", "a.rs", "--json", "--dialect", "sqlite", "b.rs"])
            .expect("valid");
        assert_eq!(
            parsed,
            Command::Analyze(AnalyzeArgs {
                dialect: Dialect::Sqlite,
                json: true,
                files: vec!["a.rs".into(), "b.rs".into()]
            })
        );
        let parsed = parse_args(["analyze", "--dialect=mysql", "a.rs"]).expect("valid");
        assert!(matches!(
            parsed,
            Command::Analyze(AnalyzeArgs {
                dialect: Dialect::MySql,
                json: false,
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
        let Command::Analyze(args) = parse_args(["analyze", "a.rs"]).expect("valid") else {
            panic!("analyze")
        };
        assert_eq!(args.dialect, Dialect::Postgres);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            vec!["analyze"],
            vec!["analyze", "--dialect"],
            vec!["analyze", "--dialect", "oracle", "a.rs"],
            vec!["analyze", "--jsn", "a.rs"],
            vec!["frobnicate"],
            vec![],
        ] {
            let err = parse_args(bad.clone()).expect_err("usage error");
            assert!(matches!(err, CliError::Usage(_)), "{bad:?}: {err}");
            assert_eq!(err.exit_code(), 2);
        }
    }

    #[test]
    fn double_dash_ends_options() {
        let Command::Analyze(args) = parse_args(["analyze", "--", "--json"]).expect("valid") else {
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
