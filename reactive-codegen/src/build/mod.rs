//! Build-time TypeScript emission (feature `build`): an app's `build.rs` writes the
//! generated client from the crate's sources, without compiling the app.
//!
//! ```no_run
//! // build.rs: `fn main` writes the client of the crate's functions.
//! reactive_codegen::build::typescript("web/src/generated");
//! ```
//!
//! The sources (`src/` by default) are parsed with syn; every `#[reactive_function]` is
//! summarized by the macro's own analysis ([`crate::expand::summarize`]), so names, kinds
//! and dependencies are the ones the macro registers; the input and output types are found
//! by name among the crate's structs and enums and rendered as ts-rs renders them. The
//! files are [`crate::typescript::render`]'s, written with [`write_if_changed`].
//!
//! What cannot be rendered from syntax alone (a type from another crate, a generic type,
//! `#[serde(flatten)]`, an enum with data, ...) is rendered `unknown` and reported as a
//! `cargo::warning`. The run-time path (`reactive::typescript::generate`, ts-rs on the
//! compiled types) stays the complete one.

mod attrs;
mod procedures;
mod sources;
#[cfg(test)]
mod tests;
mod types;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::typescript::{GeneratedFile, render, write_if_changed};

/// Something the build script could not render exactly, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    /// The source file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// What, and what was emitted instead.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Why the files could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A source file or folder could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A source file does not parse (the compiler reports it too).
    #[error("{}:{line}: does not parse: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// syn's message.
        message: String,
    },
    /// The generated files could not be written.
    #[error("cannot write the generated files into {}: {source}", dir.display())]
    Write {
        /// The output folder.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The generated files, with what could not be rendered exactly.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The files (relative path, contents), as [`crate::typescript::render`] makes them.
    pub files: Vec<GeneratedFile>,
    /// Types rendered as `unknown` or attributes ignored, sorted.
    pub warnings: Vec<Warning>,
    /// The source files read.
    pub read: Vec<PathBuf>,
}

/// What a build script emits, and from which sources.
#[derive(Debug, Clone)]
pub struct TypeScript {
    out_dir: PathBuf,
    sources: Vec<PathBuf>,
    manifest_dir: PathBuf,
}

/// From a build script: writes the generated client of the crate's reactive functions into
/// `out_dir` (relative to the crate), reading `src/`. Warnings and errors are
/// `cargo::warning`s: a failure here never fails the build (a source that does not parse
/// is reported by the compiler, better).
pub fn typescript(out_dir: impl AsRef<Path>) {
    TypeScript::new(out_dir).emit();
}

impl TypeScript {
    /// Emission into `out_dir` (relative to the crate's folder), reading `src/`.
    pub fn new(out_dir: impl AsRef<Path>) -> Self {
        TypeScript {
            out_dir: out_dir.as_ref().to_owned(),
            sources: Vec::new(),
            manifest_dir: std::env::var_os("CARGO_MANIFEST_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
        }
    }

    /// Read this file or folder (relative to the crate's folder) instead of `src/`; call
    /// again for more.
    pub fn source(mut self, path: impl AsRef<Path>) -> Self {
        self.sources.push(path.as_ref().to_owned());
        self
    }

    /// The crate's folder (default `CARGO_MANIFEST_DIR`): relative paths start there.
    pub fn manifest_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.manifest_dir = dir.as_ref().to_owned();
        self
    }

    fn roots(&self) -> Vec<PathBuf> {
        if self.sources.is_empty() {
            vec![self.manifest_dir.join("src")]
        } else {
            self.sources
                .iter()
                .map(|s| self.manifest_dir.join(s))
                .collect()
        }
    }

    /// The files, without writing them.
    pub fn render(&self) -> Result<Rendered, BuildError> {
        let parsed = sources::read_sources(&self.roots())?;
        let items = sources::items(&parsed);
        let mut renderer = types::Renderer::new(&items);
        let mut warnings = Vec::new();
        let procedures = procedures::procedures(&items, &mut renderer, &mut warnings);
        warnings.extend(renderer.into_warnings());
        warnings.sort();
        warnings.dedup();
        Ok(Rendered {
            files: render(&procedures),
            warnings,
            read: parsed.into_iter().map(|s| s.path).collect(),
        })
    }

    /// Renders and writes the files that changed; returns the paths written.
    pub fn write(&self) -> Result<(Rendered, Vec<PathBuf>), BuildError> {
        let rendered = self.render()?;
        let dir = self.manifest_dir.join(&self.out_dir);
        let written =
            write_if_changed(&dir, &rendered.files).map_err(|source| BuildError::Write {
                dir: dir.clone(),
                source,
            })?;
        Ok((rendered, written))
    }

    /// [`TypeScript::write`], printing what cargo reads from a build script: a
    /// `cargo::rerun-if-changed` for each source folder and file read, a `cargo::warning`
    /// for each warning or the error. Nothing is written when the sources do not parse.
    pub fn emit(&self) {
        for root in self.roots() {
            println!("cargo::rerun-if-changed={}", root.display());
        }
        match self.write() {
            Ok((rendered, _)) => {
                for path in &rendered.read {
                    println!("cargo::rerun-if-changed={}", path.display());
                }
                for warning in &rendered.warnings {
                    println!("cargo::warning={}", one_line(&warning.to_string()));
                }
            }
            Err(error) => println!(
                "cargo::warning=TypeScript bindings not written: {}",
                one_line(&error.to_string())
            ),
        }
    }
}

/// A cargo directive ends at the line's end.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}
