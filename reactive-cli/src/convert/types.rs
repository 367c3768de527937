//! Reading sqlx types from their spelling: pools, connections, executors, results.

use reactive_codegen::sql::Dialect;

use crate::suggest::source_of;

/// A pool parameter's type, read from its spelling.
pub(super) struct PoolType<'a> {
    /// The dialect its SQL literals are parsed with (`Any`: PostgreSQL's, the default).
    pub(super) dialect: Dialect,
    /// The database type the handle names: `Postgres`, `MySql`, `Sqlite` or `Any`.
    pub(super) database: &'static str,
    /// The `DB` of `Pool<DB>` as written: the handle reuses it (it resolves where it
    /// stands); `None` for an alias (`PgPool`), whose database type is imported.
    pub(super) written: Option<&'a syn::Type>,
    /// The referenced type, replaced by the handle.
    pub(super) elem: &'a syn::Type,
}

/// The database a sqlx database type names (last path segment).
fn database_of(ty: &syn::Type) -> Option<&'static str> {
    let syn::Type::Path(p) = ty else { return None };
    match p.path.segments.last()?.ident.to_string().as_str() {
        "Postgres" => Some("Postgres"),
        "MySql" => Some("MySql"),
        "Sqlite" => Some("Sqlite"),
        "Any" => Some("Any"),
        _ => None,
    }
}

fn dialect_of(database: &str) -> Dialect {
    match database {
        "MySql" => Dialect::MySql,
        "Sqlite" => Dialect::Sqlite,
        // `Any` runs whatever the URL names: PostgreSQL's `$1` is the CLI's default.
        _ => Dialect::Postgres,
    }
}

/// The first type argument of a path segment (`Postgres` of `Pool<Postgres>`).
fn type_argument(segment: &syn::PathSegment) -> Option<&syn::Type> {
    let syn::PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// The pool a parameter type names (`&PgPool`, `&sqlx::Pool<sqlx::Postgres>`, ...).
pub(super) fn pool_type(ty: &syn::Type) -> Option<PoolType<'_>> {
    let syn::Type::Reference(reference) = ty else {
        return None;
    };
    if reference.mutability.is_some() {
        return None;
    }
    let syn::Type::Path(path) = &*reference.elem else {
        return None;
    };
    let last = path.path.segments.last()?;
    let (database, written) = match last.ident.to_string().as_str() {
        "PgPool" => ("Postgres", None),
        "SqlitePool" => ("Sqlite", None),
        "MySqlPool" => ("MySql", None),
        "AnyPool" => ("Any", None),
        "Pool" => {
            let db = type_argument(last)?;
            (database_of(db)?, Some(db))
        }
        _ => return None,
    };
    Some(PoolType {
        dialect: dialect_of(database),
        database,
        written,
        elem: &reference.elem,
    })
}

/// The database of a connection or transaction taken by `&mut` (`&mut PgConnection`,
/// `&mut Transaction<'_, Postgres>`, `&mut PoolConnection<Sqlite>`), as the note names it.
pub(super) fn connection_database(source: &str, ty: &syn::Type) -> Option<String> {
    let syn::Type::Reference(reference) = ty else {
        return None;
    };
    reference.mutability?;
    let syn::Type::Path(path) = &*reference.elem else {
        return None;
    };
    let last = path.path.segments.last()?;
    match last.ident.to_string().as_str() {
        "PgConnection" => Some("Postgres".into()),
        "MySqlConnection" => Some("MySql".into()),
        "SqliteConnection" => Some("Sqlite".into()),
        "AnyConnection" => Some("Any".into()),
        "Transaction" | "PoolConnection" => type_argument(last).map(|db| source_of(source, db)),
        _ => None,
    }
}

/// The database a generic executor's bounds name (`Database = Postgres`,
/// `PgExecutor`), when they do.
pub(super) fn executor_database(bounds: &str) -> Option<&'static str> {
    let bounds = bounds.replace(' ', "");
    [
        ("Database=Postgres", "Postgres"),
        ("Database=sqlx::Postgres", "Postgres"),
        ("PgExecutor", "Postgres"),
        ("Database=MySql", "MySql"),
        ("Database=sqlx::MySql", "MySql"),
        ("MySqlExecutor", "MySql"),
        ("Database=Sqlite", "Sqlite"),
        ("Database=sqlx::Sqlite", "Sqlite"),
        ("SqliteExecutor", "Sqlite"),
        ("Database=Any", "Any"),
        ("Database=sqlx::Any", "Any"),
    ]
    .into_iter()
    .find(|(needle, _)| bounds.contains(needle))
    .map(|(_, database)| database)
}

/// The owned form of a parameter type for an input struct field (`&str` → `String`).
pub(super) fn owned_type(source: &str, ty: &syn::Type) -> String {
    match ty {
        syn::Type::Reference(r) => match &*r.elem {
            syn::Type::Path(p) if p.path.is_ident("str") => "String".into(),
            syn::Type::Slice(s) => format!("Vec<{}>", source_of(source, &*s.elem)),
            other => source_of(source, other),
        },
        other => source_of(source, other),
    }
}

/// `(T, Some(E))` of `Result<T, E>`, `(T, None)` of `Result<T>`.
pub(super) fn result_parts(ty: &syn::Type) -> Option<(&syn::Type, Option<&syn::Type>)> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let ok = types.next()?;
    Some((ok, types.next()))
}
