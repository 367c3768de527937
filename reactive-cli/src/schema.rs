//! A database schema as far as relations care: tables, their columns, primary keys
//! and foreign keys, read from migration files (`CREATE TABLE`, `ALTER TABLE`,
//! `DROP TABLE`, parsed with sqlparser in the app's dialect) or built by live
//! introspection (the CLI's `live` feature).
//!
//! Names are normalized as the SQL analysis normalizes them (the last part of a
//! qualified name, unquoted, lower-cased), so they compare with the tables the
//! analysis reports and the relations the derive declares.

use std::collections::BTreeMap;

use sqlparser::ast::{
    AlterTableOperation, ColumnOption, ForeignKeyConstraint, ObjectName, ObjectType,
    ReferentialAction, RenameTableNameKind, Spanned, Statement, TableConstraint,
};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use reactive_codegen::sql::Dialect;

/// Where something was declared: a file and a 1-based line (line 0 = unknown, e.g.
/// from a live database).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// The file (a migration), or the database URL.
    pub file: String,
    /// 1-based line of the statement; 0 when not known.
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// What a foreign key does to the referencing rows when the referenced row is
/// deleted or its key updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `NO ACTION` / `RESTRICT` / nothing said: the database refuses the change.
    Refuse,
    /// `CASCADE`: the referencing rows are deleted or updated too.
    Cascade,
    /// `SET NULL`.
    SetNull,
    /// `SET DEFAULT`.
    SetDefault,
}

impl Action {
    fn from_sql(action: Option<&ReferentialAction>) -> Self {
        match action {
            Some(ReferentialAction::Cascade) => Self::Cascade,
            Some(ReferentialAction::SetNull) => Self::SetNull,
            Some(ReferentialAction::SetDefault) => Self::SetDefault,
            Some(ReferentialAction::Restrict | ReferentialAction::NoAction) | None => Self::Refuse,
        }
    }

    /// Parse an `information_schema` rule (`CASCADE`, `SET NULL`, ...).
    pub fn from_rule(rule: &str) -> Self {
        match rule.trim().to_ascii_uppercase().as_str() {
            "CASCADE" => Self::Cascade,
            "SET NULL" => Self::SetNull,
            "SET DEFAULT" => Self::SetDefault,
            _ => Self::Refuse,
        }
    }

    /// The database changes the referencing rows itself (not `Refuse`).
    pub fn propagates(self) -> bool {
        self != Self::Refuse
    }

    /// The SQL spelling.
    pub fn sql(self) -> &'static str {
        match self {
            Self::Refuse => "NO ACTION",
            Self::Cascade => "CASCADE",
            Self::SetNull => "SET NULL",
            Self::SetDefault => "SET DEFAULT",
        }
    }
}

/// A foreign key `table(columns) REFERENCES foreign_table(referred_columns)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referencing columns.
    pub columns: Vec<String>,
    /// The referenced table.
    pub foreign_table: String,
    /// The referenced columns; empty = the referenced table's primary key.
    pub referred_columns: Vec<String>,
    /// The constraint's name, if it has one.
    pub name: Option<String>,
    /// `ON DELETE`.
    pub on_delete: Action,
    /// `ON UPDATE`.
    pub on_update: Action,
    /// Where it was declared.
    pub origin: Origin,
}

/// One table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Its normalized name.
    pub name: String,
    /// Its columns, in declaration order.
    pub columns: Vec<String>,
    /// `false` for `CREATE TABLE ... AS SELECT` (columns not known).
    pub columns_known: bool,
    /// The primary key's columns (empty if none is declared).
    pub primary_key: Vec<String>,
    /// Its foreign keys.
    pub foreign_keys: Vec<ForeignKey>,
    /// Where it was created.
    pub origin: Origin,
}

impl Table {
    /// `true` if the table has this column (always `true` when its columns are not known).
    pub fn has_column(&self, column: &str) -> bool {
        !self.columns_known || self.columns.iter().any(|c| c == column)
    }
}

/// A schema: tables by normalized name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// The tables.
    pub tables: BTreeMap<String, Table>,
}

/// A statement of a migration that could not be read (it is skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where.
    pub origin: Origin,
    /// The parser's message.
    pub message: String,
}

/// Normalize a name: last part of a qualified name, unquoted, lower-cased.
pub fn normalize(name: &str) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    last.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']')
        .to_lowercase()
}

fn object_name(name: &ObjectName) -> String {
    let last = name
        .0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.clone())
        .unwrap_or_else(|| name.to_string());
    last.to_lowercase()
}

impl Schema {
    /// Apply the DDL statements of one migration file. Statements that do not parse
    /// (or that sqlparser does not know, such as triggers) are skipped and returned.
    pub fn apply_sql(&mut self, sql: &str, dialect: Dialect, file: &str) -> Vec<Skipped> {
        let mut skipped = Vec::new();
        let sp_dialect = dialect.parser();
        let tokens = match Tokenizer::new(sp_dialect, sql).tokenize_with_location() {
            Ok(tokens) => tokens,
            Err(error) => {
                skipped.push(Skipped {
                    origin: Origin {
                        file: file.to_owned(),
                        line: error.location.line as usize,
                    },
                    message: error.message,
                });
                return skipped;
            }
        };
        for chunk in split_statements(tokens) {
            let line = chunk
                .iter()
                .find(|t| !matches!(t.token, Token::Whitespace(_)))
                .map(|t| t.span.start.line as usize)
                .unwrap_or(0);
            let origin = Origin {
                file: file.to_owned(),
                line,
            };
            match Parser::new(sp_dialect)
                .with_tokens_with_locations(chunk)
                .parse_statements()
            {
                Ok(statements) => {
                    for statement in statements {
                        self.apply(&statement, &origin);
                    }
                }
                Err(error) => skipped.push(Skipped {
                    origin,
                    message: error.to_string(),
                }),
            }
        }
        skipped
    }

    /// Apply one parsed statement (anything but table DDL is ignored).
    pub fn apply(&mut self, statement: &Statement, origin: &Origin) {
        match statement {
            Statement::CreateTable(create) => {
                let name = object_name(&create.name);
                let mut table = Table {
                    name: name.clone(),
                    columns: Vec::new(),
                    columns_known: create.query.is_none() || !create.columns.is_empty(),
                    primary_key: Vec::new(),
                    foreign_keys: Vec::new(),
                    origin: origin.clone(),
                };
                for column in &create.columns {
                    add_column(&mut table, column, origin);
                }
                for constraint in &create.constraints {
                    add_constraint(&mut table, constraint, origin);
                }
                if create.if_not_exists && self.tables.contains_key(&name) {
                    return;
                }
                self.tables.insert(name, table);
            }
            Statement::AlterTable(alter) => {
                let name = object_name(&alter.name);
                let Some(mut table) = self.tables.remove(&name) else {
                    return;
                };
                let mut new_name = name;
                for operation in &alter.operations {
                    match operation {
                        AlterTableOperation::AddColumn { column_def, .. } => {
                            add_column(&mut table, column_def, origin);
                        }
                        AlterTableOperation::AddConstraint { constraint, .. } => {
                            add_constraint(&mut table, constraint, origin);
                        }
                        AlterTableOperation::DropColumn { column_names, .. } => {
                            for column in column_names {
                                let column = column.value.to_lowercase();
                                table.columns.retain(|c| *c != column);
                                table
                                    .foreign_keys
                                    .retain(|fk| !fk.columns.contains(&column));
                            }
                        }
                        AlterTableOperation::RenameColumn {
                            old_column_name,
                            new_column_name,
                        } => {
                            let (old, new) = (
                                old_column_name.value.to_lowercase(),
                                new_column_name.value.to_lowercase(),
                            );
                            for c in table
                                .columns
                                .iter_mut()
                                .chain(table.primary_key.iter_mut())
                                .chain(
                                    table
                                        .foreign_keys
                                        .iter_mut()
                                        .flat_map(|fk| fk.columns.iter_mut()),
                                )
                            {
                                if *c == old {
                                    c.clone_from(&new);
                                }
                            }
                        }
                        AlterTableOperation::DropConstraint { name, .. } => {
                            let name = name.value.to_lowercase();
                            table
                                .foreign_keys
                                .retain(|fk| fk.name.as_deref() != Some(name.as_str()));
                        }
                        AlterTableOperation::RenameTable { table_name } => {
                            let (RenameTableNameKind::As(to) | RenameTableNameKind::To(to)) =
                                table_name;
                            new_name = object_name(to);
                        }
                        _ => {}
                    }
                }
                table.name.clone_from(&new_name);
                self.tables.insert(new_name, table);
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                names,
                ..
            } => {
                for name in names {
                    self.tables.remove(&object_name(name));
                }
            }
            _ => {}
        }
    }

    /// The columns a foreign key references: its own list, or the referenced
    /// table's primary key (empty when neither is known).
    pub fn referred_columns(&self, fk: &ForeignKey) -> Vec<String> {
        if fk.referred_columns.is_empty() {
            self.tables
                .get(&fk.foreign_table)
                .map(|t| t.primary_key.clone())
                .unwrap_or_default()
        } else {
            fk.referred_columns.clone()
        }
    }

    /// The one column of the referenced table a single-column foreign key holds (`id`
    /// when the key names none and the table's primary key is unknown); `None` for a
    /// composite key.
    pub fn referred_key(&self, fk: &ForeignKey) -> Option<String> {
        match self.referred_columns(fk).as_slice() {
            [] => Some("id".to_owned()),
            [one] => Some(one.clone()),
            _ => None,
        }
    }

    /// Every single-column foreign key, as `(referencing table, its column, the key)`,
    /// sorted by referenced table, then referencing table and column.
    pub fn single_column_foreign_keys(&self) -> Vec<(&Table, &str, &ForeignKey)> {
        let mut keys: Vec<(&Table, &str, &ForeignKey)> = self
            .tables
            .values()
            .flat_map(|table| {
                table
                    .foreign_keys
                    .iter()
                    .filter(|fk| fk.columns.len() == 1)
                    .map(move |fk| (table, fk.columns[0].as_str(), fk))
            })
            .collect();
        keys.sort_by(|a, b| {
            (&a.2.foreign_table, &a.0.name, a.1).cmp(&(&b.2.foreign_table, &b.0.name, b.1))
        });
        keys
    }
}

fn add_column(table: &mut Table, column: &sqlparser::ast::ColumnDef, origin: &Origin) {
    let name = column.name.value.to_lowercase();
    if !table.columns.contains(&name) {
        table.columns.push(name.clone());
    }
    for option in &column.options {
        match &option.option {
            ColumnOption::PrimaryKey(_) => table.primary_key = vec![name.clone()],
            ColumnOption::ForeignKey(fk) => {
                let origin = at_line(origin, column.name.span.start.line);
                table
                    .foreign_keys
                    .push(foreign_key(fk, vec![name.clone()], &origin));
            }
            _ => {}
        }
    }
}

fn add_constraint(table: &mut Table, constraint: &TableConstraint, origin: &Origin) {
    match constraint {
        TableConstraint::PrimaryKey(pk) => {
            table.primary_key = pk
                .columns
                .iter()
                .map(|c| c.column.expr.to_string().to_lowercase())
                .map(|c| normalize(&c))
                .collect();
        }
        TableConstraint::ForeignKey(fk) => {
            let columns = fk.columns.iter().map(|c| c.value.to_lowercase()).collect();
            let origin = at_line(origin, fk.span().start.line);
            table.foreign_keys.push(foreign_key(fk, columns, &origin));
        }
        _ => {}
    }
}

/// `origin` at a more precise line, when the parser knows it.
fn at_line(origin: &Origin, line: u64) -> Origin {
    Origin {
        file: origin.file.clone(),
        line: if line == 0 {
            origin.line
        } else {
            line as usize
        },
    }
}

fn foreign_key(fk: &ForeignKeyConstraint, columns: Vec<String>, origin: &Origin) -> ForeignKey {
    ForeignKey {
        columns,
        foreign_table: object_name(&fk.foreign_table),
        referred_columns: fk
            .referred_columns
            .iter()
            .map(|c| c.value.to_lowercase())
            .collect(),
        name: fk.name.as_ref().map(|n| n.value.to_lowercase()),
        on_delete: Action::from_sql(fk.on_delete.as_ref()),
        on_update: Action::from_sql(fk.on_update.as_ref()),
        origin: origin.clone(),
    }
}

/// Split tokens at top-level `;`. The body of a `CREATE TRIGGER`/`FUNCTION`/`PROCEDURE`
/// (`BEGIN ... END`, with `CASE ... END` inside) stays whole; a transaction's
/// `BEGIN;` is a statement of its own.
fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut chunks = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    let mut depth = 0usize;
    let mut routine = false;
    for token in tokens {
        match &token.token {
            Token::Word(w) => {
                let word = w.value.to_ascii_uppercase();
                let first = !current.iter().any(|t| matches!(t.token, Token::Word(_)));
                if first {
                    routine = false;
                }
                if ["TRIGGER", "FUNCTION", "PROCEDURE"].contains(&word.as_str())
                    && current.iter().any(|t| {
                        matches!(&t.token, Token::Word(w) if w.value.eq_ignore_ascii_case("create"))
                    })
                {
                    routine = true;
                }
                match word.as_str() {
                    "BEGIN" if routine => depth += 1,
                    "CASE" if depth > 0 => depth += 1,
                    "END" => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            Token::SemiColon if depth == 0 => {
                current.push(token);
                chunks.push(std::mem::take(&mut current));
                routine = false;
                continue;
            }
            Token::EOF => continue,
            _ => {}
        }
        current.push(token);
    }
    chunks.push(current);
    chunks.retain(|chunk| {
        chunk
            .iter()
            .any(|t| !matches!(t.token, Token::Whitespace(_) | Token::SemiColon))
    });
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_and_trigger_bodies() {
        let mut schema = Schema::default();
        let skipped = schema.apply_sql(
            "BEGIN;\n\
             CREATE TABLE a (id INT PRIMARY KEY);\n\
             CREATE TRIGGER t AFTER UPDATE ON a BEGIN\n\
               SELECT CASE WHEN 1 THEN 2 END; UPDATE a SET id = id;\n\
             END;\n\
             CREATE TABLE b (id INT PRIMARY KEY, a_id INT REFERENCES a(id));\n\
             COMMIT;",
            Dialect::Sqlite,
            "m.sql",
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(schema.tables.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(schema.tables["b"].foreign_keys[0].origin.line, 6);
    }

    #[test]
    fn create_alter_and_drop() {
        let mut schema = Schema::default();
        let skipped = schema.apply_sql(
            "CREATE TABLE org (id TEXT PRIMARY KEY, name TEXT);\n\
             CREATE TABLE \"Agent\" (id TEXT, org_id TEXT REFERENCES org(id) ON DELETE CASCADE, PRIMARY KEY (id));\n\
             CREATE TRIGGER t AFTER UPDATE ON org BEGIN UPDATE agent SET id = id; END;\n\
             ALTER TABLE agent ADD COLUMN boss_id TEXT;\n\
             ALTER TABLE agent ADD CONSTRAINT boss FOREIGN KEY (boss_id) REFERENCES agent (id);\n\
             ALTER TABLE agent RENAME COLUMN org_id TO organization_id;\n\
             CREATE TABLE gone (id INT);\n\
             DROP TABLE gone;\n\
             THIS IS NOT SQL;",
            Dialect::Sqlite,
            "m.sql",
        );
        assert_eq!(
            skipped.iter().map(|s| s.origin.line).collect::<Vec<_>>(),
            [9],
            "{skipped:?}"
        );
        assert_eq!(schema.tables.keys().collect::<Vec<_>>(), ["agent", "org"]);
        let agent = &schema.tables["agent"];
        assert_eq!(agent.columns, ["id", "organization_id", "boss_id"]);
        assert_eq!(agent.primary_key, ["id"]);
        assert_eq!(agent.origin.line, 2);
        let fks: Vec<(&str, &str, Action, usize)> = agent
            .foreign_keys
            .iter()
            .map(|fk| {
                (
                    fk.columns[0].as_str(),
                    fk.foreign_table.as_str(),
                    fk.on_delete,
                    fk.origin.line,
                )
            })
            .collect();
        assert_eq!(
            fks,
            [
                ("organization_id", "org", Action::Cascade, 2),
                ("boss_id", "agent", Action::Refuse, 5)
            ]
        );
    }
}
