//! Reads: queries, set operations, `SELECT` scopes, `FROM` lists and joins.
//!
//! Soundness rules applied here:
//! - a CTE name is not a table (the CTE body's tables are read instead); in a
//!   non-recursive `WITH`, a CTE body sees only the CTEs before it, so a body that
//!   names its own CTE reads the real table of that name;
//! - `WHERE` conjuncts may narrow any table of the scope;
//! - a table whose alias renames its columns (`agent AS a(x, y)`) is read whole;
//! - `ON` conjuncts narrow only the side(s) whose rows must satisfy them: both sides
//!   of an inner join, the NULL-supplying side of an outer join, nothing for a full
//!   join (the preserved side keeps rows whatever the `ON` says).

use sqlparser::ast::{
    Expr, JoinConstraint, JoinOperator, Query, Select, SetExpr, TableAlias, TableFactor,
    TableWithJoins,
};

use super::collect::Analyzer;
use super::names::{Match, last_ident, normalize, table_name};
use super::scope::{Env, Scope};

/// `ON` conditions waiting for the whole `FROM` list, with the entries they may narrow.
pub(crate) type PendingOns<'q> = Vec<(&'q Expr, Vec<usize>)>;

impl Analyzer<'_> {
    /// Analyse a query (its CTEs, body, and subqueries in `ORDER BY` / `LIMIT`).
    pub(crate) fn analyze_query(&mut self, query: &Query, env: &Env<'_>) {
        self.mark_handled(query);
        let mut local = Env::child(env);
        if let Some(with) = &query.with {
            if with.recursive {
                for cte in &with.cte_tables {
                    local.add(cte.alias.name.clone());
                }
                for cte in &with.cte_tables {
                    self.analyze_query(&cte.query, &local);
                }
            } else {
                for cte in &with.cte_tables {
                    self.analyze_query(&cte.query, &local);
                    local.add(cte.alias.name.clone());
                }
            }
        }
        self.analyze_set_expr(&query.body, &local);
        if let Some(order_by) = &query.order_by {
            self.find_subqueries(order_by, &local);
        }
        if let Some(limit) = &query.limit_clause {
            self.find_subqueries(limit, &local);
        }
        if let Some(fetch) = &query.fetch {
            self.find_subqueries(fetch, &local);
        }
        if !query.pipe_operators.is_empty() {
            self.unsupported("pipe operators");
        }
    }

    /// Analyse a query body; set operations are walked without recursion on the
    /// (left-deep) chain.
    fn analyze_set_expr(&mut self, body: &SetExpr, env: &Env<'_>) {
        let mut stack = vec![body];
        while let Some(body) = stack.pop() {
            match body {
                SetExpr::SetOperation { left, right, .. } => {
                    stack.push(right);
                    stack.push(left);
                }
                SetExpr::Select(select) => self.analyze_select(select, env),
                SetExpr::Query(query) => self.analyze_query(query, env),
                SetExpr::Values(values) => self.find_subqueries(values, env),
                SetExpr::Insert(statement)
                | SetExpr::Update(statement)
                | SetExpr::Delete(statement) => {
                    self.analyze_write(statement, env);
                }
                SetExpr::Merge(_) => self.unsupported("MERGE"),
                SetExpr::Table(table) => match &table.table_name {
                    Some(name) => {
                        let cte = if table.schema_name.is_none() {
                            env.lookup(name, self.fold)
                        } else {
                            Match::No
                        };
                        if cte != Match::Certain {
                            self.access(normalize(name), true);
                        }
                    }
                    None => self.unsupported("TABLE without a name"),
                },
            }
        }
    }

    /// Analyse one `SELECT`: its scope, conditions and subqueries.
    fn analyze_select(&mut self, select: &Select, env: &Env<'_>) {
        if select.into.is_some() {
            self.unsupported("SELECT INTO");
        }
        let mut scope = Scope::default();
        let mut ons = PendingOns::new();
        for from in &select.from {
            self.add_joined(from, &mut scope, &mut ons, env);
        }
        for (condition, allowed) in &ons {
            self.apply_condition(condition, &scope, Some(allowed));
        }
        if let Some(selection) = &select.selection {
            self.apply_condition(selection, &scope, None);
        }
        self.find_subqueries(select, env);
    }

    /// Add a table and its joins to `scope`; returns the entries added. `ON`
    /// conditions are queued in `ons` with the entries they may narrow.
    pub(crate) fn add_joined<'q>(
        &mut self,
        from: &'q TableWithJoins,
        scope: &mut Scope,
        ons: &mut PendingOns<'q>,
        env: &Env<'_>,
    ) -> Vec<usize> {
        let mut left = self.add_factor(&from.relation, scope, env);
        for join in &from.joins {
            let right = self.add_factor(&join.relation, scope, env);
            let (constraint, narrow_left, narrow_right) = match &join.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::StraightJoin(c)
                | JoinOperator::CrossJoin(c)
                | JoinOperator::Semi(c)
                | JoinOperator::LeftSemi(c)
                | JoinOperator::RightSemi(c) => (Some(c), true, true),
                JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Anti(c)
                | JoinOperator::LeftAnti(c) => (Some(c), false, true),
                JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::RightAnti(c) => (Some(c), true, false),
                _ => (None, false, false),
            };
            if let Some(JoinConstraint::On(condition)) = constraint {
                let mut allowed = Vec::new();
                if narrow_left {
                    allowed.extend_from_slice(&left);
                }
                if narrow_right {
                    allowed.extend_from_slice(&right);
                }
                if !allowed.is_empty() {
                    ons.push((condition, allowed));
                }
            }
            left.extend(right);
        }
        left
    }

    fn add_factor(&mut self, factor: &TableFactor, scope: &mut Scope, env: &Env<'_>) -> Vec<usize> {
        match factor {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                let visible = alias_name(alias.as_ref()).or_else(|| last_ident(name).cloned());
                if args.is_some() {
                    // A table-valued function, not a table: a built-in reads nothing,
                    // any other makes the statement unknown (`functions` module).
                    self.accounted.push(table_name(name));
                    return vec![scope.push(visible, None)];
                }
                let cte = match (name.0.len(), last_ident(name)) {
                    (1, Some(ident)) => env.lookup(ident, self.fold),
                    _ => Match::No,
                };
                match cte {
                    Match::Certain => {
                        self.accounted.push(table_name(name));
                        vec![scope.push(visible, None)]
                    }
                    // Maybe the CTE, maybe a table of that name: read the table (all
                    // rows) and narrow nothing.
                    Match::Possible => {
                        self.access(table_name(name), true);
                        vec![scope.push(visible, None)]
                    }
                    // A column alias list (`t AS a(x, y)`) renames the table's columns
                    // by position: a column named in a condition may be another one of
                    // the table's, so none narrows it.
                    Match::No if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) => {
                        self.access(table_name(name), true);
                        vec![scope.push(visible, None)]
                    }
                    Match::No => {
                        let access = self.access(table_name(name), true);
                        vec![scope.push(visible, Some(access))]
                    }
                }
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                self.analyze_query(subquery, env);
                vec![scope.push(alias_name(alias.as_ref()), None)]
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                // The nested join is its own scope for its ON conditions; with an
                // alias, its tables cannot be named from outside.
                let mut inner = Scope::default();
                let mut inner_ons = PendingOns::new();
                let entries = self.add_joined(table_with_joins, &mut inner, &mut inner_ons, env);
                for (condition, allowed) in &inner_ons {
                    self.apply_condition(condition, &inner, Some(allowed));
                }
                let hide = alias.is_some();
                let mut out: Vec<usize> = entries
                    .into_iter()
                    .map(|i| {
                        let entry = &inner.entries[i];
                        scope.push(if hide { None } else { entry.name.clone() }, entry.access)
                    })
                    .collect();
                if let Some(alias) = alias {
                    out.push(scope.push(Some(alias.name.clone()), None));
                }
                out
            }
            // Table functions, UNNEST, JSON_TABLE, PIVOT, ...: opaque. Tables inside
            // them are caught by the backstop, subqueries by the subquery finder.
            other => vec![scope.push(factor_alias(other), None)],
        }
    }
}

fn alias_name(alias: Option<&TableAlias>) -> Option<sqlparser::ast::Ident> {
    alias.map(|a| a.name.clone())
}

fn factor_alias(factor: &TableFactor) -> Option<sqlparser::ast::Ident> {
    let alias = match factor {
        TableFactor::TableFunction { alias, .. }
        | TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. }
        | TableFactor::JsonTable { alias, .. }
        | TableFactor::OpenJsonTable { alias, .. }
        | TableFactor::Pivot { alias, .. }
        | TableFactor::Unpivot { alias, .. }
        | TableFactor::MatchRecognize { alias, .. }
        | TableFactor::XmlTable { alias, .. }
        | TableFactor::SemanticView { alias, .. } => alias.as_ref(),
        _ => None,
    };
    alias_name(alias)
}
