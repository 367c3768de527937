//! Reading the trigger's notification payload into a [`FeedNotification`].

use reactive_codegen::sql::Dialect;
use serde::Deserialize;

use crate::types::{ChangeSet, KeyValue, RowChange};

/// One notification of the trigger, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedNotification {
    /// The table (lower-cased, unqualified).
    pub table: String,
    /// `INSERT`, `UPDATE`, `DELETE` or `TRUNCATE`.
    pub operation: String,
    /// The writing session's `application_name` (`None` when empty).
    pub application_name: Option<String>,
    /// `true` when the payload carried no key values (truncate, or too large).
    pub whole_table: bool,
    /// `pg_trigger_depth()` in the trigger: 1 for a row the writing statement changed
    /// itself, more for a row changed by a cascade or another trigger on its behalf.
    pub depth: u32,
    /// When the trigger ran, on the database's clock (`clock_timestamp()`; `None` from
    /// a trigger function of an older version).
    pub written_at: Option<std::time::SystemTime>,
    /// The old row and the new row as row changes of the table.
    pub changes: ChangeSet,
}

#[derive(Deserialize)]
struct Payload {
    t: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    app: Option<String>,
    /// Absent in payloads of a trigger function installed by an older version: 1.
    #[serde(default = "direct")]
    d: u32,
    #[serde(default)]
    ts: Option<f64>,
    #[serde(default)]
    old: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    new: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Reads a payload sent by the trigger (see the `postgres` module docs for its shape).
/// Key values without a key form (arrays, objects) are left unknown.
pub fn parse_payload(payload: &str) -> Result<FeedNotification, serde_json::Error> {
    let p: Payload = serde_json::from_str(payload)?;
    let table = p.t.to_lowercase();
    let mut changes = ChangeSet::empty();
    let whole_table = p.old.is_none() && p.new.is_none();
    if whole_table {
        changes.push_row(&table, RowChange::whole());
    }
    for row in [p.old, p.new].into_iter().flatten() {
        let mut change = RowChange::whole();
        for (column, value) in &row {
            if let Some(key) = KeyValue::from_json(value, Dialect::Postgres) {
                change = change.with(column, key);
            }
        }
        changes.push_row(&table, change);
    }
    Ok(FeedNotification {
        table,
        operation: p.op,
        application_name: p.app.filter(|a| !a.is_empty()),
        whole_table,
        depth: p.d,
        written_at: p
            .ts
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(s)),
        changes,
    })
}

fn direct() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::types::{Conjunction, ReadSet};

    fn kv(s: &str) -> KeyValue {
        KeyValue::from_str(s, Dialect::Postgres)
    }

    #[test]
    fn the_triggers_time_is_read_and_a_missing_or_bad_one_is_none() {
        let n = parse_payload(r#"{"t":"agent","op":"DELETE","ts":1796336326.5,"old":{"id":1}}"#)
            .unwrap();
        let at = n.written_at.expect("the time");
        assert_eq!(
            at.duration_since(std::time::UNIX_EPOCH).unwrap(),
            std::time::Duration::from_millis(1_796_336_326_500)
        );
        let n = parse_payload(r#"{"t":"agent","op":"DELETE","old":{"id":1}}"#).unwrap();
        assert_eq!(n.written_at, None);
        let n = parse_payload(r#"{"t":"agent","op":"DELETE","ts":-5,"old":{"id":1}}"#).unwrap();
        assert_eq!(n.written_at, None);
    }

    #[test]
    fn update_payload_gives_old_and_new_rows() {
        let n = parse_payload(
            r#"{"t":"Agent","op":"UPDATE","app":"psql","old":{"id":1,"organization_id":1},"new":{"id":1,"organization_id":2}}"#,
        )
        .unwrap();
        assert_eq!(n.table, "agent");
        assert_eq!(n.application_name.as_deref(), Some("psql"));
        assert!(!n.whole_table);
        let rows = n.changes.rows("agent").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].values("organization_id").unwrap(),
            &BTreeSet::from([kv("1")])
        );
        assert_eq!(
            rows[1].values("organization_id").unwrap(),
            &BTreeSet::from([kv("2")])
        );
        assert_eq!(rows[1].values("id").unwrap(), &BTreeSet::from([kv("1")]));
    }

    #[test]
    fn payload_without_values_is_the_whole_table() {
        let n = parse_payload(r#"{"t":"agent","op":"TRUNCATE","app":""}"#).unwrap();
        assert!(n.whole_table);
        assert_eq!(n.application_name, None);
        assert_eq!(n.changes.rows("agent").unwrap(), &[RowChange::whole()]);
    }

    #[test]
    fn values_without_key_form_are_unknown() {
        let n =
            parse_payload(r#"{"t":"agent","op":"INSERT","new":{"id":5,"tags":[1,2]}}"#).unwrap();
        let rows = n.changes.rows("agent").unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].values("tags").is_none());
        assert_eq!(rows[0].values("id").unwrap(), &BTreeSet::from([kv("5")]));
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(parse_payload("not json").is_err());
        assert!(parse_payload(r#"{"op":"INSERT"}"#).is_err());
    }

    #[test]
    fn separate_old_and_new_rows_do_not_cross_match() {
        // A query for (org 1, name "b") is not affected by a row moving from
        // (org 1, "a") to (org 2, "b").
        let n = parse_payload(
            r#"{"t":"agent","op":"UPDATE","old":{"organization_id":1,"name":"a"},"new":{"organization_id":2,"name":"b"}}"#,
        )
        .unwrap();
        let read = ReadSet::empty().with(
            "agent",
            Conjunction::whole()
                .with("organization_id", kv("1"))
                .with("name", kv("b")),
        );
        assert!(!read.is_affected_by(&n.changes));
        let org2 = ReadSet::empty().with(
            "agent",
            Conjunction::whole().with("organization_id", kv("2")),
        );
        assert!(org2.is_affected_by(&n.changes));
    }
}
