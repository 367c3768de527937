//! Running the built `reactive` binary from the crate's directory, so that paths in
//! its output are the short relative ones the tests spell out.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The crate's directory (the binary runs there).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `reactive ARGS` in the crate's directory.
pub fn reactive(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reactive"))
        .args(args)
        .current_dir(crate_dir())
        .output()
        .expect("the reactive binary runs")
}

/// Standard output as text, with the exit code, after checking standard error is empty.
pub fn stdout_of(output: &Output) -> (Option<i32>, String) {
    assert!(
        output.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status.code(),
        String::from_utf8(output.stdout.clone()).expect("utf-8 output"),
    )
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reactive-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A server URL from the environment, or `None` with a skip message (a panic when
/// `CI` is set: the services must be there).
pub fn env_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!("{var} must be set when CI is set"),
        Err(_) => {
            eprintln!("skipped: {var} not set");
            None
        }
    }
}

/// `reactive ARGS` is a usage error, reported by clap: exit 2, `error: ...` holding
/// `message` on standard error, and the hint at `--help`.
pub fn assert_usage_error(args: &[&str], message: &str) {
    let output = reactive(args);
    assert_eq!(output.status.code(), Some(2), "{args:?}");
    assert!(output.stdout.is_empty(), "{args:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains(message),
        "{args:?}: {stderr}"
    );
    assert!(
        stderr.ends_with("For more information, try '--help'.\n"),
        "{args:?}: {stderr}"
    );
}
