//! The arguments of `#[reactive_function(...)]`, parsed with darling.
//!
//! darling gives "did you mean" suggestions for misspelled argument names and
//! collects every error instead of stopping at the first one.

use darling::FromMeta;
use darling::ast::NestedMeta;
use darling::util::{Flag, SpannedValue};
use proc_macro2::{Span, TokenStream};

use crate::sql::Dialect;

/// `#[reactive_function(name = "...", query | mutation, dependencies(...), invalidates(...), requires_ack, push, dialect = "...")]`.
#[derive(Debug, Default, FromMeta)]
pub struct FunctionArgs {
    /// Public procedure name; defaults to the Rust function's name.
    #[darling(default)]
    pub name: Option<SpannedValue<String>>,
    /// The function only reads (an error if its body writes).
    #[darling(default)]
    pub query: Flag,
    /// The function writes.
    #[darling(default)]
    pub mutation: Flag,
    /// The tables the function reads, checked against the body.
    #[darling(default)]
    pub dependencies: Option<TableList>,
    /// Tables a mutation writes beyond what its body shows.
    #[darling(default)]
    pub invalidates: Option<TableList>,
    /// Events caused by this mutation must be acknowledged by clients.
    #[darling(default)]
    pub requires_ack: Flag,
    /// Push a subscribed query's new result to clients instead of having them refetch.
    #[darling(default)]
    pub push: Flag,
    /// The SQL dialect the literals are written in (default: `postgres`, `$N` placeholders).
    #[darling(default)]
    pub dialect: Option<SpannedValue<DialectArg>>,
}

/// The value of `dialect = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromMeta)]
pub enum DialectArg {
    /// `"postgres"`.
    #[darling(rename = "postgres")]
    Postgres,
    /// `"sqlite"`.
    #[darling(rename = "sqlite")]
    Sqlite,
    /// `"mysql"`.
    #[darling(rename = "mysql")]
    MySql,
}

impl From<DialectArg> for Dialect {
    fn from(value: DialectArg) -> Self {
        match value {
            DialectArg::Postgres => Dialect::Postgres,
            DialectArg::Sqlite => Dialect::Sqlite,
            DialectArg::MySql => Dialect::MySql,
        }
    }
}

/// A table named in `dependencies(...)` or `invalidates(...)`, with its span.
#[derive(Debug, Clone)]
pub struct TableName {
    /// Normalized name (lower-cased, as the SQL analysis reports tables).
    pub name: String,
    /// Where the user wrote it.
    pub span: Span,
}

/// `(agent, message, "weird table")`: identifiers or string literals, no duplicates.
#[derive(Debug, Clone, Default)]
pub struct TableList {
    /// The tables, in the order written.
    pub tables: Vec<TableName>,
}

impl TableList {
    /// `true` if `table` (normalized) is listed.
    pub fn contains(&self, table: &str) -> bool {
        self.tables.iter().any(|t| t.name == table)
    }
}

impl FromMeta for TableList {
    fn from_list(items: &[NestedMeta]) -> darling::Result<Self> {
        let mut errors = darling::Error::accumulator();
        let mut tables: Vec<TableName> = Vec::new();
        for item in items {
            let parsed = match item {
                NestedMeta::Meta(syn::Meta::Path(path)) => match path.get_ident() {
                    Some(ident) => Some(TableName {
                        name: normalize_table(&ident.to_string()),
                        span: ident.span(),
                    }),
                    None => {
                        errors.push(
                            darling::Error::custom(
                                "expected a table name such as `agent` (use a string literal for a schema-qualified name)",
                            )
                            .with_span(path),
                        );
                        None
                    }
                },
                NestedMeta::Lit(syn::Lit::Str(lit)) => Some(TableName {
                    name: normalize_table(&lit.value()),
                    span: lit.span(),
                }),
                other => {
                    errors.push(
                        darling::Error::custom("expected a table name such as `agent`")
                            .with_span(other),
                    );
                    None
                }
            };
            if let Some(table) = parsed {
                if tables.iter().any(|t| t.name == table.name) {
                    errors.push(
                        darling::Error::custom(format!("table `{}` is listed twice", table.name))
                            .with_span(&table.span),
                    );
                } else {
                    tables.push(table);
                }
            }
        }
        errors.finish_with(TableList { tables })
    }
}

/// Normalize a table name as the SQL analysis does: last part of a qualified name, lower-cased.
pub fn normalize_table(name: &str) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    last.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']')
        .to_lowercase()
}

impl FunctionArgs {
    /// Parse the attribute's tokens (everything inside `#[reactive_function(...)]`).
    pub fn parse(attr: TokenStream) -> Result<Self, syn::Error> {
        let items = NestedMeta::parse_meta_list(attr)?;
        let args = Self::from_list(&items).map_err(syn::Error::from)?;
        if let (Some(query), Some(mutation)) = (
            args.query.is_present().then_some(&args.query),
            args.mutation.is_present().then_some(&args.mutation),
        ) {
            let mut error = syn::Error::new(
                mutation.span(),
                "a reactive function is either a `query` or a `mutation`, not both",
            );
            error.combine(syn::Error::new(query.span(), "`query` given here"));
            return Err(error);
        }
        Ok(args)
    }

    /// The dialect the SQL literals are analysed with: the declared one, else the one
    /// the handle implies (`ReactiveDb<MySql>`), else [`Dialect::default()`] (PostgreSQL).
    pub fn dialect(&self, implied: Option<Dialect>) -> Dialect {
        self.dialect
            .as_ref()
            .map(|d| Dialect::from(**d))
            .or(implied)
            .unwrap_or_default()
    }
}
