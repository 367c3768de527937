//! Differential soundness test of the SQL analysis against a real SQLite (in memory).
//!
//! For a generated query, random data and a random single-row change (insert,
//! update or delete), the change is judged with the invalidation rule of the design
//! (a change can affect a query when, for some read of the changed table, every key
//! predicate matches the old or the new row; `All` always matches). When the rule
//! says "cannot affect", the change is applied and the query re-run: its result must
//! not have changed. A failure here is an under-invalidation: stale data served.

use proptest::prelude::*;
use reactive_codegen::sql::{Dialect, Literal, RowFilter, StatementAnalysis, ValueRef, analyze};
use sqlx::{Connection, Row, SqliteConnection};

/// A SQLite value as the tests use them: integers, text, NULL.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Int(i64),
    Text(String),
    Null,
}

impl V {
    fn sql(&self) -> String {
        match self {
            V::Int(i) => i.to_string(),
            V::Text(s) => format!("'{s}'"),
            V::Null => "NULL".into(),
        }
    }
}

const AGENT: &[&str] = &["id", "org", "kind", "parent_id"];
const MESSAGE: &[&str] = &["id", "agent_id", "kind"];

fn columns(table: &str) -> &'static [&'static str] {
    if table == "agent" { AGENT } else { MESSAGE }
}

fn int_value() -> impl Strategy<Value = V> {
    prop_oneof![8 => (1i64..=3).prop_map(V::Int), 1 => Just(V::Null)]
}

fn text_value() -> impl Strategy<Value = V> {
    // "A": `lower(kind) = 'a'` selects it, so a function taken for a key is caught.
    prop_oneof![8 => prop::sample::select(&["a", "b", "A"][..]).prop_map(|s| V::Text(s.into())), 1 => Just(V::Null)]
}

fn value_for(column: &str) -> BoxedStrategy<V> {
    if column == "kind" {
        text_value().boxed()
    } else {
        int_value().boxed()
    }
}

/// A table's rows: ids 1..=n, other columns random.
fn rows(table: &'static str) -> impl Strategy<Value = Vec<Vec<V>>> {
    let cols = columns(table);
    prop::collection::vec(
        cols[1..].iter().map(|c| value_for(c)).collect::<Vec<_>>(),
        0..5,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.insert(0, V::Int(i as i64 + 1));
                r
            })
            .collect()
    })
}

/// A value in the SQL text: `«lit»` markers, some later turned into `?` parameters.
fn marked(v: &V) -> String {
    format!("«{}»", v.sql())
}

/// A column reference usable in the current scope and the strategy for its values.
fn column_ref(joined: bool) -> BoxedStrategy<(String, &'static str)> {
    let mut refs: Vec<(&str, &str)> = vec![
        ("a.id", "id"),
        ("a.org", "org"),
        ("a.kind", "kind"),
        ("a.parent_id", "parent_id"),
        ("org", "org"),
    ];
    if joined {
        refs.extend([
            ("m.id", "id"),
            ("m.agent_id", "agent_id"),
            ("m.kind", "kind"),
            ("agent_id", "agent_id"),
        ]);
    } else {
        refs.extend([("kind", "kind"), ("id", "id")]);
    }
    prop::sample::select(refs)
        .prop_map(|(r, c)| (r.to_owned(), c))
        .boxed()
}

fn atom(joined: bool) -> BoxedStrategy<String> {
    let eq = column_ref(joined)
        .prop_flat_map(|(r, c)| (Just(r), value_for(c), any::<bool>()))
        .prop_map(|(r, v, flip)| {
            if flip {
                format!("{} = {r}", marked(&v))
            } else {
                format!("{r} = {}", marked(&v))
            }
        });
    let in_list = column_ref(joined)
        .prop_flat_map(|(r, c)| (Just(r), prop::collection::vec(value_for(c), 1..3)))
        .prop_map(|(r, vs)| {
            format!(
                "{r} IN ({})",
                vs.iter().map(marked).collect::<Vec<_>>().join(", ")
            )
        });
    let range = column_ref(joined)
        .prop_flat_map(|(r, c)| (Just(r), value_for(c)))
        .prop_map(|(r, v)| format!("{r} > {}", marked(&v)));
    let col_col = Just(if joined {
        "m.agent_id = a.id".to_owned()
    } else {
        "a.parent_id = a.id".to_owned()
    });
    let exists = text_value().prop_map(|v| {
        format!(
            "EXISTS (SELECT 1 FROM message m2 WHERE m2.agent_id = a.id AND m2.kind = {})",
            marked(&v)
        )
    });
    let in_sub = text_value().prop_map(|v| {
        format!(
            "a.id IN (SELECT agent_id FROM message WHERE kind = {})",
            marked(&v)
        )
    });
    // `org` is not a column of message: it is the outer agent's (a correlated reference).
    let outer_ref = int_value().prop_map(|v| {
        format!(
            "EXISTS (SELECT 1 FROM message m3 WHERE m3.agent_id = a.id AND org = {})",
            marked(&v)
        )
    });
    let is_null = column_ref(joined).prop_map(|(r, _)| format!("{r} IS NULL"));
    // Casts the analyser sees through (to TEXT, on either side) and ones it must not
    // (to INTEGER, around a function).
    let cast = column_ref(joined)
        .prop_flat_map(|(r, c)| (Just(r), value_for(c), 0..4))
        .prop_map(|(r, v, form)| match form {
            0 => format!("CAST({r} AS TEXT) = {}", marked(&v)),
            1 => format!("{r} = CAST({} AS TEXT)", marked(&v)),
            2 => format!("CAST({} AS VARCHAR) = CAST({r} AS TEXT)", marked(&v)),
            _ => format!("CAST({r} AS INTEGER) = {}", marked(&v)),
        });
    let function = (text_value(), any::<bool>()).prop_map(|(v, cast)| {
        if cast {
            format!("CAST(lower(a.kind) AS TEXT) = {}", marked(&v))
        } else {
            format!("lower(a.kind) = {}", marked(&v))
        }
    });
    prop_oneof![6 => eq, 2 => in_list, 1 => range, 1 => col_col, 1 => exists, 1 => in_sub, 1 => outer_ref, 1 => is_null, 2 => cast, 2 => function].boxed()
}

fn condition(joined: bool) -> BoxedStrategy<String> {
    atom(joined)
        .prop_recursive(3, 10, 2, move |inner| {
            prop_oneof![
                3 => (inner.clone(), inner.clone()).prop_map(|(l, r)| format!("({l} AND {r})")),
                2 => (inner.clone(), inner.clone()).prop_map(|(l, r)| format!("({l} OR {r})")),
                1 => inner.prop_map(|c| format!("NOT ({c})")),
            ]
        })
        .boxed()
}

/// A query over `agent a` (optionally joined with `message m`), with `«v»` markers.
fn query() -> impl Strategy<Value = String> {
    // What `a` is: the table, a derived table, a CTE, or a UNION of filtered scans.
    let source = prop_oneof![
        3 => Just((String::new(), "agent a".to_owned())),
        1 => condition(false).prop_map(|c| (String::new(), format!("(SELECT * FROM agent a WHERE {c}) a"))),
        1 => condition(false).prop_map(|c| (format!("WITH x AS (SELECT * FROM agent a WHERE {c}) "), "x a".to_owned())),
        1 => (condition(false), condition(false)).prop_map(|(c1, c2)| {
            (String::new(), format!("(SELECT * FROM agent a WHERE {c1} UNION SELECT * FROM agent a WHERE {c2}) a"))
        }),
    ];
    let join = prop::sample::select(&["", "JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN", ","][..]);
    (source, join).prop_flat_map(|(source, join)| {
        let joined = !join.is_empty();
        let on = if joined && join != "," {
            condition(true).prop_map(|c| format!(" ON {c}")).boxed()
        } else {
            Just(String::new()).boxed()
        };
        let wh = prop::option::of(condition(joined));
        let projection = if joined {
            prop::sample::select(
                &[
                    "quote(a.id), quote(a.org), quote(a.kind), quote(a.parent_id), quote(m.id), quote(m.agent_id), quote(m.kind)",
                    "count(*)",
                ][..],
            )
        } else {
            prop::sample::select(&["quote(a.id), quote(a.org), quote(a.kind), quote(a.parent_id)", "count(*)"][..])
        };
        (Just(source), Just(join), on, wh, projection).prop_map(move |((with, a), join, on, wh, projection)| {
            let from = if join.is_empty() { a } else { format!("{a} {join} message m{on}") };
            let wh = wh.map(|w| format!(" WHERE {w}")).unwrap_or_default();
            format!("{with}SELECT {projection} FROM {from}{wh}")
        })
    })
}

/// Turn every other `«v»` marker into a `?` parameter (text order), returning the
/// SQL and the bound values.
fn bind_markers(sql: &str, params_mask: u64) -> (String, Vec<V>) {
    let mut out = String::new();
    let mut binds = Vec::new();
    let mut rest = sql;
    let mut n = 0;
    while let Some(start) = rest.find('«') {
        out.push_str(&rest[..start]);
        let after = &rest[start + '«'.len_utf8()..];
        let end = after.find('»').expect("closed marker");
        let literal = &after[..end];
        if params_mask >> (n % 64) & 1 == 1 {
            out.push('?');
            binds.push(parse_literal(literal));
        } else {
            out.push_str(literal);
        }
        n += 1;
        rest = &after[end + '»'.len_utf8()..];
    }
    out.push_str(rest);
    (out, binds)
}

fn parse_literal(s: &str) -> V {
    if s == "NULL" {
        V::Null
    } else if let Some(t) = s.strip_prefix('\'') {
        V::Text(t.trim_end_matches('\'').into())
    } else {
        V::Int(s.parse().expect("int literal"))
    }
}

/// A single-row change.
#[derive(Debug, Clone)]
enum Change {
    Insert(&'static str, Vec<V>),
    Update(&'static str, i64, usize, V),
    Delete(&'static str, i64),
}

fn change() -> impl Strategy<Value = Change> {
    let table = prop::sample::select(&["agent", "message"][..]);
    table.prop_flat_map(|t| {
        let cols = columns(t);
        let insert = cols[1..]
            .iter()
            .map(|c| value_for(c))
            .collect::<Vec<_>>()
            .prop_map(move |mut r| {
                r.insert(0, V::Int(100));
                Change::Insert(t, r)
            });
        let update = (1i64..=5, 0..cols.len())
            .prop_flat_map(move |(id, c)| (Just(id), Just(c), value_for(cols[c])))
            .prop_map(move |(id, c, v)| Change::Update(t, id, c, v));
        let delete = (1i64..=5).prop_map(move |id| Change::Delete(t, id));
        prop_oneof![insert, update, delete]
    })
}

fn resolve(v: &ValueRef, binds: &[V]) -> V {
    match v {
        ValueRef::Param(p) => binds
            .get(p.index - 1)
            .cloned()
            .expect("param index in range"),
        ValueRef::Literal(Literal::Number(n)) => V::Int(n.parse().expect("int")),
        ValueRef::Literal(Literal::String(s)) => V::Text(s.clone()),
        ValueRef::Literal(Literal::Bool(b)) => V::Int(i64::from(*b)),
        ValueRef::Literal(Literal::Null) => V::Null,
    }
}

/// The design's rule: can this change (old and new row) affect the query?
fn may_affect(
    a: &StatementAnalysis,
    binds: &[V],
    table: &str,
    old: Option<&[V]>,
    new: Option<&[V]>,
) -> bool {
    if a.unknown.is_some() {
        return true;
    }
    let cols = columns(table);
    a.reads
        .iter()
        .filter(|r| r.table == table)
        .any(|r| match &r.filter {
            RowFilter::All => true,
            RowFilter::Keys(keys) => [old, new].into_iter().flatten().any(|row| {
                keys.iter().all(|k| {
                    let Some(i) = cols.iter().position(|c| *c == k.column) else {
                        return true;
                    };
                    k.values.iter().any(|v| resolve(v, binds) == row[i])
                })
            }),
        })
}

async fn setup(agents: &[Vec<V>], messages: &[Vec<V>]) -> SqliteConnection {
    let mut db = SqliteConnection::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    sqlx::raw_sql("CREATE TABLE agent (id INTEGER, org INTEGER, kind TEXT, parent_id INTEGER); CREATE TABLE message (id INTEGER, agent_id INTEGER, kind TEXT);")
        .execute(&mut db)
        .await
        .expect("schema");
    for (table, rows) in [("agent", agents), ("message", messages)] {
        for row in rows {
            let values: Vec<_> = row.iter().map(V::sql).collect();
            let sql = format!("INSERT INTO {table} VALUES ({})", values.join(", "));
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut db)
                .await
                .expect("insert");
        }
    }
    db
}

async fn run(
    db: &mut SqliteConnection,
    sql: &str,
    binds: &[V],
) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for b in binds {
        q = match b {
            V::Int(i) => q.bind(*i),
            V::Text(s) => q.bind(s.clone()),
            V::Null => q.bind(None::<i64>),
        };
    }
    let rows = q.fetch_all(&mut *db).await?;
    let mut out: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    r.try_get::<Option<String>, _>(i)
                        .ok()
                        .flatten()
                        .or_else(|| r.try_get::<i64, _>(i).ok().map(|n| n.to_string()))
                })
                .collect()
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Old and new row of a change, given the table's current rows.
fn change_rows(
    change: &Change,
    agents: &[Vec<V>],
    messages: &[Vec<V>],
) -> (&'static str, Option<Vec<V>>, Option<Vec<V>>, String) {
    let rows_of = |t: &str| if t == "agent" { agents } else { messages };
    match change {
        Change::Insert(t, row) => {
            let values: Vec<_> = row.iter().map(V::sql).collect();
            (
                t,
                None,
                Some(row.clone()),
                format!("INSERT INTO {t} VALUES ({})", values.join(", ")),
            )
        }
        Change::Update(t, id, c, v) => {
            let old = rows_of(t).iter().find(|r| r[0] == V::Int(*id)).cloned();
            let new = old.clone().map(|mut r| {
                r[*c] = v.clone();
                r
            });
            (
                t,
                old,
                new,
                format!(
                    "UPDATE {t} SET {} = {} WHERE id = {id}",
                    columns(t)[*c],
                    v.sql()
                ),
            )
        }
        Change::Delete(t, id) => {
            let old = rows_of(t).iter().find(|r| r[0] == V::Int(*id)).cloned();
            (t, old, None, format!("DELETE FROM {t} WHERE id = {id}"))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn unaffected_changes_never_change_the_result(
        raw in query(),
        mask in any::<u64>(),
        agents in rows("agent"),
        messages in rows("message"),
        change in change(),
    ) {
        let (sql, binds) = bind_markers(&raw, mask);
        let a = analyze(&sql, Dialect::Sqlite);
        prop_assert!(a.unknown.is_none(), "{sql}: {a:?}");
        let (table, old, new, write) = change_rows(&change, &agents, &messages);
        if may_affect(&a, &binds, table, old.as_deref(), new.as_deref()) {
            return Ok(());
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let mut db = setup(&agents, &messages).await;
            let Ok(before) = run(&mut db, &sql, &binds).await else {
                // Not valid SQLite (e.g. an ambiguous column): nothing to check.
                return Ok(());
            };
            sqlx::raw_sql(sqlx::AssertSqlSafe(write.clone())).execute(&mut db).await.expect("change");
            let after = run(&mut db, &sql, &binds).await.expect("query ran before");
            prop_assert_eq!(
                &before, &after,
                "UNDER-INVALIDATION: {} with binds {:?}\nchange: {}\nanalysis: {:?}", sql, binds, write, a
            );
            Ok(())
        })?;
    }
}

fn write_statement() -> impl Strategy<Value = String> {
    prop_oneof![
        (text_value(), condition(false))
            .prop_map(|(v, c)| format!("UPDATE agent AS a SET kind = {} WHERE {c}", marked(&v))),
        (int_value(), condition(false)).prop_map(|(v, c)| {
            format!(
                "UPDATE agent AS a SET org = {}, parent_id = parent_id + 1 WHERE {c}",
                marked(&v)
            )
        }),
        condition(false).prop_map(|c| format!("DELETE FROM agent AS a WHERE {c}")),
    ]
}

fn row_matches(filter: &RowFilter, row: &[V], binds: &[V]) -> bool {
    match filter {
        RowFilter::All => true,
        RowFilter::Keys(keys) => keys.iter().all(|k| {
            let Some(i) = AGENT.iter().position(|c| *c == k.column) else {
                return true;
            };
            k.values.iter().any(|v| resolve(v, binds) == row[i])
        }),
    }
}

async fn agent_rows(db: &mut SqliteConnection) -> Vec<Vec<V>> {
    let rows = sqlx::query("SELECT id, org, kind, parent_id FROM agent ORDER BY id")
        .fetch_all(&mut *db)
        .await
        .expect("rows");
    rows.iter()
        .map(|r| {
            let int = |i: usize| {
                r.try_get::<Option<i64>, _>(i)
                    .expect("int")
                    .map_or(V::Null, V::Int)
            };
            let kind = r
                .try_get::<Option<String>, _>(2)
                .expect("text")
                .map_or(V::Null, V::Text);
            vec![int(0), int(1), kind, int(3)]
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Every row an UPDATE / DELETE actually changes matches the analysed write
    /// filter, and assigned parameters and literals are the values written.
    #[test]
    fn write_filters_cover_every_changed_row(
        raw in write_statement(),
        mask in any::<u64>(),
        agents in rows("agent"),
        messages in rows("message"),
    ) {
        let (sql, binds) = bind_markers(&raw, mask);
        let a = analyze(&sql, Dialect::Sqlite);
        prop_assert!(a.unknown.is_none(), "{sql}: {a:?}");
        prop_assert_eq!(a.writes.len(), 1, "{}: {:?}", sql, a);
        let w = a.writes[0].clone();
        prop_assert_eq!(&w.table, "agent");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let mut db = setup(&agents, &messages).await;
            let before = agent_rows(&mut db).await;
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for b in &binds {
                q = match b {
                    V::Int(i) => q.bind(*i),
                    V::Text(s) => q.bind(s.clone()),
                    V::Null => q.bind(None::<i64>),
                };
            }
            q.execute(&mut db).await.expect("write");
            let after = agent_rows(&mut db).await;
            for old in &before {
                let new = after.iter().find(|r| r[0] == old[0]);
                if new == Some(old) {
                    continue;
                }
                prop_assert!(
                    row_matches(&w.filter, old, &binds),
                    "UNDER-INVALIDATION: {} with binds {:?} changed {:?} -> {:?}, outside the filter {:?}",
                    sql, binds, old, new, w.filter
                );
                if let Some(new) = new {
                    for set in &w.set {
                        let i = AGENT.iter().position(|c| *c == set.column).expect("agent column");
                        if let Some(v) = &set.value {
                            prop_assert_eq!(&resolve(v, &binds), &new[i], "{} set {}", sql, set.column);
                        }
                    }
                }
            }
            Ok(())
        })?;
    }
}

/// A value as the runtime compares keys: numbers (and numeric text) by value,
/// other text as written, NULL apart.
fn canonical(v: &V) -> String {
    match v {
        V::Int(i) => format!("n{}", *i as f64),
        V::Text(t) => match t.trim().parse::<f64>() {
            Ok(n) => format!("n{n}"),
            Err(_) => format!("t{t}"),
        },
        V::Null => "null".into(),
    }
}

/// Casts to text keep their key, and every row SQLite selects through them matches
/// that key as the runtime compares values, whatever the column's affinity and the
/// storage class of the row's value.
#[test]
fn cast_keys_cover_every_row_sqlite_selects() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut db = SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("sqlite");
        sqlx::raw_sql(
            "CREATE TABLE t (i INTEGER, s TEXT, n); \
             INSERT INTO t VALUES (1, '1', 1), (2, ' 2', '2'), (3, '03', 3.0), \
             (4, 'a', 'a'), (5, 'A', 'A'), (NULL, NULL, NULL), (6, '6.0', '06'), (7, '7', 7.5);",
        )
        .execute(&mut db)
        .await
        .expect("schema");
        let binds = [
            V::Int(1),
            V::Int(2),
            V::Int(3),
            V::Int(7),
            V::Text("1".into()),
            V::Text("2".into()),
            V::Text(" 2".into()),
            V::Text("03".into()),
            V::Text("3".into()),
            V::Text("a".into()),
            V::Text("A".into()),
            V::Text("06".into()),
            V::Text("6".into()),
            V::Text("7.5".into()),
            V::Null,
        ];
        let mut checked = 0;
        for column in ["i", "s", "n"] {
            for pred in [
                format!("CAST({column} AS TEXT) = ?"),
                format!("{column} = CAST(? AS TEXT)"),
                format!("CAST({column} AS VARCHAR) = CAST(? AS TEXT)"),
                format!("CAST({column} AS TEXT) IN (CAST(? AS CHAR))"),
            ] {
                let sql = format!("SELECT quote({column}) FROM t WHERE {pred}");
                let a = analyze(&sql, Dialect::Sqlite);
                let RowFilter::Keys(keys) = &a.reads[0].filter else {
                    panic!("{sql}: the cast should keep the key: {a:?}");
                };
                assert_eq!(keys.len(), 1, "{sql}");
                assert_eq!(keys[0].column, column, "{sql}");
                for bind in &binds {
                    let bound = [bind.clone()];
                    let accepted: Vec<String> = keys[0]
                        .values
                        .iter()
                        .map(|v| canonical(&resolve(v, &bound)))
                        .collect();
                    let rows = run(&mut db, &sql, &bound).await.expect("query");
                    for row in rows {
                        checked += 1;
                        let value = row[0].as_deref().map_or(V::Null, parse_quoted);
                        assert!(
                            accepted.contains(&canonical(&value)),
                            "UNDER-INVALIDATION: {sql} with {bind:?} selects {value:?}, key {accepted:?}"
                        );
                    }
                }
            }
        }
        assert!(checked > 50, "the cases select rows: {checked}");
    });
}

/// A value printed by SQLite's `quote()`.
fn parse_quoted(s: &str) -> V {
    if s == "NULL" {
        return V::Null;
    }
    match s.strip_prefix('\'') {
        Some(t) => V::Text(t.trim_end_matches('\'').into()),
        None => V::Text(s.into()),
    }
}
