use super::*;

fn sample() -> Vec<ProcedureTs> {
    vec![
        ProcedureTs {
            name: "agents.update".into(),
            kind: FunctionKind::Mutation,
            input: "UpdateAgent".into(),
            output: "Agent".into(),
            dependencies: vec!["agent".into()],
            declarations: vec![
                (
                    "Agent".into(),
                    "type Agent = { id: string, name: string, };".into(),
                ),
                (
                    "UpdateAgent".into(),
                    "type UpdateAgent = { id: string, name: string, };".into(),
                ),
            ],
        },
        ProcedureTs {
            name: "agents.findMany".into(),
            kind: FunctionKind::Query,
            input: "OrgInput".into(),
            output: "Array<Agent>".into(),
            dependencies: vec!["agent".into()],
            declarations: vec![
                (
                    "OrgInput".into(),
                    "type OrgInput = { organizationId: string, };".into(),
                ),
                (
                    "Agent".into(),
                    "type Agent = { id: string, name: string, };".into(),
                ),
            ],
        },
    ]
}

fn file<'a>(files: &'a [GeneratedFile], name: &str) -> &'a str {
    &files
        .iter()
        .find(|(p, _)| p == Path::new(name))
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

#[test]
fn output_is_deterministic_whatever_the_registration_order() {
    let mut reversed = sample();
    reversed.reverse();
    assert_eq!(render(&sample()), render(&reversed));
}

#[test]
fn every_file_has_the_generated_header() {
    for (path, contents) in render(&sample()) {
        assert!(
            contents.starts_with(HEADER),
            "{} lacks the header",
            path.display()
        );
    }
}

#[test]
fn procedure_map_is_sorted_and_typed() {
    let files = render(&sample());
    let procedures = file(&files, "procedures.ts");
    let find_many = procedures
        .find("'agents.findMany': { kind: 'query'")
        .expect("findMany");
    let update = procedures
        .find("'agents.update': { kind: 'mutation'")
        .expect("update");
    assert!(find_many < update);
    assert!(procedures.contains("import type { Agent, OrgInput, UpdateAgent } from './types';"));
    assert!(procedures.contains("satisfies ProcedureMeta<Procedures>"));
}

#[test]
fn declarations_are_deduplicated_and_exported() {
    let files = render(&sample());
    let types = file(&files, "types.ts");
    assert_eq!(types.matches("export type Agent =").count(), 1);
    assert!(types.contains("export type OrgInput ="));
}

#[test]
fn runtime_sources_are_copied() {
    let files = render(&sample());
    assert!(!CLIENT_SOURCES.is_empty());
    for (name, source) in CLIENT_SOURCES {
        assert!(file(&files, &format!("runtime/{name}")).ends_with(source));
    }
}

#[test]
fn write_if_changed_leaves_identical_files_alone() {
    let dir = std::env::temp_dir().join(format!("reactive-ts-{}", std::process::id()));
    let files = render(&sample());
    let first = write_if_changed(&dir, &files).expect("write");
    assert_eq!(first.len(), files.len());
    let second = write_if_changed(&dir, &files).expect("rewrite");
    assert!(
        second.is_empty(),
        "unchanged files were rewritten: {second:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
