//! Writes: `INSERT` (and its upsert forms), `UPDATE`, `DELETE`.
//!
//! - `INSERT ... VALUES` with a column list gives one column → value map per row;
//!   `INSERT ... SELECT`, a missing column list or a row of the wrong length gives
//!   `inserted: None`. MySQL's `INSERT ... SET a = 1` is one row.
//! - Upserts (`ON CONFLICT DO UPDATE`, `ON DUPLICATE KEY UPDATE`, `INSERT OR REPLACE`,
//!   `REPLACE`) are [`Operation::Upsert`] with the update's assignments in `set`
//!   (empty for the replace forms, which rewrite the whole row) and filter `All`:
//!   the conflicting row's old values are not known. `ON CONFLICT DO NOTHING` is an
//!   insert.
//! - `UPDATE`'s target is also *read*, with the `WHERE` keys, which are also its
//!   write filter. In MySQL's multi-table `UPDATE a JOIN b ... SET a.x = ...`, a table
//!   is written when an assignment names it (an unqualified assignment counts for
//!   every table of the update list).
//! - `DELETE`'s target is written with the `WHERE` keys; `USING` / joined tables are read.

use sqlparser::ast::{
    Assignment, AssignmentTarget, Delete, FromTable, Ident, Insert, ObjectName, ObjectNamePart,
    OnConflictAction, OnInsert, SetExpr, SqliteOnConflict, Statement, TableObject, Update,
    UpdateTableFromKind,
};

use super::collect::{Analyzer, PendingWrite, column_value};
use super::model::{ColumnValue, Operation};
use super::names::{Match, ident_match, last_ident, normalize, table_name};
use super::predicates::ColumnRef;
use super::query::PendingOns;
use super::scope::{Env, Scope};

impl Analyzer<'_> {
    /// Analyse a data-modifying statement. Returns its operation and whether it has
    /// a `RETURNING` clause.
    pub(crate) fn analyze_write(
        &mut self,
        statement: &Statement,
        env: &Env<'_>,
    ) -> (Operation, bool) {
        let out = match statement {
            Statement::Insert(insert) => self.insert(insert, env),
            Statement::Update(update) => self.update(update, env),
            Statement::Delete(delete) => self.delete(delete, env),
            _ => {
                self.unsupported("data-modifying statement");
                (Operation::Other, false)
            }
        };
        self.find_subqueries(statement, env);
        self.last_write = Some(out);
        out
    }

    fn insert(&mut self, insert: &Insert, env: &Env<'_>) -> (Operation, bool) {
        let returning = insert.returning.is_some();
        let TableObject::TableName(name) = &insert.table else {
            self.unsupported("INSERT INTO a table function");
            return (Operation::Insert, returning);
        };
        let table = table_name(name);
        self.accounted.push(table.clone());

        let (upsert, set) = match &insert.on {
            Some(OnInsert::DuplicateKeyUpdate(assignments)) => {
                (true, self.assignments(assignments))
            }
            Some(OnInsert::OnConflict(conflict)) => match &conflict.action {
                OnConflictAction::DoUpdate(update) => (true, self.assignments(&update.assignments)),
                OnConflictAction::DoNothing => (false, Vec::new()),
            },
            Some(_) => (true, Vec::new()),
            None => (false, Vec::new()),
        };
        let upsert =
            upsert || insert.replace_into || matches!(insert.or, Some(SqliteOnConflict::Replace));
        let operation = if upsert {
            Operation::Upsert
        } else {
            Operation::Insert
        };

        let columns: Vec<_> = insert.columns.iter().filter_map(last_ident).collect();
        let columns_known = !columns.is_empty() && columns.len() == insert.columns.len();
        let inserted = if let Some(source) = &insert.source {
            self.analyze_query(source, env);
            match source.body.as_ref() {
                SetExpr::Values(values) if columns_known && source.with.is_none() => values
                    .rows
                    .iter()
                    .map(|row| {
                        (row.content.len() == columns.len()).then(|| {
                            columns
                                .iter()
                                .zip(&row.content)
                                .map(|(c, v)| column_value(c, v, self.params))
                                .collect()
                        })
                    })
                    .collect::<Option<Vec<_>>>(),
                _ => None,
            }
        } else if !insert.assignments.is_empty() {
            Some(vec![self.assignments(&insert.assignments)])
        } else {
            None
        };

        self.write(PendingWrite {
            table,
            operation,
            access: None,
            set,
            inserted,
        });
        (operation, returning)
    }

    fn update(&mut self, update: &Update, env: &Env<'_>) -> (Operation, bool) {
        let mut scope = Scope::default();
        let mut ons = PendingOns::new();
        let targets = self.add_joined(&update.table, &mut scope, &mut ons, env);
        if let Some(UpdateTableFromKind::BeforeSet(from) | UpdateTableFromKind::AfterSet(from)) =
            &update.from
        {
            for from in from {
                self.add_joined(from, &mut scope, &mut ons, env);
            }
        }
        self.apply_scope_conditions(&scope, &ons, update.selection.as_ref());

        // SQLite's `UPDATE OR REPLACE` deletes other rows that conflict with the new
        // values: the rows written are not only those the WHERE clause selects.
        let replaces = matches!(update.or, Some(SqliteOnConflict::Replace));
        let mut written = false;
        for &entry in &targets {
            let Some(access) = scope.entries[entry].access else {
                continue;
            };
            // Assignments to this table: qualified ones that resolve to it, and
            // unqualified or unresolved ones (they may be for any target).
            let set: Vec<ColumnValue> = update
                .assignments
                .iter()
                .flat_map(|a| self.assignment(a, &scope))
                .filter(|(resolved, _)| resolved.is_none_or(|e| e == entry))
                .map(|(_, cv)| cv)
                .collect();
            if set.is_empty() {
                continue;
            }
            let table = self.accesses[access].table.clone();
            self.write(PendingWrite {
                table,
                operation: Operation::Update,
                access: (!replaces).then_some(access),
                set,
                inserted: None,
            });
            written = true;
        }
        if !written {
            self.unsupported("UPDATE of something that is not a table");
        }
        (Operation::Update, update.returning.is_some())
    }

    fn delete(&mut self, delete: &Delete, env: &Env<'_>) -> (Operation, bool) {
        let mut scope = Scope::default();
        let mut ons = PendingOns::new();
        let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
        let mut from_entries = Vec::new();
        for from in from {
            from_entries.extend(self.add_joined(from, &mut scope, &mut ons, env));
        }
        if let Some(using) = &delete.using {
            for from in using {
                self.add_joined(from, &mut scope, &mut ons, env);
            }
        }
        self.apply_scope_conditions(&scope, &ons, delete.selection.as_ref());

        // MySQL's `DELETE t1, t2 FROM ...` names its targets; otherwise every table
        // of the FROM list (one, outside MySQL) is a target.
        let mut targets: Vec<Option<usize>> = Vec::new();
        if delete.tables.is_empty() {
            targets.extend(from_entries.iter().map(|&e| scope.entries[e].access));
            targets.retain(Option::is_some);
        } else {
            for name in &delete.tables {
                let entry = last_ident(name).and_then(|ident| {
                    let mut hits = scope.entries.iter().filter(|e| {
                        e.name
                            .as_ref()
                            .is_some_and(|n| ident_match(n, ident, self.fold) != Match::No)
                    });
                    match (hits.next(), hits.next()) {
                        (Some(e), None)
                            if e.name.as_ref().is_some_and(|n| {
                                ident_match(n, ident, self.fold) == Match::Certain
                            }) =>
                        {
                            e.access
                        }
                        _ => None,
                    }
                });
                match entry {
                    Some(access) => targets.push(Some(access)),
                    None => {
                        // Not resolved: the whole table of that name.
                        self.write(PendingWrite {
                            table: table_name(name),
                            operation: Operation::Delete,
                            access: None,
                            set: Vec::new(),
                            inserted: None,
                        });
                    }
                }
            }
        }
        if targets.is_empty() && delete.tables.is_empty() {
            self.unsupported("DELETE from something that is not a table");
        }
        for access in targets.into_iter().flatten() {
            self.accesses[access].read = false;
            let table = self.accesses[access].table.clone();
            self.write(PendingWrite {
                table,
                operation: Operation::Delete,
                access: Some(access),
                set: Vec::new(),
                inserted: None,
            });
        }
        (Operation::Delete, delete.returning.is_some())
    }

    /// Apply queued `ON` conditions and the `WHERE` clause of a scope.
    fn apply_scope_conditions(
        &mut self,
        scope: &Scope,
        ons: &PendingOns<'_>,
        selection: Option<&sqlparser::ast::Expr>,
    ) {
        for (condition, allowed) in ons {
            self.apply_condition(condition, scope, Some(allowed));
        }
        if let Some(selection) = selection {
            self.apply_condition(selection, scope, None);
        }
    }

    /// Column → value pairs of assignments (tuple targets get no values).
    fn assignments(&self, assignments: &[Assignment]) -> Vec<ColumnValue> {
        let scope = Scope::default();
        assignments
            .iter()
            .flat_map(|a| self.assignment(a, &scope))
            .map(|(_, cv)| cv)
            .collect()
    }

    /// One assignment's columns, each with the scope entry its qualifier resolves to.
    fn assignment(
        &self,
        assignment: &Assignment,
        scope: &Scope,
    ) -> Vec<(Option<usize>, ColumnValue)> {
        let resolve = |name| self.resolve_assigned(name, scope);
        match &assignment.target {
            AssignmentTarget::ColumnName(name) => match resolve(name) {
                Some((entry, column)) => {
                    vec![(entry, column_value(column, &assignment.value, self.params))]
                }
                None => Vec::new(),
            },
            AssignmentTarget::Tuple(names) => names
                .iter()
                .filter_map(resolve)
                .map(|(entry, column)| {
                    (
                        entry,
                        ColumnValue {
                            column: normalize(column),
                            value: None,
                        },
                    )
                })
                .collect(),
        }
    }

    /// The column an assignment target names, with the scope entry its qualifier resolves to.
    fn resolve_assigned<'n>(
        &self,
        name: &'n ObjectName,
        scope: &Scope,
    ) -> Option<(Option<usize>, &'n Ident)> {
        let column = last_ident(name)?;
        let qualifier = match name.0.len() {
            0 | 1 => None,
            n => match &name.0[n - 2] {
                ObjectNamePart::Identifier(q) => Some(q),
                ObjectNamePart::Function(_) => None,
            },
        };
        Some((
            scope.resolve(&ColumnRef { qualifier, column }, self.fold),
            column,
        ))
    }
}
