//! `reactive relations check` and `reactive relations suggest`: a
//! `#[derive(Relations)]` declaration against the real schema.
//!
//! The schema comes from migration files (`--migrations DIR`: every `*.sql` file
//! of the directory except `*.down.sql`, in file-name order, see
//! [`crate::schema`]) or, with the `live` feature, from a database
//! (`--database-url URL`).
//!
//! `check` reads the `#[relations(...)]` attributes of the given Rust files with the
//! derive's own parser and reports, each with its file and line:
//!
//! - **errors** (exit status 1): a malformed entry; a table or column that does
//!   not exist; a single-column foreign key whose `ON DELETE`/`ON UPDATE` action
//!   changes the referencing rows (`CASCADE`, `SET NULL`, `SET DEFAULT`) with no
//!   relation covering it — the database then changes rows behind reactive's back
//!   and cached queries go stale; an edge `a(b.col)` whose foreign key references
//!   another column of `a` than the one the edge follows (`id`, or `key` in
//!   `a(b.col = key)`): the runtime would compute the wrong child rows. The fix names
//!   the entry to write.
//! - **warnings**: an edge `a(b.col)` whose column is not a foreign key; a table `a`
//!   without the edge's key column; a foreign
//!   key with no action (`NO ACTION`/`RESTRICT`: the database refuses the change,
//!   nothing goes stale) that no relation covers; statements of the migrations
//!   that could not be read.
//!
//! An edge to a bare table (`agent(organization)`) covers every foreign key from
//! that table to `agent`; an edge `agent(message.agent_id)` covers the foreign key
//! on `message.agent_id` when it references `agent.id`; `agent(message.agent_code =
//! code)` the one referencing `agent.code`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use proc_macro2::Span;
use serde::Serialize;

use crate::schema::{Schema, Skipped, Table};
use crate::{CliError, Outcome, read_rust_file, read_text};
use reactive_codegen::expand::relations::{Edge, relation_edges};
use reactive_codegen::sql::Dialect;

/// `reactive relations check` and `reactive relations suggest`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum RelationsCommand {
    /// Check a #[derive(Relations)] declaration against the schema
    Check(CheckArgs),
    /// Print a #[relations(...)] block from the schema's foreign keys
    Suggest(SchemaArgs),
}

/// Where the schema comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// `--migrations DIR`.
    Migrations(String),
    /// `--database-url URL`.
    DatabaseUrl(String),
}

/// The schema options shared by `check` and `suggest`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct SchemaArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// SQL dialect of the migrations
    #[arg(long, value_name = "D", default_value = "postgres", ignore_case = true, value_parser = crate::dialect_parser())]
    pub dialect: Dialect,
}

/// `--migrations` or `--database-url`: exactly one of them.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[group(required = true, multiple = false)]
struct SourceArgs {
    /// The schema from the .sql files of DIR (CREATE/ALTER/DROP TABLE, in file-name order)
    #[arg(long, value_name = "DIR")]
    migrations: Option<String>,
    /// The schema of a live database (needs the `live` feature)
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

impl SchemaArgs {
    /// Read the schema from `source`, parsing migrations in `dialect`.
    pub fn new(source: SchemaSource, dialect: Dialect) -> Self {
        let (migrations, database_url) = match source {
            SchemaSource::Migrations(dir) => (Some(dir), None),
            SchemaSource::DatabaseUrl(url) => (None, Some(url)),
        };
        Self {
            source: SourceArgs {
                migrations,
                database_url,
            },
            dialect,
        }
    }

    /// Where the schema comes from.
    pub fn source(&self) -> SchemaSource {
        match (&self.source.migrations, &self.source.database_url) {
            (Some(dir), _) => SchemaSource::Migrations(dir.clone()),
            // clap's group requires one of the two.
            (None, url) => SchemaSource::DatabaseUrl(url.clone().unwrap_or_default()),
        }
    }
}

/// Arguments of `reactive relations check`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CheckArgs {
    /// The schema.
    #[command(flatten)]
    pub schema: SchemaArgs,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
    /// The Rust files with `#[derive(Relations)]`
    #[arg(value_name = "FILE.rs", required = true)]
    pub files: Vec<String>,
}

/// Load the schema; returns it with the statements that were skipped and a short
/// description of the source.
pub fn load_schema(args: &SchemaArgs) -> Result<(Schema, Vec<Skipped>, String), CliError> {
    match args.source() {
        SchemaSource::Migrations(dir) => {
            let entries = std::fs::read_dir(&dir).map_err(|source| CliError::Read {
                path: dir.clone(),
                source,
            })?;
            let mut files: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".sql") && !name.ends_with(".down.sql"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(CliError::Input(format!("{dir}: no .sql migration files")));
            }
            let mut schema = Schema::default();
            let mut skipped = Vec::new();
            for name in &files {
                let path = Path::new(&dir).join(name).display().to_string();
                let sql = read_text(&path)?;
                skipped.extend(schema.apply_sql(&sql, args.dialect, &path));
            }
            let word = if files.len() == 1 { "file" } else { "files" };
            let description = format!("{dir} ({} {word})", files.len());
            Ok((schema, skipped, description))
        }
        SchemaSource::DatabaseUrl(url) => live_schema(&url),
    }
}

#[cfg(feature = "live")]
fn live_schema(url: &str) -> Result<(Schema, Vec<Skipped>, String), CliError> {
    let schema = crate::live::introspect(url)?;
    Ok((schema, Vec::new(), crate::live::redact(url)))
}

#[cfg(not(feature = "live"))]
fn live_schema(_url: &str) -> Result<(Schema, Vec<Skipped>, String), CliError> {
    Err(CliError::Input(
        "this `reactive` was built without live introspection: rebuild with `--features live` (or use --migrations DIR)".into(),
    ))
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The declaration is wrong or lets cached queries go stale (exit status 1).
    Error,
    /// Worth a look; nothing goes stale.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The file (Rust source or migration; the URL for a live schema).
    pub file: String,
    /// 1-based line (0 = unknown).
    pub line: usize,
    /// The message.
    pub message: String,
    /// A relation entry to add, when the finding is a missing one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<String>,
}

/// The result of `relations check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Where the schema came from.
    pub schema: String,
    /// Number of tables in it.
    pub tables: usize,
    /// Number of relation edges read.
    pub relations: usize,
    /// Findings: errors first, then warnings, each by file and line.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
}

/// Edges declared in one file, with the line of each.
struct Declared {
    file: String,
    edges: Vec<(Edge, usize)>,
}

fn read_declarations(files: &[String]) -> Result<(Vec<Declared>, Vec<Finding>), CliError> {
    let mut declared = Vec::new();
    let mut findings = Vec::new();
    let mut found = false;
    for path in files {
        let (_, file) = read_rust_file(path)?;
        let mut structs = Vec::new();
        collect_relation_items(&file.items, &mut structs);
        let mut edges = Vec::new();
        for input in structs {
            found = true;
            let (parsed, errors) = relation_edges(&input);
            for (edge, span) in parsed {
                edges.push((edge, line_of(span)));
            }
            for error in errors {
                findings.push(Finding {
                    severity: Severity::Error,
                    file: path.clone(),
                    line: line_of(error.span()),
                    message: error.to_string(),
                    add: None,
                });
            }
        }
        declared.push(Declared {
            file: path.clone(),
            edges,
        });
    }
    if !found {
        return Err(CliError::Input(format!(
            "no `#[relations(...)]` attribute found in {}",
            files.join(", ")
        )));
    }
    Ok((declared, findings))
}

fn line_of(span: Span) -> usize {
    span.start().line
}

fn collect_relation_items(items: &[syn::Item], out: &mut Vec<syn::DeriveInput>) {
    for item in items {
        let input: Option<syn::DeriveInput> = match item {
            syn::Item::Struct(s) => Some(s.clone().into()),
            syn::Item::Enum(e) => Some(e.clone().into()),
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    collect_relation_items(items, out);
                }
                None
            }
            _ => None,
        };
        if let Some(input) = input
            && input.attrs.iter().any(|a| a.path().is_ident("relations"))
        {
            out.push(input);
        }
    }
}

fn entry(edge_from: &str, to: &str, column: Option<&str>, key: &str) -> String {
    match column {
        Some(column) if key == "id" => format!("{edge_from}({to}.{column})"),
        Some(column) => format!("{edge_from}({to}.{column} = {key})"),
        None => format!("{edge_from}({to})"),
    }
}

/// Check the declarations of `args.files` against the schema.
pub fn check(args: &CheckArgs) -> Result<CheckReport, CliError> {
    let (schema, skipped, description) = load_schema(&args.schema)?;
    let (declared, mut findings) = read_declarations(&args.files)?;
    let known = schema.tables.keys().cloned().collect::<Vec<_>>().join(", ");
    let mut reported_unknown: BTreeSet<String> = BTreeSet::new();
    let mut reported_no_id: BTreeSet<String> = BTreeSet::new();
    let mut all_edges: Vec<&Edge> = Vec::new();
    for decl in &declared {
        for (edge, line) in &decl.edges {
            all_edges.push(edge);
            let mut finding = |severity, message: String| {
                findings.push(Finding {
                    severity,
                    file: decl.file.clone(),
                    line: *line,
                    message,
                    add: None,
                });
            };
            let shown = entry(&edge.from, &edge.to, edge.column.as_deref(), &edge.key);
            let from = schema.tables.get(&edge.from);
            let to = schema.tables.get(&edge.to);
            let unknown_table = |name: &str| {
                format!(
                    "unknown table `{name}` in `{shown}` ({})",
                    did_you_mean(name, schema.tables.keys(), "tables", &known)
                )
            };
            if from.is_none() && reported_unknown.insert(edge.from.clone()) {
                finding(Severity::Error, unknown_table(&edge.from));
            }
            let Some(to) = to else {
                finding(Severity::Error, unknown_table(&edge.to));
                continue;
            };
            let (Some(column), Some(from)) = (&edge.column, from) else {
                continue;
            };
            if !to.has_column(column) {
                finding(
                    Severity::Error,
                    format!(
                        "table `{}` has no column `{column}` in `{shown}` ({})",
                        to.name,
                        did_you_mean(column, to.columns.iter(), "columns", &to.columns.join(", "))
                    ),
                );
                continue;
            }
            if !from.has_column(&edge.key) && reported_no_id.insert(from.name.clone()) {
                finding(
                    Severity::Warning,
                    format!(
                        "`{}` has no `{}` column: `{shown}` keys on `{}.{}`, so it reaches every row of its table",
                        from.name, edge.key, from.name, edge.key
                    ),
                );
            }
            check_edge_key(&schema, from, to, column, &edge.key, &shown, &mut finding);
        }
    }
    for (table, column, fk) in schema.single_column_foreign_keys() {
        // A column edge follows the parent's key column it names (`id` by default): it
        // covers a foreign key to that column only.
        let referred = schema.referred_key(fk);
        let covered = all_edges.iter().any(|e| {
            e.from == fk.foreign_table
                && e.to == table.name
                && match e.column.as_deref() {
                    None => true,
                    Some(c) => c == column && referred.as_deref() == Some(e.key.as_str()),
                }
        });
        if covered {
            continue;
        }
        let add = match &referred {
            Some(key) => entry(&fk.foreign_table, &table.name, Some(column), key),
            None => entry(&fk.foreign_table, &table.name, None, "id"),
        };
        let (severity, message) = if fk.on_delete.propagates() || fk.on_update.propagates() {
            let actions: Vec<String> = [("DELETE", fk.on_delete), ("UPDATE", fk.on_update)]
                .iter()
                .filter(|(_, a)| a.propagates())
                .map(|(on, a)| format!("ON {on} {}", a.sql()))
                .collect();
            (
                Severity::Error,
                format!(
                    "foreign key `{}.{column}` -> `{}` ({}) is not covered by a relation: the database changes `{}` rows behind reactive's back and cached queries go stale; add `{add}`",
                    table.name,
                    fk.foreign_table,
                    actions.join(", "),
                    table.name
                ),
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "foreign key `{}.{column}` -> `{}` is not covered by a relation; add `{add}` to follow deletes and key changes of `{}` rows (optional: with NO ACTION the database refuses them)",
                    table.name, fk.foreign_table, fk.foreign_table
                ),
            )
        };
        findings.push(Finding {
            severity,
            file: fk.origin.file.clone(),
            line: fk.origin.line,
            message,
            add: Some(add),
        });
    }
    for skip in skipped {
        findings.push(Finding {
            severity: Severity::Warning,
            file: skip.origin.file,
            line: skip.origin.line,
            message: format!("statement skipped (cannot be read): {}", skip.message),
            add: None,
        });
    }
    findings.sort_by(|a, b| (a.severity, &a.file, a.line).cmp(&(b.severity, &b.file, b.line)));
    Ok(CheckReport {
        schema: description,
        tables: schema.tables.len(),
        relations: all_edges.len(),
        findings,
    })
}

/// `did you mean `x`?` when a candidate is at most 2 edits away, else `{what}: {all}`.
fn did_you_mean<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a String>,
    what: &str,
    all: &str,
) -> String {
    let best = candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= 2)
        .min();
    match best {
        Some((_, c)) => format!("did you mean `{c}`?"),
        None => format!("{what}: {all}"),
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Is `to.column` a foreign key to `from.id`?
fn check_edge_key(
    schema: &Schema,
    from: &Table,
    to: &Table,
    column: &str,
    key: &str,
    shown: &str,
    finding: &mut dyn FnMut(Severity, String),
) {
    let keys: Vec<_> = to
        .foreign_keys
        .iter()
        .filter(|fk| fk.columns.len() == 1 && fk.columns[0] == column)
        .collect();
    if keys.is_empty() {
        finding(
            Severity::Warning,
            format!(
                "`{}.{column}` is not a foreign key to `{}` in the schema: make sure it holds `{}.{key}` values (`{shown}`)",
                to.name, from.name, from.name
            ),
        );
        return;
    }
    let Some(fk) = keys.iter().find(|fk| fk.foreign_table == from.name) else {
        finding(
            Severity::Warning,
            format!(
                "`{}.{column}` references `{}`, not `{}` (`{shown}`)",
                to.name, keys[0].foreign_table, from.name
            ),
        );
        return;
    };
    let referred = schema.referred_key(fk);
    if referred.as_deref() != Some(key) {
        // The runtime would follow the wrong column: the child rows it computes are not
        // the ones the database changes, and their cached queries stay stale.
        let fix = match &referred {
            Some(k) => entry(&from.name, &to.name, Some(column), k),
            None => entry(&from.name, &to.name, None, "id"),
        };
        finding(
            Severity::Error,
            format!(
                "`{}.{column}` references `{}({})`, but `{shown}` follows `{}.{key}`: write `{fix}`",
                to.name,
                from.name,
                schema.referred_columns(fk).join(", "),
                from.name,
            ),
        );
    }
}

/// The human-readable rendering of a check.
pub fn render_check(report: &CheckReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let severity = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if f.line == 0 {
            let _ = writeln!(out, "{}: {severity}: {}", f.file, f.message);
        } else {
            let _ = writeln!(out, "{}:{}: {severity}: {}", f.file, f.line, f.message);
        }
    }
    let errors = report.errors();
    let warnings = report.findings.len() - errors;
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let _ = writeln!(
        out,
        "{} checked against {} of {}: {}, {}",
        plural(report.relations, "relation"),
        plural(report.tables, "table"),
        report.schema,
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    out
}

pub(crate) fn run_check(args: &CheckArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let report = check(args)?;
    if args.json {
        crate::write_json(out, &report)?;
    } else {
        out.write_all(render_check(&report).as_bytes())?;
    }
    Ok(if report.errors() > 0 {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

/// A `#[derive(Relations)]` declaration covering every single-column foreign key
/// of the schema.
pub fn suggest(schema: &Schema, description: &str, skipped: &[Skipped]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// From the foreign keys of {description}: a change to a row (delete, key update)"
    );
    let _ = writeln!(out, "// reaches the rows that reference it.");
    for skip in skipped {
        let _ = writeln!(out, "// skipped {}: {}", skip.origin, skip.message);
    }
    for table in schema.tables.values() {
        for fk in table.foreign_keys.iter().filter(|fk| fk.columns.len() > 1) {
            let _ = writeln!(
                out,
                "// not expressible as a relation: {}({}) -> {} (composite key)",
                table.name,
                fk.columns.join(", "),
                fk.foreign_table
            );
        }
    }
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (table, column, fk) in schema.single_column_foreign_keys() {
        let target = match schema.referred_key(fk).as_deref() {
            Some("id") => format!("{}.{column}", table.name),
            Some(key) => format!("{}.{column} = {key}", table.name),
            None => table.name.clone(),
        };
        match groups.last_mut() {
            Some((from, targets)) if *from == fk.foreign_table => {
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
            _ => groups.push((fk.foreign_table.clone(), vec![target])),
        }
    }
    if groups.is_empty() {
        let _ = writeln!(out, "// no foreign keys: nothing to declare");
        return out;
    }
    out.push_str("#[derive(Relations)]\n#[relations(\n");
    for (from, targets) in &groups {
        let _ = writeln!(out, "    {from}({}),", targets.join(", "));
    }
    out.push_str(")]\npub struct Schema;\n");
    out
}

pub(crate) fn run_suggest(args: &SchemaArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let (schema, skipped, description) = load_schema(args)?;
    out.write_all(suggest(&schema, &description, &skipped).as_bytes())?;
    Ok(Outcome::Clean)
}
