//! Writes the generated TypeScript client (`web/src/generated`) from the handlers' sources,
//! and the same files into `OUT_DIR`, where a test compares them to the run-time path's.

use reactive_codegen::build::TypeScript;

fn main() {
    TypeScript::new("web/src/generated").emit();
    if let Some(out_dir) = std::env::var_os("OUT_DIR") {
        let copy = std::path::Path::new(&out_dir).join("typescript");
        if let Err(error) = TypeScript::new(copy).write() {
            println!("cargo::warning=TypeScript copy for the tests not written: {error}");
        }
    }
}
