//! The vrfexec binary: maps `vrfexec::run` to an exit status and prints its error once.
use std::process::ExitCode;

fn main() -> ExitCode {
    match vrfexec::run(std::env::args_os().collect()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vrfexec: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
