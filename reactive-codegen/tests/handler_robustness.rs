//! Handler analysis never panics: on every Rust file of this workspace, and on
//! generated handlers mixing every recognised API with arbitrary SQL and binds.

#![cfg(feature = "rust")]

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use reactive_codegen::handler::{
    AnalyzeOptions, DiagnosticKind, analyze_file, resolved_reads, resolved_writes, to_model_parts,
};
use reactive_codegen::sql::Dialect;

const DIALECTS: [Dialect; 3] = [Dialect::Postgres, Dialect::Sqlite, Dialect::MySql];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name.starts_with("target") || name.starts_with('.') || name == "node_modules") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_workspace_file_is_analysed_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut analysed = 0;
    for path in &files {
        let Ok(source) = std::fs::read_to_string(path) else {
            continue;
        };
        let Ok(file) = syn::parse_file(&source) else {
            continue;
        };
        for dialect in DIALECTS {
            for f in analyze_file(
                &file,
                &AnalyzeOptions {
                    dialect,
                    ..AnalyzeOptions::default()
                },
            ) {
                let parts = to_model_parts(&f);
                assert_eq!(parts.statements.len(), f.statements.len());
                let _ = (resolved_reads(&f), resolved_writes(&f));
            }
        }
        analysed += 1;
    }
    // This crate alone has more than that; a broken walk must not pass silently.
    assert!(
        analysed >= 10,
        "only {analysed} files analysed under {}",
        root.display()
    );
}

fn api() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "sqlx::query",
        "query_as",
        "sqlx::query_as::<_, Row>",
        "sqlx::query_scalar",
        "sqlx::query_unchecked",
        "query_scalar_unchecked",
    ])
}

fn bind_expr() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "&input.id",
        "input.a.b.clone()",
        "input.name.as_deref()",
        "local",
        "1",
        "-2",
        "\"s\"",
        "true",
        "f(input.id)",
        "input.id as i64",
        "*input.x",
        "(&input.y)",
        "input.0",
    ])
}

fn sql_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("SELECT * FROM agent WHERE id = $1 AND organization_id = $2".to_owned()),
        Just("UPDATE t SET a = ? WHERE b = ? AND c IN (?, 'x')".to_owned()),
        Just("INSERT INTO t (a, b) VALUES (?1, ?2), (?3, 5)".to_owned()),
        Just("DELETE FROM t WHERE a = :a OR b = :b".to_owned()),
        "[ -~]{0,60}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_handlers_never_panic_and_binds_line_up(
        api in api(),
        sql in sql_text(),
        binds in prop::collection::vec(bind_expr(), 0..5),
        through_let in any::<bool>(),
        dialect in prop::sample::select(DIALECTS.to_vec()),
    ) {
        let literal = format!("{sql:?}");
        let chain: String = binds.iter().map(|b| format!(".bind({b})")).collect();
        let body = if through_let {
            format!("let sql = {literal}; let local = g(); {api}(sql){chain}.fetch_all(db).await")
        } else {
            format!("let local = g(); {api}({literal}){chain}.fetch_all(db).await")
        };
        let source = format!("async fn handler(db: &Db, input: In) {{ {body} }}");
        let file = syn::parse_file(&source).expect("generated source parses");
        let fns = analyze_file(&file, &AnalyzeOptions { dialect, ..AnalyzeOptions::default() });
        prop_assert_eq!(fns.len(), 1);
        let f = &fns[0];
        prop_assert_eq!(f.statements.len(), 1);
        prop_assert_eq!(&f.statements[0].sql, &sql);
        prop_assert_eq!(f.statements[0].binds.len(), binds.len());
        prop_assert!(f.diagnostics.iter().all(|d| d.kind != DiagnosticKind::RuntimeSql));
        let parts = to_model_parts(f);
        prop_assert_eq!(parts.statements[0].params.len(), binds.len());
        for (param, bind) in parts.statements[0].params.iter().zip(&binds) {
            let traceable = bind.contains("input.") && !bind.starts_with("f(") && !bind.contains(" as ");
            prop_assert_eq!(param.is_some(), traceable, "{}", bind);
        }
        let _ = (resolved_reads(f), resolved_writes(f));
    }
}
