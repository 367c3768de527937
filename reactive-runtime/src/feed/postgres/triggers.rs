//! The SQL of the trigger function and of each watched table's triggers.

const FUNCTION: &str = "reactive_feed_notify";
pub(super) const ROW_TRIGGER: &str = "reactive_feed_row";
pub(super) const TRUNCATE_TRIGGER: &str = "reactive_feed_truncate";
/// Payloads larger than this are sent without key values (PostgreSQL's limit is 8000).
const MAX_PAYLOAD: usize = 7900;

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The trigger function. Arguments: the channel, the table's name for change sets
/// (not `TG_TABLE_NAME`, which names the partition when the trigger is on a partitioned
/// table), then the key column names.
pub(super) fn function_sql() -> String {
    format!(
        r#"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $reactive$
DECLARE
  keys text[];
  head jsonb;
  body jsonb;
  msg text;
BEGIN
  keys := coalesce(TG_ARGV[2:], ARRAY[]::text[]);
  head := jsonb_build_object('t', TG_ARGV[1], 'op', TG_OP,
                             'app', coalesce(current_setting('application_name', true), ''),
                             'd', pg_trigger_depth(),
                             'ts', extract(epoch FROM clock_timestamp()));
  body := head;
  IF TG_LEVEL = 'ROW' THEN
    IF TG_OP <> 'INSERT' THEN
      body := body || jsonb_build_object('old', (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{{}}'::jsonb)
                                                 FROM jsonb_each(to_jsonb(OLD)) e WHERE e.key = ANY(keys)));
    END IF;
    IF TG_OP <> 'DELETE' THEN
      body := body || jsonb_build_object('new', (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{{}}'::jsonb)
                                                 FROM jsonb_each(to_jsonb(NEW)) e WHERE e.key = ANY(keys)));
    END IF;
  END IF;
  msg := body::text;
  IF octet_length(msg) > {MAX_PAYLOAD} THEN
    msg := head::text;
  END IF;
  PERFORM pg_notify(TG_ARGV[0], msg);
  RETURN NULL;
END
$reactive$"#
    )
}

/// `DROP TRIGGER IF EXISTS` + `CREATE TRIGGER` for the row and truncate triggers.
pub(super) fn trigger_sql(
    relation: &str,
    name: &str,
    channel: &str,
    key_columns: &[String],
) -> Vec<String> {
    let head = format!("{}, {}", quote_literal(channel), quote_literal(name));
    let mut args = vec![head.clone()];
    args.extend(key_columns.iter().map(|c| quote_literal(c)));
    let args = args.join(", ");
    vec![
        format!("DROP TRIGGER IF EXISTS {ROW_TRIGGER} ON {relation}"),
        format!(
            "CREATE TRIGGER {ROW_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {relation} \
             FOR EACH ROW EXECUTE FUNCTION {FUNCTION}({args})"
        ),
        format!("DROP TRIGGER IF EXISTS {TRUNCATE_TRIGGER} ON {relation}"),
        format!(
            "CREATE TRIGGER {TRUNCATE_TRIGGER} AFTER TRUNCATE ON {relation} \
             FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}({head})"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_arguments_are_quoted() {
        let sql = trigger_sql("app.\"Agent\"", "agent", "ch", &["it's".to_owned()]);
        assert!(sql[1].contains("ON app.\"Agent\" FOR EACH ROW"));
        assert!(sql[1].contains("reactive_feed_notify('ch', 'agent', 'it''s')"));
        assert!(sql[3].contains("reactive_feed_notify('ch', 'agent')"));
        assert!(sql[3].contains("AFTER TRUNCATE"));
    }
}
