//! Soundness of the read-set / change-set matcher, relation expansion and the index.

use reactive_codegen::sql::{Dialect, Param, analyze};
use reactive_runtime::types::{
    CacheKey, ChangeSet, Conjunction, Index, KeyValue, ReadSet, RelationEdge, Relations, RowChange,
};
use serde_json::json;

fn kv(v: serde_json::Value) -> KeyValue {
    KeyValue::from_json(&v, Dialect::Postgres).expect("scalar")
}

/// Resolves `$N` to `values[N-1]`.
fn params(
    values: &[serde_json::Value],
    dialect: Dialect,
) -> impl Fn(&Param) -> Option<KeyValue> + '_ {
    move |p: &Param| {
        values
            .get(p.index - 1)
            .and_then(|v| KeyValue::from_json(v, dialect))
    }
}

fn read(sql: &str, values: &[serde_json::Value]) -> ReadSet {
    ReadSet::from_statement(
        &analyze(sql, Dialect::Postgres),
        &params(values, Dialect::Postgres),
        Dialect::Postgres,
    )
}

fn write(sql: &str, values: &[serde_json::Value]) -> ChangeSet {
    ChangeSet::from_statement(
        &analyze(sql, Dialect::Postgres),
        &params(values, Dialect::Postgres),
        Dialect::Postgres,
    )
}

#[test]
fn same_key_matches_other_key_does_not() {
    let q = read(
        "SELECT * FROM agent WHERE organization_id = $1",
        &[json!(1)],
    );
    assert!(q.is_affected_by(&write(
        "INSERT INTO agent (organization_id, name) VALUES ($1, $2)",
        &[json!(1), json!("a")]
    )));
    assert!(!q.is_affected_by(&write(
        "INSERT INTO agent (organization_id, name) VALUES ($1, $2)",
        &[json!(2), json!("a")]
    )));
    assert!(q.is_affected_by(&write(
        "DELETE FROM agent WHERE organization_id = $1",
        &[json!("1")]
    )));
    assert!(!q.is_affected_by(&write(
        "DELETE FROM agent WHERE organization_id = $1",
        &[json!(3)]
    )));
    assert!(
        !q.is_affected_by(&write(
            "DELETE FROM memory WHERE organization_id = $1",
            &[json!(1)]
        )),
        "other table"
    );
}

#[test]
fn unknown_columns_match_anything() {
    let q = read(
        "SELECT * FROM agent WHERE organization_id = $1",
        &[json!(1)],
    );
    // The deleted row's organization is not known: it may have been in org 1.
    assert!(q.is_affected_by(&write("DELETE FROM agent WHERE id = $1", &[json!(5)])));
    // An unresolved parameter is unknown too.
    assert!(q.is_affected_by(&write("DELETE FROM agent WHERE organization_id = $1", &[])));
    // An insert that does not list the column.
    assert!(q.is_affected_by(&write(
        "INSERT INTO agent (name) VALUES ($1)",
        &[json!("x")]
    )));
    // A query with an unknown parameter reads the whole table.
    let any = read("SELECT * FROM agent WHERE organization_id = $1", &[]);
    assert!(any.is_affected_by(&write(
        "DELETE FROM agent WHERE organization_id = $1",
        &[json!(99)]
    )));
}

#[test]
fn update_moving_a_row_between_keys_affects_both_when_old_value_known() {
    let org1 = read(
        "SELECT * FROM agent WHERE organization_id = $1",
        &[json!(1)],
    );
    let org2 = read(
        "SELECT * FROM agent WHERE organization_id = $1",
        &[json!(2)],
    );
    let org3 = read(
        "SELECT * FROM agent WHERE organization_id = $1",
        &[json!(3)],
    );
    // Filter on the old value, set the new one: both are known.
    let moved = write(
        "UPDATE agent SET organization_id = $2 WHERE organization_id = $1",
        &[json!(1), json!(2)],
    );
    assert!(org1.is_affected_by(&moved));
    assert!(org2.is_affected_by(&moved));
    assert!(!org3.is_affected_by(&moved));
    // By id: the old organization is unknown, so every organization's query is affected.
    let by_id = write(
        "UPDATE agent SET organization_id = $2 WHERE id = $1",
        &[json!(7), json!(2)],
    );
    assert!(org1.is_affected_by(&by_id) && org3.is_affected_by(&by_id));
    // The db layer knows old and new values (RETURNING / prior read): precise again.
    let precise = ChangeSet::empty().with_row(
        "agent",
        RowChange::whole()
            .with("id", kv(json!(7)))
            .with_values("organization_id", [kv(json!(1)), kv(json!(2))]),
    );
    assert!(org1.is_affected_by(&precise) && org2.is_affected_by(&precise));
    assert!(!org3.is_affected_by(&precise));
}

#[test]
fn conjunctions_need_every_column_to_agree() {
    let q = read(
        "SELECT * FROM message WHERE organization_id = $1 AND from_agent_id = $2",
        &[json!(1), json!(10)],
    );
    assert!(q.is_affected_by(&write(
        "INSERT INTO message (organization_id, from_agent_id, body) VALUES ($1, $2, $3)",
        &[json!(1), json!(10), json!("hi")]
    )));
    assert!(!q.is_affected_by(&write(
        "INSERT INTO message (organization_id, from_agent_id, body) VALUES ($1, $2, $3)",
        &[json!(1), json!(11), json!("hi")]
    )));
    // Unknown on one column, equal on the other.
    assert!(q.is_affected_by(&write(
        "DELETE FROM message WHERE from_agent_id = $1",
        &[json!(10)]
    )));
}

#[test]
fn everything_on_either_side_matches() {
    let q = read(
        "SELECT * FROM agent WHERE organization_id = $1",
        &[json!(1)],
    );
    assert!(q.is_affected_by(&write("DROP TABLE agent", &[])));
    assert!(q.is_affected_by(&write("not sql at all", &[])));
    assert!(q.is_affected_by(&ChangeSet::everything()));
    let unknown = read("this is not sql", &[]);
    assert!(unknown.is_everything());
    assert!(unknown.is_affected_by(&write("DELETE FROM tool WHERE id = $1", &[json!(1)])));
    assert!(
        !ReadSet::empty().is_affected_by(&ChangeSet::everything()),
        "a constant query reads nothing"
    );
    assert!(!q.is_affected_by(&ChangeSet::empty()));
}

#[test]
fn in_lists_and_type_erasure() {
    let q = read(
        "SELECT * FROM agent WHERE id IN ($1, $2)",
        &[json!(1), json!(2)],
    );
    assert!(q.is_affected_by(&write("DELETE FROM agent WHERE id = $1", &[json!("2")])));
    assert!(
        q.is_affected_by(&write("DELETE FROM agent WHERE id = 1", &[])),
        "literal 1 meets bound 1"
    );
    assert!(!q.is_affected_by(&write("DELETE FROM agent WHERE id = $1", &[json!(3)])));
}

#[test]
fn mysql_string_keys_fold_case_and_trailing_spaces() {
    let d = Dialect::MySql;
    let vals = [json!("Acme")];
    let q = ReadSet::from_statement(
        &analyze("SELECT * FROM organization WHERE slug = ?", d),
        &params(&vals, d),
        d,
    );
    let vals2 = [json!("ACME  ")];
    let w = ChangeSet::from_statement(
        &analyze("DELETE FROM organization WHERE slug = ?", d),
        &params(&vals2, d),
        d,
    );
    assert!(q.is_affected_by(&w), "MySQL compares 'Acme' = 'ACME  '");
    let d = Dialect::Postgres;
    let q = ReadSet::from_statement(
        &analyze("SELECT * FROM organization WHERE slug = $1", d),
        &params(&vals, d),
        d,
    );
    let w = ChangeSet::from_statement(
        &analyze("DELETE FROM organization WHERE slug = $1", d),
        &params(&vals2, d),
        d,
    );
    assert!(!q.is_affected_by(&w), "PostgreSQL does not");
}

fn edges() -> Relations {
    Relations::from_edges([
        RelationEdge::new("agent", "message", Some("from_agent_id")),
        RelationEdge::new("agent", "organization", None),
    ])
}

#[test]
fn relation_edges_expand_changes_transitively() {
    let messages_of_7 = ReadSet::empty().with(
        "message",
        Conjunction::whole().with("from_agent_id", kv(json!(7))),
    );
    let messages_of_8 = ReadSet::empty().with(
        "message",
        Conjunction::whole().with("from_agent_id", kv(json!(8))),
    );
    let orgs = ReadSet::tables(["organization"]);
    // Relations propagate what foreign keys do: deletes and key changes.
    let change = write("DELETE FROM agent WHERE id = $1", &[json!(7)]);
    assert!(
        !messages_of_7.is_affected_by(&change),
        "without relations the message query is untouched"
    );
    let rename = write(
        "UPDATE agent SET name = $2 WHERE id = $1",
        &[json!(7), json!("x")],
    );
    assert!(
        !messages_of_7.is_affected_by(&edges().expand(&rename)),
        "an update of other columns propagates nowhere"
    );
    let new_id = write(
        "UPDATE agent SET id = $2 WHERE id = $1",
        &[json!(7), json!(9)],
    );
    assert!(
        messages_of_7.is_affected_by(&edges().expand(&new_id)),
        "an update of the key column propagates"
    );
    let expanded = edges().expand(&change);
    assert!(messages_of_7.is_affected_by(&expanded));
    assert!(!messages_of_8.is_affected_by(&expanded));
    assert!(
        orgs.is_affected_by(&expanded),
        "bare-table edge: the whole table"
    );
    let reasons = messages_of_7.reasons(&expanded, 8);
    assert_eq!(
        reasons[0]
            .relation
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("agent.id -> message.from_agent_id")
    );
    // Unknown agent id: every message row.
    let unknown_id = edges().expand(&write("DELETE FROM agent WHERE name = $1", &[json!("x")]));
    assert!(messages_of_8.is_affected_by(&unknown_id));
    // Transitive: the deleted agent's messages are deleted, and what hangs off them.
    let chain = Relations::from_edges([
        RelationEdge::new("agent", "message", Some("from_agent_id")),
        RelationEdge::new("message", "tool", None),
    ]);
    assert!(ReadSet::tables(["tool"]).is_affected_by(&chain.expand(&change)));
    // ... but not what hangs off a rename.
    assert!(!ReadSet::tables(["tool"]).is_affected_by(&chain.expand(&rename)));
}

#[test]
fn a_three_level_cascade_reaches_the_grandchildren_only_of_the_deleted_row() {
    let edges = Relations::from_edges([
        RelationEdge::new("organization", "project", Some("organization_id")),
        RelationEdge::new("project", "task", Some("project_id")),
        RelationEdge::new("task", "comment", Some("task_id")),
    ]);
    let tasks_of_project = |p: i64| {
        ReadSet::empty().with(
            "task",
            Conjunction::whole().with("project_id", kv(json!(p))),
        )
    };
    let delete_org = write("DELETE FROM organization WHERE id = $1", &[json!(1)]);
    let expanded = edges.expand(&delete_org);
    // The projects of organization 1 are not known by id: every task may be gone.
    assert!(tasks_of_project(10).is_affected_by(&expanded));
    assert!(ReadSet::tables(["comment"]).is_affected_by(&expanded));
    // A writer that read the deleted projects (the interceptor's cascade pre-read)
    // lists them with their ids: only their tasks are reached.
    let edge = RelationEdge::new("organization", "project", Some("organization_id"));
    let mut precise = delete_org.clone();
    precise
        .tables
        .get_mut("organization")
        .expect("organization")[0]
        .resolved
        .insert(edge.clone());
    let mut project = RowChange::whole()
        .with("id", kv(json!(10)))
        .with("organization_id", kv(json!(1)))
        .via(edge);
    project.op = reactive_runtime::engine::RowOp::Delete;
    precise.push_row("project", project);
    let expanded = edges.expand(&precise);
    assert!(tasks_of_project(10).is_affected_by(&expanded));
    assert!(!tasks_of_project(11).is_affected_by(&expanded));
    // A cycle of edges ends.
    let cycle = Relations::from_edges([
        RelationEdge::new("a", "b", Some("a_id")),
        RelationEdge::new("b", "a", Some("b_id")),
    ]);
    let expanded = cycle.expand(&write("DELETE FROM a WHERE id = $1", &[json!(1)]));
    assert!(!expanded.is_everything());
    assert!(expanded.rows("b").is_some());
}

#[test]
fn model_read_sets_use_binding_values() {
    use reactive_codegen::model::*;
    let model: FunctionModel = serde_json::from_value(json!({
        "name": "agents.findMany", "rust_name": "agents_find_many", "kind": "query", "requires_ack": false,
        "dialect": "postgres",
        "bindings": [{"source": "input.organization_id", "path": ["organization_id"]}],
        "dependencies": [
            {"table": "agent", "keys": [{"column": "organization_id", "values": [{"binding": 0}]}]},
            {"table": "tool", "keys": [{"column": "kind", "values": [{"literal": {"type": "string", "value": "x"}}]}]}
        ],
        "invalidates": [], "statements": [], "calls": []
    }))
    .expect("model");
    let rs = ReadSet::from_model(&model, &[json!(5)]);
    assert!(rs.is_affected_by(&write(
        "DELETE FROM agent WHERE organization_id = $1",
        &[json!(5)]
    )));
    assert!(!rs.is_affected_by(&write(
        "DELETE FROM agent WHERE organization_id = $1",
        &[json!(6)]
    )));
    assert!(rs.is_affected_by(&write("DELETE FROM tool WHERE kind = 'x'", &[])));
    assert!(!rs.is_affected_by(&write("DELETE FROM tool WHERE kind = 'y'", &[])));
    // A missing or non-scalar binding widens to the whole table.
    let wide = ReadSet::from_model(&model, &[json!([1, 2])]);
    assert!(wide.is_affected_by(&write(
        "DELETE FROM agent WHERE organization_id = $1",
        &[json!(6)]
    )));
}

#[test]
fn index_finds_exactly_what_the_matcher_finds() {
    let mut index: Index<CacheKey> = Index::new();
    let mut all = Vec::new();
    for org in 0..50 {
        let rs = read(
            "SELECT * FROM agent WHERE organization_id = $1",
            &[json!(org)],
        );
        all.push(rs.clone());
        index.insert(org, CacheKey::new(None, "agents", org.to_string()), rs);
    }
    let by_id = ReadSet::empty().with("agent", Conjunction::whole().with("id", kv(json!(3))));
    all.push(by_id.clone());
    index.insert(100, CacheKey::new(None, "agent", "3"), by_id);
    all.push(ReadSet::tables(["agent"]));
    index.insert(
        101,
        CacheKey::new(None, "all", "{}"),
        ReadSet::tables(["agent"]),
    );
    all.push(ReadSet::everything());
    index.insert(
        102,
        CacheKey::new(None, "everything", "{}"),
        ReadSet::everything(),
    );

    let ids = [
        0u64, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
        24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46,
        47, 48, 49, 100, 101, 102,
    ];
    let changes = [
        write("DELETE FROM agent WHERE organization_id = $1", &[json!(7)]),
        write("DELETE FROM agent WHERE id = $1", &[json!(3)]),
        write(
            "DELETE FROM agent WHERE id = $1 AND organization_id = $2",
            &[json!(3), json!(9)],
        ),
        write(
            "UPDATE agent SET organization_id = $2 WHERE organization_id = $1",
            &[json!(1), json!(2)],
        ),
        write("DELETE FROM tool WHERE id = 1", &[]),
        ChangeSet::everything(),
    ];
    for change in &changes {
        let expected: Vec<u64> = ids
            .iter()
            .zip(&all)
            .filter(|(_, rs)| rs.is_affected_by(change))
            .map(|(id, _)| *id)
            .collect();
        let found: Vec<u64> = index
            .affected(change)
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        assert_eq!(found, expected, "change {change:?}");
    }
    // Precision: a change for org 7 visits org 7's entry and the whole-table ones, not the other 49.
    assert_eq!(
        index.candidate_count(&changes[0]),
        3 + 1,
        "org 7 + by-id (column unknown in change) + whole + everything"
    );
    index.remove(7);
    assert!(
        index
            .affected(&changes[0])
            .iter()
            .all(|(id, _, _)| *id != 7)
    );
}

inventory::submit! {
    reactive_runtime::engine::RelationsDef { edges: &[("Agent", "id", "memory", Some("Agent_Id")), ("agent", "id", "tool", None)] }
}

#[test]
fn registered_relations_come_from_inventory() {
    let registered = Relations::registered();
    assert!(
        registered
            .edges()
            .contains(&RelationEdge::new("agent", "memory", Some("agent_id"))),
        "names are lower-cased"
    );
    assert!(
        registered
            .edges()
            .contains(&RelationEdge::new("agent", "tool", None))
    );
    let expanded = registered.expand(&write("DELETE FROM agent WHERE id = $1", &[json!(4)]));
    let memories_of_4 = ReadSet::empty().with(
        "memory",
        Conjunction::whole().with("agent_id", kv(json!(4))),
    );
    assert!(memories_of_4.is_affected_by(&expanded));
}
