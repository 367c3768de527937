//! `reactive suggest`, `convert`, `rules` and `new function`: the built binary on
//! fixtures, with exact outputs; what they generate goes through the macro's own
//! expansion without errors.

mod cli_support;

use cli_support::{assert_usage_error, crate_dir, reactive, stdout_of, temp_dir};
use quote::ToTokens;
use serde_json::{Value, json};

/// Expand `#[reactive_function]` on every function of `source` that carries it and
/// return the compile errors the macro emits (none expected), with the function names.
fn macro_errors(source: &str) -> Vec<(String, String)> {
    let file = syn::parse_file(source).expect("generated code parses");
    let mut errors = Vec::new();
    for item in file.items {
        let syn::Item::Fn(mut f) = item else { continue };
        let Some(at) = f
            .attrs
            .iter()
            .position(|a| a.path().is_ident("reactive_function"))
        else {
            continue;
        };
        let attr = f.attrs.remove(at);
        let args = match attr.meta {
            syn::Meta::List(list) => list.tokens,
            _ => proc_macro2::TokenStream::new(),
        };
        let expanded =
            reactive_codegen::expand::reactive_function(args, f.to_token_stream()).to_string();
        if expanded.contains("compile_error") {
            errors.push((f.sig.ident.to_string(), expanded));
        }
    }
    errors
}

const SUGGEST: &str = r#"tests/fixtures/suggest_handlers.rs:4: count_messages
  #[reactive_function(name = "count.messages", mutation)]
  infers  -
  writes  -
  note: tests/fixtures/suggest_handlers.rs:4: signature: the input of a reactive function is decoded from JSON and passed by value: take it by value (`input: Input`), not by reference
  note: tests/fixtures/suggest_handlers.rs:5: SQL could not be parsed (sql parser error: Expected: an expression, found: ? at Line: 1, Column: 52); treated as reading and writing anything (postgres dialect; `--dialect` or `dialect = "..."` sets another)

tests/fixtures/suggest_handlers.rs:9: tools_list
  #[reactive_function(name = "tools.list", query, dialect = "sqlite")]
  declared: #[reactive_function(name = "tools.list", dialect = "sqlite")]
  infers  tool [organization_id = input.organization_id]

tests/fixtures/suggest_handlers.rs:13: agent_summary
  #[reactive_function(name = "agent.summary", query)]
  infers  agent [id = input.id]
  note: tests/fixtures/suggest_handlers.rs:15: calls `count_messages` with the database handle; it is not a `#[reactive_function]`: its SQL is analysed when it runs, and the kind is declared (`query` refuses a write sent from it; declare `mutation` if it writes)
  note: tests/fixtures/suggest_handlers.rs:16: calls `memories_for` with the database handle; it is not a `#[reactive_function]`: its SQL is analysed when it runs, and the kind is declared (`query` refuses a write sent from it; declare `mutation` if it writes)

tests/fixtures/suggest_handlers.rs:21: agents_archive
  #[reactive_function(name = "agents.archive", mutation)]
  declared: #[reactive_function(mutation)]
  infers  -
  writes  -
  note: tests/fixtures/suggest_handlers.rs:21: signature: name the database the handler runs on: `&ReactiveDb<Postgres>`, `&ReactiveDb<MySql>`, `&ReactiveDb<Sqlite>` (native sqlx drivers), or `&ReactiveDb<Any>` (backend chosen by URL)
  note: tests/fixtures/suggest_handlers.rs:22: calls `archive_agent`, a function that may read any table or write; treated as reading and writing anything (postgres dialect; `--dialect` or `dialect = "..."` sets another)

tests/fixtures/suggest_handlers.rs:26: legacy_rename
  #[reactive_function(name = "legacy.rename", mutation)]
  infers  agent [id = id]
  writes  agent [id = id]
  note: tests/fixtures/suggest_handlers.rs:26: takes a sqlx pool: statements sent through it bypass `ReactiveDb` (nothing cached, nothing invalidated); `reactive convert` rewrites the signature
  note: tests/fixtures/suggest_handlers.rs:26: signature: the first parameter of a reactive function must be the database handle `&ReactiveDb`; expected `async fn name(db: &ReactiveDb<Postgres>, input: Input) -> reactive::Result<Output>` (the `input` parameter is optional; `MySql`, `Sqlite` or `Any` in place of `Postgres`)
  note: tests/fixtures/suggest_handlers.rs:26: signature: a reactive function takes at most two parameters, the database handle and one input (put several values in an input struct); expected `async fn name(db: &ReactiveDb<Postgres>, input: Input) -> reactive::Result<Output>` (the `input` parameter is optional; `MySql`, `Sqlite` or `Any` in place of `Postgres`)

tests/fixtures/suggest_handlers.rs:32: agents_named
  #[reactive_function(name = "agents.named", query, dependencies(agent, organization))]
  declared: #[reactive_function(dependencies(organization, agent))]
  infers  agent [organization_id = input.organization_id]
"#;

#[test]
fn suggest_names_kinds_dependencies_and_what_to_fix() {
    let output = reactive(&["suggest", "tests/fixtures/suggest_handlers.rs"]);
    assert_eq!(stdout_of(&output), (Some(0), SUGGEST.to_owned()));
}

/// sqlx's query macros are read like `query(..)` (`query_file!` from the crate's
/// directory), and every key the run time will drop is pointed at.
const SUGGEST_QUERY_MACROS: &str = r#"tests/fixtures/query_macros.rs:12: agents_by_status
  #[reactive_function(name = "agents.byStatus", query)]
  infers  agent [organization_id = input.organization_id and status = input.status]
  note: tests/fixtures/query_macros.rs:17: `agent.status` = $2: `input.status` is a `Status`, which gives no key value unless it is a string, an integer, `bool` or `Uuid` (or an `Option` of one): its serialized form may not be what the database compares, so this key is dropped and invalidation is wider

tests/fixtures/query_macros.rs:23: agent_by_id
  #[reactive_function(name = "agent.byId", query)]
  infers  agent [id = input.id and organization_id = input.organization_id]

tests/fixtures/query_macros.rs:29: agents_named
  #[reactive_function(name = "agents.named", query)]
  infers  agent [organization_id = input.organization_id]
  note: tests/fixtures/query_macros.rs:33: `agent.name` = $2: `input.name.trim()` is not traced to an input field (only `input.x`, `&input.x`, `.clone()`, `.to_string()`, `.as_str()`, `.into()`, ... of it are), so this key is dropped and invalidation is wider (bind the field itself to keep the key)

tests/fixtures/query_macros.rs:39: agents_from_missing_file
  #[reactive_function(name = "agents.fromMissingFile", query, dependencies())]
  seen    -
  note: tests/fixtures/query_macros.rs:40: SQL built at run time: add every table it reads to `dependencies(...)`
"#;

#[test]
fn suggest_reads_query_macros_and_notes_keys_that_are_dropped() {
    let output = reactive(&["suggest", "tests/fixtures/query_macros.rs"]);
    assert_eq!(
        stdout_of(&output),
        (Some(0), SUGGEST_QUERY_MACROS.to_owned())
    );
}

#[test]
fn analyze_reads_query_macros_with_their_binds_and_query_files() {
    let output = reactive(&["analyze", "--json", "tests/fixtures/query_macros.rs"]);
    let (code, text) = stdout_of(&output);
    assert_eq!(code, Some(0));
    let report: Value = serde_json::from_str(&text).expect("JSON");
    let reads: Vec<(String, Value, Value)> = report["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or_default().to_owned(),
                f["reads"].clone(),
                f["diagnostics"].clone(),
            )
        })
        .collect();
    let key = |column: &str, source: &str| json!({"column": column, "source": source});
    let runtime = "SQL built at run time; dependencies cannot be inferred";
    assert_eq!(
        reads,
        [
            (
                "agents_by_status".to_owned(),
                json!([{"table": "agent", "keys": [
                    key("organization_id", "input.organization_id"),
                    key("status", "input.status")]}]),
                json!([])
            ),
            (
                "agent_by_id".to_owned(),
                json!([{"table": "agent", "keys": [
                    key("id", "input.id"),
                    key("organization_id", "input.organization_id")]}]),
                json!([])
            ),
            (
                "agents_named".to_owned(),
                json!([{"table": "agent", "keys": [key("organization_id", "input.organization_id")]}]),
                json!([])
            ),
            (
                "agents_from_missing_file".to_owned(),
                json!([]),
                json!([{"line": 40, "message": runtime}])
            ),
        ]
    );
}

#[test]
fn suggest_json_for_teamhub_handlers() {
    let output = reactive(&["suggest", "--json", "tests/fixtures/teamhub_handlers.rs"]);
    let (code, text) = stdout_of(&output);
    assert_eq!(code, Some(0));
    let report: Value = serde_json::from_str(&text).expect("JSON");
    let functions = report["functions"].as_array().expect("functions");
    let attributes: Vec<(&str, &str, bool)> = functions
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or_default(),
                f["attribute"].as_str().unwrap_or_default(),
                f["dependencies_required"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        attributes,
        [
            (
                "agents_find_many",
                r#"#[reactive_function(name = "agents.findMany", query)]"#,
                false
            ),
            (
                "agent_with_stats",
                r#"#[reactive_function(name = "agents.getWithStats", query, push)]"#,
                false
            ),
            (
                "agents_search",
                r#"#[reactive_function(name = "agents.search", query, dependencies(agent, tool))]"#,
                true
            ),
            (
                "agents_update",
                r#"#[reactive_function(name = "agents.update", mutation)]"#,
                false
            ),
            (
                "messages_send",
                r#"#[reactive_function(name = "messages.send", mutation)]"#,
                false
            ),
            (
                "delete",
                r#"#[reactive_function(name = "delete", mutation)]"#,
                false
            ),
            (
                "archived_agents",
                r#"#[reactive_function(name = "archived.agents", query)]"#,
                false
            ),
            (
                "memories_for_org",
                r#"#[reactive_function(name = "memories.forOrg", query)]"#,
                false
            ),
            (
                "migrate",
                r#"#[reactive_function(name = "migrate", mutation)]"#,
                false
            ),
        ]
    );
    assert_eq!(
        functions[2],
        json!({"name": "agents_search", "file": "tests/fixtures/teamhub_handlers.rs", "line": 38,
               "procedure": "agents.search", "kind": "query",
               "attribute": "#[reactive_function(name = \"agents.search\", query, dependencies(agent, tool))]",
               "existing": "#[reactive_function]",
               "inferred": [{"table": "tool", "keys": [{"column": "organization_id", "source": "input.organization_id"}]}],
               "writes": [], "dependencies_required": true,
               "notes": [
                   {"line": 39, "message": "the format string here reads `agent`: listed in `dependencies(...)` (check what is filled in at run time)"},
                   {"line": 40, "message": "SQL built at run time: add every table it reads to `dependencies(...)`"}]})
    );
    assert_eq!(
        functions[5]["notes"],
        json!([{"line": 75, "message": "a method cannot be a `#[reactive_function]` yet: make it a free function"}])
    );
}

#[test]
fn convert_previews_a_diff_that_patches_to_the_expected_file() {
    let output = reactive(&["convert", "tests/fixtures/convert/plain_sqlx.rs"]);
    let expected =
        std::fs::read_to_string(crate_dir().join("tests/fixtures/convert/plain_sqlx.diff"))
            .expect("expected diff");
    assert_eq!(stdout_of(&output), (Some(1), expected));
}

#[test]
fn convert_write_rewrites_only_what_it_must_and_is_idempotent() {
    let dir = temp_dir("convert");
    let file = dir.join("db.rs");
    std::fs::copy(
        crate_dir().join("tests/fixtures/convert/plain_sqlx.rs"),
        &file,
    )
    .expect("copy");
    let path = file.display().to_string();
    let output = reactive(&["convert", "--write", &path]);
    let (code, text) = stdout_of(&output);
    assert_eq!(code, Some(1), "notes remain: {text}");
    assert!(
        text.starts_with(&format!(
            "{path}: converted agents_find_many, agents_rename, tools_search\n{path}:12: note: `Agent` is a reactive function's output: add `serde::Serialize, ts_rs::TS` to its `#[derive(...)]`\n{path}:19: note: `agents_rename` takes 2 values besides the pool"
        )),
        "{text}"
    );
    let converted = std::fs::read_to_string(&file).expect("read back");
    let expected =
        std::fs::read_to_string(crate_dir().join("tests/fixtures/convert/plain_sqlx.converted.rs"))
            .expect("expected file");
    assert_eq!(converted, expected);
    // Converted functions whose notes say nothing is left to do expand without errors.
    let errors: Vec<String> = macro_errors(&converted)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        errors,
        ["agents_rename", "tools_search"],
        "the two with notes fail, the rest expand"
    );

    // A second run finds nothing to convert and leaves the file alone.
    let output = reactive(&["convert", "--write", &path]);
    assert_eq!(
        stdout_of(&output),
        (
            Some(0),
            format!("{path}: nothing to convert (no `async fn` taking a sqlx pool first)\n")
        )
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rules_files_are_created_updated_between_markers_and_left_unchanged() {
    let dir = temp_dir("rules");
    let out = dir.display().to_string();
    std::fs::write(dir.join("AGENTS.md"), "# Our agents\n\nOur own rules.\n").expect("write");
    let output = reactive(&["rules", "--out", &out]);
    assert_eq!(
        stdout_of(&output),
        (
            Some(0),
            format!(
                "created {out}/CLAUDE.md\ncreated {out}/.cursor/rules/reactive.mdc\ncreated {out}/.github/copilot-instructions.md\nupdated {out}/AGENTS.md\n"
            )
        )
    );
    let section = reactive_cli::rules::section();
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).expect("rules file");
    assert_eq!(read("CLAUDE.md"), section);
    assert_eq!(read(".github/copilot-instructions.md"), section);
    assert_eq!(
        read("AGENTS.md"),
        format!("# Our agents\n\nOur own rules.\n\n{section}")
    );
    let cursor = read(".cursor/rules/reactive.mdc");
    assert!(cursor.starts_with("---\ndescription: "), "{cursor}");
    assert!(cursor.ends_with(&section));
    for needle in [
        "reactive relations check --migrations",
        "`dependencies(agent, message)`",
        "agent(message.from_agent_id)",
        "*SQL built at run time: reactive cannot see which tables it reads*",
    ] {
        assert!(section.contains(needle), "the rules mention {needle}");
    }

    // The user edits inside and outside the section; a rerun restores only the section.
    let edited = read("CLAUDE.md").replace("### Relations", "### Changed by hand") + "\n## Ours\n";
    std::fs::write(dir.join("CLAUDE.md"), edited).expect("edit");
    let output = reactive(&["rules", "--target", "claude", "--out", &out]);
    assert_eq!(
        stdout_of(&output),
        (Some(0), format!("updated {out}/CLAUDE.md\n"))
    );
    assert_eq!(read("CLAUDE.md"), format!("{section}\n## Ours\n"));
    let output = reactive(&["rules", "--out", &out]);
    let (code, text) = stdout_of(&output);
    assert_eq!(code, Some(0));
    assert_eq!(
        text.lines().filter(|l| l.starts_with("unchanged ")).count(),
        4,
        "{text}"
    );

    // A begin marker without its end: refused, file untouched, exit 1.
    let broken = format!("{}\nhalf a section\n", reactive_cli::rules::BEGIN);
    std::fs::write(dir.join("AGENTS.md"), &broken).expect("write");
    let output = reactive(&["rules", "--target", "agents", "--out", &out]);
    let (code, text) = stdout_of(&output);
    assert_eq!(code, Some(1));
    assert!(
        text.starts_with(&format!(
            "{out}/AGENTS.md: error: has `<!-- reactive:rules:begin"
        )),
        "{text}"
    );
    assert_eq!(read("AGENTS.md"), broken);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn new_function_prints_a_skeleton_the_macro_accepts() {
    let output = reactive(&[
        "new",
        "function",
        "agents_by_org",
        "--table",
        "agent",
        "--key",
        "organization_id",
    ]);
    // The expected text is the compile-pass case's (which trybuild builds and runs).
    let expected = ui_pass_section("reactive new function");
    assert_eq!(stdout_of(&output), (Some(0), expected.clone()));
    assert!(macro_errors(&expected).is_empty());
    // What `analyze` infers from it: `agent` keyed on the input field.
    let dir = temp_dir("new-function");
    let file = dir.join("f.rs");
    std::fs::write(&file, &expected).expect("write");
    let output = reactive(&["analyze", &file.display().to_string()]);
    let (_, text) = stdout_of(&output);
    assert!(
        text.contains("  reads   agent [organization_id = input.organization_id]\n"),
        "{text}"
    );

    let output = reactive(&[
        "new",
        "function",
        "tools_all",
        "--table",
        "tool",
        "--dialect",
        "mysql",
    ]);
    let (code, text) = stdout_of(&output);
    assert_eq!(code, Some(0));
    assert!(
        text.starts_with("use reactive::{reactive_function, ReactiveDb};\nuse sqlx::MySql;\n\n"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "#[reactive_function(name = \"tools.all\", dialect = \"mysql\")]\n\
             pub async fn tools_all(db: &ReactiveDb<MySql>) -> reactive::Result<Vec<Tool>> {\n    \
             Ok(sqlx::query_as::<_, Tool>(\"SELECT * FROM tool\")\n        .fetch_all(db)\n        .await?)\n}\n"
        ),
        "{text}"
    );
    assert!(macro_errors(&text).is_empty());
    let output = reactive(&[
        "new",
        "function",
        "tools_all",
        "--table",
        "tool",
        "--dialect",
        "sqlite",
    ]);
    let (_, text) = stdout_of(&output);
    assert!(text.contains("use sqlx::Sqlite;\n"), "{text}");
    assert!(
        text.contains("pub async fn tools_all(db: &ReactiveDb<Sqlite>) ->"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_of_the_new_commands() {
    for (args, message) in [
        (
            &["suggest"][..],
            "the following required arguments were not provided:\n  <FILE.rs>...",
        ),
        (
            &["convert"],
            "the following required arguments were not provided:\n  <FILE.rs>",
        ),
        (
            &["convert", "a.rs", "b.rs"],
            "unexpected argument 'b.rs' found",
        ),
        (
            &["rules", "--target", "vim"],
            "invalid value 'vim' for '--target <TARGET>'\n  [possible values: claude, cursor, copilot, agents, all]",
        ),
        (&["rules", "extra"], "unexpected argument 'extra' found"),
        (
            &["new", "function", "f"],
            "the following required arguments were not provided:\n  --table <TABLE>",
        ),
        (
            &["new", "function", "--table", "t"],
            "the following required arguments were not provided:\n  <NAME>",
        ),
        (
            &["new", "function", "f-g", "--table", "t"],
            "invalid value 'f-g' for '<NAME>': not an identifier (letters, digits, `_`)",
        ),
        (
            &["new", "function", "f", "--table", "t", "--key", "1d"],
            "invalid value '1d' for '--key <COLUMN>': not an identifier",
        ),
        (&["new", "handler"], "unrecognized subcommand 'handler'"),
        (
            &["completions", "tcsh"],
            "invalid value 'tcsh' for '<SHELL>'",
        ),
    ] {
        assert_usage_error(args, message);
    }
    // The help lists every command, and each command's own help its usage.
    let (code, text) = stdout_of(&reactive(&["--help"]));
    assert_eq!(code, Some(0));
    for command in [
        "analyze",
        "suggest",
        "relations",
        "convert",
        "rules",
        "new",
        "completions",
    ] {
        assert!(
            text.contains(&format!("\n  {command} ")),
            "{command} in {text}"
        );
    }
    for (args, usage) in [
        (
            &["relations", "check", "--help"][..],
            "Usage: reactive relations check [OPTIONS] <--migrations <DIR>|--database-url <URL>> <FILE.rs>...",
        ),
        (
            &["relations", "suggest", "--help"],
            "Usage: reactive relations suggest [OPTIONS] <--migrations <DIR>|--database-url <URL>>",
        ),
        (
            &["new", "function", "--help"],
            "Usage: reactive new function [OPTIONS] --table <TABLE> <NAME>",
        ),
        (
            &["help", "convert"],
            "Usage: reactive convert [OPTIONS] <FILE.rs>",
        ),
    ] {
        let (code, text) = stdout_of(&reactive(args));
        assert_eq!(code, Some(0), "{args:?}");
        assert!(text.contains(usage), "{args:?}: {text}");
    }
}

/// `reactive completions SHELL` prints a script that completes the commands.
#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, text) = stdout_of(&reactive(&["completions", shell]));
        assert_eq!(code, Some(0), "{shell}");
        for word in ["analyze", "relations", "dialect", "database-url"] {
            assert!(text.contains(word), "{shell}: {word} in {text}");
        }
    }
}

#[test]
fn teamhub_agents_md_is_up_to_date() {
    use reactive_cli::rules::{Target, updated};
    let path = crate_dir().join("../examples/teamhub/AGENTS.md");
    let current = std::fs::read_to_string(&path).expect("examples/teamhub/AGENTS.md");
    assert!(
        current.starts_with("# TeamHub: notes for AI assistants\n"),
        "own content kept"
    );
    assert_eq!(
        updated(Target::Agents, Some(&current)).expect("markers"),
        current,
        "regenerate: cargo run -p reactive-cli -- rules --target agents --out examples/teamhub"
    );
}

#[test]
fn convert_keeps_crlf_and_uses_full_paths_inside_modules() {
    let dir = temp_dir("convert-crlf");
    let file = dir.join("inner.rs");
    let source = "use sqlx::SqlitePool;\r\n\r\nmod inner {\r\n    pub async fn tools_count(db: &sqlx::SqlitePool) -> sqlx::Result<i64> {\r\n        sqlx::query_scalar(\"SELECT count(*) FROM tool\").fetch_one(db).await\r\n    }\r\n}\r\n";
    std::fs::write(&file, source).expect("write");
    let path = file.display().to_string();
    let output = reactive(&["convert", "--write", &path]);
    assert_eq!(
        stdout_of(&output),
        (Some(0), format!("{path}: converted tools_count\n"))
    );
    let converted = std::fs::read_to_string(&file).expect("read");
    assert_eq!(
        converted,
        "\r\nmod inner {\r\n    #[reactive::reactive_function(name = \"tools.count\", dialect = \"sqlite\")]\r\n    pub async fn tools_count(db: &reactive::ReactiveDb<sqlx::Sqlite>) -> reactive::Result<i64> {\r\n        Ok(sqlx::query_scalar(\"SELECT count(*) FROM tool\").fetch_one(db).await?)\r\n    }\r\n}\r\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Native sqlx on PostgreSQL (`&PgPool`, `&sqlx::Pool<sqlx::Postgres>`, `Uuid` binds,
/// `query_as!`): the handle names the database, the native code is kept, the import
/// of `Postgres` is added; the result is a compile-pass case (trybuild builds its
/// `query_as!` against `ui-tests/.sqlx`).
#[test]
fn convert_keeps_native_types_and_query_macros_and_names_the_database() {
    let dir = temp_dir("convert-native");
    let file = dir.join("native.rs");
    std::fs::copy(crate_dir().join("tests/fixtures/convert/native.rs"), &file).expect("copy");
    let path = file.display().to_string();
    let output = reactive(&["convert", "--write", &path]);
    assert_eq!(
        stdout_of(&output),
        (
            Some(0),
            format!("{path}: converted projects_by_org, project_rename\n")
        ),
        "converted with nothing left to do"
    );
    let converted = std::fs::read_to_string(&file).expect("read");
    assert_eq!(ui_pass_section("reactive convert native"), converted);
    assert!(macro_errors(&converted).is_empty());
    let output = reactive(&["convert", "--write", &path]);
    assert_eq!(
        stdout_of(&output),
        (
            Some(0),
            format!("{path}: nothing to convert (no `async fn` taking a sqlx pool first)\n")
        )
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), converted);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every pool names its database on the handle; a database type already imported
/// (here by `use sqlx::{MySql, ...}`) is not imported again; connections,
/// transactions and generic executors taken first are notes, not edits.
#[test]
fn convert_names_each_database_and_notes_connections() {
    let dir = temp_dir("convert-databases");
    let file = dir.join("db.rs");
    let source = "use sqlx::{MySql, MySqlPool};\n\n\
        pub async fn a(pool: &MySqlPool) -> sqlx::Result<i64> {\n    sqlx::query_scalar(\"SELECT count(*) FROM a\").fetch_one(pool).await\n}\n\n\
        pub async fn b(pool: &sqlx::AnyPool) -> sqlx::Result<i64> {\n    sqlx::query_scalar(\"SELECT count(*) FROM b\").fetch_one(pool).await\n}\n\n\
        pub async fn c(pool: &sqlx::SqlitePool) -> sqlx::Result<i64> {\n    sqlx::query_scalar(\"SELECT count(*) FROM c\").fetch_one(pool).await\n}\n\n\
        pub async fn d(pool: &sqlx::Pool<Postgres>) -> sqlx::Result<i64> {\n    sqlx::query_scalar(\"SELECT count(*) FROM d\").fetch_one(pool).await\n}\n\n\
        pub async fn e(conn: &mut sqlx::PgConnection) -> sqlx::Result<i64> {\n    sqlx::query_scalar(\"SELECT count(*) FROM e\").fetch_one(conn).await\n}\n\n\
        pub async fn f(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> sqlx::Result<i64> {\n    sqlx::query_scalar(\"SELECT count(*) FROM f\").fetch_one(&mut **tx).await\n}\n\n\
        pub async fn g<'c, E: sqlx::Executor<'c, Database = sqlx::Postgres>>(db: E) -> sqlx::Result<i64> {\n    sqlx::query_scalar(\"SELECT count(*) FROM g\").fetch_one(db).await\n}\n";
    std::fs::write(&file, source).expect("write");
    let path = file.display().to_string();
    let output = reactive(&["convert", "--write", &path]);
    assert_eq!(
        stdout_of(&output),
        (
            Some(1),
            format!(
                "{path}: converted a, b, c, d\n\
                 {path}:19: note: `e` takes a connection or transaction (`&mut sqlx::PgConnection`): statements sent through it bypass `ReactiveDb`; make it take `db: &ReactiveDb<Postgres>` by hand, or keep it a helper taking `tx: &mut ReactiveTx<Postgres>` (from `db.begin()`)\n\
                 {path}:23: note: `f` takes a connection or transaction (`&mut sqlx::Transaction<'_, sqlx::Sqlite>`): statements sent through it bypass `ReactiveDb`; make it take `db: &ReactiveDb<sqlx::Sqlite>` by hand, or keep it a helper taking `tx: &mut ReactiveTx<sqlx::Sqlite>` (from `db.begin()`)\n\
                 {path}:27: note: `g` is generic over the executor: make it take `db: &ReactiveDb<Postgres>` by hand (or keep it a helper called with a `ReactiveTx`)\n"
            )
        )
    );
    let converted = std::fs::read_to_string(&file).expect("read");
    let signatures: Vec<&str> = converted
        .lines()
        .filter(|l| l.starts_with("use ") || l.starts_with("pub async fn "))
        .map(|l| l.split(" -> ").next().unwrap_or(l))
        .collect();
    assert_eq!(
        signatures,
        [
            "use sqlx::MySql;",
            "use reactive::{reactive_function, ReactiveDb};",
            "use sqlx::{Any, Sqlite};",
            "pub async fn a(pool: &ReactiveDb<MySql>)",
            "pub async fn b(pool: &ReactiveDb<Any>)",
            "pub async fn c(pool: &ReactiveDb<Sqlite>)",
            "pub async fn d(pool: &ReactiveDb<Postgres>)",
            "pub async fn e(conn: &mut sqlx::PgConnection)",
            "pub async fn f(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>)",
            "pub async fn g<'c, E: sqlx::Executor<'c, Database = sqlx::Postgres>>(db: E)",
        ]
    );
    assert!(converted.contains("#[reactive_function(name = \"c\", dialect = \"sqlite\")]\n"));
    assert!(converted.contains("#[reactive_function(name = \"a\", dialect = \"mysql\")]\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The text between `// begin: NAME` and `// end: NAME` in `ui-tests/pass/cli_generated.rs`.
fn ui_pass_section(name: &str) -> String {
    let pass = std::fs::read_to_string(crate_dir().join("../ui-tests/pass/cli_generated.rs"))
        .expect("ui-tests/pass/cli_generated.rs");
    let begin = format!("// begin: {name}\n");
    let start = pass.find(&begin).expect("begin marker") + begin.len();
    let end = pass.find(&format!("// end: {name}\n")).expect("end marker");
    pass[start..end].to_owned()
}

/// `ui-tests/pass/cli_generated.rs` compiles and runs (trybuild) what the CLI generates
/// today: `new function` output, and a file `convert` converts completely.
#[test]
fn the_compile_pass_case_holds_the_current_generated_code() {
    let output = reactive(&[
        "new",
        "function",
        "agents_by_org",
        "--table",
        "agent",
        "--key",
        "organization_id",
    ]);
    let (_, skeleton) = stdout_of(&output);
    assert_eq!(ui_pass_section("reactive new function"), skeleton);

    let dir = temp_dir("convert-complete");
    let file = dir.join("complete.rs");
    std::fs::copy(
        crate_dir().join("tests/fixtures/convert/complete.rs"),
        &file,
    )
    .expect("copy");
    let path = file.display().to_string();
    let output = reactive(&["convert", "--write", &path]);
    assert_eq!(
        stdout_of(&output),
        (
            Some(0),
            format!("{path}: converted tools_by_org, tools_rename\n")
        ),
        "converted with nothing left to do"
    );
    let converted = std::fs::read_to_string(&file).expect("read");
    assert_eq!(ui_pass_section("reactive convert"), converted);
    let _ = std::fs::remove_dir_all(&dir);
}
