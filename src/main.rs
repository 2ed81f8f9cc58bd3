//! The `cht-dev` binary: runs the command line and turns errors into exit codes.

use std::process::ExitCode;

fn main() -> ExitCode {
    match cht_dev::cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cht_dev::Error::Usage(e)) if !e.use_stderr() => {
            // --help and --version: clap prints them in full, to stdout.
            let _ = e.print();
            ExitCode::SUCCESS
        }
        // The reader went away (`cht-dev versions | head -1`): nothing more to say.
        Err(cht_dev::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let message = match &e {
                cht_dev::Error::Usage(clap_error) => cht_dev::error::usage_line(clap_error),
                other => other.to_string(),
            };
            eprintln!("{} {message}", cht_dev::printer::error_label());
            ExitCode::from(e.exit_code())
        }
    }
}
