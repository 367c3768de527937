//! The generated TypeScript client is committed (so the page builds without compiling the
//! server first). `build.rs` writes it from the sources (types rendered from syntax); these
//! tests check it against the run-time path (ts-rs on the compiled types), the complete one.

#[test]
fn committed_typescript_client_is_up_to_date() {
    // Reference the handlers so their registrations are linked into this test binary.
    let _ = teamhub::handlers::agents_find_many;
    let dir = teamhub::web_dir().join("src/generated");
    let files = reactive::typescript::render_registered();
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    assert!(
        names.iter().any(|n| n == "procedures.ts"),
        "nothing rendered: {names:?}"
    );
    let stale: Vec<String> = files
        .iter()
        .filter(|(path, contents)| {
            std::fs::read_to_string(dir.join(path)).ok().as_deref() != Some(contents)
        })
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        stale.is_empty(),
        "generated TypeScript files are out of date: {stale:?}; run `cargo build -p teamhub` (its build script rewrites them) and commit them"
    );
    let procedures = std::fs::read_to_string(dir.join("procedures.ts")).expect("procedures.ts");
    for name in [
        "agents.findMany",
        "agents.getWithStats",
        "agents.create",
        "agents.update",
        "agents.delete",
        "messages.getAll",
        "messages.send",
        "memory.add",
        "memory.recent",
        "tools.available",
    ] {
        assert!(
            procedures.contains(&format!("'{name}': {{ kind:")),
            "{name} missing from procedures.ts"
        );
    }
}

#[test]
fn build_script_output_equals_the_run_time_output() {
    let _ = teamhub::handlers::agents_find_many;
    // `build.rs` writes the same files into `OUT_DIR` as into `web/src/generated`.
    let dir = std::path::Path::new(env!("OUT_DIR")).join("typescript");
    for (path, contents) in reactive::typescript::render_registered() {
        let built = std::fs::read_to_string(dir.join(&path))
            .unwrap_or_else(|e| panic!("{} not written by build.rs: {e}", path.display()));
        assert_eq!(
            built,
            contents,
            "{}: the build script's output differs from the run-time path's",
            path.display()
        );
    }
}
