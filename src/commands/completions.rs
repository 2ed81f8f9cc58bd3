//! `cht-dev completions`: shell completion scripts.

use std::io::Write;

use crate::error::{Error, Result};
use crate::settings::Settings;

/// Writes the completion script for `shell` to stdout (inside a JSON document with `--json`).
pub fn run(
    settings: &Settings,
    command: &mut clap::Command,
    shell: clap_complete::Shell,
) -> Result<()> {
    let mut buffer = Vec::new();
    clap_complete::generate(shell, command, "cht-dev", &mut buffer);
    if settings.printer.is_json() {
        return settings.printer.json(&serde_json::json!({
            "shell": shell.to_string(),
            "script": String::from_utf8_lossy(&buffer),
        }));
    }
    std::io::stdout()
        .lock()
        .write_all(&buffer)
        .map_err(Error::Output)
}
