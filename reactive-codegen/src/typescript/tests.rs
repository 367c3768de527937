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
    assert!(procedures.contains("import type { Agent, OrgInput, UpdateAgent } from './types.js';"));
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
fn the_runtime_is_imported_from_the_package_not_copied() {
    let files = render(&sample());
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    assert_eq!(names, ["types.ts", "procedures.ts", "index.ts"]);
    let procedures = file(&files, "procedures.ts");
    assert!(
        procedures.contains("from '@reactive/client/react';"),
        "{procedures}"
    );
    assert!(procedures.contains("from './types.js';"), "{procedures}");
    let index = file(&files, "index.ts");
    assert!(
        index.contains("export * from '@reactive/client';"),
        "{index}"
    );
    assert!(
        index.contains("export * from './procedures.js';"),
        "{index}"
    );
    assert!(!index.contains("runtime"), "{index}");
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

fn version_of(procedures: &[ProcedureTs]) -> String {
    let files = render(procedures);
    let text = file(&files, "procedures.ts");
    let start = text.find("export const version = '").expect("version") + 24;
    text[start..start + 16].to_string()
}

#[test]
fn version_hashes_the_output_types_and_is_passed_to_the_client() {
    let files = render(&sample());
    let procedures = file(&files, "procedures.ts");
    assert!(
        procedures
            .contains("createReactiveClient<Procedures>({ procedures, version, stream: SharedStream, ...options })")
            && procedures.contains("import { SharedStream } from '@reactive/client/tabs';"),
        "{procedures}"
    );
    let base = version_of(&sample());
    assert!(base.chars().all(|c| c.is_ascii_hexdigit()), "{base}");
    // Deterministic, whatever the registration order.
    let mut reversed = sample();
    reversed.reverse();
    assert_eq!(version_of(&reversed), base);

    // An output declaration changes: another version (old cached data is dropped).
    let mut changed = sample();
    for p in &mut changed {
        for (name, decl) in &mut p.declarations {
            if name == "Agent" {
                *decl = "type Agent = { id: string, name: string, active: boolean, };".into();
            }
        }
    }
    assert_ne!(version_of(&changed), base);

    // A query's output type expression changes: another version.
    let mut changed = sample();
    changed[1].output = "Agent | null".into();
    assert_ne!(version_of(&changed), base);

    // Only an input type changes: the cached data keeps its shape, the version stays.
    let mut changed = sample();
    changed[1].declarations[0].1 =
        "type OrgInput = { organizationId: string, page: number, };".into();
    assert_eq!(version_of(&changed), base);
}

#[test]
fn a_type_only_nested_in_another_is_declared_but_not_imported() {
    let files = render(&[ProcedureTs {
        name: "agents.update".into(),
        kind: FunctionKind::Mutation,
        input: "UpdateAgent".into(),
        output: "null".into(),
        dependencies: vec!["agent".into()],
        declarations: vec![
            (
                "UpdateAgent".into(),
                "type UpdateAgent = { id: string, data: AgentChanges, };".into(),
            ),
            (
                "AgentChanges".into(),
                "type AgentChanges = { name?: string, };".into(),
            ),
        ],
    }]);
    assert!(file(&files, "types.ts").contains("export type AgentChanges ="));
    // An unused import fails apps compiled with `noUnusedLocals`.
    assert!(
        file(&files, "procedures.ts").contains("import type { UpdateAgent } from './types.js';"),
        "{}",
        file(&files, "procedures.ts")
    );
}
