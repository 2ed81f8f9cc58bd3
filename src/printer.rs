//! Output for people and scripts: honours `--quiet`, `NO_COLOR` and a non-terminal stdout.

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};

use crate::error::{Error, Result};

/// The one rule for colour, on any stream: only on a terminal, never with a non-empty
/// `NO_COLOR`, never on a `dumb` terminal.
pub fn colour_on(stream: &impl IsTerminal) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|v| v == "dumb");
    stream.is_terminal() && !no_color && !dumb
}

/// The label in front of an error line on stderr, coloured by [`colour_on`]'s rule.
pub fn error_label() -> &'static str {
    if colour_on(&std::io::stderr()) {
        "\x1b[1;31merror:\x1b[0m"
    } else {
        "error:"
    }
}

/// How text reaches stdout: whether chatter is shown and whether it is coloured.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// Suppress progress and summaries; requested data is still printed.
    quiet: bool,
    /// Emit ANSI colour codes.
    color: bool,
}

/// The kinds of emphasis cht-dev uses; each maps to one style.
#[derive(Debug, Clone, Copy)]
pub enum Tone {
    /// Headings and names.
    Strong,
    /// Something that worked.
    Good,
    /// Something to look at.
    Warn,
}

impl Printer {
    /// A printer for this process: colour only on a terminal and only without `NO_COLOR`.
    pub fn from_env(quiet: bool) -> Self {
        Printer {
            quiet,
            color: colour_on(&std::io::stdout()),
        }
    }

    /// Whether chatter is suppressed.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Wraps `text` in the style for `tone` when colour is on.
    pub fn paint(&self, tone: Tone, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        let style = match tone {
            Tone::Strong => Style::new().bold(),
            Tone::Good => Style::new().fg_color(Some(AnsiColor::Green.into())),
            Tone::Warn => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        };
        format!("{}{text}{}", style.render(), style.render_reset())
    }

    /// Prints a line of chatter (hidden by `--quiet`).
    pub fn info(&self, line: impl AsRef<str>) -> Result<()> {
        if self.quiet {
            return Ok(());
        }
        self.data(line)
    }

    /// Prints a line of requested data (always shown).
    pub fn data(&self, line: impl AsRef<str>) -> Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", line.as_ref()).map_err(Error::Output)
    }

    /// Prints a note or warning on stderr (never mixed into data on stdout; hidden by
    /// `--quiet`, which keeps only requested data and errors).
    pub fn warn(&self, line: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }

    /// Prints a JSON document (always shown, always uncoloured).
    pub fn json(&self, value: &impl serde::Serialize) -> Result<()> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Error::Output(std::io::Error::other(e)))?;
        self.data(text)
    }
}
