//! Installing and removing the feed's triggers, with the key columns of each table.

use std::collections::BTreeSet;

use reactive_codegen::model::FunctionModel;
use reactive_codegen::sql::RowFilter;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Row};

use super::triggers::{ROW_TRIGGER, TRUNCATE_TRIGGER, function_sql, trigger_sql};
use super::{FeedConfig, FeedTable, PgChangeFeed};
use crate::ReactiveDb;
use crate::db::Backend;
use crate::feed::FeedError;
use crate::types::RelationEdge;

/// Column types whose JSON text is the text the app binds and compares.
const KEY_TYPES: &[&str] = &["int2", "int4", "int8", "text", "varchar", "bool"];

impl PgChangeFeed {
    /// Creates or replaces the trigger function and the triggers of the configured
    /// tables (idempotent), and returns the feed, not yet listening.
    pub async fn install<DB: Backend>(
        db: &ReactiveDb<DB>,
        config: FeedConfig,
    ) -> Result<Self, FeedError> {
        let Some(options) = DB::pg_connect_options(db.pool()) else {
            return Err(FeedError::UnsupportedBackend(db.dialect()));
        };
        if config.tables.is_empty() {
            return Err(FeedError::NoTables);
        }
        if !valid_channel(&config.channel) {
            return Err(FeedError::InvalidChannel(config.channel));
        }
        let own_application_name = match config.own_application_name {
            Some(name) => name,
            None => options.get_application_name().map(str::to_owned),
        }
        .filter(|n| !n.is_empty());
        if own_application_name.is_none() {
            tracing::warn!(
                "change feed: the app's connections have no application_name; its own writes \
                 will be invalidated twice (add ?application_name=... to the database URL)"
            );
        }
        let listener_options = options
            .clone()
            .application_name(&config.listener_application_name);

        let models: Vec<&FunctionModel> = crate::registry::functions()
            .into_iter()
            .map(|d| d.model())
            .collect();
        let relations = db.engine().relations();
        let edges = relations.edges();

        let mut conn = PgConnection::connect_with(&options).await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(hashtext('reactive_feed_install'))) s",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(function_sql()))
            .execute(&mut *tx)
            .await?;
        let mut tables = Vec::new();
        for (given, keys) in &config.tables {
            let table_error = |source| FeedError::Table {
                table: given.clone(),
                source,
            };
            let ident = sqlx::query(
                "SELECT $1::regclass::text AS relation, lower(c.relname::text) AS name \
                 FROM pg_catalog.pg_class c WHERE c.oid = $1::regclass",
            )
            .bind(given.clone())
            .fetch_one(&mut *tx)
            .await
            .map_err(table_error)?;
            let relation: String = ident.try_get("relation")?;
            let name: String = ident.try_get("name")?;
            let columns = sqlx::query(
                "SELECT a.attname::text AS name, t.typname::text AS ty \
                 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                 WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
            )
            .bind(given.clone())
            .fetch_all(&mut *tx)
            .await
            .map_err(table_error)?;
            let wanted = match keys {
                Some(keys) => keys.iter().cloned().collect(),
                None => derived_key_columns(&name, models.iter().copied(), edges),
            };
            let mut key_columns = Vec::new();
            let mut found = BTreeSet::new();
            for row in &columns {
                let column: String = row.try_get("name")?;
                let ty: String = row.try_get("ty")?;
                if wanted.contains(&column.to_lowercase()) {
                    found.insert(column.to_lowercase());
                    if KEY_TYPES.contains(&ty.as_str()) {
                        key_columns.push(column);
                    }
                }
            }
            let skipped_columns: Vec<String> = wanted
                .iter()
                .filter(|w| {
                    !found.contains(*w) || !key_columns.iter().any(|k| k.to_lowercase() == **w)
                })
                .cloned()
                .collect();
            if !skipped_columns.is_empty() {
                tracing::info!(table = %name, skipped = ?skipped_columns, "change feed: key columns not sent (missing or no reliable key form)");
            }
            for sql in trigger_sql(&relation, &name, &config.channel, &key_columns) {
                sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
            }
            // PostgreSQL fires a cascade's row triggers at the depth of the statement
            // that caused it, so a notification cannot tell them from the app's own rows.
            let changed_on_behalf: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint \
                   WHERE conrelid = $1::regclass AND contype = 'f' \
                   AND (confdeltype IN ('c', 'n', 'd') OR confupdtype IN ('c', 'n', 'd'))) \
                 OR EXISTS (SELECT 1 FROM pg_catalog.pg_trigger \
                   WHERE NOT tgisinternal AND tgname NOT IN ($2, $3))",
            )
            .bind(given.clone())
            .bind(ROW_TRIGGER)
            .bind(TRUNCATE_TRIGGER)
            .fetch_one(&mut *tx)
            .await
            .map_err(table_error)?;
            tables.push(FeedTable {
                name,
                relation,
                key_columns,
                skipped_columns,
                changed_on_behalf,
            });
        }
        tx.commit().await?;
        tracing::info!(tables = ?tables.iter().map(|t| &t.name).collect::<Vec<_>>(), channel = %config.channel, "change feed installed");
        Ok(Self {
            tables,
            channel: config.channel,
            own_application_name,
            listener_options,
            reconnect_delay: config.reconnect_delay,
            max_reconnect_delay: config.max_reconnect_delay,
        })
    }

    /// Drops the feed's triggers from its tables (the function stays: other feeds may use it).
    pub async fn uninstall<DB: Backend>(&self, db: &ReactiveDb<DB>) -> Result<(), FeedError> {
        let Some(options) = DB::pg_connect_options(db.pool()) else {
            return Err(FeedError::UnsupportedBackend(db.dialect()));
        };
        let mut conn = PgConnection::connect_with(&options).await?;
        let mut tx = conn.begin().await?;
        for table in &self.tables {
            for trigger in [ROW_TRIGGER, TRUNCATE_TRIGGER] {
                sqlx::query(AssertSqlSafe(format!(
                    "DROP TRIGGER IF EXISTS {trigger} ON {}",
                    table.relation
                )))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// `id`, the columns registered functions filter `table` on, and the source columns of
/// relation edges from `table`.
fn derived_key_columns<'a>(
    table: &str,
    models: impl Iterator<Item = &'a FunctionModel>,
    edges: &[RelationEdge],
) -> BTreeSet<String> {
    let mut out = BTreeSet::from(["id".to_owned()]);
    for model in models {
        for dep in model.dependencies.iter().filter(|d| d.table == table) {
            out.extend(dep.keys.iter().map(|k| k.column.to_lowercase()));
        }
        for st in &model.statements {
            let reads = st.analysis.reads.iter().map(|r| (&r.table, &r.filter));
            let writes = st.analysis.writes.iter().map(|w| (&w.table, &w.filter));
            for (t, filter) in reads.chain(writes) {
                if let (true, RowFilter::Keys(preds)) = (t == table, filter) {
                    out.extend(preds.iter().map(|p| p.column.to_lowercase()));
                }
            }
        }
    }
    for edge in edges.iter().filter(|e| e.from_table == table) {
        out.insert(edge.from_column.to_lowercase());
    }
    out
}

fn valid_channel(channel: &str) -> bool {
    (1..=63).contains(&channel.len())
        && channel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactive_codegen::sql::Dialect;

    #[test]
    fn derived_keys_include_id_filters_and_relation_sources() {
        use reactive_codegen::model::{FunctionKind, KeyDependency, TableDependency};
        let model = FunctionModel {
            name: "q".into(),
            rust_name: "q".into(),
            kind: FunctionKind::Query,
            requires_ack: false,
            push: false,
            dialect: Dialect::Postgres,
            bindings: vec![],
            dependencies: vec![TableDependency {
                table: "agent".into(),
                keys: vec![KeyDependency {
                    column: "Organization_Id".into(),
                    values: vec![],
                }],
            }],
            invalidates: vec![],
            statements: vec![],
            calls: vec![],
        };
        let edges = [
            RelationEdge::new("agent", "message", Some("from_agent_id")),
            RelationEdge::new("message", "agent", None),
        ];
        let keys = derived_key_columns("agent", [&model].into_iter(), &edges);
        assert_eq!(
            keys,
            BTreeSet::from(["id".to_owned(), "organization_id".to_owned()])
        );
        let keys = derived_key_columns("message", [&model].into_iter(), &edges);
        assert_eq!(keys, BTreeSet::from(["id".to_owned()]));
    }

    #[test]
    fn channel_names_are_plain_identifiers() {
        assert!(valid_channel("reactive_changes"));
        assert!(!valid_channel(""));
        assert!(!valid_channel("a\"b"));
        assert!(!valid_channel(&"x".repeat(64)));
    }
}
