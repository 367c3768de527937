//! The `reactive` command line tool.
//!
//! ```text
//! reactive analyze [--dialect postgres|sqlite|mysql] [--json] FILE.rs...
//! ```
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
//! # `--json`
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
//! Exit status: 0 on success, 1 when a file cannot be read or parsed (nothing is
//! printed on standard output then), 2 on a usage error.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::handler::{self, AnalyzeOptions, HandlerAnalysis, ResolvedTable};
use crate::model::FunctionKind;
use crate::sql::Dialect;

/// The usage text.
pub const USAGE: &str = "\
usage: reactive analyze [--dialect postgres|sqlite|mysql] [--json] FILE.rs...

Prints, for every async fn in the files that sends SQL, whether it is a query or a
mutation, the tables it reads and writes and on which keys.

options:
  --dialect D   SQL dialect: postgres (default), sqlite or mysql
  --json        machine-readable output
  -h, --help    this help";

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

/// Parsed arguments of `reactive analyze`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzeArgs {
    /// The SQL dialect.
    pub dialect: Dialect,
    /// Print JSON.
    pub json: bool,
    /// The files, as given.
    pub files: Vec<String>,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `reactive analyze ...`.
    Analyze(AnalyzeArgs),
    /// `reactive --help` / `reactive analyze --help`.
    Help,
}

/// Parse the arguments (without the program name).
pub fn parse_args<I, S>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    match args.next().as_deref() {
        Some("analyze") => {}
        Some("-h" | "--help" | "help") => return Ok(Command::Help),
        Some(other) => return Err(CliError::Usage(format!("unknown command `{other}`"))),
        None => return Err(CliError::Usage("missing command".into())),
    }
    let mut parsed = AnalyzeArgs {
        dialect: Dialect::Postgres,
        json: false,
        files: Vec::new(),
    };
    let mut only_files = false;
    while let Some(arg) = args.next() {
        if only_files {
            parsed.files.push(arg);
            continue;
        }
        match arg.as_str() {
            "--" => only_files = true,
            "-h" | "--help" => return Ok(Command::Help),
            "--json" => parsed.json = true,
            "--dialect" => {
                let value = args
                    .next()
                    .ok_or_else(|| CliError::Usage("--dialect needs a value".into()))?;
                parsed.dialect = parse_dialect(&value)?;
            }
            _ => {
                if let Some(value) = arg.strip_prefix("--dialect=") {
                    parsed.dialect = parse_dialect(value)?;
                } else if arg.starts_with('-') && arg.len() > 1 {
                    return Err(CliError::Usage(format!("unknown option `{arg}`")));
                } else {
                    parsed.files.push(arg);
                }
            }
        }
    }
    if parsed.files.is_empty() {
        return Err(CliError::Usage("no input files".into()));
    }
    Ok(Command::Analyze(parsed))
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

/// Run the tool: parse `args` (without the program name), write the result to `out`.
pub fn run<I, S>(args: I, out: &mut dyn Write) -> Result<(), CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    match parse_args(args)? {
        Command::Help => writeln!(out, "{USAGE}")?,
        Command::Analyze(args) => {
            let report = analyze_files(&args)?;
            if args.json {
                serde_json::to_writer_pretty(&mut *out, &report).map_err(std::io::Error::from)?;
                writeln!(out)?;
            } else {
                out.write_all(render_human(&report).as_bytes())?;
            }
        }
    }
    Ok(())
}

/// The `--json` report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Functions that send SQL, in file order.
    pub functions: Vec<FunctionReport>,
}

/// One function of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionReport {
    /// The function's name.
    pub name: String,
    /// The file, as given on the command line.
    pub file: String,
    /// Line of the function's name.
    pub line: usize,
    /// `query` or `mutation`.
    pub kind: FunctionKind,
    /// Tables read.
    pub reads: Vec<TableReport>,
    /// Tables written.
    pub writes: Vec<TableReport>,
    /// Diagnostics.
    pub diagnostics: Vec<DiagnosticReport>,
}

/// A table with keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableReport {
    /// Table name.
    pub table: String,
    /// Keys; empty = the whole table.
    pub keys: Vec<KeyReport>,
}

/// A key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyReport {
    /// Column.
    pub column: String,
    /// Where the value comes from.
    pub source: String,
    /// More than one value (an `IN` list): only for the human-readable output.
    #[serde(skip)]
    pub several: bool,
}

/// A diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiagnosticReport {
    /// 1-based line.
    pub line: usize,
    /// Message.
    pub message: String,
}

/// Read, parse and analyse every file, in order. Stops at the first file that
/// cannot be read or parsed (the report would be incomplete).
pub fn analyze_files(args: &AnalyzeArgs) -> Result<Report, CliError> {
    let options = AnalyzeOptions {
        dialect: args.dialect,
        ..AnalyzeOptions::default()
    };
    let mut functions = Vec::new();
    for path in &args.files {
        let source =
            std::fs::read_to_string(PathBuf::from(path)).map_err(|source| CliError::Read {
                path: path.clone(),
                source,
            })?;
        let file = syn::parse_file(&source).map_err(|error| {
            let start = error.span().start();
            CliError::Syntax {
                path: path.clone(),
                line: start.line,
                column: start.column + 1,
                message: error.to_string(),
            }
        })?;
        for analysis in handler::analyze_file(&file, &options) {
            if analysis.is_async && analysis.sends_sql() {
                functions.push(function_report(path, &analysis));
            }
        }
    }
    Ok(Report { functions })
}

fn function_report(path: &str, analysis: &HandlerAnalysis) -> FunctionReport {
    let tables = |tables: Vec<ResolvedTable>| {
        tables
            .into_iter()
            .map(|t| TableReport {
                table: t.table,
                keys: t
                    .keys
                    .into_iter()
                    .map(|k| KeyReport {
                        column: k.column,
                        source: k.source,
                        several: k.values > 1,
                    })
                    .collect(),
            })
            .collect()
    };
    FunctionReport {
        name: analysis.name.clone(),
        file: path.to_owned(),
        line: analysis.location.line,
        kind: analysis.kind(),
        reads: tables(handler::resolved_reads(analysis)),
        writes: tables(handler::resolved_writes(analysis)),
        diagnostics: analysis
            .diagnostics
            .iter()
            .map(|d| DiagnosticReport {
                line: d.location.line,
                message: d.message.clone(),
            })
            .collect(),
    }
}

/// The human-readable rendering of a report.
pub fn render_human(report: &Report) -> String {
    let mut out = String::new();
    if report.functions.is_empty() {
        out.push_str("no async functions sending SQL found\n");
        return out;
    }
    for (i, f) in report.functions.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let kind = match f.kind {
            FunctionKind::Query => "query",
            FunctionKind::Mutation => "mutation",
        };
        let _ = writeln!(out, "{}:{}: {} ({kind})", f.file, f.line, f.name);
        render_tables(&mut out, "reads ", &f.reads);
        render_tables(&mut out, "writes", &f.writes);
        for d in &f.diagnostics {
            let _ = writeln!(out, "  warning: {}:{}: {}", f.file, d.line, d.message);
        }
    }
    out
}

fn render_tables(out: &mut String, label: &str, tables: &[TableReport]) {
    if tables.is_empty() {
        let _ = writeln!(out, "  {label}  -");
        return;
    }
    for (i, t) in tables.iter().enumerate() {
        let label = if i == 0 { label } else { "      " };
        let keys = if t.keys.is_empty() {
            "all rows".to_owned()
        } else {
            t.keys
                .iter()
                .map(|k| {
                    if k.several {
                        format!("{} in ({})", k.column, k.source)
                    } else {
                        format!("{} = {}", k.column, k.source)
                    }
                })
                .collect::<Vec<_>>()
                .join(" and ")
        };
        let _ = writeln!(out, "  {label}  {} [{keys}]", t.table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
