//! `reactive analyze`: what every async fn of the files reads and writes (see the
//! JSON shape in the [module docs](super)).

use std::fmt::Write as _;

use serde::Serialize;

use crate::{CliError, read_rust_file};
use reactive_codegen::handler::{self, AnalyzeOptions, HandlerAnalysis, ResolvedTable};
use reactive_codegen::model::FunctionKind;
use reactive_codegen::sql::Dialect;

/// Arguments of `reactive analyze`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct AnalyzeArgs {
    /// SQL dialect of the literals
    #[arg(long, value_name = "D", default_value = "postgres", ignore_case = true, value_parser = crate::dialect_parser())]
    pub dialect: Dialect,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
    /// The Rust files, as given (paths in the output are spelled the same)
    #[arg(value_name = "FILE.rs", required = true)]
    pub files: Vec<String>,
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
        let (_, file) = read_rust_file(path)?;
        let options = AnalyzeOptions {
            manifest_dir: crate::manifest_dir_of(path),
            ..options.clone()
        };
        for analysis in handler::analyze_file(&file, &options) {
            if analysis.is_async && analysis.sends_sql() {
                functions.push(function_report(path, &analysis));
            }
        }
    }
    Ok(Report { functions })
}

/// The report of one analysed function.
pub fn function_report(path: &str, analysis: &HandlerAnalysis) -> FunctionReport {
    FunctionReport {
        name: analysis.name.clone(),
        file: path.to_owned(),
        line: analysis.location.line,
        kind: analysis.kind(),
        reads: table_reports(handler::resolved_reads(analysis)),
        writes: table_reports(handler::resolved_writes(analysis)),
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

/// Resolved tables as report entries.
pub(crate) fn table_reports(tables: Vec<ResolvedTable>) -> Vec<TableReport> {
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

pub(crate) fn render_tables(out: &mut String, label: &str, tables: &[TableReport]) {
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
