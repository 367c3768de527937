//! Unit tests of the handler walk and of the model rule. They do not depend on the
//! SQL analyser: where an analysis matters, it is written by hand.

use proc_macro2::Span;
use syn::parse_quote;

use super::*;
use crate::model::{Binding, KeyDependency, KeySource, TableDependency};
use crate::sql::{
    ColumnValue, KeyPredicate, Literal, Operation, Param, RowFilter, StatementAnalysis, TableRead,
    TableWrite, ValueRef,
};

fn analyze(item: syn::ItemFn) -> HandlerAnalysis {
    analyze_fn(&item, Dialect::Postgres)
}

fn analyze_src(src: &str) -> HandlerAnalysis {
    let item: syn::ItemFn = syn::parse_str(src).expect("valid fn");
    analyze_fn(&item, Dialect::Postgres)
}

fn input(path: &[&str], source: &str) -> BindValue {
    BindValue::Input {
        path: path.iter().map(|s| (*s).to_owned()).collect(),
        source: source.to_owned(),
    }
}

fn runtime_diags(a: &HandlerAnalysis) -> usize {
    a.diagnostics
        .iter()
        .filter(|d| d.kind == DiagnosticKind::RuntimeSql)
        .count()
}

// ---- finding SQL ----------------------------------------------------------------

#[test]
fn finds_query_as_with_turbofish_and_traces_bind() {
    let a = analyze(parse_quote! {
        pub async fn agents_find_many(db: &ReactiveDb, input: OrgInput) -> reactive::Result<Vec<Agent>> {
            Ok(sqlx::query_as::<_, Agent>("SELECT * FROM agent WHERE organization_id = $1")
                .bind(&input.organization_id)
                .fetch_all(db)
                .await?)
        }
    });
    assert_eq!(a.name, "agents_find_many");
    assert!(a.is_async);
    assert_eq!(a.db.as_deref(), Some("db"));
    assert_eq!(
        a.input.as_ref().and_then(|i| i.name.clone()).as_deref(),
        Some("input")
    );
    assert_eq!(a.statements.len(), 1);
    let site = &a.statements[0];
    assert_eq!(site.sql, "SELECT * FROM agent WHERE organization_id = $1");
    assert_eq!(site.api.name(), "query_as");
    assert_eq!(site.binds.len(), 1);
    assert_eq!(site.binds[0].index, 1);
    assert_eq!(site.binds[0].expr, "&input.organization_id");
    assert_eq!(
        site.binds[0].value,
        input(&["organization_id"], "input.organization_id")
    );
    assert!(
        a.diagnostics
            .iter()
            .all(|d| d.kind != DiagnosticKind::RuntimeSql)
    );
    // `.bind` / `.fetch_all` belong to the query chain: not listed as calls.
    assert!(
        a.calls
            .iter()
            .all(|c| c.name != "bind" && c.name != "fetch_all"),
        "{:?}",
        a.calls
    );
}

#[test]
fn recognises_every_constructor_form_with_or_without_prefix() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            sqlx::query("SELECT 1").execute(db).await;
            query_as("SELECT 2").fetch_all(db).await;
            sqlx::query_scalar::<_, i64>("SELECT 3").fetch_one(db).await;
            sqlx::query_with("SELECT 4", args).execute(db).await;
            sqlx::query_as_with::<_, Row, _>("SELECT 5", args).fetch_all(db).await;
            query_scalar_with("SELECT 6", args).fetch_one(db).await;
            sqlx::query_unchecked("SELECT 7").execute(db).await;
            sqlx::query_as_unchecked("SELECT 8").execute(db).await;
            sqlx::query_scalar_with_unchecked("SELECT 9", args).execute(db).await;
            sqlx::raw_sql("SELECT 10").execute(db).await;
        }
    });
    let names: Vec<(String, String)> = a
        .statements
        .iter()
        .map(|s| (s.api.name(), s.sql.clone()))
        .collect();
    let expected = [
        ("query", "SELECT 1"),
        ("query_as", "SELECT 2"),
        ("query_scalar", "SELECT 3"),
        ("query_with", "SELECT 4"),
        ("query_as_with", "SELECT 5"),
        ("query_scalar_with", "SELECT 6"),
        ("query_unchecked", "SELECT 7"),
        ("query_as_unchecked", "SELECT 8"),
        ("query_scalar_with_unchecked", "SELECT 9"),
        ("raw_sql", "SELECT 10"),
    ];
    assert_eq!(names, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert_eq!(runtime_diags(&a), 0);
}

#[test]
fn macros_take_sql_then_binds_and_query_as_takes_a_type_first() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            let rows = sqlx::query_as!(Agent, "SELECT * FROM agent WHERE organization_id = $1 AND id = $2",
                input.organization_id, input.id)
                .fetch_all(db).await?;
            query!("DELETE FROM agent WHERE id = $1", &input.id).execute(db).await?;
            sqlx::query_scalar_unchecked!("SELECT count(*) FROM agent WHERE status = $1", "active")
                .fetch_one(db).await?;
        }
    });
    assert_eq!(a.statements.len(), 3);
    let s = &a.statements[0];
    assert_eq!(s.api.name(), "query_as!");
    assert_eq!(
        s.sql,
        "SELECT * FROM agent WHERE organization_id = $1 AND id = $2"
    );
    assert_eq!(s.binds.iter().map(|b| b.index).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        s.binds[0].value,
        input(&["organization_id"], "input.organization_id")
    );
    assert_eq!(s.binds[1].value, input(&["id"], "input.id"));
    assert_eq!(a.statements[1].api.name(), "query!");
    assert_eq!(a.statements[1].binds[0].value, input(&["id"], "input.id"));
    assert_eq!(a.statements[2].api.name(), "query_scalar_unchecked!");
    assert_eq!(
        a.statements[2].binds[0].value,
        BindValue::Literal(Literal::String("active".into()))
    );
    assert!(
        a.calls
            .iter()
            .all(|c| c.name != "fetch_all" && c.name != "execute"),
        "{:?}",
        a.calls
    );
}

#[test]
fn raw_strings_concat_and_assert_sql_safe_literals_are_sql() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            sqlx::query(r#"SELECT "name" FROM agent WHERE id = $1"#).bind(input.id).fetch_one(db).await;
            sqlx::query(concat!("SELECT * ", "FROM tool")).fetch_all(db).await;
            sqlx::query(AssertSqlSafe("SELECT * FROM memory")).fetch_all(db).await;
        }
    });
    let sql: Vec<&str> = a.statements.iter().map(|s| s.sql.as_str()).collect();
    assert_eq!(
        sql,
        [
            r#"SELECT "name" FROM agent WHERE id = $1"#,
            "SELECT * FROM tool",
            "SELECT * FROM memory"
        ]
    );
    assert_eq!(runtime_diags(&a), 0);
}

#[test]
fn sql_through_a_let_or_a_const_in_the_fn() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            const LIST: &str = "SELECT * FROM tool WHERE organization_id = $1";
            let sql = "SELECT * FROM agent WHERE id = $1";
            let again: &str = sql;
            sqlx::query(sql).bind(&input.id).fetch_one(db).await;
            sqlx::query(again).bind(&input.id).fetch_one(db).await;
            sqlx::query(LIST).bind(&input.org).fetch_all(db).await;
        }
    });
    let sql: Vec<&str> = a.statements.iter().map(|s| s.sql.as_str()).collect();
    assert_eq!(
        sql,
        [
            "SELECT * FROM agent WHERE id = $1",
            "SELECT * FROM agent WHERE id = $1",
            "SELECT * FROM tool WHERE organization_id = $1"
        ]
    );
    assert_eq!(runtime_diags(&a), 0);
}

#[test]
fn module_level_consts_come_from_options() {
    let item: syn::ItemFn = parse_quote! {
        async fn f(db: &Db, input: In) { sqlx::query(LIST_AGENTS).fetch_all(db).await; }
    };
    let without = analyze_fn(&item, Dialect::Postgres);
    assert!(without.statements.is_empty());
    assert_eq!(runtime_diags(&without), 1);

    let mut options = AnalyzeOptions {
        dialect: Dialect::Postgres,
        ..AnalyzeOptions::default()
    };
    options.consts.insert(
        "LIST_AGENTS".into(),
        ("SELECT * FROM agent".into(), Span::call_site()),
    );
    let with = analyze_fn_with(&item, &options);
    assert_eq!(with.statements.len(), 1);
    assert_eq!(with.statements[0].sql, "SELECT * FROM agent");
    assert_eq!(runtime_diags(&with), 0);
}

#[test]
fn sql_built_at_run_time_is_a_diagnostic_never_a_statement() {
    let cases: Vec<syn::ItemFn> = vec![
        parse_quote! { async fn f(db: &Db, input: In) {
            sqlx::query(&format!("SELECT * FROM {}", input.table)).fetch_all(db).await;
        } },
        parse_quote! { async fn f(db: &Db, input: In) {
            let sql = format!("SELECT * FROM agent WHERE {}", filter);
            sqlx::query(AssertSqlSafe(sql)).fetch_all(db).await;
        } },
        parse_quote! { async fn f(db: &Db, sql: &'static str) { sqlx::query(sql).execute(db).await; } },
        parse_quote! { async fn f(db: &Db, input: In) {
            sqlx::query(AssertSqlSafe("SELECT * FROM agent".to_owned() + &input.filter)).fetch_all(db).await;
        } },
        parse_quote! { async fn f(db: &Db, input: In) {
            let mut sql = "SELECT * FROM agent";
            if input.all { sql = "SELECT * FROM tool"; }
            sqlx::query(sql).fetch_all(db).await;
        } },
        parse_quote! { async fn f(db: &Db, input: In) {
            let sql = if input.all { "SELECT * FROM agent" } else { "SELECT * FROM tool" };
            sqlx::query(sql).fetch_all(db).await;
        } },
        parse_quote! { async fn f(db: &Db, input: In) {
            let mut qb = sqlx::QueryBuilder::new("SELECT * FROM agent WHERE id IN ");
            qb.build().fetch_all(db).await;
        } },
        parse_quote! { async fn f(db: &Db, input: In) {
            sqlx::query_file!("queries/agents.sql", input.id).fetch_all(db).await;
        } },
        parse_quote! { async fn f(db: &Db, input: In) {
            db.execute(AssertSqlSafe(format!("DELETE FROM {}", input.table))).await;
        } },
        parse_quote! { async fn f(db: &Db, input: In) {
            sqlx::query!(SOME_CONST_NOT_VISIBLE, input.id).fetch_all(db).await;
        } },
    ];
    for item in cases {
        let a = analyze_fn(&item, Dialect::Postgres);
        let text = quote::quote!(#item).to_string();
        assert!(a.statements.is_empty(), "{text}: {:?}", a.statements);
        assert_eq!(runtime_diags(&a), 1, "{text}: {:?}", a.diagnostics);
        assert_eq!(a.diagnostics[0].message, RUNTIME_SQL_MESSAGE);
        assert!(a.sends_sql());
    }
}

#[test]
fn executor_methods_with_a_literal_send_sql() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            db.execute("DELETE FROM session").await?;
            let q = sqlx::query("SELECT * FROM agent");
            q.fetch_all(db).await?;
        }
    });
    let apis: Vec<(String, &str)> = a
        .statements
        .iter()
        .map(|s| (s.api.name(), s.sql.as_str()))
        .collect();
    assert_eq!(
        apis,
        [
            ("execute".to_owned(), "DELETE FROM session"),
            ("query".to_owned(), "SELECT * FROM agent")
        ]
    );
    assert_eq!(runtime_diags(&a), 0);
}

#[test]
fn queries_inside_other_macros_closures_and_blocks_are_found() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            let (a, b) = tokio::try_join!(
                sqlx::query("SELECT * FROM agent WHERE id = $1").bind(&input.id).fetch_one(db),
                async { sqlx::query("SELECT * FROM tool").fetch_all(db).await },
            )?;
            let run = || sqlx::query("SELECT * FROM memory").fetch_all(db);
        }
    });
    let sql: Vec<&str> = a.statements.iter().map(|s| s.sql.as_str()).collect();
    assert_eq!(
        sql,
        [
            "SELECT * FROM agent WHERE id = $1",
            "SELECT * FROM tool",
            "SELECT * FROM memory"
        ]
    );
    assert_eq!(a.statements[0].binds[0].value, input(&["id"], "input.id"));
}

// ---- binds ----------------------------------------------------------------------

fn first_bind_values(a: &HandlerAnalysis) -> Vec<BindValue> {
    a.statements
        .iter()
        .map(|s| s.binds[0].value.clone())
        .collect()
}

#[test]
fn the_nth_bind_is_parameter_n() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            sqlx::query("UPDATE agent SET name = $3 WHERE organization_id = $1 AND id = $2")
                .bind(&input.organization_id)
                .persistent(false)
                .bind(&input.id)
                .bind(&input.name)
                .execute(db).await?;
        }
    });
    let binds = &a.statements[0].binds;
    assert_eq!(binds.iter().map(|b| b.index).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        binds[0].value,
        input(&["organization_id"], "input.organization_id")
    );
    assert_eq!(binds[1].value, input(&["id"], "input.id"));
    assert_eq!(binds[2].value, input(&["name"], "input.name"));
}

#[test]
fn binds_outside_the_chain_are_not_guessed() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            let q = sqlx::query("SELECT * FROM agent WHERE id = $1 AND organization_id = $2").bind(&input.id);
            q.bind(&input.organization_id).fetch_all(db).await?;
            sqlx::query_with("SELECT * FROM tool WHERE id = $1", args).fetch_all(db).await?;
        }
    });
    assert_eq!(a.statements[0].binds.len(), 1);
    assert_eq!(a.statements[0].binds[0].value, input(&["id"], "input.id"));
    assert!(
        a.statements[1].binds.is_empty(),
        "query_with arguments are not traced"
    );
}

#[test]
fn value_preserving_wrappers_are_looked_through() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            sqlx::query("A").bind(&input.organization_id).execute(db).await;
            sqlx::query("B").bind(input.organization_id.clone()).execute(db).await;
            sqlx::query("C").bind(input.data.name.as_deref()).execute(db).await;
            sqlx::query("D").bind(input.id.as_str()).execute(db).await;
            sqlx::query("E").bind(*input.id).execute(db).await;
            sqlx::query("F").bind((&input.id).to_owned()).execute(db).await;
            sqlx::query("G").bind(input.pair.0).execute(db).await;
            sqlx::query("H").bind(input.id).execute(db).await;
            sqlx::query("I").bind(&*input.id).execute(db).await;
            sqlx::query("J").bind(input.id.to_string()).execute(db).await;
            sqlx::query("K").bind(input.id.as_ref()).execute(db).await;
            sqlx::query("L").bind(input.data.name.into()).execute(db).await;
            sqlx::query("M").bind(input.data.name.clone().as_deref()).execute(db).await;
            sqlx::query("N").bind(input.id.to_owned().to_string().into()).execute(db).await;
        }
    });
    assert_eq!(
        first_bind_values(&a),
        [
            input(&["organization_id"], "input.organization_id"),
            input(&["organization_id"], "input.organization_id"),
            input(&["data", "name"], "input.data.name"),
            input(&["id"], "input.id"),
            input(&["id"], "input.id"),
            input(&["id"], "input.id"),
            input(&["pair", "0"], "input.pair.0"),
            input(&["id"], "input.id"),
            input(&["id"], "input.id"),
            input(&["id"], "input.id"),
            input(&["id"], "input.id"),
            input(&["data", "name"], "input.data.name"),
            input(&["data", "name"], "input.data.name"),
            input(&["id"], "input.id"),
        ]
    );
}

#[test]
fn conversions_that_may_change_the_value_are_not_traced() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            sqlx::query("A").bind(input.name.trim()).execute(db).await;
            sqlx::query("B").bind(input.id as i64).execute(db).await;
            sqlx::query("C").bind(input.id + 1).execute(db).await;
            sqlx::query("D").bind(other.id).execute(db).await;
            sqlx::query("E").bind(Uuid::new_v4()).execute(db).await;
            sqlx::query("F").bind(input.name.to_lowercase()).execute(db).await;
            sqlx::query("G").bind(input.id as _).execute(db).await;
            sqlx::query("H").bind(format!("{}", input.id)).execute(db).await;
            sqlx::query("I").bind(input.name.to_lowercase().to_string()).execute(db).await;
            sqlx::query("J").bind(input.ids.borrow()).execute(db).await;
            sqlx::query("K").bind(input.id.map(|id| id + 1)).execute(db).await;
            sqlx::query("L").bind(input.id.unwrap_or(0)).execute(db).await;
            sqlx::query("M").bind(input.name.into_bytes()).execute(db).await;
        }
    });
    assert!(
        first_bind_values(&a).iter().all(|v| *v == BindValue::Other),
        "{:?}",
        first_bind_values(&a)
    );
    assert_eq!(a.statements[4].binds[0].expr, "Uuid::new_v4()");
}

#[test]
fn rust_literals_are_literal_values() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            sqlx::query("A").bind("active").execute(db).await;
            sqlx::query("B").bind(42).execute(db).await;
            sqlx::query("C").bind(-1i64).execute(db).await;
            sqlx::query("D").bind(true).execute(db).await;
            let status = "archived";
            sqlx::query("E").bind(status).execute(db).await;
        }
    });
    assert_eq!(
        first_bind_values(&a),
        [
            BindValue::Literal(Literal::String("active".into())),
            BindValue::Literal(Literal::Number("42".into())),
            BindValue::Literal(Literal::Number("-1".into())),
            BindValue::Literal(Literal::Bool(true)),
            BindValue::Literal(Literal::String("archived".into())),
        ]
    );
}

#[test]
fn locals_bound_once_to_input_fields_are_traced_others_are_not() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            let org = &input.organization_id;
            let id = input.id.clone();
            let mut changed = input.name.clone();
            changed.push('x');
            let computed = compute(&input);
            sqlx::query("A").bind(org).execute(db).await;
            sqlx::query("B").bind(&id).execute(db).await;
            sqlx::query("C").bind(&changed).execute(db).await;
            sqlx::query("D").bind(computed).execute(db).await;
        }
    });
    assert_eq!(
        first_bind_values(&a),
        [
            input(&["organization_id"], "input.organization_id"),
            input(&["id"], "input.id"),
            BindValue::Other,
            BindValue::Other,
        ]
    );
}

#[test]
fn shadowing_a_name_stops_tracing_it() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            let input = load(db).await;
            sqlx::query("A").bind(&input.id).execute(db).await;
            let id = 1;
            let id = other();
            sqlx::query("B").bind(id).execute(db).await;
        }
    });
    assert_eq!(first_bind_values(&a), [BindValue::Other, BindValue::Other]);

    // A closure parameter with the input's name shadows it too.
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            items.iter().map(|input| input.id);
            sqlx::query("A").bind(&input.id).execute(db).await;
        }
    });
    assert_eq!(first_bind_values(&a), [BindValue::Other]);

    // A `mut` input can be changed before the bind.
    let a = analyze(parse_quote! {
        async fn f(db: &Db, mut input: In) {
            input.id = other();
            sqlx::query("A").bind(&input.id).execute(db).await;
        }
    });
    assert_eq!(first_bind_values(&a), [BindValue::Other]);

    // So can a `&mut` input.
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: &mut In) {
            input.id = other();
            sqlx::query("A").bind(&input.id).execute(db).await;
        }
    });
    assert_eq!(first_bind_values(&a), [BindValue::Other]);
    // A shared reference cannot.
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: &In) {
            sqlx::query("A").bind(&input.id).execute(db).await;
        }
    });
    assert_eq!(first_bind_values(&a), [input(&["id"], "input.id")]);
}

#[test]
fn the_input_is_the_second_typed_parameter_whatever_its_name() {
    let a = analyze(parse_quote! {
        async fn f(&self, conn: &Db, args: In) {
            sqlx::query("A").bind(&args.team_id).execute(conn).await;
        }
    });
    assert_eq!(a.db.as_deref(), Some("conn"));
    assert_eq!(first_bind_values(&a), [input(&["team_id"], "args.team_id")]);
}

#[test]
fn destructured_and_wrapped_inputs_are_traced() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, OrgInput { organization_id, data: Data { name, .. }, id: agent_id }: OrgInput) {
            sqlx::query("A").bind(&organization_id).execute(db).await;
            sqlx::query("B").bind(name).execute(db).await;
            sqlx::query("C").bind(agent_id).execute(db).await;
        }
    });
    assert_eq!(a.input.as_ref().map(|i| i.name.clone()), Some(None));
    assert_eq!(
        first_bind_values(&a),
        [
            input(&["organization_id"], "organization_id"),
            input(&["data", "name"], "name"),
            input(&["id"], "agent_id"),
        ]
    );
    let a = analyze(parse_quote! {
        async fn f(db: &Db, Json(req): Json<Req>) {
            sqlx::query("A").bind(&req.id).execute(db).await;
        }
    });
    assert_eq!(first_bind_values(&a), [input(&["id"], "req.id")]);
}

#[test]
fn nested_fns_are_searched_but_not_traced_to_the_outer_input() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            async fn helper(db: &Db, input: Other) {
                sqlx::query("SELECT * FROM tool WHERE id = $1").bind(&input.id).fetch_all(db).await;
            }
            helper(db, input.other).await;
        }
    });
    assert_eq!(a.statements.len(), 1);
    assert_eq!(a.statements[0].binds[0].value, BindValue::Other);
}

// ---- calls ----------------------------------------------------------------------

#[test]
fn calls_are_collected_with_names_paths_and_db_flag() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            let agent = agents_find_one(db, AgentInput { id: input.id.clone() }).await?;
            let stats = crate::stats::compute(&agent);
            let tools = db.tools_for(&input.organization_id).await?;
            sqlx::query("SELECT 1").fetch_one(db).await?;
        }
    });
    let calls: Vec<(&str, &str, bool, bool)> = a
        .calls
        .iter()
        .map(|c| (c.name.as_str(), c.path.as_str(), c.is_method, c.passes_db))
        .collect();
    assert_eq!(
        calls,
        [
            ("agents_find_one", "agents_find_one", false, true),
            ("clone", "clone", true, false),
            ("compute", "crate::stats::compute", false, false),
            ("tools_for", "tools_for", true, true),
        ]
    );
}

// ---- spans ----------------------------------------------------------------------

#[test]
fn spans_give_lines_and_columns_of_literals_binds_and_diagnostics() {
    let a = analyze_src(
        "async fn f(db: &Db, input: In) {
    let sql = \"SELECT * FROM agent WHERE id = $1\";
    sqlx::query(sql)
        .bind(&input.id)
        .fetch_one(db).await;
    sqlx::query(&format!(\"SELECT * FROM {}\", t)).fetch_all(db).await;
    helper(db).await;
}",
    );
    assert_eq!(
        a.location,
        Location {
            line: 1,
            column: 10
        }
    );
    let site = &a.statements[0];
    assert_eq!(
        site.location,
        Location {
            line: 2,
            column: 15
        }
    );
    assert_eq!(Location::of(site.call_span).line, 3);
    assert_eq!(
        site.binds[0].location,
        Location {
            line: 4,
            column: 15
        }
    );
    assert_eq!(site.binds[0].expr, "&input.id");
    let diag = a
        .diagnostics
        .iter()
        .find(|d| d.kind == DiagnosticKind::RuntimeSql)
        .expect("runtime diag");
    assert_eq!(
        diag.location,
        Location {
            line: 6,
            column: 17
        }
    );
    assert_eq!(
        a.calls
            .iter()
            .find(|c| c.name == "helper")
            .map(|c| c.location),
        Some(Location { line: 7, column: 5 })
    );
}

#[test]
fn statements_are_in_source_order() {
    let a = analyze_src(
        "async fn f(db: &Db, input: In) {
    let first = \"SELECT * FROM b\";
    sqlx::query(\"SELECT * FROM a\").fetch_all(db).await;
    sqlx::query(first).fetch_all(db).await;
}",
    );
    let sql: Vec<&str> = a.statements.iter().map(|s| s.sql.as_str()).collect();
    assert_eq!(sql, ["SELECT * FROM a", "SELECT * FROM b"]);
}

// ---- model parts (analysis written by hand) ---------------------------------------

fn param(index: usize) -> ValueRef {
    ValueRef::Param(Param { index, name: None })
}

fn keys(preds: Vec<(&str, Vec<ValueRef>)>) -> RowFilter {
    RowFilter::Keys(
        preds
            .into_iter()
            .map(|(c, values)| KeyPredicate {
                column: c.into(),
                values,
            })
            .collect(),
    )
}

fn select(reads: Vec<(&str, RowFilter)>) -> StatementAnalysis {
    StatementAnalysis {
        operation: Operation::Select,
        reads: reads
            .into_iter()
            .map(|(t, filter)| TableRead {
                table: t.into(),
                filter,
            })
            .collect(),
        writes: vec![],
        returning: false,
        unknown: None,
    }
}

/// Analyse `item`, then replace each statement's analysis with the given ones.
fn with_analyses(item: syn::ItemFn, analyses: Vec<StatementAnalysis>) -> HandlerAnalysis {
    let mut a = analyze(item);
    assert_eq!(a.statements.len(), analyses.len());
    for (site, analysis) in a.statements.iter_mut().zip(analyses) {
        site.analysis = analysis;
    }
    a.diagnostics
        .retain(|d| d.kind != DiagnosticKind::UnknownStatement);
    a
}

#[test]
fn keys_trace_to_bindings_literals_or_are_dropped() {
    let a = with_analyses(
        parse_quote! {
            async fn f(db: &Db, input: In) {
                let local = compute();
                sqlx::query("S1").bind(&input.organization_id).bind(local).bind("active")
                    .fetch_all(db).await?;
                sqlx::query("S2").bind(input.organization_id.clone()).bind(&input.id).fetch_all(db).await?;
            }
        },
        vec![
            select(vec![
                (
                    "agent",
                    keys(vec![
                        ("organization_id", vec![param(1)]),
                        ("owner", vec![param(2)]),
                        ("status", vec![param(3)]),
                        ("kind", vec![ValueRef::Literal(Literal::Number("7".into()))]),
                    ]),
                ),
                ("message", keys(vec![("agent_id", vec![param(2)])])),
            ]),
            select(vec![(
                "tool",
                keys(vec![
                    ("organization_id", vec![param(1)]),
                    ("id", vec![param(2), param(9)]),
                ]),
            )]),
        ],
    );
    let parts = to_model_parts(&a);
    assert_eq!(parts.kind, FunctionKind::Query);
    assert!(parts.complete);
    assert_eq!(
        parts.bindings,
        [
            Binding {
                source: "input.organization_id".into(),
                path: vec!["organization_id".into()]
            },
            Binding {
                source: "input.id".into(),
                path: vec!["id".into()]
            },
        ]
    );
    assert_eq!(
        parts.dependencies,
        [
            TableDependency {
                table: "agent".into(),
                keys: vec![
                    KeyDependency {
                        column: "kind".into(),
                        values: vec![KeySource::Literal(Literal::Number("7".into()))]
                    },
                    KeyDependency {
                        column: "organization_id".into(),
                        values: vec![KeySource::Binding(0)]
                    },
                    KeyDependency {
                        column: "status".into(),
                        values: vec![KeySource::Literal(Literal::String("active".into()))]
                    },
                ],
            },
            // The only key was bound to a local: dropped, so the whole table.
            TableDependency {
                table: "message".into(),
                keys: vec![]
            },
            // `id IN ($2, $9)`: $9 is not bound in the chain, so the predicate is dropped.
            TableDependency {
                table: "tool".into(),
                keys: vec![KeyDependency {
                    column: "organization_id".into(),
                    values: vec![KeySource::Binding(0)]
                }],
            },
        ]
    );
    assert_eq!(parts.statements.len(), 2);
    assert_eq!(parts.statements[0].sql, "S1");
    assert_eq!(parts.statements[0].params, [Some(0), None, None]);
    assert_eq!(parts.statements[1].params, [Some(0), Some(1)]);
}

#[test]
fn whole_table_dependencies_absorb_keyed_ones_and_duplicates_merge() {
    let a = with_analyses(
        parse_quote! {
            async fn f(db: &Db, input: In) {
                sqlx::query("S1").bind(&input.id).fetch_all(db).await?;
                sqlx::query("S2").bind(&input.id).fetch_all(db).await?;
                sqlx::query("S3").fetch_all(db).await?;
            }
        },
        vec![
            select(vec![
                ("agent", keys(vec![("id", vec![param(1)])])),
                ("tool", keys(vec![("id", vec![param(1)])])),
            ]),
            select(vec![("agent", keys(vec![("id", vec![param(1)])]))]),
            select(vec![("tool", RowFilter::All)]),
        ],
    );
    let parts = to_model_parts(&a);
    assert_eq!(
        parts.dependencies,
        [
            TableDependency {
                table: "agent".into(),
                keys: vec![KeyDependency {
                    column: "id".into(),
                    values: vec![KeySource::Binding(0)]
                }]
            },
            TableDependency {
                table: "tool".into(),
                keys: vec![]
            },
        ]
    );
}

#[test]
fn writes_make_a_mutation_and_resolve_their_keys() {
    let insert = StatementAnalysis {
        operation: Operation::Insert,
        reads: vec![],
        writes: vec![TableWrite {
            table: "agent".into(),
            operation: Operation::Insert,
            filter: RowFilter::All,
            set: vec![],
            inserted: Some(vec![vec![
                ColumnValue {
                    column: "id".into(),
                    value: Some(param(1)),
                },
                ColumnValue {
                    column: "organization_id".into(),
                    value: Some(param(2)),
                },
                ColumnValue {
                    column: "created_at".into(),
                    value: None,
                },
                ColumnValue {
                    column: "status".into(),
                    value: Some(ValueRef::Literal(Literal::String("new".into()))),
                },
            ]]),
        }],
        returning: true,
        unknown: None,
    };
    let update = StatementAnalysis {
        operation: Operation::Update,
        reads: vec![TableRead {
            table: "tool".into(),
            filter: keys(vec![("id", vec![param(2)])]),
        }],
        writes: vec![TableWrite {
            table: "tool".into(),
            operation: Operation::Update,
            filter: keys(vec![
                ("id", vec![param(2)]),
                ("organization_id", vec![param(3)]),
            ]),
            set: vec![ColumnValue {
                column: "name".into(),
                value: Some(param(1)),
            }],
            inserted: None,
        }],
        returning: false,
        unknown: None,
    };
    let a = with_analyses(
        parse_quote! {
            async fn f(db: &Db, input: In) {
                let id = Uuid::new_v4();
                sqlx::query("INSERT").bind(id).bind(&input.organization_id).execute(db).await?;
                sqlx::query("UPDATE").bind(&input.name).bind(&input.tool_id).bind(&input.organization_id)
                    .execute(db).await?;
            }
        },
        vec![insert, update],
    );
    assert_eq!(a.kind(), FunctionKind::Mutation);
    let parts = to_model_parts(&a);
    assert_eq!(parts.kind, FunctionKind::Mutation);
    let writes = resolved_writes(&a);
    assert_eq!(
        writes,
        [
            ResolvedTable {
                table: "agent".into(),
                keys: vec![
                    ResolvedKey {
                        column: "organization_id".into(),
                        source: "input.organization_id".into(),
                        values: 1
                    },
                    ResolvedKey {
                        column: "status".into(),
                        source: "'new'".into(),
                        values: 1
                    },
                ],
            },
            ResolvedTable {
                table: "tool".into(),
                keys: vec![
                    ResolvedKey {
                        column: "id".into(),
                        source: "input.tool_id".into(),
                        values: 1
                    },
                    ResolvedKey {
                        column: "organization_id".into(),
                        source: "input.organization_id".into(),
                        values: 1
                    },
                ],
            },
        ]
    );
    assert_eq!(
        resolved_reads(&a),
        [ResolvedTable {
            table: "tool".into(),
            keys: vec![ResolvedKey {
                column: "id".into(),
                source: "input.tool_id".into(),
                values: 1
            }]
        }]
    );
}

#[test]
fn in_lists_join_their_sources() {
    let a = with_analyses(
        parse_quote! {
            async fn f(db: &Db, input: In) {
                sqlx::query("S").bind(&input.a).bind(&input.b).fetch_all(db).await?;
            }
        },
        vec![select(vec![(
            "agent",
            keys(vec![(
                "id",
                vec![
                    param(1),
                    param(2),
                    ValueRef::Literal(Literal::String("x".into())),
                ],
            )]),
        )])],
    );
    assert_eq!(
        resolved_reads(&a),
        [ResolvedTable {
            table: "agent".into(),
            keys: vec![ResolvedKey {
                column: "id".into(),
                source: "input.a, input.b, 'x'".into(),
                values: 3
            }]
        }]
    );
}

#[test]
fn unknown_statements_and_runtime_sql_make_the_parts_incomplete() {
    let a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) {
            sqlx::query(&format!("SELECT * FROM {}", t)).fetch_all(db).await?;
        }
    });
    assert!(!to_model_parts(&a).complete);
    assert_eq!(
        to_model_parts(&a).kind,
        FunctionKind::Query,
        "run-time SQL alone does not make a mutation"
    );

    let mut a = analyze(parse_quote! {
        async fn f(db: &Db, input: In) { sqlx::query("DROP TABLE agent").execute(db).await?; }
    });
    a.statements[0].analysis = StatementAnalysis::unknown(Operation::Ddl, crate::sql::Unknown::Ddl);
    let parts = to_model_parts(&a);
    assert!(!parts.complete);
    assert_eq!(parts.kind, FunctionKind::Mutation);
}

#[test]
fn query_file_macros_read_their_file_from_the_manifest_dir() {
    let item: syn::ItemFn = parse_quote! {
        async fn f(db: &Db, input: In) {
            sqlx::query_file_as!(Agent, "tests/fixtures/queries/agent_by_id.sql", &input.org, input.id.clone())
                .fetch_one(db).await?;
            query_file_scalar_unchecked!("tests/fixtures/queries/agent_by_id.sql", 1, input.id).fetch_one(db).await?;
            sqlx::query_file!("tests/fixtures/queries/missing.sql", input.id).execute(db).await?;
            sqlx::query_file!("/etc/agent.sql", input.id).execute(db).await?;
        }
    };
    let options = AnalyzeOptions {
        manifest_dir: Some(env!("CARGO_MANIFEST_DIR").into()),
        ..AnalyzeOptions::default()
    };
    let a = analyze_fn_with(&item, &options);
    assert_eq!(a.statements.len(), 2, "{:?}", a.diagnostics);
    let s = &a.statements[0];
    assert_eq!(s.api.name(), "query_file_as!");
    assert_eq!(
        s.sql,
        "SELECT * FROM agent\nWHERE organization_id = $1 AND id = $2\n"
    );
    assert_eq!(
        s.binds.iter().map(|b| b.value.clone()).collect::<Vec<_>>(),
        [input(&["org"], "input.org"), input(&["id"], "input.id")]
    );
    assert_eq!(a.statements[1].api.name(), "query_file_scalar_unchecked!");
    assert_eq!(
        a.statements[1].binds[0].value,
        BindValue::Literal(Literal::Number("1".into()))
    );
    // A file that cannot be read, and an absolute path: run-time SQL.
    assert_eq!(runtime_diags(&a), 2, "{:?}", a.diagnostics);
    assert!(
        a.calls.iter().all(|c| c.name != "fetch_one"),
        "{:?}",
        a.calls
    );
    // Without a manifest directory nothing is read.
    let a = analyze_fn(&item, Dialect::Postgres);
    assert!(a.statements.is_empty());
    assert_eq!(runtime_diags(&a), 4);
}

#[test]
fn read_key_params_list_what_each_key_parameter_traced_to() {
    let a = analyze_src(
        r#"async fn f(db: &Db, input: In) {
            sqlx::query!("SELECT * FROM agent WHERE organization_id = $1 AND name = $2 AND id = $3",
                input.org, input.name.trim())
                .fetch_all(db).await?;
        }"#,
    );
    let keys = read_key_params(&a);
    let summary: Vec<(&str, usize, Option<&str>, &BindValue, usize)> = keys
        .iter()
        .map(|k| {
            (
                k.column.as_str(),
                k.param,
                k.expr.as_deref(),
                &k.value,
                k.location.line,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "organization_id",
                1,
                Some("input.org"),
                &input(&["org"], "input.org"),
                3
            ),
            ("name", 2, Some("input.name.trim()"), &BindValue::Other, 3),
            ("id", 3, None, &BindValue::Other, 2),
        ]
    );
}
