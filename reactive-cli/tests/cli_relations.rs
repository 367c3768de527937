//! `reactive relations check` / `relations suggest`: TeamHub's real migrations and
//! declaration, broken fixtures, and (feature `live`) live databases.

mod cli_support;

use cli_support::{assert_usage_error, reactive, stdout_of, temp_dir};
use serde_json::{Value, json};

const TEAMHUB_SCHEMA: &str = "../examples/teamhub/src/schema.rs";

/// `reactive relations check --dialect D --migrations DIR FILE`.
fn check(dialect: &str, migrations: &str, file: &str) -> std::process::Output {
    reactive(&[
        "relations",
        "check",
        "--dialect",
        dialect,
        "--migrations",
        migrations,
        file,
    ])
}

fn teamhub_report(migrations: &str) -> String {
    format!(
        "{migrations}/0001_teamhub.sql:16: warning: foreign key `message.organization_id` -> `organization` is not covered by a relation; add `organization(message.organization_id)` to follow deletes and key changes of `organization` rows (optional: with NO ACTION the database refuses them)\n\
         {migrations}/0001_teamhub.sql:26: warning: foreign key `memory.organization_id` -> `organization` is not covered by a relation; add `organization(memory.organization_id)` to follow deletes and key changes of `organization` rows (optional: with NO ACTION the database refuses them)\n\
         6 relations checked against 5 tables of {migrations} (1 file): 0 errors, 2 warnings\n"
    )
}

#[test]
fn teamhub_declaration_matches_its_migrations_in_every_dialect() {
    for dialect in ["sqlite", "postgres", "mysql"] {
        let migrations = format!("../examples/teamhub/migrations/{dialect}");
        let output = check(dialect, &migrations, TEAMHUB_SCHEMA);
        assert_eq!(
            stdout_of(&output),
            (Some(0), teamhub_report(&migrations)),
            "{dialect}"
        );
    }
}

#[test]
fn a_cascading_foreign_key_left_out_of_teamhub_is_an_error() {
    let dir = temp_dir("relations-missing");
    let declaration = std::fs::read_to_string(cli_support::crate_dir().join(TEAMHUB_SCHEMA))
        .expect("TeamHub's schema.rs");
    let without = declaration.replace(" message.to_agent_id,", "");
    assert_ne!(without, declaration, "the entry to remove is in schema.rs");
    let file = dir.join("schema.rs");
    std::fs::write(&file, without).expect("write");
    let migrations = "../examples/teamhub/migrations/sqlite";
    let output = check("sqlite", migrations, &file.display().to_string());
    let (code, text) = stdout_of(&output);
    assert_eq!(code, Some(1), "{text}");
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "{migrations}/0001_teamhub.sql:18: error: foreign key `message.to_agent_id` -> `agent` (ON DELETE CASCADE) is not covered by a relation: the database changes `message` rows behind reactive's back and cached queries go stale; add `agent(message.to_agent_id)`"
        )
    );
    assert!(
        text.ends_with("5 relations checked against 5 tables of ../examples/teamhub/migrations/sqlite (1 file): 1 error, 2 warnings\n"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const BROKEN_HUMAN: &str = "\
tests/fixtures/relations/broken_schema.rs:6: error: unknown table `mesage` in `agent(mesage.agent_id)` (did you mean `message`?)
tests/fixtures/relations/broken_schema.rs:6: error: table `message` has no column `from_agent_id` in `agent(message.from_agent_id)` (columns: id, agent_id, body, reply_to)
tests/fixtures/relations/broken_schema.rs:7: error: `badge.tag_name` references `tag(name)`, but `tag(badge.tag_name)` follows `tag.id`: write `tag(badge.tag_name = name)`
tests/fixtures/relations/broken_schema.rs:8: error: unknown table `account` in `account(organization)` (tables: agent, badge, message, organization, tag)
tests/fixtures/relations/broken_schema.rs:14: error: `message` lists no related tables: write `message(other_table.column, ...)`
tests/fixtures/relations/migrations/0001_init.sql:12: error: foreign key `message.agent_id` -> `agent` (ON DELETE CASCADE) is not covered by a relation: the database changes `message` rows behind reactive's back and cached queries go stale; add `agent(message.agent_id)`
tests/fixtures/relations/migrations/0002_tags.sql:6: error: foreign key `badge.tag_name` -> `tag` (ON DELETE CASCADE) is not covered by a relation: the database changes `badge` rows behind reactive's back and cached queries go stale; add `tag(badge.tag_name = name)`
tests/fixtures/relations/broken_schema.rs:7: warning: `tag` has no `id` column: `tag(agent.name)` keys on `tag.id`, so it reaches every row of its table
tests/fixtures/relations/broken_schema.rs:7: warning: `agent.name` is not a foreign key to `tag` in the schema: make sure it holds `tag.id` values (`tag(agent.name)`)
tests/fixtures/relations/migrations/0002_tags.sql:2: warning: foreign key `message.reply_to` -> `message` is not covered by a relation; add `message(message.reply_to)` to follow deletes and key changes of `message` rows (optional: with NO ACTION the database refuses them)
tests/fixtures/relations/migrations/0002_tags.sql:5: warning: statement skipped (cannot be read): sql parser error: Expected: an SQL statement, found: THIS at Line: 5, Column: 1
7 relations checked against 5 tables of tests/fixtures/relations/migrations (2 files): 7 errors, 4 warnings
";

#[test]
fn broken_declaration_unknown_tables_columns_and_uncovered_keys() {
    let output = check(
        "sqlite",
        "tests/fixtures/relations/migrations",
        "tests/fixtures/relations/broken_schema.rs",
    );
    assert_eq!(stdout_of(&output), (Some(1), BROKEN_HUMAN.to_owned()));
}

#[test]
fn broken_declaration_as_json() {
    let output = reactive(&[
        "relations",
        "check",
        "--json",
        "--migrations=tests/fixtures/relations/migrations",
        "--dialect=sqlite",
        "tests/fixtures/relations/broken_schema.rs",
    ]);
    let (code, text) = stdout_of(&output);
    assert_eq!(code, Some(1));
    let report: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        report["schema"],
        "tests/fixtures/relations/migrations (2 files)"
    );
    assert_eq!(report["tables"], 5);
    assert_eq!(report["relations"], 7);
    let findings = report["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 11);
    assert_eq!(
        findings[5],
        json!({"severity": "error", "file": "tests/fixtures/relations/migrations/0001_init.sql", "line": 12,
               "message": "foreign key `message.agent_id` -> `agent` (ON DELETE CASCADE) is not covered by a relation: the database changes `message` rows behind reactive's back and cached queries go stale; add `agent(message.agent_id)`",
               "add": "agent(message.agent_id)"})
    );
    assert_eq!(
        findings[0],
        json!({"severity": "error", "file": "tests/fixtures/relations/broken_schema.rs", "line": 6,
               "message": "unknown table `mesage` in `agent(mesage.agent_id)` (did you mean `message`?)"})
    );
}

#[test]
fn a_correct_declaration_passes_with_warnings_only() {
    let output = check(
        "sqlite",
        "tests/fixtures/relations/migrations",
        "tests/fixtures/relations/good_schema.rs",
    );
    assert_eq!(
        stdout_of(&output),
        (
            Some(0),
            "\
tests/fixtures/relations/migrations/0002_tags.sql:2: warning: foreign key `message.reply_to` -> `message` is not covered by a relation; add `message(message.reply_to)` to follow deletes and key changes of `message` rows (optional: with NO ACTION the database refuses them)
tests/fixtures/relations/migrations/0002_tags.sql:5: warning: statement skipped (cannot be read): sql parser error: Expected: an SQL statement, found: THIS at Line: 5, Column: 1
4 relations checked against 5 tables of tests/fixtures/relations/migrations (2 files): 0 errors, 2 warnings
"
            .to_owned()
        )
    );
}

const TEAMHUB_SUGGESTION: &str = "\
#[derive(Relations)]
#[relations(
    agent(memory.agent_id, message.from_agent_id, message.to_agent_id),
    organization(agent.organization_id, memory.organization_id, message.organization_id, tool.organization_id),
)]
pub struct Schema;
";

#[test]
fn suggest_prints_a_relations_block_from_the_foreign_keys() {
    for dialect in ["sqlite", "postgres", "mysql"] {
        let migrations = format!("../examples/teamhub/migrations/{dialect}");
        let output = reactive(&[
            "relations",
            "suggest",
            "--dialect",
            dialect,
            "--migrations",
            &migrations,
        ]);
        assert_eq!(
            stdout_of(&output),
            (
                Some(0),
                format!(
                    "// From the foreign keys of {migrations} (1 file): a change to a row (delete, key update)\n// reaches the rows that reference it.\n{TEAMHUB_SUGGESTION}"
                )
            )
        );
    }
    let output = reactive(&[
        "relations",
        "suggest",
        "--dialect",
        "sqlite",
        "--migrations",
        "tests/fixtures/relations/migrations",
    ]);
    let (code, text) = stdout_of(&output);
    assert_eq!(code, Some(0));
    assert!(
        text.ends_with(
            "// skipped tests/fixtures/relations/migrations/0002_tags.sql:5: sql parser error: Expected: an SQL statement, found: THIS at Line: 5, Column: 1\n\
             #[derive(Relations)]\n#[relations(\n    agent(message.agent_id, tag.agent_id),\n    message(message.reply_to),\n    organization(agent.organization_id),\n    tag(badge.tag_name = name),\n)]\npub struct Schema;\n"
        ),
        "{text}"
    );
}

#[test]
fn the_suggested_block_passes_the_check() {
    let dir = temp_dir("relations-roundtrip");
    let migrations = "../examples/teamhub/migrations/mysql";
    let output = reactive(&[
        "relations",
        "suggest",
        "--dialect",
        "mysql",
        "--migrations",
        migrations,
    ]);
    let (_, block) = stdout_of(&output);
    let file = dir.join("schema.rs");
    std::fs::write(&file, block).expect("write");
    let output = check("mysql", migrations, &file.display().to_string());
    assert_eq!(
        stdout_of(&output),
        (
            Some(0),
            format!(
                "7 relations checked against 5 tables of {migrations} (1 file): 0 errors, 0 warnings\n"
            )
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn input_and_usage_errors() {
    // No relations attribute in the file: exit 1 with the file named.
    let output = reactive(&[
        "relations",
        "check",
        "--migrations",
        "tests/fixtures/relations/migrations",
        "tests/fixtures/sqlite_handlers.rs",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "reactive: no `#[relations(...)]` attribute found in tests/fixtures/sqlite_handlers.rs\n"
    );
    // A directory without migrations.
    let output = reactive(&[
        "relations",
        "suggest",
        "--migrations",
        "tests/fixtures/convert",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "reactive: tests/fixtures/convert: no .sql migration files\n"
    );
    for (args, message) in [
        (
            &["relations", "check", TEAMHUB_SCHEMA][..],
            "the following required arguments were not provided:\n  <--migrations <DIR>|--database-url <URL>>",
        ),
        (
            &[
                "relations",
                "check",
                "--migrations",
                "m",
                "--database-url",
                "sqlite::memory:",
                "x.rs",
            ],
            "the argument '--migrations <DIR>' cannot be used with '--database-url <URL>'",
        ),
        (
            &["relations", "check", "--migrations", "m"],
            "the following required arguments were not provided:\n  <FILE.rs>...",
        ),
        (
            &["relations", "frobnicate"],
            "unrecognized subcommand 'frobnicate'",
        ),
        (
            &["relations", "suggest", "--migrations", "m", "extra"],
            "unexpected argument 'extra' found",
        ),
        (
            &["relations", "suggest", "--migrations"],
            "a value is required for '--migrations <DIR>' but none was supplied",
        ),
    ] {
        assert_usage_error(args, message);
    }
    // No subcommand: the help of `relations`, as a usage error.
    let output = reactive(&["relations"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Usage: reactive relations <COMMAND>")
            && stderr.contains("  check ")
            && stderr.contains("  suggest "),
        "{stderr}"
    );
}

#[cfg(not(feature = "live"))]
#[test]
fn database_url_needs_the_live_feature() {
    let output = reactive(&["relations", "suggest", "--database-url", "sqlite::memory:"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "reactive: this `reactive` was built without live introspection: rebuild with `--features live` (or use --migrations DIR)\n"
    );
}

/// Live introspection: the same TeamHub schema, created by its own migrations in a
/// fresh database, gives the same findings as the migration files.
#[cfg(feature = "live")]
mod live {
    use super::*;
    use sqlx::{Connection, Executor};

    fn live_report(url: &str) -> String {
        format!(
            "{url}: warning: foreign key `memory.organization_id` -> `organization` is not covered by a relation; add `organization(memory.organization_id)` to follow deletes and key changes of `organization` rows (optional: with NO ACTION the database refuses them)\n\
             {url}: warning: foreign key `message.organization_id` -> `organization` is not covered by a relation; add `organization(message.organization_id)` to follow deletes and key changes of `organization` rows (optional: with NO ACTION the database refuses them)\n\
             6 relations checked against 5 tables of {url}: 0 errors, 2 warnings\n"
        )
    }

    fn migration(dialect: &str) -> String {
        std::fs::read_to_string(cli_support::crate_dir().join(format!(
            "../examples/teamhub/migrations/{dialect}/0001_teamhub.sql"
        )))
        .expect("migration")
    }

    fn check_and_suggest(url: &str, shown: &str) {
        let output = reactive(&["relations", "check", "--database-url", url, TEAMHUB_SCHEMA]);
        assert_eq!(stdout_of(&output), (Some(0), live_report(shown)));
        let output = reactive(&["relations", "suggest", "--database-url", url]);
        let (code, text) = stdout_of(&output);
        assert_eq!(code, Some(0));
        assert!(text.ends_with(TEAMHUB_SUGGESTION), "{text}");
    }

    #[tokio::test]
    async fn sqlite_file() {
        let dir = temp_dir("relations-live-sqlite");
        let url = format!("sqlite://{}?mode=rwc", dir.join("teamhub.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
        conn.execute(sqlx::AssertSqlSafe(migration("sqlite")))
            .await
            .expect("migrate");
        conn.close().await.expect("close");
        check_and_suggest(&url, &url);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn postgres_schema() {
        let Some(base) = cli_support::env_url("TEST_POSTGRES_URL") else {
            return;
        };
        let schema = format!("reactive_cli_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&base).await.expect("postgres");
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema}; {}",
            migration("postgres")
        )))
        .await
        .expect("migrate");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options[search_path]={schema}");
        check_and_suggest(&url, &cli_support_redact(&url));
        conn.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .await
            .expect("drop schema");
    }

    #[tokio::test]
    async fn mysql_database() {
        let Some(base) = cli_support::env_url("TEST_MYSQL_URL") else {
            return;
        };
        let database = format!("reactive_cli_{}", std::process::id());
        let mut conn = sqlx::MySqlConnection::connect(&base).await.expect("mysql");
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}"
        )))
        .await
        .expect("create database");
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{database}"),
            None => panic!("TEST_MYSQL_URL has no database path: {base}"),
        };
        let mut db = sqlx::MySqlConnection::connect(&url).await.expect("connect");
        db.execute(sqlx::AssertSqlSafe(migration("mysql")))
            .await
            .expect("migrate");
        db.close().await.expect("close");
        check_and_suggest(&url, &cli_support_redact(&url));
        conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {database}")))
            .await
            .expect("drop database");
    }

    #[test]
    fn unsupported_urls_and_unreachable_servers() {
        assert_usage_error(
            &[
                "relations",
                "suggest",
                "--database-url",
                "redis://127.0.0.1:6379",
            ],
            "unsupported database URL `redis://127.0.0.1:6379` (expected postgres://, mysql:// or sqlite:)",
        );
        let output = reactive(&[
            "relations",
            "suggest",
            "--database-url",
            "postgres://me:secret@127.0.0.1:1/nowhere",
        ]);
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("reactive: postgres://me:***@127.0.0.1:1/nowhere: "),
            "the password is not printed: {stderr}"
        );
    }

    fn cli_support_redact(url: &str) -> String {
        reactive_cli::live::redact(url)
    }
}
