//! Output for people and scripts: honours `--quiet`, `NO_COLOR` and a non-terminal stdout.

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};

use crate::error::{Error, Result};
pub use crate::shell::{printable, shell_word};

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

/// Who the output is for, decided once from `--json` and `--quiet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// People: requested data, and the chatter around it.
    Human,
    /// People who asked for requested data and errors only.
    Quiet,
    /// Scripts: one JSON document on stdout.
    Json,
}

/// A command's result: one JSON document for scripts (its `Serialize` form), lines for
/// people (its [`Report::human`] form). Commands return one; the printer writes it.
pub trait Report: serde::Serialize {
    /// Writes the result for people: [`Printer::data`] for what was asked for (shown under
    /// `--quiet` too), [`Printer::info`] for the rest.
    fn human(&self, p: &Printer) -> Result<()>;
}

/// `text` as a QR code in Unicode half blocks, two modules per character cell, light
/// on dark as terminals show it best, with the quiet zone phone cameras need.
pub fn qr_lines(text: &str) -> Result<Vec<String>> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| Error::Output(std::io::Error::other(e.to_string())))?;
    let picture = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    Ok(picture.lines().map(str::to_string).collect())
}

/// How text reaches stdout: the output mode and whether it is coloured.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// Who the output is for.
    mode: Mode,
    /// Emit ANSI colour codes.
    color: bool,
    /// stdout is a terminal (people are looking at it).
    terminal: bool,
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
    /// A printer for this process: colour only on a terminal and only without `NO_COLOR`
    /// (never in JSON).
    pub fn from_env(mode: Mode) -> Self {
        Printer {
            mode,
            color: mode != Mode::Json && colour_on(&std::io::stdout()),
            terminal: std::io::stdout().is_terminal(),
        }
    }

    /// Whether stdout is a terminal: only then are pictures (a QR code) printed.
    pub fn is_terminal(&self) -> bool {
        self.terminal && self.mode == Mode::Human
    }

    /// Who the output is for.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether output is one JSON document.
    pub fn is_json(&self) -> bool {
        self.mode == Mode::Json
    }

    /// Writes a command's result as the mode asks: JSON, or lines for people.
    pub fn report(&self, result: &impl Report) -> Result<()> {
        match self.mode {
            Mode::Json => self.json(result),
            Mode::Human | Mode::Quiet => result.human(self),
        }
    }

    /// Whether chatter (progress, summaries, notes) is suppressed: under `--quiet` and
    /// `--json`.
    pub fn is_quiet(&self) -> bool {
        self.mode != Mode::Human
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
        if self.is_quiet() {
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
        if !self.is_quiet() {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }

    /// Prints a line on stderr whatever the mode: for what the user asked for on stderr
    /// (`--timings`), which must not mix into stdout's data or JSON.
    pub fn always_warn(&self, line: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// Prints a JSON document (always shown, always uncoloured).
    pub fn json(&self, value: &impl serde::Serialize) -> Result<()> {
        self.data(json_text(value)?)
    }
}

/// A JSON document as [`Printer::json`] prints it, without the final newline.
pub fn json_text(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Output(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a [`qr_lines`] picture back as a camera would: light blocks are light
    /// modules, blank cells dark ones, each module scaled to 4x4 pixels.
    fn decode(lines: &[String]) -> String {
        const SCALE: usize = 4;
        let rows: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        let module = |x: usize, y: usize| -> bool {
            let cell = rows
                .get(y / 2)
                .and_then(|r| r.get(x))
                .copied()
                .unwrap_or(' ');
            let lit = if y.is_multiple_of(2) {
                matches!(cell, '█' | '▀')
            } else {
                matches!(cell, '█' | '▄')
            };
            !lit
        };
        let (w, h) = (width * SCALE, rows.len() * 2 * SCALE);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
            if module(x / SCALE, y / SCALE) { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code");
        grids[0].decode().expect("decodes").1
    }

    #[test]
    fn the_qr_code_reads_back_as_the_url() {
        let url = "https://192-168-1-20.local-ip.medicmobile.org:10443/";
        let lines = qr_lines(url).expect("qr");
        assert!(lines.len() > 10 && lines.len() < 30, "{}", lines.len());
        assert_eq!(decode(&lines), url);
    }
}
