//! The generated TypeScript client is committed (so the page builds without running the
//! server first); this test fails when it is out of date with the Rust functions.

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
        "generated TypeScript files are out of date: {stale:?}; run `cargo run -p teamhub` (it rewrites them at start-up) and commit them"
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
