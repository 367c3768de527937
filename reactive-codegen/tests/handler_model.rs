//! Handler analysis end to end, with the real SQL analyser: handler source →
//! `HandlerAnalysis` → `ModelParts` (what `#[reactive_function]` embeds).

#![cfg(feature = "rust")]

use reactive_codegen::handler::{
    AnalyzeOptions, BindValue, DiagnosticKind, analyze_file, analyze_fn, to_model_parts,
};
use reactive_codegen::model::{Binding, FunctionKind, KeyDependency, KeySource, TableDependency};
use reactive_codegen::sql::{Dialect, Literal, Operation};
use syn::parse_quote;

fn binding(source: &str, path: &[&str]) -> Binding {
    Binding {
        source: source.into(),
        path: path.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn dep(table: &str, keys: Vec<(&str, Vec<KeySource>)>) -> TableDependency {
    TableDependency {
        table: table.into(),
        keys: keys
            .into_iter()
            .map(|(column, values)| KeyDependency {
                column: column.into(),
                values,
            })
            .collect(),
    }
}

#[test]
fn find_many_depends_on_the_input_organization() {
    let a = analyze_fn(
        &parse_quote! {
            pub async fn agents_find_many(db: &ReactiveDb, input: OrgInput) -> reactive::Result<Vec<Agent>> {
                Ok(sqlx::query_as::<_, Agent>("SELECT * FROM agent WHERE organization_id = $1")
                    .bind(&input.organization_id)
                    .fetch_all(db)
                    .await?)
            }
        },
        Dialect::Postgres,
    );
    assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
    let parts = to_model_parts(&a);
    assert_eq!(parts.kind, FunctionKind::Query);
    assert!(parts.complete);
    assert_eq!(
        parts.bindings,
        [binding("input.organization_id", &["organization_id"])]
    );
    assert_eq!(
        parts.dependencies,
        [dep(
            "agent",
            vec![("organization_id", vec![KeySource::Binding(0)])]
        )]
    );
    assert_eq!(parts.statements.len(), 1);
    assert_eq!(
        parts.statements[0].sql,
        "SELECT * FROM agent WHERE organization_id = $1"
    );
    assert_eq!(parts.statements[0].params, [Some(0)]);
    assert_eq!(parts.statements[0].analysis.operation, Operation::Select);
}

#[test]
fn joins_literals_and_untraceable_params() {
    let a = analyze_fn(
        &parse_quote! {
            async fn agent_messages(db: &ReactiveDb, input: AgentInput) -> Result<Vec<Row>> {
                let since = Utc::now() - Duration::days(7);
                sqlx::query_as(
                    "SELECT a.name, m.body FROM agent a \
                     LEFT JOIN message m ON m.from_agent_id = a.id AND m.kind = 'chat' \
                     WHERE a.id = $1 AND a.organization_id = $2 AND m.created_at = $3",
                )
                .bind(&input.agent_id)
                .bind(&input.organization_id)
                .bind(since)
                .fetch_all(db)
                .await
            }
        },
        Dialect::Postgres,
    );
    let parts = to_model_parts(&a);
    assert_eq!(
        parts.bindings,
        [
            binding("input.agent_id", &["agent_id"]),
            binding("input.organization_id", &["organization_id"])
        ]
    );
    let agent = parts
        .dependencies
        .iter()
        .find(|d| d.table == "agent")
        .expect("agent read");
    assert_eq!(
        agent.keys,
        dep(
            "agent",
            vec![
                ("id", vec![KeySource::Binding(0)]),
                ("organization_id", vec![KeySource::Binding(1)])
            ]
        )
        .keys
    );
    // `m.created_at = $3` is bound to a local: it must not narrow `message`; the
    // literal `kind = 'chat'` may.
    let message = parts
        .dependencies
        .iter()
        .find(|d| d.table == "message")
        .expect("message read");
    assert!(
        message.keys.iter().all(|k| k.column != "created_at"),
        "{message:?}"
    );
    assert!(
        message
            .keys
            .iter()
            .all(|k| k.values.iter().all(|v| matches!(v, KeySource::Literal(_)))),
        "{message:?}"
    );
    assert_eq!(parts.statements[0].params, [Some(0), Some(1), None]);
}

#[test]
fn mysql_question_marks_line_up_with_binds() {
    let a = analyze_fn(
        &parse_quote! {
            async fn tools(db: &ReactiveDb, input: ToolInput) -> Result<Vec<Tool>> {
                sqlx::query_as("SELECT * FROM tool WHERE organization_id = ? AND kind = ? AND id IN (?, ?)")
                    .bind(&input.organization_id)
                    .bind("builtin")
                    .bind(&input.first)
                    .bind(&input.second)
                    .fetch_all(db)
                    .await
            }
        },
        Dialect::MySql,
    );
    let parts = to_model_parts(&a);
    assert_eq!(
        parts.dependencies,
        [dep(
            "tool",
            vec![
                ("id", vec![KeySource::Binding(1), KeySource::Binding(2)]),
                (
                    "kind",
                    vec![KeySource::Literal(Literal::String("builtin".into()))]
                ),
                ("organization_id", vec![KeySource::Binding(0)]),
            ]
        )]
    );
}

#[test]
fn a_key_bound_to_a_local_widens_to_the_whole_table() {
    let a = analyze_fn(
        &parse_quote! {
            async fn current(db: &ReactiveDb, input: In) -> Result<Agent> {
                let me = session_agent().await?;
                sqlx::query_as("SELECT * FROM agent WHERE id = ?1").bind(me).fetch_one(db).await
            }
        },
        Dialect::Sqlite,
    );
    let parts = to_model_parts(&a);
    assert!(parts.bindings.is_empty());
    assert_eq!(parts.dependencies, [dep("agent", vec![])]);
    assert_eq!(parts.statements[0].params, [None]);
    assert!(a.calls.iter().any(|c| c.name == "session_agent"));
}

#[test]
fn writes_unknown_sql_and_runtime_sql() {
    let a = analyze_fn(
        &parse_quote! {
            async fn agents_create(db: &ReactiveDb, input: NewAgent) -> Result<()> {
                sqlx::query("INSERT INTO agent (organization_id, name) VALUES ($1, $2)")
                    .bind(&input.organization_id)
                    .bind(&input.name)
                    .execute(db)
                    .await?;
                sqlx::query("THIS IS NOT SQL").execute(db).await?;
                sqlx::query(AssertSqlSafe(format!("NOTIFY {}", input.channel))).execute(db).await?;
                Ok(())
            }
        },
        Dialect::Postgres,
    );
    assert_eq!(a.kind(), FunctionKind::Mutation);
    let kinds: Vec<DiagnosticKind> = a.diagnostics.iter().map(|d| d.kind).collect();
    assert!(
        kinds.contains(&DiagnosticKind::UnknownStatement),
        "{kinds:?}"
    );
    assert!(kinds.contains(&DiagnosticKind::RuntimeSql), "{kinds:?}");
    let parts = to_model_parts(&a);
    assert!(!parts.complete);
    assert_eq!(parts.statements.len(), 2);
    assert_eq!(parts.statements[0].params, [Some(0), Some(1)]);
    assert_eq!(parts.statements[0].analysis.writes[0].table, "agent");
    assert!(parts.statements[1].analysis.unknown.is_some());
}

#[test]
fn files_give_free_fns_methods_module_fns_and_trait_defaults_with_file_consts() {
    let file: syn::File = syn::parse_str(
        r#"
        const BY_ORG: &str = "SELECT * FROM agent WHERE organization_id = $1";
        pub async fn a(db: &Db, input: In) { sqlx::query(BY_ORG).bind(&input.org).fetch_all(db).await; }
        impl S {
            async fn b(&self, db: &Db, input: In) { sqlx::query("DELETE FROM tool").execute(db).await; }
        }
        mod m {
            fn c(db: &Db) {}
        }
        trait T {
            async fn d(db: &Db, input: In) { sqlx::query("SELECT 1").fetch_one(db).await; }
            fn e(&self);
        }
        "#,
    )
    .expect("valid file");
    let fns = analyze_file(
        &file,
        &AnalyzeOptions {
            dialect: Dialect::Postgres,
            ..AnalyzeOptions::default()
        },
    );
    let names: Vec<(&str, bool, usize)> = fns
        .iter()
        .map(|f| (f.name.as_str(), f.is_async, f.statements.len()))
        .collect();
    assert_eq!(
        names,
        [
            ("a", true, 1),
            ("b", true, 1),
            ("c", false, 0),
            ("d", true, 1)
        ]
    );
    assert_eq!(
        fns[0].statements[0].sql,
        "SELECT * FROM agent WHERE organization_id = $1"
    );
    assert_eq!(
        fns[0].statements[0].location.line, 2,
        "the span of the const's literal"
    );
    assert_eq!(
        fns[0].statements[0].binds[0].value,
        BindValue::Input {
            path: vec!["org".into()],
            source: "input.org".into()
        }
    );
    assert_eq!(to_model_parts(&fns[1]).kind, FunctionKind::Mutation);
}
