//! Writes the generated TypeScript client of every registered reactive function.
//!
//! Call [`generate`] from a small binary, a test or a start-up step of the server
//! (a build script cannot see the functions of the crate it builds). The rendering
//! itself lives in `reactive_codegen::typescript`.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use reactive_codegen::model::{FunctionKind, FunctionModel};
use reactive_codegen::typescript::{GeneratedFile, ProcedureTs, render, write_if_changed};

use crate::registry::{FunctionDef, functions};

/// The tables a procedure depends on (a query) or writes (a mutation), sorted.
fn dependency_tables(model: &FunctionModel) -> Vec<String> {
    let tables: BTreeSet<String> = match model.kind {
        FunctionKind::Query => model.dependencies.iter().map(|d| d.table.clone()).collect(),
        FunctionKind::Mutation => model
            .statements
            .iter()
            .flat_map(|s| s.analysis.writes.iter().map(|w| w.table.clone()))
            .chain(model.invalidates.iter().cloned())
            .collect(),
    };
    tables.into_iter().collect()
}

fn procedure(def: &FunctionDef) -> ProcedureTs {
    let model = def.model();
    let ts = (def.typescript)();
    ProcedureTs {
        name: model.name.clone(),
        kind: model.kind,
        input: ts.input,
        output: ts.output,
        dependencies: dependency_tables(model),
        declarations: ts.declarations,
    }
}

/// Writes the generated client (types, procedure map, typed hooks; they import the runtime
/// package `@reactive/client`) of every registered function into `dir`, touching only files
/// that changed. Returns the files written.
///
/// ```no_run
/// // e.g. in the server's start-up, or a `gen-ts` binary:
/// let written = reactive_runtime::typescript::generate("web/src/generated").unwrap();
/// println!("{} TypeScript files updated", written.len());
/// ```
pub fn generate(dir: impl AsRef<Path>) -> io::Result<Vec<PathBuf>> {
    write_if_changed(dir.as_ref(), &render_registered())
}

/// The generated files (relative path, contents) of every registered function,
/// without writing them: for a test that checks a committed copy is up to date.
pub fn render_registered() -> Vec<GeneratedFile> {
    let procedures: Vec<ProcedureTs> = functions().into_iter().map(procedure).collect();
    render(&procedures)
}
