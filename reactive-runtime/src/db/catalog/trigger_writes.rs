//! What a table's triggers may write besides the rows a statement names.
//!
//! A trigger runs SQL the analyser never sees: an `AFTER INSERT` trigger keeping a
//! count, an audit trigger copying rows to a log (a PostgreSQL rule's actions too: read
//! the same way). Its body is in the catalog (PostgreSQL: the trigger function's
//! source; MySQL and SQLite: the trigger's own statement), and a body can write only
//! tables it names, unless it builds SQL at run time (`EXECUTE`), calls a routine of
//! the database's own (`CALL`, or a listed routine's name: it may write anything), or
//! is written in another language than SQL or PL/pgSQL. So a write to a table with
//! triggers also changes, whole, every table whose name appears as a word in one of its
//! triggers' bodies, and everything in those other cases. A name in a comment or a
//! string, or a table only read, is a false positive: wider, never stale.

use std::collections::{BTreeSet, HashMap, HashSet};

use reactive_codegen::sql::Dialect;

use super::queries::{routines_query, trigger_bodies_query};
use super::rows::text_rows;
use crate::db::backend::Backend;

/// What the triggers of one table may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TriggerWrites {
    /// Anything (dynamic SQL, a routine call, another language, or the catalog could
    /// not be read).
    Everything,
    /// These tables (normalized names), any of their rows.
    Tables(BTreeSet<String>),
}

/// Table (normalized) → what its triggers may write; `"*"` stands for every table.
pub(crate) type TriggerTargets = HashMap<String, TriggerWrites>;

/// Reads every trigger's body and the database's own routines, and works out what
/// each table's triggers may write among `relations` (tables and views, normalized).
pub(super) async fn read_trigger_writes<DB: Backend>(
    pool: &sqlx::Pool<DB>,
    dialect: Dialect,
    relations: &HashSet<String>,
) -> Result<TriggerTargets, sqlx::Error> {
    let bodies = text_rows(pool, trigger_bodies_query(dialect), 3).await?;
    if bodies.is_empty() {
        return Ok(TriggerTargets::new());
    }
    let routines: HashSet<String> = match routines_query(dialect) {
        Some(sql) => text_rows(pool, sql, 1)
            .await?
            .into_iter()
            .filter_map(|row| row.into_iter().next().flatten())
            .map(|name| name.to_lowercase())
            .collect(),
        None => HashSet::new(),
    };
    let mut out = TriggerTargets::new();
    for row in bodies {
        let [table, body, language] = [0, 1, 2].map(|i| row.get(i).cloned().flatten());
        let Some(table) = table else { continue };
        let writes = match body {
            Some(body) => writes_of(&body, language.as_deref(), relations, &routines),
            None => TriggerWrites::Everything,
        };
        merge(&mut out, table.to_lowercase(), writes);
    }
    Ok(out)
}

fn merge(out: &mut TriggerTargets, table: String, writes: TriggerWrites) {
    let entry = out
        .entry(table)
        .or_insert_with(|| TriggerWrites::Tables(BTreeSet::new()));
    match (entry, writes) {
        (TriggerWrites::Everything, _) => {}
        (entry, TriggerWrites::Everything) => *entry = TriggerWrites::Everything,
        (TriggerWrites::Tables(have), TriggerWrites::Tables(more)) => have.extend(more),
    }
}

/// What one trigger body may write (see the module docs).
pub(super) fn writes_of(
    body: &str,
    language: Option<&str>,
    relations: &HashSet<String>,
    routines: &HashSet<String>,
) -> TriggerWrites {
    if !matches!(
        language.map(str::to_ascii_lowercase).as_deref(),
        None | Some("sql" | "plpgsql")
    ) {
        return TriggerWrites::Everything;
    }
    let mut tables = BTreeSet::new();
    for word in body
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        // `CALL` too: the routines a role may not see are not listed (MySQL).
        if word == "execute" || word == "call" || routines.contains(&word) {
            return TriggerWrites::Everything;
        }
        if relations.contains(&word) {
            tables.insert(word);
        }
    }
    TriggerWrites::Tables(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> HashSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_body_writes_the_tables_it_names() {
        let relations = set(&["ticket", "counter", "audit_log", "org"]);
        let none = HashSet::new();
        let plpgsql = "BEGIN
              INSERT INTO Counter (org_id, n) VALUES (NEW.org_id, 1)
                ON CONFLICT (org_id) DO UPDATE SET n = counter.n + 1;
              INSERT INTO public.\"audit_log\" (what) VALUES ('ticket');
              RETURN NULL;
            END";
        assert_eq!(
            writes_of(plpgsql, Some("plpgsql"), &relations, &none),
            TriggerWrites::Tables(["audit_log", "counter", "ticket"].map(str::to_owned).into())
        );
        // SQLite / MySQL: the trigger's statement, no language.
        assert_eq!(
            writes_of(
                "BEGIN UPDATE counter SET n = n + 1 WHERE id = NEW.counter_id; END",
                None,
                &relations,
                &none,
            ),
            TriggerWrites::Tables(["counter".to_owned()].into())
        );
        // A BEFORE trigger that only sets NEW names no table.
        assert_eq!(
            writes_of(
                "BEGIN NEW.at := now(); RETURN NEW; END",
                Some("plpgsql"),
                &relations,
                &none
            ),
            TriggerWrites::Tables(BTreeSet::new())
        );
    }

    #[test]
    fn dynamic_sql_routines_and_other_languages_write_anything() {
        let relations = set(&["counter"]);
        let routines = set(&["bump_counter"]);
        for (body, language) in [
            (
                "BEGIN EXECUTE format('UPDATE %I SET n = n + 1', TG_ARGV[0]); RETURN NULL; END",
                Some("plpgsql"),
            ),
            (
                "BEGIN PERFORM bump_counter(NEW.org_id); RETURN NULL; END",
                Some("plpgsql"),
            ),
            ("CALL bump_counter(NEW.org_id)", None),
            ("BEGIN CALL not_listed(NEW.org_id); END", None),
            (
                "plpy.execute('UPDATE counter SET n = n + 1')",
                Some("plpython3u"),
            ),
            ("counter", Some("c")),
        ] {
            assert_eq!(
                writes_of(body, language, &relations, &routines),
                TriggerWrites::Everything,
                "{body}"
            );
        }
    }

    #[test]
    fn everything_wins_when_a_tables_triggers_are_merged() {
        let mut out = TriggerTargets::new();
        merge(
            &mut out,
            "t".into(),
            TriggerWrites::Tables(["a".to_owned()].into()),
        );
        merge(
            &mut out,
            "t".into(),
            TriggerWrites::Tables(["b".to_owned()].into()),
        );
        assert_eq!(
            out["t"],
            TriggerWrites::Tables(["a", "b"].map(str::to_owned).into())
        );
        merge(&mut out, "t".into(), TriggerWrites::Everything);
        merge(
            &mut out,
            "t".into(),
            TriggerWrites::Tables(["c".to_owned()].into()),
        );
        assert_eq!(out["t"], TriggerWrites::Everything);
    }
}
