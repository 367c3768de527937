//! Compile-fail and compile-pass cases for `#[reactive_function]` and `#[derive(Relations)]`.

use std::path::Path;

#[test]
fn ui() {
    point_sqlx_at_offline_data();
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*.rs");
}

/// `pass/cli_generated.rs` holds a `query_as!`, which sqlx checks at compile time
/// against a database or its offline data: ours is `ui-tests/.sqlx` (no database at
/// build time). trybuild builds the cases as a crate of its own under
/// `target/tests/trybuild/`, whose `.sqlx` sqlx would look for; but sqlx also reads
/// `.env` files in that crate's directory, so one there points it at ours.
/// Regenerate the data with `DATABASE_URL=postgres://... SQLX_OFFLINE=false
/// SQLX_OFFLINE_DIR=$PWD/ui-tests/.sqlx cargo test -p reactive-ui-tests` against a
/// database with `project (id uuid, organization_id uuid, name text)`, all `NOT NULL`.
fn point_sqlx_at_offline_data() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory");
    let project = target.join("tests/trybuild/reactive-ui-tests");
    std::fs::create_dir_all(&project).expect("trybuild's project directory");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join(".sqlx");
    std::fs::write(
        project.join(".env"),
        format!(
            "SQLX_OFFLINE=true\nSQLX_OFFLINE_DIR=\"{}\"\n",
            data.display()
        ),
    )
    .expect("write trybuild's .env");
}
