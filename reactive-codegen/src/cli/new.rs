//! `reactive new function NAME --table T [--key COLUMN] [--dialect D]`: prints a
//! reactive function skeleton (input struct, row struct, handler) reading `T`, by
//! `COLUMN` when given. The handle names the database of the dialect
//! (`&ReactiveDb<Postgres>` by default, `MySql`, `Sqlite`), imported from `sqlx`.
//! The output compiles as is once the row struct lists the columns wanted; its
//! dependencies are inferred (`T` keyed on `COLUMN = input.COLUMN`).

use std::fmt::Write as _;
use std::io::Write;

use super::{
    CliError, Command, Options, Outcome, database_type, dialect_name, pascal_case, procedure_name,
};
use crate::sql::Dialect;

/// Parsed arguments of `reactive new function`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFunctionArgs {
    /// The Rust function's name.
    pub name: String,
    /// The table read.
    pub table: String,
    /// The key column, bound to the input field of the same name.
    pub key: Option<String>,
    /// The dialect of the SQL literal.
    pub dialect: Dialect,
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Command, CliError> {
    match args.next().as_deref() {
        Some("function") => {}
        Some("-h" | "--help") => return Ok(Command::Help),
        Some(other) => {
            return Err(CliError::Usage(format!(
                "unknown template `{other}` (expected `new function`)"
            )));
        }
        None => return Err(CliError::Usage("missing template: `new function`".into())),
    }
    let options = Options::parse(args, &[], &["--table", "--key", "--dialect"])?;
    if options.help {
        return Ok(Command::Help);
    }
    let name = match options.operands.as_slice() {
        [name] => name.clone(),
        [] => return Err(CliError::Usage("missing function name".into())),
        _ => return Err(CliError::Usage("one function name expected".into())),
    };
    let table = options
        .value("--table")
        .ok_or_else(|| CliError::Usage("--table is required".into()))?
        .to_owned();
    let key = options.value("--key").map(str::to_owned);
    for (what, value) in [
        ("function name", Some(&name)),
        ("table", Some(&table)),
        ("key", key.as_ref()),
    ] {
        if let Some(value) = value
            && !is_identifier(value)
        {
            return Err(CliError::Usage(format!(
                "the {what} `{value}` is not an identifier (letters, digits, `_`)"
            )));
        }
    }
    Ok(Command::NewFunction(NewFunctionArgs {
        name: name.to_lowercase(),
        table: table.to_lowercase(),
        key: key.map(|k| k.to_lowercase()),
        dialect: options.dialect()?,
    }))
}

/// The skeleton's source text.
pub fn render(args: &NewFunctionArgs) -> String {
    let procedure = procedure_name(&args.name);
    let row = pascal_case(&args.table);
    let mut attr = format!("name = {procedure:?}");
    if args.dialect != Dialect::Postgres {
        let _ = write!(attr, ", dialect = {:?}", dialect_name(args.dialect));
    }
    let placeholder = match args.dialect {
        Dialect::Postgres => "$1",
        Dialect::Sqlite | Dialect::MySql => "?",
    };
    let database = database_type(args.dialect);
    let mut out =
        format!("use reactive::{{reactive_function, ReactiveDb}};\nuse sqlx::{database};\n\n");
    let input = format!("{}Input", pascal_case(&args.name));
    if let Some(key) = &args.key {
        let _ = write!(
            out,
            "/// The input of `{procedure}`.\n\
             #[derive(Debug, serde::Deserialize, ts_rs::TS)]\n\
             #[serde(rename_all = \"camelCase\")]\n\
             pub struct {input} {{\n    pub {key}: String,\n}}\n\n"
        );
    }
    let _ = write!(
        out,
        "/// A row of `{table}`: list the columns you need (they are read by name).\n\
         #[derive(Debug, serde::Serialize, sqlx::FromRow, ts_rs::TS)]\n\
         #[serde(rename_all = \"camelCase\")]\n\
         pub struct {row} {{\n    pub id: String,\n}}\n\n",
        table = args.table
    );
    match &args.key {
        Some(key) => {
            let _ = write!(
                out,
                "/// The `{table}` rows whose `{key}` is `input.{key}` (dependency inferred: `{table}` keyed on `{key}`).\n\
                 #[reactive_function({attr})]\n\
                 pub async fn {name}(db: &ReactiveDb<{database}>, input: {input}) -> reactive::Result<Vec<{row}>> {{\n    \
                 Ok(sqlx::query_as::<_, {row}>(\"SELECT * FROM {table} WHERE {key} = {placeholder}\")\n        \
                 .bind(&input.{key})\n        \
                 .fetch_all(db)\n        \
                 .await?)\n}}\n",
                table = args.table,
                name = args.name
            );
        }
        None => {
            let _ = write!(
                out,
                "/// Every `{table}` row (dependency inferred: the whole `{table}` table).\n\
                 #[reactive_function({attr})]\n\
                 pub async fn {name}(db: &ReactiveDb<{database}>) -> reactive::Result<Vec<{row}>> {{\n    \
                 Ok(sqlx::query_as::<_, {row}>(\"SELECT * FROM {table}\")\n        \
                 .fetch_all(db)\n        \
                 .await?)\n}}\n",
                table = args.table,
                name = args.name
            );
        }
    }
    out
}

pub(crate) fn run(args: &NewFunctionArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    out.write_all(render(args).as_bytes())?;
    Ok(Outcome::Clean)
}
