//! [`Backend`]: what the interceptor needs from a sqlx driver, implemented once per
//! driver (`Postgres`, `MySql`, `Sqlite` behind their features, and `Any`).
//!
//! Generic code over sqlx's `Database` needs higher-ranked bounds
//! (`for<'c> &'c mut DB::Connection: Executor<'c>`) at every use; the few operations
//! the interceptor performs are methods here instead, written once per concrete driver
//! by [`impl_backend!`], so the rest of `db/` stays free of those bounds.

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use reactive_codegen::sql::Dialect;
use serde_json::Value as Json;
use sqlx::error::BoxDynError;
use sqlx::{Either, Execute, Pool, SqlStr};

/// One statement as sqlx executes it: SQL, arguments, statement-cache preference.
pub struct Exec<DB: sqlx::Database> {
    pub(crate) sql: SqlStr,
    pub(crate) args: Option<DB::Arguments>,
    pub(crate) persistent: bool,
}

impl<DB: sqlx::Database> Execute<'_, DB> for Exec<DB> {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&DB::Statement> {
        None
    }

    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, BoxDynError> {
        Ok(self.args.take())
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

/// One result of a statement: a query result or a row.
pub type Step<DB> = Either<<DB as sqlx::Database>::QueryResult, <DB as sqlx::Database>::Row>;

mod sealed {
    pub trait Sealed {}
}

/// A sqlx driver [`ReactiveDb`](super::ReactiveDb) can wrap: `sqlx::Postgres`,
/// `sqlx::MySql`, `sqlx::Sqlite` (each behind the cargo feature of that name) and
/// `sqlx::Any` (the backend chosen by URL at run time). Sealed: its methods are the
/// interceptor's plumbing, not an extension point.
pub trait Backend: sqlx::Database + sealed::Sealed {
    /// The SQL dialect of this pool (`None`: a URL scheme `Any` does not know).
    #[doc(hidden)]
    fn dialect_of(pool: &Pool<Self>) -> Option<Dialect>;

    /// Runs a statement on a connection.
    #[doc(hidden)]
    fn run<'e>(
        conn: &'e mut Self::Connection,
        exec: Exec<Self>,
    ) -> BoxStream<'e, Result<Step<Self>, sqlx::Error>>;

    /// Runs a statement on a connection, first row only.
    #[doc(hidden)]
    fn run_optional<'e>(
        conn: &'e mut Self::Connection,
        exec: Exec<Self>,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>>;

    /// Runs a statement on a pooled connection.
    #[doc(hidden)]
    fn pool_run<'e>(
        pool: &Pool<Self>,
        exec: Exec<Self>,
    ) -> BoxStream<'e, Result<Step<Self>, sqlx::Error>>;

    /// Runs a statement on a pooled connection, first row only.
    #[doc(hidden)]
    fn pool_run_optional<'e>(
        pool: &Pool<Self>,
        exec: Exec<Self>,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>>;

    /// `Executor::prepare_with` on a connection.
    #[doc(hidden)]
    fn prepare_with<'e>(
        conn: &'e mut Self::Connection,
        sql: SqlStr,
        parameters: &'e [Self::TypeInfo],
    ) -> BoxFuture<'e, Result<Self::Statement, sqlx::Error>>;

    /// `Executor::prepare_with` on the pool.
    #[doc(hidden)]
    fn pool_prepare_with<'e>(
        pool: &Pool<Self>,
        sql: SqlStr,
        parameters: &'e [Self::TypeInfo],
    ) -> BoxFuture<'e, Result<Self::Statement, sqlx::Error>>;

    /// `Executor::describe` on a connection.
    #[doc(hidden)]
    fn describe<'e>(
        conn: &'e mut Self::Connection,
        sql: SqlStr,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Self>, sqlx::Error>>;

    /// `Executor::describe` on the pool.
    #[doc(hidden)]
    fn pool_describe<'e>(
        pool: &Pool<Self>,
        sql: SqlStr,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Self>, sqlx::Error>>;

    /// A copy of bound arguments (for the pre-reads, which bind the write's own).
    #[doc(hidden)]
    fn clone_args(args: &Self::Arguments) -> Self::Arguments;

    /// The value bound at 1-based position `index` as a JSON scalar, when the driver
    /// lets us see it (`Any` only; native argument buffers are opaque: their key values
    /// come from the function model's bindings, the pre-read and `RETURNING`).
    #[doc(hidden)]
    fn arg_value(_args: &Self::Arguments, _index: usize) -> Option<Json> {
        None
    }

    /// The arguments at these 1-based positions, in order, as a new argument list, when
    /// the driver lets us pick them apart (`Any`).
    #[doc(hidden)]
    fn select_args(_args: &Self::Arguments, _positions: &[usize]) -> Option<Self::Arguments> {
        None
    }

    /// `true` when [`Backend::arg_value`] sees bound values.
    #[doc(hidden)]
    const SEES_ARGUMENTS: bool = false;

    /// Column `index` of a row as a JSON scalar in the database's text form (`None`:
    /// a type without key meaning, or one this driver does not decode).
    #[doc(hidden)]
    fn row_value(row: &Self::Row, index: usize) -> Option<Json>;

    /// Rows affected by one statement.
    #[doc(hidden)]
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// How to open a PostgreSQL connection of its own to this pool's database (the
    /// change feed's listener and trigger installation); `None` for other databases.
    #[cfg(feature = "postgres")]
    #[doc(hidden)]
    fn pg_connect_options(_pool: &Pool<Self>) -> Option<sqlx::postgres::PgConnectOptions> {
        None
    }
}

/// Implements the executor plumbing of [`Backend`] for one concrete driver.
macro_rules! impl_backend_exec {
    ($db:ty) => {
        fn run<'e>(
            conn: &'e mut <$db as sqlx::Database>::Connection,
            exec: Exec<$db>,
        ) -> BoxStream<'e, Result<Step<$db>, sqlx::Error>> {
            sqlx::Executor::fetch_many(conn, exec)
        }

        fn run_optional<'e>(
            conn: &'e mut <$db as sqlx::Database>::Connection,
            exec: Exec<$db>,
        ) -> BoxFuture<'e, Result<Option<<$db as sqlx::Database>::Row>, sqlx::Error>> {
            sqlx::Executor::fetch_optional(conn, exec)
        }

        fn pool_run<'e>(
            pool: &Pool<$db>,
            exec: Exec<$db>,
        ) -> BoxStream<'e, Result<Step<$db>, sqlx::Error>> {
            sqlx::Executor::fetch_many(pool, exec)
        }

        fn pool_run_optional<'e>(
            pool: &Pool<$db>,
            exec: Exec<$db>,
        ) -> BoxFuture<'e, Result<Option<<$db as sqlx::Database>::Row>, sqlx::Error>> {
            sqlx::Executor::fetch_optional(pool, exec)
        }

        fn prepare_with<'e>(
            conn: &'e mut <$db as sqlx::Database>::Connection,
            sql: SqlStr,
            parameters: &'e [<$db as sqlx::Database>::TypeInfo],
        ) -> BoxFuture<'e, Result<<$db as sqlx::Database>::Statement, sqlx::Error>> {
            sqlx::Executor::prepare_with(conn, sql, parameters)
        }

        fn pool_prepare_with<'e>(
            pool: &Pool<$db>,
            sql: SqlStr,
            parameters: &'e [<$db as sqlx::Database>::TypeInfo],
        ) -> BoxFuture<'e, Result<<$db as sqlx::Database>::Statement, sqlx::Error>> {
            sqlx::Executor::prepare_with(pool, sql, parameters)
        }

        fn describe<'e>(
            conn: &'e mut <$db as sqlx::Database>::Connection,
            sql: SqlStr,
        ) -> BoxFuture<'e, Result<sqlx::Describe<$db>, sqlx::Error>> {
            sqlx::Executor::describe(conn, sql)
        }

        fn pool_describe<'e>(
            pool: &Pool<$db>,
            sql: SqlStr,
        ) -> BoxFuture<'e, Result<sqlx::Describe<$db>, sqlx::Error>> {
            sqlx::Executor::describe(pool, sql)
        }
    };
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use sqlx::postgres::{PgRow, PgValueFormat};
    use sqlx::{Postgres, Row, TypeInfo, ValueRef};

    impl sealed::Sealed for Postgres {}

    impl Backend for Postgres {
        fn dialect_of(_: &Pool<Self>) -> Option<Dialect> {
            Some(Dialect::Postgres)
        }

        impl_backend_exec!(Postgres);

        fn clone_args(args: &Self::Arguments) -> Self::Arguments {
            args.clone()
        }

        fn row_value(row: &PgRow, index: usize) -> Option<Json> {
            let raw = row.try_get_raw(index).ok()?;
            if raw.is_null() {
                return Some(Json::Null);
            }
            let name = raw.type_info().name().to_owned();
            if raw.format() == PgValueFormat::Text {
                return Some(Json::String(raw.as_str().ok()?.to_owned()));
            }
            let bytes = raw.as_bytes().ok()?;
            Some(match name.as_str() {
                "TEXT" | "VARCHAR" | "NAME" => {
                    Json::String(std::str::from_utf8(bytes).ok()?.to_owned())
                }
                "INT2" => Json::from(i16::from_be_bytes(bytes.try_into().ok()?)),
                "INT4" => Json::from(i32::from_be_bytes(bytes.try_into().ok()?)),
                "INT8" => Json::from(i64::from_be_bytes(bytes.try_into().ok()?)),
                "BOOL" => Json::Bool(*bytes.first()? != 0),
                "UUID" => Json::String(uuid_text(bytes.try_into().ok()?)),
                _ => return None,
            })
        }

        fn rows_affected(result: &Self::QueryResult) -> u64 {
            result.rows_affected()
        }

        fn pg_connect_options(pool: &Pool<Self>) -> Option<sqlx::postgres::PgConnectOptions> {
            Some((*pool.connect_options()).clone())
        }
    }

    /// The hyphenated lower-case text of a binary uuid (PostgreSQL's own `uuid::text`).
    fn uuid_text(bytes: [u8; 16]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use sqlx::mysql::MySqlRow;
    use sqlx::{MySql, Row, TypeInfo, ValueRef};

    impl sealed::Sealed for MySql {}

    impl Backend for MySql {
        fn dialect_of(_: &Pool<Self>) -> Option<Dialect> {
            Some(Dialect::MySql)
        }

        impl_backend_exec!(MySql);

        fn clone_args(args: &Self::Arguments) -> Self::Arguments {
            args.clone()
        }

        fn row_value(row: &MySqlRow, index: usize) -> Option<Json> {
            let raw = row.try_get_raw(index).ok()?;
            if raw.is_null() {
                return Some(Json::Null);
            }
            let name = raw.type_info().name().to_owned();
            Some(match name.as_str() {
                "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => {
                    Json::from(row.try_get::<i64, _>(index).ok()?)
                }
                "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED"
                | "INT UNSIGNED" | "BIGINT UNSIGNED" => {
                    Json::from(row.try_get::<u64, _>(index).ok()?)
                }
                "BOOLEAN" => Json::Bool(row.try_get::<bool, _>(index).ok()?),
                "CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" => {
                    Json::String(row.try_get::<String, _>(index).ok()?)
                }
                _ => return None,
            })
        }

        fn rows_affected(result: &Self::QueryResult) -> u64 {
            result.rows_affected()
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use sqlx::sqlite::SqliteRow;
    use sqlx::{Row, Sqlite, TypeInfo, ValueRef};

    impl sealed::Sealed for Sqlite {}

    impl Backend for Sqlite {
        fn dialect_of(_: &Pool<Self>) -> Option<Dialect> {
            Some(Dialect::Sqlite)
        }

        impl_backend_exec!(Sqlite);

        fn clone_args(args: &Self::Arguments) -> Self::Arguments {
            args.clone()
        }

        fn row_value(row: &SqliteRow, index: usize) -> Option<Json> {
            let raw = row.try_get_raw(index).ok()?;
            if raw.is_null() {
                return Some(Json::Null);
            }
            // The storage class of this value (SQLite is dynamically typed).
            let class = raw.type_info().name().to_owned();
            Some(match class.as_str() {
                "INTEGER" | "BOOLEAN" => Json::from(row.try_get_unchecked::<i64, _>(index).ok()?),
                "REAL" => Json::from(row.try_get_unchecked::<f64, _>(index).ok()?),
                "TEXT" => Json::String(row.try_get_unchecked::<String, _>(index).ok()?),
                _ => return None,
            })
        }

        fn rows_affected(result: &Self::QueryResult) -> u64 {
            result.rows_affected()
        }
    }
}

mod any {
    use super::*;
    use sqlx::Any;
    use sqlx::any::AnyRow;

    impl sealed::Sealed for Any {}

    impl Backend for Any {
        fn dialect_of(pool: &Pool<Self>) -> Option<Dialect> {
            super::super::dialect_of_url(pool.connect_options().database_url.as_str())
        }

        impl_backend_exec!(Any);

        fn clone_args(args: &Self::Arguments) -> Self::Arguments {
            super::super::values::clone_args(args)
        }

        fn arg_value(args: &Self::Arguments, index: usize) -> Option<Json> {
            super::super::values::arg_value(Some(args), index)
        }

        const SEES_ARGUMENTS: bool = true;

        fn select_args(args: &Self::Arguments, positions: &[usize]) -> Option<Self::Arguments> {
            super::super::values::select_args(args, positions)
        }

        fn row_value(row: &AnyRow, index: usize) -> Option<Json> {
            super::super::values::row_value(row, index)
        }

        fn rows_affected(result: &Self::QueryResult) -> u64 {
            result.rows_affected()
        }

        #[cfg(feature = "postgres")]
        fn pg_connect_options(pool: &Pool<Self>) -> Option<sqlx::postgres::PgConnectOptions> {
            let url = &pool.connect_options().database_url;
            (super::super::dialect_of_url(url.as_str()) == Some(Dialect::Postgres))
                .then(|| url.as_str().parse().ok())
                .flatten()
        }
    }
}
