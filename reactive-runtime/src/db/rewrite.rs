//! SQL text helpers: the MySQL `$N` → `?` placeholder rewrite, and the SQL of the
//! "pre-read" that fetches the current key values of the rows an `UPDATE`/`DELETE`
//! is about to change.

use reactive_codegen::sql::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// Why SQL written with `$N` placeholders can't run on MySQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "MySQL uses `?` placeholders: SQL written with `$N` runs on MySQL only when each `$N` appears \
     once, in ascending order ($1, $2, ...); found {found} in: {sql}"
)]
pub struct PlaceholderError {
    /// The placeholders found, in order.
    pub found: String,
    /// The statement.
    pub sql: String,
}

/// Rewrites `$1, $2, ...` to `?` for MySQL when each `$N` appears exactly once, in
/// ascending order. Quoted strings, quoted identifiers and comments are left alone.
/// `Ok(None)` when the text has no `$N` placeholder (nothing to rewrite).
pub fn mysql_placeholders(sql: &str) -> Result<Option<String>, PlaceholderError> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut found: Vec<usize> = Vec::new();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\\' && q != b'`' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == q {
                        if bytes.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n: usize = sql[start + 1..i].parse().unwrap_or(0);
                found.push(n);
                out.push_str(&sql[copied..start]);
                out.push('?');
                copied = i;
            }
            _ => i += 1,
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    if found.iter().enumerate().any(|(k, &n)| n != k + 1) {
        let found = found
            .iter()
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(PlaceholderError {
            found,
            sql: sql.to_owned(),
        });
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Ok(Some(out))
}

/// The parts of a single-table `UPDATE`/`DELETE` needed to read the rows it will
/// affect: `FROM <table> WHERE <condition>`, the condition's placeholders numbered as
/// in the statement (a read bound with all the statement's arguments runs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhereTemplate {
    /// The table reference as written (`agent`, `agent AS a`, `"Agent"`).
    pub table: String,
    /// The condition with the statement's placeholder numbers (`$N`/`?N`/`?` by
    /// backend), or `None` when the statement has no `WHERE` (every row).
    pub condition: Option<String>,
    /// The condition with its placeholders numbered from 1 in order, for a read bound
    /// with just the arguments `params` lists (when the driver lets us pick them).
    pub compact: Option<String>,
    /// For each placeholder of `condition`, in order: the 1-based index of the
    /// original statement's argument it stands for.
    pub params: Vec<usize>,
    /// The condition has a subquery: it reads rows the pre-read does not lock.
    pub subquery: bool,
}

fn is_kw(t: &Token, kw: Keyword) -> bool {
    matches!(t, Token::Word(w) if w.keyword == kw && w.quote_style.is_none())
}

/// `name(.name)* [[AS] alias]`, where an unquoted alias is not a keyword (so
/// `agent USING org` or `agent JOIN ...` are refused).
fn is_plain_table_ref<'a>(tokens: impl Iterator<Item = &'a Token>) -> bool {
    let tokens: Vec<&Token> = tokens.collect();
    let mut i = 0;
    let word = |t: Option<&&Token>| matches!(t, Some(Token::Word(_)));
    if !word(tokens.get(i)) {
        return false;
    }
    i += 1;
    while matches!(tokens.get(i), Some(Token::Period)) {
        if !word(tokens.get(i + 1)) {
            return false;
        }
        i += 2;
    }
    if tokens.get(i).is_some_and(|t| is_kw(t, Keyword::AS)) {
        i += 1;
        if !word(tokens.get(i)) {
            return false;
        }
    }
    if let Some(Token::Word(alias)) = tokens.get(i) {
        if alias.quote_style.is_none() && alias.keyword != Keyword::NoKeyword {
            return false;
        }
        i += 1;
    }
    i == tokens.len()
}

/// Byte offset of every token's start (plus the text's end), from the tokenizer's
/// line/column (1-based, in characters) locations.
fn token_offsets(sql: &str, tokens: &[TokenWithSpan]) -> Option<Vec<usize>> {
    let mut line_starts = vec![0usize];
    for (i, c) in sql.char_indices() {
        if c == '\n' {
            line_starts.push(i + 1);
        }
    }
    let mut offsets = Vec::with_capacity(tokens.len() + 1);
    for t in tokens {
        let line = usize::try_from(t.span.start.line).ok()?;
        let column = usize::try_from(t.span.start.column).ok()?;
        let start = *line_starts.get(line.checked_sub(1)?)?;
        let byte = sql[start..]
            .char_indices()
            .nth(column.checked_sub(1)?)
            .map(|(b, _)| start + b)?;
        offsets.push(byte);
    }
    offsets.push(sql.len());
    if offsets.windows(2).any(|w| w[0] > w[1]) {
        return None;
    }
    Some(offsets)
}

/// Extracts a [`WhereTemplate`] from a plain single-table `UPDATE ... SET ... WHERE`
/// or `DELETE FROM ... WHERE`. `None` whenever the statement has a shape where the
/// condition alone would not select exactly the affected rows (`WITH`, `FROM`/`USING`/
/// `JOIN` in an update or delete, `ORDER BY`/`LIMIT`, `OR REPLACE`, several statements,
/// named parameters, and on PostgreSQL and MySQL a subquery in the condition): the
/// caller then treats the values as unknown.
///
/// `target` is the backend the pre-read will run on (placeholder syntax); `sql` is
/// the text as sent to that backend (after the MySQL rewrite).
pub fn where_template(sql: &str, target: Dialect) -> Option<WhereTemplate> {
    let tokens = Tokenizer::new(target.parser(), sql)
        .tokenize_with_location()
        .ok()?;
    let offsets = token_offsets(sql, &tokens)?;
    // Significant tokens with their index in `tokens`.
    let sig: Vec<(usize, &Token)> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, t)| (i, &t.token))
        .collect();
    let mut end = sig.len();
    while end > 0 && matches!(sig[end - 1].1, Token::SemiColon) {
        end -= 1;
    }
    let sig = &sig[..end];
    // Several statements, or `:name` / `@name` parameters some dialects tokenize as punctuation.
    if sig
        .iter()
        .any(|(_, t)| matches!(t, Token::SemiColon | Token::Colon | Token::AtSign))
    {
        return None;
    }
    let first = sig.first()?.1;
    // Locate the table reference and the first token after it.
    let (table_from, table_to) = if is_kw(first, Keyword::UPDATE) {
        let set = sig.iter().position(|(_, t)| is_kw(t, Keyword::SET))?;
        (1, set)
    } else if is_kw(first, Keyword::DELETE) {
        if !is_kw(sig.get(1)?.1, Keyword::FROM) {
            return None;
        }
        let stop = sig
            .iter()
            .position(|(_, t)| is_kw(t, Keyword::WHERE) || is_kw(t, Keyword::RETURNING))
            .unwrap_or(sig.len());
        (2, stop)
    } else {
        return None;
    };
    if table_from >= table_to {
        return None;
    }
    // The table reference: `name(.name)*`, optionally `[AS] alias`; nothing else.
    let table_tokens = &sig[table_from..table_to];
    if !is_plain_table_ref(table_tokens.iter().map(|(_, t)| *t)) {
        return None;
    }
    let table = sql
        [offsets[table_tokens[0].0]..offsets[table_tokens[table_tokens.len() - 1].0 + 1]]
        .to_owned();

    // Top-level keywords after the table: find WHERE and the end of its condition.
    let mut depth = 0i32;
    let mut where_at = None;
    let mut cond_end = sig.len();
    for (k, (_, t)) in sig.iter().enumerate().skip(table_to) {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 => {
                if is_kw(t, Keyword::FROM) || is_kw(t, Keyword::USING) || is_kw(t, Keyword::JOIN) {
                    return None;
                }
                if is_kw(t, Keyword::ORDER) || is_kw(t, Keyword::LIMIT) {
                    return None;
                }
                if is_kw(t, Keyword::WHERE) && where_at.is_none() {
                    where_at = Some(k);
                }
                if is_kw(t, Keyword::RETURNING) && where_at.is_some() {
                    cond_end = k;
                    break;
                }
            }
            _ => {}
        }
    }

    // Parameter numbering of the whole statement, to map each placeholder to its argument.
    let mut anonymous = 0usize;
    let mut numbered = false;
    let mut param_of = std::collections::HashMap::new();
    for (i, t) in sig.iter() {
        if let Token::Placeholder(p) = t {
            let index = if p == "?" {
                anonymous += 1;
                anonymous
            } else if let Some(n) = p.strip_prefix('$').or_else(|| p.strip_prefix('?')) {
                numbered = true;
                n.parse::<usize>().ok().filter(|n| *n > 0)?
            } else {
                return None; // named parameters: numbering is the driver's business
            };
            param_of.insert(*i, index);
        }
    }
    if numbered && anonymous > 0 {
        return None;
    }

    let Some(where_at) = where_at else {
        return Some(WhereTemplate {
            table,
            condition: None,
            compact: None,
            params: Vec::new(),
            subquery: false,
        });
    };
    // A subquery that picks *some* rows (`id IN (SELECT ... ORDER BY .. LIMIT 1)`) reads
    // rows the pre-read does not lock: under READ COMMITTED the write's own statement
    // snapshot then readily selects other rows than the pre-read locked, as many of
    // them, so the count check passes with the wrong rows' values. A subquery without a
    // limit (the tenant check `project_id IN (SELECT id FROM project WHERE org = $1)`)
    // is kept: the same count with other rows then needs concurrent writes that move
    // one row out of its result and another in, which PostgreSQL's pre-read catches by
    // the rows' `ctid` (`PreRead::verify_from`; README, Known gaps for MySQL). SQLite
    // holds the write lock from `BEGIN IMMEDIATE`: nothing can commit in between.
    let cond = &sig[where_at..cond_end];
    let subquery = cond.iter().any(|(_, t)| is_kw(t, Keyword::SELECT));
    if target != Dialect::Sqlite
        && subquery
        && cond.iter().any(|(_, t)| {
            [
                Keyword::LIMIT,
                Keyword::OFFSET,
                Keyword::FETCH,
                Keyword::TOP,
            ]
            .iter()
            .any(|k| is_kw(t, *k))
        })
    {
        return None;
    }
    let first_tok = sig.get(where_at + 1)?.0;
    let last_tok = sig.get(cond_end.checked_sub(1)?)?.0;
    if last_tok < first_tok {
        return None;
    }
    let mut condition = String::new();
    // On MySQL/MariaDB the pre-read's `FOR UPDATE` does not lock the rows a subquery
    // reads, which it reads from its snapshot, while the write reads them as they are
    // now: rows moved in and out of the subquery's result meanwhile make the write
    // change other rows than those pre-read, in the same number. Shared locks on the
    // subquery's rows make the pre-read read them as they are now and keep them so
    // until the write's commit.
    let lock_before = if target == Dialect::MySql && subquery {
        subquery_ends(cond)
    } else {
        Vec::new()
    };
    let mut compact = String::new();
    let mut params = Vec::new();
    let mut copied = offsets[first_tok];
    for i in first_tok..=last_tok {
        if lock_before.contains(&i) {
            condition.push_str(&sql[copied..offsets[i]]);
            compact.push_str(&sql[copied..offsets[i]]);
            condition.push_str(" LOCK IN SHARE MODE");
            compact.push_str(" LOCK IN SHARE MODE");
            copied = offsets[i];
        }
        if let Some(&index) = param_of.get(&i) {
            condition.push_str(&sql[copied..offsets[i]]);
            compact.push_str(&sql[copied..offsets[i]]);
            params.push(index);
            let n = params.len();
            match target {
                Dialect::Postgres => {
                    condition.push_str(&format!("${index}"));
                    compact.push_str(&format!("${n}"));
                }
                Dialect::Sqlite => {
                    condition.push_str(&format!("?{index}"));
                    compact.push_str(&format!("?{n}"));
                }
                Dialect::MySql => {
                    condition.push('?');
                    compact.push('?');
                }
            }
            copied = offsets[i + 1];
        }
    }
    let tail = &sql[copied..offsets[last_tok + 1]];
    condition.push_str(tail);
    compact.push_str(tail);
    Some(WhereTemplate {
        table,
        condition: Some(condition.trim().to_owned()),
        compact: Some(compact.trim().to_owned()),
        params,
        subquery,
    })
}

/// The token indices of the closing parentheses of the subqueries in `cond` (a
/// parenthesis whose first token inside is `SELECT`).
fn subquery_ends(cond: &[(usize, &Token)]) -> Vec<usize> {
    let mut open: Vec<bool> = Vec::new();
    let mut ends = Vec::new();
    for (k, (i, t)) in cond.iter().enumerate() {
        match t {
            Token::LParen => open.push(
                cond.get(k + 1)
                    .is_some_and(|(_, next)| is_kw(next, Keyword::SELECT)),
            ),
            Token::RParen if open.pop() == Some(true) => ends.push(*i),
            _ => {}
        }
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_rewrite_in_order() {
        let sql = "SELECT * FROM t WHERE a = $1 AND b = '$2' AND c = $2 -- $9\n";
        assert_eq!(
            mysql_placeholders(sql).unwrap().as_deref(),
            Some("SELECT * FROM t WHERE a = ? AND b = '$2' AND c = ? -- $9\n")
        );
        assert_eq!(mysql_placeholders("SELECT 1").unwrap(), None);
        assert_eq!(mysql_placeholders("SELECT ? FROM t").unwrap(), None);
    }

    #[test]
    fn mysql_rewrite_rejects_reuse_and_disorder() {
        assert!(mysql_placeholders("SELECT * FROM t WHERE a = $1 OR b = $1").is_err());
        assert!(mysql_placeholders("SELECT * FROM t WHERE a = $2 AND b = $1").is_err());
        let e = mysql_placeholders("SELECT $3").unwrap_err();
        assert!(e.to_string().contains("$3"), "{e}");
    }

    #[test]
    fn where_template_locks_subquery_rows_on_mysql() {
        let sql = "DELETE FROM agent WHERE id IN (SELECT id FROM sel WHERE x IN (SELECT y FROM z)) AND (a = ?)";
        let t = where_template(sql, Dialect::MySql).unwrap();
        assert_eq!(
            t.condition.as_deref(),
            Some(
                "id IN (SELECT id FROM sel WHERE x IN (SELECT y FROM z LOCK IN SHARE MODE) LOCK IN SHARE MODE) AND (a = ?)"
            )
        );
        let pg = where_template(&sql.replace('?', "$1"), Dialect::Postgres).unwrap();
        assert!(!pg.condition.unwrap().contains("LOCK"));
    }

    #[test]
    fn where_template_update_postgres() {
        let t = where_template(
            "UPDATE agent SET organization_id = $1, name = $2 WHERE id = $3 AND (x = $2 OR y = 'a''b') RETURNING id",
            Dialect::Postgres,
        )
        .unwrap();
        assert_eq!(t.table, "agent");
        assert_eq!(
            t.condition.as_deref(),
            Some("id = $3 AND (x = $2 OR y = 'a''b')")
        );
        assert_eq!(
            t.compact.as_deref(),
            Some("id = $1 AND (x = $2 OR y = 'a''b')")
        );
        assert_eq!(t.params, vec![3, 2]);
    }

    #[test]
    fn where_template_anonymous_and_sqlite_numbering() {
        let t = where_template(
            "UPDATE agent AS a SET name = ? WHERE a.id = ?",
            Dialect::Sqlite,
        )
        .unwrap();
        assert_eq!(t.table, "agent AS a");
        assert_eq!(t.condition.as_deref(), Some("a.id = ?2"));
        assert_eq!(t.params, vec![2]);
        let t = where_template("DELETE FROM agent WHERE id IN (?, ?)", Dialect::MySql).unwrap();
        assert_eq!(t.condition.as_deref(), Some("id IN (?, ?)"));
        assert_eq!(t.params, vec![1, 2]);
    }

    #[test]
    fn where_template_refuses_unsafe_shapes() {
        for sql in [
            "UPDATE agent SET name = $1 FROM org WHERE org.id = agent.organization_id",
            "DELETE FROM agent USING org WHERE org.id = agent.organization_id",
            "UPDATE agent SET name = ? WHERE id = ? LIMIT 1",
            "UPDATE OR REPLACE agent SET name = ? WHERE id = ?",
            "UPDATE agent SET name = :n WHERE id = :id",
            "UPDATE a SET x = 1; DELETE FROM b",
            "INSERT INTO agent (id) VALUES (1)",
        ] {
            assert_eq!(where_template(sql, Dialect::Sqlite), None, "{sql}");
        }
        let t = where_template(
            "UPDATE public.agent SET name = $1 WHERE id = $2",
            Dialect::Postgres,
        )
        .unwrap();
        assert_eq!(
            (t.table.as_str(), t.params.as_slice()),
            ("public.agent", &[2][..])
        );
        let all = where_template("DELETE FROM agent", Dialect::Postgres).unwrap();
        assert_eq!(all.condition, None);
        // A subquery reads rows the pre-read does not lock (READ COMMITTED).
        let sub = "DELETE FROM agent WHERE id IN (SELECT id FROM agent ORDER BY id LIMIT 1)";
        assert_eq!(where_template(sub, Dialect::Postgres), None);
        assert_eq!(where_template(sub, Dialect::MySql), None);
        assert!(where_template(sub, Dialect::Sqlite).is_some());
        let tenant = "DELETE FROM task WHERE id = $1 AND project_id IN (SELECT id FROM project WHERE org = $2)";
        // Kept, marked so that the rows written are checked against the pre-read.
        assert!(where_template(tenant, Dialect::Postgres).is_some_and(|t| t.subquery));
        assert!(!t.subquery);
    }
}
