//! Reading and writing a project's `.env` file the way compose reads it.

use std::fmt::Write as _;

use indexmap::IndexMap;

/// A parse failure: the 1-based line and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

/// The variables of a `.env` file, in file order.
#[derive(Debug, Clone, Default)]
pub struct EnvFile {
    /// Variable names and their values; the last definition of a name wins.
    vars: IndexMap<String, String>,
    /// For a parsed file, the 0-based lines each variable's last definition spans (a
    /// quoted value may run over several).
    spans: IndexMap<String, std::ops::Range<usize>>,
}

/// Two files are equal when they hold the same variables, wherever they are written.
impl PartialEq for EnvFile {
    fn eq(&self, other: &Self) -> bool {
        self.vars == other.vars
    }
}

impl Eq for EnvFile {}

/// Whether `key` is a variable name compose accepts.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl EnvFile {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, keeping the key's first position.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.vars.insert(key.to_string(), value.into());
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// The 1-based line where `key` is defined, in a parsed file.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.spans.get(key).map(|span| span.start + 1)
    }

    /// All variables in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Parses `.env` text: `KEY=VALUE` lines, optional `export `, `#` comments,
    /// single quotes (literal) and double quotes (with `\n`, `\t`, `\"`, `\\` escapes).
    pub fn parse(text: &str) -> Result<EnvFile, SyntaxError> {
        let mut env = EnvFile::new();
        let mut lines = text.lines().enumerate();
        while let Some((index, raw)) = lines.next() {
            let line_no = index + 1;
            let fail = |reason: &str| SyntaxError {
                line: line_no,
                reason: reason.to_string(),
            };
            let line = raw.trim_start_matches('\u{feff}').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line
                .strip_prefix("export ")
                .map(str::trim_start)
                .unwrap_or(line);
            let Some((key, rest)) = line.split_once('=') else {
                return Err(fail("expected KEY=VALUE"));
            };
            let key = key.trim();
            if !is_valid_key(key) {
                return Err(fail(&format!("{key:?} is not a valid variable name")));
            }
            let rest = rest.trim_start();
            let mut end = index + 1;
            let value = match rest.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    // A quoted value may run over several lines until its closing quote;
                    // each line is read once, so a missing quote costs linear time.
                    let mut unquote = Unquote::new(quote);
                    let mut closed = unquote.feed(&rest[1..]);
                    while !closed {
                        match lines.next() {
                            Some((at, next)) => {
                                end = at + 1;
                                closed = unquote.feed("\n") || unquote.feed(next);
                            }
                            None => return Err(fail(&format!("missing closing {quote}"))),
                        }
                    }
                    unquote.value
                }
                _ => strip_inline_comment(rest).trim_end().to_string(),
            };
            env.set(key, value);
            env.spans.insert(key.to_string(), index..end);
        }
        Ok(env)
    }

    /// Renders the file, preceded by `header` lines written as `# ` comments; refused when
    /// a value has no spelling compose v1 and v2 read alike (see [`spell`]).
    pub fn render(&self, header: &[&str]) -> Result<String, Unportable> {
        let mut out = String::new();
        for line in header {
            let _ = writeln!(out, "# {line}");
        }
        for (key, value) in &self.vars {
            let spelt = spell(value).map_err(|reason| Unportable {
                key: key.clone(),
                reason,
            })?;
            let _ = writeln!(out, "{key}={spelt}");
        }
        Ok(out)
    }
}

/// `text` with each of `vars` set: a variable's definition (all its lines, for a quoted
/// value over several) is replaced where it stands, a new one is added at the end, and
/// every other line (comments, user edits) stays as written.
pub fn update(text: &str, vars: &[(&str, &str)]) -> Result<String, UpdateError> {
    let mut env = EnvFile::parse(text).map_err(UpdateError::Syntax)?;
    let mut lines: Vec<Option<String>> = text.lines().map(|l| Some(l.to_string())).collect();
    let mut added = Vec::new();
    for &(key, value) in vars {
        let line = format!(
            "{key}={}",
            spell(value).map_err(|reason| UpdateError::Unportable(Unportable {
                key: key.to_string(),
                reason,
            }))?
        );
        match env.spans.get(key).cloned() {
            Some(span) => {
                lines[span.start] = Some(line);
                for dropped in &mut lines[span.start + 1..span.end] {
                    *dropped = None;
                }
            }
            None => added.push(line),
        }
        env.set(key, value);
    }
    let mut out: Vec<String> = lines.into_iter().flatten().collect();
    out.extend(added);
    Ok(out.join("\n") + "\n")
}

/// Why `.env` text could not be updated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The text as it stands does not parse.
    #[error("line {}: {}", .0.line, .0.reason)]
    Syntax(SyntaxError),
    /// A new value has no portable spelling.
    #[error(transparent)]
    Unportable(Unportable),
}

/// A value no `.env` spelling carries to compose v1 and v2 alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the value of {key} {reason}: compose v1 and v2 would read it differently; choose a value without it"
)]
pub struct Unportable {
    /// The variable.
    pub key: String,
    /// What in the value has no common spelling.
    pub reason: &'static str,
}

/// Whether some `.env` spelling of `value` reads back the same in cht-dev, compose v1
/// and compose v2.
pub fn is_portable(value: &str) -> bool {
    spell(value).is_ok()
}

/// A quoted value read a chunk (a line) at a time, so reading costs linear time however
/// far the closing quote is, or if it never comes.
struct Unquote {
    /// The quote that ends the value.
    quote: char,
    /// The value so far, escapes resolved.
    value: String,
    /// The last character fed was a backslash (in double quotes).
    escaping: bool,
}

impl Unquote {
    /// A value opened by `quote`.
    fn new(quote: char) -> Unquote {
        Unquote {
            quote,
            value: String::new(),
            escaping: false,
        }
    }

    /// Reads `chunk`; true once the closing quote is found (the rest of the chunk after
    /// it is ignored). Escapes work in double quotes only: `\n`, `\t`, `\r`, `\"`, `\\`,
    /// `\$`; any other backslash stays as written.
    fn feed(&mut self, chunk: &str) -> bool {
        for c in chunk.chars() {
            if self.escaping {
                self.escaping = false;
                match c {
                    'n' => self.value.push('\n'),
                    't' => self.value.push('\t'),
                    'r' => self.value.push('\r'),
                    '"' | '\\' | '$' => self.value.push(c),
                    other => {
                        self.value.push('\\');
                        self.value.push(other);
                    }
                }
            } else if c == self.quote {
                return true;
            } else if c == '\\' && self.quote == '"' {
                self.escaping = true;
            } else {
                self.value.push(c);
            }
        }
        false
    }
}

/// Drops a ` #comment` from an unquoted value.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return &value[..i];
        }
    }
    value
}

/// How `value` is written so cht-dev, compose v1 (1.29) and compose v2 read the same
/// bytes, or why no spelling does. Measured rules: v1 expands `${NAME}` in every
/// spelling, quoted or not, with no escape; both read bare words and single-quoted text
/// otherwise literally; in double quotes both undo `\\`, `\"` and `\n`, but v2 expands
/// `$NAME` and v1 keeps `\$` as two characters. So: never `${`; bare when only safe
/// characters; single quotes when there is no `'` and no control character; double quotes
/// when there is no `$`.
fn spell(value: &str) -> Result<String, &'static str> {
    if value.contains("${") {
        return Err("holds ${");
    }
    let bare = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./:@+,%".contains(c));
    if bare {
        return Ok(value.to_string());
    }
    if !value.contains('\'') && !value.chars().any(char::is_control) {
        return Ok(format!("'{value}'"));
    }
    if value.contains('$') {
        return Err(if value.contains('\'') {
            "holds both ' and $"
        } else {
            "holds both a control character and $"
        });
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out.push('"');
    Ok(out)
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_unterminated_quote_is_reported_after_one_pass_over_the_text() {
        // 1 MiB of short lines after an opening quote: read once, not once per line.
        let text = format!("A=1\nB=\"{}", "x\\\"\n".repeat(250_000));
        let err = EnvFile::parse(&text).expect_err("unterminated");
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("missing closing"), "{}", err.reason);
        let ok = EnvFile::parse("Q=\"one\ntwo \\\" three\\\nfour\"\n").expect("parses");
        assert_eq!(ok.get("Q"), Some("one\ntwo \" three\\\nfour"));
    }

    use super::*;

    #[test]
    fn parses_compose_style_lines() {
        let text = "# comment\n\nA=1\nexport B = two words  # note\nC='lit $x #y'\nD=\"q\\\"n\\nx\"\nE=\nF=a#b\n";
        let env = EnvFile::parse(text).expect("parses");
        assert_eq!(env.get("A"), Some("1"));
        assert_eq!(env.get("B"), Some("two words"));
        assert_eq!(env.get("C"), Some("lit $x #y"));
        assert_eq!(env.get("D"), Some("q\"n\nx"));
        assert_eq!(env.get("E"), Some(""));
        assert_eq!(env.get("F"), Some("a#b"));
    }

    #[test]
    fn multi_line_quoted_value() {
        let env = EnvFile::parse("K=\"a\nb\"\nL=2\n").expect("parses");
        assert_eq!(env.get("K"), Some("a\nb"));
        assert_eq!(env.get("L"), Some("2"));
    }

    #[test]
    fn reports_the_line_of_a_bad_entry() {
        let err = EnvFile::parse("A=1\nnot a pair\n").expect_err("fails");
        assert_eq!(err.line, 2);
        let err = EnvFile::parse("A=1\n1A=2\n").expect_err("fails");
        assert!(err.reason.contains("not a valid variable name"));
        let err = EnvFile::parse("A=\"open\n").expect_err("fails");
        assert!(err.reason.contains("closing"));
    }

    #[test]
    fn update_replaces_a_value_over_several_lines_and_keeps_the_rest() {
        let text = "# mine\nA=1\nK=\"x\nB=2\ny\"\nB=3 # port\n";
        let updated = update(text, &[("K", "one"), ("B", "4"), ("NEW", "a b")]).expect("updates");
        assert_eq!(updated, "# mine\nA=1\nK=one\nB=4\nNEW='a b'\n");
        let env = EnvFile::parse(&updated).expect("parses");
        assert_eq!(env.line_of("B"), Some(4));
        assert_eq!(
            update("A=\"open\n", &[("A", "1")]),
            Err(UpdateError::Syntax(SyntaxError {
                line: 1,
                reason: "missing closing \"".into()
            }))
        );
    }

    #[test]
    fn render_round_trips_awkward_values() {
        let mut env = EnvFile::new();
        env.set("PLAIN", "/home/me/.local/share/cht-dev/a/couchdb");
        env.set("SPACES", "/home/Jo Doe/x");
        env.set("QUOTES", "say \"hi\" \\ $HOME");
        env.set("EMPTY", "");
        env.set("APOSTROPHE", "it's \"x\"\n");
        let text = env.render(&["header"]).expect("portable");
        assert!(text.starts_with("# header\n"));
        assert!(text.contains("PLAIN=/home/me/.local/share/cht-dev/a/couchdb\n"));
        assert_eq!(EnvFile::parse(&text).expect("parses"), env);
        env.set("BOTH", "it's $5");
        let err = env.render(&[]).expect_err("unportable");
        assert!(err.to_string().contains("BOTH holds both"), "{err}");
        env.set("BOTH", "${HOME}");
        let err = env.render(&[]).expect_err("unportable");
        assert!(err.to_string().contains("BOTH holds ${"), "{err}");
    }
}
