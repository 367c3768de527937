//! SQL analysis: exact results for the three dialects.
//!
//! Sections: reads and key predicates, soundness rules, scopes (subqueries, CTEs,
//! set operations), placeholders, writes, statement kinds and unknowns.

use reactive_codegen::sql::{
    ColumnValue, Dialect, KeyPredicate, Literal, Operation, Param, RowFilter, StatementAnalysis,
    TableRead, TableWrite, Unknown, ValueRef, analyze,
};

const PG: Dialect = Dialect::Postgres;
const LITE: Dialect = Dialect::Sqlite;
const MY: Dialect = Dialect::MySql;
const ALL_DIALECTS: [Dialect; 3] = [PG, LITE, MY];

// ---- helpers -------------------------------------------------------------------

fn p(index: usize) -> ValueRef {
    ValueRef::Param(Param { index, name: None })
}

fn named(index: usize, name: &str) -> ValueRef {
    ValueRef::Param(Param {
        index,
        name: Some(name.into()),
    })
}

fn num(n: &str) -> ValueRef {
    ValueRef::Literal(Literal::Number(n.into()))
}

fn text(s: &str) -> ValueRef {
    ValueRef::Literal(Literal::String(s.into()))
}

fn key(column: &str, values: &[ValueRef]) -> KeyPredicate {
    KeyPredicate {
        column: column.into(),
        values: values.to_vec(),
    }
}

fn keyed(table: &str, keys: &[KeyPredicate]) -> TableRead {
    TableRead {
        table: table.into(),
        filter: RowFilter::Keys(keys.to_vec()),
    }
}

fn all(table: &str) -> TableRead {
    TableRead {
        table: table.into(),
        filter: RowFilter::All,
    }
}

fn cv(column: &str, value: Option<ValueRef>) -> ColumnValue {
    ColumnValue {
        column: column.into(),
        value,
    }
}

/// Analyse, expecting a known effect.
fn ok(sql: &str, dialect: Dialect) -> StatementAnalysis {
    let a = analyze(sql, dialect);
    assert_eq!(a.unknown, None, "{sql}: {a:?}");
    a
}

/// The reads of a `SELECT` with a known effect and no writes.
fn reads(sql: &str, dialect: Dialect) -> Vec<TableRead> {
    let a = ok(sql, dialect);
    assert_eq!(a.operation, Operation::Select, "{sql}");
    assert!(a.writes.is_empty(), "{sql}: {a:?}");
    a.reads
}

// ---- reads and key predicates --------------------------------------------------

#[test]
fn select_with_param_key_postgres() {
    assert_eq!(
        reads("SELECT * FROM agent WHERE organization_id = $1", PG),
        vec![keyed("agent", &[key("organization_id", &[p(1)])])]
    );
}

#[test]
fn select_without_where_reads_all_rows() {
    for d in ALL_DIALECTS {
        assert_eq!(
            reads("SELECT id, name FROM agent ORDER BY name LIMIT 10", d),
            vec![all("agent")]
        );
    }
}

#[test]
fn literal_on_the_left_side() {
    assert_eq!(
        reads("SELECT * FROM agent WHERE 5 = id", LITE),
        vec![keyed("agent", &[key("id", &[num("5")])])]
    );
}

#[test]
fn several_conjuncts_are_all_kept() {
    assert_eq!(
        reads(
            "SELECT * FROM agent WHERE id = ? AND organization_id = ? AND name LIKE 'a%'",
            MY
        ),
        vec![keyed(
            "agent",
            &[key("id", &[p(1)]), key("organization_id", &[p(2)])]
        )]
    );
}

#[test]
fn in_list_of_params_and_literals() {
    assert_eq!(
        reads("SELECT * FROM agent WHERE id IN ($1, $2, 3)", PG),
        vec![keyed("agent", &[key("id", &[p(1), p(2), num("3")])])]
    );
}

#[test]
fn not_in_narrows_nothing() {
    assert_eq!(
        reads("SELECT * FROM agent WHERE id NOT IN (1, 2)", PG),
        vec![all("agent")]
    );
}

#[test]
fn in_subquery_is_not_a_key_for_the_outer_table() {
    assert_eq!(
        reads(
            "SELECT * FROM agent WHERE id IN (SELECT agent_id FROM memory WHERE kind = 'fact')",
            PG
        ),
        vec![
            all("agent"),
            keyed("memory", &[key("kind", &[text("fact")])])
        ]
    );
}

#[test]
fn or_on_the_same_column_becomes_in() {
    assert_eq!(
        reads(
            "SELECT * FROM agent WHERE id = 1 OR (id = $1 OR id IN (2, 1))",
            PG
        ),
        vec![keyed("agent", &[key("id", &[num("1"), p(1), num("2")])])]
    );
}

#[test]
fn or_across_columns_narrows_nothing() {
    assert_eq!(
        reads(
            "SELECT * FROM agent WHERE id = 1 OR organization_id = 2",
            PG
        ),
        vec![all("agent")]
    );
    // ...but the other conjuncts still narrow.
    assert_eq!(
        reads(
            "SELECT * FROM agent WHERE organization_id = ? AND (id = 1 OR name = 'x')",
            MY
        ),
        vec![keyed("agent", &[key("organization_id", &[p(1)])])]
    );
}

#[test]
fn or_across_qualifiers_narrows_nothing() {
    assert_eq!(
        reads(
            "SELECT * FROM agent a JOIN agent b ON b.id = a.parent_id WHERE a.id = 1 OR b.id = 1",
            PG
        ),
        vec![all("agent")]
    );
}

#[test]
fn ranges_like_functions_not_and_casts_narrow_nothing() {
    for sql in [
        "SELECT * FROM agent WHERE id > 1",
        "SELECT * FROM agent WHERE id BETWEEN 1 AND 5",
        "SELECT * FROM agent WHERE name LIKE 'a%'",
        "SELECT * FROM agent WHERE lower(name) = 'x'",
        "SELECT * FROM agent WHERE NOT (id = 1)",
        "SELECT * FROM agent WHERE id <> 1",
        "SELECT * FROM agent WHERE id = $1::int",
        "SELECT * FROM agent WHERE id IS NULL",
        "SELECT * FROM agent WHERE id = 1 + 1",
        "SELECT * FROM agent WHERE active",
    ] {
        assert_eq!(reads(sql, PG), vec![all("agent")], "{sql}");
    }
}

// ---- casts and = ANY -------------------------------------------------------------

#[test]
fn value_side_casts_that_keep_the_value_are_seen_through_postgres() {
    for sql in [
        "SELECT * FROM agent WHERE id = $1::uuid",
        "SELECT * FROM agent WHERE id = CAST($1 AS uuid)",
        "SELECT * FROM agent WHERE id = $1::text::uuid",
        "SELECT * FROM agent WHERE id = ($1)::varchar",
        "SELECT * FROM agent WHERE id = CAST(($1::text) AS character varying)",
        "SELECT * FROM agent WHERE $1::uuid = id",
        "SELECT * FROM agent WHERE (id = $1::uuid)",
    ] {
        assert_eq!(
            reads(sql, PG),
            vec![keyed("agent", &[key("id", &[p(1)])])],
            "{sql}"
        );
    }
}

#[test]
fn value_side_casts_to_text_are_seen_through_mysql_and_sqlite() {
    for (sql, d) in [
        ("SELECT * FROM agent WHERE id = CAST(? AS CHAR)", MY),
        ("SELECT * FROM agent WHERE id = CONVERT(?, CHAR)", MY),
        ("SELECT * FROM agent WHERE CAST(? AS CHAR) = id", MY),
        ("SELECT * FROM agent WHERE id = CAST(? AS TEXT)", LITE),
        ("SELECT * FROM agent WHERE id = CAST(?1 AS VARCHAR)", LITE),
        ("SELECT * FROM agent WHERE id = CAST(? AS CHAR)", LITE),
    ] {
        assert_eq!(
            reads(sql, d),
            vec![keyed("agent", &[key("id", &[p(1)])])],
            "{sql}"
        );
    }
}

#[test]
fn cast_literals_keep_their_value_and_uuid_literals_are_canonical() {
    assert_eq!(
        reads(
            "SELECT * FROM agent WHERE name = 'bob'::text AND org = CAST(7 AS text) \
             AND id = '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}'::uuid AND parent_id = NULL::uuid",
            PG
        ),
        vec![keyed(
            "agent",
            &[
                key("name", &[text("bob")]),
                key("org", &[num("7")]),
                key("id", &[text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")]),
                key("parent_id", &[ValueRef::Literal(Literal::Null)]),
            ]
        )]
    );
    // Not a uuid: PostgreSQL rejects it, the analyser drops it.
    assert_eq!(
        reads("SELECT * FROM agent WHERE id = 'nope'::uuid", PG),
        vec![all("agent")]
    );
}

#[test]
fn column_side_text_casts_keep_the_column_as_key() {
    for (sql, d) in [
        ("SELECT * FROM agent WHERE id::text = $1", PG),
        ("SELECT * FROM agent WHERE CAST(id AS text) = $1", PG),
        ("SELECT * FROM agent WHERE (id)::varchar::text = $1", PG),
        ("SELECT * FROM agent WHERE $1 = id::text", PG),
        ("SELECT * FROM agent a WHERE CAST(a.id AS CHAR) = ?", MY),
        ("SELECT * FROM agent WHERE CAST(id AS TEXT) = ?", LITE),
    ] {
        assert_eq!(
            reads(sql, d),
            vec![keyed("agent", &[key("id", &[p(1)])])],
            "{sql}"
        );
    }
    assert_eq!(
        reads("SELECT * FROM agent WHERE CAST(id AS TEXT) = '1'", LITE),
        vec![keyed("agent", &[key("id", &[text("1")])])]
    );
}

#[test]
fn casts_inside_in_lists_and_or_chains() {
    assert_eq!(
        reads(
            "SELECT * FROM agent WHERE id::text IN ($1::text, '2') OR id::text = $2",
            PG
        ),
        vec![keyed("agent", &[key("id", &[p(1), text("2"), p(2)])])]
    );
    assert_eq!(
        reads("SELECT * FROM agent WHERE id IN (CAST(? AS CHAR), ?)", MY),
        vec![keyed("agent", &[key("id", &[p(1), p(2)])])]
    );
}

#[test]
fn lossy_casts_narrow_nothing() {
    // Against: the same statements with a cast that keeps the value.
    assert_eq!(
        reads("SELECT * FROM agent WHERE id = $1::varchar", PG),
        vec![keyed("agent", &[key("id", &[p(1)])])]
    );
    for (sql, d) in [
        // Length or precision: truncation.
        ("SELECT * FROM agent WHERE id = $1::varchar(3)", PG),
        ("SELECT * FROM agent WHERE id::varchar(3) = $1", PG),
        ("SELECT * FROM agent WHERE id = CAST(? AS CHAR(3))", MY),
        ("SELECT * FROM agent WHERE CAST(id AS CHAR(2)) = ?", MY),
        // PostgreSQL's `char` is `char(1)`; bpchar and citext compare differently.
        ("SELECT * FROM agent WHERE id = $1::char", PG),
        ("SELECT * FROM agent WHERE id::char = $1", PG),
        ("SELECT * FROM agent WHERE id = $1::bpchar", PG),
        ("SELECT * FROM agent WHERE id::citext = $1", PG),
        // Numeric and date casts round, truncate or reformat.
        ("SELECT * FROM agent WHERE id = $1::int", PG),
        ("SELECT * FROM agent WHERE id::int8 = $1", PG),
        ("SELECT * FROM agent WHERE id = $1::numeric(5, 2)", PG),
        ("SELECT * FROM agent WHERE day = $1::date", PG),
        ("SELECT * FROM agent WHERE id = CAST(? AS SIGNED)", MY),
        ("SELECT * FROM agent WHERE id = CAST(? AS INTEGER)", LITE),
        ("SELECT * FROM agent WHERE CAST(id AS INTEGER) = ?", LITE),
        // A uuid cast on the column side: many spellings, one uuid.
        ("SELECT * FROM agent WHERE id::uuid = $1", PG),
        ("SELECT * FROM agent WHERE id::text::uuid = $1::uuid", PG),
        // Charset conversion, collation.
        ("SELECT * FROM agent WHERE id = CONVERT(? USING latin1)", MY),
        ("SELECT * FROM agent WHERE id = $1::text COLLATE \"C\"", PG),
        ("SELECT * FROM agent WHERE id COLLATE \"C\" = $1", PG),
    ] {
        assert_eq!(reads(sql, d), vec![all("agent")], "{sql}");
    }
}

#[test]
fn functions_stay_opaque_inside_and_around_casts() {
    // Against: the cast alone keeps the key.
    assert_eq!(
        reads("SELECT * FROM agent WHERE name::text = $1", PG),
        vec![keyed("agent", &[key("name", &[p(1)])])]
    );
    for (sql, d) in [
        ("SELECT * FROM agent WHERE lower(name) = $1", PG),
        ("SELECT * FROM agent WHERE lower(name)::text = $1", PG),
        (
            "SELECT * FROM agent WHERE CAST(lower(name) AS text) = $1",
            PG,
        ),
        ("SELECT * FROM agent WHERE lower(name::text) = $1", PG),
        ("SELECT * FROM agent WHERE name = lower($1)::text", PG),
        ("SELECT * FROM agent WHERE id = uuid($1)", PG),
        ("SELECT * FROM agent WHERE (name || 'x')::text = $1", PG),
        ("SELECT * FROM agent WHERE name = ($1 || 'x')::text", PG),
        (
            "SELECT * FROM agent WHERE CAST(lower(name) AS CHAR) = ?",
            MY,
        ),
        (
            "SELECT * FROM agent WHERE CAST(upper(name) AS TEXT) = ?",
            LITE,
        ),
        (
            "SELECT * FROM agent WHERE name = CAST(lower(?) AS TEXT)",
            LITE,
        ),
        ("SELECT * FROM agent WHERE id::text = other_id::text", PG),
    ] {
        assert_eq!(reads(sql, d), vec![all("agent")], "{sql}");
    }
}

#[test]
fn any_of_an_array_literal_is_like_in() {
    for sql in [
        "SELECT * FROM agent WHERE id = ANY(ARRAY[$1, $2, 3])",
        "SELECT * FROM agent WHERE id = SOME(ARRAY[$1, $2, 3])",
        "SELECT * FROM agent WHERE id = ANY((ARRAY[$1::uuid, $2, 3, $1]))",
        "SELECT * FROM agent WHERE id::text = ANY(ARRAY[$1, $2, 3])",
    ] {
        assert_eq!(
            reads(sql, PG),
            vec![keyed("agent", &[key("id", &[p(1), p(2), num("3")])])],
            "{sql}"
        );
    }
}

#[test]
fn any_of_an_array_parameter_or_other_arrays_narrows_nothing() {
    // Against: an array of values is a key.
    assert_eq!(
        reads("SELECT * FROM agent WHERE id = ANY(ARRAY[$1])", PG),
        vec![keyed("agent", &[key("id", &[p(1)])])]
    );
    // `= ANY($1)`: many values from one array-valued parameter, which the model
    // cannot name (a parameter stands for one value); left unknown, i.e. all rows.
    for sql in [
        "SELECT * FROM agent WHERE id = ANY($1)",
        "SELECT * FROM agent WHERE id = ANY($1::uuid[])",
        "SELECT * FROM agent WHERE id = ANY('{1,2}')",
        "SELECT * FROM agent WHERE id = ANY(ARRAY[]::int[])",
        "SELECT * FROM agent WHERE id = ANY(ARRAY[$1, lower($2)])",
        "SELECT * FROM agent WHERE id = ANY(SELECT agent_id FROM message)",
        "SELECT * FROM agent WHERE id <> ANY(ARRAY[$1])",
        "SELECT * FROM agent WHERE id = ALL(ARRAY[$1])",
        "SELECT * FROM agent WHERE lower(name) = ANY(ARRAY[$1])",
    ] {
        let reads = ok(sql, PG).reads;
        assert!(
            reads.iter().all(|r| r.filter == RowFilter::All),
            "{sql}: {reads:?}"
        );
    }
}

#[test]
fn casts_in_write_filters_and_values() {
    let a = ok(
        "UPDATE agent SET name = $1::text, owner = $2::uuid WHERE id = $3::uuid",
        PG,
    );
    assert_eq!(
        a.writes,
        vec![TableWrite {
            table: "agent".into(),
            operation: Operation::Update,
            filter: RowFilter::Keys(vec![key("id", &[p(3)])]),
            set: vec![cv("name", Some(p(1))), cv("owner", Some(p(2)))],
            inserted: None,
        }]
    );
    let a = ok(
        "INSERT INTO agent (id, name, n) VALUES (CAST(? AS CHAR), ?, CAST(? AS SIGNED))",
        MY,
    );
    assert_eq!(
        a.writes[0].inserted,
        Some(vec![vec![
            cv("id", Some(p(1))),
            cv("name", Some(p(2))),
            cv("n", None),
        ]])
    );
    let a = ok("DELETE FROM agent WHERE CAST(id AS TEXT) = ?", LITE);
    assert_eq!(
        a.writes[0].filter,
        RowFilter::Keys(vec![key("id", &[p(1)])])
    );
}

#[test]
fn column_equal_to_column_is_not_a_key() {
    assert_eq!(
        reads("SELECT * FROM agent a WHERE a.id = a.parent_id", PG),
        vec![all("agent")]
    );
}

#[test]
fn literal_kinds() {
    assert_eq!(
        reads(
            "SELECT * FROM agent WHERE name = 'bob' AND active = TRUE AND score = -5 AND deleted_at = NULL",
            PG
        ),
        vec![keyed(
            "agent",
            &[
                key("name", &[text("bob")]),
                key("active", &[ValueRef::Literal(Literal::Bool(true))]),
                key("score", &[num("-5")]),
                key("deleted_at", &[ValueRef::Literal(Literal::Null)]),
            ]
        )]
    );
}

#[test]
fn mysql_double_quoted_string_is_a_literal() {
    assert_eq!(
        reads("SELECT * FROM agent WHERE name = \"bob\"", MY),
        vec![keyed("agent", &[key("name", &[text("bob")])])]
    );
}

#[test]
fn parentheses_are_seen_through() {
    assert_eq!(
        reads("SELECT * FROM agent WHERE ((id = (1))) AND (org = 2)", LITE),
        vec![keyed(
            "agent",
            &[key("id", &[num("1")]), key("org", &[num("2")])]
        )]
    );
}

#[test]
fn duplicate_predicates_are_deduplicated() {
    assert_eq!(
        reads("SELECT * FROM agent WHERE id = 1 AND id = 1", LITE),
        vec![keyed("agent", &[key("id", &[num("1")])])]
    );
}

#[test]
fn empty_in_list_narrows_nothing() {
    assert_eq!(
        reads("SELECT * FROM agent WHERE id IN ()", LITE),
        vec![all("agent")]
    );
}

// ---- names ---------------------------------------------------------------------

#[test]
fn schema_qualified_and_quoted_names_are_normalized() {
    assert_eq!(
        reads(
            "SELECT * FROM public.\"Agent\" AS a WHERE a.\"Id\" = $1",
            PG
        ),
        vec![keyed("agent", &[key("id", &[p(1)])])]
    );
    assert_eq!(
        reads("SELECT * FROM `app`.`Agent` WHERE `Id` = ?", MY),
        vec![keyed("agent", &[key("id", &[p(1)])])]
    );
    assert_eq!(
        reads("SELECT * FROM main.agent WHERE \"id\" = ?", LITE),
        vec![keyed("agent", &[key("id", &[p(1)])])]
    );
}

#[test]
fn names_are_case_insensitive() {
    assert_eq!(
        reads("SELECT * FROM AGENT WHERE ID = 1", PG),
        vec![keyed("agent", &[key("id", &[num("1")])])]
    );
    assert_eq!(
        reads("select * from Agent A where a.Id = 1", LITE),
        vec![keyed("agent", &[key("id", &[num("1")])])]
    );
}

#[test]
fn column_qualified_by_table_name_or_schema() {
    assert_eq!(
        reads(
            "SELECT agent.id FROM agent WHERE agent.organization_id = 1",
            PG
        ),
        vec![keyed("agent", &[key("organization_id", &[num("1")])])]
    );
    assert_eq!(
        reads(
            "SELECT * FROM public.agent WHERE public.agent.organization_id = 1",
            PG
        ),
        vec![keyed("agent", &[key("organization_id", &[num("1")])])]
    );
}

#[test]
fn aliases_resolve_across_joins() {
    assert_eq!(
        reads(
            "SELECT a.*, m.body FROM agent a JOIN message AS m ON m.from_agent_id = a.id \
             WHERE a.organization_id = $1 AND m.kind = 'chat'",
            PG
        ),
        vec![
            keyed("agent", &[key("organization_id", &[p(1)])]),
            keyed("message", &[key("kind", &[text("chat")])]),
        ]
    );
}

#[test]
fn a_column_alias_list_is_not_the_tables_columns() {
    // `a(organization_id)` renames the first column (`id`): neither the qualified nor
    // the unqualified `organization_id` is the table's column of that name.
    for sql in [
        "SELECT * FROM agent AS a(organization_id) WHERE a.organization_id = $1",
        "SELECT * FROM agent a(organization_id, name) WHERE organization_id = $1",
        "SELECT * FROM agent a(x) JOIN tool t ON t.agent_id = a.x WHERE a.organization_id = $1",
    ] {
        assert!(
            reads(sql, PG).contains(&all("agent")),
            "{sql}: {:?}",
            reads(sql, PG)
        );
    }
}

#[test]
fn unknown_qualifier_narrows_nothing() {
    assert_eq!(
        reads("SELECT * FROM agent a WHERE x.id = 1", PG),
        vec![all("agent")]
    );
}

#[test]
fn mysql_aliases_that_differ_in_case_are_not_certain() {
    // MySQL may tell `A` and `a` apart: don't attribute.
    assert_eq!(
        reads(
            "SELECT * FROM agent A JOIN tool t ON t.x = A.y WHERE a.id = 1",
            MY
        ),
        vec![all("agent"), all("tool")]
    );
    // PostgreSQL folds unquoted names: `A` is `a`.
    assert_eq!(
        reads(
            "SELECT * FROM agent A JOIN tool t ON t.x = A.y WHERE a.id = 1",
            PG
        ),
        vec![keyed("agent", &[key("id", &[num("1")])]), all("tool")]
    );
}

// ---- soundness: joins and unqualified columns ----------------------------------

#[test]
fn inner_join_on_narrows_both_sides() {
    assert_eq!(
        reads(
            "SELECT * FROM agent a INNER JOIN message m ON m.agent_id = a.id AND a.org = 1 AND m.kind = 2",
            PG
        ),
        vec![
            keyed("agent", &[key("org", &[num("1")])]),
            keyed("message", &[key("kind", &[num("2")])])
        ]
    );
}

#[test]
fn left_join_on_narrows_only_the_null_supplying_side() {
    for d in ALL_DIALECTS {
        assert_eq!(
            reads(
                "SELECT * FROM agent a LEFT JOIN message m ON m.x = 1 AND a.org = 2",
                d
            ),
            vec![all("agent"), keyed("message", &[key("x", &[num("1")])])],
            "{d:?}"
        );
    }
}

#[test]
fn right_join_on_narrows_only_the_left_side() {
    assert_eq!(
        reads(
            "SELECT * FROM agent a RIGHT OUTER JOIN message m ON a.org = 1 AND m.x = 2",
            MY
        ),
        vec![keyed("agent", &[key("org", &[num("1")])]), all("message")]
    );
}

#[test]
fn full_join_on_narrows_nothing() {
    assert_eq!(
        reads(
            "SELECT * FROM agent a FULL OUTER JOIN message m ON a.org = 1 AND m.x = 2",
            PG
        ),
        vec![all("agent"), all("message")]
    );
}

#[test]
fn where_narrows_any_table_even_behind_an_outer_join() {
    assert_eq!(
        reads(
            "SELECT * FROM agent a LEFT JOIN message m ON m.agent_id = a.id WHERE m.kind = $1 AND a.org = $2",
            PG
        ),
        vec![
            keyed("agent", &[key("org", &[p(2)])]),
            keyed("message", &[key("kind", &[p(1)])])
        ]
    );
}

#[test]
fn join_chain_with_mixed_kinds() {
    // (a LEFT JOIN b ON ...) JOIN c ON ...: the inner join's ON may narrow a, b and c.
    assert_eq!(
        reads(
            "SELECT * FROM a LEFT JOIN b ON b.x = 1 AND a.w = 9 JOIN c ON c.y = 2 AND a.z = 3",
            PG
        ),
        vec![
            keyed("a", &[key("z", &[num("3")])]),
            keyed("b", &[key("x", &[num("1")])]),
            keyed("c", &[key("y", &[num("2")])])
        ]
    );
}

#[test]
fn nested_join_on_the_null_supplying_side() {
    assert_eq!(
        reads(
            "SELECT * FROM a LEFT JOIN (b JOIN c ON c.y = 1) ON b.x = 2 AND a.z = 3",
            PG
        ),
        vec![
            all("a"),
            keyed("b", &[key("x", &[num("2")])]),
            keyed("c", &[key("y", &[num("1")])])
        ]
    );
}

#[test]
fn aliased_nested_join_hides_its_tables() {
    // `b` is hidden by the alias `j`: `b.x` cannot be attributed to the inner `b`.
    assert_eq!(
        reads(
            "SELECT * FROM (b JOIN c ON c.id = b.id) AS j WHERE b.x = 1",
            PG
        ),
        vec![all("b"), all("c")]
    );
}

#[test]
fn unqualified_column_with_several_tables_narrows_nothing() {
    assert_eq!(
        reads(
            "SELECT * FROM agent a JOIN message m ON m.agent_id = a.id WHERE organization_id = 1",
            PG
        ),
        vec![all("agent"), all("message")]
    );
    assert_eq!(
        reads("SELECT * FROM agent, tool WHERE name = 'x'", LITE),
        vec![all("agent"), all("tool")]
    );
}

#[test]
fn unqualified_column_with_one_table_is_attributed() {
    assert_eq!(
        reads("SELECT * FROM agent a WHERE organization_id = ?", LITE),
        vec![keyed("agent", &[key("organization_id", &[p(1)])])]
    );
}

#[test]
fn unqualified_column_with_a_derived_table_narrows_nothing() {
    assert_eq!(
        reads("SELECT * FROM (SELECT * FROM agent) d WHERE id = 1", PG),
        vec![all("agent")]
    );
}

#[test]
fn self_join_with_an_all_rows_side_collapses_to_all() {
    assert_eq!(
        reads(
            "SELECT * FROM agent a JOIN agent b ON b.parent_id = a.id WHERE a.id = 1",
            PG
        ),
        vec![all("agent")]
    );
}

#[test]
fn self_join_with_both_sides_narrowed_lists_both() {
    assert_eq!(
        reads(
            "SELECT * FROM agent a, agent b WHERE a.id = 1 AND b.id = 2",
            PG
        ),
        vec![
            keyed("agent", &[key("id", &[num("1")])]),
            keyed("agent", &[key("id", &[num("2")])])
        ]
    );
}

// ---- subqueries, CTEs, set operations --------------------------------------------

#[test]
fn derived_table_is_analysed_in_its_own_scope() {
    assert_eq!(
        reads(
            "SELECT * FROM (SELECT * FROM agent WHERE org = 1) AS d WHERE d.id = 2",
            PG
        ),
        vec![keyed("agent", &[key("org", &[num("1")])])]
    );
}

#[test]
fn subquery_in_select_list() {
    assert_eq!(
        reads(
            "SELECT a.id, (SELECT count(*) FROM message m WHERE m.agent_id = a.id) FROM agent a WHERE a.id = $1",
            PG
        ),
        vec![keyed("agent", &[key("id", &[p(1)])]), all("message")]
    );
}

#[test]
fn exists_and_not_exists_subqueries() {
    assert_eq!(
        reads(
            "SELECT * FROM agent a WHERE EXISTS (SELECT 1 FROM message m WHERE m.agent_id = a.id AND m.kind = 'x') \
             AND NOT EXISTS (SELECT 1 FROM memory WHERE memory.agent_id = a.id)",
            PG
        ),
        vec![
            all("agent"),
            all("memory"),
            keyed("message", &[key("kind", &[text("x")])])
        ]
    );
}

#[test]
fn scalar_subquery_as_value_is_not_a_key() {
    assert_eq!(
        reads(
            "SELECT * FROM tool WHERE organization_id = (SELECT organization_id FROM agent WHERE id = ?)",
            MY
        ),
        vec![keyed("agent", &[key("id", &[p(1)])]), all("tool")]
    );
}

#[test]
fn deeply_nested_subqueries() {
    assert_eq!(
        reads(
            "SELECT * FROM a WHERE a.id IN (SELECT b.a_id FROM b WHERE b.c_id IN (SELECT c.id FROM c WHERE c.k = 7))",
            LITE
        ),
        vec![all("a"), all("b"), keyed("c", &[key("k", &[num("7")])])]
    );
}

#[test]
fn cte_name_is_not_a_table_and_its_body_is_read() {
    assert_eq!(
        reads(
            "WITH mine AS (SELECT * FROM agent WHERE organization_id = $1) \
             SELECT * FROM mine JOIN tool t ON t.agent_id = mine.id WHERE t.kind = 'a' OR t.kind = 'b'",
            PG
        ),
        vec![
            keyed("agent", &[key("organization_id", &[p(1)])]),
            keyed("tool", &[key("kind", &[text("a"), text("b")])])
        ]
    );
}

#[test]
fn cte_shadowing_a_table_reads_the_real_table_in_its_body() {
    assert_eq!(
        reads(
            "WITH agent AS (SELECT * FROM agent WHERE org = 1) SELECT * FROM agent",
            PG
        ),
        vec![keyed("agent", &[key("org", &[num("1")])])]
    );
}

#[test]
fn later_cte_sees_earlier_ones() {
    assert_eq!(
        reads(
            "WITH a AS (SELECT * FROM t1), b AS (SELECT * FROM a) SELECT * FROM b",
            LITE
        ),
        vec![all("t1")]
    );
}

#[test]
fn recursive_cte() {
    assert_eq!(
        reads(
            "WITH RECURSIVE tree AS (SELECT * FROM node WHERE id = $1 \
             UNION ALL SELECT n.* FROM node n JOIN tree ON n.parent_id = tree.id) SELECT * FROM tree",
            PG
        ),
        vec![all("node")]
    );
}

#[test]
fn cte_inside_a_subquery() {
    assert_eq!(
        reads(
            "SELECT * FROM t WHERE t.id IN (WITH x AS (SELECT id FROM u WHERE u.k = 1) SELECT id FROM x)",
            MY
        ),
        vec![all("t"), keyed("u", &[key("k", &[num("1")])])]
    );
}

#[test]
fn quoted_cte_name_that_only_differs_in_case_still_reads_the_table() {
    // `"Agent"` (the CTE) and `agent` are different names in PostgreSQL.
    assert_eq!(
        reads(
            "WITH \"Agent\" AS (SELECT 1) SELECT * FROM agent WHERE id = 1",
            PG
        ),
        vec![all("agent")]
    );
}

#[test]
fn union_intersect_except() {
    assert_eq!(
        reads(
            "SELECT id FROM a WHERE k = 1 UNION SELECT id FROM b UNION ALL SELECT id FROM a WHERE k = 2 \
             INTERSECT SELECT id FROM c EXCEPT SELECT id FROM d WHERE d.z = ?",
            LITE
        ),
        vec![
            keyed("a", &[key("k", &[num("1")])]),
            keyed("a", &[key("k", &[num("2")])]),
            all("b"),
            all("c"),
            keyed("d", &[key("z", &[p(1)])]),
        ]
    );
}

#[test]
fn identical_accesses_are_deduplicated() {
    assert_eq!(
        reads(
            "SELECT * FROM agent WHERE id = 1 UNION SELECT * FROM agent WHERE id = 1",
            PG
        ),
        vec![keyed("agent", &[key("id", &[num("1")])])]
    );
}

#[test]
fn sqlite_in_table_is_read() {
    assert_eq!(
        reads("SELECT * FROM agent WHERE id IN banned", LITE),
        vec![all("agent"), all("banned")]
    );
}

#[test]
fn table_function_is_not_a_table() {
    // Built-in table functions read no table.
    for (sql, d) in [
        ("SELECT * FROM generate_series(1, 3) AS g", PG),
        ("SELECT * FROM unnest($1::int[]) AS u(x)", PG),
        ("SELECT * FROM jsonb_array_elements($1) AS e", PG),
        ("SELECT key, value FROM json_each($1)", LITE),
        ("SELECT * FROM pg_catalog.generate_series(1, 3)", PG),
    ] {
        assert_eq!(reads(sql, d), vec![], "{sql}");
    }
    // Any other function in FROM may read any table (or write): unknown. The tables
    // the statement names are still listed.
    for (sql, d) in [
        ("SELECT * FROM agents_of($1)", PG),
        ("SELECT * FROM public.generate_series(1, 3)", PG),
        (
            "SELECT a.id, s.* FROM agent a, LATERAL agent_stats(a.id) s WHERE a.id = $1",
            PG,
        ),
        (
            "SELECT * FROM agent a JOIN \"GENERATE_SERIES\"(1, 2) g ON true",
            PG,
        ),
    ] {
        let a = analyze(sql, d);
        assert!(
            matches!(a.unknown, Some(Unknown::Function(_))),
            "{sql}: {a:?}"
        );
        assert!(a.may_write(), "{sql}");
    }
    let a = analyze(
        "SELECT a.id, s.* FROM agent a, LATERAL agent_stats(a.id) s WHERE a.id = $1",
        PG,
    );
    assert_eq!(a.unknown, Some(Unknown::Function("agent_stats".into())));
    assert_eq!(a.reads.len(), 1);
    assert_eq!(a.reads[0].table, "agent");
}

#[test]
fn user_functions_make_a_statement_unknown() {
    // A call may read any table or have a side effect: `SELECT archive_agent($1)` is
    // not a query the cache may skip.
    for (sql, d, name) in [
        ("SELECT archive_agent($1)", PG, "archive_agent"),
        (
            "SELECT * FROM agent WHERE visible_to(id, $1)",
            PG,
            "visible_to",
        ),
        ("SELECT id, score(id) FROM agent", LITE, "score"),
        ("SELECT nextval('agent_id_seq')", PG, "nextval"),
        ("SELECT GET_LOCK('x', 1)", MY, "GET_LOCK"),
        (
            "UPDATE agent SET name = normalize_name($1) WHERE id = $2",
            PG,
            "normalize_name",
        ),
        (
            "INSERT INTO agent (id, name) VALUES ($1, app.slug($2))",
            PG,
            "app.slug",
        ),
    ] {
        let a = analyze(sql, d);
        assert_eq!(a.unknown, Some(Unknown::Function(name.into())), "{sql}");
        assert!(a.may_write(), "{sql}");
    }
}

#[test]
fn builtin_functions_keep_the_analysis() {
    for (sql, d) in [
        (
            "SELECT lower(name), COUNT(*), coalesce(max(id), 0), now() FROM agent \
             WHERE organization_id = $1 GROUP BY name",
            PG,
        ),
        (
            "SELECT jsonb_build_object('id', id), row_number() OVER (ORDER BY id) FROM agent \
             WHERE organization_id = $1",
            PG,
        ),
        (
            "SELECT ifnull(name, ''), group_concat(id), datetime('now') FROM agent \
             WHERE organization_id = ?",
            LITE,
        ),
        (
            "SELECT IF(name IS NULL, '', UPPER(name)), DATE_FORMAT(NOW(), '%Y') FROM agent \
             WHERE organization_id = ?",
            MY,
        ),
        (
            "SELECT * FROM agent WHERE organization_id = $1 AND created_at > CURRENT_TIMESTAMP",
            PG,
        ),
    ] {
        let r = reads(sql, d);
        assert_eq!(
            r,
            vec![keyed("agent", &[key("organization_id", &[p(1)])])],
            "{sql}"
        );
    }
}

#[test]
fn values_query_reads_nothing() {
    assert_eq!(reads("VALUES (1, 'a'), (2, 'b')", PG), vec![]);
}

#[test]
fn reads_are_sorted_by_table_name() {
    let r = reads(
        "SELECT * FROM zeta z JOIN alpha a ON a.id = z.id JOIN mid m ON m.id = a.id",
        PG,
    );
    let names: Vec<_> = r.iter().map(|r| r.table.as_str()).collect();
    assert_eq!(names, ["alpha", "mid", "zeta"]);
}

// ---- placeholders --------------------------------------------------------------

#[test]
fn postgres_numbered_params_keep_their_number() {
    assert_eq!(
        reads("SELECT * FROM t WHERE a = $2 AND b = $1 AND c = $2", PG),
        vec![keyed(
            "t",
            &[key("a", &[p(2)]), key("b", &[p(1)]), key("c", &[p(2)])]
        )]
    );
}

#[test]
fn anonymous_params_are_numbered_in_text_order() {
    // The `?` in the select list comes first in the text, LIMIT's last.
    assert_eq!(
        reads("SELECT ?, x FROM t WHERE a = ? AND b = ? LIMIT ?", LITE),
        vec![keyed("t", &[key("a", &[p(2)]), key("b", &[p(3)])])]
    );
    assert_eq!(
        reads("SELECT * FROM t JOIN u ON u.k = ? WHERE t.a = ?", MY),
        vec![
            keyed("t", &[key("a", &[p(2)])]),
            keyed("u", &[key("k", &[p(1)])])
        ]
    );
}

#[test]
fn sqlite_numbered_params() {
    assert_eq!(
        reads("SELECT * FROM t WHERE a = ?2 AND b = ?1", LITE),
        vec![keyed("t", &[key("a", &[p(2)]), key("b", &[p(1)])])]
    );
    // `?` after `?2` is 3 (SQLite: one more than the largest so far).
    assert_eq!(
        reads("SELECT * FROM t WHERE a = ?2 AND b = ?", LITE),
        vec![keyed("t", &[key("a", &[p(2)]), key("b", &[p(3)])])]
    );
    assert_eq!(
        reads("SELECT * FROM t WHERE a = $1 AND b = $2", LITE),
        vec![keyed("t", &[key("a", &[p(1)]), key("b", &[p(2)])])]
    );
}

#[test]
fn sqlite_named_params_by_first_appearance() {
    assert_eq!(
        reads(
            "SELECT * FROM t WHERE a = :org AND b = @id AND c = :org AND d = $name AND e IN (:org, @id)",
            LITE
        ),
        vec![keyed(
            "t",
            &[
                key("a", &[named(1, "org")]),
                key("b", &[named(2, "id")]),
                key("c", &[named(1, "org")]),
                key("d", &[named(3, "name")]),
                key("e", &[named(1, "org"), named(2, "id")]),
            ]
        )]
    );
}

#[test]
fn mysql_reads_dollar_one_as_an_identifier() {
    // `$1` is a column name in MySQL: not a key.
    assert_eq!(reads("SELECT * FROM t WHERE a = $1", MY), vec![all("t")]);
}

#[test]
fn placeholders_inside_comments_and_strings_do_not_count() {
    assert_eq!(
        reads(
            "SELECT * FROM t /* ? */ WHERE a = '?' AND b = ? -- ?\n AND c = ?",
            LITE
        ),
        vec![keyed(
            "t",
            &[key("a", &[text("?")]), key("b", &[p(1)]), key("c", &[p(2)])]
        )]
    );
}

// ---- writes --------------------------------------------------------------------

fn write(a: &StatementAnalysis) -> &TableWrite {
    assert_eq!(a.writes.len(), 1, "{a:?}");
    &a.writes[0]
}

#[test]
fn insert_values_with_returning() {
    let a = ok(
        "INSERT INTO agent (id, name, organization_id) VALUES ($1, 'bot', $2) RETURNING id",
        PG,
    );
    assert_eq!(a.operation, Operation::Insert);
    assert!(a.returning);
    assert!(a.reads.is_empty());
    assert_eq!(
        *write(&a),
        TableWrite {
            table: "agent".into(),
            operation: Operation::Insert,
            filter: RowFilter::All,
            set: vec![],
            inserted: Some(vec![vec![
                cv("id", Some(p(1))),
                cv("name", Some(text("bot"))),
                cv("organization_id", Some(p(2)))
            ]]),
        }
    );
}

#[test]
fn insert_several_rows_with_expressions() {
    let a = ok(
        "INSERT INTO main.Agent (id, created) VALUES (?, datetime('now')), (?, DEFAULT)",
        LITE,
    );
    assert!(!a.returning);
    assert_eq!(
        write(&a).inserted,
        Some(vec![
            vec![cv("id", Some(p(1))), cv("created", None)],
            vec![cv("id", Some(p(2))), cv("created", None)]
        ])
    );
    assert_eq!(write(&a).table, "agent");
}

#[test]
fn insert_without_column_list_has_unknown_rows() {
    let a = ok("INSERT INTO agent VALUES (?, ?)", MY);
    assert_eq!(a.operation, Operation::Insert);
    assert_eq!(write(&a).inserted, None);
}

#[test]
fn insert_select_reads_its_source() {
    let a = ok(
        "INSERT INTO archive (id, body) SELECT id, body FROM message WHERE agent_id = $1",
        PG,
    );
    assert_eq!(a.operation, Operation::Insert);
    assert_eq!(a.reads, vec![keyed("message", &[key("agent_id", &[p(1)])])]);
    assert_eq!(write(&a).table, "archive");
    assert_eq!(write(&a).inserted, None);
}

#[test]
fn insert_with_subquery_value_reads_it() {
    let a = ok(
        "INSERT INTO agent (id, organization_id) VALUES (?, (SELECT id FROM organization WHERE slug = ?))",
        LITE,
    );
    assert_eq!(
        a.reads,
        vec![keyed("organization", &[key("slug", &[p(2)])])]
    );
    assert_eq!(
        write(&a).inserted,
        Some(vec![vec![
            cv("id", Some(p(1))),
            cv("organization_id", None)
        ]])
    );
}

#[test]
fn mysql_insert_set() {
    let a = ok("INSERT INTO agent SET id = ?, name = 'x'", MY);
    assert_eq!(a.operation, Operation::Insert);
    assert_eq!(
        write(&a).inserted,
        Some(vec![vec![
            cv("id", Some(p(1))),
            cv("name", Some(text("x")))
        ]])
    );
}

#[test]
fn postgres_on_conflict_do_update_is_an_upsert() {
    let a = ok(
        "INSERT INTO counter (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = counter.n + 1, label = $2 RETURNING n",
        PG,
    );
    assert_eq!(a.operation, Operation::Upsert);
    assert!(a.returning);
    assert_eq!(
        *write(&a),
        TableWrite {
            table: "counter".into(),
            operation: Operation::Upsert,
            filter: RowFilter::All,
            set: vec![cv("n", None), cv("label", Some(p(2)))],
            inserted: Some(vec![vec![cv("id", Some(p(1))), cv("n", Some(num("1")))]]),
        }
    );
}

#[test]
fn on_conflict_do_nothing_is_an_insert() {
    let a = ok(
        "INSERT INTO tag (name) VALUES (?) ON CONFLICT DO NOTHING",
        LITE,
    );
    assert_eq!(a.operation, Operation::Insert);
    assert_eq!(write(&a).operation, Operation::Insert);
    assert!(write(&a).set.is_empty());
}

#[test]
fn sqlite_upsert_with_excluded() {
    let a = ok(
        "INSERT INTO kv (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
        LITE,
    );
    assert_eq!(a.operation, Operation::Upsert);
    assert_eq!(write(&a).set, vec![cv("v", None)]);
    assert_eq!(
        write(&a).inserted,
        Some(vec![vec![cv("k", Some(p(1))), cv("v", Some(p(2)))]])
    );
}

#[test]
fn mysql_on_duplicate_key_update() {
    let a = ok(
        "INSERT INTO agent (id, name) VALUES (?, ?) ON DUPLICATE KEY UPDATE name = VALUES(name), n = ?",
        MY,
    );
    assert_eq!(a.operation, Operation::Upsert);
    assert_eq!(write(&a).set, vec![cv("name", None), cv("n", Some(p(3)))]);
}

#[test]
fn insert_or_replace_and_replace_are_upserts() {
    for (sql, d) in [
        (
            "INSERT OR REPLACE INTO agent (id, name) VALUES (?, ?)",
            LITE,
        ),
        ("REPLACE INTO agent (id, name) VALUES (?, ?)", MY),
    ] {
        let a = ok(sql, d);
        assert_eq!(a.operation, Operation::Upsert, "{sql}");
        let w = write(&a);
        assert_eq!(w.operation, Operation::Upsert);
        assert_eq!(w.filter, RowFilter::All);
        assert!(w.set.is_empty());
        assert_eq!(
            w.inserted,
            Some(vec![vec![cv("id", Some(p(1))), cv("name", Some(p(2)))]])
        );
    }
}

#[test]
fn update_set_values_filter_and_target_read() {
    let a = ok(
        "UPDATE agent SET name = $1, runs = runs + 1 WHERE id = $2 AND organization_id = $3 RETURNING *",
        PG,
    );
    assert_eq!(a.operation, Operation::Update);
    assert!(a.returning);
    let filter = vec![key("id", &[p(2)]), key("organization_id", &[p(3)])];
    assert_eq!(a.reads, vec![keyed("agent", &filter)]);
    assert_eq!(
        *write(&a),
        TableWrite {
            table: "agent".into(),
            operation: Operation::Update,
            filter: RowFilter::Keys(filter),
            set: vec![cv("name", Some(p(1))), cv("runs", None)],
            inserted: None,
        }
    );
}

#[test]
fn update_params_numbered_in_text_order() {
    let a = ok("UPDATE t SET a = ?, b = ? WHERE id = ?", MY);
    assert_eq!(
        write(&a).set,
        vec![cv("a", Some(p(1))), cv("b", Some(p(2)))]
    );
    assert_eq!(write(&a).filter, RowFilter::Keys(vec![key("id", &[p(3)])]));
}

#[test]
fn update_named_params() {
    let a = ok("UPDATE agent SET name = :name WHERE id = :id", LITE);
    assert_eq!(write(&a).set, vec![cv("name", Some(named(1, "name")))]);
    assert_eq!(
        write(&a).filter,
        RowFilter::Keys(vec![key("id", &[named(2, "id")])])
    );
}

#[test]
fn update_without_where_writes_all_rows() {
    let a = ok("UPDATE agent SET active = FALSE", LITE);
    assert_eq!(write(&a).filter, RowFilter::All);
    assert_eq!(a.reads, vec![all("agent")]);
}

#[test]
fn update_with_subquery_in_where() {
    let a = ok(
        "UPDATE agent SET active = 0 WHERE organization_id IN (SELECT id FROM organization WHERE plan = 'free')",
        MY,
    );
    assert_eq!(
        a.reads,
        vec![
            all("agent"),
            keyed("organization", &[key("plan", &[text("free")])])
        ]
    );
    assert_eq!(write(&a).filter, RowFilter::All);
}

#[test]
fn postgres_update_from() {
    let a = ok(
        "UPDATE agent a SET name = o.name FROM organization o WHERE o.id = a.organization_id AND o.id = $1",
        PG,
    );
    assert_eq!(
        a.reads,
        vec![all("agent"), keyed("organization", &[key("id", &[p(1)])])]
    );
    assert_eq!(
        *write(&a),
        TableWrite {
            table: "agent".into(),
            operation: Operation::Update,
            filter: RowFilter::All,
            set: vec![cv("name", None)],
            inserted: None,
        }
    );
}

#[test]
fn mysql_multi_table_update_writes_the_assigned_table() {
    let a = ok(
        "UPDATE agent a JOIN organization o ON o.id = a.organization_id SET a.name = ? WHERE o.id = ? AND a.kind = 'x'",
        MY,
    );
    assert_eq!(
        a.reads,
        vec![
            keyed("agent", &[key("kind", &[text("x")])]),
            keyed("organization", &[key("id", &[p(2)])])
        ]
    );
    assert_eq!(
        a.writes,
        vec![TableWrite {
            table: "agent".into(),
            operation: Operation::Update,
            filter: RowFilter::Keys(vec![key("kind", &[text("x")])]),
            set: vec![cv("name", Some(p(1)))],
            inserted: None,
        }]
    );
}

#[test]
fn delete_with_filter() {
    for (sql, d, v) in [
        ("DELETE FROM message WHERE agent_id = $1", PG, p(1)),
        ("DELETE FROM message WHERE agent_id = ?", LITE, p(1)),
        ("DELETE FROM message WHERE agent_id = 7", MY, num("7")),
    ] {
        let a = ok(sql, d);
        assert_eq!(a.operation, Operation::Delete);
        assert!(a.reads.is_empty(), "a DELETE's target is not a read: {a:?}");
        assert_eq!(
            a.writes,
            vec![TableWrite {
                table: "message".into(),
                operation: Operation::Delete,
                filter: RowFilter::Keys(vec![key("agent_id", &[v])]),
                set: vec![],
                inserted: None,
            }]
        );
    }
}

#[test]
fn delete_without_where_and_with_returning() {
    let a = ok("DELETE FROM message RETURNING id", LITE);
    assert!(a.returning);
    assert_eq!(write(&a).filter, RowFilter::All);
}

#[test]
fn delete_using_and_subqueries_are_read() {
    let a = ok(
        "DELETE FROM agent a USING organization o WHERE o.id = a.organization_id AND o.slug = $1 AND a.kind = 'bot'",
        PG,
    );
    assert_eq!(
        a.reads,
        vec![keyed("organization", &[key("slug", &[p(1)])])]
    );
    assert_eq!(
        write(&a).filter,
        RowFilter::Keys(vec![key("kind", &[text("bot")])])
    );
    let a = ok(
        "DELETE FROM memory WHERE agent_id IN (SELECT id FROM agent WHERE organization_id = ?)",
        MY,
    );
    assert_eq!(
        a.reads,
        vec![keyed("agent", &[key("organization_id", &[p(1)])])]
    );
    assert_eq!(write(&a).filter, RowFilter::All);
}

#[test]
fn mysql_multi_table_delete() {
    let a = ok(
        "DELETE m FROM message m JOIN agent a ON a.id = m.agent_id WHERE a.organization_id = ?",
        MY,
    );
    assert_eq!(
        a.reads,
        vec![keyed("agent", &[key("organization_id", &[p(1)])])]
    );
    assert_eq!(write(&a).table, "message");
    assert_eq!(write(&a).filter, RowFilter::All);
}

#[test]
fn data_modifying_cte() {
    let a = ok(
        "WITH gone AS (DELETE FROM message WHERE agent_id = $1 RETURNING id) SELECT count(*) FROM gone",
        PG,
    );
    assert_eq!(a.operation, Operation::Delete);
    assert!(a.may_write());
    assert_eq!(
        write(&a).filter,
        RowFilter::Keys(vec![key("agent_id", &[p(1)])])
    );
}

// ---- statement kinds and unknowns ---------------------------------------------

#[test]
fn unparseable_sql_is_unknown_with_the_parser_message() {
    for d in ALL_DIALECTS {
        let a = analyze("SELEC * FROM agent", d);
        assert_eq!(a.operation, Operation::Other);
        assert!(a.reads.is_empty() && a.writes.is_empty());
        match &a.unknown {
            Some(Unknown::Parse(message)) => assert!(message.contains("SELEC"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(a.may_write());
    }
    assert!(matches!(
        analyze("SELECT * FROM agent WHERE name = 'unterminated", PG).unknown,
        Some(Unknown::Parse(_))
    ));
}

#[test]
fn several_statements_are_unknown() {
    for d in ALL_DIALECTS {
        let a = analyze("SELECT 1; DELETE FROM agent", d);
        assert_eq!(
            a,
            StatementAnalysis::unknown(Operation::Other, Unknown::MultipleStatements)
        );
    }
}

#[test]
fn a_trailing_semicolon_is_one_statement() {
    assert_eq!(
        reads("SELECT * FROM agent WHERE id = 1;", PG),
        vec![keyed("agent", &[key("id", &[num("1")])])]
    );
}

#[test]
fn ddl_is_unknown() {
    for (sql, d) in [
        ("CREATE TABLE agent (id INT PRIMARY KEY)", PG),
        ("ALTER TABLE agent ADD COLUMN x INT", LITE),
        ("DROP TABLE agent", MY),
        ("TRUNCATE agent", PG),
        ("TRUNCATE TABLE agent", MY),
        ("CREATE INDEX agent_org ON agent (organization_id)", LITE),
        ("CREATE VIEW v AS SELECT * FROM agent", PG),
        ("DROP INDEX agent_org", LITE),
        ("CREATE SCHEMA s", PG),
        ("GRANT SELECT ON agent TO bob", PG),
    ] {
        assert_eq!(
            analyze(sql, d),
            StatementAnalysis::unknown(Operation::Ddl, Unknown::Ddl),
            "{sql}"
        );
    }
}

#[test]
fn transaction_control_and_session_statements_do_nothing() {
    for (sql, d) in [
        ("BEGIN", PG),
        ("BEGIN TRANSACTION", LITE),
        ("START TRANSACTION", MY),
        ("COMMIT", PG),
        ("ROLLBACK", MY),
        ("SAVEPOINT s1", LITE),
        ("RELEASE SAVEPOINT s1", PG),
        ("ROLLBACK TO SAVEPOINT s1", PG),
        ("SET search_path TO public", PG),
        ("SET autocommit = 0", MY),
        ("SHOW TABLES", MY),
        ("EXPLAIN SELECT * FROM agent", PG),
        ("EXPLAIN QUERY PLAN SELECT * FROM agent", LITE),
        ("PRAGMA foreign_keys = ON", LITE),
        ("PRAGMA table_info(agent)", LITE),
    ] {
        let a = analyze(sql, d);
        assert_eq!(
            a,
            StatementAnalysis {
                operation: Operation::Other,
                reads: vec![],
                writes: vec![],
                returning: false,
                unknown: None
            },
            "{sql}"
        );
    }
}

#[test]
fn a_pragma_that_does_not_parse_is_harmless_only_alone() {
    assert!(matches!(
        analyze("PRAGMA foreign_keys = ON; DELETE FROM agent", LITE).unknown,
        Some(Unknown::Parse(_))
    ));
}

#[test]
fn statements_that_may_write_are_unsupported() {
    for (sql, d) in [
        ("CALL refresh_stats()", MY),
        ("CALL refresh_stats()", PG),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET x = 1",
            PG,
        ),
        ("COPY agent FROM STDIN", PG),
        ("SELECT * INTO agent_copy FROM agent", PG),
    ] {
        let a = analyze(sql, d);
        assert!(
            matches!(a.unknown, Some(Unknown::Unsupported(_))),
            "{sql}: {a:?}"
        );
        assert!(a.may_write(), "{sql}");
    }
}

#[test]
fn explain_analyze_runs_the_statement() {
    let a = ok("EXPLAIN ANALYZE DELETE FROM agent WHERE id = $1", PG);
    assert_eq!(a.operation, Operation::Delete);
    assert_eq!(write(&a).filter, RowFilter::Keys(vec![key("id", &[p(1)])]));
}

/// PostgreSQL's parenthesized options run the statement just the same: with `ANALYZE`
/// the delete runs, so the statement is not a no-op like a plain `EXPLAIN`.
#[test]
fn explain_with_an_analyze_option_runs_the_statement() {
    for sql in [
        "EXPLAIN (ANALYZE) DELETE FROM agent WHERE id = $1",
        "EXPLAIN (ANALYZE true, BUFFERS) DELETE FROM agent WHERE id = $1",
        "EXPLAIN (FORMAT JSON, analyze on) DELETE FROM agent WHERE id = $1",
        "EXPLAIN (ANALYZE 1) DELETE FROM agent WHERE id = $1",
    ] {
        let a = ok(sql, PG);
        assert_eq!(a.operation, Operation::Delete, "{sql}");
        assert_eq!(
            write(&a).filter,
            RowFilter::Keys(vec![key("id", &[p(1)])]),
            "{sql}"
        );
    }
    for sql in [
        "EXPLAIN (ANALYZE false) DELETE FROM agent WHERE id = $1",
        "EXPLAIN (ANALYZE off, COSTS) DELETE FROM agent WHERE id = $1",
        "EXPLAIN (COSTS) DELETE FROM agent WHERE id = $1",
        "EXPLAIN DELETE FROM agent WHERE id = $1",
    ] {
        let a = analyze(sql, PG);
        assert!(!a.may_write(), "{sql}: only planned, not run: {a:?}");
    }
}

#[test]
fn empty_input_does_nothing() {
    for sql in ["", "   \n\t", "-- just a comment", "/* c */ ;", ";;"] {
        for d in ALL_DIALECTS {
            let a = analyze(sql, d);
            assert_eq!(
                a,
                StatementAnalysis {
                    operation: Operation::Other,
                    reads: vec![],
                    writes: vec![],
                    returning: false,
                    unknown: None
                },
                "{sql:?}"
            );
            assert!(!a.may_write());
        }
    }
}

#[test]
fn statement_too_complex_is_unsupported() {
    let sql = format!("SELECT * FROM t WHERE a = 1{}", " AND a = 1".repeat(5000));
    let a = analyze(&sql, PG);
    assert!(
        matches!(a.unknown, Some(Unknown::Unsupported(ref m)) if m.contains("too complex")),
        "{:?}",
        a.unknown
    );
}

#[test]
fn operation_is_write_and_may_write() {
    assert!(!ok("SELECT 1", PG).may_write());
    assert!(ok("UPDATE t SET a = 1", PG).may_write());
    assert!(Operation::Upsert.is_write());
}

#[test]
fn analysis_serializes_to_json() {
    let a = ok("SELECT * FROM agent WHERE id = ?", LITE);
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["reads"][0]["table"], "agent");
    assert_eq!(json["reads"][0]["filter"]["rows"], "keys");
    let back: StatementAnalysis = serde_json::from_value(json).unwrap();
    assert_eq!(back, a);
}

#[test]
fn sqlite_update_or_replace_writes_all_rows() {
    // The conflict resolution deletes other rows, whatever the WHERE clause says.
    let a = ok("UPDATE OR REPLACE agent SET email = ? WHERE id = ?", LITE);
    assert_eq!(write(&a).filter, RowFilter::All);
    assert_eq!(write(&a).set, vec![cv("email", Some(p(1)))]);
}

#[test]
fn with_clause_before_a_write() {
    let a = ok(
        "WITH src AS (SELECT id FROM staging WHERE batch = $1) INSERT INTO agent (id) SELECT id FROM src RETURNING id",
        PG,
    );
    assert_eq!(a.operation, Operation::Insert);
    assert!(a.returning);
    assert_eq!(a.reads, vec![keyed("staging", &[key("batch", &[p(1)])])]);
    assert_eq!(write(&a).table, "agent");
    let a = ok(
        "WITH gone AS (DELETE FROM message WHERE agent_id = $1 RETURNING *) INSERT INTO archive (id) SELECT id FROM gone",
        PG,
    );
    assert_eq!(a.operation, Operation::Insert);
    assert!(!a.returning);
    let tables: Vec<_> = a
        .writes
        .iter()
        .map(|w| (w.table.as_str(), w.operation))
        .collect();
    assert_eq!(
        tables,
        [
            ("archive", Operation::Insert),
            ("message", Operation::Delete)
        ]
    );
}
