//! Database errors become answers a client can act on: real errors from SQLite
//! (in memory), PostgreSQL (`TEST_POSTGRES_URL`) and MySQL/MariaDB (`TEST_MYSQL_URL`),
//! provoked with plain sqlx on native pools, mapped as the router maps a handler's error.
//! The server tests skip with a message when their URL is unset (they fail under `CI`).

use std::time::Duration;

use reactive_runtime::router::ApiError;
use reactive_runtime::{DbErrorClass, Error};

/// What the router answers for `e`: status, code, constraint, message.
#[derive(Debug)]
struct Mapped {
    status: u16,
    code: &'static str,
    constraint: Option<String>,
    message: String,
}

fn map(e: sqlx::Error) -> Mapped {
    let api = ApiError::from(Error::from(e));
    Mapped {
        status: api.status.as_u16(),
        code: api.code,
        constraint: api.constraint,
        message: api.message,
    }
}

/// Asserts the status and code of `result`'s error, and that the message does not echo
/// the driver's text (`secret`: a value of the statement that must not leak).
#[track_caller]
fn expect(
    result: Result<impl std::fmt::Debug, sqlx::Error>,
    status: u16,
    code: &str,
    secret: &str,
) -> Mapped {
    let err = result.expect_err("the statement fails");
    let debug = format!("{err:?}");
    let m = map(err);
    assert_eq!((m.status, m.code), (status, code), "{debug} -> {m:?}");
    assert!(
        !m.message.contains(secret),
        "the message quotes a value: {m:?}"
    );
    m
}

/// The URL in `var`, or `None` after saying why the test is skipped (panics under `CI`).
fn url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!("{var} must be set when CI is set"),
        Err(_) => {
            eprintln!("skipped: {var} not set");
            None
        }
    }
}

/// Names unique to this process: tests of several runs may share a server.
struct Names {
    parent: String,
    child: String,
}

impl Names {
    fn new(prefix: &str) -> Self {
        let pid = std::process::id();
        Names {
            parent: format!("{prefix}_parent_{pid}"),
            child: format!("{prefix}_child_{pid}"),
        }
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.child)
    }

    /// The parent and child tables: a unique, a foreign key, a check and `NOT NULL`
    /// columns, each constraint named.
    fn schema(&self) -> [String; 2] {
        let (p, c) = (&self.parent, &self.child);
        [
            format!("CREATE TABLE {p} (id INTEGER PRIMARY KEY)"),
            format!(
                "CREATE TABLE {c} (id INTEGER PRIMARY KEY, email VARCHAR(20) NOT NULL, \
                 qty INTEGER NOT NULL, parent_id INTEGER, \
                 CONSTRAINT {c}_email_key UNIQUE (email), \
                 CONSTRAINT {c}_qty_check CHECK (qty > 0), \
                 CONSTRAINT {c}_parent_fk FOREIGN KEY (parent_id) REFERENCES {p} (id))"
            ),
        ]
    }
}

/// Runs the constraint cases shared by every database on `pool`, after creating the
/// schema: `$N` placeholders become `?` when `question_marks`.
macro_rules! constraint_cases {
    ($pool:expr, $names:expr, $question_marks:expr, $named:expr) => {{
        let pool = $pool;
        let n: &Names = $names;
        let sql = |s: String| -> String {
            if $question_marks {
                let mut out = String::new();
                let mut chars = s.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '$' {
                        while chars.peek().is_some_and(char::is_ascii_digit) {
                            chars.next();
                        }
                        out.push('?');
                    } else {
                        out.push(c);
                    }
                }
                out
            } else {
                s
            }
        };
        for ddl in n.schema() {
            sqlx::query(sqlx::AssertSqlSafe(ddl)).execute(pool).await.unwrap();
        }
        let insert = sql(format!(
            "INSERT INTO {} (id, email, qty, parent_id) VALUES ($1, $2, $3, $4)",
            n.child
        ));
        let ins = |id: i64, email: Option<&'static str>, qty: i64, parent: Option<i64>| {
            sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                .bind(id)
                .bind(email)
                .bind(qty)
                .bind(parent)
                .execute(pool)
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO {} (id) VALUES (1)", n.parent)))
            .execute(pool)
            .await
            .unwrap();
        ins(1, Some("a@x"), 1, Some(1)).await.unwrap();

        let dup = expect(ins(2, Some("a@x"), 1, None).await, 409, "conflict", "a@x");
        if $named {
            assert_eq!(dup.constraint, Some(n.key("email_key")), "{dup:?}");
            assert!(dup.message.contains(&n.key("email_key")), "{dup:?}");
        }
        expect(ins(1, Some("b@x"), 1, None).await, 409, "conflict", "b@x");

        let fk = expect(ins(3, Some("c@x"), 1, Some(999)).await, 409, "foreign_key", "999");
        if $named {
            assert_eq!(fk.constraint, Some(n.key("parent_fk")), "{fk:?}");
        }
        let delete = sql(format!("DELETE FROM {} WHERE id = $1", n.parent));
        expect(
            sqlx::query(sqlx::AssertSqlSafe(delete)).bind(1_i64).execute(pool).await,
            409,
            "foreign_key",
            "DELETE",
        );

        expect(ins(4, None, 1, None).await, 422, "constraint", "INSERT");

        let check = expect(ins(5, Some("e@x"), 0, None).await, 422, "constraint", "e@x");
        // SQLite names a named CHECK constraint too.
        assert_eq!(check.constraint, Some(n.key("qty_check")), "{check:?}");
    }};
}

/// Drops the tables of `names` on `pool` (before, in case a failed run left them).
macro_rules! drop_tables {
    ($pool:expr, $names:expr) => {
        for t in [&$names.child, &$names.parent] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {t}")))
                .execute($pool)
                .await
                .unwrap();
        }
    };
}

#[tokio::test]
async fn sqlite_errors_are_mapped() {
    // One connection: each in-memory connection is a database of its own.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let n = Names::new("e");
    // sqlx turns foreign keys on for SQLite; SQLite has no SQLSTATEs, no length limit
    // on VARCHAR and names only CHECK constraints.
    constraint_cases!(&pool, &n, false, false);

    // A STRICT table refuses a value of the wrong type (SQLITE_CONSTRAINT_DATATYPE).
    sqlx::query("CREATE TABLE e_strict (n INTEGER) STRICT")
        .execute(&pool)
        .await
        .unwrap();
    expect(
        sqlx::query("INSERT INTO e_strict (n) VALUES ($1)")
            .bind("abc")
            .execute(&pool)
            .await,
        400,
        "invalid_value",
        "abc",
    );

    // Anything else stays a generic 500.
    let m = expect(
        sqlx::query("SELECT * FROM e_missing")
            .fetch_all(&pool)
            .await,
        500,
        "internal",
        "e_missing",
    );
    assert_eq!(m.message, "internal server error");
}

#[tokio::test]
async fn postgres_errors_are_mapped() {
    let Some(url) = url("TEST_POSTGRES_URL") else {
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    let n = Names::new("e");
    drop_tables!(&pool, n);
    constraint_cases!(&pool, &n, false, true);
    let c = &n.child;

    // 22001 / 22003: a well-formed value the column cannot hold.
    let long = "x".repeat(30);
    expect(
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {c} (id, email, qty) VALUES (6, $1, 1)"
        )))
        .bind(&long)
        .execute(&pool)
        .await,
        422,
        "out_of_range",
        &long,
    );
    expect(
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {c} (id, email, qty) VALUES (7, 'g@x', $1)"
        )))
        .bind(10_000_000_000_i64)
        .execute(&pool)
        .await,
        422,
        "out_of_range",
        "10000000000",
    );
    // 22P02 / 22007 / 22008: text that is no value of the type.
    for (ty, text) in [
        ("uuid", "not-a-uuid"),
        ("date", "not a date"),
        ("date", "2024-13-45"),
        ("integer", "12abc"),
    ] {
        let m = expect(
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT CAST($1 AS {ty})")))
                .bind(text)
                .fetch_one(&pool)
                .await,
            400,
            "invalid_value",
            text,
        );
        assert_eq!(m.constraint, None);
    }

    // 40001: a concurrent update under REPEATABLE READ, deterministic (no timing).
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {c} (id, email, qty) VALUES (10, 'r@x', 1)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let update = format!("UPDATE {c} SET qty = qty + 1 WHERE id = 10");
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT qty FROM {c} WHERE id = 10"
    )))
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(update.clone()))
        .execute(&pool)
        .await
        .unwrap();
    let err = sqlx::query(sqlx::AssertSqlSafe(update))
        .execute(&mut *tx)
        .await;
    expect(err, 503, "retry", "UPDATE");
    tx.rollback().await.unwrap();

    // An unknown table is a bug of the server: 500.
    expect(
        sqlx::query("SELECT * FROM e_missing_table_xyz")
            .fetch_all(&pool)
            .await,
        500,
        "internal",
        "e_missing",
    );
    drop_tables!(&pool, n);
}

#[tokio::test]
async fn mysql_errors_are_mapped() {
    let Some(url) = url("TEST_MYSQL_URL") else {
        return;
    };
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    let n = Names::new("e");
    drop_tables!(&pool, n);
    constraint_cases!(&pool, &n, true, true);
    let c = &n.child;

    // 1406 (22001), 1264 (22003): strict mode refuses instead of truncating.
    let long = "x".repeat(30);
    expect(
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {c} (id, email, qty) VALUES (6, ?, 1)"
        )))
        .bind(&long)
        .execute(&pool)
        .await,
        422,
        "out_of_range",
        &long,
    );
    expect(
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {c} (id, email, qty) VALUES (7, 'g@x', ?)"
        )))
        .bind(10_000_000_000_i64)
        .execute(&pool)
        .await,
        422,
        "out_of_range",
        "10000000000",
    );
    // 1366: text that is no integer (SQLSTATE 22007 on MariaDB, HY000 on MySQL).
    expect(
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {c} (id, email, qty) VALUES (8, 'h@x', ?)"
        )))
        .bind("abc")
        .execute(&pool)
        .await,
        400,
        "invalid_value",
        "abc",
    );

    // 1213 (40001): a deadlock; MariaDB picks a victim at once.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {c} (id, email, qty) VALUES (10, 'r@x', 1), (11, 's@x', 1)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let update = format!("UPDATE {c} SET qty = qty + 1 WHERE id = ?");
    let mut a = pool.begin().await.unwrap();
    let mut b = pool.begin().await.unwrap();
    let up = |id: i64| sqlx::query(sqlx::AssertSqlSafe(update.clone())).bind(id);
    up(10).execute(&mut *a).await.unwrap();
    up(11).execute(&mut *b).await.unwrap();
    let (ra, rb) = tokio::join!(up(11).execute(&mut *a), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        up(10).execute(&mut *b).await
    });
    let victim = match (ra, rb) {
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => e,
        other => panic!("expected exactly one deadlock victim: {other:?}"),
    };
    // Release the survivor's locks before the tables are dropped.
    a.rollback().await.unwrap();
    b.rollback().await.unwrap();
    assert_eq!(DbErrorClass::of(&victim), Some(DbErrorClass::Transient));
    expect(Err::<(), _>(victim), 503, "retry", "UPDATE");

    drop_tables!(&pool, n);
}

/// The HTTP side of one mapping: body shape, `constraint` only when known, and
/// `Retry-After` on a 503.
#[tokio::test]
async fn response_bodies() {
    use axum::response::IntoResponse;

    let res = ApiError::database(DbErrorClass::UniqueViolation, Some("item_title_key".into()))
        .into_response();
    assert_eq!(res.status().as_u16(), 409);
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": {
            "code": "conflict",
            "message": "a row with the same unique key already exists (constraint `item_title_key`)",
            "path": null,
            "constraint": "item_title_key",
        }})
    );

    let res = ApiError::database(DbErrorClass::Transient, None).into_response();
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "retry");
    assert!(
        body["error"].get("constraint").is_none(),
        "absent when unknown: {body}"
    );
}
