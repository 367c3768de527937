//! The `reactive` command line tool. All logic lives in the `reactive_cli` library.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use reactive_cli::{Cli, CliError};

fn main() -> ExitCode {
    // Usage errors, `--help` and `--version` exit here, in clap's style.
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match reactive_cli::run(&cli.command, &mut stdout) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(CliError::Usage(message)) => {
            // Found only while running (a database URL of an unknown kind): reported
            // as clap reports its own usage errors, with exit status 2.
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, message)
                .format(&mut Cli::command())
                .exit()
        }
        Err(error) => {
            eprintln!("reactive: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
