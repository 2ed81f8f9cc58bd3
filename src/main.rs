//! The `cht-dev` binary: runs the command line and turns errors into exit codes.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cht_dev::cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cht_dev::Error::Help(text)) => {
            // --help and --version: in full, on stdout.
            let _ = write!(std::io::stdout().lock(), "{text}");
            ExitCode::SUCCESS
        }
        // The reader went away (`cht-dev versions | head -1`): nothing more to say.
        Err(cht_dev::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A closed stderr must not turn the exit code into a panic's.
            let _ = writeln!(
                std::io::stderr().lock(),
                "{} {e}",
                cht_dev::printer::error_label()
            );
            ExitCode::from(e.exit_code())
        }
    }
}
