//! Embeds the TypeScript client runtime (`ts/src/*.ts`) so that the emitter can copy it
//! into an app's web folder: apps install no extra package.

use std::{env, fs, path::Path};

fn main() {
    let src = Path::new("ts/src");
    println!("cargo::rerun-if-changed=ts/src");
    let mut files: Vec<String> = fs::read_dir(src)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".ts") && !name.ends_with(".test.ts"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut out = String::from(
        "/// The client runtime sources: (file name, contents).\npub const CLIENT_SOURCES: &[(&str, &str)] = &[\n",
    );
    for name in &files {
        println!("cargo::rerun-if-changed=ts/src/{name}");
        let path = Path::new(&manifest).join("ts/src").join(name);
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest =
        Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("client_sources.rs");
    fs::write(dest, out).expect("write client_sources.rs");
}
