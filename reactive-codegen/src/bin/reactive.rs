//! The `reactive` command line tool. All logic lives in [`reactive_codegen::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match reactive_codegen::cli::run(std::env::args().skip(1), &mut stdout) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(error) => {
            eprintln!("reactive: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
