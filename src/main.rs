//! The `cht-dev` binary: runs the command line and turns errors into exit codes.

use std::process::ExitCode;

fn main() -> ExitCode {
    match cht_dev::cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cht_dev::Error::Help(text)) => {
            // --help and --version: in full, on stdout.
            print!("{text}");
            ExitCode::SUCCESS
        }
        // The reader went away (`cht-dev versions | head -1`): nothing more to say.
        Err(cht_dev::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{} {e}", cht_dev::printer::error_label());
            ExitCode::from(e.exit_code())
        }
    }
}
