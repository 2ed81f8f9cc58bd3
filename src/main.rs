//! The `cht-dev` binary: runs the command line and turns errors into exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cht_dev::cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cht_dev::Error::Usage(e)) if !e.use_stderr() => {
            // --help and --version: clap prints them in full, to stdout.
            let _ = e.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let color = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let label = if color {
                "\x1b[1;31merror:\x1b[0m"
            } else {
                "error:"
            };
            let message = match &e {
                cht_dev::Error::Usage(clap_error) => cht_dev::error::usage_line(clap_error),
                other => other.to_string(),
            };
            eprintln!("{label} {message}");
            ExitCode::from(e.exit_code())
        }
    }
}
