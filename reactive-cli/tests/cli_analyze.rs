//! `reactive analyze`: runs the built binary on fixture files.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn reactive(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reactive"))
        .args(args)
        .output()
        .expect("the reactive binary runs")
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

fn key(column: &str, source: &str) -> Value {
    json!({"column": column, "source": source})
}

#[test]
fn json_output_for_teamhub_handlers_is_exact() {
    let file = fixture("teamhub_handlers.rs");
    let out = json_of(&reactive(&["analyze", "--json", &file]));
    let f = file.as_str();
    let runtime = "SQL built at run time; dependencies cannot be inferred";
    let expected = json!({"functions": [
        {"name": "agents_find_many", "file": f, "line": 9, "kind": "query",
         "reads": [{"table": "agent", "keys": [key("organization_id", "input.organization_id")]}],
         "writes": [], "diagnostics": []},
        {"name": "agent_with_stats", "file": f, "line": 17, "kind": "query",
         "reads": [
            {"table": "agent", "keys": [key("id", "input.agent_id")]},
            {"table": "memory", "keys": [key("agent_id", "input.agent_id"), key("kind", "'long_term'")]},
            {"table": "message", "keys": [key("from_agent_id", "input.agent_id")]},
            {"table": "organization", "keys": []}],
         "writes": [], "diagnostics": []},
        {"name": "agents_search", "file": f, "line": 38, "kind": "query",
         "reads": [{"table": "tool", "keys": [key("organization_id", "input.organization_id")]}],
         "writes": [], "diagnostics": [{"line": 40, "message": runtime}]},
        {"name": "agents_update", "file": f, "line": 47, "kind": "mutation",
         "reads": [{"table": "agent", "keys": [key("id", "input.id"), key("organization_id", "input.organization_id")]}],
         "writes": [{"table": "agent", "keys": [key("id", "input.id"), key("organization_id", "input.organization_id")]}],
         "diagnostics": []},
        {"name": "messages_send", "file": f, "line": 60, "kind": "mutation",
         "reads": [],
         "writes": [{"table": "message", "keys": [
            key("body", "input.body"),
            key("from_agent_id", "input.from_agent_id"),
            key("to_agent_id", "input.to_agent_id")]}],
         "diagnostics": []},
        {"name": "delete", "file": f, "line": 75, "kind": "mutation",
         "reads": [],
         "writes": [{"table": "tool", "keys": [key("id", "input.id")]}],
         "diagnostics": []},
        {"name": "archived_agents", "file": f, "line": 86, "kind": "query",
         "reads": [{"table": "agent", "keys": [
            key("organization_id", "organization_id"),
            key("status", "'archived', 'deleted'")]}],
         "writes": [], "diagnostics": []},
        {"name": "memories_for_org", "file": f, "line": 93, "kind": "query",
         "reads": [
            {"table": "agent", "keys": [key("organization_id", "input.organization_id")]},
            {"table": "memory", "keys": []}],
         "writes": [], "diagnostics": []},
        {"name": "migrate", "file": f, "line": 107, "kind": "mutation",
         "reads": [], "writes": [],
         "diagnostics": [{"line": 108, "message": "DDL statement; treated as reading and writing anything"}]},
    ]});
    assert_eq!(
        out,
        expected,
        "got:\n{}",
        serde_json::to_string_pretty(&out).unwrap_or_default()
    );
}

/// What does not depend on the SQL analyser: which functions are listed, in which
/// order, with which file and line, and the run-time SQL diagnostic.
#[test]
fn json_lists_async_fns_sending_sql_in_file_order() {
    let file = fixture("teamhub_handlers.rs");
    let out = json_of(&reactive(&["analyze", "--json", &file]));
    let functions = out["functions"].as_array().expect("functions array");
    let listed: Vec<(&str, &str, u64)> = functions
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or(""),
                f["file"].as_str().unwrap_or(""),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let f = file.as_str();
    assert_eq!(
        listed,
        [
            ("agents_find_many", f, 9),
            ("agent_with_stats", f, 17),
            ("agents_search", f, 38),
            ("agents_update", f, 47),
            ("messages_send", f, 60),
            ("delete", f, 75),
            ("archived_agents", f, 86),
            ("memories_for_org", f, 93),
            ("migrate", f, 107),
        ]
    );
    let search = &functions[2];
    assert!(
        search["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .contains(&json!({"line": 40, "message": "SQL built at run time; dependencies cannot be inferred"})),
        "{search}"
    );
    for f in functions {
        let keys: Vec<&str> = f
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 7, "{f}");
        for k in [
            "name",
            "file",
            "line",
            "kind",
            "reads",
            "writes",
            "diagnostics",
        ] {
            assert!(keys.contains(&k), "{k} missing in {f}");
        }
    }
}

#[test]
fn several_files_and_the_sqlite_dialect() {
    let sqlite = fixture("sqlite_handlers.rs");
    let out = json_of(&reactive(&[
        "analyze",
        "--dialect",
        "sqlite",
        "--json",
        &sqlite,
    ]));
    assert_eq!(
        out,
        json!({"functions": [{"name": "tools_find", "file": sqlite, "line": 3, "kind": "query",
            "reads": [{"table": "tool", "keys": [key("id", "input.id"), key("organization_id", "input.organization_id")]}],
            "writes": [], "diagnostics": []}]})
    );

    let teamhub = fixture("teamhub_handlers.rs");
    let out = json_of(&reactive(&["analyze", "--json", &sqlite, &teamhub]));
    let files: Vec<&str> = out["functions"]
        .as_array()
        .expect("array")
        .iter()
        .map(|f| f["file"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(files.len(), 10);
    assert_eq!(files[0], sqlite);
    assert!(files[1..].iter().all(|f| *f == teamhub));
}

#[test]
fn human_output_names_functions_tables_and_warnings() {
    let file = fixture("teamhub_handlers.rs");
    let output = reactive(&["analyze", &file]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        text.contains(&format!("{file}:9: agents_find_many (query)\n")),
        "{text}"
    );
    assert!(
        text.contains("  reads   agent [organization_id = input.organization_id]\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{file}:47: agents_update (mutation)\n")),
        "{text}"
    );
    assert!(
        text.contains("  reads   agent [organization_id = organization_id and status in ('archived', 'deleted')]\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  warning: {file}:40: SQL built at run time; dependencies cannot be inferred\n"
        )),
        "{text}"
    );
    assert!(
        !text.contains("health"),
        "async fns without SQL are not listed: {text}"
    );
    assert!(
        !text.contains("not_async"),
        "non-async fns are not listed: {text}"
    );
}

#[test]
fn a_file_without_sql_gives_an_empty_list() {
    let dir = std::env::temp_dir().join(format!("reactive-cli-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("empty.rs");
    std::fs::write(&file, "pub async fn health() -> &'static str { \"ok\" }\n").expect("write");
    let out = json_of(&reactive(&[
        "analyze",
        "--json",
        &file.display().to_string(),
    ]));
    assert_eq!(out, json!({"functions": []}));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreadable_file_fails_with_a_clear_message() {
    let output = reactive(&["analyze", "--json", "does/not/exist.rs"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does/not/exist.rs: cannot read file"),
        "{stderr}"
    );
}

#[test]
fn syntax_error_fails_with_file_line_and_column() {
    let file = fixture("broken.rs");
    let output = reactive(&["analyze", "--json", &fixture("sqlite_handlers.rs"), &file]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        output.stdout.is_empty(),
        "nothing printed when a file fails"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{file}:2:13: syntax error")),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_with_2_and_print_usage() {
    for (args, usage) in [
        (&["analyze"][..], "Usage: reactive analyze <FILE.rs>..."),
        (&["nope"], "Usage: reactive <COMMAND>"),
        (&[], "Usage: reactive <COMMAND>"),
    ] {
        let output = reactive(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(usage), "{args:?}: {stderr}");
    }
    let output = reactive(&["analyze", "--dialect", "oracle", "x.rs"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with(
            "error: invalid value 'oracle' for '--dialect <D>'\n  [possible values: postgres, sqlite, mysql]"
        )
    );
    let help = reactive(&["analyze", "--help"]);
    assert!(help.status.success());
    assert!(
        String::from_utf8_lossy(&help.stdout)
            .contains("Usage: reactive analyze [OPTIONS] <FILE.rs>...")
    );
}
