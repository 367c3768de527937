//! Writes the generated TypeScript client of every registered reactive function.
//!
//! Call [`generate`] from a small binary, a test or a start-up step of the server. This is
//! the complete path (ts-rs renders every type); an app's `build.rs` can instead emit the
//! same files from its sources with `reactive_codegen::build` (types rendered from syntax,
//! no second compile). The rendering itself lives in `reactive_codegen::typescript`.

use std::io;
use std::path::{Path, PathBuf};

use reactive_codegen::typescript::{
    GeneratedFile, ProcedureTs, dependency_tables, render, write_if_changed,
};

use crate::registry::{FunctionDef, functions};

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
