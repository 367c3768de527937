//! `reactive new function NAME --table T [--key COLUMN] [--dialect D]`: prints a
//! reactive function skeleton (input struct, row struct, handler) reading `T`, by
//! `COLUMN` when given. The handle names the database of the dialect
//! (`&ReactiveDb<Postgres>` by default, `MySql`, `Sqlite`), imported from `sqlx`.
//! The output compiles as is once the row struct lists the columns wanted; its
//! dependencies are inferred (`T` keyed on `COLUMN = input.COLUMN`).

use std::fmt::Write as _;
use std::io::Write;

use crate::{CliError, Outcome, database_type, dialect_name, pascal_case, procedure_name};
use reactive_codegen::sql::Dialect;

/// The templates of `reactive new`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum NewCommand {
    /// Print a reactive function skeleton
    Function(NewFunctionArgs),
}

/// Arguments of `reactive new function`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct NewFunctionArgs {
    /// The Rust function's name
    #[arg(value_parser = identifier)]
    pub name: String,
    /// The table read
    #[arg(long, value_parser = identifier)]
    pub table: String,
    /// The key column, bound to the input field of the same name
    #[arg(long, value_name = "COLUMN", value_parser = identifier)]
    pub key: Option<String>,
    /// SQL dialect of the literal
    #[arg(long, value_name = "D", default_value = "postgres", ignore_case = true, value_parser = crate::dialect_parser())]
    pub dialect: Dialect,
}

/// A name the skeleton can use as a Rust and SQL identifier, lower-cased.
fn identifier(value: &str) -> Result<String, String> {
    let mut chars = value.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(value.to_lowercase())
    } else {
        Err("not an identifier (letters, digits, `_`)".into())
    }
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
