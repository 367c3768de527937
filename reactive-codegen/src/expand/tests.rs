//! Unit tests of the expansion, with `parse_quote!` inputs.

use proc_macro2::TokenStream;
use quote::quote;

use super::args::FunctionArgs;
use super::{derive_relations, reactive_function};

fn expand(attr: TokenStream, item: TokenStream) -> String {
    reactive_function(attr, item).to_string()
}

/// The `compile_error!` messages in an expansion.
fn errors(out: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = out;
    while let Some(at) = rest.find("compile_error ! {") {
        rest = &rest[at..];
        let start = rest.find('"').map(|i| i + 1).unwrap_or(0);
        let end = rest[start..]
            .find("\" }")
            .map(|i| start + i)
            .unwrap_or(rest.len());
        found.push(rest[start..end].replace("\\\"", "\""));
        rest = &rest[end..];
    }
    found
}

#[test]
fn arguments_parse_with_suggestions() {
    let args = FunctionArgs::parse(quote!(
        name = "agents.findMany",
        query,
        dependencies(agent, "Message"),
        dialect = "sqlite"
    ))
    .unwrap();
    assert_eq!(
        args.name.as_deref().map(String::as_str),
        Some("agents.findMany")
    );
    assert!(args.query.is_present());
    let tables: Vec<_> = args
        .dependencies
        .unwrap()
        .tables
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(tables, ["agent", "message"]);
    assert_eq!(
        args.dialect.map(|d| *d),
        Some(super::args::DialectArg::Sqlite)
    );

    let error = FunctionArgs::parse(quote!(dependecies(agent)))
        .unwrap_err()
        .to_string();
    assert!(error.contains("Did you mean `dependencies`"), "{error}");
    let error = FunctionArgs::parse(quote!(dialect = "postgre"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("postgres"), "{error}");
    let error = FunctionArgs::parse(quote!(query, mutation))
        .unwrap_err()
        .to_string();
    assert!(error.contains("not both"), "{error}");
    let error = FunctionArgs::parse(quote!(dependencies(agent, agent)))
        .unwrap_err()
        .to_string();
    assert!(error.contains("listed twice"), "{error}");
}

#[test]
fn default_dialect_is_postgres() {
    assert_eq!(
        FunctionArgs::parse(quote!()).unwrap().dialect(None),
        crate::sql::Dialect::Postgres
    );
}

#[test]
fn a_native_handle_implies_its_dialect() {
    let item = quote! {
        async fn f(db: &ReactiveDb<sqlx::MySql>, input: I) -> reactive::Result<Vec<Row>> {
            Ok(sqlx::query_as("SELECT id FROM agent WHERE organization_id = ?").bind(&input.org).fetch_all(db).await?)
        }
    };
    let out = expand(quote!(), item.clone());
    assert!(errors(&out).is_empty(), "{out}");
    assert!(out.contains(r#"\"dialect\":\"mysql\""#), "{out}");
    let out = expand(quote!(dialect = "sqlite"), item);
    let errs = errors(&out);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("contradicts the handle"), "{errs:?}");
}

#[test]
fn the_function_is_always_re_emitted() {
    let item = quote! {
        fn not_async(db: &ReactiveDb<Any>) -> reactive::Result<i64> { Ok(1) }
    };
    let out = expand(quote!(bogus), item);
    assert!(
        out.contains(
            "fn not_async (db : & ReactiveDb < Any >) -> reactive :: Result < i64 > { Ok (1) }"
        ),
        "{out}"
    );
    let errs = errors(&out);
    assert!(
        errs.iter().any(|e| e.contains("Unknown field: `bogus`")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("must be an `async fn`")),
        "{errs:?}"
    );
    assert!(
        !out.contains("inventory :: submit"),
        "no registration next to errors"
    );
}

#[test]
fn signature_shapes() {
    let cases = [
        (
            quote!(
                async fn f() -> reactive::Result<()> {
                    Ok(())
                }
            ),
            "database handle first",
        ),
        (
            quote!(
                async fn f(db: ReactiveDb) -> reactive::Result<()> {
                    Ok(())
                }
            ),
            "must be the database handle `&ReactiveDb`",
        ),
        (
            quote!(
                async fn f(db: &ReactiveDb<Any>, input: &Input) -> reactive::Result<()> {
                    Ok(())
                }
            ),
            "passed by value",
        ),
        (
            quote!(
                async fn f(db: &ReactiveDb<Any>, a: A, b: B) -> reactive::Result<()> {
                    Ok(())
                }
            ),
            "at most two parameters",
        ),
        (
            quote!(
                async fn f(db: &ReactiveDb<Any>) {}
            ),
            "must return `reactive::Result<Output>`",
        ),
        (
            quote!(
                async fn f(db: &ReactiveDb<Any>) -> Vec<i64> {
                    vec![]
                }
            ),
            "must return `reactive::Result<Output>`",
        ),
        (
            quote!(
                async fn f<T>(db: &ReactiveDb<Any>, input: T) -> reactive::Result<()> {
                    Ok(())
                }
            ),
            "cannot be generic",
        ),
    ];
    for (item, message) in cases {
        let errs = errors(&expand(quote!(), item.clone()));
        assert!(errs.iter().any(|e| e.contains(message)), "{item}: {errs:?}");
    }
}

#[test]
fn valid_function_registers() {
    let out = expand(
        quote!(name = "agents.findMany"),
        quote! {
            pub async fn agents_find_many(db: &ReactiveDb<Any>, input: OrgInput) -> reactive::Result<Vec<Agent>> {
                Ok(sqlx::query_as::<_, Agent>("SELECT * FROM agent WHERE organization_id = $1")
                    .bind(&input.organization_id)
                    .fetch_all(db)
                    .await?)
            }
        },
    );
    assert!(errors(&out).is_empty(), "{out}");
    assert!(out.contains("inventory :: submit"), "{out}");
    assert!(out.contains("decode_input :: < OrgInput >"), "{out}");
    assert!(out.contains("ts_collect :: < OrgInput >"), "{out}");
    assert!(out.contains("encode_output :: < Vec < Agent > >"), "{out}");
    assert!(out.contains("ts_collect :: < Vec < Agent > >"), "{out}");
    assert!(out.contains("pub struct agents_find_many { }"), "{out}");
    assert!(out.contains(r#"\"name\":\"agents.findMany\""#), "{out}");
    assert!(out.contains("Registration (& __REACTIVE_DEF)"), "{out}");
}

#[test]
fn run_time_sql_needs_dependencies() {
    let item = quote! {
        async fn f(db: &ReactiveDb<Any>, input: I) -> reactive::Result<Vec<Row>> {
            let sql = format!("SELECT * FROM {}", input.table);
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await?)
        }
    };
    let errs = errors(&expand(quote!(), item.clone()));
    assert!(
        errs.iter().any(|e| e.contains("SQL built at run time")),
        "{errs:?}"
    );
    let errs = errors(&expand(quote!(dependencies(agent)), item));
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn helper_receiving_db_is_probed_or_reported() {
    let item = quote! {
        async fn f(db: &ReactiveDb<Any>, input: I) -> reactive::Result<i64> {
            let a = count_messages(db, &input).await?;
            let b = Agent::count(db).await?;
            Ok(a + b)
        }
    };
    let out = expand(quote!(), item.clone());
    let errs = errors(&out);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("calls `Agent::count`"), "{errs:?}");
    assert_eq!(out.matches("mod __reactive_probe_0").count(), 1, "{out}");
    assert!(out.contains("use super :: count_messages"), "{out}");
    let out = expand(quote!(dependencies(agent, message)), item);
    assert!(errors(&out).is_empty(), "{out}");
    assert!(out.contains("first_missing"), "{out}");
    assert_eq!(out.matches("mod __reactive_probe_0").count(), 1, "{out}");
    // The callee is named in the registration; its tables are added by the registry.
    assert!(
        out.contains("calls : & [< __reactive_probe_0 :: count_messages as :: reactive :: __private :: ReactiveFn > :: NAME]"),
        "{out}"
    );
    assert!(out.contains(r#"\"calls\":[]"#), "{out}");
}

#[test]
fn relations_edges_and_errors() {
    let out = derive_relations(quote! {
        #[relations(
            agent(organization, message.from_agent_id, memory.agent_id),
            organization(agent.organization_id, tool.organization_id, project.org_slug = slug),
        )]
        pub struct Schema;
    })
    .to_string();
    assert!(
        out.contains(r#"("agent" , "id" , "organization" , :: core :: option :: Option :: None)"#),
        "{out}"
    );
    assert!(
        out.contains(
            r#"("agent" , "id" , "message" , :: core :: option :: Option :: Some ("from_agent_id"))"#
        ),
        "{out}"
    );
    assert!(
        out.contains(
            r#"("organization" , "id" , "tool" , :: core :: option :: Option :: Some ("organization_id"))"#
        ),
        "{out}"
    );
    assert!(
        out.contains(
            r#"("organization" , "slug" , "project" , :: core :: option :: Option :: Some ("org_slug"))"#
        ),
        "{out}"
    );

    let out = derive_relations(quote! {
        #[relations(agent(message.from_agent_id), agent(memory.agent_id), tool = 1, memory(agent.x.y, agent, agent))]
        pub struct Schema;
    })
    .to_string();
    let errs = errors(&out);
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(
        errs[0].contains("duplicate relations for table `agent`"),
        "{errs:?}"
    );
    assert!(errs[1].contains("malformed relation"), "{errs:?}");
    assert!(errs[2].contains("malformed related table"), "{errs:?}");
    assert!(
        errs[3].contains("`agent` is listed twice for `memory`"),
        "{errs:?}"
    );

    let errs = errors(
        &derive_relations(quote!(
            pub struct Schema;
        ))
        .to_string(),
    );
    assert!(
        errs[0].contains("needs a `#[relations(...)]` attribute"),
        "{errs:?}"
    );
}

#[test]
fn missing_dependencies_are_all_reported_at_their_literals() {
    let out = expand(
        quote!(dependencies(agent)),
        quote! {
            async fn f(db: &ReactiveDb<Any>, input: I) -> reactive::Result<(i64, i64)> {
                let a = sqlx::query_scalar("SELECT count(*) FROM message m JOIN agent a ON a.id = m.from_agent_id WHERE a.id = $1")
                    .bind(input.id).fetch_one(db).await?;
                let b = sqlx::query_scalar("WITH x AS (SELECT agent_id FROM memory) SELECT count(*) FROM x")
                    .fetch_one(db).await?;
                Ok((a, b))
            }
        },
    );
    let errs = errors(&out);
    assert_eq!(
        errs,
        [
            "handler reads table `message` here, but `dependencies(...)` does not list it",
            "handler reads table `memory` here, but `dependencies(...)` does not list it",
        ]
    );
    assert!(out.contains("async fn f"), "re-emitted");
}

#[test]
fn explicit_query_that_writes_and_unparseable_sql() {
    let out = expand(
        quote!(query),
        quote! {
            async fn f(db: &ReactiveDb<Any>, input: I) -> reactive::Result<()> {
                sqlx::query("UPDATE agent SET name = $1 WHERE id = $2").bind(&input.name).bind(input.id).execute(db).await?;
                sqlx::query("SELEC 1").execute(db).await?;
                Ok(())
            }
        },
    );
    let errs = errors(&out);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("this SQL does not parse (postgres dialect): "),
        "{errs:?}"
    );
    assert!(
        errs[1].contains("this statement writes `agent`, but the function is declared `query`"),
        "{errs:?}"
    );
}

#[test]
fn inferred_model_has_keys_bindings_and_kind() {
    let item: syn::ItemFn = syn::parse_quote! {
        async fn agents(db: &ReactiveDb<Any>, input: OrgInput) -> reactive::Result<Vec<Agent>> {
            Ok(sqlx::query_as("SELECT * FROM agent WHERE organization_id = $1").bind(&input.organization_id).fetch_all(db).await?)
        }
    };
    let analysis = crate::handler::analyze_fn(&item, crate::sql::Dialect::Postgres);
    let cx = super::ctxt::Ctxt::new();
    let plan = super::valid::plan(
        &FunctionArgs::parse(quote!(name = "agents.findMany")).unwrap(),
        &item,
        &analysis,
        &cx,
    );
    assert!(cx.check().is_ok());
    let model = &plan.model;
    assert_eq!(model.name, "agents.findMany");
    assert_eq!(model.kind, crate::model::FunctionKind::Query);
    assert_eq!(model.bindings[0].path, ["organization_id"]);
    assert_eq!(model.dependencies.len(), 1);
    assert_eq!(model.dependencies[0].table, "agent");
    assert_eq!(model.dependencies[0].keys[0].column, "organization_id");
    assert_eq!(plan.own_tables, ["agent"]);

    // A write makes a mutation; `invalidates` is recorded.
    let item: syn::ItemFn = syn::parse_quote! {
        async fn create(db: &ReactiveDb<Any>, input: NewAgent) -> reactive::Result<()> {
            sqlx::query("INSERT INTO agent (name) VALUES ($1)").bind(&input.name).execute(db).await?;
            Ok(())
        }
    };
    let analysis = crate::handler::analyze_fn(&item, crate::sql::Dialect::Postgres);
    let cx = super::ctxt::Ctxt::new();
    let plan = super::valid::plan(
        &FunctionArgs::parse(quote!(invalidates(tool))).unwrap(),
        &item,
        &analysis,
        &cx,
    );
    assert!(cx.check().is_ok());
    assert_eq!(plan.model.kind, crate::model::FunctionKind::Mutation);
    assert_eq!(plan.model.invalidates, ["tool"]);
}

#[test]
fn explicit_tables_not_seen_in_the_body_are_whole_table() {
    let item: syn::ItemFn = syn::parse_quote! {
        async fn f(db: &ReactiveDb<Any>, input: I) -> reactive::Result<i64> {
            Ok(sqlx::query_scalar("SELECT count(*) FROM agent WHERE id = $1").bind(input.id).fetch_one(db).await?)
        }
    };
    let analysis = crate::handler::analyze_fn(&item, crate::sql::Dialect::Postgres);
    let cx = super::ctxt::Ctxt::new();
    let plan = super::valid::plan(
        &FunctionArgs::parse(quote!(dependencies(agent, tool))).unwrap(),
        &item,
        &analysis,
        &cx,
    );
    assert!(cx.check().is_ok());
    let deps: Vec<(String, usize)> = plan
        .model
        .dependencies
        .iter()
        .map(|d| (d.table.clone(), d.keys.len()))
        .collect();
    assert_eq!(deps, [("agent".to_owned(), 1), ("tool".to_owned(), 0)]);
}

#[test]
fn misplaced_database_handle_is_one_error() {
    let errs = errors(&expand(
        quote!(),
        quote!(
            async fn f(id: i64, db: &ReactiveDb<Any>) -> reactive::Result<()> {
                Ok(())
            }
        ),
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("the database handle must be the first parameter"),
        "{errs:?}"
    );
}

#[test]
fn cfg_applies_to_generated_items() {
    let out = expand(
        quote!(),
        quote! {
            #[cfg(feature = "admin")]
            async fn f(db: &ReactiveDb<Any>) -> reactive::Result<i64> {
                Ok(sqlx::query_scalar("SELECT count(*) FROM agent").fetch_one(db).await?)
            }
        },
    );
    // The fn, the companion struct, and the one block with the probes, the
    // companion's impl, the type checks and the registration.
    assert_eq!(
        out.matches("# [cfg (feature = \"admin\")]").count(),
        3,
        "{out}"
    );
}

#[test]
fn query_macros_are_read_like_query_calls() {
    // The i-th argument after the SQL is parameter i: both keys are bound to the
    // input (through `.to_string()` too); the key values come from the fields.
    let out = expand(
        quote!(name = "agents.byName"),
        quote! {
            async fn f(db: &ReactiveDb<Any>, input: I) -> reactive::Result<Vec<Agent>> {
                Ok(sqlx::query_as!(Agent, r"SELECT * FROM agent WHERE organization_id = $1 AND name = $2",
                    &input.org.id, input.name.to_string()).fetch_all(db).await?)
            }
        },
    );
    assert!(errors(&out).is_empty(), "{out}");
    assert!(
        out.contains(r#"\"bindings\":[{\"path\":[\"org\",\"id\"],\"source\":\"input.org.id\"},{\"path\":[\"name\"],\"source\":\"input.name\"}]"#),
        "{out}"
    );
    assert!(
        out.contains("binding_value ! (& input . org . id)")
            && out.contains("binding_value ! (& input . name)"),
        "{out}"
    );
}

#[test]
fn query_macros_and_query_files_report_missing_dependencies_at_their_literals() {
    // `cargo test` runs with CARGO_MANIFEST_DIR set to this crate, as the compiler
    // does for the macro: the file is read from there.
    let out = expand(
        quote!(dependencies(tool)),
        quote! {
            async fn f(db: &ReactiveDb<Any>, input: I) -> reactive::Result<(i64, Agent)> {
                let a = query_scalar!("SELECT count(*) FROM message WHERE from_agent_id = $1", input.id)
                    .fetch_one(db).await?;
                let b = sqlx::query_file_as!(Agent, "tests/fixtures/queries/agent_by_id.sql", input.org, input.id)
                    .fetch_one(db).await?;
                Ok((a, b))
            }
        },
    );
    assert_eq!(
        errors(&out),
        [
            "handler reads table `message` here, but `dependencies(...)` does not list it",
            "handler reads table `agent` here, but `dependencies(...)` does not list it",
        ]
    );
}

/// A call of a user function (side effect or hidden reads) is never a silent cache:
/// undeclared, a compile error; `mutation`, an unknown write; `dependencies(...)`, a
/// cached query reading the listed tables.
#[test]
fn user_function_calls_must_be_declared() {
    let item: syn::ItemFn = syn::parse_quote! {
        async fn archive(db: &ReactiveDb<Any>, input: I) -> reactive::Result<bool> {
            Ok(sqlx::query_scalar("SELECT archive_agent($1)").bind(input.id).fetch_one(db).await?)
        }
    };
    let analysis = crate::handler::analyze_fn(&item, crate::sql::Dialect::Postgres);
    let plan_with = |attr: TokenStream| {
        let cx = super::ctxt::Ctxt::new();
        let plan = super::valid::plan(&FunctionArgs::parse(attr).unwrap(), &item, &analysis, &cx);
        (plan, cx.into_errors())
    };

    let errs = errors(&expand(quote!(), quote!(#item)));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("calls `archive_agent`"), "{errs:?}");
    assert!(errs[0].contains("dependencies(table, ...)"), "{errs:?}");
    let errs = errors(&expand(quote!(query), quote!(#item)));
    assert!(
        errs.iter().any(|e| e.contains("calls `archive_agent`")),
        "{errs:?}"
    );

    let (plan, errs) = plan_with(quote!(mutation));
    assert!(errs.is_empty());
    assert_eq!(plan.model.kind, crate::model::FunctionKind::Mutation);
    assert!(plan.model.statements[0].analysis.unknown.is_some());

    let (plan, errs) = plan_with(quote!(dependencies(agent)));
    assert!(errs.is_empty());
    assert_eq!(plan.model.kind, crate::model::FunctionKind::Query);
    let analysis = &plan.model.statements[0].analysis;
    assert_eq!(analysis.unknown, None);
    assert!(!analysis.may_write());
    assert_eq!(analysis.reads.len(), 1);
    assert_eq!(analysis.reads[0].table, "agent");
    assert_eq!(analysis.reads[0].filter, crate::sql::RowFilter::All);
    assert_eq!(plan.model.dependencies[0].table, "agent");

    // A table function in FROM: the same.
    let errs = errors(&expand(
        quote!(),
        quote! {
            async fn stats(db: &ReactiveDb<Any>, input: I) -> reactive::Result<Vec<Row>> {
                Ok(sqlx::query_as("SELECT * FROM agent_stats($1)").bind(input.id).fetch_all(db).await?)
            }
        },
    ));
    assert!(
        errs.iter().any(|e| e.contains("calls `agent_stats`")),
        "{errs:?}"
    );
}

#[test]
fn an_untraced_key_bind_of_a_query_warns_at_the_bind() {
    let item = quote! {
        async fn f(db: &ReactiveDb<sqlx::Postgres>, input: I) -> reactive::Result<Vec<Row>> {
            Ok(sqlx::query_as("SELECT id FROM agent WHERE organization_id = $1").bind(input.org.trim()).fetch_all(db).await?)
        }
    };
    let out = expand(quote!(), item);
    assert!(errors(&out).is_empty(), "{out}");
    assert!(out.contains("deprecated"), "{out}");
    assert!(
        out.contains("`agent.organization_id = $1` is not a key: the bind `input.org.trim()` is not an input field"),
        "{out}"
    );
    let traced = quote! {
        async fn f(db: &ReactiveDb<sqlx::Postgres>, input: I) -> reactive::Result<Vec<Row>> {
            Ok(sqlx::query_as("SELECT id FROM agent WHERE organization_id = $1").bind(&input.org).fetch_all(db).await?)
        }
    };
    assert!(!expand(quote!(), traced).contains("deprecated"));
    let allowed = quote! {
        #[allow(deprecated)]
        async fn f(db: &ReactiveDb<sqlx::Postgres>, input: I) -> reactive::Result<Vec<Row>> {
            Ok(sqlx::query_as("SELECT id FROM agent WHERE organization_id = $1").bind(input.org.trim()).fetch_all(db).await?)
        }
    };
    assert!(!expand(quote!(), allowed).contains("reactive_wide_read"));
}

#[test]
fn push_marks_a_query_and_is_refused_on_a_mutation() {
    let query = quote! {
        async fn f(db: &ReactiveDb<sqlx::Postgres>, input: I) -> reactive::Result<Vec<Row>> {
            Ok(sqlx::query_as("SELECT id FROM agent WHERE organization_id = $1").bind(&input.org).fetch_all(db).await?)
        }
    };
    let out = expand(quote!(push), query.clone());
    assert!(errors(&out).is_empty(), "{out}");
    assert!(out.contains(r#"\"push\":true"#), "{out}");
    let out = expand(quote!(), query);
    assert!(out.contains(r#"\"push\":false"#), "{out}");
    let write = quote! {
        async fn g(db: &ReactiveDb<sqlx::Postgres>, input: I) -> reactive::Result<()> {
            sqlx::query("DELETE FROM agent WHERE id = $1").bind(&input.id).execute(db).await?;
            Ok(())
        }
    };
    let errs = errors(&expand(quote!(push), write));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("`push` applies to queries"), "{errs:?}");
}
