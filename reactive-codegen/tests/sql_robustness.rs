//! `analyze` never panics and its results keep their invariants, whatever the input:
//! property tests over arbitrary strings, SQL-like token soups and generated queries,
//! plus deep inputs run on a small (2 MiB) stack.

use proptest::prelude::*;
use reactive_codegen::sql::{Dialect, Operation, RowFilter, StatementAnalysis, analyze};

const DIALECTS: [Dialect; 3] = [Dialect::Postgres, Dialect::Sqlite, Dialect::MySql];

/// Invariants every analysis must keep.
fn check(sql: &str, a: &StatementAnalysis) {
    let filters = a
        .reads
        .iter()
        .map(|r| &r.filter)
        .chain(a.writes.iter().map(|w| &w.filter));
    for filter in filters {
        if let RowFilter::Keys(keys) = filter {
            assert!(!keys.is_empty(), "Keys(vec![]) for {sql:?}: {a:?}");
            assert!(
                keys.iter().all(|k| !k.values.is_empty()),
                "a key without values for {sql:?}: {a:?}"
            );
        }
    }
    assert!(
        a.reads.windows(2).all(|w| w[0].table <= w[1].table),
        "reads not sorted for {sql:?}: {a:?}"
    );
    assert!(
        a.writes.windows(2).all(|w| w[0].table <= w[1].table),
        "writes not sorted for {sql:?}: {a:?}"
    );
    for (i, r) in a.reads.iter().enumerate() {
        assert!(
            !a.reads[i + 1..].contains(r),
            "duplicate read for {sql:?}: {a:?}"
        );
        if r.filter == RowFilter::All {
            assert_eq!(
                a.reads.iter().filter(|o| o.table == r.table).count(),
                1,
                "All not collapsed for {sql:?}: {a:?}"
            );
        }
    }
    if a.unknown.is_some() {
        assert!(a.may_write());
    }
    if !a.writes.is_empty() {
        assert!(
            a.operation.is_write() || a.unknown.is_some(),
            "writes from a non-write for {sql:?}: {a:?}"
        );
    }
}

fn run(sql: &str) {
    for d in DIALECTS {
        let a = analyze(sql, d);
        check(sql, &a);
    }
}

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "JOIN",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "INNER",
    "ON",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "EXISTS",
    "(",
    ")",
    "(",
    ")",
    ",",
    "=",
    "<>",
    "<",
    "+",
    "-",
    "*",
    "/",
    "||",
    "::",
    ".",
    ";",
    "?",
    "?2",
    "$1",
    "$2",
    ":a",
    "@b",
    "$name",
    "agent",
    "a",
    "m",
    "a.id",
    "m.agent_id",
    "\"Agent\"",
    "`t`",
    "public.agent",
    "1",
    "-1",
    "'x'",
    "TRUE",
    "WITH",
    "RECURSIVE",
    "AS",
    "UNION",
    "ALL",
    "INTERSECT",
    "EXCEPT",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "RETURNING",
    "CONFLICT",
    "DO",
    "NOTHING",
    "DUPLICATE",
    "KEY",
    "REPLACE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "LIMIT",
    "ORDER",
    "BY",
    "GROUP",
    "HAVING",
    "DISTINCT",
    "CAST",
    "LATERAL",
    "USING",
    "CREATE",
    "TABLE",
    "DROP",
    "BEGIN",
    "COMMIT",
    "PRAGMA",
    "EXPLAIN",
    "ANALYZE",
    "CALL",
    "--",
    "/*",
    "*/",
    "'",
    "\"",
    "[",
    "]",
    "{",
    "}",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.join(" "))
}

fn column() -> impl Strategy<Value = String> {
    prop::sample::select(
        &[
            "id", "a.id", "b.id", "a.org", "b.kind", "org", "\"Id\"", "x.y",
        ][..],
    )
    .prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = String> {
    prop::sample::select(
        &[
            "1",
            "-2",
            "'s'",
            "?",
            "$1",
            ":n",
            "NULL",
            "TRUE",
            "b.id",
            "(SELECT id FROM c WHERE c.k = 1)",
        ][..],
    )
    .prop_map(str::to_owned)
}

fn condition() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (column(), value()).prop_map(|(c, v)| format!("{c} = {v}")),
        (value(), column()).prop_map(|(v, c)| format!("{v} = {c}")),
        (column(), prop::collection::vec(value(), 1..4))
            .prop_map(|(c, v)| format!("{c} IN ({})", v.join(", "))),
        (column(), value()).prop_map(|(c, v)| format!("{c} > {v}")),
        Just("EXISTS (SELECT 1 FROM m WHERE m.a_id = a.id)".to_owned()),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| format!("{l} AND {r}")),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| format!("({l} OR {r})")),
            inner.prop_map(|c| format!("NOT ({c})")),
        ]
    })
}

fn query() -> impl Strategy<Value = String> {
    let join = prop::sample::select(
        &[
            "JOIN",
            "LEFT JOIN",
            "RIGHT JOIN",
            "FULL JOIN",
            "CROSS JOIN",
            ",",
        ][..],
    );
    (
        join,
        condition(),
        condition(),
        prop::sample::select(&["", "WITH b AS (SELECT * FROM t) "][..]),
    )
        .prop_map(|(join, on, wh, with)| {
            let on = if join == "," || join == "CROSS JOIN" {
                String::new()
            } else {
                format!("ON {on}")
            };
            format!("{with}SELECT * FROM agent a {join} b {on} WHERE {wh}")
        })
}

fn write_statement() -> impl Strategy<Value = String> {
    prop_oneof![
        (condition(), value())
            .prop_map(|(c, v)| format!("UPDATE agent a SET name = {v}, n = n + 1 WHERE {c}")),
        condition().prop_map(|c| format!("DELETE FROM agent a WHERE {c}")),
        (value(), value()).prop_map(|(x, y)| format!(
            "INSERT INTO agent (id, name) VALUES ({x}, {y}) RETURNING id"
        )),
        (value(), value()).prop_map(|(x, y)| format!(
            "INSERT INTO agent (id, n) VALUES ({x}, 1) ON CONFLICT (id) DO UPDATE SET n = {y}"
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(sql in ".{0,200}") {
        run(&sql);
    }

    #[test]
    fn token_soups_never_panic(sql in soup()) {
        run(&sql);
    }

    #[test]
    fn generated_queries_keep_invariants(sql in query()) {
        run(&sql);
        // These always parse in PostgreSQL (no `?` in the value list there would fail: skip those).
        if !sql.contains('?') && !sql.contains(":n") {
            let a = analyze(&sql, Dialect::Postgres);
            prop_assert!(a.unknown.is_none(), "{sql}: {a:?}");
            prop_assert_eq!(a.operation, Operation::Select);
            prop_assert!(a.reads.iter().any(|r| r.table == "agent"));
        }
    }

    #[test]
    fn generated_writes_keep_invariants(sql in write_statement()) {
        run(&sql);
        let a = analyze(&sql, Dialect::Sqlite);
        if a.unknown.is_none() {
            prop_assert!(a.operation.is_write());
            prop_assert!(a.writes.iter().any(|w| w.table == "agent"));
        }
    }
}

/// Run on a 2 MiB stack (the default for test and tokio worker threads).
fn on_small_stack(sql: String) -> StatementAnalysis {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || analyze(&sql, Dialect::Postgres))
        .expect("spawn")
        .join()
        .expect("analysis panicked")
}

#[test]
fn long_operator_chains_do_not_overflow_the_stack() {
    // Just under and well over the complexity limit, for each chain kind sqlparser
    // builds without recursion.
    for n in [3_900usize, 100_000] {
        for sql in [
            format!("SELECT 1{}", " + 1".repeat(n)),
            format!("SELECT * FROM t WHERE a = 1{}", " AND a = 1".repeat(n / 3)),
            format!("SELECT * FROM t WHERE a = 1{}", " OR a = 1".repeat(n / 3)),
            format!("SELECT 'a'{}", " || 'a'".repeat(n)),
            format!("SELECT x{}", "::int".repeat(n)),
            format!("SELECT 1{}", " UNION SELECT 1".repeat(n / 2)),
            format!("SELECT * FROM t WHERE a IN ({})", vec!["1"; n].join(", ")),
            format!("INSERT INTO t (a) VALUES {}", vec!["(1)"; n].join(", ")),
        ] {
            let a = on_small_stack(sql);
            check("chain", &a);
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for depth in [10usize, 40, 200, 5_000] {
        let nested_sub = format!(
            "SELECT * FROM t WHERE a IN {}{}",
            "(SELECT a FROM t WHERE a IN ".repeat(depth),
            ")".repeat(depth)
        );
        let parens = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let derived = format!(
            "SELECT * FROM {}t{}",
            "(SELECT * FROM ".repeat(depth),
            ") x".repeat(depth)
        );
        for sql in [nested_sub, parens, derived] {
            let a = on_small_stack(sql);
            check("nested", &a);
        }
    }
}

#[test]
fn long_in_lists_and_bulk_inserts_are_still_analysed() {
    let list = (1..=2_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let a = analyze(
        &format!("SELECT * FROM t WHERE id IN ({list})"),
        Dialect::Postgres,
    );
    assert!(a.unknown.is_none());
    assert!(matches!(&a.reads[0].filter, RowFilter::Keys(k) if k[0].values.len() == 2_000));
    let rows = vec!["(?, ?)"; 2_000].join(", ");
    let a = analyze(
        &format!("INSERT INTO t (a, b) VALUES {rows}"),
        Dialect::Sqlite,
    );
    assert!(a.unknown.is_none());
    assert_eq!(a.writes[0].inserted.as_ref().map(Vec::len), Some(2_000));
}
