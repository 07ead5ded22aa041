//! The `prun` binary: parse arguments, run, map to an exit status.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = prun::cli::parse();
    match std::panic::catch_unwind(move || prun::app::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(_) => {
            eprintln!("prun: internal error (a bug): please report it with the message above");
            ExitCode::from(prun::exit::INTERNAL)
        }
    }
}
