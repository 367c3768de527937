//! The catalog's SQL per dialect: column types, foreign-key actions, views, triggers.

use reactive_codegen::sql::Dialect;

/// The catalog query of a dialect: rows of (table, column, type, flags), all text.
pub(super) fn query(dialect: Dialect) -> String {
    match dialect {
        // flags: `d`/`n` deterministic collation or not, then the type's `typtype`.
        Dialect::Postgres => "SELECT c.relname::text, a.attname::text, t.typname::text, \
             (CASE WHEN co.oid IS NULL OR co.collisdeterministic THEN 'd' ELSE 'n' END) || t.typtype::text, \
             CASE WHEN a.attgenerated <> '' THEN 'y' ELSE 'n' END \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation \
             WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
             AND n.nspname = ANY (current_schemas(false))"
            .to_owned(),
        Dialect::MySql => "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), \
             CAST(DATA_TYPE AS CHAR), CAST(COALESCE(COLLATION_NAME, '') AS CHAR), \
             CAST(CASE WHEN UPPER(EXTRA) LIKE '%GENERATED%' OR UPPER(EXTRA) LIKE '%ON UPDATE%' \
               THEN 'y' ELSE 'n' END AS CHAR) \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
            .to_owned(),
        // flags: the table's `CREATE` text (a `COLLATE NOCASE` anywhere in it makes its
        // text columns unknown).
        // `hidden` 2 and 3: virtual and stored generated columns.
        Dialect::Sqlite => "SELECT m.name, p.name, p.type, COALESCE(m.sql, ''), \
             CASE WHEN p.hidden IN (2, 3) THEN 'y' ELSE 'n' END \
             FROM sqlite_master m JOIN pragma_table_xinfo(m.name) p \
             WHERE m.type IN ('table', 'view')"
            .to_owned(),
    }
}

/// The query listing, for every column of a foreign key whose `ON DELETE` or `ON
/// UPDATE` action is `SET NULL` or `SET DEFAULT`: table, column, delete action, update
/// action (PostgreSQL's one-letter codes or the SQL words), the column's default as SQL
/// text (`''`: none). MySQL's defaults are not read: InnoDB refuses `SET DEFAULT`, and a
/// string default is not quoted there (unknown, if one ever shows up).
pub(super) fn referencing_query(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => "SELECT cl.relname::text, a.attname::text, c.confdeltype::text, \
             c.confupdtype::text, COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') \
             FROM pg_catalog.pg_constraint c \
             JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
             LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE c.contype = 'f' AND (c.confdeltype IN ('n', 'd') OR c.confupdtype IN ('n', 'd')) \
             AND n.nspname = ANY (current_schemas(false))"
            .to_owned(),
        Dialect::MySql => "SELECT CAST(k.TABLE_NAME AS CHAR), CAST(k.COLUMN_NAME AS CHAR), \
             CAST(r.DELETE_RULE AS CHAR), CAST(r.UPDATE_RULE AS CHAR), CAST('' AS CHAR) \
             FROM information_schema.KEY_COLUMN_USAGE k \
             JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
             ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
             AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
             WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL \
             AND (r.DELETE_RULE IN ('SET NULL', 'SET DEFAULT') \
             OR r.UPDATE_RULE IN ('SET NULL', 'SET DEFAULT'))"
            .to_owned(),
        Dialect::Sqlite => "SELECT m.name, p.\"from\", p.on_delete, p.on_update, \
             COALESCE(t.dflt_value, '') \
             FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p \
             LEFT JOIN pragma_table_info(m.name) t ON t.name = p.\"from\" \
             WHERE m.type = 'table' AND (p.on_delete IN ('SET NULL', 'SET DEFAULT') \
             OR p.on_update IN ('SET NULL', 'SET DEFAULT'))"
            .to_owned(),
    }
}

/// The query listing, for every column pair of a foreign key whose `ON DELETE` or `ON
/// UPDATE` action changes the referencing rows (`CASCADE`, `SET NULL`, `SET DEFAULT`):
/// referencing table, referencing column, referenced table, referenced column. SQLite's
/// `REFERENCES parent` without a column names the parent's primary key.
pub(super) fn foreign_keys_query(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => "SELECT cl.relname::text, a.attname::text, rcl.relname::text, ra.attname::text \
             FROM pg_catalog.pg_constraint c \
             JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace \
             JOIN pg_catalog.pg_class rcl ON rcl.oid = c.confrelid \
             CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(col, rcol) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col \
             JOIN pg_catalog.pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.rcol \
             WHERE c.contype = 'f' AND (c.confdeltype IN ('c', 'n', 'd') OR c.confupdtype IN ('c', 'n', 'd')) \
             AND n.nspname = ANY (current_schemas(false))"
            .to_owned(),
        Dialect::MySql => "SELECT CAST(k.TABLE_NAME AS CHAR), CAST(k.COLUMN_NAME AS CHAR), \
             CAST(k.REFERENCED_TABLE_NAME AS CHAR), CAST(k.REFERENCED_COLUMN_NAME AS CHAR) \
             FROM information_schema.KEY_COLUMN_USAGE k \
             JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
             ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
             AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
             WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL \
             AND (r.DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') \
             OR r.UPDATE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT'))"
            .to_owned(),
        Dialect::Sqlite => "SELECT m.name, p.\"from\", p.\"table\", \
             COALESCE(p.\"to\", (SELECT t.name FROM pragma_table_info(p.\"table\") t \
             WHERE t.pk = p.seq + 1)) \
             FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p \
             WHERE m.type = 'table' \
             AND (p.on_delete IN ('CASCADE', 'SET NULL', 'SET DEFAULT') \
             OR p.on_update IN ('CASCADE', 'SET NULL', 'SET DEFAULT'))"
            .to_owned(),
    }
}

/// The query listing the names of the views of a dialect (not materialized views:
/// see the `catalog` module docs).
pub(super) fn views_query(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => "SELECT c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'v' AND n.nspname = ANY (current_schemas(false))"
            .to_owned(),
        Dialect::MySql => "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'VIEW'"
            .to_owned(),
        Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'view'".to_owned(),
    }
}

/// The query listing the tables whose rows triggers may set (see the `catalog` module
/// docs): `BEFORE` row triggers; on SQLite any trigger (its triggers write through
/// statements, which may update the row itself).
pub(super) fn triggers_query(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => "SELECT DISTINCT c.relname::text FROM pg_catalog.pg_trigger t \
             JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT t.tgisinternal AND (t.tgtype & 3) = 3 \
             AND n.nspname = ANY (current_schemas(false))"
            .to_owned(),
        Dialect::MySql => "SELECT DISTINCT CAST(EVENT_OBJECT_TABLE AS CHAR) \
             FROM information_schema.TRIGGERS \
             WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND ACTION_TIMING = 'BEFORE'"
            .to_owned(),
        Dialect::Sqlite => {
            "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger'".to_owned()
        }
    }
}

/// The query listing every trigger's table, body and language (see the
/// `trigger_writes` module): PostgreSQL's trigger functions' sources and its rules'
/// actions (a rule rewrites a write into others, as a trigger adds them), MySQL's and
/// SQLite's trigger statements from `BEGIN` on (language NULL: SQL). The change feed's
/// own function (`reactive::feed`) only notifies: left out.
pub(super) fn trigger_bodies_query(dialect: Dialect) -> String {
    match dialect {
        // PostgreSQL's own trigger functions that only set the row's columns (the
        // `triggered` set covers that) write no table: read as SQL naming none.
        Dialect::Postgres => "SELECT c.relname::text, \
             CASE WHEN p.pronamespace = 'pg_catalog'::regnamespace AND p.proname IN \
             ('tsvector_update_trigger', 'tsvector_update_trigger_column', \
             'suppress_redundant_updates_trigger') THEN '' ELSE p.prosrc::text END, \
             CASE WHEN p.pronamespace = 'pg_catalog'::regnamespace AND p.proname IN \
             ('tsvector_update_trigger', 'tsvector_update_trigger_column', \
             'suppress_redundant_updates_trigger') THEN 'sql' ELSE l.lanname::text END \
             FROM pg_catalog.pg_trigger t \
             JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid \
             JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
             WHERE NOT t.tgisinternal AND n.nspname = ANY (current_schemas(false)) \
             AND p.proname <> 'reactive_feed_notify' \
             UNION ALL \
             SELECT c.relname::text, substr(d.def, position(' DO ' IN d.def)), 'sql' \
             FROM pg_catalog.pg_rewrite r \
             JOIN pg_catalog.pg_class c ON c.oid = r.ev_class \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_ruledef(r.oid)::text AS def) d \
             WHERE r.rulename <> '_RETURN' AND c.relkind IN ('r', 'p') \
             AND n.nspname = ANY (current_schemas(false))"
            .to_owned(),
        Dialect::MySql => {
            "SELECT CAST(EVENT_OBJECT_TABLE AS CHAR), CAST(ACTION_STATEMENT AS CHAR), \
             CAST(NULL AS CHAR) FROM information_schema.TRIGGERS \
             WHERE EVENT_OBJECT_SCHEMA = DATABASE()"
                .to_owned()
        }
        Dialect::Sqlite => {
            // From `BEGIN` on: the header names the trigger's own table (`ON t`).
            "SELECT tbl_name, substr(sql, instr(upper(sql), 'BEGIN')), NULL \
             FROM sqlite_master WHERE type = 'trigger'"
                .to_owned()
        }
    }
}

/// The query listing the names of the database's own routines, which a trigger body
/// may call (SQLite has none: `None`).
pub(super) fn routines_query(dialect: Dialect) -> Option<String> {
    match dialect {
        Dialect::Postgres => Some(
            "SELECT p.proname::text FROM pg_catalog.pg_proc p \
             JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = ANY (current_schemas(false))"
                .to_owned(),
        ),
        Dialect::MySql => Some(
            "SELECT CAST(ROUTINE_NAME AS CHAR) FROM information_schema.ROUTINES \
             WHERE ROUTINE_SCHEMA = DATABASE()"
                .to_owned(),
        ),
        Dialect::Sqlite => None,
    }
}

/// The query listing every (child, parent) pair of PostgreSQL's table inheritance,
/// partitions included: a row of a child is a row of its parents. Other dialects name
/// no such tables (`None`).
pub(super) fn inheritance_query(dialect: Dialect) -> Option<String> {
    match dialect {
        Dialect::Postgres => Some(
            "SELECT c.relname::text, p.relname::text FROM pg_catalog.pg_inherits i \
             JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid \
             JOIN pg_catalog.pg_class p ON p.oid = i.inhparent \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = ANY (current_schemas(false))"
                .to_owned(),
        ),
        Dialect::MySql | Dialect::Sqlite => None,
    }
}
