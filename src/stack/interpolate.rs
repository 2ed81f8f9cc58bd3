//! Compose-style variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`, `${VAR+alt}`
//! and `$$` for a literal `$`.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${VAR:?message}` (or `?`) met an unset (or empty) variable.
    Required {
        /// The variable.
        var: String,
        /// The file's message for it.
        message: String,
    },
    /// A `${` with no closing `}` or an invalid name inside.
    Syntax {
        /// The text that could not be read.
        text: String,
    },
}

impl std::fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpolateError::Required { var, message } if message.is_empty() => {
                write!(f, "required variable {var} is missing a value")
            }
            InterpolateError::Required { var, message } => {
                write!(f, "required variable {var} is missing a value: {message}")
            }
            InterpolateError::Syntax { text } => {
                write!(f, "invalid interpolation format in {text:?}")
            }
        }
    }
}

/// Whether `c` may appear in a variable name.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Interpolates `input`, looking variables up with `lookup`.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let syntax = || InterpolateError::Syntax {
        text: input.to_string(),
    };
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body_start) = after.strip_prefix('{') {
            let end = matching_brace(body_start).ok_or_else(syntax)?;
            out.push_str(&expand(&body_start[..end], lookup).map_err(|e| match e {
                InterpolateError::Syntax { .. } => syntax(),
                other => other,
            })?);
            rest = &body_start[end + 1..];
        } else {
            let len = after.find(|c: char| !name_char(c)).unwrap_or(after.len());
            if len == 0 || after.starts_with(|c: char| c.is_ascii_digit()) {
                // A lone `$` stays as it is, as compose leaves it.
                out.push('$');
                rest = after;
            } else {
                out.push_str(&lookup(&after[..len]).unwrap_or_default());
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${`, allowing nested `${...}` in defaults.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// What a `${NAME<op>arg}` does with `arg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `:-` or `-`: `arg` stands in when the variable is unset (or, with `:`, empty).
    Default,
    /// `:?` or `?`: an error with `arg` as its message when unset (or empty).
    Required,
    /// `:+` or `+`: `arg` when the variable is set (and, with `:`, not empty), else nothing.
    Alternative,
}

/// Reads the operator after a variable's name: the operator, whether it also treats an
/// empty value as unset (`:`), and its argument; `None` for an unknown operator.
fn operator(op: &str) -> Option<(Op, bool, &str)> {
    let (colon, rest) = match op.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, op),
    };
    let kind = match rest.chars().next()? {
        '-' => Op::Default,
        '?' => Op::Required,
        '+' => Op::Alternative,
        _ => return None,
    };
    Some((kind, colon, &rest[1..]))
}

/// Expands the inside of one `${...}`.
fn expand(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolateError> {
    let name_len = body.find(|c: char| !name_char(c)).unwrap_or(body.len());
    let (name, op) = body.split_at(name_len);
    let syntax = || InterpolateError::Syntax {
        text: body.to_string(),
    };
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(syntax());
    }
    let value = lookup(name);
    if op.is_empty() {
        return Ok(value.unwrap_or_default());
    }
    let (kind, colon, arg) = operator(op).ok_or_else(syntax)?;
    let unset = if colon {
        value.as_deref().is_none_or(str::is_empty)
    } else {
        value.is_none()
    };
    let nested = |text: &str| interpolate(text, lookup);
    match kind {
        Op::Default if unset => nested(arg),
        Op::Required if unset => Err(InterpolateError::Required {
            var: name.to_string(),
            message: nested(arg)?,
        }),
        Op::Alternative if unset => Ok(String::new()),
        Op::Alternative => nested(arg),
        Op::Default | Op::Required => Ok(value.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interpolates with A=a, EMPTY="" and nothing else set.
    fn run(input: &str) -> Result<String, InterpolateError> {
        interpolate(input, &|name| match name {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        })
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(run("x $A ${A} $A_ y").as_deref(), Ok("x a a  y"));
        assert_eq!(run("$$A and $$").as_deref(), Ok("$A and $"));
        assert_eq!(run("cost: 5$").as_deref(), Ok("cost: 5$"));
        assert_eq!(run("${UNSET}").as_deref(), Ok(""));
    }

    #[test]
    fn defaults_follow_compose() {
        assert_eq!(run("${UNSET:-d}").as_deref(), Ok("d"));
        assert_eq!(run("${EMPTY:-d}").as_deref(), Ok("d"));
        assert_eq!(run("${EMPTY-d}").as_deref(), Ok(""));
        assert_eq!(run("${UNSET-d}").as_deref(), Ok("d"));
        assert_eq!(run("${A:-d}").as_deref(), Ok("a"));
        assert_eq!(run("${UNSET:-${A}/x}").as_deref(), Ok("a/x"));
        assert_eq!(run("${UNSET:-/p/a}:/data").as_deref(), Ok("/p/a:/data"));
        assert_eq!(run("${A:+alt}|${UNSET:+alt}").as_deref(), Ok("alt|"));
    }

    #[test]
    fn required_names_the_variable() {
        let err = run("${UNSET:?UNSET must be set}").expect_err("required");
        assert_eq!(
            err.to_string(),
            "required variable UNSET is missing a value: UNSET must be set"
        );
        assert!(run("${EMPTY:?x}").is_err());
        assert_eq!(run("${EMPTY?x}").as_deref(), Ok(""));
        assert_eq!(run("${A:?x}").as_deref(), Ok("a"));
    }

    #[test]
    fn bad_syntax_is_an_error_not_a_panic() {
        for bad in ["${", "${A", "${}", "${1A}", "${A!x}", "${A:-${B}"] {
            assert!(
                matches!(run(bad), Err(InterpolateError::Syntax { .. })),
                "{bad}"
            );
        }
    }
}
