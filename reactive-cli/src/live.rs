//! Live schema introspection (feature `live`): tables, columns and foreign keys of
//! the database a URL names — `postgres://` (the tables of `current_schema()`; set
//! it with `?options[search_path]=name`), `mysql://`/`mariadb://` (the URL's
//! database) and `sqlite:` (the main database).

use sqlx::Connection;

use crate::CliError;
use crate::schema::{Action, ForeignKey, Origin, Schema, Table};

/// The URL without its password (for messages and reports).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Read the schema of the database at `url`.
pub fn introspect(url: &str) -> Result<Schema, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Output)?;
    let shown = redact(url);
    let fail = |e: sqlx::Error| CliError::Input(format!("{shown}: {e}"));
    // The same two queries on each backend's own connection type.
    macro_rules! read {
        ($connection:ty, $url:expr, $columns:expr, $keys:expr) => {{
            let mut conn = <$connection>::connect($url).await.map_err(fail)?;
            let columns = sqlx::query_as::<_, (String, String)>($columns)
                .fetch_all(&mut conn)
                .await
                .map_err(fail)?;
            let keys = sqlx::query_as::<_, KeyRow>($keys)
                .fetch_all(&mut conn)
                .await
                .map_err(fail)?;
            (columns, keys)
        }};
    }
    runtime.block_on(async {
        let (columns, keys) = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            read!(sqlx::PgConnection, url, PG_COLUMNS, PG_KEYS)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            let url = url.replacen("mariadb:", "mysql:", 1);
            read!(sqlx::MySqlConnection, &url, MYSQL_COLUMNS, MYSQL_KEYS)
        } else if url.starts_with("sqlite:") {
            read!(sqlx::SqliteConnection, url, SQLITE_COLUMNS, SQLITE_KEYS)
        } else {
            return Err(CliError::Usage(format!(
                "unsupported database URL `{shown}` (expected postgres://, mysql:// or sqlite:)"
            )));
        };
        Ok(build(&shown, columns, keys))
    })
}

/// One foreign key column: (table, column, foreign table, foreign column, ON DELETE,
/// ON UPDATE, constraint name, number of columns of the constraint).
type KeyRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
);

fn build(shown: &str, columns: Vec<(String, String)>, keys: Vec<KeyRow>) -> Schema {
    let origin = Origin {
        file: shown.to_owned(),
        line: 0,
    };
    let mut schema = Schema::default();
    for (table, column) in columns {
        let table = table.to_lowercase();
        let entry = schema.tables.entry(table.clone()).or_insert_with(|| Table {
            name: table,
            columns: Vec::new(),
            columns_known: true,
            primary_key: Vec::new(),
            foreign_keys: Vec::new(),
            origin: origin.clone(),
        });
        entry.columns.push(column.to_lowercase());
    }
    for (table, column, foreign_table, foreign_column, on_delete, on_update, name, count) in keys {
        let Some(entry) = schema.tables.get_mut(&table.to_lowercase()) else {
            continue;
        };
        let name = name.to_lowercase();
        // Composite keys arrive one row per column, in order.
        if count > 1
            && let Some(fk) = entry
                .foreign_keys
                .iter_mut()
                .find(|fk| fk.name.as_deref() == Some(name.as_str()))
        {
            fk.columns.push(column.to_lowercase());
            fk.referred_columns
                .extend(foreign_column.map(|c| c.to_lowercase()));
            continue;
        }
        entry.foreign_keys.push(ForeignKey {
            columns: vec![column.to_lowercase()],
            foreign_table: foreign_table.to_lowercase(),
            referred_columns: foreign_column
                .map(|c| c.to_lowercase())
                .into_iter()
                .collect(),
            name: Some(name),
            on_delete: Action::from_rule(&on_delete),
            on_update: Action::from_rule(&on_update),
            origin: origin.clone(),
        });
    }
    schema
}

const PG_COLUMNS: &str = "SELECT c.relname::text, a.attname::text \
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() \
ORDER BY c.relname, a.attnum";

const PG_KEYS: &str = "SELECT cl.relname::text, a.attname::text, fcl.relname::text, fa.attname::text, \
CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END, \
CASE c.confupdtype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END, \
c.conname::text, cardinality(c.conkey)::int8 \
FROM pg_constraint c \
JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace \
JOIN pg_class fcl ON fcl.oid = c.confrelid \
JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(attnum, fattnum, ord) ON true \
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.fattnum \
WHERE c.contype = 'f' AND n.nspname = current_schema() \
ORDER BY cl.relname, c.conname, k.ord";

const MYSQL_COLUMNS: &str = "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR) \
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
ORDER BY TABLE_NAME, ORDINAL_POSITION";

const MYSQL_KEYS: &str = "SELECT CAST(k.TABLE_NAME AS CHAR), CAST(k.COLUMN_NAME AS CHAR), \
CAST(k.REFERENCED_TABLE_NAME AS CHAR), CAST(k.REFERENCED_COLUMN_NAME AS CHAR), \
CAST(r.DELETE_RULE AS CHAR), CAST(r.UPDATE_RULE AS CHAR), CAST(k.CONSTRAINT_NAME AS CHAR), \
CAST((SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE k2 \
  WHERE k2.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND k2.TABLE_NAME = k.TABLE_NAME \
  AND k2.CONSTRAINT_NAME = k.CONSTRAINT_NAME) AS SIGNED) \
FROM information_schema.KEY_COLUMN_USAGE k \
JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
  AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL \
ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION";

const SQLITE_COLUMNS: &str = "SELECT m.name, p.name FROM sqlite_master m \
JOIN pragma_table_info(m.name) p \
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid";

const SQLITE_KEYS: &str = "SELECT m.name, p.\"from\", p.\"table\", p.\"to\", p.on_delete, p.on_update, \
m.name || '#' || p.id, (SELECT COUNT(*) FROM pragma_foreign_key_list(m.name) q WHERE q.id = p.id) \
FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p \
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.id, p.seq";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://me:secret@db:5432/app"),
            "postgres://me:***@db:5432/app"
        );
        assert_eq!(redact("postgres://me@db/app"), "postgres://me@db/app");
        assert_eq!(redact("sqlite://app.db"), "sqlite://app.db");
    }
}
