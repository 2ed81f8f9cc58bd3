//! `cht-dev completions`: shell completion scripts.

use std::io::Write;

use crate::error::{Error, Result};

/// Writes the completion script for `shell` to stdout.
pub fn run(command: &mut clap::Command, shell: clap_complete::Shell) -> Result<()> {
    let mut buffer = Vec::new();
    clap_complete::generate(shell, command, "cht-dev", &mut buffer);
    std::io::stdout()
        .lock()
        .write_all(&buffer)
        .map_err(Error::Output)
}
